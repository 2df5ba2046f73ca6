"""Load what the command line names: `model.py:ClassName` + a weights file, or a saved ExportedProgram.

Every problem with the user's files becomes a `modelblocks.errors.InputError` (or `ExportError`)
whose message says what is wrong and what to do, never a traceback from deep inside torch.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import pickle
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import ExportError, InputError
from .diagnose import quiet_torch, shape_str, user_frame

DTYPES = {"float32": torch.float32, "int64": torch.int64, "int32": torch.int32}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class LoadedModel:
    """A model ready for `modelblocks.compile`: an nn.Module (eval mode) or an ExportedProgram."""

    model: Any
    example_inputs: tuple[torch.Tensor, ...]
    source: str  # what the user named, for messages
    notes: list[str] = field(default_factory=list)  # things the user should know (e.g. keys renamed)


# -- the model spec ---------------------------------------------------------------------------------

def parse_model_spec(spec: str) -> tuple[Path, str | None]:
    """'path/model.py:ClassName' -> (path, 'ClassName'); 'model.py' or 'net.pt2' -> (path, None)."""
    path, sep, cls = spec.rpartition(":")
    if sep and _IDENT.match(cls) and path:
        return Path(path), cls
    if sep and path.endswith(".py"):
        raise InputError(f"'{cls}' in '{spec}' is not a Python class name; write model.py:ClassName")
    return Path(spec), None


def is_exported_program_file(path: Path) -> bool:
    if path.suffix in (".pt2", ".ep"):
        return True
    if path.suffix == ".py" or not path.is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("serialized_exported_program.json") or "/models/" in n for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        hint = ""
        parent = path.parent if str(path.parent) else Path(".")
        if parent.is_dir():
            similar = sorted(p.name for p in parent.iterdir() if p.suffix == path.suffix and p.is_file())[:8]
            if similar:
                hint = f" (files with the same extension in {parent}: {', '.join(similar)})"
        raise InputError(f"{what} not found: {path}{hint}")
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, expected a file")


# -- Python model files -----------------------------------------------------------------------------

def import_file(path: Path):
    """Import a Python file as a module, with its folder on sys.path so sibling imports work."""
    _require_file(path, "model file")
    if path.suffix != ".py":
        raise InputError(f"model file {path} is not a .py file; write model.py:ClassName, or pass a .pt2 "
                         "file saved with torch.export.save")
    path = path.resolve()
    # import it under its own name (pickles refer to classes as model.Net), unless that name is taken
    name = path.stem
    if not _IDENT.match(name) or not _name_is_free(name, path):
        name = f"modelblocks_user_{abs(hash(str(path)))}"
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pickled models refer to their classes by module name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise InputError(f"{path.name}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:  # the user's module-level code failed: show where
        del sys.modules[name]
        place = user_frame(exc.__traceback__) or path.name
        raise InputError(f"importing {path.name} failed at {place}: {type(exc).__name__}: {exc}") from None
    return module


def _name_is_free(name: str, path: Path) -> bool:
    existing = sys.modules.get(name)
    if existing is not None:
        return getattr(existing, "__file__", None) == str(path)
    if name in sys.stdlib_module_names:
        return False
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return True
    return spec is None or spec.origin == str(path)


def module_classes(module) -> list[str]:
    """nn.Module subclasses defined in (not imported into) the module, in file order."""
    found = []
    for n, obj in vars(module).items():
        if inspect.isclass(obj) and issubclass(obj, torch.nn.Module) and obj.__module__ == module.__name__:
            try:
                line = inspect.getsourcelines(obj)[1]
            except (OSError, TypeError):
                line = 0
            found.append((line, n))
    return [n for _, n in sorted(found)]


def find_class(module, path: Path, class_name: str | None) -> type:
    classes = module_classes(module)
    if class_name is None:
        if len(classes) == 1:
            return getattr(module, classes[0])
        if not classes:
            raise InputError(f"{path.name} defines no torch.nn.Module subclass")
        raise InputError(f"{path.name} defines several models ({', '.join(classes)}); "
                         f"name one: {path}:{classes[0]}")
    obj = getattr(module, class_name, None)
    if obj is None:
        found = ", ".join(classes) if classes else "none"
        raise InputError(f"class '{class_name}' not found in {path.name}. nn.Module classes defined there: {found}")
    if not (inspect.isclass(obj) and issubclass(obj, torch.nn.Module)):
        raise InputError(f"'{class_name}' in {path.name} is a {type(obj).__name__}, not a torch.nn.Module subclass"
                         + (f" (nn.Module classes there: {', '.join(classes)})" if classes else ""))
    return obj


def parse_init_args(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--init-args is not valid JSON ({exc.msg} at column {exc.colno}): {text}\n"
                         "Example: --init-args '{\"num_classes\": 6}'") from None
    if not isinstance(value, dict):
        raise InputError(f"--init-args must be a JSON object of constructor arguments, got {type(value).__name__}. "
                         "Example: --init-args '{\"num_classes\": 6}'")
    return value


def construct(cls: type, kwargs: dict) -> torch.nn.Module:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            raise InputError(f"cannot construct {cls.__name__}{signature} with --init-args {json.dumps(kwargs)}: "
                             f"{exc}") from None
    try:
        model = cls(**kwargs)
    except Exception as exc:  # the user's constructor failed: show where and the signature
        place = user_frame(exc.__traceback__)
        sig = f"{cls.__name__}{signature}" if signature is not None else cls.__name__
        raise InputError(f"constructing {sig} failed{' at ' + place if place else ''}: "
                         f"{type(exc).__name__}: {exc}") from None
    return model


# -- weights ----------------------------------------------------------------------------------------

class _MainAliasUnpickler(pickle.Unpickler):
    """Unpickler that finds classes pickled from a training script (`__main__.Net`) in the model file."""

    user_module = None

    def find_class(self, module, name):
        if module == "__main__" and self.user_module is not None and hasattr(self.user_module, name):
            return getattr(self.user_module, name)
        return super().find_class(module, name)


class _PickleModule:
    """What torch.load's `pickle_module` argument needs."""

    def __init__(self, user_module):
        outer = user_module

        class Unpickler(_MainAliasUnpickler):
            user_module = outer

        self.Unpickler = Unpickler
        self.__name__ = "modelblocks_pickle"

    def load(self, file, **kwargs):
        return self.Unpickler(file, **kwargs).load()


_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")


def load_state_dict(path: Path, *, trust_pickle: bool = False, user_module=None) -> tuple[dict, list[str]]:
    """Read a weights file: a state_dict, a checkpoint dict holding one, or (with trust_pickle) a
    whole pickled nn.Module. Returns the state_dict and notes for the user."""
    _require_file(path, "weights file")
    notes: list[str] = []
    try:
        if trust_pickle:
            obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_PickleModule(user_module))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        blocked = re.search(r"unsupported GLOBAL (\S+) whose module (\S+) is blocked", text)
        if not trust_pickle and found:
            raise InputError(
                f"{path.name} holds pickled Python objects (here {found.group(1)}: a whole model saved with "
                "torch.save(model)?), not a plain state_dict. Loading it executes code from the file: if you "
                "trust the file, pass --trust-pickle; better, save model.state_dict() instead") from None
        if not trust_pickle and blocked:  # os.system, subprocess, builtins.eval, ...: never a model
            raise InputError(
                f"{path.name} refers to {blocked.group(1)}, which is not part of any model: loading it would run "
                "that code. ModelBlocks did not run it. Do not pass --trust-pickle for this file unless you know "
                "exactly what it does; ask for a plain state_dict (model.state_dict()) instead") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        reason = detail.group(1).strip() if detail else _first_line(exc)
        raise InputError(f"cannot read weights file {path}: not a file written by torch.save ({reason})") from None
    except Exception as exc:  # a truncated or foreign file makes torch.load raise almost anything (KeyError, ...)
        raise InputError(f"cannot read weights file {path}: not a complete file written by torch.save "
                         f"({type(exc).__name__}: {_first_line(exc)})") from None

    if isinstance(obj, torch.nn.Module):
        notes.append(f"{path.name} is a pickled {type(obj).__name__}; using its state_dict")
        obj = obj.state_dict()
    elif isinstance(obj, dict) and not _is_tensor_dict(obj):
        for key in _CHECKPOINT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, torch.nn.Module):
                inner = inner.state_dict()
            if isinstance(inner, dict) and _is_tensor_dict(inner):
                notes.append(f"using the '{key}' entry of the checkpoint {path.name}")
                obj = inner
                break
        else:
            keys = ", ".join(repr(k) for k in list(obj)[:10])
            raise InputError(f"{path.name} is a dict but not a state_dict, and has no 'state_dict' or "
                             f"'model_state_dict' entry (its keys: {keys})")
    if not isinstance(obj, dict):
        raise InputError(f"{path.name} holds a {type(obj).__name__}, expected a state_dict (a dict of tensors)")
    return dict(obj), notes


def _is_tensor_dict(d: dict) -> bool:
    return bool(d) and all(isinstance(k, str) for k in d) and \
        all(isinstance(v, torch.Tensor) for v in d.values() if not isinstance(v, (int, float)))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _strip_prefix(state: dict, expected: set[str], notes: list[str]) -> dict:
    """Undo the key prefixes DataParallel ('module.') and torch.compile ('_orig_mod.') add."""
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in expected):
            notes.append(f"removed the '{prefix}' prefix from the weight names")
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def apply_state_dict(model: torch.nn.Module, state: dict, source: str, notes: list[str]) -> None:
    own = model.state_dict()
    state = _strip_prefix(state, set(own), notes)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
                  if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        lines = [f"the weights in {source} do not match the model {type(model).__name__}:"]

        def few(items):
            return ", ".join(items[:5]) + (f", ... ({len(items)} in all)" if len(items) > 5 else "")

        if missing:
            lines.append(f"  missing keys (in the model, not in the file): {few(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys (in the file, not in the model): {few(unexpected)}")
        if mismatched:
            lines.append("  shape mismatches: " + few([f"{k}: file {shape_str(a)} vs model {shape_str(b)}"
                                                       for k, a, b in mismatched]))
        lines.append("What to change: construct the model with the arguments it was trained with (--init-args), "
                     "or pick the matching class")
        raise InputError("\n".join(lines))
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # e.g. a custom load hook of the user's model
        raise InputError(f"loading the weights from {source} failed: {_first_line(exc)}") from None


# -- example inputs ---------------------------------------------------------------------------------

def parse_shape(text: str) -> tuple[int, ...]:
    parts = [p for p in re.split(r"[,x\s]+", text.strip().strip("[]()")) if p]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"--input-shape '{text}' is not a list of integers; write e.g. 1,3,32,32") from None
    if not dims:
        raise InputError(f"--input-shape '{text}' is empty; write e.g. 1,3,32,32")
    if any(d <= 0 for d in dims):
        raise InputError(f"--input-shape '{text}' has a dimension <= 0; every dimension must be positive")
    return dims


def parse_dtypes(names: Sequence[str] | None, count: int) -> list[torch.dtype]:
    names = list(names or [])
    for n in names:
        if n not in DTYPES:
            raise InputError(f"--input-dtype {n} is not supported; choose one of {', '.join(DTYPES)}")
    if not names:
        return [torch.float32] * count
    if len(names) != count:
        raise InputError(f"{len(names)} --input-dtype given for {count} --input-shape; give one per input, "
                         "in the same order")
    return [DTYPES[n] for n in names]


def make_inputs(shapes: Sequence[tuple[int, ...]], dtypes: Sequence[torch.dtype], seed: int = 0) -> tuple:
    from ..quant.arith import INT32_MAX  # noqa: PLC0415

    gen = torch.Generator().manual_seed(seed)
    inputs = []
    for k, (shape, dtype) in enumerate(zip(shapes, dtypes)):
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > INT32_MAX:  # before allocating it: the C could not count it, no MCU could hold it
            raise InputError(f"input {k} of shape {list(shape)} would take {nbytes:,} bytes, more than the 2**31 - 1 "
                             "the generated C can count (int32_t). What to change: give the deployment shape "
                             "(--input-shape)")
        if dtype.is_floating_point:
            inputs.append(torch.randn(shape, generator=gen, dtype=dtype))
        else:
            inputs.append(torch.zeros(shape, dtype=dtype))  # valid indices for any embedding
    return tuple(inputs)


# -- putting it together ----------------------------------------------------------------------------

def load_python_model(spec: str, weights: str | None, input_shapes: Sequence[str], input_dtypes=None,
                      init_args: str | None = None, trust_pickle: bool = False) -> LoadedModel:
    path, class_name = parse_model_spec(spec)
    if not input_shapes:
        raise InputError(f"--input-shape is required for {path.name} (e.g. --input-shape 1,3,32,32; repeat it "
                         "for a model with several inputs)")
    shapes = [parse_shape(s) for s in input_shapes]
    dtypes = parse_dtypes(input_dtypes, len(shapes))
    kwargs = parse_init_args(init_args)
    module = import_file(path)
    cls = find_class(module, path, class_name)
    model = construct(cls, kwargs)
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"{cls.__name__}(...) did not return an nn.Module")
    notes: list[str] = []
    if weights:
        wpath = Path(weights)
        state, notes = load_state_dict(wpath, trust_pickle=trust_pickle, user_module=module)
        apply_state_dict(model, state, wpath.name, notes)
    else:
        notes.append("no --weights given: compiling the model with its freshly initialised weights")
    model.eval()
    return LoadedModel(model, make_inputs(shapes, dtypes), spec, notes)


def load_exported_program(path: Path, input_shapes: Sequence[str] = (), input_dtypes=None) -> LoadedModel:
    _require_file(path, "exported program")
    try:
        with quiet_torch():  # torch logs its own traceback of a bad file; ours says it in one line
            ep = torch.export.load(str(path))
    except Exception as exc:  # torch.export.load raises many types for a bad file
        raise InputError(f"cannot load {path} as a torch.export program (saved with torch.export.save): "
                         f"{type(exc).__name__}: {_first_line(exc)}") from None
    placeholders = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    user_inputs = [s.arg.name for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    examples = []
    for k, name in enumerate(user_inputs):
        val = placeholders[name].meta.get("val")
        if not isinstance(val, torch.Tensor):
            raise InputError(f"input {k} ('{name}') of {path.name} is not a tensor ({type(val).__name__})")
        dynamic = [i for i, d in enumerate(val.shape) if not isinstance(d, int)]
        if dynamic:
            raise ExportError(
                f"{path.name} was exported with dynamic shapes: input {k} ('{name}') has dynamic dimension(s) "
                f"{', '.join(f'{i} ({val.shape[i]})' for i in dynamic)}. ModelBlocks compiles static shapes only. "
                "What to change: export again without dynamic_shapes, with the exact deployment input shape")
        examples.append((tuple(int(d) for d in val.shape), val.dtype))
    if input_shapes:
        given = [parse_shape(s) for s in input_shapes]
        if len(given) != len(examples) or any(g != e[0] for g, e in zip(given, examples)):
            raise InputError(f"--input-shape {' '.join(','.join(map(str, g)) for g in given)} does not match "
                             f"{path.name}, whose inputs have shape(s) "
                             f"{', '.join(shape_str(e[0]) for e in examples)} (the shapes are fixed at export; "
                             "you can leave --input-shape out)")
    if input_dtypes:
        given_dt = parse_dtypes(input_dtypes, len(examples))
        for k, (g, e) in enumerate(zip(given_dt, examples)):
            if g != e[1]:
                raise InputError(f"--input-dtype for input {k} is {str(g).replace('torch.', '')} but {path.name} "
                                 f"expects {str(e[1]).replace('torch.', '')}")
    inputs = make_inputs([s for s, _ in examples], [d for _, d in examples])
    return LoadedModel(ep, inputs, str(path))


def load_onnx_model(path: Path, input_shapes: Sequence[str] = (), input_dtypes=None) -> LoadedModel:
    """An .onnx file, with example inputs of its declared shapes; `--input-shape` fixes dynamic
    dimensions (and must agree with the static ones)."""
    from .onnx_reference import graph_inputs  # noqa: PLC0415
    from .onnx_import import load_model as read_onnx  # noqa: PLC0415

    _require_file(path, "ONNX model")
    proto, _label = read_onnx(path)
    declared = graph_inputs(proto)
    given = [parse_shape(s) for s in input_shapes]
    if given and len(given) != len(declared):
        raise InputError(f"{len(given)} --input-shape given, but {path.name} takes {len(declared)} input(s) "
                         f"({', '.join(i.name for i in declared)}); give one per input, in that order")
    shapes = []
    for k, spec in enumerate(declared):
        dims = spec.dims
        if given:
            shape = given[k]
            fixed = [d for d in dims if isinstance(d, int) and d > 0]
            if len(shape) != len(dims) or any(isinstance(d, int) and d > 0 and d != s for d, s in zip(dims, shape)):
                raise InputError(f"--input-shape {','.join(map(str, shape))} does not match input '{spec.name}' of "
                                 f"{path.name}, declared as [{', '.join(map(str, dims))}]"
                                 + (" (its static dimensions must stay as they are)" if fixed else ""))
        else:
            if any(not (isinstance(d, int) and d > 0) for d in dims):
                raise InputError(f"input '{spec.name}' of {path.name} has dynamic dimensions "
                                 f"[{', '.join(map(str, dims))}]: give the deployment shape with --input-shape, "
                                 f"e.g. --input-shape {','.join(str(d) if isinstance(d, int) and d > 0 else '1' for d in dims)}")
            shape = tuple(dims)
        shapes.append(shape)
    if input_dtypes:
        wanted = parse_dtypes(input_dtypes, len(declared))
        for spec, dtype in zip(declared, wanted):
            if str(dtype).replace("torch.", "") != spec.dtype.name:
                raise InputError(f"--input-dtype {str(dtype).replace('torch.', '')} does not match input '{spec.name}' "
                                 f"of {path.name}, which is {spec.dtype.name} (you can leave --input-dtype out)")
    dtypes = []
    for spec in declared:
        if spec.dtype.kind == "f":
            dtypes.append(torch.float32)
        elif spec.dtype.kind in "iu":
            dtypes.append(torch.int64 if spec.dtype.itemsize == 8 else torch.int32)
        elif spec.dtype.kind == "b":
            dtypes.append(torch.bool)
        else:
            raise InputError(f"input '{spec.name}' of {path.name} is {spec.dtype.name}, which ModelBlocks cannot feed")
    return LoadedModel(str(path), make_inputs(shapes, dtypes), str(path))


def load_model(spec: str, weights: str | None = None, input_shapes: Sequence[str] = (), input_dtypes=None,
               init_args: str | None = None, trust_pickle: bool = False) -> LoadedModel:
    """Entry point for the CLI: an .onnx file, a .pt2 ExportedProgram or a model.py[:ClassName] plus weights."""
    path, class_name = parse_model_spec(spec)
    if class_name is None and path.suffix.lower() == ".onnx":
        if weights:
            raise InputError(f"{path.name} is an ONNX model that already holds its weights; drop --weights")
        if init_args:
            raise InputError(f"{path.name} is an ONNX model; --init-args only applies to model.py:Class")
        return load_onnx_model(path, input_shapes, input_dtypes)
    if class_name is None and is_exported_program_file(path):
        if weights:
            raise InputError(f"{path.name} is an exported program that already holds its weights; drop --weights")
        if init_args:
            raise InputError(f"{path.name} is an exported program; --init-args only applies to model.py:Class")
        return load_exported_program(path, input_shapes, input_dtypes)
    if class_name is None and path.suffix in (".pth", ".pt", ".ckpt", ".bin"):
        raise InputError(f"{path.name} is not a model definition: name the Python class and pass the weights "
                         f"separately, e.g. modelblocks compile model.py:Net --weights {path.name} "
                         "--input-shape 1,3,32,32 -o out/")
    return load_python_model(spec, weights, input_shapes, input_dtypes, init_args, trust_pickle)
