"""The run engine: a node's CacheEngine and the SamplingRun it makes per sampling run (the step
clock and decision, the streams' caches, block dispatch, output reuse, the report). Imports no
ComfyUI and, of the adapters, only their base."""
