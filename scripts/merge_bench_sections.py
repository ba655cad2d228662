"""Joins bench/calibrated.py outputs of one variant run one family each (scripts/device_calibrated.sh)
into one file: the first file's header, then each file's family section, in the order given.

    python3 scripts/merge_bench_sections.py OUT.md cfg1_flux.md cfg1_wan.md cfg1_hunyuan_video.md
"""
from __future__ import annotations

import sys
from pathlib import Path


def merge(out: Path, parts: list[Path]) -> None:
    texts = [p.read_text() for p in parts]
    header = texts[0][:texts[0].index("\n## ")]
    sections = [t[t.index("\n## "):].strip("\n") for t in texts]
    out.write_text(header.rstrip("\n") + "\n\n" + "\n\n".join(sections) + "\n")


if __name__ == "__main__":
    merge(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
