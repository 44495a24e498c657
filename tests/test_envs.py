"""requirements/lock.txt, envs/defocus.yaml and pyproject.toml describe one environment.

The lock is the environment (every distribution, one version, one sha256); the conda env
installs exactly the lock's versions from PyPI on Python 3.11; pyproject.toml keeps ranges
for library users, and those ranges must admit every locked version.
"""

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from defocus.provenance import canonical_name, read_lock

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"


def _env_yaml() -> tuple[list[str], list[str]]:
    """(conda specs, pip lines) of envs/defocus.yaml."""
    env = yaml.safe_load((ROOT / "envs" / "defocus.yaml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [x for d in env["dependencies"] if isinstance(d, dict) for x in d["pip"]]
    return conda, pip


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    return [Requirement(r) for r in reqs]


def test_lock_pins_every_distribution_with_a_hash():
    pins = read_lock(LOCK)
    text = LOCK.read_text()
    assert text.count("--hash=sha256:") == len(pins), "every pin carries exactly one sha256"
    for name in ("torch", "torchvision", "numpy", "opencv-contrib-python-headless", "pip"):
        assert name in pins, f"{LOCK} does not pin {name}; run `make lock`"
    assert "defocus-bench" not in pins, "the project itself is installed with -e ., not locked"
    # the CUDA runtime wheels that torch pulls in on Linux x86_64 are part of the environment
    assert any(n.startswith("nvidia-") for n in pins)


def test_pyproject_ranges_admit_the_locked_versions():
    pins = read_lock(LOCK)
    for req in _pyproject_requirements():
        name = canonical_name(req.name)
        assert name in pins, f"pyproject.toml needs {req.name} but {LOCK} lacks it: `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK} pins {name}=={pins[name]}, outside pyproject.toml's {req}: `make lock`"
        )


def test_conda_env_pins_exactly_the_lock_on_python_311():
    conda, pip = _env_yaml()
    assert "python=3.11" in conda, f"envs/defocus.yaml must ask for python=3.11, has {conda}"
    assert set(conda) <= {"python=3.11", "pip"}, f"packages come from the lock via pip: {conda}"
    pinned = {}
    for line in pip:
        if line.startswith("-e"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"envs/defocus.yaml: pip line {line!r} is not name==version"
        pinned[canonical_name(name)] = version
    assert pinned == read_lock(LOCK), "envs/defocus.yaml differs from the lock: run `make lock`"


def test_pyproject_asks_for_the_locked_python():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains("3.11")
