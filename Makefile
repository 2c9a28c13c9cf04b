# Quick start:  make demo   (set up, then fit the bundled image)
#               make test   (set up, then run the test suite)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
# The pinned CPU build used by CI; set TORCH= to keep whatever torch the venv has.
TORCH ?= torch==2.13.0

.PHONY: setup demo test lint bench clean

$(BIN)/specfit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(if $(TORCH),$(BIN)/python -m pip install -q "$(TORCH)")
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/specfit

demo: setup
	$(BIN)/specfit fit

test: setup
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/kodak_fresh.py --size 64 --steps 1000

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
