"""The registry of authors' released files (defocus.releases): every entry complete and
consistent with the config schema and the workflow's paths, and its one fetch function
against a local HTTP server (127.0.0.1 only): a plain file, a zip member, a mirror's pin,
checksum mismatches and bad downloads leaving nothing behind."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from _archives import zip_bytes

from defocus import plan, releases
from defocus.datasets.download import DownloadError
from defocus.releases import RELEASES, Release, fetch, get_release

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# -- the registry ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(RELEASES))
def test_every_entry_is_complete(name):
    r = get_release(name)
    assert r.name == name
    assert r.title and r.source and r.used_by and r.local
    assert r.urls and all(u.startswith("https://") for u in r.urls)
    assert r.fname and "/" not in r.fname
    assert r.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", r.sha256)
    assert r.size is None or r.size > 0
    # a file committed to the authors' repository has a fixed digest: it is pinned
    if any("github.com/" in u and "/raw/" in u for u in r.urls):
        assert r.sha256 and r.size, name
    # a zip names the one member it gives; a plain file keeps its kind
    if r.member:
        assert r.fname.endswith(".zip") and Path(r.output).suffix == Path(r.member).suffix
    else:
        assert Path(r.output).suffix == Path(r.fname).suffix
    assert not Path(r.output).is_absolute() and ".." not in Path(r.output).parts
    assert r.path("res") == Path("res") / r.output
    if r.check:  # a reader of the output, importable
        module, _, func = r.check.partition(":")
        assert callable(getattr(importlib.import_module(module), func))


def test_the_authors_fixed_files_are_pinned():
    """DHDE's caffemodel and DMENet's RTF table are files in the authors' repositories;
    DMENet's weights and VGG19 are cloud-drive zips without a published digest."""
    assert get_release("dhde").sha256 == (
        "a5f922d7622ccdd830cd02cfc0e788f3b9d3ceb038a00d7c60716ab1986ac94a"
    )
    assert get_release("dhde").size == 507651
    assert get_release("rtf_conversion").sha256 == (
        "05d0021fd9b6af116b17fec5a2bff7f8ce66550f02be23555b42eebf87465d36"
    )
    assert get_release("dmenet").sha256 is None and get_release("vgg19").sha256 is None
    assert get_release("dmenet").member == "DMENet_BDCS.npz"
    assert get_release("vgg19").member == "vgg19.npy"


def test_outputs_are_the_workflows_paths():
    """plan.weights_file names resources/weights/<method>/release.<ext> for weights=release;
    the registry writes exactly there (and the RTF table where common.smk reads it)."""
    for method, ext in plan.RELEASE_EXT.items():
        assert get_release(method).output == f"weights/{method}/release.{ext}"
    assert get_release("vgg19").output == "weights/vgg19/vgg19.npy"
    assert get_release("rtf_conversion").output == "rtf_conversion/convertion.mat"
    outputs = [r.output for r in RELEASES.values()]
    assert len(set(outputs)) == len(outputs)


def test_used_by_names_a_real_method_parameter():
    from defocus.methods.registry import method_class
    from defocus.methods.spec import parse_name

    for r in RELEASES.values():
        if "@" in r.used_by:
            base, overrides = parse_name(r.used_by)
            assert overrides and set(overrides) <= set(method_class(base).defaults), r.name
            assert f"methods.params.{base}." in r.local, r.name


def test_config_schema_has_one_releases_entry_per_registry_entry():
    schema = yaml.safe_load((ROOT / "src" / "defocus" / "schema.yaml").read_text())
    props = schema["properties"]["releases"]["properties"]
    assert set(props) == set(RELEASES)
    for name, spec in props.items():
        assert set(spec["properties"]) == {"base_url", "sha256"}, name
        assert get_release(name).fname in spec["properties"]["sha256"]["description"], name


def test_unknown_name_and_table():
    with pytest.raises(releases.UnknownReleaseError, match="known: dhde, dmenet"):
        get_release("nope")
    table = releases.list_table()
    for r in RELEASES.values():
        assert r.name in table and r.output in table
    assert "pinned a5f922d7622c" in table and "DMENet_BDCS.zip -> DMENet_BDCS.npz" in table


# -- fetch ----------------------------------------------------------------------------------
def _entry(tmp_path, **kw) -> Release:
    base = dict(
        name="demo",
        title="demo release",
        source="a test",
        urls=(f"{UNREACHABLE}/authors/model.bin",),
        fname="model.bin",
        sha256=None,
        size=None,
        output="weights/demo/release.bin",
        used_by="nothing",
        local="set methods.params.demo.weights to a local model.bin",
    )
    return Release(**{**base, **kw})


def test_fetch_a_plain_file_from_the_mirror_with_its_pin(tmp_path, serve_dir):
    srv = tmp_path / "srv"
    srv.mkdir()
    payload = b"released weights"
    (srv / "model.bin").write_bytes(payload)
    rel = _entry(tmp_path, sha256=_sha(payload))
    dest = tmp_path / "res" / rel.output
    entry = {"base_url": serve_dir(srv)}
    assert fetch(rel, dest, entry, progress=False) == dest
    assert dest.read_bytes() == payload
    assert _leftovers(dest.parent / "download") == []  # the download was moved onto dest
    # a mirror serving another build, pinned in config
    other = b"another build of the release"
    (srv / "model.bin").write_bytes(other)
    dest2 = tmp_path / "res2" / rel.output
    fetch(rel, dest2, {**entry, "sha256": {"model.bin": _sha(other)}}, progress=False)
    assert dest2.read_bytes() == other


def test_checksum_mismatch_is_clear_and_leaves_nothing(tmp_path, serve_dir):
    srv = tmp_path / "srv"
    srv.mkdir()
    (srv / "model.bin").write_bytes(b"a tampered file")
    rel = _entry(tmp_path, sha256="0" * 64)
    dest = tmp_path / "res" / rel.output
    with pytest.raises(DownloadError) as e:
        fetch(rel, dest, {"base_url": serve_dir(srv)}, progress=False)
    msg = str(e.value)
    assert "checksum mismatch" in msg and "release demo, file model.bin" in msg
    # where to put it by hand: the file, the authors' URL, the folder, the local setting
    assert f"put model.bin (from {rel.urls[0]}) in {dest.parent / 'download'}" in msg
    assert "methods.params.demo.weights" in msg and "datasets." not in msg
    assert not dest.exists() and _leftovers(tmp_path / "res") == []


def test_every_authors_url_is_tried_and_named(tmp_path, serve_dir):
    srv = tmp_path / "srv"
    (srv / "second").mkdir(parents=True)
    (srv / "second" / "model.bin").write_bytes(b"from the second host")
    base = serve_dir(srv)
    rel = _entry(tmp_path, urls=(f"{UNREACHABLE}/first/model.bin", f"{base}/second/model.bin"))
    dest = tmp_path / "res" / rel.output
    assert fetch(rel, dest, progress=False).read_bytes() == b"from the second host"
    gone = dataclasses.replace(rel, urls=(rel.urls[0], f"{base}/third/model.bin"))
    with pytest.raises(DownloadError) as e:
        fetch(gone, tmp_path / "res2" / rel.output, progress=False)
    msg = str(e.value)
    assert "first/model.bin" in msg and "third/model.bin" in msg and " | " in msg
    assert "For the demo release: put model.bin" in msg
    # a mirror replaces the authors' URLs: only <base_url>/<fname> is tried
    with pytest.raises(DownloadError) as e:
        fetch(rel, tmp_path / "res3" / rel.output, {"base_url": f"{base}/none"}, progress=False)
    assert str(e.value).count("download failed") == 1 and "second/model.bin" not in str(e.value)


def test_fetch_a_zip_member(tmp_path, serve_dir):
    srv = tmp_path / "srv"
    srv.mkdir()
    zipped = zip_bytes({"pack/deep/weights.npy": b"npy bytes", "pack/readme.txt": b"hello"})
    (srv / "pack.zip").write_bytes(zipped)
    rel = _entry(
        tmp_path, fname="pack.zip", member="weights.npy", output="weights/pack/weights.npy",
        sha256=_sha(zipped),
    )  # fmt: skip
    dest = tmp_path / "res" / rel.output
    entry = {"base_url": serve_dir(srv)}
    assert fetch(rel, dest, entry, progress=False).read_bytes() == b"npy bytes"
    # the zip stays in the download folder: a re-run with the pin does not fetch it again
    assert (dest.parent / "download" / "pack.zip").read_bytes() == zipped
    dest.unlink()
    (srv / "pack.zip").unlink()
    assert fetch(rel, dest, entry, progress=False).read_bytes() == b"npy bytes"
    # a zip without the member, or with two
    two = {"a/weights.npy": b"1", "b/weights.npy": b"2"}
    for members, found in (({"a.txt": b"x"}, 0), (two, 2)):
        (srv / "pack.zip").write_bytes(zip_bytes(members))
        d = tmp_path / f"res{found}" / rel.output
        with pytest.raises(
            DownloadError, match=f"expected one weights.npy in the zip, found {found}"
        ):
            fetch(dataclasses.replace(rel, sha256=None), d, entry, progress=False)
        assert not d.exists()


def test_an_html_page_instead_of_thezip_bytes(tmp_path, serve_dir):
    """A cloud drive's error page (no pin to refuse it): a clear error, and the page is not
    kept for a re-run to trust."""
    srv = tmp_path / "srv"
    srv.mkdir()
    (srv / "pack.zip").write_bytes(b"<html>quota exceeded</html>")
    rel = _entry(tmp_path, fname="pack.zip", member="weights.npy", output="w/weights.npy")
    dest = tmp_path / "res" / rel.output
    with pytest.raises(DownloadError, match="not a zip archive.*For the demo release: put"):
        fetch(rel, dest, {"base_url": serve_dir(srv)}, progress=False)
    assert _leftovers(tmp_path / "res") == []


def test_dmenet_checkpoint_is_read_after_the_download(tmp_path, serve_dir):
    """The ``dmenet`` entry's check: a zip whose DMENet_BDCS.npz is no npz is refused now
    (not at conversion), and no output is left."""
    from defocus.methods.dmenet.release import ReleaseCheckpointError

    srv = tmp_path / "srv"
    srv.mkdir()
    (srv / "DMENet_BDCS.zip").write_bytes(zip_bytes({"ckpt/DMENet_BDCS.npz": b"not an npz"}))
    dest = tmp_path / "res" / get_release("dmenet").output
    with pytest.raises(ReleaseCheckpointError, match="not a readable .npz"):
        fetch("dmenet", dest, {"base_url": serve_dir(srv)}, progress=False)
    assert not dest.exists()


# -- the rules' scripts ---------------------------------------------------------------------
def _run_script(script: str, tmp_path: Path, output: dict, params: dict) -> None:
    log = tmp_path / "logs" / f"{Path(script).stem}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    smk = SimpleNamespace(
        log=[str(log)], output=SimpleNamespace(**output), params=SimpleNamespace(**params)
    )
    runpy.run_path(str(ROOT / "workflow" / "scripts" / script), {"snakemake": smk})


def test_fetch_release_script_fetches_any_entry(tmp_path, serve_dir):
    srv = tmp_path / "srv"
    srv.mkdir()
    zipped = zip_bytes({"vgg19/vgg19.npy": np.arange(3).tobytes()})
    (srv / "vgg19.zip").write_bytes(zipped)
    out = tmp_path / get_release("vgg19").path("resources")
    entry = {"base_url": serve_dir(srv), "sha256": {"vgg19.zip": _sha(zipped)}}
    params = {"release": "vgg19", "entry": entry}
    _run_script("fetch_release.py", tmp_path, {"file": str(out)}, params)
    assert out.read_bytes() == np.arange(3).tobytes()
    (srv / "DHDE_model.caffemodel").write_bytes(b"not the authors' model")
    out = tmp_path / get_release("dhde").path("resources")
    with pytest.raises(DownloadError, match="checksum mismatch.*DHDE release weights"):
        params = {"release": "dhde", "entry": {"base_url": entry["base_url"]}}
        _run_script("fetch_release.py", tmp_path, {"file": str(out)}, params)
    assert not out.exists()


def test_fetch_rtf_conversion_script(tmp_path, serve_dir):
    srv = tmp_path / "srv"
    srv.mkdir()
    (srv / "convertion.mat").write_bytes(b"a mirror's table")
    out = tmp_path / get_release("rtf_conversion").path("resources")
    entry = {"base_url": serve_dir(srv), "sha256": {"convertion.mat": _sha(b"a mirror's table")}}
    params = {"release": "rtf_conversion", "entry": entry}
    _run_script("fetch_release.py", tmp_path, {"file": str(out)}, params)
    assert out.read_bytes() == b"a mirror's table"


def test_cli_lists_the_registry(capsys):
    from defocus.cli import main

    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in RELEASES) and "dmenet@vgg_weights=release" in out
    assert main(["weights", "list"]) == 0 and capsys.readouterr().out == out
    assert main(["weights", "fetch", "nope"]) == 2
    assert "unknown release 'nope'" in capsys.readouterr().err
