"""Standard errors of reweighted free energies by resampling independent units within each window.

Walkers are independent, so whole walkers are the units (Efron's bootstrap over the independent
replicates; the correlation along a walker's series needs no model). Where a window holds fewer than
``min_walkers`` walkers, each walker's series is cut into blocks of ⌈g⌉ consecutive samples, g the largest
statistical inefficiency (Chodera 2016) of the window's CV and of the bias energies of the window and its
neighbours — the quantities the estimator reads (a moving-block bootstrap, Künsch 1989). Samples of a walker
are taken in the order given. A resample draws, in each window, as many units as it has, with replacement.
"""

from __future__ import annotations

import math

import numpy as np

from ..periodic import wrapped_difference
from ..timeseries import statistical_inefficiency

#: fewest walkers per window for resampling whole walkers
MIN_WALKERS = 10


def resampling_units(u: np.ndarray, window: np.ndarray, cv: np.ndarray, groups: np.ndarray | None,
                     neighbours: list[tuple[int, int]], period: float | None,
                     min_walkers: int = MIN_WALKERS) -> tuple[np.ndarray, str]:
    """(unit label of each sample, a sentence saying what the units are).

    ``groups`` None: each window's samples form one series, in order.
    """
    groups = np.zeros(window.size, dtype=np.int64) if groups is None else groups
    pairs = np.unique(np.stack([window, groups]), axis=1, return_inverse=True)[1].ravel()
    per_window = np.bincount(np.unique(np.stack([window, pairs]), axis=1)[0], minlength=u.shape[0])
    if per_window.min() >= min_walkers:
        return pairs, (f"bootstrap of whole walkers (independent units), {per_window.min()} to "
                       f"{per_window.max()} per window")
    near = {k: {k} for k in range(u.shape[0])}
    for i, j in neighbours:
        near[i].add(j)
        near[j].add(i)
    length = np.empty(u.shape[0], dtype=np.int64)
    for k in range(u.shape[0]):
        in_k = window == k
        centre = _mean(cv[in_k], period)
        series = [wrapped_difference(cv[in_k], centre, period)] + [u[j, in_k] for j in sorted(near[k])]
        length[k] = math.ceil(max(_inefficiency(s, pairs[in_k]) for s in series))
    position = np.zeros(window.size, dtype=np.int64)
    for label in np.unique(pairs):
        members = np.flatnonzero(pairs == label)
        position[members] = np.arange(members.size) // length[window[members[0]]]
    units = np.unique(np.stack([pairs, position]), axis=1, return_inverse=True)[1].ravel()
    return units, (f"block bootstrap: fewer than {min_walkers} walkers in a window ({per_window.min()}), so each "
                   f"walker's series is cut into blocks of {length.min()} to {length.max()} samples (the largest "
                   "statistical inefficiency of the CV and of the neighbouring bias energies)")


def _mean(values: np.ndarray, period: float | None) -> float:
    if period is None:
        return float(values.mean())
    angle = 2 * np.pi * values / period
    return float(np.arctan2(np.sin(angle).mean(), np.cos(angle).mean()) * period / (2 * np.pi))


def _inefficiency(series: np.ndarray, walker: np.ndarray) -> float:
    """g of the walkers' series pooled (equal lengths) or averaged with their lengths (unequal); 1 if constant."""
    labels, sizes = np.unique(walker, return_counts=True)
    if not np.ptp(series) > 0 or sizes.min() < 4:
        return 1.0
    if (sizes == sizes[0]).all():
        return statistical_inefficiency(np.stack([series[walker == w] for w in labels], axis=1))
    values = [statistical_inefficiency(series[walker == w]) if np.ptp(series[walker == w]) > 0 else 1.0
              for w in labels]
    return float(np.average(values, weights=sizes))


def resample(unit: np.ndarray, window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample multiplicities after drawing, in each window, as many units as it has, with replacement."""
    n_units = unit.max() + 1
    unit_window = np.zeros(n_units, dtype=np.int64)
    unit_window[unit] = window
    return unit_draws(unit_window, rng)[unit].astype(float)


def unit_draws(unit_window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Times each unit is drawn when each window draws as many of its units (``unit_window``: the window of
    each) as it has, with replacement."""
    n_units = unit_window.size
    order = np.argsort(unit_window, kind="stable")  # units grouped by window
    size = np.bincount(unit_window)
    offset = np.r_[0, np.cumsum(size)[:-1]]
    owner = unit_window[order]
    drawn = order[offset[owner] + np.floor(rng.random(n_units) * size[owner]).astype(np.int64)]
    return np.bincount(drawn, minlength=n_units)


def spread(replicates: np.ndarray) -> np.ndarray:
    """Standard deviation over replicates (axis 0) of the finite values; infinite where fewer than two are."""
    finite = np.isfinite(replicates)
    n = finite.sum(axis=0)
    values = np.where(finite, replicates, 0.0)
    mean = values.sum(axis=0) / np.maximum(n, 1)
    squares = np.where(finite, values - mean, 0.0) ** 2
    return np.where(n >= 2, np.sqrt(squares.sum(axis=0) / np.maximum(n - 1, 1)), np.inf)
