# Two entry points for a fresh machine (Python 3.11, pip, gcc): `make demo` and `make test`.
# Both install what they need, idempotently, into .venv/ at the repository root.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
JOBS ?= 2

.PHONY: install demo test clean

$(STAMP): pyproject.toml Makefile
	@command -v gcc >/dev/null || (apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m modelblocks demo --out build/demo

test: install
	$(PY) -m pytest -n $(JOBS) -q tests

clean:
	rm -rf build .pytest_cache
