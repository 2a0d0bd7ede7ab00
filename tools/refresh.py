"""Maintainers: re-execute notebooks in place, then re-export _images/.

    python tools/refresh.py                      # every lecture
    python tools/refresh.py notebooks/02_*.ipynb # just these

Each notebook runs top to bottom in a fresh kernel in an empty folder, so the
stored outputs are what CI will compare against (execution counts 1..N).
A failing notebook is left untouched, and the run stops there naming the
notebook and cell. Each cell may run for ``LECTURE_CELL_TIMEOUT_S`` seconds
(default 600); Ctrl-C or SIGTERM stop the run and its kernel at once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from export_images import NOTEBOOKS
from export_images import main as export_images
from notebook_exec import LectureFailed, LectureInterrupted, cell_timeout_s, execute_notebook, stop_on_signals


def refresh(path: Path, timeout_s: int | None = None) -> None:
    start = time.perf_counter()
    nb = execute_notebook(path, timeout_s=timeout_s)
    nbformat.validate(nb)
    tmp = path.with_suffix(".ipynb.tmp")
    try:
        nbformat.write(nb, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # interrupted while writing: leave no half-written copy
    print(f"refreshed {path.name} in {time.perf_counter() - start:.1f} s")


def main(argv: list[str]) -> int:
    try:
        timeout_s = cell_timeout_s()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    paths = [Path(a) for a in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    try:
        with stop_on_signals():
            try:
                for path in paths:
                    refresh(path, timeout_s)
            except LectureFailed as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
            return export_images([str(p) for p in paths])
    except LectureInterrupted as err:
        print(f"stopped: {err}; no kernel is left running.", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
