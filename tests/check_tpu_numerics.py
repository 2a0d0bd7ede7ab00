"""The TPU matmul-numerics emulation does what the TPU-numerics make targets rely on. Not in the default test paths:
those targets run it (`pytest tests/check_tpu_numerics.py`), with PYTHONSTARTUP set as for the notebooks' kernels.

A default-precision float32 ``dot_general`` must equal the exact product of its operands rounded to bfloat16 (the
TPU's one bfloat16 pass, accumulated in float32), wherever it comes from; full-precision requests stay exact. The
emulation patches JAX globally, so each probe runs in a fresh process, and each kernel check in a fresh kernel
started by the runner with the environment the make target gives the notebooks' kernels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from lectures import ROOT, kernel_prints

TOOLS = ROOT / "tools"
STARTUP = TOOLS / "tpu_numerics_startup.py"
MODE = "tpu-bf16"

# Relative distances to the reference, max|difference| / max|reference|. Float32 accumulation of
# the 48-term sums below stays near 1e-7; one bfloat16 rounding of the operands moves the result
# by about 1e-3 (bfloat16 keeps 8 significant bits).
SAME = 1e-5
DIFFERENT = 1e-4

# Runs in the subprocess; prints one JSON object: for each case, its relative distance to the exact
# float64 product ("exact") and to the float64 product of bfloat16-rounded operands ("bf16").
PROBE = r'''
import json, sys
import ml_dtypes
import numpy as np
import jax
import jax.numpy as jnp
from jax import lax
from flax import nnx

rng = np.random.default_rng(0)
a = rng.standard_normal((16, 48)).astype(np.float32)
b = rng.standard_normal((48, 24)).astype(np.float32)
c = rng.standard_normal((16, 24)).astype(np.float32)
f64 = lambda x: np.asarray(x, np.float64)
bf16 = lambda x: f64(np.asarray(x, np.float32).astype(ml_dtypes.bfloat16))
out = {"jax": jax.__version__, "numpy": np.__version__}
mod = sys.modules.get("emulate_tpu_numerics")
out["active"] = mod.active() if mod else None

def record(name, got, exact, rounded):
    got, exact, rounded = f64(got), f64(exact), f64(rounded)
    assert got.shape == exact.shape, (name, got.shape, exact.shape)
    scale = np.max(np.abs(exact))
    out[name] = {"exact": float(np.max(np.abs(got - exact)) / scale),
                 "bf16": float(np.max(np.abs(got - rounded)) / scale)}

def product(name, got):
    record(name, got, f64(a) @ f64(b), bf16(a) @ bf16(b))

# (a) and (e): default precision, every spelling, eager and compiled.
product("jnp.dot", jnp.dot(a, b))
product("jnp.matmul", jnp.matmul(a, b))
product("@", jnp.asarray(a) @ jnp.asarray(b))
product("einsum", jnp.einsum("ij,jk->ik", a, b))
product("tensordot", jnp.tensordot(a, b, axes=1))
product("lax.dot_general", lax.dot_general(a, b, (((1,), (0,)), ((), ()))))
product("jit", jax.jit(lambda x, y: x @ y)(a, b))
product("jit einsum", jax.jit(lambda x, y: jnp.einsum("ij,jk->ik", x, y))(a, b))
product("vmap", jax.vmap(lambda row: row @ b)(a))
product("scan", lax.scan(lambda carry, row: (carry, jnp.dot(row, b)), 0.0, a)[1])
product("precision=default", jnp.dot(a, b, precision="default"))
product("precision=bfloat16", jnp.dot(a, b, precision="bfloat16"))
product("precision=DEFAULT", jnp.dot(a, b, precision=lax.Precision.DEFAULT))
with jax.default_matmul_precision("bfloat16"):
    product("config bfloat16", jax.jit(lambda x, y: x @ y)(a, b))

# (b): full precision asked for, by argument or by config.
product("precision=highest", jnp.dot(a, b, precision="highest"))
product("precision=HIGHEST", jnp.matmul(a, b, precision=lax.Precision.HIGHEST))
product("precision=float32", jnp.einsum("ij,jk->ik", a, b, precision="float32"))
product("precision=high", jnp.dot(a, b, precision=lax.Precision.HIGH))
product("jit precision=highest", jax.jit(lambda x, y: jnp.dot(x, y, precision="highest"))(a, b))
with jax.default_matmul_precision("float32"):
    product("context float32", jnp.dot(a, b))
    product("context float32 jit", jax.jit(lambda x, y: x @ y)(a, b))
jax.config.update("jax_default_matmul_precision", "highest")
product("config highest", jnp.asarray(a) @ jnp.asarray(b))
product("config highest vmap", jax.vmap(lambda row: row @ b)(a))
jax.config.update("jax_default_matmul_precision", "tensorfloat32")
product("config tensorfloat32", jax.jit(jnp.matmul)(a, b))
jax.config.update("jax_default_matmul_precision", None)
product("config reset", jnp.dot(a, b))

# (c): the backward pass. d/db sum((a @ b) * c) = a.T @ c is a dot_general that only grad creates.
loss = lambda w, precision=None: jnp.sum(jnp.dot(a, w, precision=precision) * c)
grad_exact, grad_rounded = f64(a).T @ f64(c), bf16(a).T @ bf16(c)
record("grad", jax.grad(loss)(b), grad_exact, grad_rounded)
record("jit grad", jax.jit(jax.grad(loss))(b), grad_exact, grad_rounded)
record("grad precision=highest", jax.grad(lambda w: loss(w, "highest"))(b), grad_exact, grad_rounded)
# The gradient with respect to the input (x @ b.T with this cotangent) goes through the transpose too.
record("grad wrt input", jax.grad(lambda x: jnp.sum((x @ b) * c))(a), f64(c) @ f64(b).T, bf16(c) @ bf16(b).T)

# (d): Flax NNX layers, eager and under nnx.jit, and one that asks for full precision.
layer = nnx.Linear(48, 24, rngs=nnx.Rngs(0))
kernel, bias = f64(layer.kernel[...]), f64(layer.bias[...])
rounded_kernel = bf16(layer.kernel[...])
record("nnx.Linear", layer(a), f64(a) @ kernel + bias, bf16(a) @ rounded_kernel + bias)
record("nnx.jit nnx.Linear", nnx.jit(lambda m, x: m(x))(layer, a), f64(a) @ kernel + bias,
       bf16(a) @ rounded_kernel + bias)
precise = nnx.Linear(48, 24, precision=lax.Precision.HIGHEST, rngs=nnx.Rngs(0))
record("nnx.Linear precision=HIGHEST", precise(a), f64(a) @ kernel + bias, bf16(a) @ rounded_kernel + bias)
# The kernel's gradient of a layer's loss: x.T @ cotangent, created by grad inside Flax's code.
layer_grad = nnx.grad(lambda m: jnp.sum(m(a) * c))(layer)
record("nnx.grad kernel", layer_grad.kernel[...], grad_exact, grad_rounded)

# Operands that are not float32 are left alone: float32 products of bfloat16 inputs are exact anyway.
a16, b16 = jnp.asarray(a, jnp.bfloat16), jnp.asarray(b, jnp.bfloat16)
product("bf16 operands f32 result", jnp.dot(a16, b16, preferred_element_type=jnp.float32))

if mod is not None:
    mod.install()  # idempotent: no error, no second wrapper
    from jax._src.interpreters import mlir
    rule = mlir._platform_specific_lowerings["cpu"][lax.dot_general_p].rule
    out["wrapped once"] = not hasattr(getattr(rule, "original_rule", None), "original_rule")
    try:
        mod.install("gpu-tf32")
    except ValueError:
        out["unknown mode refused"] = True
print("PROBE-RESULT " + json.dumps(out))
'''

DEFAULT_CASES = [
    "jnp.dot", "jnp.matmul", "@", "einsum", "tensordot", "lax.dot_general", "jit", "jit einsum", "vmap", "scan",
    "precision=default", "precision=bfloat16", "precision=DEFAULT", "config bfloat16", "config reset",
]
FULL_PRECISION_CASES = [
    "precision=highest", "precision=HIGHEST", "precision=float32", "precision=high", "jit precision=highest",
    "context float32", "context float32 jit", "config highest", "config highest vmap", "config tensorfloat32",
]
GRAD_CASES = ["grad", "jit grad", "grad wrt input"]
NNX_CASES = ["nnx.Linear", "nnx.jit nnx.Linear", "nnx.grad kernel"]


def run_probe(emulated: bool) -> dict:
    install = "import emulate_tpu_numerics\nemulate_tpu_numerics.install()\n" if emulated else ""
    env = {**os.environ, "PYTHONPATH": str(TOOLS), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", install + PROBE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("PROBE-RESULT ")]
    assert result.returncode == 0 and lines, f"probe failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(lines[-1].removeprefix("PROBE-RESULT "))


@pytest.fixture(scope="module")
def emulated() -> dict:
    return run_probe(True)


@pytest.fixture(scope="module")
def plain() -> dict:
    return run_probe(False)


def emulated_cases(result: dict, names: list[str]) -> dict:
    """The cases that do not look like a TPU's one bfloat16 pass, with their distances."""
    return {n: result[n] for n in names if not (result[n]["bf16"] < SAME and result[n]["exact"] > DIFFERENT)}


def exact_cases(result: dict, names: list[str]) -> dict:
    """The cases that are not the exact float32 product, with their distances."""
    return {n: result[n] for n in names if not result[n]["exact"] < SAME}


def test_probe_ran_with_the_emulation_installed(emulated):
    assert emulated["active"] == MODE
    assert emulated["wrapped once"], "install() twice wrapped the lowering rule twice"
    assert emulated["unknown mode refused"]


def test_default_precision_products_are_one_bfloat16_pass(emulated):
    """(a), (e): eager, jit, vmap, scan, einsum, @, tensordot, lax.dot_general, precision="default"/"bfloat16"."""
    assert not emulated_cases(emulated, DEFAULT_CASES), emulated_cases(emulated, DEFAULT_CASES)


def test_full_precision_requests_stay_exact(emulated):
    """(b): precision="highest"/HIGHEST/"float32"/HIGH, and the config or context manager set to full precision."""
    assert not exact_cases(emulated, FULL_PRECISION_CASES), exact_cases(emulated, FULL_PRECISION_CASES)


def test_gradient_matmuls_are_emulated(emulated):
    """(c): the backward pass's dot_generals, which only jax.grad creates, round their operands too."""
    assert not emulated_cases(emulated, GRAD_CASES), emulated_cases(emulated, GRAD_CASES)
    assert not exact_cases(emulated, ["grad precision=highest"])  # the transpose keeps the forward precision


def test_flax_nnx_linear_is_emulated(emulated):
    """(d): nnx.Linear, eager, under nnx.jit and in nnx.grad; a layer built with precision=HIGHEST stays exact."""
    assert not emulated_cases(emulated, NNX_CASES), emulated_cases(emulated, NNX_CASES)
    assert not exact_cases(emulated, ["nnx.Linear precision=HIGHEST"])


def test_non_float32_operands_are_untouched(emulated):
    assert emulated["bf16 operands f32 result"]["bf16"] < SAME


def test_without_the_variable_everything_is_exact(plain):
    """The control: the CPU alone is exact whatever the precision, so the differences above are the emulation's."""
    assert plain["active"] is None
    every_case = DEFAULT_CASES + FULL_PRECISION_CASES + GRAD_CASES + NNX_CASES
    assert not exact_cases(plain, every_case), exact_cases(plain, every_case)


KERNEL_PROBE = (
    "import sys, numpy as np, jax.numpy as jnp\n"
    "emulation = sys.modules.get('emulate_tpu_numerics')\n"
    "x = np.float32(1 + 2**-12) * np.ones((1, 4), np.float32)\n"
    "print(emulation and emulation.active(), float(jnp.dot(x, x.T)[0, 0]),"
    " float(jnp.dot(x, x.T, precision='highest')[0, 0]))\n"
)


def check_kernel_is_emulated(tmp_path):
    active, default, highest = kernel_prints(KERNEL_PROBE, tmp_path).split()
    assert active == MODE
    # 1 + 2**-12 rounds to 1 in bfloat16: the emulated sum of four squares is 4, the exact one is more.
    assert float(default) == 4.0
    assert float(highest) > 4.001


def test_kernels_started_with_the_startup_file_are_emulated(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONSTARTUP", str(STARTUP))
    check_kernel_is_emulated(tmp_path)


def test_this_runs_notebook_kernels_are_emulated(tmp_path):
    """Under the TPU-numerics targets the notebooks' kernels inherit this process's PYTHONSTARTUP: no silent no-op."""
    assert os.environ.get("PYTHONSTARTUP") == str(STARTUP), "run this file through a TPU-numerics make target"
    check_kernel_is_emulated(tmp_path)
