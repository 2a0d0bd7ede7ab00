"""The test and run machinery itself: sanitizer rules, strict nbval, isolation, clear failures."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time

import nbformat
import pytest
from lectures import ROOT
from nbval.plugin import get_sanitize_patterns
from notebook_exec import LectureFailed, execute_notebook
from run_lectures import headline

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


def make_notebook(path, cells):
    """cells: (source, stored text outputs as [(stream name, text)], tags)."""
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    for count, (source, outputs, tags) in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(source, execution_count=count, metadata={"tags": tags})
        cell.outputs = [nbformat.v4.new_output("stream", name=name, text=text) for name, text in outputs]
        nb.cells.append(cell)
    nbformat.write(nb, path)


@pytest.fixture
def demo_project(pytester):
    """A copy of this repository's nbval harness with one small notebook."""
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    (pytester.path / "tests").mkdir()
    shutil.copy(SANITIZER, pytester.path / "tests" / SANITIZER.name)
    (pytester.path / "notebooks").mkdir()
    return pytester


STDERR_CELL = ("import sys; print('log line', file=sys.stderr)", [("stderr", "a different log line\n")], [])
DEVICE_CELL = ("print('CpuDevice(id=0)')", [("stdout", "CudaDevice(id=0)\n")], [])


def test_nbval_is_strict_but_ignores_stderr_and_device_names(demo_project):
    make_notebook(
        demo_project.path / "notebooks" / "01_demo.ipynb",
        [
            ("print(6 * 7)", [("stdout", "42\n")], []),
            STDERR_CELL,
            DEVICE_CELL,
            ("import random; print(random.random())", [("stdout", "0.5\n")], ["nbval-ignore-output"]),
        ],
    )
    result = demo_project.runpytest_subprocess("notebooks", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_nbval_fails_on_a_changed_output_and_names_the_cell(demo_project):
    make_notebook(
        demo_project.path / "notebooks" / "01_demo.ipynb",
        [
            ("print(6 * 7)", [("stdout", "41\n")], []),
        ],
    )
    result = demo_project.runpytest_subprocess("notebooks", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*01_demo.ipynb::Cell 0*"])


def test_a_notebook_that_writes_to_its_folder_fails_isolation(demo_project):
    make_notebook(
        demo_project.path / "notebooks" / "01_demo.ipynb",
        [
            ("_ = open('stray.txt', 'w').write('x')", [], []),
        ],
    )
    (demo_project.path / "notebooks" / "helper.py").write_text("VALUE = 1\n")
    result = demo_project.runpytest_subprocess("notebooks", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.re_match_lines([r".*01_demo.ipynb left files in its working folder: \['stray.txt'\].*"])


def test_a_notebook_cannot_import_its_neighbours(demo_project):
    (demo_project.path / "notebooks" / "helper.py").write_text("VALUE = 1\n")
    make_notebook(
        demo_project.path / "notebooks" / "01_demo.ipynb",
        [
            ("import helper", [], []),
        ],
    )
    result = demo_project.runpytest_subprocess("notebooks", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ModuleNotFoundError*helper*"])


def test_a_failing_lecture_names_notebook_and_cell(tmp_path):
    path = tmp_path / "09_broken.ipynb"
    make_notebook(path, [("x = 1", [], []), ("print(1 / 0)", [], [])])
    with pytest.raises(LectureFailed, match=r"09_broken.ipynb: code cell 2 failed with ZeroDivisionError"):
        execute_notebook(path)


def test_an_intended_error_keeps_only_its_message(tmp_path):
    path = tmp_path / "09_errors.ipynb"
    make_notebook(
        path,
        [("raise KeyError('shown on purpose')", [], ["raises-exception"]), ("print('ran on')", [], ["headline"])],
    )
    nb = execute_notebook(path)
    error = nb.cells[0].outputs[0]
    assert error.output_type == "error" and len(error.traceback) == 1 and "shown on purpose" in error.traceback[0]
    assert sys.prefix not in str(nb), "stored outputs must not name the local Python installation"
    assert headline(nb) == "ran on"


def test_an_error_while_displaying_a_result_fails_the_lecture(tmp_path):
    path = tmp_path / "09_display.ipynb"
    # Matplotlib cannot draw this label; the cell itself runs fine, the figure fails as it is shown.
    source = "import matplotlib.pyplot as plt\nplt.xlabel(r'$\\lVert w \\rVert$')\nplt.show()"
    make_notebook(path, [(source, [], [])])
    with pytest.raises(LectureFailed, match=r"09_display.ipynb: code cell 1 stored an error: ValueError"):
        execute_notebook(path)


def test_each_lecture_kernel_is_shut_down_when_it_finishes(tmp_path):
    # A kernel left running holds its memory (a whole MNIST run) until `make lectures` exits.
    path = tmp_path / "09_pid.ipynb"
    make_notebook(path, [("import os\nprint(os.getpid())", [], [])])
    nb = execute_notebook(path)
    pid = int(nb.cells[0].outputs[0].text)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid), f"kernel process {pid} is still running after its notebook finished"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_progress_bar_frames_are_stored_as_their_final_line():
    from notebook_exec import collapse_progress_frames

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("...")
    frames = ["\rtrain: 0/3 epochs", "\rtrain: 1/3 epochs", "\rtrain: 3/3 epochs", "\n"]
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=t) for t in frames]
    cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text="loss 0.1\r\nacc 0.9\n"))
    nb.cells.append(cell)
    collapse_progress_frames(nb)
    stored = [(o.name, o.text) for o in cell.outputs]
    assert stored == [("stderr", "train: 3/3 epochs\n"), ("stdout", "loss 0.1\nacc 0.9\n")]
