# Two commands on a fresh machine with only Python 3.11+:
#   make lectures   run every lecture into build/ and print a summary
#   make test       run the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The stamp is rebuilt when the pins change, so `make` never runs on a stale venv.
STAMP  := $(VENV)/.installed-from-requirements

.PHONY: lectures test test-colab test-latest test-devices test-tpu-numerics test-nbval refresh export lint lab bench clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

lectures: $(STAMP)
	$(PY) tools/run_lectures.py

test: $(STAMP)
	tools/test_env.sh pinned $(VENV) $(PYTEST_ARGS)

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

# ---- The same lectures in the environments learners have (see README, "Where the lectures are tested") ----
# Each runs strict nbval over the stored outputs plus the lectures' own unit tests, and prints one line.
ENV_TESTS := notebooks tests/test_mnist_loader.py tests/test_mnist_training.py

# Colab's CPU runtime: its package list as constraints, on Python 3.13 (else 3.12), with a stand-in
# google.colab imported at start-up so that every setup cell runs its Colab branch.
COLAB_VENV  := .venv-colab
COLAB_STAMP := $(COLAB_VENV)/.installed-from-colab-list

$(COLAB_STAMP): envs/colab/requirements.txt envs/colab/constraints.txt
	@py=$$(tools/find_python.sh 3.13 3.12) || exit 1; \
	case "$$py" in *3.13*) ;; *) echo "warning: Colab runs Python 3.13, which is not here; using $$py";; esac; \
	rm -rf $(COLAB_VENV) && "$$py" -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install --quiet -r envs/colab/requirements.txt -c envs/colab/constraints.txt
	touch $@

test-colab: $(COLAB_STAMP)
	PYTHONPATH=$(CURDIR)/envs/colab/standin tools/test_env.sh colab $(COLAB_VENV) $(ENV_TESTS) $(PYTEST_ARGS)

# The newest releases on the newest Python here, upgraded on every run.
LATEST_VENV := .venv-latest

test-latest:
	@py=$$(tools/find_python.sh 3.14 3.13 3.12) || exit 1; \
	test -x $(LATEST_VENV)/bin/python || "$$py" -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -r envs/latest/requirements.txt
	tools/test_env.sh latest $(LATEST_VENV) $(ENV_TESTS) $(PYTEST_ARGS)

# Eight simulated devices (as on a TPU v5e-8), a fresh HOME and no data cache: data only via MNIST_DIR.
test-devices: $(STAMP)
	home=$$(mktemp -d) && trap 'rm -rf "$$home"' EXIT && \
	env -u XDG_CACHE_HOME -u JAX_LECTURES_CACHE HOME="$$home" XLA_FLAGS=--xla_force_host_platform_device_count=8 \
	tools/test_env.sh 8-devices $(VENV) notebooks $(PYTEST_ARGS)

# A TPU's default matmul numerics on the CPU: float32 operands rounded to bfloat16, float32 accumulation
# (tools/emulate_tpu_numerics.py); its own test checks that the notebook kernels really were emulated.
test-tpu-numerics: $(STAMP)
	JAX_LECTURES_EMULATE=tpu-bf16 PYTHONPATH=$(CURDIR)/tools/emulation_site \
	tools/test_env.sh tpu-numerics $(VENV) notebooks tests/test_tpu_numerics.py $(PYTEST_ARGS)

# nbval as its documentation runs it, without our collector: strict, then lax.
test-nbval: $(STAMP)
	tools/test_env.sh plain-nbval $(VENV) --nbval notebooks/ $(PYTEST_ARGS)
	tools/test_env.sh plain-nbval-lax $(VENV) --nbval-lax notebooks/ $(PYTEST_ARGS)

# Benchmarks add PyTorch (CPU) to the same environment; the lectures never import it.
BENCH_STAMP := $(VENV)/.installed-from-bench-requirements

$(BENCH_STAMP): benchmarks/requirements.txt $(STAMP)
	$(PY) -m pip install --quiet -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH_STAMP)
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/
