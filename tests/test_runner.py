"""`make lectures` and `make refresh` (tools/runner.py) never hang and never hide: a failing cell, a dead kernel,
a cell past its timeout, an unreadable notebook, a lecture that litters its folder, Ctrl-C and SIGTERM each end the
run in seconds, name the notebook and cell, and leave no kernel running. Kernels report their process id through a
file the first cell writes; every wait is on such a file or a process, never a fixed sleep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from lectures import ROOT, make_notebook
from runner import CELL_TIMEOUT_ENV, LectureFailed, cell_timeout_s, execute, headline, refresh, to_html

RUNNER = ROOT / "tools" / "runner.py"


def write_when_run(path) -> str:
    """Source that records the kernel's process id in ``path`` (atomically, outside the working folder)."""
    return f"import os, pathlib\npathlib.Path({str(path)!r} + '.tmp').write_text(str(os.getpid()))\n" \
        f"os.replace({str(path)!r} + '.tmp', {str(path)!r})\n"


def wait_for(path, timeout_s=120.0) -> int:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)
    return int(path.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_gone(pid: int, within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), f"kernel process {pid} is still running"


def test_a_failing_cell_is_named(tmp_path):
    path = make_notebook(tmp_path / "09_broken.ipynb", [("x = 1", [], []), ("print(1 / 0)", [], [])])
    with pytest.raises(LectureFailed, match=r"^09_broken.ipynb: code cell 2 failed with ZeroDivisionError"):
        execute(path)


def test_a_dead_kernel_is_named(tmp_path):
    pid = tmp_path / "kernel.pid"
    cells = [(write_when_run(pid), [], []), ("import os\nos._exit(1)", [], [])]
    path = make_notebook(tmp_path / "09_dead.ipynb", cells)
    with pytest.raises(LectureFailed, match=r"^09_dead.ipynb: the kernel died while running code cell 2 "):
        execute(path)
    assert_gone(wait_for(pid, 0))


def test_a_cell_past_its_timeout_is_stopped_and_named(tmp_path):
    pid = tmp_path / "kernel.pid"
    cells = [(write_when_run(pid), [], []), ("while True:\n    pass", [], [])]
    path = make_notebook(tmp_path / "09_loop.ipynb", cells)
    with pytest.raises(LectureFailed, match=rf"^09_loop.ipynb: code cell 2 timed out after 3 s.*{CELL_TIMEOUT_ENV}"):
        execute(path, timeout_s=3)
    assert_gone(wait_for(pid, 0))


def test_a_kernel_that_dies_as_it_starts_is_started_again_once(tmp_path, monkeypatch):
    # The first kernel exits in its IPython startup file, before it can answer kernel_info; the second one runs.
    startup = tmp_path / "startup.py"
    marker = tmp_path / "died-once"
    startup.write_text(f"import os, pathlib\nif not pathlib.Path({str(marker)!r}).exists():\n"
                       f"    pathlib.Path({str(marker)!r}).touch()\n    os._exit(1)\n")
    monkeypatch.setenv("PYTHONSTARTUP", str(startup))
    path = make_notebook(tmp_path / "09_start.ipynb", [("print('ran')", [], [])])
    said = []
    nb = execute(path, log=said.append)
    assert nb.cells[0].outputs[0].text == "ran\n"
    assert len(said) == 1 and said[0].startswith("09_start.ipynb: the kernel died as it started"), said


@pytest.mark.parametrize("text", ["", '{"cells": [}', "[1, 2]", '{"nbformat": 4, "cells": [{"cell_type": "code"}]}'])
def test_an_unreadable_notebook_is_named(tmp_path, text):
    path = tmp_path / "09_bad.ipynb"
    path.write_text(text)
    with pytest.raises(LectureFailed, match=r"^09_bad.ipynb is not a valid notebook: "):
        execute(path)


def test_a_lecture_that_writes_to_its_working_folder_fails(tmp_path):
    litter = "import os\nos.mkdir('out')\n_ = open('stray.txt', 'w').write('x')"
    path = make_notebook(tmp_path / "09_stray.ipynb", [(litter, [], [])])
    stray = r"^09_stray.ipynb left files in its working folder: \['out', 'stray.txt'\]"
    with pytest.raises(LectureFailed, match=stray):
        execute(path)


def test_what_is_stored(tmp_path):
    """An intended error keeps its last line only; progress-bar frames collapse; solutions keep no outputs."""
    cells = [
        ("raise KeyError('shown on purpose')", [], ["raises-exception"]),
        ("import sys\nfor i in range(3):\n    print(f'\\rstep {i}', end='', file=sys.stderr, flush=True)", [], []),
        ("#@title Solution 1\nprint('the answer')", [], []),
        ("print('ran on')", [], ["headline"]),
    ]
    nb = execute(make_notebook(tmp_path / "09_store.ipynb", cells))
    error = nb.cells[0].outputs[0]
    assert error.output_type == "error" and error.traceback == [error.traceback[-1]]
    assert "shown on purpose" in error.traceback[0] and sys.prefix not in str(nb)
    assert [(o.name, o.text) for o in nb.cells[1].outputs] == [("stderr", "step 2")]
    assert nb.cells[2].outputs == [] and headline(nb) == "ran on"


def test_an_error_while_displaying_a_result_fails_the_lecture(tmp_path):
    # Matplotlib cannot draw this label; the cell itself runs fine, the figure fails as it is shown.
    source = "import matplotlib.pyplot as plt\nplt.xlabel(r'$\\lVert w \\rVert$')\nplt.show()"
    path = make_notebook(tmp_path / "09_display.ipynb", [(source, [], [])])
    with pytest.raises(LectureFailed, match=r"09_display.ipynb: code cell 1 stored an error: ValueError"):
        execute(path)


def test_hidden_cells_stay_hidden_one_click_away_on_the_html_page():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("print('shown')"),
        nbformat.v4.new_code_cell("#@title Solution 1\nx = 42", metadata={"jupyter": {"source_hidden": True}}),
    ]
    html = to_html(nb)
    assert html.count("<details") == 1 and "<summary>#@title Solution 1 (hidden: click to show)</summary>" in html
    hidden = html[html.index("<details") : html.index("</details>")]
    assert ">42<" in hidden and "shown" not in hidden


def test_refresh_exports_the_figures_of_each_notebook_before_a_later_one_fails(tmp_path):
    figure = ("import matplotlib.pyplot as plt\nplt.figure(figsize=(1, 1))\nplt.plot([0, 1])\nplt.show()", [], [])
    good = make_notebook(tmp_path / "08_good.ipynb", [figure])
    nb = nbformat.read(good, as_version=4)
    nb.cells[0].metadata["export"] = "08_good-line.png"
    nbformat.write(nb, good)
    bad = make_notebook(tmp_path / "09_bad.ipynb", [("1 / 0", [], [])])
    images = tmp_path / "images"
    with pytest.raises(LectureFailed, match="09_bad.ipynb: code cell 1 failed"):
        refresh([good, bad], timeout_s=60, images=images)
    assert [p.name for p in images.iterdir()] == ["08_good-line.png"]


def test_the_cell_timeout_setting():
    assert cell_timeout_s({}) == 300
    assert cell_timeout_s({CELL_TIMEOUT_ENV: " 5 "}) == 5
    for bad in ("0", "-3", "1.5", "ten"):
        with pytest.raises(ValueError, match=CELL_TIMEOUT_ENV):
            cell_timeout_s({CELL_TIMEOUT_ENV: bad})


def start(*args, env=None):
    return subprocess.Popen([sys.executable, str(RUNNER), *map(str, args)], cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("command", ["lectures", "refresh"])
def test_the_tools_stop_at_a_timeout_with_a_clear_message(tmp_path, command):
    pid = tmp_path / "kernel.pid"
    cells = [(write_when_run(pid), [], []), ("while True:\n    pass", [], [])]
    path = make_notebook(tmp_path / "09_loop.ipynb", cells)
    before = path.read_bytes()
    proc = start(command, path, env={CELL_TIMEOUT_ENV: "2"})
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "09_loop.ipynb: code cell 2 timed out after 2 s" in stderr and "Traceback" not in stderr
    assert path.read_bytes() == before, "a failing notebook is left untouched"
    assert_gone(wait_for(pid, 0))


@pytest.mark.parametrize("command, signum", [("lectures", signal.SIGINT), ("refresh", signal.SIGTERM)])
def test_a_signal_stops_the_tools_and_their_kernel(tmp_path, command, signum):
    pid, second = tmp_path / "kernel.pid", tmp_path / "second.pid"
    sleep = write_when_run(second) + "import time\ntime.sleep(600)"
    path = make_notebook(tmp_path / "09_sleep.ipynb", [(write_when_run(pid), [], []), (sleep, [], [])])
    proc = start(command, path)
    try:
        kernel = wait_for(second)  # the second cell is running
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, stderr
    assert f"interrupted by {name} while running 09_sleep.ipynb (code cell 2)" in stderr and "Traceback" not in stderr
    assert_gone(kernel)
