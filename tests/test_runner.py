"""`make lectures` and `make refresh` never hang: a dead kernel, a cell past its timeout, an unreadable
notebook, a lecture that litters its folder, Ctrl-C and SIGTERM each end the run in seconds, name the
notebook and cell, and leave no kernel running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from lectures import ROOT
from notebook_exec import CELL_TIMEOUT_ENV, LectureFailed, cell_timeout_s, execute_notebook
from test_harness import make_notebook, pid_alive

RUN_LECTURES = ROOT / "tools" / "run_lectures.py"
REFRESH = ROOT / "tools" / "refresh.py"


def pid_cell(pid_file):
    """A first cell that records the kernel's process id (written atomically, outside the working folder)."""
    source = (
        "import os, pathlib\n"
        f"_pid = pathlib.Path({str(pid_file)!r})\n"
        "_pid.with_suffix('.tmp').write_text(str(os.getpid()))\n"
        "_pid.with_suffix('.tmp').replace(_pid)"
    )
    return (source, [], [])


def wait_for_pid(pid_file, timeout_s=60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while not pid_file.exists():
        assert time.monotonic() < deadline, "the kernel never ran its first cell"
        time.sleep(0.05)
    return int(pid_file.read_text())


def assert_gone(pid: int, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), f"kernel process {pid} is still running"


def test_a_dead_kernel_is_named_within_seconds(tmp_path):
    path = tmp_path / "09_dead.ipynb"
    pid_file = tmp_path / "kernel.pid"
    make_notebook(path, [pid_cell(pid_file), ("import os\nos._exit(1)", [], [])])
    start = time.monotonic()
    with pytest.raises(LectureFailed, match=r"^09_dead.ipynb: the kernel died while running code cell 2 "):
        execute_notebook(path)
    elapsed = time.monotonic() - start
    assert elapsed < 30, f"a dead kernel took {elapsed:.1f} s to notice"
    assert_gone(wait_for_pid(pid_file, 0))


@pytest.mark.parametrize("loop", ["while True:\n    pass", "import time\nwhile True:\n    time.sleep(0.1)"])
def test_a_cell_past_its_timeout_is_stopped_and_named(tmp_path, loop):
    path = tmp_path / "09_loop.ipynb"
    pid_file = tmp_path / "kernel.pid"
    make_notebook(path, [pid_cell(pid_file), ("x = 1", [], []), (loop, [], [])])
    with pytest.raises(LectureFailed, match=rf"^09_loop.ipynb: code cell 3 timed out after 3 s.*{CELL_TIMEOUT_ENV}"):
        execute_notebook(path, timeout_s=3)
    assert_gone(wait_for_pid(pid_file, 0))


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"^09_bad.ipynb is not a notebook: invalid JSON at line 1, column 1"),
        ('{"cells": [}', r"^09_bad.ipynb is not a notebook: invalid JSON at line 1, column 12"),
        ("[1, 2]", r"^09_bad.ipynb is not a notebook: valid JSON, but no .nbformat. field"),
        (
            '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": ['
            '{"cell_type": "markdown", "id": "a", "metadata": {}, "source": "hi"},'
            '{"cell_type": "code", "id": "b", "metadata": {}, "source": "x = 1"}]}',
            r"^09_bad.ipynb is not a valid notebook: cell 2 \(counting every cell\):",
        ),
    ],
    ids=["empty", "truncated-json", "json-not-a-notebook", "code-cell-without-outputs"],
)
def test_an_unreadable_notebook_is_named(tmp_path, text, message):
    path = tmp_path / "09_bad.ipynb"
    path.write_text(text)
    with pytest.raises(LectureFailed, match=message):
        execute_notebook(path)


def test_a_missing_notebook_is_named(tmp_path):
    with pytest.raises(LectureFailed, match=r"09_missing.ipynb: cannot read this notebook"):
        execute_notebook(tmp_path / "09_missing.ipynb")


def test_a_lecture_that_writes_to_its_working_folder_fails(tmp_path):
    # The same rule as the tests' isolation check (conftest.py): a lecture writes only to temporary folders.
    path = tmp_path / "09_stray.ipynb"
    pid_file = tmp_path / "kernel.pid"
    litter = "import os\nos.mkdir('out')\n_ = open('stray.txt', 'w').write('x')"
    make_notebook(path, [pid_cell(pid_file), (litter, [], [])])
    stray = r"^09_stray.ipynb left files in its working folder: \['out', 'stray.txt'\]"
    with pytest.raises(LectureFailed, match=stray):
        execute_notebook(path)
    assert_gone(wait_for_pid(pid_file, 0))


def test_a_malformed_timeout_setting_is_refused():
    assert cell_timeout_s({}) == 600
    assert cell_timeout_s({CELL_TIMEOUT_ENV: " 5 "}) == 5
    for bad in ("0", "-3", "1.5", "ten"):
        with pytest.raises(ValueError, match=CELL_TIMEOUT_ENV):
            cell_timeout_s({CELL_TIMEOUT_ENV: bad})


def run_tool(tool, *args, env=None, **kwargs):
    return subprocess.Popen(
        [sys.executable, str(tool), *map(str, args)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.parametrize("tool", [RUN_LECTURES, REFRESH], ids=["lectures", "refresh"])
def test_the_tools_stop_at_a_timeout_with_a_clear_message(tmp_path, tool):
    path = tmp_path / "09_loop.ipynb"
    pid_file = tmp_path / "kernel.pid"
    make_notebook(path, [pid_cell(pid_file), ("while True:\n    pass", [], [])])
    before = path.read_bytes()
    proc = run_tool(tool, path, env={CELL_TIMEOUT_ENV: "2"})
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    assert "09_loop.ipynb: code cell 2 timed out after 2 s" in stderr
    assert "Traceback" not in stderr
    assert path.read_bytes() == before, "a failing notebook is left untouched"
    assert_gone(wait_for_pid(pid_file, 0))


@pytest.mark.parametrize(
    "tool, signum",
    [(RUN_LECTURES, signal.SIGINT), (RUN_LECTURES, signal.SIGTERM), (REFRESH, signal.SIGTERM)],
    ids=["lectures-SIGINT", "lectures-SIGTERM", "refresh-SIGTERM"],
)
def test_a_signal_stops_the_tools_and_their_kernel(tmp_path, tool, signum):
    path = tmp_path / "09_sleep.ipynb"
    pid_file = tmp_path / "kernel.pid"
    make_notebook(path, [pid_cell(pid_file), ("import time\ntime.sleep(600)", [], [])])
    proc = run_tool(tool, path)
    try:
        kernel = wait_for_pid(pid_file)
        time.sleep(0.5)  # let the second cell start
        proc.send_signal(signum)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, stderr
    assert f"interrupted by {name} while running 09_sleep.ipynb (code cell 2)" in stderr
    assert "Traceback" not in stderr
    assert elapsed < 10, f"{tool.name} took {elapsed:.1f} s to stop after {name}"
    assert_gone(kernel, within_s=1)
