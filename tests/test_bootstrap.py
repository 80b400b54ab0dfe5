"""Stratified bootstrap CIs: the vectorised implementation against a direct loop over resamples."""

import warnings

import numpy as np
import pytest

from qchunk.plotting.bootstrap import point_estimate, stratified_bootstrap, stratified_bootstrap_ci


def reference_ci(strata, seed, n_resamples, confidence):
    """The definition, one resample and one task at a time (same draws: per task, in order)."""
    rng = np.random.default_rng(seed)
    strata = [np.asarray(s, float) for s in strata]
    draws = [rng.integers(0, len(s), size=(n_resamples, len(s))) for s in strata]
    stats = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for r in range(n_resamples):
            task_means = [np.nanmean(s[d[r]], axis=0) for s, d in zip(strata, draws, strict=True)]
            stats.append(np.mean(task_means, axis=0))
        stats = np.array(stats)
        alpha = (1 - confidence) / 2
        low, high = np.nanpercentile(stats, [100 * alpha, 100 * (1 - alpha)], axis=0)
        point = np.mean([np.nanmean(s, axis=0) for s in strata], axis=0)
    return stats, point, low, high


def test_matches_loop_reference_on_curves():
    data = np.random.default_rng(1)
    # 5 tasks x 4 seeds x 7 evaluation points, success rates in [0, 1]
    strata = [np.clip(data.normal(0.2 * t, 0.15, size=(4, 7)), 0, 1) for t in range(5)]
    stats, point, low, high = reference_ci(strata, seed=3, n_resamples=200, confidence=0.95)
    np.testing.assert_allclose(stratified_bootstrap(strata, np.random.default_rng(3), 200), stats, atol=1e-12)
    ci = stratified_bootstrap_ci(strata, np.random.default_rng(3), n_resamples=200, confidence=0.95)
    np.testing.assert_allclose(ci.point, point, atol=1e-12)
    np.testing.assert_allclose(ci.low, low, atol=1e-12)
    np.testing.assert_allclose(ci.high, high, atol=1e-12)
    assert np.all(ci.low <= ci.point + 1e-12) and np.all(ci.point <= ci.high + 1e-12)


def test_matches_loop_reference_with_ragged_seeds_and_missing_values():
    data = np.random.default_rng(2)
    strata = [data.random((3, 5)), data.random((5, 5)), data.random((2, 5))]
    strata[1][4, 3:] = np.nan  # a seed that has not reached the last two evaluations
    strata[2][:, 4] = np.nan  # a task with no value at the last point: the aggregate is undefined there
    _, point, low, high = reference_ci(strata, seed=7, n_resamples=150, confidence=0.9)
    ci = stratified_bootstrap_ci(strata, np.random.default_rng(7), n_resamples=150, confidence=0.9)
    np.testing.assert_allclose(ci.point, point, atol=1e-12)
    np.testing.assert_allclose(ci.low, low, atol=1e-12)
    np.testing.assert_allclose(ci.high, high, atol=1e-12)
    assert np.isnan(ci.point[4]) and np.isnan(ci.low[4]) and np.all(np.isfinite(ci.low[:4]))


def test_scalar_values_and_determinism():
    strata = [[0.1, 0.4, 0.3, 0.2], [0.9, 0.8, 1.0, 0.7]]
    a = stratified_bootstrap_ci(strata, np.random.default_rng(0), n_resamples=5000)
    b = stratified_bootstrap_ci(strata, np.random.default_rng(0), n_resamples=5000)
    assert a.point.shape == () and float(a.point) == pytest.approx((0.25 + 0.85) / 2)
    assert float(a.low) == float(b.low) and float(a.high) == float(b.high)
    # the interval is within the range of possible resample means and covers the estimate
    assert (0.1 + 0.7) / 2 <= float(a.low) < float(a.point) < float(a.high) <= (0.4 + 1.0) / 2


def test_stratification_never_mixes_tasks():
    # every task's seeds agree, so every stratified resample gives the same mean: a zero-width interval
    strata = [np.full(4, 0.0), np.full(3, 1.0), np.full(5, 0.5)]
    ci = stratified_bootstrap_ci(strata, np.random.default_rng(0), n_resamples=500)
    assert float(ci.low) == float(ci.high) == float(ci.point) == pytest.approx(0.5)
    assert point_estimate(strata) == pytest.approx(0.5)


@pytest.mark.parametrize(("strata", "kwargs"), [
    ([], {}), ([np.zeros((0, 3))], {}), ([np.zeros((2, 3)), np.zeros((2, 4))], {}),
    ([np.zeros(3)], {"confidence": 1.0}), ([np.zeros(3)], {"n_resamples": 0})])
def test_bad_arguments(strata, kwargs):
    with pytest.raises(ValueError):
        stratified_bootstrap_ci(strata, np.random.default_rng(0), **kwargs)
