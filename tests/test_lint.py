"""ruff is clean on the tools, the tests and the notebooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lectures import ROOT


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    targets = [p for p in ("tools", "tests", "notebooks", "benchmarks", "conftest.py") if (ROOT / p).exists()]
    result = subprocess.run([str(ruff), "check", "--no-cache", *targets], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"ruff found problems:\n{result.stdout}{result.stderr}"
