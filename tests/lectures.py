"""Facts about the repository that several tests share."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nbformat
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from runner import ROOT, execute, notebooks

NOTEBOOKS = notebooks()
SETTINGS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["jax-lectures"]
COLAB_PREFIX = f"https://colab.research.google.com/github/{SETTINGS['github']}/blob/{SETTINGS['branch']}/"
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def read(notebook: Path):
    return nbformat.read(notebook, as_version=4)


def code_cells(nb):
    """(1-based code cell number, cell) pairs, numbered as Jupyter and the error messages count."""
    return list(enumerate((c for c in nb.cells if c.cell_type == "code"), start=1))


def colab_url(notebook: Path) -> str:
    return COLAB_PREFIX + notebook.relative_to(ROOT).as_posix()


def markdown_links(text: str) -> list[str]:
    return MARKDOWN_LINK.findall(text)


def exact_pins(path: Path) -> dict[str, str]:
    """{package: version} from a requirements or constraints file in which every requirement is name==version,
    for the pins whose environment marker (if any) holds for this Python."""
    pins = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", (
            f"{path.relative_to(ROOT)} line {number}: {line!r} is not an exact pin (name==version)"
        )
        if requirement.marker is None or requirement.marker.evaluate():
            pins[canonicalize_name(requirement.name)] = specs[0].version
    return pins


def make_notebook(path: Path, cells) -> Path:
    """cells: (source, stored text outputs as [(stream name, text)], tags)."""
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    for count, (source, outputs, tags) in enumerate(cells, start=1):
        cell = nbformat.v4.new_code_cell(source, execution_count=count, metadata={"tags": tags})
        cell.outputs = [nbformat.v4.new_output("stream", name=name, text=text) for name, text in outputs]
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def kernel_prints(source: str, folder: Path) -> str:
    """What one cell prints in a fresh kernel, started by the runner as for every notebook."""
    nb = execute(make_notebook(folder / "probe.ipynb", [(source, [], [])]))
    return "".join(out.get("text", "") for out in nb.cells[0].outputs).strip()
