"""The NUCLEO-H723ZG firmware project: built with arm-none-eabi-gcc and checked in the ELF, not on a
board. Numeric truths only: the .bin and .hex are byte for byte the ELF's flash image; the arena,
stack and vector table sit where the memory map says; the test data compiled into flash equals the
reference interpreter's outputs bit for bit; the clock plan gives 550 / 520 MHz and the USART3
divider gives 115200 baud within 1%; the board's own self-check logic (main.c, the formatting code
and the generated model) run on the host with a stub board says PASS for the right outputs and
FAIL for a wrong one; and a model too large for DTCM is refused with the exact missing bytes."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn
from elftools.elf.elffile import ELFFile

import modelblocks as mb
from modelblocks.errors import InputError
from modelblocks.models import tiny_vit
from modelblocks.targets.boards import BOARDS
from modelblocks.targets.firmware import CLOCKS, REGIONS, build_firmware, write_firmware_project
from modelblocks.targets.host import compiler

APT = "apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi make"
BOARD = BOARDS["stm32h723zg"]
ORIGIN = {name: origin for name, _, origin, _ in REGIONS}
SIZE = {"FLASH": BOARD.flash, **{name: next(r.size for r in BOARD.regions if r.name == b)
                                 for name, b, _, _ in REGIONS if b}}


@pytest.fixture(autouse=True, scope="module")
def toolchain():
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("make")):
        message = f"arm-none-eabi-gcc or make missing: {APT}"
        if os.environ.get("MODELBLOCKS_REQUIRE_TOOLCHAIN"):
            pytest.fail(message)
        pytest.skip(message)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    torch.manual_seed(0)
    model = SmallCNN().eval()
    compiled = mb.compile(model, (torch.randn(1, 3, 16, 16),), name="small_cnn")
    project = write_firmware_project(compiled, tmp_path_factory.mktemp("fw") / "small_cnn")
    return compiled, project, build_firmware(project)


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    model, example = tiny_vit.build()
    compiled = mb.compile(model, example, name="tiny_vit")
    inputs = [np.random.default_rng(7).standard_normal((1, 3, 32, 32)).astype(np.float32)]
    builds = {}
    for region in ("dtcm", "axisram"):
        project = write_firmware_project(compiled, tmp_path_factory.mktemp("fw") / f"vit_{region}",
                                         test_inputs=inputs, arena_region=region)
        builds[region] = build_firmware(project)
    return compiled, inputs, builds


def _symbol(elf_path, name):
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        sym = elf.get_section_by_name(".symtab").get_symbol_by_name(name)[0]
        return sym["st_value"], sym["st_size"]


def _symbol_bytes(elf_path, name) -> bytes:
    """A constant's bytes as stored in the ELF (read through its section, by address)."""
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        sym = elf.get_section_by_name(".symtab").get_symbol_by_name(name)[0]
        section = elf.get_section(sym["st_shndx"])
        start = sym["st_value"] - section["sh_addr"]
        return section.data()[start:start + sym["st_size"]]


def _flash_image(elf_path) -> bytes:
    """The bytes the ELF puts in flash, assembled from its loadable segments' load addresses."""
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        chunks = [(seg["p_paddr"], seg.data()[:seg["p_filesz"]]) for seg in elf.iter_segments()
                  if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]]
    base = min(a for a, _ in chunks)
    image = bytearray(max(a + len(d) for a, d in chunks) - base)
    for a, d in chunks:
        image[a - base:a - base + len(d)] = d
    assert base == ORIGIN["FLASH"]
    return bytes(image)


def _hex_image(hex_path) -> bytes:
    """Intel HEX decoded independently of objcopy: data records (00) under extended linear
    addresses (04), every record's checksum verified."""
    data, upper = {}, 0
    for line in hex_path.read_text().split():
        raw = bytes.fromhex(line[1:])
        assert sum(raw) & 0xFF == 0, f"bad checksum in {line}"
        count, addr, kind, payload = raw[0], int.from_bytes(raw[1:3], "big"), raw[3], raw[4:-1]
        assert len(payload) == count
        if kind == 0x04:
            upper = int.from_bytes(payload, "big") << 16
        elif kind == 0x00:
            for i, b in enumerate(payload):
                data[upper + addr + i] = b
    base = min(data)
    assert base == ORIGIN["FLASH"]
    return bytes(data.get(a, 0xFF) for a in range(base, max(data) + 1))


def _config(project) -> dict:
    text = (project / "fw_config.h").read_text()
    return {k.lower(): int(v) for k, v in re.findall(r"#define FW_(\w+) (\d+)u", text)}


# ------------------------------------------------------------------------------------- the build


def test_artifacts_are_the_elf_flash_image(cnn, vit):
    for build in (cnn[2], vit[2]["dtcm"], vit[2]["axisram"]):
        image = _flash_image(build.elf)
        assert build.bin.read_bytes() == image
        assert _hex_image(build.hex) == image
        # text + rodata + data (+ vector table): no gaps between the flash sections
        assert len(image) == build.sizes.flash == build.region_usage["FLASH"]
        assert build.map.is_file()


def test_fits_the_board_and_regions_add_up(cnn, vit):
    for build in (cnn[2], *vit[2].values()):
        assert build.sizes.flash <= BOARD.flash
        for region, used in build.region_usage.items():
            assert used <= SIZE[region], region
        ram = sum(v for k, v in build.region_usage.items() if k != "FLASH")
        assert ram == build.sizes.ram_static
        assert build.sizes.arena > 0 and build.sizes.io_buffers > 0
    compiled = vit[0]
    assert vit[2]["dtcm"].sizes.weights >= compiled.source.weights_bytes  # every weight byte is in flash


def test_arena_lands_in_the_chosen_region(cnn, vit):
    for build, compiled in ((cnn[2], cnn[0]), (vit[2]["dtcm"], vit[0]), (vit[2]["axisram"], vit[0])):
        addr, size = _symbol(build.elf, f"{compiled.prefix}_arena")
        region = {"dtcm": "DTCM", "axisram": "AXISRAM"}[build.arena_region]
        assert addr == build.arena_address
        assert size >= compiled.source.arena_bytes and addr % 16 == 0
        assert ORIGIN[region] <= addr and addr + size <= ORIGIN[region] + SIZE[region]
    assert vit[2]["dtcm"].arena_region == "dtcm" and vit[2]["axisram"].arena_region == "axisram"
    # moving the arena moves its bytes (plus at most its 16-byte alignment padding) out of DTCM
    moved = vit[2]["dtcm"].region_usage["DTCM"] - vit[2]["axisram"].region_usage["DTCM"]
    arena = vit[2]["axisram"].region_usage["AXISRAM"]
    assert arena >= vit[0].source.arena_bytes and 0 <= moved - arena < 16


def test_vector_table_and_stack(cnn):
    build = cnn[2]
    table_addr, table_size = _symbol(build.elf, "fw_vectors")
    assert table_addr == ORIGIN["FLASH"] and table_size == (16 + 163) * 4  # 163 = IRQ 0 (WWDG) .. 162 (TIM24)
    words = np.frombuffer(build.bin.read_bytes()[:table_size], dtype="<u4")
    estack, _ = _symbol(build.elf, "_estack")
    assert words[0] == estack and estack % 8 == 0
    assert ORIGIN["DTCM"] < words[0] <= ORIGIN["DTCM"] + SIZE["DTCM"]
    reset, _ = _symbol(build.elf, "fw_reset_handler")
    default, _ = _symbol(build.elf, "fw_default_handler")
    assert words[1] & 1 and words[1] == reset | 1  # Thumb bit
    with open(build.elf, "rb") as f:
        assert ELFFile(f)["e_entry"] == words[1]
    assert all(words[i] == 0 for i in (7, 8, 9, 10, 13))  # reserved by Armv7-M
    assert all(w == default | 1 for w in words[[2, 3, 4, 5, 6, 11, 12, 14, 15]])
    assert all(w == default | 1 for w in words[16:])
    # the stack is reserved at the bottom of DTCM, below .data/.bss
    sstack, _ = _symbol(build.elf, "_sstack")
    assert sstack == ORIGIN["DTCM"] and estack - sstack == 16 * 1024


def test_compiled_in_test_data_is_the_reference_bit_for_bit(vit, cnn):
    compiled, inputs, builds = vit
    expected = compiled.run_reference(inputs)
    for build in builds.values():
        got_in = np.frombuffer(_symbol_bytes(build.elf, "fw_test_input0"), dtype="<f4")
        assert np.array_equal(got_in.view("<u4"), inputs[0].reshape(-1).view("<u4"))
        for k, ref in enumerate(expected):
            got = np.frombuffer(_symbol_bytes(build.elf, f"fw_expected{k}"), dtype="<f4")
            assert np.array_equal(got.view("<u4"), np.ascontiguousarray(ref, dtype="<f4").reshape(-1).view("<u4"))
    # default input: seeded normal floats
    compiled, _, build = cnn
    default = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    got = np.frombuffer(_symbol_bytes(build.elf, "fw_test_input0"), dtype="<f4")
    assert np.array_equal(got.view("<u4"), default.reshape(-1).view("<u4"))
    ref = compiled.run_reference([default])[0]
    got = np.frombuffer(_symbol_bytes(build.elf, "fw_expected0"), dtype="<f4")
    assert np.array_equal(got.view("<u4"), ref.reshape(-1).view("<u4"))


def test_clock_plan_and_baud_rate(cnn):
    c = _config(cnn[1])
    assert {k: c[k] for k in CLOCKS} == CLOCKS  # the generator wrote its plan
    for osc, m in ((c["hse_hz"], c["pll1_m_hse"]), (c["hsi_hz"], c["pll1_m_hsi"])):
        ref = osc / m
        assert 2e6 <= ref <= 4e6 and c["pll1_rge"] == 1  # PLL1RGE = 1: 2..4 MHz input
        assert 1 <= m <= 63  # DIVM1 is 6 bits
        for n, cpu in ((c["pll1_n_boost"], 550e6), (c["pll1_n"], 520e6)):
            assert 4 <= n <= 512
            vco = ref * n
            assert 192e6 <= vco <= 836e6  # wide VCO range
            sysclk = vco / c["pll1_p"]
            assert sysclk == cpu
            hclk = sysclk / c["ahb_div"]
            pclk = hclk / c["apb_div"]
            assert hclk <= 275e6 and pclk <= 137.5e6
            assert c["flash_latency"] == 3 and c["flash_wrhighfreq"] == 3  # VOS0, AXI <= 275 MHz
            brr = (int(pclk) + c["uart_baud"] // 2) // c["uart_baud"]  # as fw_uart_init computes it
            assert abs(pclk / brr - 115200) / 115200 < 0.01
    # the console before the PLL runs (HSI 64 MHz, no prescaler) and after a half-finished set-up
    for pclk in (c["hsi_hz"], c["hsi_hz"] // c["ahb_div"] // c["apb_div"]):
        brr = (pclk + c["uart_baud"] // 2) // c["uart_baud"]
        assert abs(pclk / brr - 115200) / 115200 < 0.01


# ------------------------------------------------------------------ the self-check, run on the host


def _host_run(project, tmp_path, corrupt: bool = False) -> subprocess.CompletedProcess:
    """main.c, fw_format.c, fw_testdata.c and the model, compiled for the host with a stub board
    (cycle counter +1000 per read, stdout console) in place of the register-level code."""
    work = tmp_path / ("corrupt" if corrupt else "ok")
    shutil.copytree(project, work)
    board = (work / "fw_board.h").read_text().replace('#include "stm32h723.h"\n', "")
    board = re.sub(r"static inline uint32_t fw_cycles\(void\)\n\{\n    return DWT_CYCCNT;\n\}\n",
                   "uint32_t fw_cycles(void);\n", board)
    assert "DWT_CYCCNT" not in board
    (work / "fw_board.h").write_text(board)
    profile = (work / "mb_profile.h").read_text().replace("*(volatile uint32_t *)0xE0001004u", "fw_cycles()")
    profile = profile.replace("#include <stdint.h>\n", "#include <stdint.h>\n\nuint32_t fw_cycles(void);\n")
    (work / "mb_profile.h").write_text(profile)
    (work / "host_board.c").write_text(r"""#include <stdio.h>
#include "fw_board.h"
static uint32_t now;
uint32_t fw_cycles(void) { return now += 1000u; }
uint32_t fw_cache_state(void) { return 3u; }
void fw_clock_init(fw_clocks *c) { c->sysclk_hz = 550000000u; c->hclk_hz = 275000000u; c->pclk1_hz = 137500000u;
                                   c->boost = 1u; c->source = "host"; c->error = 0; }
void fw_uart_init(uint32_t pclk_hz) { (void)pclk_hz; }
void fw_uart_flush(void) { fflush(stdout); }
void fw_leds(int green, int red) { printf("LEDS %d %d\n", green, red); }
void fw_putc(char c) { putchar(c); }
""")
    if corrupt:  # nudge one expected value by 1e-3 relative: far above the 1e-5 tolerance
        data = (work / "fw_testdata.c").read_text()
        head, _, tail = data.partition("fw_expected0[")
        first = re.search(r"(-?\d[\d.e+-]*)f", tail)
        value = float(first.group(1)) * 1.001 + 1e-3
        tail = tail[:first.start()] + f"{value!r}f" + tail[first.end():]
        (work / "fw_testdata.c").write_text(head + "fw_expected0[" + tail)
    sources = ["host_board.c", "fw_format.c", "fw_testdata.c", "main.c"]
    sources += sorted(str(p.relative_to(work)) for p in (work / "model").glob("*.c"))
    args = [compiler(), "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-ffp-contract=off", "-DMB_PROFILE",
            "-DFW_ARENA_REGION=\"dtcm\"", "-I.", "-Imodel", *sources, "-lm", "-o", "host_main"]
    subprocess.run(args, cwd=work, check=True, capture_output=True, text=True)
    return subprocess.run(["./host_main"], cwd=work, capture_output=True, text=True, timeout=60)


def test_self_check_passes_and_reports_every_layer(cnn, tmp_path):
    compiled, project, _ = cnn
    run = _host_run(project, tmp_path)
    out = run.stdout
    assert run.returncode == 0 and "RESULT: PASS" in out and "LEDS 1 0" in out
    rows = re.findall(r"^\s+(\d+)  (\S+)\s+(\S+)\s+(\d+)\s+[\d.]+$", out, re.M)
    layers = compiled.source.profiled
    assert [int(r[0]) for r in rows] == layers
    assert [r[1] for r in rows] == [compiled.graph.nodes[i].op for i in layers]
    assert [r[2] for r in rows] == [compiled.graph.nodes[i].scope or compiled.graph.nodes[i].name for i in layers]
    assert all(int(r[3]) == 1000 for r in rows)  # one stub counter step between BEGIN and END
    # total = 2 reads around the run + 2 per layer, each read 1000 stub cycles apart
    assert f"cycles per inference: {1000 * (2 * len(layers) + 1)} " in out
    assert f"({(2 * len(layers) + 1) * 1000 / 550:.1f} us at 550 MHz)" in out
    rel = float(re.search(r"rel L2 error (\S+)", out).group(1))
    assert rel < 1e-5
    printed = [float(v) for v in re.search(r"output float32 \(1,5\):(.*)", out).group(1).split()]
    ref = compiled.run_reference([np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)])[0]
    assert np.allclose(printed, ref.reshape(-1), atol=6e-6)  # 5 decimals


def test_self_check_fails_on_a_wrong_expected_value(cnn, tmp_path):
    run = _host_run(cnn[1], tmp_path, corrupt=True)
    assert run.returncode == 1 and "RESULT: FAIL" in run.stdout and "LEDS 0 1" in run.stdout
    assert float(re.search(r"rel L2 error (\S+)", run.stdout).group(1)) > 1e-5


# ------------------------------------------------------------------------- Makefile and refusals


def test_makefile_moves_the_arena_and_names_the_flash_tools(cnn):
    compiled, project, _ = cnn
    env = dict(os.environ, MAKEFLAGS="")
    subprocess.run(["make", "-j2", "ARENA_REGION=axisram"], cwd=project, check=True, capture_output=True, env=env)
    elf = project / "build" / f"{compiled.prefix}.elf"
    addr, _ = _symbol(elf, f"{compiled.prefix}_arena")
    assert ORIGIN["AXISRAM"] <= addr < ORIGIN["AXISRAM"] + SIZE["AXISRAM"]
    subprocess.run(["make", "-j2"], cwd=project, check=True, capture_output=True, env=env)  # back to the default
    addr, _ = _symbol(elf, f"{compiled.prefix}_arena")
    assert ORIGIN["DTCM"] <= addr < ORIGIN["DTCM"] + SIZE["DTCM"]
    bad = subprocess.run(["make", "ARENA_REGION=itcm"], cwd=project, capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "ARENA_REGION must be dtcm or axisram" in bad.stderr
    dry = {f: subprocess.run(["make", "-n", "flash", f"FLASHER={f}"], cwd=project, capture_output=True, text=True,
                             env=env).stdout for f in ("st-flash", "openocd", "pyocd")}
    assert f"st-flash --reset write build/{compiled.prefix}.bin 0x08000000" in dry["st-flash"]
    assert "openocd -f interface/stlink.cfg -f target/stm32h7x.cfg" in dry["openocd"]
    assert f"pyocd flash -t stm32h723zgtx build/{compiled.prefix}.elf" in dry["pyocd"]


def test_invalid_options_are_refused(cnn, tmp_path):
    compiled = cnn[0]
    with pytest.raises(InputError, match="dtcm, axisram"):
        write_firmware_project(compiled, tmp_path / "a", arena_region="itcm")
    with pytest.raises(InputError, match="-O2"):
        write_firmware_project(compiled, tmp_path / "b", opt="-Ofast")
    with pytest.raises(InputError, match="tolerance"):
        write_firmware_project(compiled, tmp_path / "c", tolerance=0.0)
    with pytest.raises(InputError, match="shape"):
        write_firmware_project(compiled, tmp_path / "d", test_inputs=[np.zeros((1, 3, 8, 8), np.float32)])
    assert not (tmp_path / "a").exists() and not list(tmp_path.glob(".a.*"))  # nothing half-written


def test_arena_too_big_for_dtcm_names_the_missing_bytes(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 9, 3, padding=1), nn.ReLU(), nn.Conv2d(9, 2, 3, padding=1)).eval()
    compiled = mb.compile(model, (torch.randn(1, 3, 64, 64),), name="wide")
    assert compiled.source.arena_bytes > SIZE["DTCM"]
    project = write_firmware_project(compiled, tmp_path / "wide")
    with pytest.raises(InputError) as info:
        build_firmware(project)
    message = str(info.value)
    missing = int(re.search(r"region DTCM is ([\d,]+) bytes short", message).group(1).replace(",", ""))
    assert "ARENA_REGION=axisram" in message
    fits = build_firmware(write_firmware_project(compiled, tmp_path / "wide_axi", arena_region="axisram"))
    arena = fits.region_usage["AXISRAM"]
    # what DTCM would have had to hold: everything else there, plus the arena (to its alignment)
    assert abs(missing - (fits.region_usage["DTCM"] + arena - SIZE["DTCM"])) <= 16
