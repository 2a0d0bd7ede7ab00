"""What each lecture's setup cell *does* on Colab, not only what it says.

The Colab branch of every setup cell (the `if "google.colab" in sys.modules:` block) is run here with a
stand-in `sys`, `subprocess` and package metadata, on three runtimes:
- today's Colab (its published package list): it installs nothing;
- a runtime whose Flax is too old, where pip succeeds: every install holds jax and jaxlib at the installed
  versions;
- the previous runtime (jax 0.5.3, flax 0.10.6), where no Flax >= 0.11 can be installed: the cell either
  works or stops with one sentence that says what is needed, never a pip traceback.
`make test-colab` runs the real branch on Colab's stack; this covers the runtimes we cannot install.
"""

from __future__ import annotations

import builtins
import importlib.metadata
import subprocess
import textwrap
import types

import pytest
from lectures import NOTEBOOKS, ROOT, code_cells, exact_pins, read

ids = [nb.stem for nb in NOTEBOOKS]
GUARD = 'if "google.colab" in sys.modules:'


def colab_versions() -> dict[str, str]:
    """Package versions of today's Colab CPU runtime, from the constraints `make test-colab` uses."""
    return exact_pins(ROOT / "envs" / "colab" / "constraints.txt")


def colab_branch(notebook) -> str:
    """The body of the setup cell's Colab branch, dedented, as a program of its own."""
    source = code_cells(read(notebook))[0][1].source
    lines = source.splitlines()
    start = lines.index(GUARD) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].strip() and not lines[i].startswith(" ")),
               len(lines))
    return textwrap.dedent("\n".join(lines[start:end]))


def run_branch(notebook, versions: dict[str, str], pip_succeeds: bool = True, missing_modules=()):
    """Run the Colab branch against a fake runtime; returns the pip commands it ran."""
    commands = []

    def fake_run(cmd, check=False, **_):
        commands.append([str(part) for part in cmd])
        returncode = 0 if pip_succeeds else 1
        if check and returncode:
            raise subprocess.CalledProcessError(returncode, cmd)
        return types.SimpleNamespace(returncode=returncode)

    def fake_version(name):
        if name.lower() not in versions:
            raise importlib.metadata.PackageNotFoundError(name)
        return versions[name.lower()]

    fakes = {
        "subprocess": types.SimpleNamespace(run=fake_run, CalledProcessError=subprocess.CalledProcessError),
        "importlib.metadata": types.SimpleNamespace(
            version=fake_version, PackageNotFoundError=importlib.metadata.PackageNotFoundError),
        "importlib.util": types.SimpleNamespace(find_spec=lambda module: None if module in missing_modules else True),
    }

    def fake_import(name, globals=None, locals=None, fromlist=(), level=0):
        return fakes[name] if name in fakes else builtins.__import__(name, globals, locals, fromlist, level)

    namespace = {
        "__builtins__": {**vars(builtins), "__import__": fake_import},
        "sys": types.SimpleNamespace(modules={"google.colab": object()}, executable="/usr/bin/python3"),
    }
    exec(compile(colab_branch(notebook), f"{notebook.name} setup cell", "exec"), namespace)
    return commands


def assert_jax_held(notebook, commands, versions):
    for cmd in commands:
        assert cmd[1:4] == ["-m", "pip", "install"], f"{notebook.name}: unexpected command {cmd}"
        assert f"jax=={versions['jax']}" in cmd and f"jaxlib=={versions['jaxlib']}" in cmd, (
            f"{notebook.name}: an install on Colab must hold jax and jaxlib at the installed versions: {cmd}"
        )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_todays_colab_installs_nothing(notebook):
    assert run_branch(notebook, colab_versions()) == [], f"{notebook.name}: Colab already has what it needs"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_old_flax_is_upgraded_holding_jax(notebook):
    versions = {**colab_versions(), "flax": "0.10.6"}
    commands = run_branch(notebook, versions, missing_modules=("optax", "sklearn"))
    assert_jax_held(notebook, commands, versions)
    if "flax" in colab_branch(notebook):  # the lectures that use Flax NNX
        assert any(any(part.startswith("flax") for part in cmd) for cmd in commands), (
            f"{notebook.name}: Flax 0.10 is too old for nnx.Optimizer(..., wrt=...): the cell should upgrade it"
        )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=ids)
def test_a_runtime_too_old_gets_one_clear_sentence(notebook):
    versions = {**colab_versions(), "jax": "0.5.3", "jaxlib": "0.5.3", "flax": "0.10.6"}
    try:
        commands = run_branch(notebook, versions, pip_succeeds=False)
    except (RuntimeError, AssertionError) as err:  # a sentence of our own, naming what is needed
        message = str(err)
        assert "0.5.3" in message and ("needs" in message or "pick the current runtime" in message), (
            f"{notebook.name}: the error on an old runtime should say what is needed: {message!r}"
        )
    else:
        assert_jax_held(notebook, commands, versions)
