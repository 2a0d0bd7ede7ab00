"""_images/ holds exactly the figures the notebooks export, byte for byte."""

from __future__ import annotations

import pytest
from export_images import IMAGES, MIME_BY_SUFFIX, exported_figures
from lectures import NOTEBOOKS


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_exported_figures_match_stored_outputs(notebook):
    figures = exported_figures(notebook)
    assert len(figures) >= 2, f"{notebook.name}: export at least two figures to _images/"
    for name, data in figures.items():
        path = IMAGES / name
        assert path.exists(), f"{notebook.name}: _images/{name} is missing; run `make export`"
        assert path.read_bytes() == data, (
            f"{notebook.name}: _images/{name} differs from the stored output; run `make export`"
        )


def test_no_orphan_images():
    exported = set()
    for notebook in NOTEBOOKS:
        exported |= set(exported_figures(notebook))
    on_disk = {p.name for p in IMAGES.iterdir() if p.suffix in MIME_BY_SUFFIX}
    assert on_disk <= exported, f"_images/ has figures no notebook exports: {sorted(on_disk - exported)}"


def test_export_rejects_a_cell_without_the_image(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('no figure')", metadata={"export": "07_demo-figure.png"})
    nb.cells.append(cell)
    path = tmp_path / "07_demo.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match=r"07_demo.ipynb, code cell 1: exports '07_demo-figure.png' but has 0"):
        exported_figures(path)
