"""Execute a notebook top to bottom in a fresh kernel of this environment.

Shared by ``run_lectures.py`` (into build/) and ``refresh.py`` (in place).
The kernel runs in an empty temporary folder, as in Colab and in the tests,
so a lecture cannot lean on files that happen to sit next to it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

CELL_TIMEOUT_S = 600


class LectureClient(NotebookClient):
    """nbclient honours only ``raises-exception``; the lectures use nbval's ``nbval-raises-exception``."""

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        if "nbval-raises-exception" in cell.metadata.get("tags", []):
            return  # an error this cell is meant to show
        await super()._check_raise_for_error(cell, cell_index, exec_reply)


class LectureFailed(RuntimeError):
    """A cell raised: the message names the notebook, the cell and the error."""


def code_cell_number(nb, index: int) -> int:
    """1-based position of cell ``index`` among code cells, as Jupyter counts them."""
    return sum(1 for c in nb.cells[: index + 1] if c.cell_type == "code")


def execute_notebook(
    path: Path,
    on_cell_done: Callable[[int, int], None] | None = None,
) -> nbformat.NotebookNode:
    """Return the executed notebook; raise LectureFailed naming the failing cell."""
    nb = nbformat.read(path, as_version=4)
    n_code = sum(1 for c in nb.cells if c.cell_type == "code")
    done = 0

    def cell_executed(cell, cell_index, execute_reply):
        nonlocal done
        if cell.cell_type == "code" and on_cell_done is not None:
            done += 1
            on_cell_done(done, n_code)

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    with tempfile.TemporaryDirectory(prefix=f"run-{path.stem}-") as workdir:
        km = KernelManager(kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager())
        client = LectureClient(
            nb,
            km=km,
            timeout=CELL_TIMEOUT_S,
            record_timing=False,  # no timestamps in stored metadata: they churn every diff
            resources={"metadata": {"path": workdir}},
            on_cell_executed=cell_executed,
        )
        try:
            client.execute(cleanup_kc=True)  # we pass our own km, so nbclient would leave the kernel running
        except CellExecutionError as err:
            index = next(
                (
                    i
                    for i, c in enumerate(nb.cells)
                    if "nbval-raises-exception" not in c.metadata.get("tags", [])
                    and any(o.get("output_type") == "error" for o in c.get("outputs", []))
                ),
                None,
            )
            where = f"code cell {code_cell_number(nb, index)}" if index is not None else "a cell"
            summary = f"{err.ename}: {err.evalue}"
            raise LectureFailed(f"{path.name}: {where} failed with {summary}") from err
    # A failure while displaying a result (say, a figure whose label cannot be drawn) is stored as an
    # error output without failing the cell: treat it as the failure it is.
    for index, cell in enumerate(nb.cells):
        if "nbval-raises-exception" in cell.metadata.get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                where = f"code cell {code_cell_number(nb, index)}"
                raise LectureFailed(f"{path.name}: {where} stored an error: {out.get('ename')}: {out.get('evalue')}")
    shorten_expected_tracebacks(nb)
    return nb


def shorten_expected_tracebacks(nb) -> None:
    """Keep only the final ``Error: message`` line of an intended error.

    The full traceback names files of the author's Python installation, which
    must not be stored in a lecture; the error itself is what the cell teaches.
    """
    for cell in nb.cells:
        if "nbval-raises-exception" in cell.metadata.get("tags", []):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error" and out.get("traceback"):
                    out["traceback"] = out["traceback"][-1:]
