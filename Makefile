# Two entry points for a fresh machine (Python 3.11, pip, gcc): `make demo` and `make test`.
# Both install what they need, idempotently, into .venv/ at the repository root.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
JOBS ?= 2

.PHONY: install demo test clean

ARM_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm

$(STAMP): pyproject.toml Makefile
	@command -v gcc >/dev/null || (apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev)
	@# Cortex-M cross-compiler, its C library and QEMU (Debian packages; without --no-install-recommends
	@# apt pulls over 3 GB of GUI packages)
	@command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null \
		&& test -f "$$(arm-none-eabi-gcc -mcpu=cortex-m7 -mfloat-abi=hard -mfpu=fpv5-d16 -print-file-name=libc.a)" \
		|| (apt-get update && apt-get install -y --no-install-recommends $(ARM_PACKAGES))
	@# clang and its sanitizer runtime: tests/test_c_strict.py builds the generated C with gcc and clang
	@# (14 MB download, 113 MB installed on Debian 12, measured with apt-get install --print-uris)
	@command -v clang >/dev/null || (apt-get update && apt-get install -y --no-install-recommends clang libclang-rt-14-dev)
	@# headless Chromium: tests/test_html_report.py renders the HTML report in it (no console errors, screenshot)
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m modelblocks demo --out build/demo

# Tests that need the Arm toolchain fail (instead of skipping) when it is missing.
test: install
	MODELBLOCKS_REQUIRE_TOOLCHAIN=1 $(PY) -m pytest -n $(JOBS) -q tests

clean:
	rm -rf build .pytest_cache
