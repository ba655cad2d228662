"""How the engine attaches to ComfyUI: the cloned model's block hooks and wrappers, what they read
from the guider and the model call, the whole-model levels, compiled blocks, the schedule match."""
