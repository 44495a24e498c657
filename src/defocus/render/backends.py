"""Backends of :func:`defocus.render.layered.render_layered`: OpenCV (numpy) and torch.

Both hold the compositing state ``[accumulated mask, accumulated colour]`` and blur a
layer's ``[mask, premultiplied RGB]`` as one 4-channel crop of its footprint.
"""

from __future__ import annotations

import numpy as np

from defocus.render.footprint import _sym_index, _window
from defocus.render.layers import FILL_EPS, MASK_EPS


class _NumpyOps:
    """OpenCV separable filtering of ``(h, w, 4)`` float32 crops: [mask, premultiplied RGB].

    The state ``s`` holds [accumulated mask, accumulated colour]; ``apad`` / ``lpad`` are
    the [1, RGB] image and the labels padded by ``pad`` px with symmetric borders. Masking,
    compositing and normalising use OpenCV too: NumPy broadcasting over a last axis of 4 is
    several times slower.
    """

    max_width = None

    def __init__(self, rgb1, labels, pad, strip_px, device=None):
        import cv2

        self.cv2 = cv2
        self.pad = pad
        self.h, self.w = labels.shape
        self.rgb1 = rgb1
        self.labels = labels
        self.apad = np.pad(rgb1, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
        self.lpad = np.pad(labels, pad, mode="symmetric")
        self.s = np.zeros_like(rgb1)

    def kernel(self, k, r):
        return k.astype(np.float32)

    def _blur(self, win, k, r, rows=None):
        # two 1-D passes, the vertical one only on the columns kept (sepFilter2D would
        # filter the whole crop twice); with ``rows = (a, b)`` the rows of ``win`` outside
        # ``[a, b)`` are zero and the horizontal pass skips them (a row's filtered values
        # do not depend on the other rows, so the result is the same to the bit)
        cv2 = self.cv2
        if rows is None or rows == (0, win.shape[0]):
            x = cv2.filter2D(win, -1, k[None, :], borderType=cv2.BORDER_CONSTANT)
        else:
            x = np.zeros_like(win)
            a, b = rows
            if a >= b:  # nothing to blur
                return x[r:-r, r:-r].copy()
            cv2.filter2D(win[a:b], -1, k[None, :], dst=x[a:b], borderType=cv2.BORDER_CONSTANT)
        return cv2.filter2D(x[:, r:-r], -1, k[:, None], borderType=cv2.BORDER_CONSTANT)[r:-r]

    def _scale(self, s, f):
        """``s *= f[..., None]`` in place (``s`` may be a view of the state)."""
        self.cv2.multiply(s, self.cv2.merge([f, f, f, f]), dst=s)

    def layer(self, i, k, r, y0, y1, x0, x1):
        """Blurred [mask, colour] of layer ``i`` on the output rect, small masks zeroed."""
        p = self.pad
        ys, xs = slice(y0 + p - r, y1 + p + r), slice(x0 + p - r, x1 + p + r)
        sel = (self.lpad[ys, xs] == i).view(np.uint8)
        used = np.flatnonzero(sel.any(axis=1))  # rows holding a pixel of the layer
        rows = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 0)
        o = self._blur(self.cv2.copyTo(self.apad[ys, xs], sel), k, r, rows)
        m = o[..., 0]
        m[m < MASK_EPS] = 0.0
        return o

    def fill(self, i, k, r, y0, y1, x0, x1, o):
        """Background extension under the layer: ``(region, values)`` or None."""
        p = self.pad
        u = self.lpad[y0 + p - r : y1 + p + r, x0 + p - r : x1 + p + r] < i  # far union
        win = self.cv2.copyTo(_window(self.s, y0, y1, x0, x1, r, self.h, self.w), u.view(np.uint8))
        win[..., 0] = u
        b = self._blur(win, k, r)
        region = (b[..., 0] >= FILL_EPS) & (self.labels[y0:y1, x0:x1] >= i) & (o[..., 0] > 0)
        if not region.any():
            return None
        vals = b[region]
        vals[:, 1:] /= vals[:, :1]
        vals[:, 0] = 1.0
        return region, vals

    def composite(self, y0, y1, x0, x1, o, fill):
        s = self.s[y0:y1, x0:x1]
        if fill is not None:
            s[fill[0]] = fill[1]
        self._scale(s, 1.0 - o[..., 0])
        self.cv2.add(s, o, dst=s)

    def paste(self, i, y0, y1, x0, x1):
        """Composite an unblurred layer: its pixels replace the state."""
        sel = (self.labels[y0:y1, x0:x1] == i).view(np.uint8)
        s = self.s[y0:y1, x0:x1]
        self.cv2.copyTo(self.rgb1[y0:y1, x0:x1], sel, dst=s)

    def normalise(self, y0, y1, x0, x1):
        s = self.s[y0:y1, x0:x1]
        mm = s[..., 0]
        self._scale(s, 1.0 / (mm + (mm == 0)))

    def result(self):
        mm = self.s[..., 0]
        out = self.s[..., 1:] / (mm + (mm == 0))[..., None]
        return out

    def gather(self, ys, xs):
        """The state [mask, colour] at pixels ``(ys, xs)`` as an ``(n, 4)`` numpy array."""
        return self.s[ys, xs]

    def scatter(self, ys, xs, vals):
        """Set the state at pixels ``(ys, xs)`` to ``vals`` (n, 4) float32."""
        self.s[ys, xs] = vals


class _TorchOps:
    """The same crops as ``(4, h, w)`` tensors in torch (CPU or CUDA).

    The separable blur is two banded (Toeplitz) matrix products, which give the 'valid'
    part directly: ``K_v (h, h + 2r) @ crop (4, h + 2r, w + 2r) @ K_h (w + 2r, w)``. Rects
    are at most ``max_width`` wide; on the CPU this is several times faster than torch's
    depthwise convolution.
    """

    max_width = 192

    def __init__(self, rgb1, labels, pad, strip_px, device=None):
        import torch

        self.torch = torch
        self.device = torch.device(device if device is not None else "cpu")
        self.pad = pad
        self.h, self.w = labels.shape
        apad = np.pad(rgb1, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
        self.apad = self._t(apad.transpose(2, 0, 1))
        self.lpad = torch.as_tensor(np.pad(labels, pad, mode="symmetric"), device=self.device)
        self.rgb1 = self.apad[:, pad : pad + self.h, pad : pad + self.w]
        self.labels = self.lpad[pad : pad + self.h, pad : pad + self.w]
        self.s = torch.zeros((4, self.h, self.w), dtype=torch.float32, device=self.device)
        self.max_height = min(strip_px, self.h)  # rects are at most this high and ...
        self.max_width = min(self.max_width, self.w)  # ... this wide

    def _t(self, a):
        a = np.ascontiguousarray(a, dtype=np.float32)
        return self.torch.as_tensor(a, device=self.device)

    def _band(self, k, n):
        band = np.zeros((n, n + len(k) - 1), np.float32)  # band[j, j + t] = k[t]
        rows = np.arange(n)
        for t, v in enumerate(k):
            band[rows, rows + t] = v
        return self._t(band)

    def kernel(self, k, r):
        return self._band(k, self.max_height), self._band(k, self.max_width).T

    def _blur(self, win, k, r):
        h, w = win.shape[1] - 2 * r, win.shape[2] - 2 * r
        x = self.torch.matmul(k[0][:h, : h + 2 * r], win)
        return self.torch.matmul(x, k[1][: w + 2 * r, :w])

    def layer(self, i, k, r, y0, y1, x0, x1):
        p = self.pad
        ys, xs = slice(y0 + p - r, y1 + p + r), slice(x0 + p - r, x1 + p + r)
        o = self._blur(self.apad[:, ys, xs] * (self.lpad[ys, xs] == i), k, r)
        m = o[0]
        m.masked_fill_(m < MASK_EPS, 0.0)
        return o

    def fill(self, i, k, r, y0, y1, x0, x1, o):
        p = self.pad
        u = self.lpad[y0 + p - r : y1 + p + r, x0 + p - r : x1 + p + r] < i
        if y0 - r >= 0 and y1 + r <= self.h and x0 - r >= 0 and x1 + r <= self.w:
            win = self.s[:, y0 - r : y1 + r, x0 - r : x1 + r]
        else:
            ty = self.torch.as_tensor(_sym_index(y0, y1, r, self.h), device=self.device)
            tx = self.torch.as_tensor(_sym_index(x0, x1, r, self.w), device=self.device)
            win = self.s.index_select(1, ty).index_select(2, tx)
        win = win * u
        win[0] = u
        b = self._blur(win, k, r)
        bu = b[0]
        region = (bu >= FILL_EPS) & (self.labels[y0:y1, x0:x1] >= i) & (o[0] > 0)
        vals = b / (bu + (bu == 0))
        vals[0] = 1.0
        return region, vals

    def composite(self, y0, y1, x0, x1, o, fill):
        s = self.s[:, y0:y1, x0:x1]
        if fill is not None:
            s.copy_(self.torch.where(fill[0], fill[1], s))
        s.addcmul_(s, o[:1], value=-1.0)  # s * (1 - m) + o
        s.add_(o)

    def paste(self, i, y0, y1, x0, x1):
        s = self.s[:, y0:y1, x0:x1]
        sel = self.labels[y0:y1, x0:x1] == i
        s.copy_(self.torch.where(sel, self.rgb1[:, y0:y1, x0:x1], s))

    def normalise(self, y0, y1, x0, x1):
        s = self.s[:, y0:y1, x0:x1]
        mm = s[:1]
        s.div_(mm + (mm == 0))

    def result(self):
        mm = self.s[:1]
        return (self.s[1:] / (mm + (mm == 0))).permute(1, 2, 0).cpu().numpy()

    def gather(self, ys, xs):
        t = self.torch.as_tensor
        return self.s[:, t(ys, device=self.device), t(xs, device=self.device)].T.cpu().numpy()

    def scatter(self, ys, xs, vals):
        t = self.torch.as_tensor
        self.s[:, t(ys, device=self.device), t(xs, device=self.device)] = self._t(vals.T)
