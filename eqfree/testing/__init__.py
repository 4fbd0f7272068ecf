"""Checks and property-test tools for users' own operators.

- :func:`check_micro_macro_consistency` — restriction undoes lifting: R(L(z)) ≈ z.
- calibrated checks, each returning a :class:`CheckReport` (per-point statistics, p-values adjusted by
  Holm or Benjamini–Hochberg, the samples): :func:`check_lift` (the lift is at the conditional
  equilibrium), :func:`check_markov` (the CV is Markovian at τ), :func:`check_closure_pmf` (a closure's
  stationary density is exp(−βF)), :func:`check_lifts_agree` (two lifts give one law).
- :mod:`eqfree.testing.twosample` — the energy-distance permutation test and the p-value adjustments.
- :class:`~eqfree.systems.LinearGaussianLift` (re-exported) — an exact lift for systems whose fast
  variable given the slow one is Gaussian with a mean linear in z (``averaging_cubic``,
  ``fast_slow_linear``): a reference to test against.
- :mod:`eqfree.testing.strategies` — hypothesis strategies (CV values inside a lift's valid range,
  grids, seeds, perturbed lifts, closure datasets); imported on its own, since hypothesis is a test
  dependency. :mod:`eqfree.testing.plugin` — the pytest plugin (the ``eqfree_check`` fixture).
"""

from ..systems import LinearGaussianLift
from .consistency import (
    CheckReport,
    ConsistencyReport,
    check_closure_pmf,
    check_lift,
    check_lifts_agree,
    check_markov,
    check_micro_macro_consistency,
)
from .twosample import TwoSampleResult, adjusted, two_sample_test, z_test

__all__ = ["CheckReport", "ConsistencyReport", "LinearGaussianLift", "TwoSampleResult", "adjusted",
           "check_closure_pmf", "check_lift", "check_lifts_agree", "check_markov", "check_micro_macro_consistency",
           "two_sample_test", "z_test"]
