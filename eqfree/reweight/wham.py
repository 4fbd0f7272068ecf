"""Binned WHAM (Kumar et al. 1992) for umbrella sampling.

With M_b pooled samples in CV bin b, N_k samples drawn in window k and c_kb = ⟨exp(−u_k(x))⟩ the
window's bias factor averaged over the samples in bin b (the bin-centre value as bins shrink), WHAM
solves

    P_b = M_b / Σ_k N_k exp(f_k) c_kb,      exp(−f_k) = Σ_b P_b c_kb,      Σ_b P_b = 1,

by self-consistent iteration in log space (f_0 = 0) until max_k |Δf_k| < ``tolerance``. The PMF is
−log(P_b/Δ_b), shifted to zero at its minimum. Standard errors are the spread over ``n_bootstrap``
replicates that resample whole groups (walkers; a group is a (window, group) pair) with replacement
within each window; each replicate starts from the full-data solution.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ..errors import ConvergenceError, InputError
from ..seeding import SeedLike, as_seed_sequence
from ..validation import checked_count
from .common import OVERLAP_THRESHOLD, UmbrellaReweighting, check_threshold, pmf_dataset


class WHAM(UmbrellaReweighting):
    """Binned WHAM estimator (:mod:`eqfree.base` convention); see the module docstring for the equations.

    Parameters
    ----------
    bins : number of equal CV bins over the sampled range (one period [−P/2, P/2) when periodic),
        or an array of increasing edges (spanning one period when periodic, covering all samples otherwise).
    tolerance : convergence threshold on max_k |Δf_k| between iterations, in kT.
    max_iterations : iterations before :class:`ConvergenceError` is raised.
    n_bootstrap : bootstrap replicates (at least 2) for the standard errors.
    period : CV period (e.g. 2π) or None.
    overlap_threshold : neighbouring windows with overlap below this raise a UserWarning.

    Attributes: those of :class:`~eqfree.reweight.common.UmbrellaReweighting`, plus ``n_iterations_``.
    Bins without samples are left out of ``pmf_`` with a warning naming them; a bin that is empty in
    all but one bootstrap replicate gets an infinite ``pmf_stderr``.
    """

    def __init__(self, *, bins=100, tolerance: float = 1e-10, max_iterations: int = 100_000, n_bootstrap: int = 100,
                 period: float | None = None, overlap_threshold: float = OVERLAP_THRESHOLD):
        self.bins = bins
        self.tolerance = tolerance
        self.max_iterations = max_iterations
        self.n_bootstrap = n_bootstrap
        self.period = period
        self.overlap_threshold = overlap_threshold

    def fit(self, reduced_bias, window, cv, groups=None, *, seed: SeedLike) -> WHAM:
        """Fit on ``reduced_bias`` (K, N) in kT, ``window`` (N,) labels, ``cv`` (N,) and optional ``groups`` (N,);
        ``seed`` (int or ``numpy.random.SeedSequence``) drives the bootstrap."""
        threshold = check_threshold(self.overlap_threshold)
        checked_count(self.n_bootstrap, "n_bootstrap (for the standard errors)", 2)
        checked_count(self.max_iterations, "max_iterations")
        if not self.tolerance > 0:
            raise InputError(f"tolerance must be positive, got {self.tolerance!r}")
        rng = np.random.default_rng(as_seed_sequence(seed))
        u, window, cv, groups, n_k, period, edges, sample_bin, counts, filled = self._histogram(
            reduced_bias, window, cv, groups)
        histogram = _BinnedBias(u, window, (np.cumsum(filled) - 1)[sample_bin])
        log_width = np.log(np.diff(edges)[filled])

        f, log_p, self.n_iterations_ = self._solve(histogram.inputs(np.ones(u.shape[1])), np.zeros(u.shape[0]))
        pmf = log_width - log_p
        reference = np.argmin(pmf)

        unit = np.unique(np.stack([window, groups]), axis=1, return_inverse=True)[1].ravel()
        replicate_f = np.empty((self.n_bootstrap, f.size))
        replicate_pmf = np.full((self.n_bootstrap, pmf.size), np.inf)
        for r in range(self.n_bootstrap):
            inputs = histogram.inputs(_resample_units(unit, window, rng))
            replicate_f[r], log_p_r, _ = self._solve(inputs, f)
            present = inputs[3]
            replicate_pmf[r, present] = log_width[present] - log_p_r
        stderr = _spread_about(replicate_pmf, reference)

        self.f_ = f
        self.f_stderr_ = replicate_f.std(axis=0, ddof=1)
        self.bin_edges_ = edges
        self.pmf_ = pmf_dataset(edges, filled, pmf - pmf[reference], stderr, counts, estimator="WHAM", period=period)
        self._finish(u, n_k, f, cv, threshold)
        return self

    def _solve(self, inputs, f):
        """Self-consistent WHAM iteration from ``f``: (f, normalized log P_b of the present bins, iterations).

        Logs are carried throughout; the two sums over windows and bins are matrix products of
        exp(log N_k + log c_kb − max_k) and exp(log c_kb − max_b), fixed per fit, with exp(f − max f)
        and exp(log P − max log P), so every sum has a term of order one unless free energies span ~700 kT.
        """
        n_k, m_b, log_c, _ = inputs
        log_m = np.log(m_b)
        by_bin = np.log(n_k)[:, None] + log_c
        bin_shift = by_bin.max(axis=0)
        to_bins = np.exp(by_bin - bin_shift).T  # (B, K)
        window_shift = log_c.max(axis=1)
        to_windows = np.exp(log_c - window_shift[:, None])  # (K, B)
        for iteration in range(1, self.max_iterations + 1):
            log_p = log_m - bin_shift - _log_product(to_bins, f)
            new = -window_shift - _log_product(to_windows, log_p)
            new -= new[0]
            change = np.max(np.abs(new - f))
            f = new
            if change < self.tolerance:
                log_p = log_m - bin_shift - _log_product(to_bins, f)
                return f, log_p - logsumexp(log_p), iteration
        raise ConvergenceError(
            f"WHAM did not converge in {self.max_iterations} iterations (last max |Δf| = {change:.3g} kT, "
            f"tolerance {self.tolerance}): raise max_iterations or tolerance, "
            "or check that neighbouring windows overlap"
        )


def _log_product(matrix: np.ndarray, log_x: np.ndarray) -> np.ndarray:
    """log(matrix @ exp(log_x)) for a non-negative ``matrix``, stabilized by max(log_x)."""
    peak = log_x.max()
    sums = matrix @ np.exp(log_x - peak)
    if not (sums > 0).all():
        raise InputError("WHAM sums underflowed: the free energies span more than floating point can hold; "
                         "restrict the CV range or the bias strengths")
    return peak + np.log(sums)


class _BinnedBias:
    """Histogram sums of the pooled samples for WHAM, for any sample multiplicities (bootstrap)."""

    def __init__(self, u: np.ndarray, window: np.ndarray, bins: np.ndarray):
        self.order = np.argsort(bins, kind="stable")
        self.bins = bins[self.order]
        self.starts = np.flatnonzero(np.r_[True, np.diff(self.bins) > 0])
        self.minus_u = -u[:, self.order]
        self.window = window
        self.n_windows = u.shape[0]

    def inputs(self, multiplicity: np.ndarray):
        """(N_k, M_b, log c_kb, present) over the bins ``present`` that hold samples of nonzero multiplicity."""
        m = multiplicity[self.order]
        n_k = np.bincount(self.window, weights=multiplicity, minlength=self.n_windows)
        m_b = np.add.reduceat(m, self.starts)
        present = m_b > 0
        minus_u = np.where(m > 0, self.minus_u, -np.inf)
        peak = np.where(present, np.maximum.reduceat(minus_u, self.starts, axis=1), 0.0)
        sums = np.add.reduceat(m * np.exp(minus_u - peak[:, self.bins]), self.starts, axis=1)
        log_c = peak[:, present] + np.log(sums[:, present]) - np.log(m_b[present])
        return n_k, m_b[present], log_c, present


def _spread_about(replicates: np.ndarray, reference: int) -> np.ndarray:
    """Standard deviation over replicates of PMF_b − PMF_reference.

    A bin empty in a replicate (infinite PMF there) is left out of that bin's spread; a bin finite in
    fewer than two replicates gets an infinite standard error.
    """
    at_reference = replicates[:, [reference]]
    finite = np.isfinite(replicates) & np.isfinite(at_reference)
    relative = np.where(finite, replicates - np.where(np.isfinite(at_reference), at_reference, 0.0), 0.0)
    n = finite.sum(axis=0)
    squares = np.where(finite, relative - relative.sum(axis=0) / np.maximum(n, 1), 0.0) ** 2
    return np.where(n >= 2, np.sqrt(squares.sum(axis=0) / np.maximum(n - 1, 1)), np.inf)


def _resample_units(unit: np.ndarray, window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample multiplicities after drawing, in each window, as many units as it has, with replacement."""
    n_units = unit.max() + 1
    unit_window = np.zeros(n_units, dtype=np.int64)
    unit_window[unit] = window
    order = np.argsort(unit_window, kind="stable")  # units grouped by window
    size = np.bincount(unit_window)
    offset = np.r_[0, np.cumsum(size)[:-1]]
    owner = unit_window[order]
    drawn = order[offset[owner] + np.floor(rng.random(n_units) * size[owner]).astype(np.int64)]
    return np.bincount(drawn, minlength=n_units)[unit].astype(float)
