"""Downloads against a local HTTP server (127.0.0.1 only) serving archives laid out like the
real CUHK ones (BlurDatasetImage.zip -> image/, BlurDatasetGT.zip -> gt/; DATASETS.md s.1)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

import cv2
import numpy as np
import pytest
from _archives import zip_bytes

import defocus.datasets.download as dl
from defocus.datasets import registry
from defocus.datasets.download import (
    DatasetRootError,
    DownloadError,
    ensure_dataset,
    fetch,
    read_sums,
)
from defocus.datasets.readers import build_manifest
from defocus.io.manifest import read_manifest


def _png(arr: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, arr)
    assert ok
    return buf.tobytes()


@pytest.fixture()
def server(tmp_path, serve_dir):
    """Serve ``tmp_path/srv`` holding a two-image CUHK-like pair of archives."""
    srv = tmp_path / "srv"
    srv.mkdir()
    img = np.full((8, 10, 3), 120, np.uint8)
    mask = np.zeros((8, 10), np.uint8)
    mask[:, 3:] = 255  # white = blurred (CUHK), mostly blurred
    images = {
        "image/out_of_focus0001.jpg": _png(img, ".jpg"),
        "image/out_of_focus0026.JPG": _png(img, ".jpg"),  # upper-case, in the test split
    }
    gts = {"gt/out_of_focus0001.png": _png(mask), "gt/out_of_focus0026.png": _png(mask)}
    (srv / "BlurDatasetImage.zip").write_bytes(zip_bytes(images))
    (srv / "BlurDatasetGT.zip").write_bytes(zip_bytes(gts))
    (srv / "notazip.zip").write_bytes(b"<html>quota exceeded</html>")
    return serve_dir(srv), srv


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spec(base: str, srv, sha: bool = True, names=("BlurDatasetImage.zip", "BlurDatasetGT.zip")):
    files = tuple(
        registry.RemoteFile(f"{base}/{n}", n, sha256=_sha(srv / n) if sha else None) for n in names
    )
    return replace(registry.get_spec("cuhk"), files=files)


def _files_under(path):
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_fetch_success_with_sha256_then_manifest(server, tmp_path):
    base, srv = server
    dest = tmp_path / "resources"
    root = fetch("cuhk", dest, progress=False, spec=_spec(base, srv))
    assert root == dest / "cuhk"
    assert (root / "image" / "out_of_focus0026.JPG").is_file()
    assert (root / "gt" / "out_of_focus0001.png").is_file()
    assert read_sums(root)["BlurDatasetGT.zip"] == _sha(srv / "BlurDatasetGT.zip")
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temp dirs left
    # end to end: the unpacked layout is what the CUHK reader expects
    df = read_manifest(build_manifest("cuhk", root, tmp_path / "data"))
    assert dict(zip(df["id"], df["split"], strict=True)) == {
        "out_of_focus0001": "train",
        "out_of_focus0026": "test",
    }


def test_second_fetch_touches_no_network(server, tmp_path, monkeypatch):
    base, srv = server
    spec = _spec(base, srv)
    fetch("cuhk", tmp_path, progress=False, spec=spec)

    def boom(*a, **k):
        raise AssertionError("network touched")

    monkeypatch.setattr("pooch.retrieve", boom)
    assert fetch("cuhk", tmp_path, progress=False, spec=spec) == tmp_path / "cuhk"


def test_unknown_sha_is_computed_logged_and_recorded(server, tmp_path, caplog):
    base, srv = server
    with caplog.at_level(logging.WARNING, logger="defocus.datasets.download"):
        root = fetch("cuhk", tmp_path, progress=False, spec=_spec(base, srv, sha=False))
    expected = _sha(srv / "BlurDatasetImage.zip")
    assert read_sums(root)["BlurDatasetImage.zip"] == expected
    assert expected in caplog.text and "datasets.cuhk.sha256.BlurDatasetImage.zip" in caplog.text


def test_wrong_sha256_raises_and_leaves_no_file(server, tmp_path):
    base, srv = server
    spec = _spec(base, srv)
    bad = replace(spec, files=(replace(spec.files[0], sha256="0" * 64), spec.files[1]))
    with pytest.raises(DownloadError) as exc:
        fetch("cuhk", tmp_path, progress=False, spec=bad)
    msg = str(exc.value)
    assert "checksum mismatch" in msg and spec.files[0].url in msg
    assert "datasets.cuhk.root" in msg
    assert _files_under(tmp_path / "archives") == []
    assert not (tmp_path / "cuhk").exists()


def test_sha256_override_from_config_is_checked(server, tmp_path):
    base, srv = server
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(
            "cuhk",
            tmp_path,
            sha256_overrides={"BlurDatasetGT.zip": "f" * 64},
            progress=False,
            spec=_spec(base, srv, sha=False),
        )
    with pytest.raises(DownloadError, match="unknown file"):
        fetch("cuhk", tmp_path, sha256_overrides={"x.zip": "f" * 64}, spec=_spec(base, srv))


def test_missing_file_404(server, tmp_path):
    base, srv = server
    spec = _spec(base, srv, sha=False, names=("BlurDatasetImage.zip", "Missing.zip"))
    with pytest.raises(DownloadError) as exc:
        fetch("cuhk", tmp_path, progress=False, spec=spec)
    assert f"{base}/Missing.zip" in str(exc.value)
    assert "404" in str(exc.value) and "datasets.cuhk.root" in str(exc.value)
    assert not (tmp_path / "cuhk").exists()
    assert [p.name for p in _files_under(tmp_path / "archives")] == ["BlurDatasetImage.zip"]


def test_connection_refused(tmp_path):
    spec = replace(
        registry.get_spec("cuhk"),
        files=(registry.RemoteFile("http://127.0.0.1:9/x.zip", "x.zip"),),
    )
    with pytest.raises(DownloadError, match=r"download failed for http://127\.0\.0\.1:9/x\.zip"):
        fetch("cuhk", tmp_path, progress=False, spec=spec)
    assert _files_under(tmp_path) == []


def test_html_instead_of_archive(server, tmp_path):
    base, srv = server
    spec = _spec(base, srv, sha=False, names=("notazip.zip",))
    with pytest.raises(DownloadError, match="not a zip/tar archive"):
        fetch("cuhk", tmp_path, progress=False, spec=spec)
    assert _files_under(tmp_path / "archives") == []
    assert not (tmp_path / "cuhk").exists()


def test_registry_urls_are_rebased_and_monkeypatched_spec_is_used(server, tmp_path, monkeypatch):
    base, srv = server
    # base_url (config datasets.<name>.base_url) rebases the real registry spec
    root = ensure_dataset("cuhk", {"base_url": base}, tmp_path / "a", progress=False)
    assert (root / "gt" / "out_of_focus0026.png").is_file()
    # a monkeypatched registry entry is what fetch uses
    monkeypatch.setitem(registry.REGISTRY, "cuhk", _spec(base, srv))
    root = ensure_dataset("cuhk", {}, tmp_path / "b", progress=False)
    assert read_sums(root)["BlurDatasetImage.zip"] == _sha(srv / "BlurDatasetImage.zip")


def test_root_override_touches_no_network(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("network touched")

    monkeypatch.setattr("pooch.retrieve", boom)
    monkeypatch.setattr(dl, "fetch", boom)
    local = tmp_path / "my_cuhk"
    local.mkdir()
    assert ensure_dataset("cuhk", {"root": str(local)}, tmp_path / "res") == local
    with pytest.raises(DatasetRootError, match="datasets.cuhk.root"):
        ensure_dataset("cuhk", {"root": str(tmp_path / "absent")}, tmp_path / "res")


def test_manual_dataset_needs_root(tmp_path):
    with pytest.raises(DownloadError, match="datasets.ilsvrc.root"):
        ensure_dataset("ilsvrc", None, tmp_path)


def test_list_table_and_registry():
    table = registry.list_table()
    for name in ("cuhk", "dut", "rtf", "sintel", "synthia", "middlebury2014", "ilsvrc"):
        assert name in table
    mb = registry.get_spec("middlebury2014")
    assert len(mb.files) == 23 and mb.checksum_status == "partial, unverified"
    assert mb.files[0].url.endswith("scenes2014/zip/Adirondack-perfect.zip")
    with pytest.raises(registry.UnknownDatasetError, match="known: cuhk"):
        registry.get_spec("nope")


def test_fetch_release_uses_the_mirror_and_its_pin(tmp_path, serve_dir, caplog):
    srv = tmp_path / "mirror"
    srv.mkdir()
    payload = b"weights of a released model"
    (srv / "model.bin").write_bytes(payload)
    good = hashlib.sha256(payload).hexdigest()
    # the registry's own URL is unreachable and its pinned digest is another file's
    remote = registry.RemoteFile("http://127.0.0.1:9/x/model.bin", "model.bin", "0" * 64)
    entry = {"base_url": serve_dir(srv), "sha256": {"model.bin": good}}
    got = dl.fetch_release(remote, tmp_path / "a", entry, "demo", progress=False)
    assert got.read_bytes() == payload
    # without the pin the release's own digest is checked: refused, nothing left behind
    with pytest.raises(DownloadError, match="checksum mismatch") as e:
        dl.fetch_release(remote, tmp_path / "b", {"base_url": entry["base_url"]}, "demo", False)
    assert list((tmp_path / "b").iterdir()) == []
    # a release is not a dataset: no datasets.<name>.root hint (the caller names its own)
    assert "(release demo, file model.bin)" in str(e.value) and "datasets." not in str(e.value)
    # no pin anywhere: the digest to pin is logged under the releases section
    unpinned = registry.RemoteFile("http://127.0.0.1:9/x/model.bin", "model.bin")
    with caplog.at_level(logging.WARNING, logger="defocus.datasets.download"):
        dl.fetch_release(unpinned, tmp_path / "d", {"base_url": entry["base_url"]}, "demo", False)
    assert "releases.demo.sha256.model.bin" in caplog.text and good in caplog.text
    with pytest.raises(DownloadError, match=r"releases\.demo\.sha256 names unknown file"):
        dl.fetch_release(remote, tmp_path / "c", {"sha256": {"other.bin": good}}, "demo", False)


def test_a_users_folder_of_the_dataset_name_is_never_replaced(server, tmp_path):
    """`datasets fetch --dest` into a folder that already holds the user's own `cuhk/` (no
    SHA256SUMS: no download made it) stops before downloading and deletes nothing."""
    base, srv = server
    mine = tmp_path / "cuhk"
    (mine / "image").mkdir(parents=True)
    (mine / "image" / "my_photo.jpg").write_bytes(b"mine")
    (mine / "notes.txt").write_text("my annotations")
    before = {p: p.read_bytes() for p in _files_under(mine)}
    with pytest.raises(DownloadError, match="not made by a download.*datasets.cuhk.root"):
        fetch("cuhk", tmp_path, progress=False, spec=_spec(base, srv))
    assert {p: p.read_bytes() for p in _files_under(mine)} == before
    assert not (tmp_path / "archives").exists()  # stopped before downloading
    # a file of that name is refused the same way
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "cuhk").write_text("a file")
    with pytest.raises(DownloadError, match="refusing to replace"):
        fetch("cuhk", tmp_path / "other", progress=False, spec=_spec(base, srv))
    assert (tmp_path / "other" / "cuhk").read_text() == "a file"
    # an empty folder, or one a download made, is (re)filled
    mine_empty = tmp_path / "empty"
    (mine_empty / "cuhk").mkdir(parents=True)
    root = fetch("cuhk", mine_empty, progress=False, spec=_spec(base, srv))
    assert (root / "gt" / "out_of_focus0001.png").is_file()
