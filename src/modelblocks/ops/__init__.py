"""The op library. Every module in this package that does not start with '_' is an op file and
is imported on first use of the registry; see `_TEMPLATE.py` for the shape of one."""

from __future__ import annotations

import importlib
import pkgutil

_loaded = False


def _load_op_modules() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "registry":
            importlib.import_module(f"{__name__}.{info.name}")
