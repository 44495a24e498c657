"""Fast f_C at inference: the first convolution and pooling shared over the whole image
(27x27 patches) or computed on a compact 19x19 input (15x15 patches); equal to the per-patch
forward of :class:`~defocus.methods.dhde.net.DHDENet` (tested)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from defocus.features.handcrafted import PATCH_SIZE
from defocus.features.patches import LARGE
from defocus.methods.dhde.net import CNN_CHUNK, DEEP_DIM


def _relu_pool3(x: torch.Tensor) -> torch.Tensor:
    """``ReLU`` then ``MaxPool2d(3, 3, ceil_mode=True)`` of a channels-last (N, C, H, W) tensor.

    Bit-identical to the two layers (max commutes with the monotone ReLU, so it runs on the
    pooled map): two strided elementwise maxima (rows, then columns) instead of PyTorch's
    channels-last ceil-mode pooling kernel, which is slow on one core.
    """
    y = x.permute(0, 2, 3, 1)  # (N, H, W, C), contiguous for a channels-last x
    n, h, w, c = y.shape
    ho, wo = -(-h // 3), -(-w // 3)
    hf, wf = 3 * (h // 3), 3 * (w // 3)

    def pool(t: torch.Tensor, axis: int, full: int, size: int, out_len: int) -> torch.Tensor:
        shape = list(t.shape)
        shape[axis] = out_len
        out = t.new_empty(shape)
        sl = [slice(None)] * 4

        def at(sel):
            sl2 = list(sl)
            sl2[axis] = sel
            return tuple(sl2)

        torch.maximum(
            t[at(slice(0, full, 3))], t[at(slice(1, full, 3))], out=out[at(slice(0, full // 3))]
        )
        torch.maximum(
            out[at(slice(0, full // 3))], t[at(slice(2, full, 3))], out=out[at(slice(0, full // 3))]
        )
        if full < size:  # ceil mode: a last, partial window
            out[at(slice(full // 3, out_len))] = t[at(slice(full, size))].amax(axis, keepdim=True)
        return out

    out = pool(pool(y, 1, hf, h, ho), 2, wf, w, wo)
    return out.clamp_min_(0).permute(0, 3, 1, 2)


def _cnn_forward(cnn: nn.Sequential, rgb: torch.Tensor) -> torch.Tensor:
    """``cnn(rgb.float())`` with the first ReLU + max pool fused (:func:`_relu_pool3`)."""
    h = cnn[0](rgb.float())
    h = h.contiguous(memory_format=torch.channels_last)
    return cnn[3:](_relu_pool3(h))


def _max3(t: torch.Tensor, axis: int, starts: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """Elementwise max of ``t`` shifted by 0, 1, 2 along ``axis``, for ``starts`` positions."""
    res = torch.maximum(t.narrow(axis, 0, starts), t.narrow(axis, 1, starts), out=out)
    return torch.maximum(res, t.narrow(axis, 2, starts), out=res)


def _small_pooled(conv1: nn.Conv2d, rgb19: torch.Tensor) -> torch.Tensor:
    """Pre-ReLU 9x9 max pool of conv1 for small patches: (N, 9, 9, C) channels-last.

    The 27x27 input of a small patch is its 15x15 centre replicate-padded by 6 (release), so
    every conv1 output whose 3x3 window lies beyond offset +-7 sees only copies of the border
    row/column: the 25x25 conv map is the 17x17 conv map of the centre padded by 2 (offsets
    -8..8), edge-replicated. Pool window j of the 25x25 map covers offsets 3j-12..3j-10,
    i.e. the compact indices {0}, {0, 1}, {3j-4, .., 3j-2} (j = 2..6), {16}, {16}. Same
    values as the 27x27 forward (2.2x fewer conv1 multiply-adds, 2.2x less memory to pool).
    """
    c = conv1(rgb19.float()).permute(0, 2, 3, 1)  # (N, 17, 17, C)

    def pool(t: torch.Tensor, axis: int) -> torch.Tensor:
        mid = _max3(t.narrow(axis, 2, 15), axis, 13)[(slice(None),) * axis + (slice(0, 13, 3),)]
        first = t.narrow(axis, 0, 1)
        last = t.narrow(axis, 16, 1)
        return torch.cat(
            [first, torch.maximum(first, t.narrow(axis, 1, 1)), mid, last, last], dim=axis
        )

    return pool(pool(c, 1), 2)


def _large_maps(conv1: nn.Conv2d, image: torch.Tensor) -> torch.Tensor:
    """Dense conv1 of the whole image and its running maxima, stacked for one gather.

    ``image``: (H, W, 3) uint8, replicate-padded by 13 as :func:`cut_patches` pads, so the
    25x25 conv map of the 27x27 patch centred at (r, c) is the window of the dense map ``d``
    starting at (r, c). Returns (4, H + 24, W + 24, C): ``d`` and its maxima over 3 rows x 1
    column, 1 x 3 and 3 x 3 (anchored at the top-left; the last 2 rows / columns of a
    running maximum are never read).
    """
    padded = torch.nn.functional.pad(
        image.permute(2, 0, 1)[None].float(), (13, 13, 13, 13), mode="replicate"
    )
    padded = padded.contiguous(memory_format=torch.channels_last)
    d = conv1(padded)[0].permute(1, 2, 0)  # (H + 24, W + 24, C)
    h, w = d.shape[:2]
    maps = d.new_empty((4, h, w, d.shape[2]))
    maps[0] = d
    _max3(maps[0], 0, h - 2, out=maps[1, : h - 2])
    _max3(maps[0], 1, w - 2, out=maps[2, :, : w - 2])
    _max3(maps[1, : h - 2], 1, w - 2, out=maps[3, : h - 2, : w - 2])
    return maps


def _pool_index(h: int, w: int, device: torch.device) -> torch.Tensor:
    """Per pooled cell (9x9) of a large patch: the flat offset into :func:`_large_maps` for a
    patch at (0, 0). Ceil-mode 3/3 pooling of a 25x25 map: 3-wide windows at 0, 3, .., 21 and
    the single last row / column at 24."""
    start = torch.tensor([*range(0, 24, 3), 24], device=device)
    full = start < 24
    which = 3 * (full[:, None] & full[None, :]).long()
    which += (full[:, None] & ~full[None, :]).long() + 2 * (~full[:, None] & full[None, :]).long()
    return (which * (h * w) + start[:, None] * w + start[None, :]).reshape(-1)


def _large_pooled(maps: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Pre-ReLU 9x9 max pool of the conv1 maps of the 27x27 patches centred at (rows, cols),
    gathered from :func:`_large_maps` with one ``index_select``. Returns (N, 9, 9, C)."""
    _, h, w, c = maps.shape
    cell = _pool_index(h, w, maps.device)
    index = (rows * w + cols)[:, None] + cell[None, :]
    return maps.reshape(-1, c).index_select(0, index.reshape(-1)).view(len(rows), 9, 9, c)


def deep_features_at(
    cnn: nn.Sequential,
    image: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    scales: np.ndarray,
    patches_large: np.ndarray,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """``f_C`` (N, 25) of the edge patches of one image, without cutting 27x27 CNN inputs.

    Same values as ``cnn`` on :func:`cnn_input` patches (float32 rounding; tested): conv1
    and its pool are shared over the whole image for the large scale (:func:`_large_pooled`)
    and run on a compact 19x19 input for the small one (:func:`_small_pooled`); conv1 + pool
    were ~80 % of the per-patch forward. ``patches_large``: the (N, 27, 27, 3) contexts of
    :func:`patch_data` (only the small patches' centres are read).
    """
    out = torch.zeros((len(rows), DEEP_DIM), device=device)

    def rest(pooled: torch.Tensor) -> torch.Tensor:  # ReLU of the pool, then conv2..conv4
        return cnn[3:](pooled.clamp_min_(0).permute(0, 3, 1, 2))

    large = np.flatnonzero(np.asarray(scales) == 1)
    small = np.flatnonzero(np.asarray(scales) == 0)
    if large.size:
        maps = _large_maps(cnn[0], torch.from_numpy(np.ascontiguousarray(image)).to(device))
        r = torch.from_numpy(np.asarray(rows, np.int64)[large]).to(device)
        c = torch.from_numpy(np.asarray(cols, np.int64)[large]).to(device)
        parts = [
            rest(_large_pooled(maps, r[s : s + CNN_CHUNK], c[s : s + CNN_CHUNK]))
            for s in range(0, large.size, CNN_CHUNK)
        ]
        out[torch.from_numpy(large).to(device)] = torch.cat(parts)
        del maps
    if small.size:
        o = (LARGE - PATCH_SIZE[0]) // 2
        idx = np.clip(np.arange(PATCH_SIZE[0] + 4) - 2, 0, PATCH_SIZE[0] - 1) + o
        rgb19 = torch.from_numpy(patches_large[small][:, idx][:, :, idx]).to(device)
        rgb19 = rgb19.permute(0, 3, 1, 2)
        parts = [
            rest(_small_pooled(cnn[0], rgb19[s : s + CNN_CHUNK]))
            for s in range(0, small.size, CNN_CHUNK)
        ]
        out[torch.from_numpy(small).to(device)] = torch.cat(parts)
    return out
