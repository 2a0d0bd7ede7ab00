# Linux, macOS and WSL: the recipes use POSIX paths and tools (on Windows, use the pip or conda route in the README).
#   make lectures   run every lecture into build/ and print a summary
#   make test       the whole test suite, on the pins, as a fresh machine with 8 devices sees it
# Maintainers: CONTRIBUTING.md.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
# The stamp is rebuilt when the lock changes, so `make` never runs on a stale venv.
STAMP  := $(VENV)/.installed-from-requirements
# What the lock leaves out, and why (the file says).
LOCK_EXCLUDES := envs/lock-excludes.txt

.PHONY: lectures test test-colab test-latest test-tpu-numerics test-latest-tpu-numerics refresh export lock lint lab bench clean

$(STAMP): requirements.txt $(LOCK_EXCLUDES)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$$(grep '^uv==' requirements.txt)"  # uv installs the lock in a third of pip's time
	$(UV) pip install --quiet --python $(PY) -r requirements.txt --excludes $(LOCK_EXCLUDES)
	touch $@

lectures: $(STAMP)
	$(PY) tools/runner.py lectures

# Re-execute notebooks in place (all, or NB=notebooks/02_*.ipynb) and re-export each one's figures to _images/.
refresh: $(STAMP)
	$(PY) tools/runner.py refresh $(NB)

export: $(STAMP)
	$(PY) tools/export_images.py

# Re-make the lock from requirements.in, keeping every pin it can (add --upgrade-package NAME to move one).
lock: $(STAMP)
	$(UV) pip compile --universal --python-version 3.11 requirements.in --excludes $(LOCK_EXCLUDES) -o requirements.txt

lint: $(STAMP)
	$(VENV)/bin/ruff check .

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf build .pytest_cache

# ---- The lectures in the environments learners have (README, "Where the lectures are tested") ----
# Each prints one line: environment, versions, result, seconds.

# The pins, with 8 simulated CPU devices (as on a TPU v5e-8), a fresh HOME and no data cache (MNIST only through
# MNIST_DIR, else lecture 06 downloads it). uv keeps its own cache for the lock test.
test: $(STAMP)
	home=$$(mktemp -d) && trap 'rm -rf "$$home"' EXIT && \
	env -u XDG_CACHE_HOME -u JAX_LECTURES_CACHE HOME="$$home" UV_CACHE_DIR="$${UV_CACHE_DIR:-$$HOME/.cache/uv}" \
	XLA_FLAGS="$${XLA_FLAGS:-} --xla_force_host_platform_device_count=8" \
	tools/test_env.sh pinned $(VENV) $(PYTEST_ARGS)

ENV_TESTS := notebooks tests/test_mnist_loader.py tests/test_mnist_training.py

# Colab's CPU runtime: its package list as constraints, on Python 3.13 (else 3.12). An IPython startup file imports
# a stand-in google.colab in every kernel, as Colab does, so each setup cell runs its Colab branch; test_env.sh fails
# the run if a setup cell changed jax or jaxlib.
COLAB_VENV  := .venv-colab
COLAB_STAMP := $(COLAB_VENV)/.installed-from-colab-list

$(COLAB_STAMP): envs/colab/requirements.txt envs/colab/constraints.txt $(STAMP)
	@py=$$(tools/find_python.sh 3.13 3.12) || exit 1; \
	case "$$py" in *3.13*) ;; *) echo "warning: Colab runs Python 3.13, which is not here; using $$py";; esac; \
	rm -rf $(COLAB_VENV) && $(UV) venv --quiet --python "$$py" $(COLAB_VENV)
	$(UV) pip install --quiet --python $(COLAB_VENV)/bin/python -r envs/colab/requirements.txt -c envs/colab/constraints.txt
	touch $@

test-colab: $(COLAB_STAMP)
	PYTHONSTARTUP=$(CURDIR)/envs/colab/standin/startup.py \
	tools/test_env.sh colab $(COLAB_VENV) $(ENV_TESTS) tests/check_colab_kernels.py $(PYTEST_ARGS)

# The newest releases on the newest Python here, installed afresh on every run; the notebooks run under stock
# `pytest --nbval` (nbval's own collector, as its documentation runs it), not ours.
LATEST_VENV := .venv-latest
LATEST_SETUP = py=$$(tools/find_python.sh 3.14 3.13 3.12) || exit 1; \
	rm -rf $(LATEST_VENV) && $(UV) venv --quiet --python "$$py" $(LATEST_VENV) && \
	$(UV) pip install --quiet --python $(LATEST_VENV)/bin/python -r envs/latest/requirements.txt

test-latest: $(STAMP)
	@$(LATEST_SETUP)
	tools/test_env.sh latest $(LATEST_VENV) --nbval $(ENV_TESTS) $(PYTEST_ARGS)

# A TPU's default matmul numerics on the CPU: float32 operands rounded to bfloat16, float32 accumulation, installed
# in every kernel by an IPython startup file; tests/check_tpu_numerics.py checks the emulation and that the kernels
# of this run really were emulated.
TPU_NUMERICS := PYTHONSTARTUP=$(CURDIR)/tools/tpu_numerics_startup.py

test-tpu-numerics: $(STAMP)
	$(TPU_NUMERICS) tools/test_env.sh tpu-numerics $(VENV) notebooks tests/check_tpu_numerics.py $(PYTEST_ARGS)

# CI's third run: both proofs above in one run of the series (the newest releases under stock nbval, with a TPU's
# matmul numerics in every kernel), as TPU users who install the newest JAX get them.
test-latest-tpu-numerics: $(STAMP)
	@$(LATEST_SETUP)
	$(TPU_NUMERICS) tools/test_env.sh latest+tpu-numerics $(LATEST_VENV) --nbval $(ENV_TESTS) \
	tests/check_tpu_numerics.py $(PYTEST_ARGS)

# Benchmarks add PyTorch (CPU) to the same environment; the lectures never import it.
BENCH_STAMP := $(VENV)/.installed-from-bench-requirements

$(BENCH_STAMP): benchmarks/requirements.txt $(STAMP)
	$(PY) -m pip install --quiet -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH_STAMP)
	$(PY) benchmarks/bench.py $(BENCH_ARGS)
