"""Read the weight blobs of a Caffe ``.caffemodel`` without Caffe or protobuf.

A ``.caffemodel`` is a serialised ``caffe.NetParameter`` (Caffe's ``src/caffe/proto/caffe.proto``).
Only the fields that carry weights are decoded; everything else is skipped by wire type:

* ``NetParameter``: ``layer`` = 100 (``LayerParameter``), legacy ``layers`` = 2
  (``V1LayerParameter``);
* ``LayerParameter``: ``name`` = 1, ``type`` = 2 (string), ``blobs`` = 7;
  ``V1LayerParameter``: ``name`` = 4, ``type`` = 5 (enum), ``blobs`` = 6;
* ``BlobProto``: ``shape`` = 7 (``BlobShape``: ``dim`` = 1, int64, packed or not),
  ``data`` = 5 (float, packed or not), ``double_data`` = 8, legacy ``num``/``channels``/
  ``height``/``width`` = 1/2/3/4.

Used to load the DHDE authors' released model (:mod:`defocus.methods.dhde`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class CaffeModelError(ValueError):
    """The file is not a readable ``.caffemodel``."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        if pos >= len(buf):
            raise CaffeModelError("truncated varint")
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7
        if shift > 63:
            raise CaffeModelError("varint longer than 64 bits")


def _fields(buf: bytes):
    """Yield ``(field number, wire type, value)``; value is an int (varint / fixed) or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise CaffeModelError(f"unsupported wire type {wire} (field {field})")
        if pos > len(buf):
            raise CaffeModelError(f"field {field} runs past the end of its message")
        yield field, wire, value


def _blob(buf: bytes) -> np.ndarray:
    dims: list[int] = []
    legacy = {1: 1, 2: 1, 3: 1, 4: 1}
    has_legacy = False
    floats: list[np.ndarray] = []
    for field, wire, value in _fields(buf):
        if field == 7 and wire == 2:  # BlobShape
            for f2, w2, v2 in _fields(value):
                if f2 == 1 and w2 == 2:  # packed int64 dims
                    p = 0
                    while p < len(v2):
                        d, p = _varint(v2, p)
                        dims.append(d)
                elif f2 == 1 and w2 == 0:
                    dims.append(v2)
        elif field in (5, 8):
            dtype = "<f4" if field == 5 else "<f8"
            floats.append(np.frombuffer(bytes(value), dtype=dtype).astype(np.float32))
        elif field in legacy and wire == 0:
            legacy[field] = value
            has_legacy = True
    data = np.concatenate(floats) if floats else np.zeros(0, np.float32)
    shape = dims or ([legacy[1], legacy[2], legacy[3], legacy[4]] if has_legacy else [data.size])
    if int(np.prod(shape)) != data.size:
        raise CaffeModelError(f"blob of shape {shape} holds {data.size} values")
    return data.reshape(shape)


def read_caffemodel(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Layer name -> its weight blobs (float32 arrays in Caffe's layout), for layers with
    weights, in file order.

    Raises
    ------
    CaffeModelError
        When the file is empty, truncated or holds no layer with weights.
    """
    path = Path(path)
    buf = path.read_bytes()
    if not buf:
        raise CaffeModelError(f"{path}: empty file")
    out: dict[str, list[np.ndarray]] = {}
    try:
        for field, wire, value in _fields(buf):
            if wire != 2 or field not in (100, 2):
                continue
            name_field, blob_field = (1, 7) if field == 100 else (4, 6)
            name, blobs = "", []
            for f2, w2, v2 in _fields(value):
                if f2 == name_field and w2 == 2:
                    name = bytes(v2).decode("utf-8", "replace")
                elif f2 == blob_field and w2 == 2:
                    blobs.append(_blob(v2))
            if blobs:
                out[name] = blobs
    except CaffeModelError as err:
        raise CaffeModelError(f"{path}: not a readable .caffemodel ({err})") from err
    if not out:
        raise CaffeModelError(f"{path}: no layer with weights (not a .caffemodel?)")
    return out
