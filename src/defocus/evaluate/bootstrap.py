"""Seeded percentile-bootstrap confidence intervals over images.

Images are the resampling unit (the test set is a sample of images, pixels within an image
are not independent). One resample draws ``n`` image indices with replacement from
``np.random.default_rng(seed)``; it is represented by its multiplicity vector ``w``
(``w_i`` = how often image ``i`` was drawn), so a resampled mean is ``w @ x / n`` and all
resamples of a chunk are one matrix product. For ``f_beta`` the per-image P and R curves
(or, in ``pooled`` mode, the TP/FP/FN counts) are re-averaged with ``w`` and the max of the
resulting F curve is taken, exactly as the point estimate is computed. The interval is the
``(1-level)/2`` and ``(1+level)/2`` percentiles (Efron & Tibshirani, *An Introduction to
the Bootstrap*, 1993, ch. 13). Results depend only on ``seed``, ``n_resamples`` and the
number of images.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from defocus.evaluate.metrics import BETA2, Counts, _check_mode, _div, f_beta, f_measure

#: default number of bootstrap resamples
N_RESAMPLES = 1000
#: cap on the elements of one chunk's weight matrix (resamples x images), ~16 MB of int64
_CHUNK_ELEMENTS = 2_000_000


class BootstrapCI(NamedTuple):
    """A point estimate with its percentile-bootstrap interval."""

    estimate: float
    low: float
    high: float


def resample_weights(n_images: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Yield chunks of bootstrap multiplicity vectors, each (chunk, n_images) int64.

    Every row sums to ``n_images``. The chunking depends only on ``n_images`` and
    ``n_resamples``, so the same seed always gives the same resamples.
    """
    if n_images < 1:
        raise ValueError(f"need at least one image to bootstrap, got {n_images}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, _CHUNK_ELEMENTS // n_images))
    done = 0
    while done < n_resamples:
        b = min(chunk, n_resamples - done)
        idx = rng.integers(0, n_images, size=(b, n_images))
        flat = (np.arange(b)[:, None] * n_images + idx).ravel()
        yield np.bincount(flat, minlength=b * n_images).reshape(b, n_images)
        done += b


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    lo, hi = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def bootstrap_mean(
    values: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = 0, level: float = 0.95
) -> BootstrapCI:
    """CI of the mean of per-image values (e.g. per-image MAE)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    samples = np.concatenate([w @ x / x.size for w in resample_weights(x.size, n_resamples, seed)])
    return BootstrapCI(float(x.mean()), *_interval(samples, level))


def f_beta_samples(
    counts: Counts,
    mode: str = "image",
    beta2: float = BETA2,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> np.ndarray:
    """The f_beta of every bootstrap resample, shape (n_resamples,)."""
    _check_mode(mode)
    n = counts.n_images
    if mode == "pooled":
        stats = (counts.tp, counts.fp, counts.fn)
    else:
        p_i, r_i, f_i = counts.per_image(beta2)
        maxf_i = f_i.max(axis=1)
    out = []
    for w in resample_weights(n, n_resamples, seed):
        w = w.astype(np.float64)
        if mode == "pooled":
            tp, fp, fn = (w @ a for a in stats)
            p, r = _div(tp, tp + fp), _div(tp, tp + fn)
            out.append(f_measure(p, r, beta2).max(axis=1))
        elif mode == "image_maxf":
            out.append(w @ maxf_i / n)
        else:
            out.append(f_measure(w @ p_i / n, w @ r_i / n, beta2).max(axis=1))
    return np.concatenate(out)


def bootstrap_f_beta(
    counts: Counts,
    mode: str = "image",
    beta2: float = BETA2,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapCI:
    """CI of ``f_beta`` (max over thresholds of the averaged F curve) under ``mode``.

    Parameters
    ----------
    counts : Counts
        Per-image TP/FP/FN at every threshold.
    mode : {"image", "image_maxf", "pooled"}
        Averaging mode, as in :func:`defocus.evaluate.metrics.summarise`.
    beta2 : float
        beta^2 of the F-measure.
    n_resamples : int
        Number of bootstrap resamples (1000 by default).
    seed : int
        Seed of ``np.random.default_rng``.
    level : float
        Confidence level (0.95).
    """
    samples = f_beta_samples(counts, mode, beta2, n_resamples, seed)
    return BootstrapCI(f_beta(counts, mode, beta2), *_interval(samples, level))
