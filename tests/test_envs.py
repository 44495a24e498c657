"""envs/defocus.yaml and pyproject.toml must name the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda names that differ from the PyPI names
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower()


def test_env_and_pyproject_name_same_packages():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    py = {_name(d) for d in deps}
    env = yaml.safe_load((ROOT / "envs" / "defocus.yaml").read_text())
    conda = set()
    for d in env["dependencies"]:
        if isinstance(d, dict):
            conda |= {_name(x) for x in d["pip"] if not x.startswith("-e")}
        else:
            conda.add(CONDA_TO_PYPI.get(_name(d), _name(d)))
    conda -= {"python", "pip"}
    assert py == conda, f"only in pyproject: {py - conda}; only in envs: {conda - py}"
