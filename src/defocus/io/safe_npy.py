"""Read a pickled ``.npy`` (an object array, e.g. a dict of weight arrays) without running
arbitrary code.

``np.load(path, allow_pickle=True)`` unpickles whatever the file holds, and a pickle can call
any importable function. Released weight files such as the Caffe VGG19 ``vgg19.npy`` that
DMENet's release loads are such pickles, and the authors publish no digest for them. This
reader parses the ``.npy`` header itself (``numpy.lib.format``) and unpickles the payload with a
:class:`pickle.Unpickler` whose ``find_class`` admits only the few numpy constructors that
rebuild arrays, dtypes and scalars; anything else is refused with a clear error.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

#: (module, name) pairs an array pickle needs; numpy 1.x spells the module numpy.core
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class UnsafePickleError(ValueError):
    """The pickle asks for something other than numpy arrays and plain containers."""


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to load {module}.{name}: only numpy arrays, dicts, lists and numbers "
            "may be read from a weights file"
        )


def load_pickled_npy(path: str | Path) -> Any:
    """The object stored in an object-dtype ``.npy`` (``np.save`` of a dict, a list ...).

    Equivalent to ``np.load(path, allow_pickle=True, encoding="latin1")`` (``.item()`` for a
    0-d array) for files holding numpy arrays in dicts, lists and tuples; raises
    :class:`UnsafePickleError` for anything else, before it is built.
    """
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"{path}: unsupported .npy version {version}")
        if not dtype.hasobject:  # a plain array: no pickle involved
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
        payload = fh.read()
    arr = _ArrayUnpickler(io.BytesIO(payload), encoding="latin1").load()
    if isinstance(arr, np.ndarray) and arr.shape == () and arr.dtype == object:
        return arr.item()
    if isinstance(arr, np.ndarray) and shape and arr.shape != tuple(shape):
        arr = arr.reshape(shape)
    return arr
