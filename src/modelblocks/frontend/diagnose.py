"""Turn a model that fails on its example inputs into an error a user can act on.

When torch.export fails, we run the model once more in plain eager mode, with hooks that track
which submodule is running. If eager fails too, the inputs do not fit the model (a wrong
`--input-shape`, a wrong channel count, ...): the error names the input, the submodule that
failed, the user's source line, and the shape the model's first layer seems to expect.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import traceback
import warnings
from typing import Sequence

import torch

from ..errors import InputError

_TORCH_DIR = os.path.dirname(torch.__file__)
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def quiet_torch():
    """Silence torch.export's own logging, warnings and stderr dumps (partial graphs): we report
    failures ourselves, in the user's terms."""
    loggers = [logging.getLogger("torch")] + [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)
                                              if n.startswith("torch.")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def shape_str(shape) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def user_frame(tb) -> str:
    """'file.py:line' of the innermost traceback frame in the user's code (not torch, not us)."""
    found = ""
    for frame in traceback.extract_tb(tb):
        path = frame.filename
        if path.startswith(_TORCH_DIR) or path.startswith(_OWN_DIR) or path.startswith("<"):
            continue
        found = f"{os.path.basename(path)}:{frame.lineno}"
    return found


def expected_input(module: torch.nn.Module) -> str | None:
    """The input a layer takes, in words, e.g. '[N, 3, H, W] (Conv2d with in_channels=3)'."""
    name = type(module).__name__
    nn = torch.nn
    if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
        return f"[N, {module.in_channels}, L] ({name} with in_channels={module.in_channels})"
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return f"[N, {module.in_channels}, H, W] ({name} with in_channels={module.in_channels})"
    if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
        return f"[N, {module.in_channels}, D, H, W] ({name} with in_channels={module.in_channels})"
    if isinstance(module, nn.Linear):
        return f"[..., {module.in_features}] ({name} with in_features={module.in_features})"
    if isinstance(module, nn.Embedding):
        return (f"integer indices (--input-dtype int64) with values in [0, {module.num_embeddings}) "
                f"({name} with num_embeddings={module.num_embeddings})")
    if isinstance(module, nn.RNNBase):
        layout = "[N, T, {}]" if module.batch_first else "[T, N, {}]"
        return f"{layout.format(module.input_size)} ({name} with input_size={module.input_size}, " \
               f"batch_first={module.batch_first})"
    if isinstance(module, nn.BatchNorm1d):
        return f"[N, {module.num_features}] or [N, {module.num_features}, L] ({name} with num_features={module.num_features})"
    if isinstance(module, nn.BatchNorm2d):
        return f"[N, {module.num_features}, H, W] ({name} with num_features={module.num_features})"
    if isinstance(module, nn.LayerNorm):
        dims = ", ".join(str(d) for d in module.normalized_shape)
        return f"[..., {dims}] ({name} with normalized_shape={tuple(module.normalized_shape)})"
    if isinstance(module, nn.MultiheadAttention):
        return f"[..., {module.embed_dim}] ({name} with embed_dim={module.embed_dim})"
    return None


def first_layer(model: torch.nn.Module) -> tuple[str, torch.nn.Module, str] | None:
    """The first registered layer whose expected input we can describe."""
    for name, module in model.named_modules():
        text = expected_input(module)
        if text is not None:
            return name, module, text
    return None


def check_runs(model: torch.nn.Module, example_inputs: Sequence[torch.Tensor]) -> None:
    """Run `model` eagerly on the example inputs; raise InputError explaining why if it fails."""
    stack: list[tuple[str, torch.nn.Module, tuple]] = []
    handles = []

    def pre(name):
        def hook(module, args):
            stack.append((name, module, args))
        return hook

    def post(module, args, output):
        if stack:
            stack.pop()

    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(pre(name)))
        handles.append(module.register_forward_hook(post))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model(*example_inputs)
    except Exception as exc:  # any failure of the user's forward is what we explain here
        raise explain_input_mismatch(model, example_inputs, exc, stack) from None
    finally:
        for h in handles:
            h.remove()


def explain_input_mismatch(model, example_inputs, exc: Exception, stack) -> InputError:
    shapes = ", ".join(f"input {i}: {shape_str(x.shape)} {str(x.dtype).replace('torch.', '')}"
                       for i, x in enumerate(example_inputs))
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    lines = [f"the model does not run on the given example inputs ({shapes}):",
             f"  {type(exc).__name__}: {first}"]
    place = user_frame(exc.__traceback__)
    failing = [(n, m, a) for n, m, a in stack if n]  # the root module is the model itself
    if failing:
        name, module, args = failing[-1]
        got = ""
        if args and isinstance(args[0], torch.Tensor):
            which = [i for i, x in enumerate(example_inputs) if args[0] is x]
            got = f", which received {'input ' + str(which[0]) if which else 'a tensor'} of shape {shape_str(args[0].shape)}"
        lines.append(f"  raised in module '{name}' ({type(module).__name__}){got}"
                     + (f", called at {place}" if place else ""))
    elif place:
        lines.append(f"  raised at {place}")
    first_l = first_layer(model)
    if first_l is not None:
        name, module, expect = first_l
        lines.append(f"  the model's first layer '{name}' seems to expect input of shape {expect}")
    lines.append("What to change: give example inputs with the shape and dtype the model was trained on "
                 "(CLI: --input-shape, --input-dtype).")
    return InputError("\n".join(lines))
