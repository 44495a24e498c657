"""Helpers shared by the classic baselines: grey conversion, window sizes, and the
closed-form matting propagation of Levin et al. used by LBP (Yi & Eramian 2016) and
Zhuo & Sim (2011).

References
----------
A. Levin, D. Lischinski, Y. Weiss, "A closed-form solution to natural image matting",
IEEE TPAMI 30(2), 2008 (matting Laplacian; epsilon 1e-7 and 3x3 windows are its defaults).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from defocus.methods.base import minmax_normalise
from defocus.methods.spec import base_name


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 luminance in [0, 1] (ITU-R BT.601, as MATLAB rgb2gray)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def check_odd_window(name: str, value: int, minimum: int = 3) -> int:
    """Validate an odd window side ``value`` >= ``minimum``; return it as int."""
    v = int(value)
    if v < minimum or v % 2 == 0:
        raise ValueError(f"{name} must be an odd integer >= {minimum}, got {value!r}")
    return v


def check_positive(name: str, value: float) -> float:
    """Validate a strictly positive number; return it as float."""
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return v


def check_positive_int(name: str, value: int) -> int:
    """Validate an integer >= 1 (e.g. a stride); return it as int."""
    v = int(value)
    if v < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return v


def resize(x: np.ndarray, shape: tuple[int, int], interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resize a 2-D float map to ``shape`` = (H, W)."""
    h, w = shape
    if x.shape[:2] == (h, w):
        return x
    return cv2.resize(np.ascontiguousarray(x, dtype=np.float32), (w, h), interpolation=interp)


def grid_to_full(grid: np.ndarray, stride: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinearly interpolate values sampled at pixels ``(i * stride, j * stride)`` to ``shape``."""
    h, w = shape
    if stride == 1 and grid.shape == (h, w):
        return grid.astype(np.float32)
    ys = (np.arange(h, dtype=np.float32) / stride)[:, None]
    xs = (np.arange(w, dtype=np.float32) / stride)[None, :]
    map_y = np.broadcast_to(ys, (h, w)).astype(np.float32)
    map_x = np.broadcast_to(xs, (h, w)).astype(np.float32)
    return cv2.remap(
        np.ascontiguousarray(grid, dtype=np.float32),
        map_x,
        map_y,
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


# -- helpers of the learned classic baselines (dbdf, jnb, ksfv) --------------------------
def dense_patches(gray: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """Read-only view of the ``window x window`` patch centred on every ``stride``-th pixel.

    The image is reflect-padded by ``window // 2`` so the grid covers every pixel
    ``(i * stride, j * stride)``; the result has shape ``(ceil(H / stride), ceil(W / stride),
    window, window)`` and is meant for :func:`grid_to_full`.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    r = int(window) // 2
    padded = cv2.copyMakeBorder(
        np.ascontiguousarray(gray, dtype=np.float32), r, r, r, r, cv2.BORDER_REFLECT
    )
    return sliding_window_view(padded, (int(window), int(window)))[:: int(stride), :: int(stride)]


def patchwise(
    gray: np.ndarray,
    window: int,
    stride: int,
    fn,
    chunk: int = 4096,
) -> np.ndarray:
    """Apply ``fn`` to the dense patches of ``gray`` in chunks and interpolate to full size.

    Parameters
    ----------
    gray : ndarray, (H, W)
    window, stride : int
        Patch side and grid step (see :func:`dense_patches`).
    fn : callable
        ``fn(patches (N, window, window)) -> (N,)`` or ``(N, F)`` features.
    chunk : int
        Patches per call of ``fn`` (bounds memory).

    Returns
    -------
    ndarray, float32 (H, W) or (H, W, F)
    """
    h, w = gray.shape
    windows = dense_patches(gray, window, stride)
    gh, gw = windows.shape[:2]
    flat = windows.reshape(gh * gw, window, window)
    parts = [
        np.asarray(fn(flat[i : i + chunk]), dtype=np.float32) for i in range(0, len(flat), chunk)
    ]
    feats = np.concatenate(parts, axis=0)
    grid = feats.reshape(gh, gw, *feats.shape[1:])
    if grid.ndim == 2:
        return grid_to_full(grid, int(stride), (h, w))
    return np.stack(
        [grid_to_full(grid[..., k], int(stride), (h, w)) for k in range(grid.shape[-1])], axis=-1
    )


def manifest_paths(train, role: str = "train") -> list:
    """The manifests of ``role`` from the ``fit`` argument (``{role: [paths]}`` or a list)."""
    manifests = train.get(role, []) if isinstance(train, dict) else list(train or [])
    if not manifests:
        raise ValueError(
            f"expected training manifests under the {role!r} role, got {train!r}; "
            "set training.data.<method>.train in config"
        )
    return manifests


def load_labelled_images(manifests, max_images: int, split: str = "train"):
    """Grey images and binary masks (True = blurred) of the ``split`` rows of ``manifests``.

    GT PNGs follow the manifest contract (255 = blurred, threshold at 128); rows without GT
    are skipped. At most ``max_images`` images are read (0 or less = all), in manifest order.

    Returns
    -------
    list of (gray float32 (H, W) in [0, 1], mask bool (H, W))
    """
    from defocus.io.image import read_gray, read_image
    from defocus.io.manifest import read_manifest

    out = []
    for path in manifests:
        df = read_manifest(path, split=split)
        for _, row in df.iterrows():
            if int(max_images) > 0 and len(out) >= int(max_images):
                return out
            if not row["gt"]:
                continue
            gray = to_gray(read_image(row["image"]))
            gt = read_gray(row["gt"])
            if gt.shape != gray.shape:
                raise ValueError(
                    f"GT {row['gt']} has shape {gt.shape}, expected the image's {gray.shape}"
                )
            scale = 65535 if gt.dtype == np.uint16 else 255
            out.append((gray, gt.astype(np.float32) >= 0.5 * scale))
    if not out:
        raise ValueError(f"no {split!r} rows with a GT mask in manifests {list(manifests)}")
    return out


def sample_centres(
    mask: np.ndarray, n_per_class: int, border: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``n_per_class`` random pixels of each class of ``mask`` (0 sharp, 1 blurred).

    Pixels closer than ``border`` to the image edge are not drawn.

    Returns
    -------
    ys, xs, labels : ndarray (N,)
    """
    h, w = mask.shape
    inner = np.zeros_like(mask, dtype=bool)
    inner[border : h - border, border : w - border] = True
    ys, xs, ls = [], [], []
    for label in (0, 1):
        idx = np.flatnonzero(inner & (mask == bool(label)))
        if idx.size == 0:
            continue
        pick = rng.choice(idx, size=min(int(n_per_class), idx.size), replace=False)
        ys.append(pick // w)
        xs.append(pick % w)
        ls.append(np.full(pick.size, label, dtype=np.int64))
    if not ys:
        return (np.zeros(0, int),) * 3
    return np.concatenate(ys), np.concatenate(xs), np.concatenate(ls)


def patches_at(gray: np.ndarray, ys: np.ndarray, xs: np.ndarray, window: int) -> np.ndarray:
    """The ``window x window`` patches centred on pixels ``(ys, xs)``: (N, window, window)."""
    windows = dense_patches(gray, window, 1)
    return np.ascontiguousarray(windows[ys, xs])


def centred_rows(patches: np.ndarray) -> np.ndarray:
    """(N, ...) patches as float32 rows (N, d), each minus its own mean."""
    p = np.asarray(patches, dtype=np.float32).reshape(len(patches), -1)
    return p - p.mean(axis=1, keepdims=True)


def save_model(workdir, model: dict) -> Path:
    """Write ``{"model": model, "iteration": 0}`` to ``workdir/checkpoint.pt`` and return it.

    The layout is what :func:`defocus.train.loop.finalize` copies into the product
    checkpoint (it reads ``state["model"]`` and ``state["iteration"]``).
    """
    from defocus.train.loop import save_checkpoint

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "checkpoint.pt"
    save_checkpoint(path, {"model": model, "iteration": 0})
    return path


def load_model(checkpoint, name: str, keys: tuple[str, ...]) -> dict:
    """Read the ``model`` dict of a checkpoint of method ``name`` and check it has ``keys``.

    Accepts the product checkpoint of :func:`defocus.train.loop.finalize` and the
    ``checkpoint.pt`` of :func:`save_model`. Raises :class:`MethodError` otherwise.
    """
    from defocus.methods.base import MethodError
    from defocus.train.loop import load_checkpoint

    path = Path(checkpoint)
    if not path.is_file():
        raise MethodError(
            f"{name} checkpoint not found: {path}; train it with "
            f"`snakemake results/models/{name}/model.pt`"
        )
    try:
        state = load_checkpoint(path)
    except Exception as e:
        raise MethodError(f"cannot read {name} checkpoint {path}: {e}") from e
    method = str(state.get("method") or name) if isinstance(state, dict) else ""
    model = state.get("model") if isinstance(state, dict) else None
    if base_name(method) != name or not isinstance(model, dict):
        raise MethodError(f"{path} is not a {name} checkpoint (method {method!r})")
    missing = [k for k in keys if k not in model]
    if missing:
        raise MethodError(f"{path} lacks model entries {missing} expected by {name}")
    return model


__all__ = [
    "check_odd_window",
    "check_positive",
    "dense_patches",
    "grid_to_full",
    "load_labelled_images",
    "load_model",
    "manifest_paths",
    "minmax_normalise",
    "patches_at",
    "patchwise",
    "resize",
    "sample_centres",
    "save_model",
    "to_gray",
]
