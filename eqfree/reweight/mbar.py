"""MBAR (Shirts & Chodera 2008) for umbrella sampling, through pymbar 4.

The window free energies solve the self-consistent equations

    f_i = −log Σ_n exp(−u_i(x_n)) / Σ_k N_k exp(f_k − u_k(x_n)),     f_0 = 0,

solved by pymbar; the reached residual is that of :mod:`eqfree.reweight.solver`. The PMF histograms
the unbiased weights (:mod:`eqfree.reweight.common`). Standard errors: with a seed, the bootstrap of
whole walkers (:mod:`eqfree.reweight.uncertainty`, the default of ``eqfree umbrella`` and ``eqfree
reweight``); without one, pymbar's analytical (asymptotic) errors of the free energies of each bin's and
the reference region's restricted laws, which assume uncorrelated samples.
"""

from __future__ import annotations

import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from .._pymbar import import_pymbar
from ..errors import ConvergenceError, InputError
from ..seeding import SeedLike
from .common import UmbrellaReweighting
from .solver import CLOSE_ENOUGH, BinlessEquations


class MBAR(UmbrellaReweighting):
    """MBAR estimator (:mod:`eqfree.base` convention) through pymbar; parameters and attributes are those of
    :class:`~eqfree.reweight.common.UmbrellaReweighting` (``tolerance`` and ``max_iterations`` also go to
    ``pymbar.MBAR``), plus ``mbar_``, the fitted ``pymbar.MBAR`` (its samples ordered by window; rebuilt
    from ``reduced_bias_`` and ``order_`` by :func:`eqfree.base.load`)."""

    def fit(self, reduced_bias, window, cv, groups=None, *, seed: SeedLike | None = None) -> MBAR:
        """Fit on ``reduced_bias`` (K, N) in kT, ``window`` (N,) labels, ``cv`` (N,) and ``groups`` (N,) walker
        labels (None: each window's samples are one series, in time order). ``seed`` drives the bootstrap of
        the standard errors; None gives pymbar's analytical errors (uncorrelated samples assumed)."""
        self._fit(reduced_bias, window, cv, groups, seed, "MBAR")
        return self

    def _solve(self, u: np.ndarray, equations: BinlessEquations, multiplicity: np.ndarray
               ) -> tuple[np.ndarray, float, None]:
        self.reduced_bias_ = u
        self.order_ = np.argsort(equations.window, kind="stable")  # pymbar's layout: samples grouped by state
        n_k = equations.counts(np.ones(equations.window.size))
        solved = import_pymbar().MBAR(self.reduced_bias_[:, self.order_], n_k, **self._mbar_options())
        f = np.asarray(solved.f_k, dtype=float)
        f -= f[0]
        residual = equations.residual(f, np.ones(equations.window.size))
        if residual >= self.tolerance:
            message = f"pymbar's MBAR reached a residual of {residual:.3g} kT, above the tolerance {self.tolerance:g}"
            if residual > CLOSE_ENOUGH * self.tolerance:
                raise ConvergenceError(f"{message}: raise max_iterations or tolerance, or check that "
                                       "neighbouring windows overlap")
            warnings.warn(f"{message} (by less than {CLOSE_ENOUGH:g}x): the result is kept", UserWarning,
                          stacklevel=5)  # _solve <- _fit_serial <- _fit <- fit <- the caller
        self.mbar_ = self._mbar(n_k, f)
        return f, residual, None  # pymbar does not report its iterations

    def _analytical(self, f, sample_bin, filled, region, log_width):
        """pymbar's errors of f and of F_b − F_R: the unbiased law restricted to each bin and to R as states."""
        bins = np.flatnonzero(filled)
        inside = np.vstack([sample_bin[None, :] == bins[:, None], np.isin(sample_bin, bins[region])[None, :]])
        result = self.mbar_.compute_perturbed_free_energies(np.where(inside[:, self.order_], 0.0, np.inf))
        f_stderr = np.asarray(self.mbar_.compute_free_energy_differences()["dDelta_f"][0], dtype=float)
        return f_stderr, np.asarray(result["dDelta_f"][-1, :-1], dtype=float)

    def free_energy_difference(self, in_a, in_b) -> tuple[float, float]:
        """ΔF = F_b − F_a = −log(P_b/P_a) in kT between two sets of states of the unbiased law (e.g. two
        basins), given as boolean masks over the pooled samples in ``fit`` order, with pymbar's analytical
        standard error: the free energies of the unbiased law restricted to each set (reduced potential 0
        inside, +∞ outside) as perturbed states."""
        self.check_fitted()
        masks = np.array([np.asarray(in_a, bool), np.asarray(in_b, bool)])
        if masks.shape != (2, self.cv_.size):
            raise InputError(f"give one boolean per pooled sample ({self.cv_.size}) for each set, "
                             f"got {masks.shape[1:]}")
        if not masks.any(axis=1).all():
            raise InputError("each set must hold at least one sample: its probability cannot be estimated otherwise")
        result = self.mbar_.compute_perturbed_free_energies(np.where(masks[:, self.order_], 0.0, np.inf))
        return float(result["Delta_f"][0, 1]), float(result["dDelta_f"][0, 1])

    def _mbar_options(self) -> dict:
        return {"relative_tolerance": self.tolerance, "maximum_iterations": self.max_iterations}

    def get_state(self) -> dict:
        """The fitted state without ``mbar_`` (the ``pymbar.MBAR`` object, rebuilt on load)."""
        return {k: v for k, v in super().get_state().items() if k != "mbar_"}

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_state` and rebuild ``mbar_`` at the saved free energies ``f_``."""
        super().set_state(state)
        self.mbar_ = self._mbar(self.n_samples_, self.f_)

    def _mbar(self, n_k: np.ndarray, f: np.ndarray):
        """The ``pymbar.MBAR`` of the fitted samples started at ``f``, built on one BLAS thread wherever it is
        called (pymbar iterates from ``f``; a different thread count rounds its sums differently), so that
        :meth:`set_state` and :func:`eqfree.base.load` rebuild bit for bit the object that ``fit`` made."""
        with threadpool_limits(1, user_api="blas"):
            return import_pymbar().MBAR(self.reduced_bias_[:, self.order_], np.asarray(n_k, dtype=float),
                                        initial_f_k=f, **self._mbar_options())
