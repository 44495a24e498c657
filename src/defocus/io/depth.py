"""Depth and disparity file formats: Sintel ``.dpt``, Middlebury ``.pfm`` + ``calib.txt``,
SYNTHIA 16-bit depth PNGs and plain ``.npy``.

Every public reader that returns *depth* returns ``float32`` metres with ``nan`` where the
source marks a pixel invalid. Facts about each format are cited from
``/work/shared/DATASETS.md`` (sections 6, 7 and 8).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from defocus.io.atomic import atomic_path

#: Sintel ``.dpt`` magic number (DATASETS.md section 6, from SYNDOF ``depth_read.m``).
DPT_TAG = 202021.25


class DepthFormatError(ValueError):
    """A depth/disparity file is missing, truncated or not in the expected format."""


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise DepthFormatError(f"depth file not found: {path}")


# --------------------------------------------------------------------------------------
# Sintel .dpt
# --------------------------------------------------------------------------------------


def read_dpt(path: str | os.PathLike) -> np.ndarray:
    """Read an MPI Sintel ``.dpt`` depth file.

    Layout (little-endian): float32 tag ``202021.25``, int32 width, int32 height, then
    ``width * height`` float32 values in row-major order (DATASETS.md section 6).

    Parameters
    ----------
    path : path-like
        The ``.dpt`` file.

    Returns
    -------
    numpy.ndarray
        ``float32`` array ``(height, width)`` in the file's scene units (Sintel: metres, as
        SYNDOF treats them; it multiplies by 1000 to get millimetres). Sky pixels hold large
        finite values (up to ~1e11), kept as they are: far beyond any focus distance.

    Raises
    ------
    DepthFormatError
        When the tag is wrong, the dimensions are implausible or the file is truncated.
    """
    path = Path(path)
    _check_file(path)
    raw = path.read_bytes()
    if len(raw) < 12:
        raise DepthFormatError(f"{path}: too short for a .dpt header ({len(raw)} bytes)")
    tag = np.frombuffer(raw, "<f4", count=1, offset=0)[0]
    if tag != np.float32(DPT_TAG):
        raise DepthFormatError(
            f"{path}: wrong .dpt tag {float(tag)!r}, expected {DPT_TAG} (not a Sintel depth file "
            "or wrong endianness)"
        )
    width, height = (int(v) for v in np.frombuffer(raw, "<i4", count=2, offset=4))
    if width <= 0 or height <= 0 or width * height > 1 << 28:
        raise DepthFormatError(f"{path}: implausible .dpt size {width}x{height}")
    n = width * height
    if len(raw) - 12 < 4 * n:
        raise DepthFormatError(
            f"{path}: truncated .dpt: {width}x{height} needs {4 * n} data bytes, "
            f"file has {len(raw) - 12}"
        )
    data = np.frombuffer(raw, "<f4", count=n, offset=12)
    return data.reshape(height, width).astype(np.float32)


def write_dpt(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Atomically write a ``(H, W)`` array as a Sintel ``.dpt`` file (see :func:`read_dpt`)."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise DepthFormatError(f"write_dpt expects an HxW array, got shape {depth.shape}")
    h, w = depth.shape
    header = np.array([DPT_TAG], "<f4").tobytes() + np.array([w, h], "<i4").tobytes()
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + np.ascontiguousarray(depth, "<f4").tobytes())


# --------------------------------------------------------------------------------------
# Middlebury .pfm and calib.txt
# --------------------------------------------------------------------------------------


def _read_header_line(raw: bytes, pos: int) -> tuple[str, int]:
    """Return the next non-empty whitespace-stripped line and the position after it."""
    while True:
        end = raw.find(b"\n", pos)
        if end < 0:
            raise DepthFormatError("truncated PFM header")
        line = raw[pos:end].decode("ascii", errors="replace").strip()
        pos = end + 1
        if line and not line.startswith("#"):
            return line, pos


def read_pfm(path: str | os.PathLike) -> np.ndarray:
    """Read a Portable Float Map (Middlebury ``disp0.pfm``).

    The header is ``PF`` (3 channels) or ``Pf`` (1 channel), then ``width height``, then a
    scale whose sign gives the byte order (negative = little-endian). Rows are stored
    bottom-to-top; the result is flipped so row 0 is the top of the image. Middlebury marks
    unknown disparities with ``inf`` (DATASETS.md section 8); they are returned unchanged.

    Returns
    -------
    numpy.ndarray
        ``float32`` ``(H, W)`` for ``Pf`` or ``(H, W, 3)`` for ``PF``.
    """
    path = Path(path)
    _check_file(path)
    raw = path.read_bytes()
    try:
        kind, pos = _read_header_line(raw, 0)
        dims, pos = _read_header_line(raw, pos)
        scale_s, pos = _read_header_line(raw, pos)
    except DepthFormatError as err:
        raise DepthFormatError(f"{path}: {err}") from None
    if kind not in ("PF", "Pf"):
        raise DepthFormatError(f"{path}: not a PFM file (header {kind[:10]!r}, expected PF or Pf)")
    channels = 3 if kind == "PF" else 1
    m = re.fullmatch(r"(\d+)\s+(\d+)", dims)
    if not m:
        raise DepthFormatError(f"{path}: bad PFM dimensions line {dims!r}")
    width, height = int(m.group(1)), int(m.group(2))
    try:
        scale = float(scale_s)
    except ValueError:
        raise DepthFormatError(f"{path}: bad PFM scale line {scale_s!r}") from None
    if scale == 0:
        raise DepthFormatError(f"{path}: PFM scale is 0 (its sign must give the byte order)")
    dtype = "<f4" if scale < 0 else ">f4"
    n = width * height * channels
    if len(raw) - pos < 4 * n:
        raise DepthFormatError(
            f"{path}: truncated PFM: {width}x{height}x{channels} needs {4 * n} bytes, "
            f"file has {len(raw) - pos}"
        )
    data = np.frombuffer(raw, dtype, count=n, offset=pos).astype(np.float32)
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.ascontiguousarray(data.reshape(shape)[::-1])


def write_pfm(path: str | os.PathLike, data: np.ndarray, little_endian: bool = True) -> None:
    """Atomically write a ``(H, W)`` or ``(H, W, 3)`` float array as PFM (rows bottom-to-top)."""
    data = np.asarray(data, np.float32)
    if data.ndim == 2:
        kind = "Pf"
    elif data.ndim == 3 and data.shape[2] == 3:
        kind = "PF"
    else:
        raise DepthFormatError(f"write_pfm expects HxW or HxWx3, got shape {data.shape}")
    h, w = data.shape[:2]
    scale = -1.0 if little_endian else 1.0
    header = f"{kind}\n{w} {h}\n{scale}\n".encode("ascii")
    body = np.ascontiguousarray(data[::-1], "<f4" if little_endian else ">f4").tobytes()
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + body)


def _parse_matrix(text: str) -> np.ndarray:
    rows = [r.split() for r in text.strip().strip("[]").split(";")]
    return np.array([[float(v) for v in r] for r in rows], np.float64)


def read_middlebury_calib(path: str | os.PathLike) -> dict:
    """Parse a Middlebury 2014 ``calib.txt``.

    Lines are ``key=value``; ``cam0``/``cam1`` are ``[f 0 cx; 0 f cy; 0 0 1]`` (DATASETS.md
    section 8).

    Returns
    -------
    dict
        ``cam0`` and ``cam1`` as 3x3 float arrays; ``f``, ``cx``, ``cy`` from ``cam0``;
        ``doffs`` and ``baseline`` (mm) as floats; ``width``, ``height``, ``ndisp``,
        ``isint``, ``vmin``, ``vmax``, ``dyavg``, ``dymax`` as numbers when present.
    """
    path = Path(path)
    if not path.is_file():
        raise DepthFormatError(f"Middlebury calib file not found: {path}")
    out: dict = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if "=" not in line:
            raise DepthFormatError(f"{path}:{lineno}: expected key=value, got {line!r}")
        key, value = (s.strip() for s in line.split("=", 1))
        try:
            if value.startswith("["):
                out[key] = _parse_matrix(value)
            else:
                num = float(value)
                out[key] = (
                    int(num) if num.is_integer() and key not in ("doffs", "baseline") else num
                )
        except ValueError:
            raise DepthFormatError(f"{path}:{lineno}: cannot parse {key}={value!r}") from None
    for key in ("cam0", "doffs", "baseline"):
        if key not in out:
            raise DepthFormatError(f"{path}: calib lacks {key!r}")
    cam0 = out["cam0"]
    if cam0.shape != (3, 3):
        raise DepthFormatError(f"{path}: cam0 must be 3x3, got {cam0.shape}")
    out["f"] = float(cam0[0, 0])
    out["cx"] = float(cam0[0, 2])
    out["cy"] = float(cam0[1, 2])
    return out


def disparity_to_depth_m(
    disp: np.ndarray, f_px: float, baseline_mm: float, doffs: float
) -> np.ndarray:
    """Middlebury disparity to depth in metres: ``Z = baseline * f / (d + doffs) / 1000``.

    The formula is Middlebury 2014's (DATASETS.md section 8: ``Z[mm] = baseline * f /
    (d + doffs)``). Pixels whose disparity is not finite (``inf`` marks unknown) or ``<= 0``
    become ``nan``.
    """
    d = np.asarray(disp, np.float64)
    valid = np.isfinite(d) & (d > 0)
    z = np.full(d.shape, np.nan, np.float64)
    denom = d[valid] + float(doffs)
    with np.errstate(divide="ignore", invalid="ignore"):
        z[valid] = float(baseline_mm) * float(f_px) / denom / 1000.0
    z[~np.isfinite(z) | (z <= 0)] = np.nan
    return z.astype(np.float32)


# --------------------------------------------------------------------------------------
# SYNTHIA depth PNG
# --------------------------------------------------------------------------------------


def read_synthia_depth(path: str | os.PathLike) -> np.ndarray:
    """Read a SYNTHIA(-SEQS) ``Depth`` PNG as metres.

    The PNG is 16-bit with three equal channels; the red channel is depth in **centimetres**,
    so ``depth_m = R / 100``. Sources: DATASETS.md section 7 and SYNDOF's
    ``generate_blur_by_depth.m`` (github codeslake/SYNDOF: channel 1 times 10 = millimetres),
    in agreement with other SYNTHIA-SEQS readers (e.g. xingyul/meteornet: channel 0 / 100);
    SYNTHIA's own README was not available. 65535 (far / sky) stays a finite 655.35 m, as
    SYNDOF treats it as a distance; zero is taken as invalid and becomes ``nan``.
    """
    import cv2

    path = Path(path)
    _check_file(path)
    img = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DepthFormatError(f"{path}: cannot decode PNG")
    if img.dtype != np.uint16:
        raise DepthFormatError(
            f"{path}: SYNTHIA depth PNGs are 16-bit, got {img.dtype} (wrong file? an RGB frame?)"
        )
    red = img[..., 2] if img.ndim == 3 else img  # OpenCV decodes colour as BGR(A)
    depth = red.astype(np.float32) / 100.0
    depth[red == 0] = np.nan
    return depth


# --------------------------------------------------------------------------------------
# Dispatcher
# --------------------------------------------------------------------------------------

_KINDS = ("npy", "dpt", "pfm", "synthia")


def read_depth(
    path: str | os.PathLike,
    calib: Mapping | str | os.PathLike | None = None,
    kind: str | None = None,
) -> np.ndarray:
    """Read any supported depth source as ``float32`` metres (``nan`` = invalid).

    Parameters
    ----------
    path : path-like
        ``.npy`` (already metres), ``.dpt`` (Sintel), ``.pfm`` (Middlebury disparity; needs
        ``calib``) or ``.png`` (SYNTHIA depth).
    calib : dict or path-like, optional
        Middlebury calibration: the dict of :func:`read_middlebury_calib` or the path of a
        ``calib.txt``. Required for ``.pfm``.
    kind : {"npy", "dpt", "pfm", "synthia"}, optional
        Overrides the choice by extension.
    """
    path = Path(path)
    if kind is None:
        kind = {".npy": "npy", ".dpt": "dpt", ".pfm": "pfm", ".png": "synthia"}.get(
            path.suffix.lower()
        )
        if kind is None:
            raise DepthFormatError(
                f"{path}: unknown depth extension {path.suffix!r}; expected .npy, .dpt, .pfm "
                "or .png (or pass kind=)"
            )
    if kind not in _KINDS:
        raise DepthFormatError(f"unknown depth kind {kind!r}; expected one of {_KINDS}")
    if kind == "npy":
        _check_file(path)
        arr = np.load(path)
        if arr.ndim != 2:
            raise DepthFormatError(f"{path}: depth .npy must be HxW, got shape {arr.shape}")
        return arr.astype(np.float32)
    if kind == "dpt":
        return read_dpt(path)
    if kind == "synthia":
        return read_synthia_depth(path)
    if calib is None:
        raise DepthFormatError(
            f"{path}: a Middlebury .pfm holds disparity; pass calib= (calib.txt or its dict) "
            "to convert it to depth"
        )
    if not isinstance(calib, Mapping):
        calib = read_middlebury_calib(calib)
    disp = read_pfm(path)
    if disp.ndim != 2:
        raise DepthFormatError(f"{path}: expected a 1-channel disparity PFM, got {disp.shape}")
    return disparity_to_depth_m(disp, calib["f"], calib["baseline"], calib["doffs"])
