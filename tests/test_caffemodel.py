"""The DHDE release model: .caffemodel reader, conversion to DHDENet, verified download (the
``dhde`` entry of the release registry).

The real file (507 KB, github zzangjinsun/DHDE_CVPR17) cannot be fetched here, so the tests
write .caffemodel files themselves with a small protobuf encoder (caffe.proto field numbers)
and serve them from 127.0.0.1.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from defocus.io.caffemodel import CaffeModelError, read_caffemodel
from defocus.methods.dhde import DHDE, DHDENet, release_state_dict


# -- a minimal protobuf writer ------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:  # length-delimited (wire type 2)
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _blob(arr: np.ndarray, packed: bool = True, legacy: bool = False) -> bytes:
    arr = np.asarray(arr, np.float32)
    if legacy:  # num, channels, height, width as varints (fields 1-4)
        dims = list(arr.shape) + [1] * (4 - arr.ndim)
        head = b"".join(
            _varint(i << 3) + _varint(d) for i, d in zip((1, 2, 3, 4), dims, strict=True)
        )
    else:
        head = _field(7, _field(1, b"".join(_varint(d) for d in arr.shape)))
    if packed:
        return head + _field(5, arr.astype("<f4").tobytes())
    return head + b"".join(_varint(5 << 3 | 5) + struct.pack("<f", v) for v in arr.ravel())


def _layer(name: str, blobs: list[bytes], v1: bool = False) -> bytes:
    if v1:  # V1LayerParameter in NetParameter.layers (2): name 4, blobs 6
        body = _field(4, name.encode()) + b"".join(_field(6, b) for b in blobs)
        return _field(2, body)
    body = _field(1, name.encode()) + _field(2, b"Convolution")
    return _field(100, body + b"".join(_field(7, b) for b in blobs))


def _release_like(rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """Caffe-layout blobs with the shapes of DHDE_test.prototxt (fc1 bias zero)."""
    shapes = {
        "conv1": ((25, 3, 3, 3), (25,)),
        "conv2": ((50, 25, 3, 3), (50,)),
        "conv3": ((50, 50, 3, 3), (50,)),
        "conv4": ((25, 50, 1, 1), (25,)),
        "fc1": ((300, 145), (300,)),
        "fc2": ((150, 300), (150,)),
        "fc3": ((11, 150), (11,)),
    }
    out = {
        k: [rng.normal(0, 0.1, w).astype(np.float32), rng.normal(0, 0.1, b).astype(np.float32)]
        for k, (w, b) in shapes.items()
    }
    out["fc1"][1] = np.zeros(300, np.float32)
    return out


def _write(path: Path, blobs: dict[str, list[np.ndarray]]) -> Path:
    data = _field(1, b"DHDE")  # NetParameter.name, skipped by the reader
    for k, v in blobs.items():
        data += _layer(k, [_blob(b) for b in v])
    data += _layer("relu1", [])  # a layer without weights is not reported
    path.write_bytes(data)
    return path


# -- reader -------------------------------------------------------------------------------
def test_reader_round_trips_packed_unpacked_legacy_and_v1(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3, 2, 2)).astype(np.float32)
    b = rng.normal(size=(5,)).astype(np.float32)
    c = rng.normal(size=(2, 3)).astype(np.float32)
    data = _layer("packed", [_blob(a), _blob(b)])
    data += _layer("unpacked", [_blob(c, packed=False)])
    data += _layer("legacy_v1", [_blob(a, legacy=True)], v1=True)
    (tmp_path / "m.caffemodel").write_bytes(data)
    got = read_caffemodel(tmp_path / "m.caffemodel")
    assert list(got) == ["packed", "unpacked", "legacy_v1"]
    np.testing.assert_array_equal(got["packed"][0], a)
    np.testing.assert_array_equal(got["packed"][1], b)
    np.testing.assert_array_equal(got["unpacked"][0], c)
    np.testing.assert_array_equal(got["legacy_v1"][0], a)


@pytest.mark.parametrize("content", [b"", b"\x0a\xff\xff", b"not a model at all"])
def test_reader_rejects_broken_files(tmp_path, content):
    (tmp_path / "bad.caffemodel").write_bytes(content)
    with pytest.raises(CaffeModelError, match="bad.caffemodel"):
        read_caffemodel(tmp_path / "bad.caffemodel")


# -- conversion ---------------------------------------------------------------------------
def test_release_conversion_transposes_kernels_and_matches_caffe_semantics(tmp_path):
    rng = np.random.default_rng(1)
    blobs = _release_like(rng)
    sd = release_state_dict(_write(tmp_path / "m.caffemodel", blobs))
    np.testing.assert_array_equal(
        sd["cnn.0.weight"].numpy(), blobs["conv1"][0].transpose(0, 1, 3, 2)
    )
    np.testing.assert_array_equal(sd["classifier.0.weight"].numpy(), blobs["fc1"][0])
    np.testing.assert_array_equal(sd["classifier.6.bias"].numpy(), blobs["fc3"][1])
    # Caffe ran the kernels on the MATLAB-transposed patch: the converted net on a patch
    # equals a net with Caffe's raw kernels on the same patch transposed
    net = DHDENet().eval()
    net.load_state_dict(sd)
    raw = DHDENet().eval()
    raw.load_state_dict(
        {
            **sd,
            **{
                k: torch.from_numpy(blobs[c][0])
                for c, k in (
                    ("conv1", "cnn.0.weight"),
                    ("conv2", "cnn.3.weight"),
                    ("conv3", "cnn.6.weight"),
                )
            },
        }
    )
    x = torch.from_numpy(rng.integers(0, 256, (6, 3, 27, 27)).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(
            net.deep_feature(x).numpy(),
            raw.deep_feature(x.transpose(2, 3)).numpy(),
            rtol=1e-5,
            atol=1e-4,
        )


def test_release_conversion_refuses_other_models(tmp_path):
    rng = np.random.default_rng(2)
    blobs = _release_like(rng)
    del blobs["fc3"]
    with pytest.raises(CaffeModelError, match="fc3"):
        release_state_dict(_write(tmp_path / "a.caffemodel", blobs))
    blobs = _release_like(rng)
    blobs["fc1"][1] = np.ones(300, np.float32)
    with pytest.raises(CaffeModelError, match="non-zero bias"):
        release_state_dict(_write(tmp_path / "b.caffemodel", blobs))
    blobs = _release_like(rng)
    blobs["fc2"][0] = blobs["fc2"][0][:, :100]
    with pytest.raises(CaffeModelError, match="shape"):
        release_state_dict(_write(tmp_path / "c.caffemodel", blobs))


def test_weights_replace_training_and_load_directly(tmp_path):
    rng = np.random.default_rng(3)
    model = _write(tmp_path / "m.caffemodel", _release_like(rng))
    m = DHDE(weights="release")
    ckpt = m.fit({"weights": [model]}, {"seed": 0, "device": "cpu"}, tmp_path / "work")
    direct = DHDE()
    direct.load(model)  # a .caffemodel is a checkpoint too
    via = DHDE()
    via.load(ckpt)
    feats = rng.random((50, 120)).astype(np.float32)
    rgb = rng.integers(0, 256, (50, 27, 27, 3), dtype=np.uint8)
    np.testing.assert_array_equal(direct.classify(feats, rgb), via.classify(feats, rgb))
    with pytest.raises(ValueError, match="release model is fB"):
        DHDE(weights="release", features="fH").fit({"weights": [model]}, {}, tmp_path / "w2")
    with pytest.raises(ValueError, match="expected data"):
        DHDE(weights="release").fit({"patches": []}, {}, tmp_path / "w3")


# -- download -----------------------------------------------------------------------------
def test_release_download_verifies_the_sha256(tmp_path, serve_dir):
    import dataclasses
    import hashlib

    from defocus.datasets.download import DownloadError
    from defocus.releases import fetch, get_release

    entry = get_release("dhde")
    srv = tmp_path / "srv"
    srv.mkdir()
    good = _write(srv / entry.fname, _release_like(np.random.default_rng(4)))
    base = serve_dir(srv)
    served = dataclasses.replace(entry, urls=(f"{base}/{entry.fname}",))
    # the pinned sha256 is the real file's: this one is refused, and nothing is left behind
    with pytest.raises(DownloadError, match="checksum mismatch.*DHDE release weights"):
        fetch(served, tmp_path / "w1" / "release.caffemodel", progress=False)
    assert not any((tmp_path / "w1").rglob("*.*"))
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    got = fetch(
        dataclasses.replace(served, sha256=digest), tmp_path / "w2" / "m.caffemodel", None, False
    )
    assert got == tmp_path / "w2" / "m.caffemodel" and got.read_bytes() == good.read_bytes()
    assert release_state_dict(got).keys() == DHDENet().state_dict().keys()
    missing = dataclasses.replace(served, urls=(f"{base}/missing.caffemodel",))
    with pytest.raises(DownloadError, match="download failed.*methods.params.dhde.weights"):
        fetch(missing, tmp_path / "w3" / "release.caffemodel", progress=False)
