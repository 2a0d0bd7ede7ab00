"""Collect every lecture in notebooks/ as an nbval test, each run alone in an empty folder.

Each notebook is copied into a fresh temporary folder before its kernel starts, so one execution checks both the
stored outputs (strict nbval: every unmarked cell is compared) and that the lecture is self-contained, as when it
is opened alone in Colab. With `--nbval` or `--nbval-lax` on the command line nbval collects the notebooks itself
(stock nbval, as its documentation runs it) and this collector stands aside, so nothing is collected twice.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, RunningKernel
from nbval.plugin import IPyNbFile
from runner import cell_timeout_s, set_kernel_defaults, stray_message

pytest_plugins = ["pytester"]

# Not compared: stderr (XLA/absl log lines and progress bars differ between Jupyter and pytest) and animations,
# which the image-export test checks instead.
EXTRA_SKIP_COMPARE = ("stderr", "image/gif")

set_kernel_defaults()


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
            stray = stray_message(self.path.name, self.workdir, expected=(self.path.name,))
            shutil.rmtree(self.workdir, ignore_errors=True)
            if stray:
                pytest.fail(stray, pytrace=False)


def pytest_configure(config):
    if config.option.nbval_sanitize_with is None:
        config.option.nbval_sanitize_with = str(config.rootpath / "tests" / "nbval_sanitize.cfg")
    if not any(arg.startswith("--nbval-cell-timeout") for arg in config.invocation_params.args):
        config.option.nbval_cell_timeout = cell_timeout_s()  # the same limit as `make lectures`


def pytest_collect_file(file_path: Path, parent):
    config = parent.config
    if config.option.nbval or config.option.nbval_lax:
        return None
    if file_path.suffix == ".ipynb" and file_path.parent == config.rootpath / "notebooks":
        return IsolatedNotebook.from_parent(parent, path=file_path)
    return None
