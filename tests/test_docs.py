"""lectures.md and the README: every lecture listed in order, every link resolves."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from lectures import COLAB_PREFIX, NOTEBOOKS, ROOT, markdown_links

DOCS = [ROOT / "lectures.md", ROOT / "README.md"]


def test_syllabus_lists_every_lecture_in_order():
    text = (ROOT / "lectures.md").read_text()
    listed = [link for link in markdown_links(text) if link.startswith("notebooks/") and link.endswith(".ipynb")]
    expected = [nb.relative_to(ROOT).as_posix() for nb in NOTEBOOKS]
    first_mentions = list(dict.fromkeys(listed))
    assert first_mentions == expected, (
        f"lectures.md must link every notebook once, in order: {expected}, found {first_mentions}"
    )


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_links_resolve(doc):
    assert doc.exists(), f"{doc.name} is missing"
    for link in markdown_links(doc.read_text()):
        url = urlparse(link)
        if link.startswith(COLAB_PREFIX):
            target = ROOT / link.removeprefix(COLAB_PREFIX)
            assert target.exists(), f"{doc.name}: Colab link to a notebook that does not exist: {link}"
        elif url.scheme in ("http", "https"):
            assert url.netloc, f"{doc.name}: malformed URL {link}"  # no network here: well-formed is all we check
        elif url.scheme == "" and not link.startswith("#"):
            target = (doc.parent / url.path).resolve()
            assert target.exists(), f"{doc.name}: link to {link} does not resolve to a file in the repository"
        else:
            assert link.startswith("#"), f"{doc.name}: unexpected link {link}"


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_referenced_images_exist(doc):
    images = [link for link in markdown_links(doc.read_text()) if link.startswith("_images/")]
    if doc.name == "lectures.md":
        for notebook in NOTEBOOKS:
            assert any(link.startswith(f"_images/{notebook.stem}-") for link in images), (
                f"lectures.md shows no figure of {notebook.name}"
            )
    for link in images:
        assert (ROOT / link).exists(), f"{doc.name} shows {link}, which does not exist (run `make export`)"
