"""Turn on an accelerator-numerics emulation in every Python process of a test run.

Python imports ``sitecustomize`` at startup from the first folder on
``sys.path`` that has one. With this folder on ``PYTHONPATH`` and
``JAX_LECTURES_EMULATE=tpu-bf16`` in the environment, every process started
from that environment, the Jupyter kernels that nbval starts included, installs
``tools/emulate_tpu_numerics.py`` the moment it imports ``jax``, before anything
can be compiled. Processes that never import jax pay only for this file.

Without the variable this file only runs the ``sitecustomize.py`` it shadows,
if a later ``PYTHONPATH`` folder has one (another stand-in can be combined with
this one). With the variable, a failure is loud: every ``import jax`` raises
(an error in ``sitecustomize`` itself would only print a one-line warning and
go on without the emulation). Relative ``PYTHONPATH`` entries are made absolute
for the children, which nbval starts in other folders.
Check in a process: ``sys.modules["emulate_tpu_numerics"].active() == "tpu-bf16"``.
"""

import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path

_ENV_VAR = "JAX_LECTURES_EMULATE"
_MODULE = "emulate_tpu_numerics"
_MODULE_FILE = Path(__file__).resolve().parent.parent / f"{_MODULE}.py"


def _install_emulation() -> None:
    module = sys.modules.get(_MODULE)
    if module is None:
        spec = importlib.util.spec_from_file_location(_MODULE, _MODULE_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_MODULE] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[_MODULE]
            raise
    module.install_from_env()


class _AfterJaxImport(importlib.abc.MetaPathFinder):
    """Finds ``jax`` with the other finders and installs the emulation once it has run."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "jax":
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the search below from finding us
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        if spec is None:
            return None  # jax is not installed: the usual ImportError follows
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            # Refuse rather than let jax run without the emulation that was asked for.
            raise ImportError(f"{_ENV_VAR} is set but jax's loader {spec.loader!r} cannot be hooked")
        run_jax = spec.loader.exec_module

        def exec_module(module):
            run_jax(module)
            try:
                _install_emulation()
            except BaseException:
                sys.meta_path.insert(0, self)  # so that a second `import jax` fails again
                raise

        spec.loader.exec_module = exec_module
        return spec


def _absolute_pythonpath() -> None:
    """Make PYTHONPATH absolute, so that children started in another folder (nbval's kernels are) find us."""
    entries = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    absolute = [os.path.abspath(entry) if entry else entry for entry in entries]
    if absolute != entries:
        os.environ["PYTHONPATH"] = os.pathsep.join(absolute)


def _run_next_sitecustomize() -> None:
    """Run the sitecustomize.py that this one shadows, if any (another stand-in folder later on PYTHONPATH)."""
    here = os.path.dirname(os.path.abspath(__file__))
    entries = [os.path.abspath(entry or os.curdir) for entry in sys.path]
    if here not in entries:
        return
    for folder in entries[entries.index(here) + 1 :]:
        candidate = os.path.join(folder, "sitecustomize.py")
        if folder != here and os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_shadowed_sitecustomize", candidate)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


if os.environ.get(_ENV_VAR, "").strip():
    _absolute_pythonpath()
    if "jax" in sys.modules:  # imported before us (unusual): install now
        _install_emulation()
    else:
        sys.meta_path.insert(0, _AfterJaxImport())

_run_next_sitecustomize()
