"""Pickled .npy weight files are read without running code."""

import os

import numpy as np
import pytest

from defocus.io.safe_npy import UnsafePickleError, load_pickled_npy


def test_dict_of_arrays_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    layers = {
        "conv1_1": [rng.random((3, 3, 3, 4), dtype=np.float32), np.zeros(4, np.float32)],
        "fc8": (np.arange(6, dtype=np.int64).reshape(2, 3), 1.5),
    }
    np.save(tmp_path / "w.npy", layers, allow_pickle=True)
    got = load_pickled_npy(tmp_path / "w.npy")
    ref = np.load(tmp_path / "w.npy", allow_pickle=True, encoding="latin1").item()
    assert set(got) == set(ref)
    for k in ref:
        for a, b in zip(got[k], ref[k], strict=True):
            np.testing.assert_array_equal(a, b)
    plain = np.arange(5.0)
    np.save(tmp_path / "p.npy", plain)
    np.testing.assert_array_equal(load_pickled_npy(tmp_path / "p.npy"), plain)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickle_that_calls_code_is_refused(tmp_path):
    arr = np.empty((), dtype=object)
    arr[()] = {"conv1_1": _Evil()}
    path = tmp_path / "evil.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, arr, allow_pickle=True)
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        load_pickled_npy(path)
