"""Leaves every room may use: the pack's logger, error containment, tensor measures, GPU reads
that do not stall, image quality figures. Imports nothing of the pack or of ComfyUI."""
