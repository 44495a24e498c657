"""What produced a number: the versions of the packages that shape it and the git commit.

Every prediction file, table sidecar and the report record :func:`provenance` so that a
published table names the environment that made it (see ``requirements/lock.txt`` and the
README's reproducibility paragraph).
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# The distributions whose versions can change a map or a score (numerics, image decoding,
# resampling, solvers, networks). Distribution names, as pip knows them.
NUMERIC_PACKAGES: tuple[str, ...] = (
    "numpy",
    "scipy",
    "opencv-contrib-python-headless",
    "scikit-image",
    "scikit-learn",
    "pymatting",
    "pyamg",
    "torch",
    "torchvision",
    "h5py",
    "pillow",
)

# Short names used as table columns and HDF5 attributes.
SHORT_NAMES: dict[str, str] = {
    "opencv-contrib-python-headless": "opencv",
    "scikit-image": "skimage",
    "scikit-learn": "sklearn",
}


def package_versions(packages: tuple[str, ...] = NUMERIC_PACKAGES) -> dict[str, str]:
    """``{short name: version}`` of the installed distributions (``"absent"`` if missing)."""
    out = {"python": platform.python_version()}
    for dist in packages:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "absent"
        out[SHORT_NAMES.get(dist, dist)] = version
    return out


@functools.cache
def git_commit(where: str | None = None) -> str:
    """The commit of the checkout that holds this package (``"unknown"`` outside git).

    A ``-dirty`` suffix marks uncommitted changes to tracked files.
    """
    cwd = Path(where) if where else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        suffix = "-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else ""
        return sha.stdout.strip() + suffix
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> dict[str, str]:
    """Package versions plus ``git_commit``: what every output records."""
    return {**package_versions(), "git_commit": git_commit()}
