"""Logging for workflow scripts: everything (logging, warnings, stderr) goes to the rule's log."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def rule_log(path: str | os.PathLike | None) -> Iterator[logging.Logger]:
    """Send logging, warnings and stderr (tqdm bars, tracebacks) to ``path`` for the block.

    An exception is logged with its traceback and re-raised, so Snakemake marks the job
    failed and ``--show-failed-logs`` prints the reason.
    """
    logger = logging.getLogger("defocus")
    if path is None:
        logging.basicConfig(level=logging.INFO)
        yield logger
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        old_stderr = sys.stderr
        sys.stderr = fh
        try:
            yield logger
        except Exception:
            logger.exception("failed")
            raise
        finally:
            sys.stderr = old_stderr
            root.removeHandler(handler)


def set_threads(n: int) -> None:
    """Limit the BLAS / OpenMP, OpenCV, numba and torch threads of this job to ``n``.

    Snakemake runs jobs side by side, each with its ``threads``; a job that uses one thread
    per core oversubscribes the machine. Environment variables such as ``OMP_NUM_THREADS``
    only act when a library loads, and numpy is usually loaded before a script runs (Snakemake
    imports it), so the loaded BLAS / OpenMP pools are resized at run time with
    ``threadpoolctl`` (the scikit-learn project's tool for exactly this); the variables are
    still set for libraries loaded later and for child processes.
    """
    n = max(1, int(n))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)  # applies to every pool loaded now, until the process ends
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:
        pass
    if "numba" in sys.modules:  # pymatting's solvers; numba refuses more than it started with
        numba = sys.modules["numba"]
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
