"""The pytest plugin of eqfree (registered through the ``pytest11`` entry point): the ``eqfree_check``
fixture and the ``eqfree`` marker, so a user's test of their own operators is a few lines:

    @pytest.mark.eqfree(seed=7, alpha=0.01)
    def test_my_lift(eqfree_check):
        eqfree_check.lift(my_lift, my_evolve, "x1", np.linspace(-1, 1, 5), n_steps=200)

Each method runs the check of :mod:`eqfree.testing` with the marker's ``seed`` (default 0), ``alpha``
(default 0.05) and ``correction`` (default ``"holm"``), and fails the test with the per-point table when
the check rejects; it returns the :class:`~eqfree.testing.CheckReport`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .consistency import CheckReport, check_closure_pmf, check_lift, check_lifts_agree, check_markov


@dataclass(frozen=True)
class EqfreeCheck:
    """The checks, bound to a test's seed, level and correction."""

    seed: int = 0
    alpha: float = 0.05
    correction: str = "holm"

    def _options(self, **options) -> dict:
        return {"seed": self.seed, "alpha": self.alpha, "correction": self.correction, "assert_consistent": True,
                **options}

    def lift(self, lift, evolve, cv, grid, **options) -> CheckReport:
        """:func:`~eqfree.testing.check_lift`, asserting."""
        return check_lift(lift, evolve, cv, grid, **self._options(**options))

    def markov(self, lift, evolve, restrict, grid, **options) -> CheckReport:
        """:func:`~eqfree.testing.check_markov`, asserting."""
        return check_markov(lift, evolve, restrict, grid, **self._options(**options))

    def lifts_agree(self, lift, other, grid, **options) -> CheckReport:
        """:func:`~eqfree.testing.check_lifts_agree`, asserting."""
        return check_lifts_agree(lift, other, grid, **self._options(**options))

    def closure_pmf(self, closure, pmf, **options) -> CheckReport:
        """:func:`~eqfree.testing.check_closure_pmf`, asserting (no seed: it is a z-test)."""
        settings = self._options(**options)
        settings.pop("seed")
        return check_closure_pmf(closure, pmf, **settings)


def pytest_configure(config) -> None:
    """Declare the ``eqfree`` marker."""
    config.addinivalue_line("markers", "eqfree(seed=0, alpha=0.05, correction='holm'): settings of eqfree_check")


@pytest.fixture
def eqfree_check(request) -> EqfreeCheck:
    """The eqfree consistency checks, asserting, with the settings of the test's ``eqfree`` marker."""
    marker = request.node.get_closest_marker("eqfree")
    return EqfreeCheck(**(marker.kwargs if marker else {}))
