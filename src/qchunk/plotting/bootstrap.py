"""Stratified bootstrap confidence intervals of a mean across tasks (as the paper's figures, rliable-style).

The statistic is the mean over tasks of the mean over each task's seeds. A *stratified* bootstrap resample
draws, for every task independently, as many seeds as that task has, with replacement, from that task's
own seeds; the statistic of each resample is computed and the interval is the percentile interval of those
``n_resamples`` values (the paper: 5000 resamples, 95%).

Missing values (NaN: a seed that has not reached an evaluation step yet) are left out of that task's seed
mean; a resample in which a task has no value at a point has no statistic there (NaN), and intervals are
taken over the resamples that have one.

Resampling is vectorised: a resample's seed means are ``counts @ values / counts @ present``, where
``counts[r, i]`` is how often seed ``i`` was drawn in resample ``r``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval (arrays of the statistic's shape)."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _as_strata(strata: Sequence[ArrayLike]) -> tuple[list[np.ndarray], tuple[int, ...]]:
    if len(strata) == 0:
        raise ValueError("need at least one stratum (task)")
    arrays = [np.asarray(s, dtype=np.float64) for s in strata]
    shape = arrays[0].shape[1:]
    for a in arrays:
        if a.ndim < 1 or a.shape[0] < 1:
            raise ValueError("every stratum needs at least one seed (shape (n_seeds, ...))")
        if a.shape[1:] != shape:
            raise ValueError(f"strata disagree on the value shape: {a.shape[1:]} vs {shape}")
    return arrays, shape


def point_estimate(strata: Sequence[ArrayLike]) -> np.ndarray:
    """Mean over tasks of each task's mean over its seeds (NaN seeds skipped; NaN if a task has none)."""
    arrays, _ = _as_strata(strata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: the result is NaN, as intended
        return np.mean([np.nanmean(a, axis=0) for a in arrays], axis=0)


def stratified_bootstrap(strata: Sequence[ArrayLike], rng: np.random.Generator,
                         n_resamples: int = 5000) -> np.ndarray:
    """The statistic of each stratified resample.

    Args:
        strata: one array per task, shape ``(n_seeds_t, *S)`` (seed counts may differ between tasks; ``S``
            is shared, e.g. evaluation points). NaN marks a missing value.
        rng: the generator; for each task in order it draws ``rng.integers(0, n_seeds_t, (n_resamples,
            n_seeds_t))``, the seeds of every resample.
        n_resamples: number of resamples R.
    Returns:
        ``(R, *S)``: the mean over tasks of the resampled seed means.
    """
    arrays, shape = _as_strata(strata)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    total = np.zeros((n_resamples, int(np.prod(shape, dtype=np.int64))))
    for a in arrays:
        n = a.shape[0]
        values = a.reshape(n, -1)
        present = np.isfinite(values)
        idx = rng.integers(0, n, size=(n_resamples, n))
        # counts[r, i]: how many times seed i was drawn in resample r
        counts = np.bincount((idx + n * np.arange(n_resamples)[:, None]).ravel(),
                             minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)
        sums = counts @ np.where(present, values, 0.0)
        drawn = counts @ present.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            total += np.where(drawn > 0, sums / drawn, np.nan)
    return (total / len(arrays)).reshape((n_resamples, *shape))


def stratified_bootstrap_ci(strata: Sequence[ArrayLike], rng: np.random.Generator, n_resamples: int = 5000,
                            confidence: float = 0.95) -> Interval:
    """Point estimate and percentile confidence interval of the mean across tasks (see the module doc).

    Args:
        strata: one array per task, ``(n_seeds_t, *S)``.
        rng: an explicit ``np.random.Generator`` (same generator state, same interval).
        n_resamples: bootstrap resamples (the paper: 5000).
        confidence: interval coverage, e.g. 0.95.
    Returns:
        :class:`Interval` with arrays of shape ``S``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    stats = stratified_bootstrap(strata, rng, n_resamples)
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # points no resample reaches stay NaN
        low, high = np.nanpercentile(stats, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return Interval(point_estimate(strata), np.asarray(low), np.asarray(high))
