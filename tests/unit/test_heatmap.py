"""The Block Profiler's heatmap as a picture people can read."""


def test_the_heatmap_labels_its_axes_and_scale_at_one_readable_size():
    """Whatever the block and step counts, one picture size with text in the margins: the step
    numbers left of the grid, block numbers and the colour scale below it."""
    import math

    import numpy as np

    from cache_core.profiles.heatmap import GRID_WIDTH, LEFT, TOP, render_heatmap

    for steps, blocks in ((10, 6), (50, 57)):
        rows = [[None] * blocks] + [[10 ** -(1 + (s * blocks + b) % 3) for b in range(blocks)] for s in range(steps - 1)]
        image = np.asarray(render_heatmap({"family": "flux", "blocks": list(range(blocks)), "block_rel_l1": rows}))
        assert image.shape[1] == LEFT + GRID_WIDTH + 24 and image.shape[0] >= 300
        background = image[0, 0]
        step_labels = image[TOP:, : LEFT - 4]
        below_grid = image[-120:, LEFT:LEFT + GRID_WIDTH]
        assert (step_labels != background).any(axis=-1).sum() > 50          # text drawn there
        assert len({tuple(p) for p in below_grid.reshape(-1, 3)}) > 100      # the colour scale's gradient
        assert not math.isnan(float(image.mean()))
