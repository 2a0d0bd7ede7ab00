"""`make bench` cannot rot: its quick mode (tiny sizes) runs the real benchmark code end to end.

Timings are not asserted; only that every measure ran and produced sane numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys

from lectures import ROOT


def test_benchmark_quick_mode_runs_every_measure(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"bench.py --quick failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    report = json.loads(out.read_text())
    assert report["quick"] is True and report["machine"]["jax"]
    rows = {row["name"].strip(): row for row in report["rows"]}
    for number in "1234567":
        assert any(name.startswith(f"{number}.") for name in rows), f"measure {number} is missing from the report"
    measured = [row for row in report["rows"] if "median" in row]
    assert all(row["min"] <= row["median"] <= row["max"] and row["min"] > 0 for row in measured)
    for must_run in ("1. XLA", "2. MNIST", "4. NumPy", "5. logistic", "7. peak RSS"):
        assert any(row["name"].startswith(must_run) for row in measured), f"{must_run} produced no number"
    pytorch = next(row for row in report["rows"] if row["name"] == "3. PyTorch eager")
    assert "median" in pytorch or "not installed" in pytorch["note"], pytorch
    assert all(row["target"] is None for row in report["rows"]), "quick mode must not judge targets"
    peak = next(row for row in measured if row["name"].startswith("7. peak RSS"))["median"]
    assert 50 < peak < 16_384, f"peak memory {peak} MiB is not in MiB (ru_maxrss is KiB on Linux, bytes on macOS)"
    assert "jax-lectures benchmark" in result.stdout
