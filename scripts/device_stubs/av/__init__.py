"""Stand-in for PyAV on the GPU machine, whose image lacks it (its wheel, 36 MB, does not fit in
what a device call carries). ComfyUI's API modules import PyAV's classes at import time
(`from av.video.reformatter import ColorTrc`, `ColorTrc.BT709` as a dict key) but only decode or
encode video in nodes the benchmarks never run, so any `av` submodule, class or attribute is a
placeholder class here. Put on PYTHONPATH on the device only (scripts/device_bundle.sh)."""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

__version__ = "0.0.0+stub"


class Placeholder(type):
    """A class whose every attribute is another placeholder class (the same one each time)."""

    def __getattr__(cls, name: str) -> "Placeholder":
        if name.startswith("__"):
            raise AttributeError(name)
        value = Placeholder(name, (), {})
        setattr(cls, name, value)
        return value


class PlaceholderModule(types.ModuleType):
    """A module whose every attribute is a placeholder class."""

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("__"):
            raise AttributeError(name)
        value = Placeholder(name, (), {})
        setattr(self, name, value)
        return value


class SubmoduleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes any `av.*` submodule a placeholder module (a package, so deeper imports work too)."""

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(__name__ + "."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return PlaceholderModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []


sys.meta_path.insert(0, SubmoduleFinder())
sys.modules[__name__].__class__ = PlaceholderModule
