"""Emulate a TPU's default float32 matmul numerics on the CPU.

A TPU runs a float32 matmul at default precision as one bfloat16 pass: both
operands are rounded to bfloat16 (8 significant bits) and the products are
accumulated in float32. The CPU ignores every precision setting and is exact,
so asserts checked only on the CPU may fail on a TPU. ``install()`` makes the
CPU behave like the TPU for every ``dot_general`` whose precision is the
default, so the lectures can be tested at accelerator precision here.

How: JAX lowers each ``dot_general`` equation to StableHLO through a lowering
rule registered per platform. ``install()`` replaces the CPU rule with one that,
when the equation asks for the default precision, first rounds its float32
operands to bfloat16 (``stablehlo.reduce_precision`` with 8 exponent and 7
mantissa bits: round to nearest even, the value stays float32, and XLA does
not fold it away as it may fold a float32 -> bfloat16 -> float32 convert pair)
and then calls the original rule. Working at lowering catches every
``dot_general`` that reaches the compiler whichever way it was written:
``jnp.dot``/``matmul``/``@``/``einsum``/``tensordot``, the matmuls that
``jax.grad`` adds for the backward pass (their transposes are ``dot_general``
equations with the forward precision), ``vmap``, ``lax.scan`` bodies, Flax
layers that captured ``lax.dot_general`` at import, and eager calls (JAX
compiles each eager primitive too).

What counts as the default precision (left exact otherwise, as on a TPU):
- the equation's ``precision`` is ``None`` (JAX writes the value of the config
  ``jax_default_matmul_precision`` into the equation when it traces, in every
  supported version; it is consulted here again in case a version stops
  doing so), or ``Precision.DEFAULT`` for both operands (what ``"default"``
  and ``"bfloat16"`` mean), or ``DotAlgorithmPreset.DEFAULT``;
- anything else (``"highest"``/``"float32"``, ``"high"``/``"tensorfloat32"``,
  an explicit algorithm, or ``DEFAULT`` for one operand only) is left exact.

Not covered: convolutions (``conv_general_dilated``, also bfloat16 on a TPU),
``ragged_dot``, complex64 operands, float64 (TPUs do not have it), Pallas
kernels. Only the CPU rule is replaced: on a real GPU or TPU nothing changes.

Install before anything is compiled: JAX caches compiled computations, and a
function compiled before ``install()`` keeps its exact numerics. In
``make test-tpu-numerics`` every notebook kernel installs it at start-up through
the IPython startup file ``tools/tpu_numerics_startup.py`` (PYTHONSTARTUP).
Check in a process: ``sys.modules["emulate_tpu_numerics"].active()``.
"""

from __future__ import annotations

MODE = "tpu-bf16"

# bfloat16 keeps float32's 8 exponent bits and 7 of its 23 mantissa bits.
_BF16_EXPONENT_BITS = 8
_BF16_MANTISSA_BITS = 7

_installed_mode: str | None = None


def active() -> str | None:
    """The emulation installed in this process (``"tpu-bf16"``), or None."""
    return _installed_mode


def install(mode: str = MODE) -> None:
    """Replace the CPU lowering of ``dot_general`` by the TPU emulation.

    Idempotent: a second call does nothing. Raises RuntimeError, naming the
    JAX version, if this version's internals are not what the patch expects.
    """
    global _installed_mode
    if mode != MODE:
        raise ValueError(f"unknown numerics emulation {mode!r}; the only one is {MODE!r}")
    if _installed_mode is not None:
        return

    import jax

    try:
        import numpy as np
        from jax._src.interpreters import mlir
        from jax._src.lax import lax as lax_internal
        from jax._src.lib.mlir.dialects import hlo

        dot_general_p = lax_internal.dot_general_p
        Precision = lax_internal.Precision
        DotAlgorithmPreset = lax_internal.DotAlgorithmPreset
        canonicalize_precision = lax_internal.canonicalize_precision
        # The rule JAX uses on the CPU: a CPU-specific one, else the generic one.
        entry = mlir._platform_specific_lowerings["cpu"].get(dot_general_p) or mlir._lowerings[dot_general_p]
        original_rule = getattr(entry, "rule", entry)
        inline = getattr(entry, "inline", True)
        if not callable(original_rule):
            raise TypeError(f"the CPU lowering rule of dot_general is not callable: {original_rule!r}")
    except Exception as err:
        raise RuntimeError(
            f"cannot emulate TPU matmul numerics on jax {jax.__version__}: its internals changed "
            f"({type(err).__name__}: {err}); update tools/emulate_tpu_numerics.py"
        ) from err

    def is_default(precision) -> bool:
        if precision is None:
            # Normally already resolved at trace time; None means the config was unset.
            resolved = canonicalize_precision(None)
            return resolved is None or is_default(resolved)
        if isinstance(precision, tuple):
            return all(p == Precision.DEFAULT for p in precision)
        if isinstance(precision, Precision):
            return precision == Precision.DEFAULT
        return precision == DotAlgorithmPreset.DEFAULT

    def round_to_bf16(operand, aval):
        if getattr(aval, "dtype", None) != np.float32:
            return operand
        return hlo.reduce_precision(
            operand, mlir.i32_attr(_BF16_EXPONENT_BITS), mlir.i32_attr(_BF16_MANTISSA_BITS)
        )

    def tpu_bf16_dot_general_lowering(ctx, lhs, rhs, *args, precision=None, **params):
        if is_default(precision):
            lhs_aval, rhs_aval = ctx.avals_in[:2]
            lhs = round_to_bf16(lhs, lhs_aval)
            rhs = round_to_bf16(rhs, rhs_aval)
        return original_rule(ctx, lhs, rhs, *args, precision=precision, **params)

    tpu_bf16_dot_general_lowering.original_rule = original_rule  # for debugging
    mlir.register_lowering(dot_general_p, tpu_bf16_dot_general_lowering, platform="cpu", inline=inline)
    _installed_mode = mode
