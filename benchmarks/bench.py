"""How fast the lectures' training really is: `make bench` (or `python benchmarks/bench.py [--quick]`).

Prints one table and writes the same figures to build/bench.json. Every figure is
a rate or a ratio measured side by side in this run, repeated; the table shows
the median with min and max, because these machines are noisy. The JAX rows run
the lectures' own code (cells tagged `library`, loaded from the notebooks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import ROOT, notebooks, set_kernel_defaults  # noqa: E402

set_kernel_defaults()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from baselines import NumpyMLP, torch_trainer  # noqa: E402
from notebook_code import load_notebook_code  # noqa: E402

# Each lecture's budget under nbval on the 2-core CI machine (06 without Fashion-MNIST); the series' is their sum.
LECTURE_BUDGETS_S = {"01": 20, "02": 16, "03": 20, "04": 28, "05": 26, "06": 36, "07": 24}
TARGETS = {  # issue "Benchmarks": where the lectures should stand on a 2-core CPU
    "mnist_fraction_of_matmul": 0.70,
    "jax_over_torch_eager": 2.5,
    "scan_over_python_loop": 50.0,
    "series_seconds": float(sum(LECTURE_BUDGETS_S.values())),
}


class Sizes:
    def __init__(self, quick: bool):
        self.quick = quick
        self.reps = 2 if quick else 5
        self.matmul_n = 256 if quick else 2048
        self.mnist_batches = 2 if quick else 64  # full: 16,384 examples per timed epoch
        self.reference_batches = 1 if quick else 8  # the slower NumPy/PyTorch steps
        self.logreg_steps = 20 if quick else 1000
        self.logreg_eager_steps = 5 if quick else 100
        self.memory_examples = 512 if quick else 55_000  # one epoch over a full MNIST-sized training split


def timed(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


class Report:
    def __init__(self, quick: bool):
        self.rows: list[dict] = []
        self.quick = quick  # tiny sizes say nothing about speed: no target is judged

    def add(self, name: str, unit: str, values: list[float] | None, note: str = "", target: float | None = None):
        row = {"name": name, "unit": unit, "note": note, "target": None if self.quick else target}
        if values:
            row.update(summary(values))
            if row["target"] is not None:
                row["meets_target"] = row["median"] >= target if unit != "s" else row["median"] <= target
        self.rows.append(row)
        return row

    def print_table(self, header: str) -> None:
        print(header)
        lines = [("measure", "median", "min", "max", "unit", "target", "note")]
        for r in self.rows:
            if "median" in r:
                nums = [f"{r[k]:.3g}" if r[k] < 100 else f"{r[k]:,.0f}" for k in ("median", "min", "max")]
            else:
                nums = ["-", "-", "-"]
            target = "" if r["target"] is None else ("≤ " if r["unit"] == "s" else "≥ ") + f"{r['target']:g}"
            if "meets_target" in r:
                target += " ok" if r["meets_target"] else " MISSED"
            lines.append((r["name"], *nums, r["unit"], target, r["note"]))
        widths = [max(len(line[i]) for line in lines) for i in range(6)]
        for i, line in enumerate(lines):
            cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:4], widths[1:4], strict=True)]
            cells += [line[4].ljust(widths[4]), line[5].ljust(widths[5]), line[6]]
            print("  ".join(cells).rstrip())
            if i == 0:
                print("  ".join("-" * w for w in widths) + "  ----")


# --- 1. the machine's limit -------------------------------------------------------------------------


def matmul_rate(n: int):
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()
    return lambda: 2 * n**3 / timed(lambda: matmul(a, b)) / 1e9  # GFLOP/s of one product


# --- 2-4. the MNIST MLP -----------------------------------------------------------------------------


def mnist_data(lecture, batches: int):
    n = batches * lecture.BATCH_SIZE
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)  # MNIST-shaped; speed does not depend on content
    labels = rng.integers(0, lecture.NUM_CLASSES, n).astype(np.int32)
    return lecture.preprocess(images), labels


def flops_per_example(lecture) -> float:
    """Lecture 06's count: 6 FLOPs per parameter (forward, weight and input gradients), minus the input
    gradient of the first layer, which nobody needs. XLA's cost analysis agrees to within 2%."""
    sizes = (lecture.IMAGE_PIXELS, *lecture.HIDDEN, lecture.NUM_CLASSES)
    n_params = sum(m * n + n for m, n in zip(sizes[:-1], sizes[1:], strict=True))
    return 6.0 * n_params - 2.0 * sizes[0] * sizes[1]


def jax_epoch(lecture, images, labels, max_shift: int):
    """The lecture's whole-epoch lax.scan training function, ready to time; returns examples/s per call."""
    from flax import nnx

    steps = len(images) // lecture.BATCH_SIZE
    model = lecture.MLP(rngs=nnx.Rngs(0))
    graphdef, state = nnx.split((model, lecture.make_optimizer(model, total_steps=100 * steps)))
    x, y = jnp.asarray(images), jnp.asarray(labels)
    keys = iter(jax.random.split(jax.random.key(0), 10_000))

    def run():
        nonlocal state
        state, metrics = lecture.train_epoch(graphdef, state, x, y, next(keys), max_shift=max_shift)
        return metrics

    jax.block_until_ready(run())  # compile
    return lambda: steps * lecture.BATCH_SIZE / timed(run)


def reference_rate(step, images, labels, batch_size, to_batch):
    batches = [
        to_batch(images[i : i + batch_size], labels[i : i + batch_size]) for i in range(0, len(images), batch_size)
    ]
    step(*batches[0])  # warm up (allocations, torch.compile)

    def run():
        start = time.perf_counter()
        for x, y in batches:
            step(x, y)
        return len(images) / (time.perf_counter() - start)

    return run


def torch_rates(lecture, images, labels, compile_model: bool):
    sizes = (lecture.IMAGE_PIXELS, *lecture.HIDDEN, lecture.NUM_CLASSES)
    step = torch_trainer(sizes, lecture.LEARNING_RATE, compile_model=compile_model)
    if step is None:
        return None, "PyTorch not installed (pip install -r benchmarks/requirements.txt)"
    import torch

    def to_batch(x, y):
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))

    try:
        return reference_rate(step, images, labels, lecture.BATCH_SIZE, to_batch), f"torch {torch.__version__}"
    except Exception as err:  # torch.compile needs a working C++ toolchain; say why it is missing
        return None, f"failed here: {type(err).__name__}: {str(err).splitlines()[0][:80]}"


# --- 5. logistic regression (lecture 04) -------------------------------------------------------------


def logistic_rates(sizes: Sizes):
    lecture = load_notebook_code("04")
    key_x, key_y = jax.random.split(jax.random.key(0))
    X = jax.random.normal(key_x, (400, 2), jnp.float32)
    y = (X @ jnp.array([1.5, -2.0]) + 0.3 * jax.random.normal(key_y, (400,)) > 0).astype(jnp.float32)
    params0 = lecture.init_params(2)
    step_jit = jax.jit(lecture.train_step)

    def python_loop(step, steps):
        params = params0
        for _ in range(steps):
            params, _ = step(params, X, y, 0.5)
        return params

    jax.block_until_ready(lecture.train_scan(params0, X, y, 0.5, sizes.logreg_steps))
    python_loop(step_jit, 2)
    python_loop(lecture.train_step, 2)
    per_step = {
        "scan": lambda: timed(lambda: lecture.train_scan(params0, X, y, 0.5, sizes.logreg_steps)) / sizes.logreg_steps,
        "jit": lambda: timed(lambda: python_loop(step_jit, sizes.logreg_steps)) / sizes.logreg_steps,
        "eager": lambda: (
            timed(lambda: python_loop(lecture.train_step, sizes.logreg_eager_steps)) / sizes.logreg_eager_steps
        ),
    }
    return per_step


# --- 6-7. the series under nbval, and peak memory -------------------------------------------------------


def series_seconds() -> tuple[dict[str, float], dict[str, str]]:
    """Wall seconds of each notebook under nbval, and why any notebook failed (its first error line)."""
    seconds, failures = {}, {}
    for notebook in notebooks():
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", str(notebook.relative_to(ROOT)), "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds[notebook.stem] = time.perf_counter() - start
        if result.returncode != 0:
            plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
            errors = re.findall(r"^(\w+(?:Error|Exception): .*)$", plain, re.MULTILINE)
            failures[notebook.stem] = errors[0][:160] if errors else f"pytest exit code {result.returncode}"
    return seconds, failures


def peak_memory_child(examples: int) -> None:
    """Run one MNIST-sized training epoch of lecture 06 and print this process's peak RSS in MiB."""
    lecture = load_notebook_code("06")
    images, labels = mnist_data(lecture, examples // lecture.BATCH_SIZE)
    jax.block_until_ready(jax_epoch(lecture, images, labels, lecture.MAX_SHIFT)())
    print(peak_rss_mib())


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB, on Linux (KiB), macOS (bytes) and Windows (psutil)."""
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return psutil.Process().memory_info().peak_wset / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def peak_memory_mib(examples: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--peak-memory-child", str(examples)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


# --- the run -----------------------------------------------------------------------------------------------


def interleaved(measures: dict, reps: int) -> dict[str, list[float]]:
    """Call each measure once per repetition, in turn, so slow drifts of the machine hit all alike."""
    values = {name: [] for name in measures}
    for _ in range(reps):
        for name, measure in measures.items():
            values[name].append(measure())
    return values


def ratios(a: list[float], b: list[float]) -> list[float]:
    return [x / y for x, y in zip(a, b, strict=True)]


def run(sizes: Sizes, report: Report, with_series: bool) -> None:
    mnist = load_notebook_code("06")
    images, labels = mnist_data(mnist, sizes.mnist_batches)
    ref_images, ref_labels = images[: sizes.reference_batches * mnist.BATCH_SIZE], labels[: len(images)]
    flops = flops_per_example(mnist)
    sizes_tuple = (mnist.IMAGE_PIXELS, *mnist.HIDDEN, mnist.NUM_CLASSES)

    measures = {
        "matmul": matmul_rate(sizes.matmul_n),
        "jax_lecture": jax_epoch(mnist, images, labels, mnist.MAX_SHIFT),
        "jax_plain": jax_epoch(mnist, images, labels, 0),
        "numpy": reference_rate(
            NumpyMLP(sizes_tuple, mnist.LEARNING_RATE).step,
            ref_images,
            ref_labels[: len(ref_images)],
            mnist.BATCH_SIZE,
            lambda x, y: (x, y),
        ),
    }
    notes = {}
    for name, compiled in (("torch_eager", False), ("torch_compile", True)):
        if sizes.quick and compiled:
            notes[name] = "not run in quick mode"
            continue
        measure, notes[name] = torch_rates(mnist, ref_images, ref_labels[: len(ref_images)], compiled)
        if measure is not None:
            measures[name] = measure
    v = interleaved(measures, sizes.reps)

    report.add(f"1. XLA float32 matmul {sizes.matmul_n}x{sizes.matmul_n}", "GFLOP/s", v["matmul"])
    report.add(
        "2. MNIST MLP epoch (lecture 06 step, lax.scan)",
        "examples/s",
        v["jax_lecture"],
        f"batch {mnist.BATCH_SIZE}, Adam, {mnist.MAX_SHIFT}-px shift augmentation",
    )
    report.add(
        "   same, achieved",
        "GFLOP/s",
        [r * flops / 1e9 for r in v["jax_lecture"]],
        f"{flops / 1e6:.2f} MFLOP per example, as lecture 06 counts",
    )
    report.add(
        "   same, fraction of matmul rate",
        "ratio",
        ratios([r * flops / 1e9 for r in v["jax_lecture"]], v["matmul"]),
        target=TARGETS["mnist_fraction_of_matmul"],
    )
    report.add("   without augmentation (plain MLP step)", "examples/s", v["jax_plain"])
    report.add(
        "   plain step, fraction of matmul rate",
        "ratio",
        ratios([r * flops / 1e9 for r in v["jax_plain"]], v["matmul"]),
    )
    for name, label in (("torch_eager", "3. PyTorch eager"), ("torch_compile", "   PyTorch torch.compile")):
        report.add(label, "examples/s", v.get(name), notes[name])
        if name in v:
            report.add(
                f"   JAX (plain step) / {label.strip().removeprefix('3. ')}",
                "ratio",
                ratios(v["jax_plain"], v[name]),
                target=TARGETS["jax_over_torch_eager"] if name == "torch_eager" else None,
            )
    report.add("4. NumPy, hand-written backward + Adam", "examples/s", v["numpy"])
    report.add("   JAX (plain step) / NumPy", "ratio", ratios(v["jax_plain"], v["numpy"]))

    lr = interleaved(logistic_rates(sizes), sizes.reps)
    report.add("5. logistic regression (lecture 04): lax.scan", "µs/step", [1e6 * t for t in lr["scan"]])
    report.add("   jitted step in a Python loop", "µs/step", [1e6 * t for t in lr["jit"]])
    report.add("   un-jitted Python loop", "µs/step", [1e6 * t for t in lr["eager"]])
    report.add(
        "   lax.scan / un-jitted loop speedup",
        "ratio",
        ratios(lr["eager"], lr["scan"]),
        target=TARGETS["scan_over_python_loop"],
    )
    report.add("   lax.scan / jitted-step loop speedup", "ratio", ratios(lr["jit"], lr["scan"]))

    if with_series:
        runs = [series_seconds() for _ in range(sizes.reps if not sizes.quick else 1)]
        failures = {stem: why for _, failed in runs for stem, why in failed.items()}
        for stem in runs[0][0]:
            note = f"FAILED: {failures[stem]}" if stem in failures else ""
            budget = LECTURE_BUDGETS_S.get(stem[:2])
            report.add(f"6. nbval {stem}", "s", None if note else [r[0][stem] for r in runs], note, target=budget)
        report.add(
            "6. whole series under nbval",
            "s",
            None if failures else [sum(r[0].values()) for r in runs],
            f"not timed: {', '.join(sorted(failures))} failed" if failures else "",
            target=TARGETS["series_seconds"],
        )
    else:
        report.add("6. whole series under nbval", "s", None, "not run (--no-series or quick mode)")

    report.add(
        "7. peak RSS, one MNIST-sized training epoch",
        "MiB",
        # Quick mode reads this process's peak (it already ran such epochs) instead of loading lecture 06 again.
        [peak_rss_mib() if sizes.quick else peak_memory_mib(sizes.memory_examples)],
        "this process (quick mode)" if sizes.quick else f"{sizes.memory_examples:,} examples, separate process",
    )


def cpu_model() -> str | None:
    """The CPU's marketing name on Linux (platform.processor() only says x86_64 there)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)


def machine() -> dict:
    device = jax.devices()[0]
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    return {
        "platform": platform.platform(),
        "processor": cpu_model() or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": f"{device.platform}: {device.device_kind}",
        "python": platform.python_version(),
        "jax": jax.__version__,
        "torch": torch_version,
        "numpy": np.__version__,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code runs, not the speed")
    parser.add_argument("--no-series", action="store_true", help="skip timing the notebooks under nbval")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench.json")
    parser.add_argument("--peak-memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak_memory_child:
        peak_memory_child(args.peak_memory_child)
        return 0

    sizes, report = Sizes(args.quick), Report(args.quick)
    info = machine()
    run(sizes, report, with_series=not (args.no_series or args.quick))
    report.print_table(
        f"jax-lectures benchmark on {info['device']} ({info['processor']}), {info['cpu_count']} cores, "
        f"JAX {info['jax']} "
        f"({'quick mode' if args.quick else f'{sizes.reps} repetitions'})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"machine": info, "quick": args.quick, "rows": report.rows}, indent=2))
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    failed = [row["name"].strip() for row in report.rows if row["note"].startswith("FAILED")]
    if failed:
        print(f"error: {', '.join(failed)} failed; see the notes above", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
