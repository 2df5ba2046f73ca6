"""`make demo`: compile the bundled TinyViT, verify the C against PyTorch, print the report."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from .. import api
from . import tiny_vit


def run(out_dir: str | Path = "build/demo", runs: int = 5) -> int:
    console = Console()
    model, example = tiny_vit.build()
    console.print(f"[bold]ModelBlocks demo[/bold]: {type(model).__name__}, input {list(example[0].shape)}")
    compiled = api.compile(model, example, name="tiny_vit")
    out = compiled.save(out_dir)
    rep = compiled.report

    table = Table(title=f"{rep['name']}: per-layer cost", show_lines=False)
    for col, just in (("#", "right"), ("op", "left"), ("module", "left"), ("output", "left"),
                      ("MACs", "right"), ("params", "right")):
        table.add_column(col, justify=just)
    for row in rep["layers"]:
        table.add_row(str(row["index"]), row["op"], row["scope"] or "-",
                      "x".join(map(str, row["outputs"][0])), f"{row['macs']:,}", f"{row['params']:,}")
    console.print(table)
    console.print(f"MACs {rep['macs']:,}   params {rep['params']:,}   weights {rep['weights_bytes']:,} B (flash)   "
                  f"arena {rep['arena_bytes']:,} B (RAM)")

    results = api.verify(model, example, runs=runs, compiled=compiled, print_table=False)
    check = Table(title=f"C on the host vs PyTorch, {runs} seeded random inputs (worst case)")
    for col in ("output", "C max|err|", "C rel L2", "reference rel L2", "verdict"):
        check.add_column(col)
    ok = True
    for r in results:
        good = r.rel_l2_c < 1e-5 and r.rel_l2_ref < 1e-5
        ok &= good
        check.add_row(r.name, f"{r.max_abs_c:.2e}", f"{r.rel_l2_c:.2e}", f"{r.rel_l2_ref:.2e}",
                      "[green]OK[/green]" if good else "[red]FAIL[/red]")
    console.print(check)
    simulation = _on_the_microcontroller(compiled, model, example, Path(out), console)
    ok &= simulation is None or simulation.ok
    # the page reuses the QEMU run above (same seed, its runs): nothing is simulated twice
    page = api.report(compiled, example, out=Path(out) / "report.html", runs=runs, simulation=simulation,
                      command="make demo")
    ok &= page["verification"]["ok"]
    files = sorted(p.name for p in out.iterdir() if p.is_file())  # report.html among them
    console.print(f"wrote {out}/: {', '.join(files)} (+ ir/ with model.json and weights)")
    console.print(f"C API: int {compiled.prefix}_run(...); see {out}/{compiled.prefix}.h")
    return 0 if ok else 1


def _on_the_microcontroller(compiled, model, example, out: Path, console):
    """The Cortex-M7 in QEMU (outputs, instructions, flash, RAM) and the NUCLEO-H723ZG firmware; returns
    the SimulationReport (None without the Arm toolchain)."""
    from ..reports.simulation import format_target  # noqa: PLC0415
    from ..targets.firmware import build_firmware, write_firmware_project  # noqa: PLC0415
    from ..targets.qemu import have_toolchain  # noqa: PLC0415

    if not have_toolchain():
        console.print("[yellow]skipped the Cortex-M7 simulation and firmware: arm-none-eabi-gcc / qemu-system-arm "
                      "missing (make install sets them up)[/yellow]")
        return None
    report = api.simulate(model, example, target="cortex-m7", runs=2, compiled=compiled,
                          workdir=out / "qemu", print_table=False)
    console.print(format_target(report.targets[0], report.macs, report.assumptions), markup=False, soft_wrap=True)
    project = write_firmware_project(compiled, out / "stm32h723zg")
    fw = build_firmware(project)
    console.print(f"NUCLEO-H723ZG firmware: {project}/ built {fw.elf.name}, {fw.bin.name}, {fw.hex.name} "
                  f"(flash {fw.sizes.flash:,} B, static RAM {fw.sizes.ram_static:,} B); "
                  f"`make -C {project} flash` programs the board", markup=False, soft_wrap=True)
    return report
