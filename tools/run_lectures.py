"""Run every lecture in order into build/: executed notebook + standalone HTML.

Sources in notebooks/ are never modified. Prints a summary table (lecture,
seconds, headline result) and exits non-zero, naming the notebook and cell,
if any lecture fails (an error, a cell past its timeout, a dead kernel, files
left in the working folder, an unreadable notebook). A lecture's headline is
the first line printed by its cell tagged ``headline``.

Each cell may run for ``LECTURE_CELL_TIMEOUT_S`` seconds (default 600).
Ctrl-C or SIGTERM stop the run, and its kernel, at once (exit 130 or 143).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from notebook_exec import LectureFailed, LectureInterrupted, cell_timeout_s, execute_notebook, stop_on_signals
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
HEADLINE_TAG = "headline"


def headline(nb) -> str:
    for cell in nb.cells:
        if HEADLINE_TAG in cell.metadata.get("tags", []):
            for out in cell.get("outputs", []):
                text = out.get("text") or out.get("data", {}).get("text/plain", "")
                if text.strip():
                    return text.strip().splitlines()[0]
    return "(no headline cell)"


def run_one(path: Path, timeout_s: int | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    with tqdm(total=None, desc=path.stem, unit="cell", leave=False) as bar:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(1)

        nb = execute_notebook(path, on_cell_done=advance, timeout_s=timeout_s)
    seconds = time.perf_counter() - start
    BUILD.mkdir(exist_ok=True)
    nbformat.write(nb, BUILD / path.name)
    html, _ = HTMLExporter(template_name="lab", embed_images=True).from_notebook_node(nb)
    (BUILD / f"{path.stem}.html").write_text(html, encoding="utf-8")
    return seconds, headline(nb)


def print_table(rows: list[tuple[str, str, str]]) -> None:
    header = ("lecture", "seconds", "headline result")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    line = "  ".join("-" * w for w in widths)
    print(line)
    for row in [header, None, *rows]:
        if row is None:
            print(line)
            continue
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}")
    print(line)


def main(argv: list[str]) -> int:
    try:
        timeout_s = cell_timeout_s()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    paths = [Path(a) for a in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    if not paths:
        print(f"error: no notebooks found in {NOTEBOOKS}", file=sys.stderr)
        return 1
    try:
        with stop_on_signals():
            return run_all(paths, timeout_s)
    except LectureInterrupted as err:
        print(f"stopped: {err}; no kernel is left running.", file=sys.stderr)
        return err.exit_code


def run_all(paths: list[Path], timeout_s: int) -> int:
    rows, failure, total = [], None, 0.0
    for path in tqdm(paths, desc="lectures", unit="notebook"):
        try:
            seconds, result = run_one(path, timeout_s)
        except LectureFailed as err:
            failure = str(err)
            rows.append((path.stem, "-", "FAILED"))
            break
        total += seconds
        rows.append((path.stem, f"{seconds:.1f}", result))
    rows.append(("total", f"{total:.1f}", f"outputs in {BUILD.relative_to(ROOT)}/ (.ipynb and .html)"))
    print_table(rows)
    if failure:
        print(f"error: {failure}\nFix it, then run `make lectures` again.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
