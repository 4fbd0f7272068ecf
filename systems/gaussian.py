"""An exact lift for slow–fast systems with a linear-Gaussian conditional law.

For fine states x = (x_slow, x_fast) with x_fast | x_slow = z ~ N(a + b z, v):

    L(z, n) = [(z, a + b z + √v ξ_j)]_{j < n},   ξ_j ~ N(0, 1).

``averaging_cubic`` in its fast limit is (a, b, v) = (0, 1, s²); ``fast_slow_linear`` is
(1, 0, a4²/(2 a3)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqfree.errors import InputError
from eqfree.seeding import SeedLike, as_seed_sequence


@dataclass(frozen=True)
class LinearGaussianLift:
    """The :class:`~eqfree.Lift` x_slow = z, x_fast ~ N(intercept + slope z, variance) (module doc)."""

    intercept: float
    slope: float
    variance: float
    valid_range: tuple[float, float] | None = None

    def __post_init__(self):
        if not (np.isfinite(self.variance) and self.variance >= 0):
            raise InputError(f"variance must be finite and non-negative, got {self.variance}")

    def __call__(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        z = np.asarray(z, dtype=float).reshape(-1)
        if z.shape != (1,):
            raise InputError(f"LinearGaussianLift lifts one slow coordinate; got z of shape {z.shape}")
        rng = np.random.default_rng(as_seed_sequence(seed))
        fast = self.intercept + self.slope * z[0] + np.sqrt(self.variance) * rng.standard_normal(n)
        return np.column_stack([np.full(n, z[0]), fast])
