"""Errors that ModelBlocks raises for the user's input.

Every error names the cause and, where known, the place: the op, the module path (`scope`),
the user's source line, or the file. Code that finds bad input raises one of these instead of
letting a traceback escape from deep inside torch or NumPy.
"""

from __future__ import annotations


class ModelBlocksError(Exception):
    """Base class: a problem with the model or the options the user gave."""


class UnsupportedOpError(ModelBlocksError):
    """The model uses an op that ModelBlocks has no registry entry for."""


class ExportError(ModelBlocksError):
    """torch.export could not capture the model (dynamic shapes, data-dependent control flow)."""


class GraphError(ModelBlocksError):
    """The IR graph broke an invariant; the message names the node and the rule."""


class InputError(ModelBlocksError):
    """Wrong command-line or API input: a shape, a file, a class, a state_dict."""


class CompileError(ModelBlocksError):
    """The C compiler rejected generated code (a ModelBlocks bug: please report it)."""


class ToolchainError(ModelBlocksError):
    """A tool ModelBlocks needs for this command is not installed (the message says how to get it)."""


class SimulationError(ModelBlocksError):
    """The program failed in QEMU: a CPU fault, a harness error or a time-out."""


class NonFiniteWeightsWarning(UserWarning):
    """Weights hold NaN or Inf and compile(allow_nonfinite=True) compiles them anyway."""


def where(scope: str = "", source: str = "", op: str = "") -> str:
    """Format the place of a problem as ' (op X, module a.b, file.py:12)'."""
    parts = []
    if op:
        parts.append(f"op {op}")
    if scope:
        parts.append(f"module '{scope}'")
    if source:
        parts.append(f"at {source}")
    return f" ({', '.join(parts)})" if parts else ""
