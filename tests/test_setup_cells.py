"""What each lecture's setup cell *does* on Colab, not only what it says.

Every setup cell carries the same Colab branch: it asks pip for the lecture's `NEEDS` with jax and jaxlib held
at the installed versions, and stops with one sentence when pip cannot. The branch (with the `NEEDS` line above
it) runs here against a stand-in pip that decides as pip does without --upgrade: a requirement the runtime
already satisfies installs nothing; an unsatisfied one is installed, unless it is jax itself, which the held pins
make impossible. Three runtimes:
- today's Colab (its published package list): nothing is installed;
- a runtime whose Flax is too old: Flax is upgraded, jax and jaxlib held;
- the previous runtime (jax 0.5.3, flax 0.10.6): one sentence that says what is needed, never a pip traceback.
`make test-colab` runs the real branch, with the real pip, on Colab's stack.
"""

from __future__ import annotations

import builtins
import importlib.metadata
import subprocess
import types

import pytest
from lectures import NOTEBOOKS, ROOT, code_cells, exact_pins, read
from packaging.requirements import Requirement

ids = [nb.stem for nb in NOTEBOOKS]
GUARD = 'if "google.colab" in sys.modules:'


def colab_versions() -> dict[str, str]:
    """Package versions of today's Colab CPU runtime, from the constraints `make test-colab` uses."""
    return exact_pins(ROOT / "envs" / "colab" / "constraints.txt")


def setup_lines(notebook) -> list[str]:
    return code_cells(read(notebook))[0][1].source.splitlines()


def colab_branch(notebook) -> str:
    """The setup cell from its first line to the end of the Colab branch, as a program of its own."""
    lines = setup_lines(notebook)
    start = next(i for i, line in enumerate(lines) if line.startswith(GUARD))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i].startswith(" ")),
               len(lines))
    return "\n".join(lines[:end])


class FakePip:
    """pip install without --upgrade, against a runtime's installed versions."""

    def __init__(self, installed: dict[str, str], index_has_it: bool = True):
        self.installed, self.index_has_it = installed, index_has_it
        self.commands, self.installs = [], []

    def run(self, cmd, check=False, **_):
        cmd = [str(part) for part in cmd]
        self.commands.append(cmd)
        assert cmd[1:4] == ["-m", "pip", "install"], f"not a pip install: {cmd}"
        wanted = [Requirement(part) for part in cmd[4:] if not part.startswith("-")]
        unmet = [r for r in wanted if r.name.lower() not in self.installed
                 or not r.specifier.contains(self.installed[r.name.lower()], prereleases=True)]
        # jax is held at its installed version, so a requirement on a different jax cannot be met.
        ok = self.index_has_it and not any(r.name.lower() in ("jax", "jaxlib") for r in unmet)
        if ok:
            self.installs += [r.name.lower() for r in unmet]
        if check and not ok:
            raise subprocess.CalledProcessError(1, cmd)
        return types.SimpleNamespace(returncode=0 if ok else 1)


def run_branch(notebook, installed: dict[str, str], index_has_it: bool = True) -> FakePip:
    pip = FakePip(installed, index_has_it)

    def fake_version(name):
        if name.lower() not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed[name.lower()]

    fakes = {
        "sys": types.SimpleNamespace(modules={"google.colab": object()}, executable="/usr/bin/python3"),
        "subprocess": types.SimpleNamespace(run=pip.run, CalledProcessError=subprocess.CalledProcessError),
        "importlib.metadata": types.SimpleNamespace(
            version=fake_version, PackageNotFoundError=importlib.metadata.PackageNotFoundError),
    }

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name in fakes:
            return fakes[name]
        if name == "importlib" and fromlist:  # `import importlib.metadata` binds the package
            return types.SimpleNamespace(metadata=fakes["importlib.metadata"])
        return builtins.__import__(name, globals, locals, fromlist, level)

    namespace = {"__builtins__": {**vars(builtins), "__import__": fake_import}}
    exec(compile(colab_branch(notebook), f"{notebook.name} setup cell", "exec"), namespace)
    for cmd in pip.commands:
        assert f"jax=={installed['jax']}" in cmd and f"jaxlib=={installed['jaxlib']}" in cmd, (
            f"{notebook.name}: every pip call on Colab must hold jax and jaxlib at the installed versions: {cmd}"
        )
    return pip


def test_every_lecture_has_the_same_colab_branch():
    branches = {}
    for notebook in NOTEBOOKS:
        lines = setup_lines(notebook)
        assert lines[:2] == ["import sys", ""] and lines[2].startswith("NEEDS = ["), (
            f"{notebook.name}: the setup cell starts with `import sys` and the lecture's NEEDS list"
        )
        branches.setdefault(colab_branch(notebook).split("\n", 3)[3], []).append(notebook.stem)
    assert len(branches) == 1, f"the Colab branch differs between lectures: {list(branches.values())}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_todays_colab_installs_nothing(notebook):
    pip = run_branch(notebook, colab_versions())
    assert pip.installs == [], f"{notebook.name}: Colab already has what it needs, yet pip would install {pip.installs}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_a_missing_or_old_package_is_installed_holding_jax(notebook):
    versions = {**colab_versions(), "flax": "0.10.6"}
    del versions["optax"], versions["scikit-learn"]
    needs = [Requirement(r).name for r in eval(setup_lines(notebook)[2].split("=", 1)[1].split("#")[0])]
    expected = sorted(name for name in needs if name in ("flax", "optax", "scikit-learn"))
    assert sorted(run_branch(notebook, versions).installs) == expected


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_a_runtime_too_old_gets_one_clear_sentence(notebook):
    versions = {**colab_versions(), "jax": "0.5.3", "jaxlib": "0.5.3", "flax": "0.10.6"}
    with pytest.raises(RuntimeError) as err:  # pip finds no Flax >= 0.11 (or jax >= 0.7) next to jax 0.5.3
        run_branch(notebook, versions, index_has_it=False)
    message = str(err.value)
    assert "0.5.3" in message and "needs" in message and "pick the current runtime" in message, message
