"""The lock installs where the README says it does, is what its command makes, and conda installs the same lock.

The resolutions ask PyPI (uv caches what it fetched); nothing is installed.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from lectures import ROOT, exact_pins
from packaging.requirements import Requirement

UV = Path(sys.executable).with_name("uv")
PLATFORMS = {
    "linux": "x86_64-unknown-linux-gnu",
    "macos-arm64": "aarch64-apple-darwin",
    "windows": "x86_64-pc-windows-msvc",
}
PYTHONS = ["3.11", "3.12", "3.13"]
EXCLUDES = "envs/lock-excludes.txt"  # packages the lock leaves out on purpose (the file says why)
LOCK_COMMAND = (f"uv pip compile --universal --python-version 3.11 requirements.in --excludes {EXCLUDES}"
                " -o requirements.txt")


def uv(*args: str, cwd: Path = ROOT) -> str:
    """uv's output; from its cache when that has every answer (PyPI is slow to revalidate), else from PyPI."""
    for offline in ("1", "0"):
        env = {**os.environ, "UV_OFFLINE": offline}
        result = subprocess.run([str(UV), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        if result.returncode == 0:
            break
    assert result.returncode == 0, f"uv {' '.join(args)} failed (it needs PyPI):\n{result.stderr[-3000:]}"
    return result.stdout


def pinned(text: str) -> set[str]:
    """name==version for every requirement line, markers dropped."""
    lines = (line.split(";")[0].strip() for line in text.splitlines())
    return {str(Requirement(line)).lower() for line in lines if line and not line.startswith("#")}


def test_the_lock_is_what_its_command_makes(tmp_path):
    lock = (ROOT / "requirements.txt").read_text()
    assert f"#    {LOCK_COMMAND}\n" in lock, f"requirements.txt must come from `{LOCK_COMMAND}` (make lock)"
    for name in ("requirements.in", "requirements.txt", EXCLUDES):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    uv(*LOCK_COMMAND.split()[1:], "--quiet", cwd=tmp_path)
    assert (tmp_path / "requirements.txt").read_text() == lock, (
        "requirements.txt differs from what requirements.in gives: run `make lock` and commit both"
    )


def test_the_lock_pins_the_lecture_stack():
    pins = exact_pins(ROOT / "requirements.txt")
    direct = [Requirement(line).name for line in (ROOT / "requirements.in").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    for package in {*direct, "jax", "jaxlib", "flax", "optax", "numpy", "nbval", "pytest", "uv"}:
        assert package in pins, f"requirements.txt must pin {package}"


def test_the_lock_installs_on_linux_macos_and_windows():
    """Wheels only, as pip needs for jaxlib; a package a platform needs that the lock lacks shows up as missing.
    The nine resolutions run side by side: each waits mostly on PyPI."""

    def missing(target: tuple[str, str]) -> list[str]:
        platform, python = target
        resolved = uv("pip", "compile", "requirements.txt", "--python-platform", PLATFORMS[platform],
                      "--python-version", python, "--excludes", EXCLUDES, "--only-binary", ":all:",
                      "--no-header", "--no-annotate", "--quiet")
        return sorted(pinned(resolved) - pinned((ROOT / "requirements.txt").read_text()))

    targets = list(itertools.product(PLATFORMS, PYTHONS))
    with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
        results = zip(targets, pool.map(missing, targets), strict=True)
    gaps = {f"{platform}, Python {python}": gap for (platform, python), gap in results if gap}
    assert not gaps, f"the lock lacks packages these need (run `make lock`): {gaps}"


def test_environment_yml_installs_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert [d for d in deps if isinstance(d, dict)] == [{"pip": ["-r requirements.txt"]}], (
        "environment.yml installs exactly the lock, through one `pip: [-r requirements.txt]` section"
    )
    python = next((d for d in deps if isinstance(d, str) and d.startswith("python")), None)
    minimum = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"].removeprefix(">=")
    assert python == f"python={minimum}", f"environment.yml asks for {python}; the lock is made for {minimum}"
    assert f"--python-version {minimum} " in LOCK_COMMAND
