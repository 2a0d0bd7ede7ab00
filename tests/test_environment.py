"""requirements.txt (what CI installs) and environment.yml (conda users) describe one environment."""

from __future__ import annotations

import tomllib

import yaml
from lectures import PIN, ROOT, exact_pins


def requirement_pins() -> dict[str, str]:
    return exact_pins(ROOT / "requirements.txt")


def test_requirements_pin_the_lecture_stack():
    pins = requirement_pins()
    for package in ("jax", "jaxlib", "flax", "optax", "numpy", "matplotlib", "scikit-learn", "nbval", "pytest", "ruff"):
        assert package in pins, f"requirements.txt must pin {package}"


def test_environment_yml_agrees_with_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs one pip: section"

    python = next((d for d in conda if d.startswith("python")), None)
    assert python, "environment.yml must pin the Python version"
    minimum = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"].removeprefix(">=")
    assert python.split("=")[-1].startswith(minimum), (
        f"environment.yml {python} vs pyproject requires-python >={minimum}"
    )

    pins = requirement_pins()
    listed = {}
    for entry in pip_sections[0]:
        if entry.strip() == "-r requirements.txt":
            listed.update(pins)
            continue
        match = PIN.match(entry.strip())
        assert match, f"environment.yml pip entry {entry!r} must be an exact pin or '-r requirements.txt'"
        listed[match.group(1).lower()] = match.group(2)
    assert listed == pins, f"environment.yml installs a different set: {set(listed.items()) ^ set(pins.items())}"
    for dep in conda:
        name, _, version = dep.partition("=")
        if name in pins and version:
            assert version.lstrip("=") == pins[name], f"conda pins {dep} but requirements.txt pins {name}=={pins[name]}"
