"""Collect every lecture as an nbval test, each run alone in an empty folder.

nbval starts the kernel in the notebook's own directory. Here each notebook is
copied into a fresh temporary folder first, so one execution checks both the
stored outputs (strict nbval: every unmarked cell is compared) and that the
lecture is self-contained, as it is when opened alone in Colab.
Do not also pass ``--nbval``: that would collect every notebook a second time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, RunningKernel
from nbval.plugin import IPyNbFile

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent
NOTEBOOKS = ROOT / "notebooks"
SANITIZER = ROOT / "tests" / "nbval_sanitize.cfg"

# Not compared: stderr (XLA/absl log lines and progress bars differ between
# Jupyter and pytest) and animations, which the image-export test checks instead.
EXTRA_SKIP_COMPARE = ("stderr", "image/gif")

# Tests run on the CPU unless told otherwise (GPU: JAX_PLATFORMS=cuda make test).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


class IsolatedNotebook(IPyNbFile):
    """An nbval notebook whose kernel runs in an empty temporary folder."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.compare_outputs = True  # strict mode, whatever the command line says
        self.skip_compare = self.skip_compare + EXTRA_SKIP_COMPARE
        self.workdir: Path | None = None

    def setup(self):
        self.workdir = Path(tempfile.mkdtemp(prefix=f"isolated-{self.path.stem}-"))
        shutil.copy(self.path, self.workdir / self.path.name)
        self.kernel = RunningKernel(
            CURRENT_ENV_KERNEL_NAME,
            cwd=str(self.workdir),
            startup_timeout=self.config.option.nbval_kernel_startup_timeout,
        )
        self.setup_sanitize_files()

    def teardown(self):
        super().teardown()
        if self.workdir is not None:
            stray = sorted(p.name for p in self.workdir.iterdir() if p.name != self.path.name)
            shutil.rmtree(self.workdir, ignore_errors=True)
            if stray:
                pytest.fail(
                    f"{self.path.name} left files in its working folder: {stray}. "
                    "Lectures write only to temporary directories or the data cache.",
                    pytrace=False,
                )


def pytest_configure(config):
    if config.option.nbval_sanitize_with is None:
        config.option.nbval_sanitize_with = str(SANITIZER)


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix == ".ipynb" and file_path.parent == NOTEBOOKS and not parent.config.option.nbval:
        return IsolatedNotebook.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))
