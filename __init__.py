"""DiT Cache: training-free feature caching for diffusion transformers in ComfyUI."""
