"""Facts about the repository that several tests share."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nbformat
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
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
