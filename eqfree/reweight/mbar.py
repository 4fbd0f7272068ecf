"""MBAR (Shirts & Chodera 2008) for umbrella sampling, through pymbar 4.

The window free energies solve the self-consistent equations

    f_i = −log Σ_n exp(−u_i(x_n)) / Σ_k N_k exp(f_k − u_k(x_n)),     f_0 = 0,

with pymbar's asymptotic (analytical) standard errors. The PMF is pymbar's ``FES`` histogram of the
unbiased state (reduced potential 0), F_b = −log Σ_{n∈b} W_n + log Δ_b, with analytical standard errors
of F_b − F_ref, ref the lowest bin (the bin width is added here: pymbar's bins carry probabilities).
Bins without samples are left out with a warning naming them: pymbar cannot estimate them.
Analytical errors assume uncorrelated samples: decorrelate the runs first
(:func:`eqfree.timeseries.decorrelate`).
"""

from __future__ import annotations

import numpy as np

from .._pymbar import import_pymbar
from ..errors import InputError
from .common import OVERLAP_THRESHOLD, UmbrellaReweighting, check_threshold, pmf_dataset


class MBAR(UmbrellaReweighting):
    """MBAR estimator (:mod:`eqfree.base` convention) through pymbar; see the module docstring.

    Parameters
    ----------
    bins : number of equal CV bins over the sampled range (one period [−P/2, P/2) when periodic),
        or an array of increasing edges (spanning one period when periodic, covering all samples otherwise).
    period : CV period (e.g. 2π) or None.
    tolerance, max_iterations : passed to ``pymbar.MBAR`` (its ``relative_tolerance``, ``maximum_iterations``).
    overlap_threshold : neighbouring windows with overlap below this raise a UserWarning.

    Attributes: those of :class:`~eqfree.reweight.common.UmbrellaReweighting`, plus ``mbar_``, the
    fitted ``pymbar.MBAR`` (its samples ordered by window; rebuilt from ``reduced_bias_`` and ``order_``
    by :func:`eqfree.base.load`). MBAR draws nothing at random: ``fit`` takes no seed.
    """

    def __init__(self, *, bins=100, period: float | None = None, tolerance: float = 1e-10,
                 max_iterations: int = 10_000, overlap_threshold: float = OVERLAP_THRESHOLD):
        self.bins = bins
        self.period = period
        self.tolerance = tolerance
        self.max_iterations = max_iterations
        self.overlap_threshold = overlap_threshold

    def fit(self, reduced_bias, window, cv) -> MBAR:
        """Fit on ``reduced_bias`` (K, N) in kT, ``window`` (N,) labels and ``cv`` (N,)."""
        pymbar = import_pymbar()
        threshold = check_threshold(self.overlap_threshold)
        u, window, cv, _, n_k, period, edges, sample_bin, counts, filled = self._histogram(reduced_bias, window, cv)
        centres = 0.5 * (edges[:-1] + edges[1:])

        order = np.argsort(window, kind="stable")  # pymbar's documented layout: samples grouped by state
        fes = pymbar.FES(u[:, order], n_k, mbar_options=self._mbar_options())
        fitted = fes.get_mbar()
        f = np.asarray(fitted.f_k, dtype=float)
        # samples are placed at their bin centres, so pymbar bins exactly as eqfree (wrapping included)
        fes.generate_fes(np.zeros(u.shape[1]), centres[sample_bin[order]], fes_type="histogram",
                         histogram_parameters={"bin_edges": [edges]})
        log_width = np.log(np.diff(edges)[filled])
        reference = np.argmin(fes.get_fes(centres[filled])["f_i"] + log_width)
        result = fes.get_fes(centres[filled], reference_point="from-specified",
                             fes_reference=centres[filled][reference], uncertainty_method="analytical")
        pmf = np.asarray(result["f_i"]) + log_width

        self.order_, self.reduced_bias_ = order, u
        self.f_ = f
        self.f_stderr_ = np.asarray(fitted.compute_free_energy_differences()["dDelta_f"][0], dtype=float)
        self.mbar_ = self._mbar(n_k)
        self.bin_edges_ = edges
        self.pmf_ = pmf_dataset(edges, filled, pmf - pmf[reference], np.asarray(result["df_i"]), counts,
                                estimator="MBAR", period=period)
        self._finish(u, n_k, f, cv, threshold)
        return self

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

    def _mbar(self, n_k: np.ndarray):
        """The ``pymbar.MBAR`` of the fitted samples, started at ``f_`` (so :func:`eqfree.base.load` rebuilds
        the same object that ``fit`` made)."""
        return import_pymbar().MBAR(self.reduced_bias_[:, self.order_], n_k, initial_f_k=self.f_,
                                    **self._mbar_options())

    def get_state(self) -> dict:
        return {k: v for k, v in super().get_state().items() if k != "mbar_"}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.mbar_ = self._mbar(self.n_samples_)
