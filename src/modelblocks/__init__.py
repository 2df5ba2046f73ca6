"""ModelBlocks: compile trained PyTorch models into small, dependency-free C99 for
microcontrollers, and prove the C computes what PyTorch computes."""

__version__ = "0.1.0"

from .api import CompiledModel, compile, load, report, simulate, verify  # noqa: E402

__all__ = ["CompiledModel", "compile", "load", "report", "simulate", "verify", "__version__"]
