"""Micro–macro consistency: restricting lifted states gives back the coarse state, R(L(z)) ≈ z.

For n states x_j = L(z)_j and errors e_j = ‖R(x_j) − z‖ (Euclidean over the CV components),

    mean_j e_j ≤ tolerance      and      max_j e_j ≤ sample_tolerance  (default 10 · tolerance).

The mean catches a biased lift, the per-sample bound a lift that is right on average but throws
single states far off. Exact lifts (constrained coordinates) meet both with tolerance ~ 1e-12;
learned lifts need their own, stated tolerances.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import InputError
from ..operators import Lift, Restrict
from ..seeding import SeedLike


class ConsistencyReport(NamedTuple):
    mean_error: float
    max_error: float
    n: int


def check_micro_macro_consistency(
    lift: Lift,
    restrict: Restrict,
    z,
    n: int = 100,
    *,
    seed: SeedLike,
    tolerance: float,
    sample_tolerance: float | None = None,
) -> ConsistencyReport:
    """Lift n states at ``z``, restrict them, and raise ``AssertionError`` (with the numbers) unless
    the mean and the largest error are within their tolerances (module doc); returns the errors."""
    z = np.atleast_1d(np.asarray(z, dtype=float))
    if z.ndim != 1 or not np.all(np.isfinite(z)):
        raise InputError(f"z must be a finite scalar or 1-D array, got {z!r}")
    if not tolerance >= 0:
        raise InputError(f"tolerance must be non-negative, got {tolerance}")
    sample_tolerance = 10 * tolerance if sample_tolerance is None else sample_tolerance
    valid = lift.valid_range
    if valid is not None and z.size == 1 and not valid[0] <= z[0] <= valid[1]:
        raise InputError(f"z = {z[0]:g} is outside the lift's valid range {tuple(valid)}; check inside it")
    x = np.asarray(lift(z, n, seed=seed), dtype=float)
    if x.ndim != 2 or x.shape[0] != n or not np.all(np.isfinite(x)):
        raise AssertionError(f"lift at z = {z.tolist()} returned shape {x.shape} (finite: {np.isfinite(x).all()}); "
                             f"expected {n} finite states of shape (n, dim)")
    restricted = np.asarray(restrict(x), dtype=float)
    if restricted.shape != (n, z.size):
        raise AssertionError(f"restriction of {n} lifted states has shape {restricted.shape}; expected ({n}, {z.size})")
    errors = np.linalg.norm(restricted - z, axis=1)
    report = ConsistencyReport(float(errors.mean()), float(errors.max()), n)
    if report.mean_error > tolerance or report.max_error > sample_tolerance:
        worst = int(errors.argmax())
        raise AssertionError(
            f"restrict∘lift is not consistent at z = {z.tolist()}: mean |R(L(z)) − z| = {report.mean_error:.3g} "
            f"(tolerance {tolerance:.3g}), largest {report.max_error:.3g} at sample {worst} "
            f"(per-sample tolerance {sample_tolerance:.3g}), over {n} samples"
        )
    return report
