"""Execute a notebook top to bottom in a fresh kernel of this environment.

Shared by ``run_lectures.py`` (into build/) and ``refresh.py`` (in place).
The kernel runs in an empty temporary folder, as in Colab and in the tests,
so a lecture cannot lean on files that happen to sit next to it, and a lecture
that leaves files there fails, as it does under ``make test``.

Nothing here may hang: the kernel is driven by an asynchronous kernel manager,
so a cell timeout, a dead kernel (a crash, ``os._exit``) and SIGINT/SIGTERM are
all noticed within a second or two, and the kernel is stopped on every way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

CELL_TIMEOUT_S = 600
CELL_TIMEOUT_ENV = "LECTURE_CELL_TIMEOUT_S"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class LectureClient(NotebookClient):
    """Lets a cell tagged ``raises-exception`` (honoured by nbclient and nbval alike) show its error."""

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        if "raises-exception" in cell.metadata.get("tags", []):
            return  # an error this cell is meant to show
        await super()._check_raise_for_error(cell, cell_index, exec_reply)


class LectureFailed(RuntimeError):
    """A lecture cannot run to the end: the message names the notebook, the cell and the reason."""


class LectureInterrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM stopped the run; the kernel, if one was running, has been stopped.

    A KeyboardInterrupt, so code that handles Ctrl-C (pytest, tqdm) handles SIGTERM the same way.
    """

    def __init__(self, signum: int, where: str = ""):
        super().__init__(signum, where)
        self.signum = signum
        self.where = where

    @property
    def exit_code(self) -> int:
        """What a shell reports for a process killed by this signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    def __str__(self) -> str:
        during = f" while running {self.where}" if self.where else ""
        return f"interrupted by {signal.Signals(self.signum).name}{during}"


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into LectureInterrupted, so every ``finally`` runs and the CLI can say why it stopped.

    While a notebook executes, execute_notebook handles the signals itself (stops the kernel, then raises).
    """

    def raise_interrupted(signum, frame):
        raise LectureInterrupted(signum)

    previous = {sig: signal.signal(sig, raise_interrupted) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cell_timeout_s(environ=os.environ) -> int:
    """The per-cell timeout in seconds: ``LECTURE_CELL_TIMEOUT_S`` if set, else 600; ValueError if malformed."""
    raw = environ.get(CELL_TIMEOUT_ENV, "").strip()
    if not raw:
        return CELL_TIMEOUT_S
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{CELL_TIMEOUT_ENV} must be a whole number of seconds above 0, not {raw!r}")
    return value


def code_cell_number(nb, index: int) -> int:
    """1-based position of cell ``index`` among code cells, as Jupyter counts them."""
    return sum(1 for c in nb.cells[: index + 1] if c.cell_type == "code")


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read and validate a notebook; raise LectureFailed naming the file (and the cell) if it cannot be."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LectureFailed(f"{path}: cannot read this notebook: {err}") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise LectureFailed(
            f"{path.name} is not a notebook: invalid JSON at line {err.lineno}, column {err.colno} ({err.msg})"
        ) from err
    if not isinstance(data, dict) or "nbformat" not in data:
        raise LectureFailed(f"{path.name} is not a notebook: valid JSON, but no 'nbformat' field at the top")
    try:
        nb = nbformat.convert(nbformat.reader.reads(text), 4)
        nbformat.validate(nb)
    except nbformat.ValidationError as err:
        where = ""
        location = list(getattr(err, "absolute_path", None) or getattr(err, "path", None) or [])
        if len(location) >= 2 and location[0] == "cells" and isinstance(location[1], int):
            where = f" cell {location[1] + 1} (counting every cell):"
        first_line = str(err.message if hasattr(err, "message") else err).splitlines()[0]
        raise LectureFailed(f"{path.name} is not a valid notebook:{where} {first_line}") from err
    except Exception as err:  # nbformat raises many kinds for JSON that is no notebook (KeyError, NBFormatError)
        raise LectureFailed(f"{path.name} is not a valid notebook: {type(err).__name__}: {err}") from err
    return nb


def execute_notebook(
    path: Path,
    on_cell_done: Callable[[int, int], None] | None = None,
    *,
    timeout_s: int | None = None,
) -> nbformat.NotebookNode:
    """Return the executed notebook; raise LectureFailed naming the notebook and the failing cell.

    ``timeout_s`` limits each cell (default: ``cell_timeout_s()``). SIGINT or SIGTERM raise
    LectureInterrupted. On every way out the kernel has been stopped.
    """
    path = Path(path)
    timeout_s = cell_timeout_s() if timeout_s is None else timeout_s
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be above 0, not {timeout_s}")
    nb = read_notebook(path)
    n_code = sum(1 for c in nb.cells if c.cell_type == "code")
    done = 0

    def cell_executed(cell, cell_index, execute_reply):
        nonlocal done
        if cell.cell_type == "code" and on_cell_done is not None:
            done += 1
            on_cell_done(done, n_code)

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    with tempfile.TemporaryDirectory(prefix=f"run-{path.stem}-", ignore_cleanup_errors=True) as workdir:
        client = LectureClient(
            nb,
            timeout=timeout_s,
            record_timing=False,  # no timestamps in stored metadata: they churn every diff
            resources={"metadata": {"path": workdir}},
            on_cell_executed=cell_executed,
        )
        _KernelRun(client, path).run()
        stray = sorted(p.name for p in Path(workdir).iterdir())
    # A failure while displaying a result (say, a figure whose label cannot be drawn) is stored as an
    # error output without failing the cell: treat it as the failure it is.
    for index, cell in enumerate(nb.cells):
        if "raises-exception" in cell.metadata.get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                where = f"code cell {code_cell_number(nb, index)}"
                raise LectureFailed(f"{path.name}: {where} stored an error: {out.get('ename')}: {out.get('evalue')}")
    if stray:
        raise LectureFailed(
            f"{path.name} left files in its working folder: {stray}. "
            "Lectures write only to temporary directories or the data cache."
        )
    shorten_expected_tracebacks(nb)
    collapse_progress_frames(nb)
    store_solutions_without_outputs(nb)
    return nb


class _KernelRun:
    """One execution of a notebook on its own event loop, owning the kernel and SIGINT/SIGTERM meanwhile."""

    def __init__(self, client: LectureClient, path: Path):
        self.client = client
        self.path = path
        self.doing = "starting its kernel"  # what the kernel is doing now, for messages
        self.signum: int | None = None  # the first stop signal received
        self.stopping = False  # the kernel is being shut down: a signal must not cancel that
        self.process = None  # the kernel's Popen, for the last-resort kill
        self.task: asyncio.Task | None = None

    def where(self) -> str:
        return f"{self.path.name} ({self.doing})"

    def on_signal(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
            if not self.stopping and self.task is not None:
                self.task.cancel()

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        previous = {}
        try:
            self.task = loop.create_task(self.drive())
            for sig in STOP_SIGNALS:
                try:
                    previous[sig] = signal.getsignal(sig)
                    loop.add_signal_handler(sig, self.on_signal, sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    previous.pop(sig, None)  # not the main thread, or no signals here: nothing to restore
            try:
                loop.run_until_complete(self.task)
                error = None
            except BaseException as err:  # sorted out below, once the kernel is gone
                error = err
        finally:
            try:
                self.cancel_leftover_tasks(loop)
            finally:
                for sig, handler in previous.items():
                    loop.remove_signal_handler(sig)
                    if handler is not None:  # None: set outside Python, and remove_signal_handler reset it
                        signal.signal(sig, handler)
                loop.close()
                self.kill_if_running()
        if self.signum is not None:
            raise LectureInterrupted(self.signum, self.where()) from None
        if error is not None:
            raise self.explain(error) from error

    async def drive(self) -> None:
        client = self.client
        succeeded = False
        try:
            client.km = AsyncKernelManager(
                kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager()
            )
            await client.async_start_new_kernel()  # in resources' path, the temporary folder
            self.process = getattr(client.km.provisioner, "process", None)
            await client.async_start_new_kernel_client()
            msg_id = await ensure_async(client.kc.kernel_info())
            info = await client.async_wait_for_reply(msg_id)
            if info is not None and "language_info" in info["content"]:
                client.nb.metadata["language_info"] = info["content"]["language_info"]
            for index, cell in enumerate(client.nb.cells):
                if cell.cell_type == "code":
                    self.doing = f"code cell {code_cell_number(client.nb, index)}"
                await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            client.set_widgets_metadata()
            succeeded = True
        finally:
            self.stopping = True
            self.doing = "stopping its kernel" if succeeded else self.doing
            client.shutdown_kernel = "graceful" if succeeded else "immediate"
            if client.km is not None:
                with contextlib.suppress(Exception):  # kill_if_running() is the fallback
                    await client._async_cleanup_kernel()

    @staticmethod
    def cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
        # nbclient leaves its output and liveness pollers running when a cell fails.
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())

    def kill_if_running(self) -> None:
        """Last resort, if the orderly shutdown was cut short: kill the kernel's process group."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            if os.getpgid(process.pid) != process.pid:
                raise OSError("the kernel does not lead a process group")
            os.killpg(process.pid, signal.SIGKILL)  # jupyter_client starts the kernel in its own session
        except (OSError, AttributeError):  # AttributeError: no process groups on this platform
            process.kill()
        with contextlib.suppress(Exception):
            process.wait(timeout=10)

    def explain(self, error: BaseException) -> BaseException:
        """The LectureFailed to raise for what went wrong (the kernel is already stopped)."""
        name, doing = self.path.name, self.doing
        if isinstance(error, CellTimeoutError):
            return LectureFailed(
                f"{name}: {doing} timed out after {self.client.timeout} s; its kernel was stopped. "
                f"If the cell is meant to take longer, set {CELL_TIMEOUT_ENV} (seconds)."
            )
        if isinstance(error, DeadKernelError):
            return LectureFailed(
                f"{name}: the kernel died {'while running ' + doing if doing.startswith('code') else 'as it started'}"
                " (a crash in native code, running out of memory, or an explicit exit)"
            )
        if isinstance(error, CellExecutionError):
            return LectureFailed(f"{name}: {doing} failed with {error.ename}: {error.evalue}")
        if isinstance(error, KeyboardInterrupt):
            return LectureInterrupted(signal.SIGINT, self.where())
        return LectureFailed(f"{name}: failed while {doing}: {type(error).__name__}: {error}")


def shorten_expected_tracebacks(nb) -> None:
    """Keep only the final ``Error: message`` line of an intended error.

    The full traceback names files of the author's Python installation, which
    must not be stored in a lecture; the error itself is what the cell teaches.
    """
    for cell in nb.cells:
        if "raises-exception" in cell.metadata.get("tags", []):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error" and out.get("traceback"):
                    out["traceback"] = out["traceback"][-1:]


def collapse_progress_frames(nb) -> None:
    """Store what a reader sees: each run of a cell's stream outputs merged, progress-bar frames collapsed.

    A progress bar redraws its line with carriage returns, one stream message per frame; stored as they
    come, the frames stack up in the notebook and differ from run to run. Jupyter shows only the last
    frame of each line, and nbval compares streams the same way, so that is what we keep.
    """
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and merged and merged[-1].get("name") == out.get("name") and (
                merged[-1].get("output_type") == "stream"
            ):
                merged[-1]["text"] += out["text"]
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream":
                out["text"] = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in out["text"].split("\n"))
        if "outputs" in cell:
            cell["outputs"] = merged


SOLUTION_TITLE = "#@title Solution"


def store_solutions_without_outputs(nb) -> None:
    """Exercise solutions run (their asserts must hold) but are stored without outputs.

    Colab collapses a ``#@title`` form cell's code but still shows its stored outputs, which would give the
    answer away; a learner who runs the solution sees them. The cells carry ``nbval-ignore-output``.
    """
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(SOLUTION_TITLE):
            cell.outputs = []
