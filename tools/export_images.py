"""Export figures from stored notebook outputs to _images/.

A code cell opts in with metadata ``"export": "<notebook stem>-what.png"`` (or ``.gif``):
its one output of that image type is written, byte for byte, to _images/.
tests/test_images.py checks the two never drift apart.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import nbformat
from runner import ROOT, notebooks

IMAGES = ROOT / "_images"
MIME_BY_SUFFIX = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg"}


def exported_figures(notebook: Path) -> dict[str, bytes]:
    """Map each export file name declared in ``notebook`` to its image bytes."""
    nb = nbformat.read(notebook, as_version=4)
    figures: dict[str, bytes] = {}
    code_index = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code_index += 1
        name = cell.metadata.get("export")
        if name is None:
            continue
        where = f"{notebook.name}, code cell {code_index}"
        mime = MIME_BY_SUFFIX.get(Path(name).suffix)
        if mime is None or not name.startswith(f"{notebook.stem}-"):
            raise ValueError(
                f"{where}: export name {name!r} must start with '{notebook.stem}-' "
                f"and end in one of {sorted(MIME_BY_SUFFIX)}"
            )
        blobs = [o["data"][mime] for o in cell.get("outputs", []) if mime in o.get("data", {})]
        if len(blobs) != 1:
            raise ValueError(
                f"{where}: exports {name!r} but has {len(blobs)} {mime} outputs (need exactly 1); "
                "re-run the notebook with `make refresh`"
            )
        if name in figures:
            raise ValueError(f"{where}: export name {name!r} is used twice")
        figures[name] = base64.b64decode(blobs[0])
    return figures


def export(paths: list[Path], images: Path = IMAGES) -> None:
    """Write each notebook's figures to ``images`` and drop its figures no cell exports any more."""
    images.mkdir(exist_ok=True)
    for notebook in paths:
        wanted = exported_figures(notebook)
        for name, data in wanted.items():
            target = images / name
            if not target.exists() or target.read_bytes() != data:
                tmp = target.with_name(target.name + ".tmp")
                try:
                    tmp.write_bytes(data)
                    tmp.replace(target)  # atomic: a reader never sees half a figure
                finally:
                    tmp.unlink(missing_ok=True)  # a failed write leaves nothing behind
                print(f"exported {images.name}/{name}")
        for stale in sorted(images.glob(f"{notebook.stem}-*")):
            if stale.name not in wanted:
                stale.unlink()
                print(f"removed stale {images.name}/{stale.name}")


def main(argv: list[str]) -> int:
    try:
        export([Path(a) for a in argv] or notebooks())
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
