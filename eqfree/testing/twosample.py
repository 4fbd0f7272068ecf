"""Two-sample tests of equal laws with permutation p-values, and multiple-testing control across grids.

The statistic is the energy distance (Székely & Rizzo 2004). For samples x_1..x_n, y_1..y_m on a line,

    E = 2/(nm) Σ|x_i − y_j| − 1/n² Σ|x_i − x_k| − 1/m² Σ|y_j − y_l| = 2 ∫ (F_x(t) − F_y(t))² dt

(F the empirical CDFs; E ≥ 0 and E → 0 only for equal laws); on the pooled sorted points it is
2 Σ_k (Σ_{l≤k} w_l)² (t_{k+1} − t_k) with weights w = 1/n on x and −1/m on y: O(N) per relabelling
after one sort. Points in R^d are projected on the d coordinate axes and d random unit directions
(drawn from the seed) and the largest E over the projections is the statistic: a sliced energy
distance (every difference of laws shows in some 1-D projection, Cramér–Wold), the maximum keeping the
power of a difference that lives in one coordinate (a fast variance off) instead of diluting it over
directions that do not see it. E carries the unit of the coordinates, so give them comparable scales:
a coordinate whose spread is tiny (a CV pinned by a lift or a restraint) weighs as little as its spread.
The p-value is a permutation one (:func:`scipy.stats.permutation_test`, labels reshuffled
``n_permutations`` times, the same maximum recomputed each time, p = (1 + #{T* ≥ T}) /
(1 + n_permutations)): exact in level whatever the law, so under equal laws P(p ≤ α) ≤ α. A test costs
O(N log N) to sort and O(N d) per relabelling.

Across a grid of K points, :func:`adjusted` controls the family-wise error (Holm 1979, valid under any
dependence) or the false discovery rate (Benjamini & Hochberg 1995, :func:`scipy.stats.false_discovery_control`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from ..errors import InputError
from ..seeding import SeedLike, as_seed_sequence
from ..validation import checked_count

CORRECTIONS = ("holm", "bh")


class TwoSampleResult(NamedTuple):
    """``statistic`` (the largest E over the projections), its permutation ``p_value``, the sample sizes
    ``n`` and ``m``."""

    statistic: float
    p_value: float
    n: int
    m: int


def _points(sample, name: str) -> np.ndarray:
    points = np.asarray(sample, dtype=float)
    points = points[:, None] if points.ndim == 1 else points
    if points.ndim != 2 or len(points) < 2:
        raise InputError(f"{name} must be at least 2 points, shape (n,) or (n, d); got shape {np.shape(sample)}")
    if not np.all(np.isfinite(points)):
        raise InputError(f"{name} holds non-finite values: a two-sample test needs finite points")
    return points


def two_sample_test(x, y, *, n_permutations: int = 199, seed: SeedLike) -> TwoSampleResult:
    """Test that ``x`` ``(n,)``/``(n, d)`` and ``y`` ``(m,)``/``(m, d)`` are drawn from the same law by the
    (sliced) energy distance with a permutation p-value (module doc); large statistics reject."""
    n_permutations = checked_count(n_permutations, "n_permutations", 19)
    x, y = _points(x, "x"), _points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise InputError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    dim = x.shape[1]
    rng = np.random.default_rng(as_seed_sequence(seed))
    directions = np.eye(dim)
    if dim > 1:
        random = rng.standard_normal((dim, dim))
        directions = np.vstack([directions, random / np.linalg.norm(random, axis=1, keepdims=True)])
    pooled = np.vstack([x, y]) @ directions.T  # (N, directions)
    order = np.argsort(pooled, axis=0, kind="stable")
    gaps = np.diff(np.take_along_axis(pooled, order, axis=0), axis=0)  # (N − 1, directions)
    n, m, total = len(x), len(y), len(pooled)

    def energy(first, second, axis=-1):
        # first, second: indices into the pooled sample, (..., n) and (..., m) — batches of relabellings
        first, second = np.atleast_2d(first), np.atleast_2d(second)
        weights = np.empty((first.shape[0], total))
        rows = np.arange(first.shape[0])[:, None]
        weights[rows, first], weights[rows, second] = 1 / n, -1 / m
        gap = np.cumsum(weights[:, order], axis=1)[:, :-1]  # (batch, N − 1, directions): F_x − F_y between points
        return 2 * np.einsum("bkd,kd->bd", gap**2, gaps).max(axis=1)

    result = stats.permutation_test((np.arange(n), np.arange(n, total)), energy, permutation_type="independent",
                                    vectorized=True, n_resamples=n_permutations, alternative="greater",
                                    batch=max(1, min(n_permutations, 2**22 // (total * directions.shape[0]))),
                                    random_state=rng)
    return TwoSampleResult(float(np.squeeze(result.statistic)), float(result.pvalue), n, m)


def z_test(estimate, truth, stderr) -> np.ndarray:
    """Two-sided p-values of z = (estimate − truth) / stderr, by the normal law (element-wise)."""
    z = (np.asarray(estimate, dtype=float) - np.asarray(truth, dtype=float)) / np.asarray(stderr, dtype=float)
    return 2 * stats.norm.sf(np.abs(z))


def adjusted(p_values, correction: str = "holm") -> np.ndarray:
    """p-values adjusted across a family: reject point k at level α when adjusted[k] ≤ α.

    ``holm``: p_(k) (K − k + 1), made monotone (family-wise error ≤ α under any dependence);
    ``bh``: Benjamini–Hochberg (false discovery rate ≤ α for independent or positively dependent tests)."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise InputError(f"p-values must be a 1-D array in [0, 1], got {p_values!r}")
    if correction == "bh":
        return stats.false_discovery_control(p, method="bh")
    if correction != "holm":
        raise InputError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    order = np.argsort(p, kind="stable")
    scaled = np.maximum.accumulate(p[order] * (p.size - np.arange(p.size)))
    out = np.empty_like(p)
    out[order] = np.minimum(scaled, 1.0)
    return out
