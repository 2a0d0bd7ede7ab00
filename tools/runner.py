"""Run notebooks top to bottom in a fresh kernel: `make lectures` (into build/) and `make refresh` (in place).

    python tools/runner.py lectures [NOTEBOOK ...]   # executed .ipynb and .html in build/, a summary table
    python tools/runner.py refresh [NOTEBOOK ...]    # rewrite the notebooks, export each one's figures

Every run goes through nbclient's public API, in an empty temporary folder (as in Colab and under test), and
ends in seconds naming the notebook and code cell on a failing cell, a cell past its timeout
(LECTURE_CELL_TIMEOUT_S, default 300 s, the same as under pytest), a dead kernel, Ctrl-C or SIGTERM (exit 130 or
143); the kernel is stopped on every way out. A kernel that dies as it starts, before any cell, is started again
once. A notebook that leaves files in its working folder fails. This module also holds what the tests and tools
share: ROOT, the notebooks, the kernels' environment defaults and the stray-file rule.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

# nbclient, nbconvert and nbval are imported where they are used: conftest.py and the tests import this module's
# constants in environments that have only nbval.

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
BUILD = ROOT / "build"
CELL_TIMEOUT_S = 300
CELL_TIMEOUT_ENV = "LECTURE_CELL_TIMEOUT_S"
# Kernels run on the CPU unless told otherwise (GPU: JAX_PLATFORMS=cuda), without grabbing most of a GPU's memory.
KERNEL_DEFAULTS = {"JAX_PLATFORMS": "cpu", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
HEADLINE_TAG = "headline"
ERROR_TAG = "raises-exception"
SOLUTION_TITLE = "#@title Solution"


def notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def set_kernel_defaults() -> None:
    for name, value in KERNEL_DEFAULTS.items():
        os.environ.setdefault(name, value)


def cell_timeout_s(environ=os.environ) -> int:
    """LECTURE_CELL_TIMEOUT_S if set, else 300; ValueError if it is not a whole number above 0."""
    raw = environ.get(CELL_TIMEOUT_ENV, "").strip() or str(CELL_TIMEOUT_S)
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"{CELL_TIMEOUT_ENV} must be a whole number of seconds above 0, not {raw!r}")
    return int(raw)


def stray_message(name: str, folder: Path, expected: tuple[str, ...] = ()) -> str | None:
    """The failure for a notebook that left files in its working folder, or None. One rule for tests and tools."""
    stray = sorted(p.name for p in folder.iterdir() if p.name not in expected)
    if stray:
        return (
            f"{name} left files in its working folder: {stray}. "
            "Lectures write only to temporary folders or the data cache."
        )
    return None


class LectureFailed(RuntimeError):
    """A notebook cannot run to the end; the message names the notebook and the cell."""


class LectureInterrupted(KeyboardInterrupt):
    def __init__(self, signum: int, where: str):
        super().__init__(f"interrupted by {signal.Signals(signum).name} while running {where}")
        self.exit_code = 128 + signum


def read_notebook(path: Path) -> nbformat.NotebookNode:
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except OSError as err:
        raise LectureFailed(f"{path}: cannot read this notebook: {err}") from err
    except Exception as err:  # invalid JSON, JSON that is no notebook, a schema violation
        raise LectureFailed(f"{path.name} is not a valid notebook: {type(err).__name__}: {str(err)[:300]}") from err
    return nb


def _this_pythons_kernel():
    """A kernel manager class for the Python running this (nbval's kernelspec), whatever the user has installed."""
    from jupyter_client.manager import AsyncKernelManager
    from nbval.kernel import NbvalKernelspecManager
    from traitlets import default

    class ThisPythonsKernel(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _this_python(self):
            return NbvalKernelspecManager()

    return ThisPythonsKernel


class _Execution:
    """One attempt at running a notebook, on an event loop in a worker thread, so that this (main) thread keeps
    SIGINT and SIGTERM: on either it cancels the run, and nbclient stops the kernel as it unwinds."""

    def __init__(self, path: Path, nb, workdir: str, timeout_s: int):
        from nbclient import NotebookClient
        from nbval.kernel import CURRENT_ENV_KERNEL_NAME

        self.path, self.nb = path, nb
        self.cell = None  # the code cell number running now, from nbclient's on_cell_start hook
        self.signum = None
        self.loop = self.task = None
        self.error: BaseException | None = None
        self.client = NotebookClient(
            nb,
            timeout=timeout_s,
            kernel_name=CURRENT_ENV_KERNEL_NAME,
            kernel_manager_class=_this_pythons_kernel(),
            resources={"metadata": {"path": workdir}},
            record_timing=False,  # no timestamps in stored metadata: they churn every diff
            shutdown_kernel="immediate",
            on_cell_start=self.cell_started,
        )
        self.km = self.client.create_kernel_manager()

    def cell_started(self, cell, cell_index):
        if cell.cell_type == "code":
            self.cell = sum(c.cell_type == "code" for c in self.nb.cells[: cell_index + 1])

    def where(self) -> str:
        return f"{self.path.name} ({f'code cell {self.cell}' if self.cell else 'starting its kernel'})"

    async def _main(self):
        self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
        if self.signum is None:
            await self.client.async_execute()

    def _work(self):
        try:
            asyncio.run(self._main())
        except BaseException as err:  # sorted out by run(), in the main thread
            self.error = err

    def _on_signal(self, signum, frame):
        if self.signum is None:
            self.signum = signum
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.task.cancel)

    def run(self) -> None:
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

        worker = threading.Thread(target=self._work, name=f"run {self.path.name}", daemon=True)
        main = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
        try:
            worker.start()
            while worker.is_alive():
                worker.join(0.1)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.km.has_kernel:  # cancelled while it started: nbclient had not taken charge of it yet
                asyncio.run(self.km.shutdown_kernel(now=True))
            # nbclient leaves its exit-time cleanup registered when a kernel dies as it starts; give it a manager.
            self.client.km = self.client.km or self.km
        if self.signum is not None:
            raise LectureInterrupted(self.signum, self.where())
        error, name, cell = self.error, self.path.name, f"code cell {self.cell}"
        if error is None:
            return
        if isinstance(error, CellTimeoutError):
            raise LectureFailed(
                f"{name}: {cell} timed out after {self.client.timeout} s; its kernel was stopped. "
                f"If the cell is meant to take longer, set {CELL_TIMEOUT_ENV} (seconds)."
            )
        if self.cell is None:
            raise _KernelDidNotStart(f"{type(error).__name__}: {error}")
        if isinstance(error, DeadKernelError):
            raise LectureFailed(
                f"{name}: the kernel died while running {cell} (a crash in native code, running out of memory, "
                "or an explicit exit)"
            )
        if isinstance(error, CellExecutionError):
            raise LectureFailed(f"{name}: {cell} failed with {error.ename}: {error.evalue}")
        raise LectureFailed(f"{name}: failed in {cell}: {type(error).__name__}: {error}")


class _KernelDidNotStart(RuntimeError):
    pass


def execute(path: Path, timeout_s: int | None = None, log=print) -> nbformat.NotebookNode:
    """The notebook executed in a fresh kernel in an empty folder, ready to store; LectureFailed or
    LectureInterrupted otherwise."""
    path = Path(path)
    timeout_s = cell_timeout_s() if timeout_s is None else timeout_s
    set_kernel_defaults()
    for attempt in (1, 2):
        nb = read_notebook(path)
        with tempfile.TemporaryDirectory(prefix=f"run-{path.stem}-", ignore_cleanup_errors=True) as workdir:
            try:
                _Execution(path, nb, workdir, timeout_s).run()
            except _KernelDidNotStart as err:
                if attempt == 2:
                    raise LectureFailed(f"{path.name}: the kernel died as it started, twice ({err})") from None
                log(f"{path.name}: the kernel died as it started ({err}); starting it again, once")
                continue
            stray = stray_message(path.name, Path(workdir))
        break
    for number, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if ERROR_TAG in cell.metadata.get("tags", []):
            for out in errors:  # the traceback names files of this machine: keep the error line it teaches
                out.traceback = out.traceback[-1:]
        elif errors:  # an error while displaying a result (a figure that cannot be drawn) does not fail the cell
            error = errors[0]
            raise LectureFailed(f"{path.name}: code cell {number} stored an error: {error.ename}: {error.evalue}")
        if cell.source.startswith(SOLUTION_TITLE):
            cell.outputs = []  # Colab shows a collapsed cell's stored outputs: the answer would show
        cell.outputs = collapse_progress_frames(cell.outputs)
    if stray:
        raise LectureFailed(stray)
    return nb


def collapse_progress_frames(outputs: list) -> list:
    """Runs of stream outputs merged, and each line kept as its last carriage-return frame, as Jupyter shows it."""
    merged = []
    for out in outputs:
        last = merged[-1] if merged else None
        if out.output_type == "stream" and last and last.output_type == "stream" and last.name == out.name:
            merged[-1].text += out.text
        else:
            merged.append(out)
    for out in merged:
        if out.output_type == "stream":
            out.text = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in out.text.split("\n"))
    return merged


# Cells hidden in JupyterLab (solutions, a loader) stay hidden on the HTML page, one click away, as in JupyterLab.
HIDDEN_CELLS_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{% block input_group -%}
{%- if cell.metadata.get('jupyter', {}).get('source_hidden') -%}
<details class="jp-hidden-input"><summary>{{ cell.source.split('\\n')[0] | e }} (hidden: click to show)</summary>
{{ super() }}</details>
{%- else -%}{{ super() }}{%- endif -%}
{%- endblock input_group %}
{% block output_group -%}
{%- if cell.metadata.get('jupyter', {}).get('outputs_hidden') and cell.outputs -%}
<details class="jp-hidden-output"><summary>Outputs hidden: click to show</summary>{{ super() }}</details>
{%- else -%}{{ super() }}{%- endif -%}
{%- endblock output_group %}
"""


def to_html(nb) -> str:
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        template_file="hidden_cells.html.j2",
        extra_loaders=[jinja2.DictLoader({"hidden_cells.html.j2": HIDDEN_CELLS_TEMPLATE})],
        embed_images=True,
    )
    return exporter.from_notebook_node(nb)[0]


def headline(nb) -> str:
    for cell in nb.cells:
        if HEADLINE_TAG in cell.metadata.get("tags", []):
            for out in cell.get("outputs", []):
                text = out.get("text") or out.get("data", {}).get("text/plain", "")
                if text.strip():
                    return text.strip().splitlines()[0]
    return "(no headline cell)"


def lectures(paths: list[Path], timeout_s: int) -> int:
    """Run each notebook into build/ (.ipynb and .html); print a table of lectures, seconds and headlines."""
    rows, total = [], 0.0
    try:
        for path in paths:
            print(f"running {path.name} ...", flush=True)
            start = time.perf_counter()
            rows.append((path.stem, "-", "FAILED"))
            nb = execute(path, timeout_s)
            seconds = time.perf_counter() - start
            total += seconds
            rows[-1] = (path.stem, f"{seconds:.1f}", headline(nb))
            BUILD.mkdir(exist_ok=True)
            nbformat.write(nb, BUILD / path.name)
            (BUILD / f"{path.stem}.html").write_text(to_html(nb), encoding="utf-8")
    finally:
        rows = [("lecture", "seconds", "headline result"), *rows, ("total", f"{total:.1f}", "outputs in build/")]
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        for row in rows:
            print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}")
    return 0


def refresh(paths: list[Path], timeout_s: int, images: Path | None = None) -> int:
    """Rewrite each notebook, then export its figures at once: a later failure leaves no figure stale."""
    from export_images import IMAGES, export

    for path in paths:
        start = time.perf_counter()
        nb = execute(path, timeout_s)
        tmp = path.with_name(path.name + ".tmp")
        try:
            nbformat.write(nb, tmp)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        print(f"refreshed {path.name} in {time.perf_counter() - start:.1f} s")
        export([path], images or IMAGES)
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("lectures", "refresh"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        timeout_s = cell_timeout_s()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    paths = [Path(a) for a in argv[1:]] or notebooks()
    try:
        return (lectures if argv[0] == "lectures" else refresh)(paths, timeout_s)
    except (LectureFailed, ValueError) as err:  # ValueError: a figure export that is declared wrong
        print(f"error: {err}\nFix it, then run `make {argv[0]}` again.", file=sys.stderr)
        return 1
    except LectureInterrupted as err:
        print(f"stopped: {err}; no kernel is left running.", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
