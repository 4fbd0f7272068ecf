"""Checks and property-test tools for users' own operators.

- :func:`check_micro_macro_consistency` — restriction undoes lifting: R(L(z)) ≈ z.
- :class:`~eqfree.systems.LinearGaussianLift` (re-exported) — an exact lift for systems whose fast
  variable given the slow one is Gaussian with a mean linear in z (``averaging_cubic``,
  ``fast_slow_linear``): a reference to test against.
- :mod:`eqfree.testing.strategies` — hypothesis strategies (CV values inside a lift's valid range,
  seeds, closure datasets); imported on its own, since hypothesis is a test dependency.
"""

from ..systems import LinearGaussianLift
from .consistency import ConsistencyReport, check_micro_macro_consistency

__all__ = ["ConsistencyReport", "LinearGaussianLift", "check_micro_macro_consistency"]
