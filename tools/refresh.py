"""Maintainers: re-execute notebooks in place, then re-export _images/.

    python tools/refresh.py                      # every lecture
    python tools/refresh.py notebooks/02_*.ipynb # just these

Each notebook runs top to bottom in a fresh kernel in an empty folder, so the
stored outputs are what CI will compare against (execution counts 1..N).
A failing notebook is left untouched.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from export_images import NOTEBOOKS
from export_images import main as export_images
from notebook_exec import LectureFailed, execute_notebook


def refresh(path: Path) -> None:
    start = time.perf_counter()
    nb = execute_notebook(path)
    nbformat.validate(nb)
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    tmp.replace(path)
    print(f"refreshed {path.name} in {time.perf_counter() - start:.1f} s")


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    try:
        for path in paths:
            refresh(path)
    except LectureFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return export_images([str(p) for p in paths])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
