"""The pack's logger: every message carries the `[dit-cache]` prefix users grep for."""
import logging

PREFIX = "[dit-cache]"


def get_logger(name: str) -> logging.LoggerAdapter:
    """A logger under `dit_cache.<name>` whose messages start with the pack's prefix."""
    return _PrefixAdapter(logging.getLogger(f"dit_cache.{name.rsplit('.', 1)[-1]}"), {})


class _PrefixAdapter(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return f"{PREFIX} {msg}", kwargs
