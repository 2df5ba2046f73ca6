"""The Python API: `compile`, `verify`, `load` and the `CompiledModel` they return."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .backend.c.emitter import CSource, generate_c
from .errors import InputError
from .folders import file_in_the_way, replaced_folder
from .interpreter import bind_inputs
from .interpreter import run as run_graph
from .ir.dtypes import DType
from .ir.graph import Graph
from .ir.serialize import load_graph, save_graph
from .ir.verify import verify as verify_graph
from .metrics import rel_l2
from .passes import ALL_PASSES, PIPELINE, run_passes
from .reports.report import build_report, format_report


class CompiledModel:
    """A model turned into IR and C, with the means to run both and to save them."""

    def __init__(self, graph: Graph, prefix: str = "model", arena_attr: str = "", torch_model=None,
                 arena_alignment: int = 16, quantization: "Quantization | None" = None):
        self.graph = graph
        self.torch_model = torch_model
        self.quantization = quantization  # how the graph was quantized (None: float32)
        self.source: CSource = generate_c(graph, prefix=prefix, arena_attr=arena_attr, arena_alignment=arena_alignment)
        self.report: dict = build_report(graph, self.source)
        self._host = None
        self._canary = None  # the canary debug build (run_debug), built on first use
        self._arena_alignment = arena_alignment
        self._target_builds: dict = {}  # (cpu, opt) -> (TemporaryDirectory or None, TargetBuild)

    @property
    def prefix(self) -> str:
        return self.source.prefix

    @property
    def reference_name(self) -> str:
        """What verify() compares the C with: PyTorch, or onnxruntime for an ONNX model."""
        return getattr(self.torch_model, "reference_name", "PyTorch")

    def run_reference(self, inputs) -> list[np.ndarray]:
        return run_graph(self.graph, inputs)

    def run_c(self, inputs) -> list[np.ndarray]:
        from .targets.host import HostLibrary  # noqa: PLC0415 (needs a C compiler only when used)

        bound = bind_inputs(self.graph, inputs)
        if self._host is None:
            self._host = HostLibrary(self.source, self.graph)
        return self._host.run([bound[n] for n in self.graph.inputs])

    def run_sanitized(self, inputs) -> list[np.ndarray]:
        from .targets.host import run_sanitized  # noqa: PLC0415

        bound = bind_inputs(self.graph, inputs)
        return run_sanitized(self.source, self.graph, [bound[n] for n in self.graph.inputs])

    def run_debug(self, inputs) -> list[np.ndarray]:
        """Run the canary debug build of the C (guard words around every arena tensor, checked after
        every layer); raises targets.canary.CanaryError naming the layer and tensor on a broken guard."""
        from .targets.canary import CanaryModel  # noqa: PLC0415

        bound = bind_inputs(self.graph, inputs)
        if self._canary is None:
            self._canary = CanaryModel(self.graph, prefix=self.prefix, arena_alignment=self._arena_alignment)
        return self._canary.run([bound[n] for n in self.graph.inputs])

    def build_for(self, target: str = "cortex-m7", opt: str = "-O2", workdir: str | Path | None = None):
        """Cross-compile the model with the QEMU simulation harness for a Cortex-M core; the build
        is kept (in `workdir`, or a temporary folder that lives as long as this object)."""
        from .targets.cpus import get_cpu  # noqa: PLC0415
        from .targets.cross import build_for_cpu  # noqa: PLC0415

        cpu = get_cpu(target)
        key = (cpu.name, opt, str(workdir) if workdir else None)
        if key not in self._target_builds:
            tmp = None
            if workdir is None:
                tmp = tempfile.TemporaryDirectory(prefix=f"modelblocks_{cpu.name}_")
                workdir = tmp.name
            self._target_builds[key] = (tmp, build_for_cpu(self.source, self.graph, cpu, workdir, opt))
        return self._target_builds[key][1]

    def simulate(self, input_sets, target: str = "cortex-m7", opt: str = "-O2", workdir: str | Path | None = None,
                 timeout: float = 600.0):
        """Run the model in QEMU on the Cortex-M core `target`, once per input set.

        `input_sets` is one input set (what `run_c` takes: an array, or a list of arrays, one per
        model input) or a list of input sets (a list of lists). Returns a `targets.qemu.Simulation`
        with the outputs per run, exact instruction counts (per run and per layer of the first
        run), the measured stack depth and the ELF's flash and RAM."""
        from .targets.qemu import run_qemu  # noqa: PLC0415

        sets = _input_sets(input_sets)
        bound = [bind_inputs(self.graph, s) for s in sets]
        build = self.build_for(target, opt, workdir)
        return run_qemu(build, self.graph, self.source.profiled, [[b[n] for n in self.graph.inputs] for b in bound],
                        timeout=timeout)

    def save(self, directory: str | Path) -> Path:
        """Write C sources, `model.json` with weights, and `report.json` into `directory`.

        Everything is written into a temporary folder first and moved into place at the end, so a
        failure never leaves a half-written output folder."""
        try:
            with replaced_folder(directory) as tmp:
                self.source.write(tmp)
                save_graph(self.graph, tmp / "ir")
                (tmp / "report.json").write_text(json.dumps(self.report, indent=1) + "\n")
        except OSError as exc:
            raise InputError(f"cannot write the output folder {directory}: {_blocked(Path(directory), exc)}") from None
        return Path(directory)

    def summary(self) -> str:
        return format_report(self.report)

    @property
    def quantize_mode(self) -> str | None:
        """None (float32), "int8" or "int8-weights": decides what the C is checked against."""
        if self.quantization is not None:
            return self.quantization.mode
        if any(t.quant is not None and t.dtype == DType.int8 and not t.is_constant for t in self.graph.tensors.values()):
            return "int8"
        if any(t.quant is not None for t in self.graph.tensors.values()):
            return "int8-weights"
        return None

    def quantization_report(self, inputs, labels=None, float_graph: Graph | None = None):
        """Per-layer SQNR of the int8 graph against the float graph on `inputs` (input sets or an array of
        samples), weight and activation ranges, and top-1 agreement (and accuracies when `labels` given)."""
        from .reports.quantization import quantization_report  # noqa: PLC0415

        if self.quantization is None and float_graph is None:
            raise InputError("this model was not quantized by compile(quantize=...): there is no float graph to compare with")
        return quantization_report(self, inputs, labels)


def _blocked(directory: Path, exc: OSError) -> str:
    """Why a folder cannot be written, in words: an ancestor may be a file."""
    blocker = file_in_the_way(directory)
    return f"{blocker} is a file, not a folder" if blocker else (exc.strerror or str(exc))


QUANTIZE_MODES = ("int8", "int8-weights")


@dataclass
class Quantization:
    """What `compile(quantize=...)` did: the float graph it started from and, for int8, the calibration."""

    mode: str  # "int8" or "int8-weights"
    float_graph: Graph  # int8: with attention decomposed (passes/decompose_attention.py), as calibrated
    int8_of: dict  # float tensor -> its int8 tensor (int8 mode)
    float_nodes: dict  # float graph node -> why it stayed float32
    observer: str = ""  # "" when no calibration ran (a QDQ model's own parameters)
    calibration_sets: int = 0
    ranges: dict | None = None  # float tensor -> observed (min, max) during calibration
    keep_float: tuple = ()


def compile(model, example_inputs: Sequence | None = None, *, name: str = "model", prefix: str | None = None,
            passes: Sequence[str] = PIPELINE, arena_section: str = "", arena_alignment: int = 16,
            quantize: str | None = None, calibration=None, observer: str | None = None,
            keep_float: Sequence[str] = (), sparse: str = "auto", kernels: str = "optimized",
            allow_nonfinite: bool = False, progress=None) -> CompiledModel:
    """Capture `model` (an nn.Module in eval mode, a torch.export ExportedProgram, or an ONNX model: a
    path ending in .onnx or an onnx.ModelProto), optimise its IR and generate C. `example_inputs` is a
    tensor or tuple of tensors with the deployment shapes (optional for ONNX models whose input shapes
    are static).

    `quantize="int8"` quantizes weights and activations (TFLite's int8 scheme), calibrating activation
    ranges on `calibration` (see quant/calibration.py for the forms it takes) with `observer`
    ("minmax", "moving_average", "percentile" or "mse", the default); `keep_float` lists module-path
    globs to keep in float32. `quantize="int8-weights"` stores linear/conv/embedding weights in int8 and keeps
    float32 activations (no calibration needed). `sparse`: "auto" stores a linear / int8 linear layer's
    weight in CSR when that saves flash and instructions (passes/sparsify.py), "off" never, "always"
    whenever a weight is zero (for tests). `kernels`: "optimized" runs each layer on the fastest C kernel
    that fits it (Armv7E-M DSP instructions, im2col, register tiling; passes/select_kernels.py),
    "reference" on the plain portable kernels (the oracle; no scratch buffers). `progress(step, done,
    total)`, when given, hears about each step (the CLI draws it as a progress bar). Weights holding NaN or
    Inf are refused with an InputError naming them, unless `allow_nonfinite=True` (then a warning).

    ONNX QDQ models (QuantizeLinear / DequantizeLinear around activations and on int8 weights, e.g. from
    onnxruntime's `quantize_static(quant_format=QuantFormat.QDQ)`) keep their own scales and zero points:
    `quantize="int8"` needs no calibration (given, it only fills in activations the model leaves
    unquantized; the model's parameters win) and the int8 weights are the model's. `quantize=None` on a QDQ
    model compiles it to int8 as well, with a warning saying so: its Q/DQ rounding (which may even stand
    for a ReLU that onnxruntime's quantizer removed) is part of what the model computes, and dropping it
    for a float32 C would compute another model."""
    import torch  # noqa: PLC0415

    from .frontend.checks import check_sizes  # noqa: PLC0415
    from .frontend.onnx_import import from_onnx, is_onnx_model  # noqa: PLC0415
    from .frontend.torch_export import export_model, from_exported_program  # noqa: PLC0415

    onnx_model = is_onnx_model(model)  # a path ending in .onnx or an onnx.ModelProto
    if onnx_model:
        from .frontend.onnx_reference import OnnxReference  # noqa: PLC0415

        ep, torch_model = None, OnnxReference(model)  # what verify() and simulate() compare with
    elif isinstance(model, torch.export.ExportedProgram):
        ep = model
        torch_model = model.module()
    else:
        if example_inputs is None:
            raise InputError("compile() needs example_inputs for an nn.Module")
        if isinstance(example_inputs, torch.Tensor):
            example_inputs = (example_inputs,)
        _tell(progress, "capturing the model (torch.export)")
        ep = export_model(model, example_inputs)
        torch_model = model
    if isinstance(passes, str) or any(p not in ALL_PASSES for p in passes):
        raise InputError(f"passes must be a sequence of pass names from {list(ALL_PASSES)}, got {passes!r}")
    if arena_section and not re.fullmatch(r"[A-Za-z0-9_.$]+", arena_section):
        raise InputError(f"arena_section {arena_section!r} is not a linker section name (letters, digits, _ . $)")
    if quantize not in (None, *QUANTIZE_MODES):
        raise InputError(f"quantize must be one of {list(QUANTIZE_MODES)} or None, got {quantize!r}")
    if sparse not in ("auto", "off", "always"):
        raise InputError(f"sparse must be 'auto', 'off' or 'always', got {sparse!r}")
    if kernels not in ("optimized", "reference"):
        raise InputError(f"kernels must be 'optimized' or 'reference', got {kernels!r}")
    if isinstance(keep_float, str):
        keep_float = (keep_float,)
    if quantize is None and (calibration is not None or keep_float or observer):
        raise InputError("calibration, observer and keep_float only apply with quantize='int8' or 'int8-weights'")
    if quantize == "int8-weights" and (calibration is not None or observer):
        raise InputError("quantize='int8-weights' keeps activations in float32: it takes no calibration or observer")
    _tell(progress, "building the IR")
    graph = (from_onnx(model, example_inputs, name=name, allow_nonfinite=allow_nonfinite) if onnx_model
             else from_exported_program(ep, name=name, allow_nonfinite=allow_nonfinite))
    check_sizes(graph)
    _tell(progress, "optimising the graph")
    graph = run_passes(graph, passes)
    if onnx_model and quantize is None:
        from .frontend.onnx_qdq import has_overrides  # noqa: PLC0415

        if has_overrides(graph):
            import warnings  # noqa: PLC0415

            warnings.warn("this ONNX model is quantized (QDQ): compiling it to int8 with its own scales and zero "
                          "points (quantize='int8'); its Q/DQ rounding is part of what it computes", stacklevel=2)
            quantize = "int8"
    quantization = _quantize(graph, quantize, calibration, observer, tuple(keep_float), progress) if quantize else None
    graph = quantization.graph if quantization else graph
    if sparse != "off":  # last: it needs the final (quantized) weights
        from .passes import sparsify  # noqa: PLC0415

        graph = sparsify.run(graph, mode=sparse, kernels=kernels)
        verify_graph(graph, after="sparsify")
    from .passes import select_kernels  # noqa: PLC0415

    graph = select_kernels.run(graph, mode=kernels)  # last: variants depend on the final ops and shapes
    verify_graph(graph, after="select_kernels")
    attr = f'__attribute__((section("{arena_section}")))' if arena_section else ""
    _tell(progress, "planning memory and generating C")
    return CompiledModel(graph, prefix=prefix or name, arena_attr=attr,
                         torch_model=torch_model, arena_alignment=arena_alignment,
                         quantization=quantization.info if quantization else None)


@dataclass
class _Quantized:
    graph: Graph
    info: Quantization


def _tell(progress, step: str, done: int = 0, total: int = 1) -> None:
    if progress:
        progress(step, done, total)


def _quantize(graph: Graph, mode: str, calibration, observer: str | None, keep_float: tuple,
              progress=None) -> _Quantized:
    from .passes import decompose_attention  # noqa: PLC0415
    from .passes import quantize as int8_pass  # noqa: PLC0415
    from .quant.calibration import calibrate, calibration_sets  # noqa: PLC0415
    from .quant.observers import DEFAULT_OBSERVER  # noqa: PLC0415

    if mode == "int8-weights":
        from .passes import quantize_weights  # noqa: PLC0415

        from .frontend.onnx_qdq import strip_overrides  # noqa: PLC0415

        result = quantize_weights.run(graph, keep_float=keep_float)
        qgraph = run_passes(strip_overrides(result), ("dead_code", "schedule"))
        return _Quantized(qgraph, Quantization(mode, graph, {}, {}, keep_float=keep_float))
    observer = observer or DEFAULT_OBSERVER
    # before calibration, so that attention's scores and probabilities get calibrated ranges
    decomposed = decompose_attention.run(graph, keep_float)
    graph = decomposed.graph
    verify_graph(graph, after="decompose_attention")
    from .frontend.onnx_qdq import has_overrides, strip_overrides  # noqa: PLC0415

    if calibration is None and has_overrides(graph):  # a QDQ model: its own parameters, no calibration
        sets, params, ranges, observer = [], None, None, ""
    else:
        sets = calibration_sets(calibration, graph)
        params, ranges = calibrate(graph, sets, observer, progress=progress)
    _tell(progress, "quantizing to int8")
    result = int8_pass.run(graph, params, keep_float)
    if result.missing:
        producers = graph.producers()
        names = [f"{n} (module {producers[n].scope})" if n in producers and producers[n].scope else n
                 for n in sorted(result.missing)]
        raise InputError(f"this QDQ model gives no scale and zero point for {len(names)} tensor(s) that int8 needs: "
                         f"{', '.join(names[:12])}{' ...' if len(names) > 12 else ''}. What to change: pass "
                         "calibration data (calibration=...) for them, or quantize those tensors in the model too")
    verify_graph(result.graph, after="quantize")
    qgraph = run_passes(strip_overrides(result.graph), ("dead_code", "schedule"))
    float_nodes = {**result.float_nodes, **decomposed.kept}  # the kept attentions' own reasons
    return _Quantized(qgraph, Quantization(mode, graph, result.int8_of, float_nodes, observer, len(sets),
                                           ranges, keep_float))


def load(directory: str | Path, prefix: str | None = None) -> CompiledModel:
    """A compiled model from a folder written by `save` (or an IR folder / model.json)."""
    graph = load_graph(Path(directory) / "ir" if (Path(directory) / "ir").exists() else directory)
    verify_graph(graph, after="load")
    return CompiledModel(graph, prefix=prefix or graph.name)


def _input_sets(input_sets) -> list[list]:
    """One input set (an array, a list/tuple of arrays, or a dict by input name) or a list of input sets
    (lists, tuples or dicts)."""
    if isinstance(input_sets, (list, tuple)) and input_sets and all(isinstance(s, (list, tuple, Mapping))
                                                                    for s in input_sets):
        return list(input_sets)
    if isinstance(input_sets, (list, tuple)):
        return [list(input_sets)]
    return [input_sets]


@dataclass
class OutputError:
    name: str
    max_abs_c: float  # C vs PyTorch
    rel_l2_c: float
    max_abs_ref: float  # interpreter vs PyTorch
    rel_l2_ref: float
    rel_l2_c_ref: float = 0.0  # C vs interpreter
    exact_c_ref: bool = True  # C bit-identical to the interpreter
    check: str = "exact"  # int8 graphs: what this output can be held to (quant/exactness.py)

    def passes(self, tol: float, quantized: str | None = None) -> bool:
        """Float models: C and interpreter within `tol` of PyTorch. int8: C bit-exact with the int8
        interpreter (PyTorch differs by the quantization error), or as close as quant/exactness.py
        says float parts allow. int8-weights: C within `tol` of the interpreter."""
        from .quant.exactness import passes  # noqa: PLC0415

        if quantized == "int8":
            return passes(self.check, self.exact_c_ref, self.rel_l2_c_ref, tol)
        if quantized:
            return self.rel_l2_c_ref < tol
        return self.rel_l2_c < tol and self.rel_l2_ref < tol


def verify(model, example_inputs=None, *, runs: int = 5, seed: int = 0, compiled: CompiledModel | None = None,
           print_table: bool = True, progress=None) -> list[OutputError]:
    """Run PyTorch, the NumPy interpreter and the host C on `runs` seeded random inputs with the
    example inputs' shapes and dtypes; returns the worst error per output over all runs.
    `progress(step, done, total)` hears about each run."""
    import torch  # noqa: PLC0415

    if isinstance(model, CompiledModel):
        compiled, model = model, model.torch_model
    if isinstance(model, torch.export.ExportedProgram):
        if compiled is None:
            compiled = compile(model)
        if example_inputs is None:
            example_inputs = tuple(model.example_inputs[0]) if model.example_inputs else None
        model = model.module()
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if compiled is None:
        compiled = compile(model, example_inputs)
    if model is None:
        raise InputError("verify() needs the torch model to compare against")
    if example_inputs is None:
        raise InputError("verify() needs example inputs (for their shapes and dtypes)")
    worst: dict[int, list[float]] = {}
    exact: dict[int, bool] = {}
    for run, inputs in enumerate(_seeded_inputs(compiled, example_inputs, runs, seed)):
        _tell(progress, "compiling the C on the host" if run == 0 and compiled._host is None else
              f"{compiled.reference_name}, NumPy reference and host C", run, runs)
        expected = _torch_outputs(model, inputs, compiled, "verify")
        arrays = [x.numpy() for x in inputs]
        got_ref = compiled.run_reference(arrays)
        got_c = compiled.run_c(arrays)
        for k, (e, r, c) in enumerate(zip(expected, got_ref, got_c)):
            e = e.detach().numpy().astype(np.float64)
            row = [float(np.max(np.abs(c - e), initial=0.0)), rel_l2(c, e),
                   float(np.max(np.abs(r - e), initial=0.0)), rel_l2(r, e), rel_l2(c, r)]
            worst[k] = [max(a, b) for a, b in zip(worst.get(k, row), row)]
            exact[k] = exact.get(k, True) and c.shape == r.shape and np.array_equal(c.view(np.uint8), r.view(np.uint8))
    from .quant.exactness import output_checks  # noqa: PLC0415

    checks = output_checks(compiled.graph)
    results = [OutputError(compiled.graph.outputs[k], *vals, exact_c_ref=exact[k], check=checks[k])
               for k, vals in sorted(worst.items())]
    if print_table:
        print(format_verify(results, runs, compiled.quantize_mode))
    return results


def simulate(model, example_inputs=None, *, target: str | Sequence[str] = "cortex-m7", runs: int = 3, seed: int = 0,
             opt: str = "-O2", tol: float = 1e-5, assumptions=None, board=None, workdir: str | Path | None = None,
             compiled: CompiledModel | None = None, print_table: bool = True, progress=None):
    """Compile `model` (unless a CompiledModel is given), run it in QEMU on the Cortex-M core(s)
    `target` ("cortex-m7", a list, or "all") on `runs` seeded random inputs, and check the outputs
    against PyTorch and the NumPy interpreter. Returns a `reports.simulation.SimulationReport` with
    exact instruction counts (total and per layer), flash and RAM from the ELF, the measured stack,
    and latency/energy estimates under `assumptions` (targets.estimates.Assumptions).
    `progress(step, done, total)` hears about each build and QEMU run."""
    import torch  # noqa: PLC0415

    from .reports.simulation import expand_targets, format_simulation, simulate_targets  # noqa: PLC0415
    from .targets.estimates import Assumptions  # noqa: PLC0415

    if isinstance(model, CompiledModel):
        compiled, model = model, model.torch_model
    if isinstance(model, torch.export.ExportedProgram):
        if example_inputs is None and model.example_inputs:
            example_inputs = tuple(model.example_inputs[0])
        if compiled is None:
            compiled = compile(model)
        model = model.module()
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if compiled is None:
        if model is None or example_inputs is None:
            raise InputError("simulate() needs a model and example inputs, or a CompiledModel")
        compiled = compile(model, example_inputs)
    if runs < 1:
        raise InputError(f"runs must be at least 1, got {runs}")
    if example_inputs is None:  # a loaded CompiledModel: shapes and dtypes from the graph
        example_inputs = tuple(torch.from_numpy(np.zeros(compiled.graph.tensors[n].shape, compiled.graph.tensors[n].dtype.numpy))
                               for n in compiled.graph.inputs)
    input_sets, torch_outputs = [], [] if model is not None else None
    for inputs in _seeded_inputs(compiled, example_inputs, runs, seed):
        input_sets.append([x.numpy() for x in inputs])
        if model is not None:
            torch_outputs.append([o.detach().numpy() for o in _torch_outputs(model, inputs, compiled, "simulate")])
    report = simulate_targets(compiled, input_sets, torch_outputs, targets=expand_targets(target), opt=opt, tol=tol,
                              assumptions=assumptions or Assumptions(), board=board, workdir=workdir,
                              progress=progress)
    if print_table:
        print(format_simulation(report))
    return report


def format_verify(results: list[OutputError], runs: int, quantized: str | None = None) -> str:
    lines = [f"verified on {runs} seeded random inputs (worst case{', ' + quantized if quantized else ''}):",
             f"  {'output':<16} {'C max|err|':>12} {'C rel L2':>10} {'ref max|err|':>13} {'ref rel L2':>10} "
             f"{'C vs ref':>10}"]
    for r in results:
        c_ref = "bit-exact" if r.exact_c_ref else f"{r.rel_l2_c_ref:.3e}"
        lines.append(f"  {r.name:<16} {r.max_abs_c:>12.3e} {r.rel_l2_c:>10.3e} {r.max_abs_ref:>13.3e} {r.rel_l2_ref:>10.3e} "
                     f"{c_ref:>10}")
    return "\n".join(lines)


def _seeded_inputs(compiled: CompiledModel, example_inputs, runs: int, seed: int):
    """`runs` random input tuples like the example inputs, the same for a given seed."""
    import torch  # noqa: PLC0415

    gen = torch.Generator().manual_seed(seed)
    for _ in range(runs):
        yield tuple(_random_like(x, gen, _index_bound(compiled.graph, name))
                    for x, name in zip(example_inputs, compiled.graph.inputs))


def _torch_outputs(model, inputs, compiled: CompiledModel, caller: str) -> list:
    import torch  # noqa: PLC0415

    with torch.no_grad():
        out = model(*inputs)
    out = [e for e in torch.utils._pytree.tree_leaves(out) if isinstance(e, torch.Tensor)]
    if len(out) != len(compiled.graph.outputs):
        raise InputError(f"the torch model returns {len(out)} tensors but the compiled model has "
                         f"{len(compiled.graph.outputs)} outputs: {caller}() needs the model that was compiled")
    return out


def _index_bound(graph: Graph, name: str) -> int | None:
    """For an integer input that indexes an embedding table, the table's size (the valid range)."""
    for node in graph.nodes:
        if node.op in ("embedding", "embedding_w8") and name in node.inputs:
            weight = next(graph.tensors[i] for i in node.inputs if i and i != name)
            return weight.shape[0]
    return None


def _random_like(x, gen, index_bound: int | None = None):
    """A random input like the example `x`: normal floats, fair booleans, and integers over the
    embedding table they index (else 0..max of the example)."""
    import torch  # noqa: PLC0415

    if x.dtype.is_floating_point:
        return torch.randn(x.shape, generator=gen, dtype=x.dtype)
    if x.dtype == torch.bool:
        return torch.randint(0, 2, x.shape, generator=gen).bool()
    hi = index_bound or (int(x.max().item()) + 1 if x.numel() else 2)
    return torch.randint(0, max(hi, 2), x.shape, generator=gen, dtype=x.dtype)


# -- the HTML report -------------------------------------------------------------------------------

_simulate = simulate  # report() takes a `simulate` flag


def report(model, example_inputs=None, *, out: str | Path | None = "report.html", board="stm32h723zg",
           simulate: bool = False, runs: int = 3, seed: int = 0, tol: float = 1e-5, estimate: bool = True,
           compiled: CompiledModel | None = None, simulation=None, quantization_data=None,
           command: str | None = None, **compile_options) -> dict:
    """Compile `model` (unless a CompiledModel is given), verify it on `runs` seeded inputs (PyTorch,
    NumPy interpreter, host C and, with `simulate=True`, QEMU on a Cortex-M7), and write one
    self-contained HTML page to `out` (None: write nothing). Returns the page model: the dict the page
    is rendered from (reports/html.py), also what `modelblocks report --json` prints.

    `simulation` reuses a `SimulationReport` already made (its first core), so nothing is simulated
    twice; its runs must use the same `seed`. `quantization_data`: inputs for the per-layer SQNR of a
    quantized model (default: `calibration`, else the seeded inputs). `compile_options` go to `compile`."""
    import torch  # noqa: PLC0415

    from .reports.analyze import analyze_fit, measured_estimates, memory_report  # noqa: PLC0415
    from .reports.html import build_page, write_html  # noqa: PLC0415
    from .reports.verification import compare_stages  # noqa: PLC0415
    from .targets.boards import Board, get_board  # noqa: PLC0415

    board = board if isinstance(board, Board) else get_board(board)
    if runs < 1:
        raise InputError(f"runs must be at least 1, got {runs}")
    if isinstance(model, CompiledModel):
        compiled = model
    if isinstance(model, torch.export.ExportedProgram) and example_inputs is None and model.example_inputs:
        example_inputs = tuple(model.example_inputs[0])
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if compiled is None:
        compiled = compile(model, example_inputs, **compile_options)
    elif compile_options:
        raise InputError(f"report() got compile options {sorted(compile_options)} with an already compiled model")
    if example_inputs is None:  # an ONNX or loaded model: shapes and dtypes from the graph
        example_inputs = tuple(torch.from_numpy(np.zeros(compiled.graph.tensors[n].shape, compiled.graph.tensors[n].dtype.numpy))
                               for n in compiled.graph.inputs)
    if simulate and simulation is None:
        simulation = _simulate(compiled, example_inputs, target="cortex-m7", runs=runs, seed=seed, tol=tol,
                               board=board, print_table=False)
    target = simulation.targets[0] if simulation is not None else None
    if target is not None:  # code and stack measured on the core that ran: no second simulation
        memory = build_report(compiled.graph, compiled.source, measured_estimates(target.simulation))
    else:
        memory = memory_report(compiled, estimate=estimate)
    verification = compare_stages(compiled, compiled.torch_model, example_inputs, runs, seed, tol, target)
    quant = None
    if compiled.quantization is not None:
        data = quantization_data if quantization_data is not None else compile_options.get("calibration")
        if data is None:
            data = [[x.numpy() for x in s] for s in _seeded_inputs(compiled, example_inputs, runs, seed)]
        quant = compiled.quantization_report(data).to_json()
    sim = {**target.to_dict(), "estimates_note": simulation.assumptions.describe()} if target else None
    page = build_page(memory, analyze_fit(memory, board).to_dict(), board.to_dict(), verification, sim, quant,
                      _graph_facts(compiled, command))
    if out is not None:
        write_html(page, out)
    return page


def _graph_facts(compiled: CompiledModel, command: str | None) -> dict:
    """What the page shows that the report dicts do not hold: dtypes, kernel variants, provenance."""
    import datetime  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from . import __version__  # noqa: PLC0415

    g = compiled.graph
    return {
        "inputs": [{"name": n, "shape": list(g.tensors[n].shape), "dtype": g.tensors[n].dtype.value} for n in g.inputs],
        "outputs": [{"name": n, "shape": list(g.tensors[n].shape), "dtype": g.tensors[n].dtype.value} for n in g.outputs],
        "kernels": [node.kernel for node in g.nodes],
        "quantization": compiled.quantize_mode or "float32",
        "version": __version__,
        "date": _report_date(datetime),
        "command": command if command is not None else " ".join([sys.argv[0].rsplit("/", 1)[-1], *sys.argv[1:]]),
    }


def _report_date(datetime) -> str:
    """Now, or SOURCE_DATE_EPOCH (reproducible-builds.org) when set, so that a build system can make
    the report byte-identical from run to run like the C and the JSON."""
    import os  # noqa: PLC0415

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
