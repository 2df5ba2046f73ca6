"""Host target: compile the generated C with the machine's gcc and run it through ctypes, or as a
stand-alone program under AddressSanitizer and UndefinedBehaviorSanitizer."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..backend.c.emitter import CSource
from ..errors import CompileError
from ..ir.graph import Graph

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1"]


def compiler(name: str | None = None) -> str:
    """The host C compiler: `name` (e.g. "clang") when given, else $CC, gcc or cc."""
    if name:
        found = shutil.which(name)
        if not found:
            raise CompileError(f"C compiler {name!r} not found on PATH "
                               f"(apt-get install --no-install-recommends {name})")
        return found
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise CompileError("no C compiler found: install gcc (apt-get install gcc)")
    return cc


def _write_extra(directory: Path, extra_files: Mapping[str, str]) -> list[str]:
    """Harness files compiled with the model (e.g. the canary hook); returns the .c ones."""
    for name, text in extra_files.items():
        (directory / name).write_text(text)
    return sorted(n for n in extra_files if n.endswith(".c"))


def _run_cc(args: list[str], cwd: Path) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompileError(f"C compilation failed in {cwd}:\n$ {' '.join(args)}\n{proc.stderr[-6000:]}")


class HostLibrary:
    """The generated model compiled into a shared library and loaded with ctypes."""

    def __init__(self, source: CSource, graph: Graph, workdir: str | Path | None = None,
                 extra_flags: Sequence[str] = (), cc: str | None = None, extra_files: Mapping[str, str] | None = None):
        self.graph = graph
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="modelblocks_host_")
            workdir = self._tmp.name
        self.dir = Path(workdir)
        source.write(self.dir)
        extra_c = _write_extra(self.dir, extra_files or {})
        lib = self.dir / f"lib{source.prefix}.so"
        _run_cc([compiler(cc), *CFLAGS, *extra_flags, "-fPIC", "-shared", "-o", lib.name, *source.c_files, *extra_c,
                 "-lm"], self.dir)
        self._lib = ctypes.CDLL(str(lib))
        self._fn = getattr(self._lib, f"{source.prefix}_run")
        self._fn.restype = ctypes.c_int
        n = len(graph.inputs) + len(graph.outputs)
        self._fn.argtypes = [ctypes.c_void_p] * n

    def variable(self, name: str, ctype):
        """A global variable of the library (e.g. what a harness hook recorded), as a ctypes object."""
        return ctype.in_dll(self._lib, name)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        ins = [np.ascontiguousarray(np.asarray(x).astype(self.graph.tensors[n].dtype.numpy, copy=False))
               for n, x in zip(self.graph.inputs, inputs)]
        outs = [np.zeros(self.graph.tensors[n].shape, self.graph.tensors[n].dtype.numpy) for n in self.graph.outputs]
        rc = self._fn(*[a.ctypes.data for a in ins + outs])
        if rc != 0:
            raise RuntimeError(f"{self.graph.name}_run returned {rc}")
        return outs


_READ_FILE = """
static void *read_file(const char *path, size_t bytes)
{
    void *buf = malloc(bytes ? bytes : 1);
    FILE *f = fopen(path, "rb");
    if (!buf || !f || fread(buf, 1, bytes, f) != bytes) { fprintf(stderr, "cannot read %s\\n", path); exit(2); }
    fclose(f);
    return buf;
}
"""

_HARNESS = """\
#include <stdio.h>
#include <stdlib.h>
#include "{prefix}.h"

{read_file}
int main(int argc, char **argv)
{{
    (void)argc;
{reads}
{allocs}
    int rc = {prefix}_run({args});
{writes}
{frees}
    return rc;
}}
"""


def run_sanitized(source: CSource, graph: Graph, inputs: Sequence[np.ndarray], workdir: str | Path | None = None,
                  cc: str | None = None, extra_files: Mapping[str, str] | None = None) -> list[np.ndarray]:
    """Build a stand-alone program with ASan+UBSan (with `cc`, default gcc), run it on `inputs`, return
    its outputs.

    Any sanitizer report makes the program exit non-zero and raises with the report."""
    with tempfile.TemporaryDirectory(prefix="modelblocks_asan_") as tmp:
        d = Path(workdir or tmp)
        source.write(d)
        reads, allocs, writes, frees, args = [], [], [], [], []
        argi = 1
        for k, name in enumerate(graph.inputs):
            t = graph.tensors[name]
            reads.append(f"    {t.dtype.ctype} *in{k} = read_file(argv[{argi}], {t.nbytes}u);")
            frees.append(f"    free(in{k});")
            args.append(f"in{k}")
            np.ascontiguousarray(np.asarray(inputs[k]).astype(t.dtype.numpy)).tofile(d / f"in{k}.bin")
            argi += 1
        for k, name in enumerate(graph.outputs):
            t = graph.tensors[name]
            allocs.append(f"    {t.dtype.ctype} *o{k} = malloc({max(t.nbytes, 1)}u);")
            args.append(f"o{k}")
            writes.append(f"    {{ FILE *f = fopen(argv[{argi + k}], \"wb\"); fwrite(o{k}, 1, {t.nbytes}u, f); fclose(f); }}")
            frees.append(f"    free(o{k});")
        (d / "main.c").write_text(_HARNESS.format(prefix=source.prefix, read_file=_READ_FILE if graph.inputs else "", reads="\n".join(reads), allocs="\n".join(allocs),
                                                  args=", ".join(args), writes="\n".join(writes), frees="\n".join(frees)))
        extra_c = _write_extra(d, extra_files or {})
        flags = [f for f in CFLAGS if f != "-O2"] + SANITIZE
        _run_cc([compiler(cc), *flags, "-o", "model_asan", *source.c_files, *extra_c, "main.c", "-lm"], d)
        out_files = [str(d / f"out{k}.bin") for k in range(len(graph.outputs))]
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
        proc = subprocess.run(["./model_asan", *[str(d / f"in{k}.bin") for k in range(len(graph.inputs))], *out_files],
                              cwd=d, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode != 0 or "runtime error" in proc.stderr or "Sanitizer" in proc.stderr:
            raise RuntimeError(f"sanitized run failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
        outs = []
        for k, name in enumerate(graph.outputs):
            t = graph.tensors[name]
            outs.append(np.fromfile(out_files[k], dtype=t.dtype.numpy).reshape(t.shape))
        return outs
