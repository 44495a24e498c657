"""What produced a number: the versions of the packages that shape it and the git commit.

Every prediction file, table sidecar and the report record :func:`provenance` so that a
published table names the environment that made it (see ``requirements/lock.txt`` and the
README's reproducibility paragraph).
"""

from __future__ import annotations

import functools
import json
import platform
import re
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


def hardware_class() -> str:
    """The CPU class whose kernels the numeric libraries dispatch to, e.g. ``x86_64-v4``.

    numpy, OpenCV and torch pick SIMD code paths at run time, and a float sum over AVX-512
    lanes need not equal the same sum over AVX2 lanes, so the same lock gives the same bytes
    only on the same class. On x86 this is the x86-64 micro-architecture level (v2: SSE4.2,
    v3: AVX2+FMA, v4: AVX-512) as numpy detects it; elsewhere the machine name (plus ``-sve``
    on ARM CPUs with SVE).
    """
    machine = platform.machine()
    try:  # numpy's run-time CPU feature table (what numpy.show_runtime() prints)
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:
        return machine
    for level in ("X86_V4", "X86_V3", "X86_V2"):
        if features.get(level):
            return f"{machine}-v{level[-1]}"
    return f"{machine}-sve" if features.get("SVE") else machine


def provenance_attrs() -> dict[str, str]:
    """:func:`provenance` as flat file attributes: ``versions_json`` (the whole dict, sorted
    JSON), ``git_commit``, one ``version_{name}`` per entry (``version_numpy`` ...) and
    ``hardware_class`` (:func:`hardware_class`)."""
    prov = provenance()
    attrs = {"versions_json": json.dumps(prov, sort_keys=True), "git_commit": prov["git_commit"]}
    attrs.update({f"version_{k}": v for k, v in prov.items() if k != "git_commit"})
    attrs["hardware_class"] = hardware_class()
    return attrs


# ---------------------------------------------------------------------------------------------
# The lock: requirements/lock.txt pins every distribution of the environment that makes the
# published numbers (written by requirements/relock.py). These helpers compare it with what is
# installed, so that a drifted environment is named instead of silently used.

#: Set to 1 to run the tests in an environment that differs from the lock (another platform,
#: a library user's own versions); outputs then still record the versions that made them.
ALLOW_DRIFT_ENV = "DEFOCUS_ALLOW_DRIFT"

#: The lock of a source checkout (absent from an installed wheel).
LOCK_FILE = Path(__file__).resolve().parents[2] / "requirements" / "lock.txt"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name (``PyYAML`` -> ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: str | Path = LOCK_FILE) -> dict[str, str]:
    """``{canonical name: version}`` of the ``name==version`` lines of a lock file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lock file not found: {path} (regenerate it with `make lock`)")
    pins = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip() and not line.lstrip().startswith(("#", "--")):
            m = _PIN.match(line)
            if m is None:
                raise ValueError(f"{path}:{n}: expected 'name==version', got {line.strip()!r}")
            pins[canonical_name(m.group(1))] = m.group(2)
    return pins


def installed_versions() -> dict[str, str]:
    """``{canonical name: version}`` of every distribution the running interpreter sees."""
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:  # a half-removed install can leave a nameless .dist-info behind
            out.setdefault(canonical_name(name), dist.version)
    return out


def lock_drift(
    lock: str | Path | dict[str, str] = LOCK_FILE, installed: dict[str, str] | None = None
) -> list[str]:
    """One line per locked distribution that is missing or at another version, sorted.

    ``lock`` is a lock file or its :func:`read_lock` dict; ``installed`` defaults to
    :func:`installed_versions`. An empty list means the environment is the lock's.
    """
    pins = lock if isinstance(lock, dict) else read_lock(lock)
    have = installed_versions() if installed is None else installed
    return [
        f"{name}: locked {want}, installed {have.get(name, 'nothing')}"
        for name, want in sorted(pins.items())
        if have.get(name) != want
    ]


# ---------------------------------------------------------------------------------------------
# Recorded versions: what a prediction file or a table sidecar says made it, against what runs.


def recorded_provenance(path: str | Path) -> dict[str, str]:
    """The :func:`provenance` an output recorded: a prediction file's ``versions_json``
    attribute (plus its ``hardware_class``), or the ``provenance`` entry of a table's JSON
    sidecar."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such output: {path}")
    if path.suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            blob = f.attrs.get("versions_json")
            hardware = f.attrs.get("hardware_class")
        if blob is None:
            raise ValueError(f"{path} records no versions_json (written before versions were)")
        out = json.loads(blob)
        if hardware is not None:
            out["hardware_class"] = str(hardware)
        return out
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("provenance"), dict):
            raise ValueError(f"{path} has no 'provenance' entry (a table sidecar has one)")
        return data["provenance"]
    raise ValueError(f"{path}: expected a prediction file (.h5) or a table sidecar (.json)")


def provenance_differences(recorded: dict[str, str], current: dict[str, str] | None = None):
    """One line per entry whose recorded value differs from the running one, sorted.

    ``current`` defaults to :func:`provenance`, plus :func:`hardware_class` where the output
    recorded one.
    """
    if current is None:
        now = provenance()
        if "hardware_class" in recorded:
            now["hardware_class"] = hardware_class()
    else:
        now = current
    return [
        f"{k}: recorded {recorded.get(k, 'nothing')}, running {now.get(k, 'nothing')}"
        for k in sorted(set(recorded) | set(now))
        if recorded.get(k) != now.get(k)
    ]


def main(argv: list[str] | None = None) -> int:
    """``python -m defocus.provenance OUTPUT...``: does this environment match the one that
    made each output? Exit status 1 if one differs, 2 if one cannot be read."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m defocus.provenance", description=main.__doc__)
    ap.add_argument("outputs", nargs="+", help="prediction files (.h5) or table sidecars")
    args = ap.parse_args(argv)
    status = 0
    for out in args.outputs:
        try:
            diff = provenance_differences(recorded_provenance(out))
        except (OSError, ValueError) as e:
            print(f"{out}: {e}")
            status = 2
            continue
        print(f"{out}: " + ("same as this environment" if not diff else "differs"))
        for line in diff:
            print(f"  {line}")
        status = max(status, int(bool(diff)))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
