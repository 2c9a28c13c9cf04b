# Quick start:  make demo   (set up, then fit the bundled image)
#               make test   (set up, then run the test suite)
#               make docs   (set up, then build the documentation into site/)
#               make docs-ref (regenerate docs/cli.md and docs/api.md from the code)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
# The pinned CPU build used by CI; set TORCH= to keep whatever torch the venv has.
TORCH ?= torch==2.13.0

.PHONY: setup demo test docs docs-ref lint bench clean

$(BIN)/specfit: pyproject.toml
	@echo "setting up $(VENV) (once; a few minutes on a fresh machine)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@$(if $(TORCH),echo "installing $(TORCH) (the CPU build, about 200 MB)")
	$(if $(TORCH),$(BIN)/python -m pip install -q --progress-bar on "$(TORCH)")
	@echo "installing specfit and its test, video, mesh, NIfTI, Ray and TensorBoard extras"
	$(BIN)/python -m pip install -q --progress-bar on -e ".[dev]"
	@echo "set up: $(BIN)/specfit"
	touch $@

setup: $(BIN)/specfit

demo: setup
	$(BIN)/specfit fit

test: setup
	$(BIN)/python -m ruff check src tests benchmarks docs
	$(BIN)/python -m pytest -q

docs-ref: setup
	$(BIN)/python docs/hooks/specfit_docs.py

docs: docs-ref
	@echo "installing the documentation tools (MkDocs)"
	$(BIN)/python -m pip install -q --progress-bar on -e ".[docs]"
	$(BIN)/python -m mkdocs build --strict --site-dir site

bench: setup
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/kodak_fresh.py --size 64 --steps 1000

clean:
	rm -rf $(VENV) runs site .pytest_cache .ruff_cache
