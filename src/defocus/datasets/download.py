"""Verified downloads of registered datasets (pooch), and atomic unpacking.

Layout under ``dest_dir`` (``resources/`` in the workflow)::

    dest_dir/archives/<name>/<fname>     downloaded files, kept so a re-run skips them
    dest_dir/<name>/                     unpacked dataset root (appears only when complete)
    dest_dir/<name>/SHA256SUMS           sha256 of every file it was built from

Pooch streams each file to a temporary name next to the target, checks the hash and only
then renames it, so a failed or corrupt download leaves nothing behind (we also remove any
stray temporary file ourselves). Pooch does not resume a partial transfer; "resumable" here
means per file: files already present with the right hash are not fetched again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from defocus.datasets.registry import DatasetSpec, RemoteFile, get_spec

log = logging.getLogger(__name__)

SUMS_NAME = "SHA256SUMS"


class DownloadError(RuntimeError):
    """A dataset file could not be downloaded, failed its checksum, or cannot be unpacked."""


class DatasetRootError(FileNotFoundError):
    """``datasets.<name>.root`` names a folder that does not exist."""


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _local_hint(name: str) -> str:
    return (
        f"Download it by hand and set the config key 'datasets.{name}.root' to the folder "
        "holding the unpacked data to skip the download."
    )


def download_file(
    remote: RemoteFile,
    dest_dir: str | os.PathLike,
    name: str = "",
    sha256: str | None = None,
    progress: bool = True,
    section: str = "datasets",
) -> tuple[Path, str]:
    """Download one file with pooch and verify it.

    Parameters
    ----------
    remote : RemoteFile
        What to fetch; ``remote.sha256`` is used unless ``sha256`` overrides it.
    dest_dir : path-like
        Folder for the file (created if needed).
    name : str
        Dataset name, only for messages (config key ``datasets.<name>.root``).
    sha256 : str, optional
        Expected hex digest overriding the registry's.
    progress : bool
        Show a tqdm progress bar.
    section : str
        Config section of the entry, for messages: ``datasets`` or ``releases``.

    Returns
    -------
    (Path, str)
        The local file and its sha256. When no hash was known, the computed one is logged
        (WARNING) so it can be pinned in config as ``<section>.<name>.sha256.<fname>``.

    Raises
    ------
    DownloadError
        On any network error, HTTP error status or checksum mismatch; the message names the
        URL and the config key for a local copy, and no partial file is left.
    """
    import pooch

    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    expected = (sha256 or remote.sha256 or "").lower() or None
    before = set(dest_dir.iterdir())
    try:
        local = pooch.retrieve(
            remote.url,
            known_hash=f"sha256:{expected}" if expected else None,
            fname=remote.fname,
            path=dest_dir,
            progressbar=progress,
        )
    except (ValueError, OSError) as err:  # requests' exceptions derive from OSError
        for p in set(dest_dir.iterdir()) - before:  # pooch cleans up; make sure of it
            if p.is_file():
                p.unlink(missing_ok=True)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        what = "checksum mismatch" if isinstance(err, ValueError) else "download failed"
        # a release's caller says where its file goes by hand (defocus.releases.fetch)
        kind, hint = ("dataset", " " + _local_hint(name or "<name>"))
        if section != "datasets":
            kind, hint = "release", ""
        where = f"{kind} {name or '?'}, file {remote.fname}"
        raise DownloadError(f"{what} for {remote.url} ({where}): {reason}." + hint) from err
    local = Path(local)
    digest = expected or sha256_file(local)
    if not expected:
        log.warning(
            "no sha256 pinned for %s; the downloaded file has sha256 %s. Pin it in config as "
            "%s.%s.sha256.%s to verify later downloads.",
            remote.url,
            digest,
            section,
            name or "<name>",
            remote.fname,
        )
    return local, digest


def fetch_release(
    remote: RemoteFile,
    dest_dir: str | os.PathLike,
    cfg_entry: Mapping | None = None,
    name: str = "",
    progress: bool = True,
) -> Path:
    """Download one released file (authors' weights), honouring a mirror and a sha256 pin.

    Authors' releases are configured like datasets (config ``releases.<name>``, e.g.
    ``releases.dhde``): ``base_url`` replaces everything before the file name, and
    ``sha256.<fname>`` replaces the pinned digest (a mirror serving another build of the file).

    Returns
    -------
    Path
        The verified local file in ``dest_dir``.

    Raises
    ------
    DownloadError
        From :func:`download_file`, or when ``sha256`` names another file than ``remote.fname``.
    """
    entry = dict(cfg_entry or {})
    pins = dict(entry.get("sha256") or {})
    unknown = set(pins) - {remote.fname}
    if unknown:
        raise DownloadError(
            f"releases.{name or '<name>'}.sha256 names unknown file(s) {sorted(unknown)}; "
            f"the release is the single file {remote.fname!r}"
        )
    if entry.get("base_url"):
        remote = replace(remote, url=entry["base_url"].rstrip("/") + "/" + remote.fname)
    path, _ = download_file(
        remote,
        dest_dir,
        name=name,
        sha256=pins.get(remote.fname),
        progress=progress,
        section="releases",
    )
    return path


def _is_archive(path: Path) -> bool:
    return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)


def _extract(archive: Path, dest: Path) -> None:
    """Extract a zip or tar archive into ``dest``, refusing members that escape it."""
    dest_resolved = dest.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                target = (dest / member).resolve()
                if not target.is_relative_to(dest_resolved):
                    raise DownloadError(f"{archive}: member {member!r} would extract outside root")
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(dest, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                for m in tf.getmembers():
                    if not (dest / m.name).resolve().is_relative_to(dest_resolved):
                        raise DownloadError(f"{archive}: member {m.name!r} escapes the root")
                tf.extractall(dest)
    else:
        raise DownloadError(f"{archive} is marked as an archive but is neither zip nor tar")


def unpack(
    files: list[Path], root: str | os.PathLike, sums: Mapping[str, str] | None = None
) -> Path:
    """Atomically build ``root`` from archives (extracted) and plain files (copied).

    Everything is extracted into a temporary sibling folder that is renamed to ``root`` only
    when complete; an existing ``root`` is replaced. ``sums`` (fname -> sha256) is written as
    ``root/SHA256SUMS``.
    """
    root = Path(root)
    _check_replaceable(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        for f in files:
            if _is_archive(f):
                try:
                    _extract(f, tmp)
                except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
                    raise DownloadError(f"cannot unpack {f}: {err}") from err
            else:
                shutil.copy2(f, tmp / f.name)
        if sums:
            (tmp / SUMS_NAME).write_text("".join(f"{h}  {n}\n" for n, h in sums.items()))
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _check_replaceable(root: Path) -> None:
    """Refuse to replace ``root`` unless a download made it (it holds ``SHA256SUMS``) or it is
    an empty folder: a user's own copy or files of the same name are never deleted."""
    if not root.exists() and not root.is_symlink():
        return
    if root.is_dir() and not root.is_symlink():
        if (root / SUMS_NAME).is_file() or not any(root.iterdir()):
            return
    raise DownloadError(
        f"{root} exists and was not made by a download (no {SUMS_NAME}): refusing to replace "
        f"it. Point datasets.{root.name}.root at it to use it as a local copy, or move it, "
        "or download into another folder (--dest / resources_dir)"
    )


def read_sums(root: str | os.PathLike) -> dict[str, str]:
    """``fname -> sha256`` from ``root/SHA256SUMS`` ({} when absent)."""
    p = Path(root) / SUMS_NAME
    if not p.is_file():
        return {}
    out = {}
    for line in p.read_text().splitlines():
        if line.strip():
            digest, fname = line.split(None, 1)
            out[fname.strip()] = digest
    return out


def resolve_spec(
    name: str, spec: DatasetSpec | None = None, base_url: str | None = None
) -> DatasetSpec:
    """The registry spec (or ``spec``), with every URL rebased on ``base_url`` if given.

    ``base_url`` replaces everything before the file name: ``<base_url>/<fname>``. It serves
    mirrors and tests (a local HTTP server).
    """
    spec = spec or get_spec(name)
    if base_url:
        base = base_url.rstrip("/") + "/"
        spec = replace(spec, files=tuple(replace(f, url=base + f.fname) for f in spec.files))
    return spec


def fetch(
    name: str,
    dest_dir: str | os.PathLike,
    sha256_overrides: Mapping[str, str] | None = None,
    progress: bool = True,
    *,
    spec: DatasetSpec | None = None,
    base_url: str | None = None,
) -> Path:
    """Download, verify and unpack dataset ``name``; return its root ``dest_dir/<name>``.

    Parameters
    ----------
    name : str
        Registry name (``defocus.datasets.registry.REGISTRY``).
    dest_dir : path-like
        Resources folder; archives go to ``dest_dir/archives/<name>/``.
    sha256_overrides : mapping, optional
        ``fname -> sha256`` pinned by the user (config ``datasets.<name>.sha256``).
    progress : bool
        Show progress bars.
    spec, base_url
        Use this spec instead of the registry's / rebase every URL (mirrors, tests).

    Returns
    -------
    Path
        The dataset root. ``root/SHA256SUMS`` lists the sha256 of every file, also those that
        were not pinned (see :func:`read_sums`). When the root exists with the same file list
        it is returned without touching the network.
    """
    spec = resolve_spec(name, spec, base_url)
    if not spec.files:
        raise DownloadError(
            f"dataset {name!r} has no unattended download ({spec.page}). {spec.notes} "
            + _local_hint(name)
        )
    dest_dir = Path(dest_dir)
    root = dest_dir / name
    _check_replaceable(root)  # before any download: a user's folder of that name stays
    overrides = dict(sha256_overrides or {})
    unknown = set(overrides) - {f.fname for f in spec.files}
    if unknown:
        raise DownloadError(
            f"datasets.{name}.sha256 names unknown file(s) {sorted(unknown)}; "
            f"files are {[f.fname for f in spec.files]}"
        )
    done = read_sums(root)
    if done and set(done) == {f.fname for f in spec.files}:
        mismatched = [
            f.fname
            for f in spec.files
            if (overrides.get(f.fname) or f.sha256)
            and (overrides.get(f.fname) or f.sha256).lower() != done[f.fname]
        ]
        if not mismatched:
            log.info("dataset %s already unpacked in %s", name, root)
            return root
    archive_dir = dest_dir / "archives" / name
    paths, sums = [], {}
    for f in spec.files:
        path, digest = download_file(
            f, archive_dir, name=name, sha256=overrides.get(f.fname), progress=progress
        )
        paths.append(path)
        sums[f.fname] = digest
    for path, f in zip(paths, spec.files, strict=True):
        if f.unpack and not _is_archive(path):
            path.unlink(missing_ok=True)  # do not let a later run trust it
            raise DownloadError(
                f"{f.url} gave {path}, which is not a zip/tar archive (an HTML error page?). "
                + _local_hint(name)
            )
    return unpack(paths, root, sums)


def ensure_dataset(
    name: str,
    cfg_entry: Mapping | None,
    resources_dir: str | os.PathLike,
    progress: bool = True,
    *,
    spec: DatasetSpec | None = None,
) -> Path:
    """The root folder of dataset ``name``: the user's local copy, or a verified download.

    Parameters
    ----------
    name : str
        Registry name.
    cfg_entry : mapping or None
        ``config["datasets"][name]``. Keys used: ``root`` (a local copy: no download at all),
        ``sha256`` (``fname -> hex`` pins) and ``base_url`` (a mirror serving the same file
        names).
    resources_dir : path-like
        Where downloads and unpacked data go (``resources/``).

    Raises
    ------
    DatasetRootError
        ``root`` is set but is not an existing folder.
    DownloadError
        From :func:`fetch`.
    """
    cfg_entry = dict(cfg_entry or {})
    root = cfg_entry.get("root")
    if root:
        p = Path(os.path.expandvars(str(root))).expanduser()
        if not p.is_dir():
            raise DatasetRootError(
                f"datasets.{name}.root = {str(root)!r} is not an existing folder "
                f"(resolved to {p.resolve()}); fix the path or remove the key to download"
            )
        return p
    return fetch(
        name,
        resources_dir,
        sha256_overrides=cfg_entry.get("sha256"),
        progress=progress,
        spec=spec,
        base_url=cfg_entry.get("base_url"),
    )
