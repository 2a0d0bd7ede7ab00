"""Facts about the repository that several tests share."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SETTINGS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["jax-lectures"]
COLAB_PREFIX = f"https://colab.research.google.com/github/{SETTINGS['github']}/blob/{SETTINGS['branch']}/"
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)$")


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
    """{package: version} from a requirements or constraints file in which every line is name==version."""
    pins = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{path.relative_to(ROOT)} line {number}: {line!r} is not an exact pin (name==version)"
        pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins
