"""The DHDE authors' trained Caffe model: where it is, its digest, and its conversion into
:class:`~defocus.methods.dhde.net.DHDENet` weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from defocus.methods.dhde.net import DHDENet

#: the authors' trained model: DHDE/DHDE_model.caffemodel of github.com/zzangjinsun/DHDE_CVPR17
#: (branch master, 507,651 bytes; sha256 of the file in that repository)
RELEASE_URL = "https://github.com/zzangjinsun/DHDE_CVPR17/raw/master/DHDE/DHDE_model.caffemodel"
RELEASE_SHA256 = "a5f922d7622ccdd830cd02cfc0e788f3b9d3ceb038a00d7c60716ab1986ac94a"
RELEASE_FNAME = "DHDE_model.caffemodel"
#: Caffe layer -> DHDENet parameter prefix (DHDE_test.prototxt; fc1 has no bias, lr_mult 0)
_CAFFE_LAYERS = {
    "conv1": "cnn.0",
    "conv2": "cnn.3",
    "conv3": "cnn.6",
    "conv4": "cnn.8",
    "fc1": "classifier.0",
    "fc2": "classifier.3",
    "fc3": "classifier.6",
}


def release_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A :class:`DHDENet` (``fB``, multi-scale) state dict from the release's ``.caffemodel``.

    The release feeds MATLAB arrays (rows, cols, channels, N) to Caffe, which reads the first
    MATLAB axis as its width (matcaffe and MATLAB's HDF5 writer both reverse the axis order):
    Caffe's conv kernels run along (image x, image y). They are transposed here to PyTorch's
    (y, x). The 145 classifier inputs are ``[f_D, f_G, f_S, f_C]`` in the release's concat
    order, which is this package's; fc1's bias is frozen at zero in the release (``lr_mult``
    0) and checked to be zero.
    """
    from defocus.io.caffemodel import CaffeModelError, read_caffemodel

    blobs = read_caffemodel(path)
    missing = sorted(set(_CAFFE_LAYERS) - set(blobs))
    if missing:
        raise CaffeModelError(f"{path}: no layer(s) {missing}; not the DHDE release model?")
    ref = DHDENet().state_dict()
    out: dict[str, torch.Tensor] = {}
    for layer, prefix in _CAFFE_LAYERS.items():
        w, *rest = blobs[layer]
        if w.ndim == 4:
            w = w.transpose(0, 1, 3, 2)  # Caffe (out, in, x, y) -> PyTorch (out, in, y, x)
        out[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(w, np.float32))
        if f"{prefix}.bias" in ref:
            out[f"{prefix}.bias"] = torch.from_numpy(np.ascontiguousarray(rest[0], np.float32))
        elif rest and np.abs(rest[0]).max() > 0:
            raise CaffeModelError(f"{path}: {layer} has a non-zero bias; DHDENet has none there")
    for key, value in out.items():
        if tuple(value.shape) != tuple(ref[key].shape):
            raise CaffeModelError(
                f"{path}: {key} has shape {tuple(value.shape)}, DHDENet expects "
                f"{tuple(ref[key].shape)}"
            )
    return out


def fetch_release_weights(dest_dir: str | Path, progress: bool = True) -> Path:
    """Download the release model to ``dest_dir`` (verified sha256; no partial file)."""
    from defocus.datasets.download import DownloadError, download_file
    from defocus.datasets.registry import RemoteFile

    remote = RemoteFile(RELEASE_URL, RELEASE_FNAME, RELEASE_SHA256, 507651, unpack=False)
    try:
        path, _ = download_file(remote, dest_dir, name="dhde weights", progress=progress)
    except DownloadError as err:
        raise DownloadError(
            f"{err} For the DHDE release weights: put {RELEASE_FNAME} (from {RELEASE_URL}) "
            f"in {dest_dir}, or set methods.params.dhde.weights to a local .caffemodel."
        ) from err
    return path
