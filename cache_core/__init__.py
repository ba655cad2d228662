"""DiT Cache's engine: everything that is not UI.

`adapters` know where each model family's blocks are; `policies` decide per step whether to
compute, reuse or forecast; `predictors` say what stands in for a skipped block; `state` holds
one sampling run's data; `engine` runs a block through all of that; `attach` hooks it into a
cloned `ModelPatcher`.
"""
