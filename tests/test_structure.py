"""Every lecture follows the conventions in CONTRIBUTING.md; failures name notebook and cell."""

from __future__ import annotations

import ast
import json
import re

import pytest
from lectures import NOTEBOOKS, ROOT, SETTINGS, code_cells, colab_url, read

# Paths of someone's machine that must never be stored in a lecture.
LOCAL_PATH = re.compile(r"(/home/\w|/Users/\w|/root/|/tmp/|/work/|/private/var/|[A-Z]:\\\\Users)")
NAME = re.compile(r"^(0[1-9]|[1-9]\d)_[a-z0-9]+(_[a-z0-9]+)*$")

ids = [nb.stem for nb in NOTEBOOKS]


def has_assert(source: str) -> bool:
    """An assert statement (not the word in a comment or a string); IPython magics and shell lines are left out."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return any(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(code)))


def test_there_are_lectures():
    assert NOTEBOOKS, "no notebooks found in notebooks/"
    numbers = [int(nb.stem[:2]) for nb in NOTEBOOKS]
    assert numbers == list(range(1, len(numbers) + 1)), f"lecture numbers must run 01, 02, ... without gaps: {ids}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_name_and_kernelspec(notebook):
    assert NAME.match(notebook.stem), f"{notebook.name}: name it NN_short_snake_name.ipynb"
    kernelspec = read(notebook).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{notebook.name}: kernelspec name must be 'python3', got {kernelspec}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_title_cell_with_colab_badge(notebook):
    first = read(notebook).cells[0]
    assert first.cell_type == "markdown", f"{notebook.name}: cell 0 must be the markdown title cell"
    title = first.source.splitlines()[0]
    assert title.startswith(f"# {notebook.stem[:2]} · "), (
        f"{notebook.name}: title must read '# {notebook.stem[:2]} · ...'"
    )
    assert f"]({colab_url(notebook)})" in first.source, (
        f"{notebook.name}: title cell needs an Open-in-Colab badge linking to {colab_url(notebook)}"
    )
    assert "colab-badge.svg" in first.source, f"{notebook.name}: the Colab link should use the badge image"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_setup_cell_is_colab_guarded(notebook):
    number, setup = code_cells(read(notebook))[0]
    assert 'if "google.colab" in sys.modules:' in setup.source, (
        f"{notebook.name}: code cell {number} (the setup cell) must install only on Colab, "
        'under `if "google.colab" in sys.modules:`'
    )
    # What the branch does (never touching jax) is tested by behaviour in test_setup_cells.py.


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_executed_in_order_from_a_fresh_kernel(notebook):
    for number, cell in code_cells(read(notebook)):
        assert cell.execution_count == number, (
            f"{notebook.name}: code cell {number} has execution count {cell.execution_count}; "
            "re-run the notebook top to bottom with `make refresh`"
        )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_no_unexpected_errors(notebook):
    for number, cell in code_cells(read(notebook)):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if "raises-exception" in cell.metadata.get("tags", []):
            assert errors, f"{notebook.name}: code cell {number} is tagged raises-exception but stores no error"
        else:
            assert not errors, f"{notebook.name}: code cell {number} stores an error: {errors[0].ename}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_no_local_paths_in_outputs(notebook):
    for number, cell in code_cells(read(notebook)):
        for out in cell.outputs:
            text = json.dumps({k: v for k, v in out.items() if k != "data"}) + json.dumps(
                {k: v for k, v in out.get("data", {}).items() if k.startswith("text/")}
            )
            found = LOCAL_PATH.search(text)
            assert not found, f"{notebook.name}: code cell {number} output contains a local path ({found.group(0)}...)"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_size_budget(notebook):
    size = notebook.stat().st_size
    budget = SETTINGS["max-notebook-bytes"]
    assert size <= budget, f"{notebook.name}: {size:,} bytes stored, budget {budget:,}: shrink figures or outputs"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_cells_have_ids_and_known_tags(notebook):
    known = {"nbval-ignore-output", "raises-exception", "nbval-check-output", "library", "headline"}
    nb = read(notebook)
    for index, cell in enumerate(nb.cells):
        assert cell.get("id"), f"{notebook.name}: cell {index} has no id (nbformat >= 4.5 needs one)"
        tags = set(cell.metadata.get("tags", []))
        assert "nbval-skip" not in tags, f"{notebook.name}: cell {index} is skipped under test; never skip a cell"
        assert tags <= known, f"{notebook.name}: cell {index} has unknown tags {sorted(tags - known)}"
    assert sum("headline" in c.metadata.get("tags", []) for c in nb.cells) == 1, (
        f"{notebook.name}: needs exactly one code cell tagged 'headline' (its result for `make lectures`)"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_ignored_outputs_are_followed_by_a_check(notebook):
    """An output nbval ignores must be backed by an assert in it or in a code cell next to it."""
    cells = code_cells(read(notebook))
    for i, (number, cell) in enumerate(cells):
        tags = cell.metadata.get("tags", [])
        if "nbval-ignore-output" not in tags or "headline" in tags or "__version__" in cell.source:
            continue  # the environment cell (versions, devices) has nothing to assert
        assert any(has_assert(c.source) for _, c in cells[max(i - 1, 0) : i + 2]), (
            f"{notebook.name}: code cell {number} hides its output from nbval; "
            "assert what must hold in it or in a code cell next to it"
        )


def test_notebooks_live_only_in_notebooks_folder():
    stray = [
        p.relative_to(ROOT)
        for p in ROOT.rglob("*.ipynb")
        if not {"build", ".ipynb_checkpoints"} & set(p.parts)
        and not any(part.startswith(".venv") for part in p.parts)  # .venv, .venv-colab, .venv-latest
        and p.parent != ROOT / "notebooks"
    ]
    assert not stray, f"notebooks outside notebooks/: {stray}"


SOLUTION = re.compile(r"#\s*(@title\s+)?Solution\b")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_solutions_are_hidden_in_colab_and_jupyter(notebook):
    """Colab collapses a ``#@title`` form cell but shows its stored outputs; JupyterLab honours ``jupyter``."""
    cells = read(notebook).cells
    solutions = [(i, c) for i, c in enumerate(cells) if c.cell_type == "code" and SOLUTION.match(c.source)]
    assert len(solutions) >= 2, f"{notebook.name}: expected two or three exercises with solutions"
    for index, cell in solutions:
        where = f"{notebook.name}: cell {index} (a solution)"
        first_line = cell.source.splitlines()[0]
        assert re.fullmatch(r"#@title Solution \d+", first_line), (
            f"{where}: its first line must be '#@title Solution N' and no more (Colab shows the title of a collapsed "
            f"cell, so it must not hint at the answer); found {first_line!r}"
        )
        assert cell.metadata.get("cellView") == "form", f'{where}: needs metadata "cellView": "form" for Colab'
        hidden = cell.metadata.get("jupyter", {})
        assert hidden.get("source_hidden") and hidden.get("outputs_hidden"), (
            f'{where}: needs metadata "jupyter": {{"source_hidden": true, "outputs_hidden": true}} for JupyterLab'
        )
        assert not cell.get("outputs"), f"{where}: is stored with outputs, which Colab shows: run `make refresh`"
        assert "nbval-ignore-output" in cell.metadata.get("tags", []), f"{where}: needs the nbval-ignore-output tag"
        assert has_assert(cell.source), f"{where}: a solution checks its own answer with assert"


def test_has_assert_wants_a_statement():
    assert has_assert("x = 1\nassert x == 1, 'x'") and has_assert("%timeit f()\nif True:\n    assert 1")
    assert not has_assert("# we assert nothing\nprint('assert')\nx = '''\nassert 1\n'''")
