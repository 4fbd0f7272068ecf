"""Binless WHAM for umbrella sampling (Souaille & Roux 2001; Kumar et al. 1992 binned it).

Binned WHAM takes each window's bias as constant across a CV bin; with stiff springs a bin spans several
kT of bias and the PMF is wrong by kT at barriers, whatever the statistics. Binless WHAM keeps each
sample's own bias energies u_k(x_n): the window free energies solve the self-consistent equations of
:mod:`eqfree.reweight.solver` (Newton's method on their convex potential, from f = 0), the unbiased
weight of sample n is W_n ∝ 1/Σ_k N_k exp(f_k − u_k(x_n)), and the output bins only histogram these
weights — so the PMF does not depend on the bins but through their averaging, and agrees with MBAR
(same equations) to the solver's tolerance. Standard errors: the bootstrap of whole walkers
(:mod:`eqfree.reweight.uncertainty`), each resample solved from the full-data solution.

The columns may stand for several samples each (``multiplicity``, columns × walkers): umbrella samples
compressed into cells of (window, fine CV bin) (:mod:`eqfree.reweight.cells`), so that each resample's
multiplicities are one sparse product and the equations are solved on the cells, not on every sample.
"""

from __future__ import annotations

import numpy as np

from ..seeding import SeedLike
from .common import UmbrellaReweighting
from .solver import BinlessEquations


class WHAM(UmbrellaReweighting):
    """Binless WHAM estimator (:mod:`eqfree.base` convention); parameters and attributes are those of
    :class:`~eqfree.reweight.common.UmbrellaReweighting`, plus ``n_iterations_`` (Newton's). Bins without
    samples are left out of ``pmf_`` with a warning naming them; a bin present in fewer than two resamples
    gets an infinite ``pmf_stderr``."""

    def fit(self, reduced_bias, window, cv, groups=None, *, seed: SeedLike, multiplicity=None) -> WHAM:
        """Fit on ``reduced_bias`` (K, N) in kT, ``window`` (N,) labels, ``cv`` (N,) and ``groups`` (N,) walker
        labels (None: each window's samples are one series, in time order); ``seed`` (int or
        ``numpy.random.SeedSequence``) drives the bootstrap. ``multiplicity``, instead of ``groups``: a sparse
        matrix (N, units) of how many samples of each independent unit (walker, of one window) each column
        stands for (:func:`eqfree.reweight.cells.compress`); the bootstrap then resamples these units, and
        ``log_weights_`` and ``cv_`` are those of the columns."""
        self._fit(reduced_bias, window, cv, groups, seed, "WHAM", multiplicity)
        return self

    def _solve(self, u: np.ndarray, equations: BinlessEquations, multiplicity: np.ndarray
               ) -> tuple[np.ndarray, float, int]:
        f, residual, self.n_iterations_ = equations.solve(multiplicity, np.zeros(equations.n_windows),
                                                          tolerance=self.tolerance, max_iterations=self.max_iterations)
        return f, residual, self.n_iterations_
