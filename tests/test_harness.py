"""The nbval collector (conftest.py) itself: sanitizer rules, strict comparison, isolation, failures named by cell."""

from __future__ import annotations

import re
import shutil

import pytest
from lectures import ROOT, make_notebook
from nbval.plugin import get_sanitize_patterns

SANITIZER = ROOT / "tests" / "nbval_sanitize.cfg"


def sanitize(text: str) -> str:
    for regex, replacement in get_sanitize_patterns(SANITIZER.read_text()):
        text = re.sub(regex, replacement, text)
    return text


def test_every_sanitizer_rule_is_well_formed():
    # nbval silently drops a rule whose two lines are malformed: count what it actually parses.
    declared = [line for line in SANITIZER.read_text().splitlines() if line.startswith("regex:")]
    parsed = get_sanitize_patterns(SANITIZER.read_text())
    assert len(parsed) == len(declared) > 0, f"nbval parses {len(parsed)} of {len(declared)} rules in {SANITIZER.name}"


@pytest.mark.parametrize(
    "cpu, gpu",
    [
        ("[CpuDevice(id=0)]", "[CudaDevice(id=0)]"),
        ("on TpuDevice(id=3)", "on CpuDevice(id=3)"),
        ("<object at 0x7f3a2c1d9e80>", "<object at 0x55d1c0ffee00>"),
    ],
)
def test_sanitizer_makes_platform_outputs_equal(cpu, gpu):
    assert cpu != gpu and sanitize(cpu) == sanitize(gpu)


def test_sanitizer_keeps_numbers_that_should_be_checked():
    assert (
        sanitize("accuracy 0.975, CpuDevice(id=0) vs CpuDevice(id=1)") == "accuracy 0.975, Device(id=0) vs Device(id=1)"
    )


@pytest.fixture
def demo_project(pytester):
    """A copy of this repository's nbval harness with one small notebook."""
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    pytester.makeini(f"[pytest]\npythonpath = {ROOT / 'tools'}\n")
    (pytester.path / "tests").mkdir()
    shutil.copy(SANITIZER, pytester.path / "tests" / SANITIZER.name)
    (pytester.path / "notebooks").mkdir()
    return pytester


STDERR_CELL = ("import sys; print('log line', file=sys.stderr)", [("stderr", "a different log line\n")], [])
DEVICE_CELL = ("print('CpuDevice(id=0)')", [("stdout", "CudaDevice(id=0)\n")], [])


def test_the_collector_is_strict_isolated_and_names_the_cell(demo_project):
    """One pytest run, four notebooks (one kernel each): what passes, what fails, and why."""
    notebooks = demo_project.path / "notebooks"
    make_notebook(notebooks / "01_passes.ipynb", [
        ("print(6 * 7)", [("stdout", "42\n")], []),
        STDERR_CELL,
        DEVICE_CELL,
        ("import random; print(random.random())", [("stdout", "0.5\n")], ["nbval-ignore-output"]),
    ])
    make_notebook(notebooks / "02_changed.ipynb", [("print(6 * 7)", [("stdout", "41\n")], [])])
    make_notebook(notebooks / "03_litters.ipynb", [("_ = open('stray.txt', 'w').write('x')", [], [])])
    make_notebook(notebooks / "04_imports.ipynb", [("import helper", [], [])])
    (notebooks / "helper.py").write_text("VALUE = 1\n")
    result = demo_project.runpytest_subprocess("notebooks", "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=5, failed=2, errors=1)
    for line in (r"FAILED notebooks/02_changed.ipynb::Cell 0.*", r"FAILED notebooks/04_imports.ipynb::Cell 0.*",
                 r".*03_litters.ipynb left files in its working folder: \['stray.txt'\].*"):
        result.stdout.re_match_lines([line])
    result.stdout.fnmatch_lines(["*ModuleNotFoundError*helper*"])


def test_stock_nbval_collects_each_notebook_once(demo_project):
    """With --nbval-lax (or --nbval) nbval collects the notebooks and our collector stands aside: one item per cell."""
    make_notebook(demo_project.path / "notebooks" / "01_demo.ipynb", [("print(6 * 7)", [("stdout", "42\n")], [])])
    result = demo_project.runpytest_subprocess("--collect-only", "-q", "--nbval-lax", "notebooks")
    result.stdout.fnmatch_lines(["1 test collected*"])
