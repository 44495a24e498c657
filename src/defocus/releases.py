"""The registry of authors' released files (trained weights and auxiliary tables) that the
pipeline downloads, beside the dataset registry (:mod:`defocus.datasets.registry`).

Each :class:`Release` says where the authors publish the file (URLs with the repository file
and line that names them), its file name, its sha256 where the authors publish a fixed file
(a file committed to a repository: its digest there), its size, the one member to extract
when the download is a zip, the path it is written to under ``resources/`` and which method
or option uses it. :func:`fetch` downloads any entry (verified by
:func:`defocus.datasets.download.fetch_release`), honouring config ``releases.<name>``
exactly as datasets honour ``datasets.<name>``: ``base_url`` names a mirror serving the same
file name and ``sha256: {<fname>: <hex>}`` pins its file. Without a digest (DMENet's
cloud-drive zips), the first download logs the sha256 to pin.

What a release file *means* stays with its method: the conversion of the DHDE Caffe model
(:func:`defocus.methods.dhde.release.release_state_dict`), of DMENet's TensorLayer
checkpoint and the Caffe VGG19 (:mod:`defocus.methods.dmenet.release`), and the RTF table's
use (:mod:`defocus.datasets.readers`).

torchvision's ImageNet VGG files are not entries: torchvision fetches them itself into its
hub cache (``TORCH_HOME``) when a backbone is built, verified by the digest prefix in their
names (:func:`defocus.methods.backbones.imagenet_weights_file`).
"""

from __future__ import annotations

import importlib
import os
import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from defocus.datasets.registry import UnknownNameError, lookup, text_table


class UnknownReleaseError(UnknownNameError):
    """A release name that the registry does not know."""


@dataclass(frozen=True)
class Release:
    """One authors' released file and where the pipeline puts it.

    Attributes
    ----------
    name : str
        Registry name and config key (``releases.<name>``).
    title : str
        What it is, for messages (``"DHDE release weights"``).
    source : str
        Where the URLs come from: repository, file and line.
    urls : tuple of str
        The authors' addresses, tried in turn (a mirror ``base_url`` replaces them all).
    fname : str
        The downloaded file's name (also the name a mirror serves and a pin names).
    sha256 : str or None
        The digest of the authors' file, or None where they publish none (cloud-drive zips).
    size : int or None
        Size in bytes of the download when known (informational).
    output : str
        Where the pipeline writes it, relative to the resources folder.
    used_by : str
        The method spec or config option that reads it.
    local : str
        How to use a local copy instead of the download (the end of an error message).
    member : str
        For a zip: the file name (at any depth) extracted to ``output``; "" for a plain file.
    check : str
        ``"module:function"`` called on the output after the download ("" for none): a reader
        of the file that raises a clear error for a file of the wrong kind.
    """

    name: str
    title: str
    source: str
    urls: tuple[str, ...]
    fname: str
    sha256: str | None
    size: int | None
    output: str
    used_by: str
    local: str
    member: str = ""
    check: str = ""

    def path(self, resources: str | os.PathLike = "resources") -> Path:
        """The output file under ``resources``."""
        return Path(resources) / self.output

    def manual_hint(self, folder: str | os.PathLike) -> str:
        """How to provide the file by hand: put the download in ``folder``, or a local copy."""
        return (
            f"For the {self.title}: put {self.fname} (from {self.urls[0]}) in {folder}, "
            f"or {self.local}."
        )


_DHDE_REPO = "https://github.com/zzangjinsun/DHDE_CVPR17"
_DMENET_REPO = "https://github.com/codeslake/DMENet"
#: the DMENet commit whose evaluation/RTF/convertion.mat is pinned
_DMENET_COMMIT = "d844e5a6ad3e7a1c9157d50935de1a6eb6bc4bf8"

RELEASES: dict[str, Release] = {
    "dhde": Release(
        name="dhde",
        title="DHDE release weights",
        source=(
            f"{_DHDE_REPO}: DHDE/DHDE_model.caffemodel (branch master; loaded by "
            "DHDE/DHDE_defocus_estimation.m line 83); sha256 of the file in the repository"
        ),
        urls=(f"{_DHDE_REPO}/raw/master/DHDE/DHDE_model.caffemodel",),
        fname="DHDE_model.caffemodel",
        sha256="a5f922d7622ccdd830cd02cfc0e788f3b9d3ceb038a00d7c60716ab1986ac94a",
        size=507651,
        output="weights/dhde/release.caffemodel",
        used_by="dhde@weights=release",
        local="set methods.params.dhde.weights to a local .caffemodel",
    ),
    "dmenet": Release(
        name="dmenet",
        title="DMENet release weights",
        source=(
            f"{_DMENET_REPO}: README.md line 74 (step 5, 'Download pretrained weights of "
            "DMENet': OneDrive and Dropbox links; unzips to .../checkpoint/DMENet_BDCS.npz); "
            "no digest published"
        ),
        urls=(
            "https://www.dropbox.com/s/04lg03ogsto1fmw/DMENet_BDCS.zip?dl=1",
            "https://onedrive.live.com/download?resid=94530B7E5F49D254%21485"
            "&authkey=!AJjiWABi0E5Or_M",
        ),
        fname="DMENet_BDCS.zip",
        sha256=None,
        size=None,
        output="weights/dmenet/release.npz",
        used_by="dmenet@weights=release",
        local="set methods.params.dmenet.weights to a local DMENet_BDCS.npz",
        member="DMENet_BDCS.npz",
        check="defocus.methods.dmenet.release:read_npz",
    ),
    "vgg19": Release(
        name="vgg19",
        title="Caffe VGG19 of the DMENet release",
        source=(
            f"{_DMENET_REPO}: README.md line 76 (step 6, 'Download pretrained VGG19 weights': "
            "OneDrive and Dropbox links; unzips to pretrained/vgg19.npy); no digest published"
        ),
        urls=(
            "https://www.dropbox.com/s/7ah1jwrmggog4q9/vgg19.zip?dl=1",
            "https://onedrive.live.com/download?resid=94530B7E5F49D254%21489"
            "&authkey=!AC-Vfx3InXfEoZU",
        ),
        fname="vgg19.zip",
        sha256=None,
        size=None,
        output="weights/vgg19/vgg19.npy",
        used_by="dmenet@vgg_weights=release",
        local="set methods.params.dmenet.vgg_weights to a local vgg19.npy",
        member="vgg19.npy",
    ),
    "rtf_conversion": Release(
        name="rtf_conversion",
        title="RTF conversion table of the DMENet release",
        source=(
            f"{_DMENET_REPO}: evaluation/RTF/convertion.mat at commit {_DMENET_COMMIT} "
            "(read by evaluation/RTF/quantitative_RTF.m lines 3 and 33-34: column 2 RTF "
            "blurMap value -> column 1 Gaussian sigma); sha256 of the file at that commit"
        ),
        urls=(f"{_DMENET_REPO}/raw/{_DMENET_COMMIT}/evaluation/RTF/convertion.mat",),
        fname="convertion.mat",
        sha256="05d0021fd9b6af116b17fec5a2bff7f8ce66550f02be23555b42eebf87465d36",
        size=325,
        output="rtf_conversion/convertion.mat",
        used_by="datasets.rtf.conversion: release",
        local=(
            "set datasets.rtf.conversion to a local copy of evaluation/RTF/convertion.mat "
            "of github codeslake/DMENet"
        ),
    ),
}


def get_release(name: str) -> Release:
    """The :class:`Release` registered as ``name``."""
    return lookup(RELEASES, name, "release", UnknownReleaseError)


def _extract_member(archive: Path, release: Release, dest: Path, folder: Path) -> None:
    """Copy the one member named ``release.member`` of ``archive`` to ``dest`` atomically."""
    from defocus.datasets.download import DownloadError
    from defocus.io.atomic import atomic_path

    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        archive.unlink(missing_ok=True)  # an unpinned download: do not let a re-run trust it
        raise DownloadError(
            f"{archive} is not a zip archive ({err}; an HTML error page?). "
            + release.manual_hint(folder)
        ) from err
    with zf:
        members = [m for m in zf.namelist() if Path(m).name == release.member]
        if len(members) != 1:
            raise DownloadError(
                f"{archive}: expected one {release.member} in the zip, found {len(members)} "
                f"(members: {zf.namelist()[:10]})"
            )
        with zf.open(members[0]) as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)


def _run_check(release: Release, dest: Path) -> None:
    module, _, func = release.check.partition(":")
    try:
        getattr(importlib.import_module(module), func)(dest)
    except Exception:
        dest.unlink(missing_ok=True)  # a file of the wrong kind is not left as the output
        raise


def fetch(
    name: str | Release,
    dest: str | os.PathLike,
    entry: Mapping | None = None,
    progress: bool = True,
) -> Path:
    """Download a registered release, verify it and write its file to ``dest`` atomically.

    Parameters
    ----------
    name : str or Release
        Registry name (:data:`RELEASES`) or an entry.
    dest : path-like
        The output file (the workflow passes ``resources/<output>``). The download goes to
        ``dest.parent / "download"``: a plain file is moved from there onto ``dest``, a zip
        stays there (a re-run with a pin does not fetch it again) and its member is extracted.
    entry : mapping, optional
        Config ``releases.<name>``: ``base_url`` (a mirror serving ``<base_url>/<fname>``,
        tried instead of the authors' URLs) and ``sha256: {<fname>: <hex>}`` (its pin).
    progress : bool
        Show a progress bar.

    Raises
    ------
    DownloadError
        Every URL failed, or the checksum does not match (nothing is left behind; the message
        names the file, its URL, where to put it by hand and the local-copy setting), or the
        zip is not one or lacks its member.
    """
    from defocus.datasets.download import DownloadError, fetch_release
    from defocus.datasets.registry import RemoteFile

    release = get_release(name) if isinstance(name, str) else name
    dest = Path(dest)
    folder = dest.parent / "download"
    entry = dict(entry or {})
    urls = release.urls[:1] if entry.get("base_url") else release.urls
    errors: list[str] = []
    got = None
    for url in urls:
        remote = RemoteFile(
            url, release.fname, release.sha256, release.size, unpack=bool(release.member)
        )
        try:
            got = fetch_release(remote, folder, entry, release.name, progress)
            break
        except DownloadError as err:
            errors.append(str(err))
    if got is None:
        raise DownloadError(f"{' | '.join(dict.fromkeys(errors))} {release.manual_hint(folder)}")
    if release.member:
        _extract_member(got, release, dest, folder)
    else:
        os.replace(got, dest)  # same file system: atomic
    if release.check:
        _run_check(release, dest)
    return dest


def list_table() -> str:
    """A plain-text table of the registry: name, file (and member), sha256 status, output
    under ``resources/`` and the method or option that reads it."""
    header = ("name", "file", "sha256", "output", "used by")
    rows = [header]
    for r in RELEASES.values():
        fname = f"{r.fname} -> {r.member}" if r.member else r.fname
        pinned = f"pinned {r.sha256[:12]}" if r.sha256 else "none (pin the logged one)"
        rows.append((r.name, fname, pinned, r.output, r.used_by))
    return text_table(rows)
