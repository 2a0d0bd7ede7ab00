"""lectures.md and the README: every lecture listed in order, every link resolves."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import nbformat
import pytest
from lectures import COLAB_PREFIX, NOTEBOOKS, ROOT, markdown_links

DOCS = [ROOT / "lectures.md", ROOT / "README.md", ROOT / "CONTRIBUTING.md"]


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


MENTION = re.compile(r"\b[Ll]ectures?\s+(\d\d(?:\s*(?:,|–|-|…|and|or|to)\s*\d\d)*)")


def lecture_mentions(text: str) -> list[str]:
    """Every lecture number named in prose: 'lecture 03', 'lectures 01 and 04', 'lectures 01–05'."""
    return [number for group in MENTION.findall(text) for number in re.findall(r"\d\d", group)]


def test_lecture_mentions_name_existing_lectures():
    numbers = {nb.name[:2] for nb in NOTEBOOKS}
    sources = {doc.name: doc.read_text() for doc in DOCS}
    sources |= {nb.name: "\n".join(c.source for c in nbformat.read(nb, as_version=4).cells) for nb in NOTEBOOKS}
    code = sorted(ROOT.glob("tests/*.py")) + sorted(ROOT.glob("benchmarks/*.py"))
    sources |= {p.name: p.read_text() for p in code}
    stale = {name: sorted(set(lecture_mentions(text)) - numbers) for name, text in sources.items()}
    stale = {name: missing for name, missing in stale.items() if missing and name != "test_docs.py"}
    assert not stale, f"mentions of lectures that do not exist (renumbered?): {stale}; lectures are {sorted(numbers)}"


def test_lecture_mentions_are_recognised():
    assert lecture_mentions("see lecture 03, and Lectures 01 and 05; lectures 01–04") == ["03", "01", "05", "01", "04"]


def test_each_notebook_title_matches_its_number_and_the_syllabus():
    syllabus = (ROOT / "lectures.md").read_text()
    for nb in NOTEBOOKS:
        title = nbformat.read(nb, as_version=4).cells[0].source.splitlines()[0]
        expected = f"# {nb.name[:2]} · "
        assert title.startswith(expected), f"{nb.name}: title {title!r} should start with {expected!r}"
        assert f"\n#{title}\n" in f"\n{syllabus}\n", (
            f"lectures.md has no heading '##{title[1:]}' for {nb.name}"
        )
