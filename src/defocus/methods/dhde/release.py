"""The DHDE authors' trained Caffe model converted into :class:`~defocus.methods.dhde.net.DHDENet`
weights. Where the model is published, its digest and its download: the ``dhde`` entry of
:mod:`defocus.releases`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from defocus.methods.dhde.net import DHDENet

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
