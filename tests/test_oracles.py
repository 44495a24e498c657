"""Hand-written numerics checked against an independent library implementation."""

import numpy as np
import pytest


def test_batched_omp_counts_equal_sklearn_orthogonal_mp_gram():
    from sklearn.linear_model import orthogonal_mp_gram

    from defocus.methods.classic.jnb import omp_atom_count

    rng = np.random.default_rng(0)
    d = rng.normal(size=(48, 16))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    # sparse combinations plus noise, and a few signals already within the tolerance
    coef = rng.normal(size=(200, 48)) * (rng.random((200, 48)) < 0.08)
    x = coef @ d + rng.normal(0, 0.02, (200, 16))
    x[:5] *= 1e-3
    tol = 0.15
    ours = omp_atom_count(x, d, tol, max_atoms=16)
    gram, xy = d @ d.T, d @ x.T
    ref = orthogonal_mp_gram(gram, xy, tol=tol**2, norms_squared=(x**2).sum(axis=1))
    counts = np.count_nonzero(ref, axis=0)
    # sklearn always selects a first atom; a signal already within tol needs none here
    within = np.linalg.norm(x, axis=1) <= tol
    assert within[:5].all() and (~within).sum() > 150
    np.testing.assert_array_equal(ours[~within], counts[~within])
    assert (ours[within] == 0).all() and (counts[within] == 1).all() and ours.max() > 3


def test_bootstrap_mean_interval_agrees_with_scipy():
    from scipy.stats import bootstrap

    from defocus.evaluate.bootstrap import bootstrap_mean

    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 0.1, size=120)
    ours = bootstrap_mean(x, n_resamples=20000, seed=3)
    ref = bootstrap(
        (x,), np.mean, n_resamples=20000, method="percentile", random_state=4
    ).confidence_interval
    width = ref.high - ref.low
    assert ours.estimate == pytest.approx(x.mean())
    # two Monte Carlo estimates of the same percentiles: equal up to resampling noise
    assert abs(ours.low - ref.low) < 0.05 * width
    assert abs(ours.high - ref.high) < 0.05 * width
