# Two commands on a fresh machine with only Python 3.11+:
#   make lectures   run every lecture into build/ and print a summary
#   make test       run the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The stamp is rebuilt when the pins change, so `make` never runs on a stale venv.
STAMP  := $(VENV)/.installed-from-requirements

.PHONY: lectures test refresh export lint lab bench clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

lectures: $(STAMP)
	$(PY) tools/run_lectures.py

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Maintainers: re-execute notebooks in place (all, or NB=notebooks/02_*.ipynb),
# then re-export the figures in _images/.
refresh: $(STAMP)
	$(PY) tools/refresh.py $(NB)

export: $(STAMP)
	$(PY) tools/export_images.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf build .pytest_cache

# Benchmarks add PyTorch (CPU) to the same environment; the lectures never import it.
BENCH_STAMP := $(VENV)/.installed-from-bench-requirements

$(BENCH_STAMP): benchmarks/requirements.txt $(STAMP)
	$(PY) -m pip install --quiet -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH_STAMP)
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/
