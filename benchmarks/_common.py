"""Shared pieces of the benchmark scripts (run as ``python benchmarks/<script>.py``).

Import this module *before* numpy: it pins every BLAS / OpenMP pool to one thread, so the
timings measure one CPU core.
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"

from _images import half_blurred_astronaut  # noqa: E402,F401
