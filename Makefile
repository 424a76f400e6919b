# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN    ?= runs/demo

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first: the CPU wheel, so that nothing pulls the CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/factorseq train timevae --data stockv --out $(RUN) --force
	$(VENV)/bin/factorseq sample $(RUN) --n 1000 --out $(RUN)/samples.csv --force
	$(VENV)/bin/factorseq evaluate $(RUN) --out $(RUN)/metrics.json --repeats 3 --set processes=2 --force
	$(VENV)/bin/factorseq report $(RUN) --out $(RUN)/report.html --force
	@echo "demo done: open $(RUN)/report.html"

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/tables.py run timevae_paper  # section 1 of BENCHMARKS.md

clean:
	rm -rf $(VENV) runs build *.egg-info
