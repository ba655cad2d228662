"""The DiT Cache node's named speeds: what it runs per family and speed."""
