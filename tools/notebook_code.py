"""Load the code a lecture defines, straight from the notebook, for unit tests.

Cells tagged ``library`` hold functions with real logic (a data loader, a loss).
They import what they need themselves, so they can run without the rest of
the notebook. Tests and benchmarks call this notebook code, never a copy.
"""

from __future__ import annotations

import types
from pathlib import Path

import nbformat
from runner import NOTEBOOK_DIR

LIBRARY_TAG = "library"


def library_cells(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and LIBRARY_TAG in c.metadata.get("tags", [])]


def load_notebook_code(name: str) -> types.ModuleType:
    """Execute the ``library`` cells of ``notebooks/<name>*.ipynb`` into a module."""
    matches = sorted(NOTEBOOK_DIR.glob(f"{name}*.ipynb"))
    if len(matches) != 1:
        raise FileNotFoundError(f"expected one notebook matching {name!r} in {NOTEBOOK_DIR}, found {matches}")
    notebook = matches[0]
    sources = library_cells(notebook)
    if not sources:
        raise ValueError(f"{notebook.name} has no cells tagged {LIBRARY_TAG!r}")
    module = types.ModuleType(notebook.stem)
    module.__file__ = str(notebook)
    for i, source in enumerate(sources):
        code = compile(source, f"{notebook.name}[library cell {i}]", "exec")
        exec(code, module.__dict__)
    return module
