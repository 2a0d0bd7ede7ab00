"""Under `make test-colab` (which runs this file; it is not in the default test paths): the notebooks' kernels
import the stand-in google.colab before their first cell, as on Colab, so every setup cell takes its Colab branch.
What the branch then does is tested in test_setup_cells.py, and by the Colab run itself."""

from __future__ import annotations

import os

from lectures import ROOT, kernel_prints

STARTUP = ROOT / "envs" / "colab" / "standin" / "startup.py"


def test_this_runs_notebook_kernels_see_colab(tmp_path):
    assert os.environ.get("PYTHONSTARTUP") == str(STARTUP), "run this file through `make test-colab`"
    assert kernel_prints("import sys\nprint('google.colab' in sys.modules)", tmp_path) == "True"
