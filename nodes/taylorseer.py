"""TaylorSeer Forecast: between full computes, forecast features by a Taylor series."""
from comfy_api.latest import io

from ..cache_core.policies import TaylorForecastSchedule
from ..cache_core.policies.taylorseer import FORECASTERS
from .apply import apply_cache
from .common_inputs import CATEGORY, cache_device_input, cached_model_output, model_input, window_inputs


class TaylorSeerForecast(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DiTCacheTaylorSeerForecast",
            display_name="TaylorSeer Forecast",
            category=CATEGORY,
            description="Computes every `interval` steps and, in between, predicts each cached feature from its "
                        "finite-difference derivatives instead of reusing it unchanged.",
            inputs=[
                model_input(),
                io.Int.Input("interval", default=4, min=1, max=20,
                             tooltip="Compute all blocks every N steps; forecast the others. Start at 4 for 28-50 "
                                     "steps; 5-6 for more speed."),
                io.Int.Input("warmup_steps", default=3, min=0, max=100,
                             tooltip="Steps computed fully at the start (the derivatives need a few). Start at 3."),
                io.Int.Input("order", default=1, min=0, max=3,
                             tooltip="Taylor order: 0 = plain reuse, 1 = linear (the start: on the reference models "
                                     "it beat 2 at every interval, by 4-5 dB at 28 steps), 2 = quadratic."),
                io.Float.Input("guard_tolerance", default=0.0, min=0.0, max=10.0, step=0.01,
                               tooltip="0 = off. Above 0, each forecast step computes the first block, scales the "
                                       "forecast to what that block really did (0 = plain reuse .. 1 = the full "
                                       "Taylor extrapolation) and, if the first block is still off by more than "
                                       "this (relative error), computes the step in full (a fallback). Costs one "
                                       "block per forecast step; use it with a long interval (6) and let the "
                                       "tolerance set the speed: 0.05 is careful, 0.2 fast (see README)."),
                *window_inputs(),
                cache_device_input(),
                io.Combo.Input("forecaster", options=list(FORECASTERS), default="taylor",
                               tooltip="taylor: the Taylor series of `order`. foca: forecast then calibrate (FoCa): "
                                       "the quadratic through the last three computed steps, corrected by a "
                                       "trapezoidal step, which halves its curvature term; `order` is then unused. "
                                       "See the README for which wins where."),
            ],
            outputs=[cached_model_output()],
            hidden=[io.Hidden.unique_id],
        )

    @staticmethod
    def policy(adapter, interval: int, warmup_steps: int, order: int, guard_tolerance: float,
               forecaster: str = "taylor") -> TaylorForecastSchedule:
        """The node's policy (DiT Cache builds it the same way when it picks this node)."""
        return TaylorForecastSchedule(interval, warmup_steps, order, guard_tolerance, forecaster)

    @classmethod
    def execute(cls, model, interval: int, warmup_steps: int, order: int, guard_tolerance: float,
                start_percent: float, end_percent: float, cache_device: str, forecaster: str = "taylor") -> io.NodeOutput:
        policy = cls.policy(None, interval, warmup_steps, order, guard_tolerance, forecaster)
        patched = apply_cache(model, "TaylorSeer", lambda adapter: policy, node_id=cls.hidden.unique_id,
                              start_percent=start_percent, end_percent=end_percent, cache_device=cache_device)
        return io.NodeOutput(patched)
