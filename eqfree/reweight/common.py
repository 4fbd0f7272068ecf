"""What WHAM and MBAR share: umbrella data checks, histogram bins, sample weights, overlap, PMF, bootstrap.

K windows, N pooled samples; u_k(x_n) the reduced bias of sample n in window k's bias, N_k the
number of samples drawn in window k and f_k the window free energies. Given f, the weight of
sample n in state i (MBAR eq. 9) and its unbiased weight are

    W_ni = exp(f_i − u_i(x_n)) / D_n,     W_n = (1/D_n) / Σ_m (1/D_m),     D_n = Σ_k N_k exp(f_k − u_k(x_n)),

and the overlap matrix O_ij = N_j Σ_n W_ni W_nj (Shirts & Chodera 2008) is the chance that a sample
drawn in window i is seen as drawn in window j; its rows sum to Σ_n W_ni, which is 1 at the solution
(a residual is divided out). Neighbours are windows adjacent along ξ (sorted by their mean CV, across
the cut when periodic), not by index.

The PMF on bins b of width Δ_b is F_b = −log(Σ_{n∈b} W_n / Δ_b), reported as F_b − F_R with F_R =
−log(P_R / L_R) the free energy density of the reference region R, the bins within ``reference_range`` kT
of the lowest (chosen on the full data and kept for every resample); its standard errors are those of
the differences F_b − F_R over the resamples (:mod:`eqfree.reweight.uncertainty`).

Columns may stand for m_n samples each (a ``multiplicity``, columns × walkers: cells of compressed samples,
:mod:`eqfree.reweight.cells`): every sum over n above is then weighted by m_n, and the bootstrap draws whole
walkers and sums their columns' counts.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr
from scipy import sparse
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

from ..base import Estimator
from ..errors import InputError
from ..periodic import check_period, wrapped_difference
from ..seeding import SeedLike, as_seed_sequence
from ..validation import checked_count
from .solver import BinlessEquations
from .uncertainty import MIN_WALKERS, resample, resampling_units, spread, unit_draws

#: neighbouring windows whose overlap O_{k,k+1} or O_{k+1,k} falls below this are reported
OVERLAP_THRESHOLD = 0.03


def check_umbrella_data(reduced_bias, window, cv, groups=None):
    """Checked float64 ``(K, N)`` biases, int windows, float CVs, int groups (or None) and N_k."""
    u = np.asarray(reduced_bias, dtype=float)
    if u.ndim != 2 or u.shape[0] < 2 or u.shape[1] < 1:
        raise InputError(f"reduced_bias must have shape (windows, samples) with at least 2 windows, got {u.shape}")
    n_windows, n_samples = u.shape
    if not np.isfinite(u).all():
        bad = np.unique(np.nonzero(~np.isfinite(u))[1])
        raise InputError(f"reduced_bias has non-finite values for samples {bad[:10].tolist()}: drop or repair them")
    window = _as_labels(window, "window", n_samples)
    if window.min() < 0 or window.max() >= n_windows:
        raise InputError(f"window labels must lie in [0, {n_windows}) to index the rows of reduced_bias, "
                         f"got values in [{window.min()}, {window.max()}]")
    n_k = np.bincount(window, minlength=n_windows)
    if (n_k == 0).any():
        raise InputError(f"windows {np.flatnonzero(n_k == 0).tolist()} have no samples: "
                         "drop their rows from reduced_bias and renumber the windows")
    cv = np.asarray(cv, dtype=float)
    if cv.shape != (n_samples,):
        raise InputError(f"cv must have shape ({n_samples},), one value per sample, got {cv.shape}")
    if not np.isfinite(cv).all():
        raise InputError(f"cv has non-finite values at samples {np.flatnonzero(~np.isfinite(cv))[:10].tolist()}")
    groups = None if groups is None else _as_labels(groups, "groups", n_samples)
    return u, window, cv, groups, n_k


def _as_labels(labels, name: str, n_samples: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n_samples,):
        raise InputError(f"{name} must have shape ({n_samples},), one label per sample, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{name} must hold integers, got dtype {labels.dtype}")
    return labels.astype(np.int64)


def check_multiplicity(multiplicity, window: np.ndarray) -> tuple[sparse.csr_matrix, np.ndarray]:
    """(``multiplicity`` as a CSR matrix (columns, units) of non-negative sample counts, the window of each unit).

    Every column must count at least one sample, every unit must hold samples, all in one window.
    """
    if not sparse.issparse(multiplicity) or multiplicity.ndim != 2 or multiplicity.shape[0] != window.size:
        raise InputError(f"multiplicity must be a sparse matrix (columns = {window.size}, units), got "
                         f"{type(multiplicity).__name__} of shape {np.shape(multiplicity)}")
    counts = sparse.csc_matrix(multiplicity, dtype=float)
    counts.eliminate_zeros()
    if counts.nnz and not (np.isfinite(counts.data).all() and counts.data.min() > 0):
        raise InputError("multiplicity must hold finite, non-negative sample counts")
    per_unit = np.diff(counts.indptr)
    if (per_unit == 0).any() or (np.asarray(counts.sum(axis=1)).ravel() <= 0).any():
        raise InputError("every unit (column of multiplicity) and every column of reduced_bias must hold samples")
    owner = window[counts.indices]
    unit_window = owner[counts.indptr[:-1]]
    if (owner != np.repeat(unit_window, per_unit)).any():
        raise InputError("each unit (walker) of multiplicity must hold samples of a single window")
    return counts.tocsr(), unit_window


def walker_units(unit_window: np.ndarray, min_walkers: int = MIN_WALKERS) -> str:
    """The sentence of a bootstrap of whole walkers given as units (``unit_window``: the window of each); refused
    where a window holds fewer than ``min_walkers`` (their series are needed to cut them into blocks)."""
    per_window = np.bincount(unit_window)
    if per_window.min() < min_walkers:
        raise InputError(f"a window holds {per_window.min()} walkers, fewer than {min_walkers} for a bootstrap of "
                         "whole walkers: fit the samples uncompressed (without multiplicity), so that their series "
                         "can be cut into blocks")
    return f"bootstrap of whole walkers (independent units), {per_window.min()} to {per_window.max()} per window"


def histogram_edges(bins, cv: np.ndarray, period: float | None) -> np.ndarray:
    """Bin edges: ``bins`` equal bins over the CV range (one period [−P/2, P/2) when periodic), or given edges.

    Given edges must increase, and span exactly one period when periodic, or cover every sample.
    """
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise InputError(f"bins must be a positive number of bins or an array of edges, got {bins}")
        low, high = (-period / 2, period / 2) if period is not None else (cv.min(), cv.max())
        if not high > low:
            raise InputError("all samples share one CV value: no histogram can be built")
        return np.linspace(low, high, int(bins) + 1)
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.isfinite(edges).all() or not (np.diff(edges) > 0).all():
        raise InputError("bins must be a positive int or a 1-D array of at least 2 finite, strictly increasing edges")
    if period is not None:
        if not math.isclose(edges[-1] - edges[0], period, rel_tol=1e-9):
            raise InputError(f"periodic bins must span exactly one period {period}, "
                             f"got edges from {edges[0]} to {edges[-1]}")
    elif cv.min() < edges[0] or cv.max() > edges[-1]:
        raise InputError(f"bins cover [{edges[0]}, {edges[-1]}] but the CV ranges over [{cv.min()}, {cv.max()}]: "
                         "widen the edges or pass a number of bins")
    return edges


def bin_index(cv: np.ndarray, edges: np.ndarray, period: float | None) -> np.ndarray:
    """Bin of each sample (the last bin closed on the right; periodic CVs wrapped onto the edges' period)."""
    if period is not None:
        cv = edges[0] + np.mod(cv - edges[0], period)
    return np.clip(np.searchsorted(edges, cv, side="right") - 1, 0, edges.size - 2)


def log_denominator(u: np.ndarray, n_k: np.ndarray, f: np.ndarray) -> np.ndarray:
    """log D_n = log Σ_k N_k exp(f_k − u_k(x_n)), shape ``(N,)``."""
    return logsumexp(np.log(n_k)[:, None] + f[:, None] - u, axis=0)


def log_unbiased_weights(u: np.ndarray, n_k: np.ndarray, f: np.ndarray, multiplicity=None) -> np.ndarray:
    """log W_n of the unbiased law (columns of ``multiplicity`` m_n: log m_n added), normalized so that Σ_n W_n = 1."""
    minus = -log_denominator(u, n_k, f)
    if multiplicity is not None:
        minus += np.log(multiplicity)
    return minus - logsumexp(minus)


def overlap_matrix(u: np.ndarray, n_k: np.ndarray, f: np.ndarray, multiplicity=None) -> np.ndarray:
    """O_ij = N_j Σ_n m_n W_ni W_nj (m_n = 1 unless a ``multiplicity`` is given), rows divided by Σ_n m_n W_ni so
    that they sum to 1."""
    w = np.exp(f[:, None] - u - log_denominator(u, n_k, f))
    counted = w if multiplicity is None else w * multiplicity
    overlap = (counted @ w.T) * n_k[None, :]
    return overlap / counted.sum(axis=1, keepdims=True)


def neighbour_pairs(window: np.ndarray, cv: np.ndarray, period: float | None, multiplicity=None) -> np.ndarray:
    """Pairs (i, j) of windows next to each other along the CV, shape ``(pairs, 2)``.

    Windows are sorted by the mean CV of their samples (the circular mean when periodic; columns counted with
    their ``multiplicity``); when periodic the
    last and the first are neighbours too, unless the gap between them across the cut exceeds twice the
    median gap (windows covering an arc, not the circle).
    """
    n_windows = window.max() + 1
    m = np.ones(cv.size) if multiplicity is None else multiplicity
    if period is None:
        position = np.bincount(window, weights=m * cv) / np.bincount(window, weights=m)
    else:
        angle = 2 * np.pi * cv / period
        position = np.arctan2(np.bincount(window, m * np.sin(angle)), np.bincount(window, m * np.cos(angle)))
        position = position * period / (2 * np.pi)
    order = np.argsort(position, kind="stable")
    pairs = np.stack([order[:-1], order[1:]], axis=1)
    if period is not None and n_windows > 2:
        gaps = np.diff(position[order])
        across = position[order[0]] + period - position[order[-1]]
        if across <= 2 * np.median(gaps):
            pairs = np.concatenate([pairs, [[order[-1], order[0]]]])
    return pairs


def warn_low_overlap(overlap: np.ndarray, pairs: np.ndarray, threshold: float) -> None:
    """UserWarning naming the neighbouring windows (i, j) with min(O_ij, O_ji) < threshold."""
    neighbours = np.minimum(overlap[pairs[:, 0], pairs[:, 1]], overlap[pairs[:, 1], pairs[:, 0]])
    low = np.flatnonzero(neighbours < threshold)
    if low.size:
        gaps = ", ".join(f"({min(pairs[k])}, {max(pairs[k])}): {neighbours[k]:.3g}" for k in low)
        warnings.warn(f"low overlap between neighbouring windows {gaps} (threshold {threshold}); free energies "
                      "across these gaps are unreliable: add windows between them or lengthen the runs",
                      UserWarning, stacklevel=5)  # warn_low_overlap <- _fit_serial <- _fit <- fit <- the caller


def check_threshold(threshold) -> float:
    """``overlap_threshold`` as a float, refused unless in [0, 1)."""
    if not (isinstance(threshold, (int, float, np.number)) and 0 <= threshold < 1):
        raise InputError(f"overlap_threshold must lie in [0, 1), got {threshold!r}")
    return float(threshold)


def drop_empty_bins(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Boolean mask of bins holding samples; a UserWarning names the empty bins left out of the PMF."""
    filled = counts > 0
    if not filled.all():
        empty = ", ".join(f"[{edges[b]:.4g}, {edges[b + 1]:.4g})" for b in np.flatnonzero(~filled)[:10])
        more = " ..." if (~filled).sum() > 10 else ""
        warnings.warn(f"{(~filled).sum()} histogram bins hold no samples and are left out of the PMF: {empty}{more}; "
                      "use fewer bins or sample the gaps", UserWarning, stacklevel=5)  # <- _fit_serial <- _fit <- fit
    return filled


def warn_wide_bins(edges: np.ndarray, window: np.ndarray, cv: np.ndarray, period: float | None,
                   multiplicity: np.ndarray) -> None:
    """UserWarning when the widest bin exceeds the median spread (standard deviation of the CV, columns counted
    with their ``multiplicity``) of the windows: the springs resolve the PMF on that scale, and a wider bin
    averages it away."""
    spread = []
    for k in range(window.max() + 1):
        values, m = cv[window == k], multiplicity[window == k]
        offset = wrapped_difference(values, values[0], period)
        spread.append(np.sqrt(np.average((offset - np.average(offset, weights=m)) ** 2, weights=m)))
    resolved = float(np.median(spread))
    if np.diff(edges).max() > resolved > 0:
        span = period if period is not None else edges[-1] - edges[0]
        warnings.warn(f"bins of width up to {np.diff(edges).max():.3g} are wider than the windows resolve (median CV "
                      f"spread {resolved:.3g} per window): the PMF is averaged over each bin; use at least "
                      f"{math.ceil(span / resolved)} bins to see its structure", UserWarning, stacklevel=5)


def bin_free_energy(log_w: np.ndarray, sample_bin: np.ndarray, log_width: np.ndarray) -> np.ndarray:
    """F_b = −log(Σ_{n∈b} W_n / Δ_b) from sample log weights (+∞ for a bin without weight)."""
    peak = log_w.max()
    mass = np.bincount(sample_bin, weights=np.exp(log_w - peak), minlength=log_width.size)
    with np.errstate(divide="ignore"):
        return log_width - peak - np.log(mass)


def reference_region(free: np.ndarray, within: float) -> np.ndarray:
    """Bins whose free energy lies within ``within`` kT of the lowest: the region the PMF is zeroed on."""
    return free <= free.min() + within


def relative_to(free: np.ndarray, region: np.ndarray, log_width: np.ndarray) -> np.ndarray:
    """F_b − F_R, F_R = −log(P_R / L_R) the free energy density of the region R (probability P_R, length L_R)."""
    inside = np.isfinite(free) & region
    f_region = -(logsumexp(log_width[inside] - free[inside]) - logsumexp(log_width[region]))
    return free - f_region


def pmf_dataset(edges, filled, pmf, stderr, counts, region, *, attrs: dict, period: float | None) -> xr.Dataset:
    """The PMF on the centres of the filled bins, with standard errors, counts and the reference region."""
    centres = 0.5 * (edges[:-1] + edges[1:])[filled]
    cv_attrs = {"long_name": "collective variable (bin centre)"}
    if period is not None:
        cv_attrs["period"] = period
    return xr.Dataset(
        {
            "pmf": ("cv", pmf, {"units": "kT", "long_name": "potential of mean force, relative to the reference "
                                                            "region's free energy density"}),
            "pmf_stderr": ("cv", stderr, {"units": "kT",
                                          "long_name": "standard error of the PMF difference to the reference region"}),
            "counts": ("cv", counts[filled], {"long_name": "samples per bin"}),
            "reference": ("cv", region, {"long_name": "bins of the reference region (within reference_range kT "
                                                      "of the lowest bin)"}),
        },
        coords={"cv": ("cv", centres, cv_attrs),
                "bin_width": ("cv", np.diff(edges)[filled], {"long_name": "bin width"})},
        attrs=attrs,
    )


class UmbrellaReweighting(Estimator):
    """What WHAM and MBAR share: the fit around the window free energies, the bootstrap, the PMF, the overlap.

    The parameters are those of both :class:`~eqfree.reweight.WHAM` and :class:`~eqfree.reweight.MBAR`;
    the attributes are set by ``fit``.

    Parameters
    ----------
    bins : int or array_like
        Number of equal CV bins over the sampled range (one period [−P/2, P/2) when periodic), or an array
        of increasing edges (spanning one period when periodic, covering all samples otherwise).
    period : float or None
        CV period (e.g. 2π), or None for a non-periodic CV.
    tolerance : float
        Convergence threshold on the residual max_k |Δf_k| of the self-consistent equations, in kT.
    max_iterations : int
        Iterations of the solver; missing ``tolerance`` by up to 100× warns and keeps the result, by more
        raises :class:`~eqfree.errors.ConvergenceError`.
    n_bootstrap : int
        Resamples (at least 2) for the standard errors (:mod:`eqfree.reweight.uncertainty`).
    reference_range : float
        The PMF is zero at the free energy density of the bins within this many kT of the lowest (a region,
        not a single bin, so its own error is small); errors are of differences to it.
    overlap_threshold : float
        Neighbouring windows (by CV) with overlap below this raise a UserWarning.

    Attributes
    ----------
    f_ : ndarray, shape (K,)
        Window free energies in kT, f_0 = 0.
    f_stderr_ : ndarray, shape (K,)
        Their standard errors, kT.
    n_samples_ : ndarray, shape (K,)
        N_k, the samples per window.
    log_weights_ : ndarray, shape (N,)
        log W_n of the unbiased law, Σ W_n = 1, of the columns given to ``fit`` (a cell of samples with a
        ``multiplicity`` weighs m_n times one of its samples).
    overlap_ : ndarray, shape (K, K)
        Overlap matrix O.
    neighbours_ : ndarray, shape (pairs, 2)
        Windows adjacent along ξ.
    pmf_ : xarray.Dataset
        pmf, pmf_stderr, counts, reference on cv; attrs: estimator, uncertainty, residual, tolerance,
        reference_range, and n_iterations for WHAM (and, on compressed samples, the compression's
        fine_bin_width, n_cells, compression_bound: :mod:`eqfree.reweight.cells`).
    cv_ : ndarray, shape (N,)
        The CV of each column (pooled sample, or a cell's mean CV).
    bin_edges_ : ndarray
        The histogram edges.
    residual_ : float
        The reached residual in kT.
    uncertainty_ : str
        A sentence saying how the standard errors were obtained.
    """

    period: float | None

    def __init__(self, *, bins=100, period: float | None = None, tolerance: float = 1e-10,
                 max_iterations: int = 1000, n_bootstrap: int = 100, reference_range: float = 1.0,
                 overlap_threshold: float = OVERLAP_THRESHOLD):
        self.bins = bins
        self.period = period
        self.tolerance = tolerance
        self.max_iterations = max_iterations
        self.n_bootstrap = n_bootstrap
        self.reference_range = reference_range
        self.overlap_threshold = overlap_threshold

    def get_state(self) -> dict:
        """The fitted state (:meth:`~eqfree.base.Estimator.get_state`), ``pmf_`` as a plain dict of arrays."""
        state = super().get_state()
        return {**state, "pmf_": state["pmf_"].to_dict(data="array")}

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`get_state`, ``pmf_`` rebuilt as an :class:`xarray.Dataset`."""
        super().set_state({**state, "pmf_": xr.Dataset.from_dict(state["pmf_"])})

    def _solve(self, u: np.ndarray, equations: BinlessEquations, multiplicity: np.ndarray
               ) -> tuple[np.ndarray, float, int | None]:
        """(window free energies of the full data with column ``multiplicity``, reached residual, iterations if
        known): each estimator's solver."""
        raise NotImplementedError

    def _analytical(self, f: np.ndarray, sample_bin: np.ndarray, filled: np.ndarray, region: np.ndarray,
                    log_width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(f standard errors, PMF standard errors) without resampling, where the estimator has them."""
        raise InputError(f"{type(self).__name__}'s standard errors come from the bootstrap: pass a seed")

    def _fit(self, reduced_bias, window, cv, groups, seed: SeedLike | None, estimator: str, multiplicity=None):
        """Fit (see the class docstring). The solver's products are (K, N) by (N, K) with K small: BLAS runs them
        on one thread, ~10x faster than two on a loaded machine (measured on 2 shared cores)."""
        with threadpool_limits(1, user_api="blas"):
            self._fit_serial(reduced_bias, window, cv, groups, seed, estimator, multiplicity)

    def _fit_serial(self, reduced_bias, window, cv, groups, seed: SeedLike | None, estimator: str, multiplicity):
        threshold = check_threshold(self.overlap_threshold)
        checked_count(self.max_iterations, "max_iterations")
        if not (isinstance(self.tolerance, (int, float, np.number)) and self.tolerance > 0):
            raise InputError(f"tolerance must be a positive number of kT, got {self.tolerance!r}")
        if not (isinstance(self.reference_range, (int, float, np.number)) and self.reference_range >= 0):
            raise InputError(f"reference_range must be a non-negative number of kT, got {self.reference_range!r}")
        if seed is not None:
            checked_count(self.n_bootstrap, "n_bootstrap (for the standard errors)", 2)
            rng = np.random.default_rng(as_seed_sequence(seed))
        period = check_period(self.period)
        u, window, cv, groups, n_k = check_umbrella_data(reduced_bias, window, cv, groups)
        if multiplicity is not None:
            if groups is not None:
                raise InputError("give groups (one label per sample) or multiplicity (counts per column and unit), "
                                 "not both")
            multiplicity, unit_window = check_multiplicity(multiplicity, window)
        m = np.ones(u.shape[1]) if multiplicity is None else np.asarray(multiplicity.sum(axis=1), float).ravel()
        n_k = n_k if multiplicity is None else np.bincount(window, weights=m, minlength=u.shape[0])
        edges = histogram_edges(self.bins, cv, period)
        sample_bin = bin_index(cv, edges, period)
        counts = np.rint(np.bincount(sample_bin, weights=m, minlength=edges.size - 1)).astype(np.int64)
        filled = drop_empty_bins(counts, edges)
        warn_wide_bins(edges, window, cv, period, m)
        log_width = np.log(np.diff(edges))

        equations = BinlessEquations(u, window)
        f, self.residual_, iterations = self._solve(u, equations, m)
        free = bin_free_energy(equations.log_weights(f, m), sample_bin, log_width)[filled]
        region = reference_region(free, self.reference_range)
        pmf = relative_to(free, region, log_width[filled])

        pairs = neighbour_pairs(window, cv, period, m)
        if seed is None:
            self.uncertainty_ = "analytical (pymbar's asymptotic covariance; assumes uncorrelated samples)"
            f_stderr, stderr = self._analytical(f, sample_bin, filled, region, log_width)
        else:
            if multiplicity is None:
                units, self.uncertainty_ = resampling_units(u, window, cv, groups, pairs, period)
            else:
                self.uncertainty_ = walker_units(unit_window)
            self.uncertainty_ += f"; {self.n_bootstrap} resamples"
            replicate_f = np.empty((self.n_bootstrap, f.size))
            replicate_pmf = np.empty((self.n_bootstrap, pmf.size))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # a resample's near miss is in its spread
                for r in range(self.n_bootstrap):
                    if multiplicity is None:
                        m_r = resample(units, window, rng)
                    else:
                        m_r = multiplicity @ unit_draws(unit_window, rng).astype(float)
                    replicate_f[r] = equations.solve(m_r, f, tolerance=self.tolerance,
                                                     max_iterations=self.max_iterations)[0]
                    free_r = bin_free_energy(equations.log_weights(replicate_f[r], m_r), sample_bin,
                                             log_width)[filled]
                    replicate_pmf[r] = relative_to(free_r, region, log_width[filled])
            f_stderr, stderr = spread(replicate_f), spread(replicate_pmf)

        self.f_ = f
        self.f_stderr_ = f_stderr
        self.bin_edges_ = edges
        self.pmf_ = pmf_dataset(edges, filled, pmf, stderr, counts, region, period=period, attrs={
            "estimator": estimator, "uncertainty": self.uncertainty_, "residual": self.residual_,
            "tolerance": float(self.tolerance), "reference_range": float(self.reference_range),
            **({} if iterations is None else {"n_iterations": iterations})})
        self.n_samples_ = n_k
        self.log_weights_ = log_unbiased_weights(u, n_k, f, None if multiplicity is None else m)
        self.overlap_ = overlap_matrix(u, n_k, f, None if multiplicity is None else m)
        self.neighbours_ = pairs
        self.cv_ = cv
        warn_low_overlap(self.overlap_, pairs, threshold)

    def conditional_weights(self, z: float, bandwidth: float) -> np.ndarray:
        """Normalized weights ∝ W_n exp(−d(ξ_n, z)²/(2h²)) of the pooled samples for the unbiased law near ξ = z.

        Shape ``(N,)``, in the sample order given to ``fit``; d is the (wrapped, when periodic) CV
        difference and h the ``bandwidth``. Weighted averages over them estimate the average of the
        conditional law ν_ξ over ξ ~ kernel(z), a bias O(h²); check the Kish effective sample size
        (:func:`eqfree.statistics.kish_ess`) of the result before trusting it.
        """
        self.check_fitted()
        if not (np.ndim(z) == 0 and math.isfinite(z)):
            raise InputError(f"z must be a finite CV value, got {z!r}")
        if not (np.ndim(bandwidth) == 0 and math.isfinite(bandwidth) and bandwidth > 0):
            raise InputError(f"bandwidth must be a positive CV distance, got {bandwidth!r}")
        log_w = self.log_weights_ - 0.5 * (wrapped_difference(self.cv_, z, self.period) / bandwidth) ** 2
        return np.exp(log_w - logsumexp(log_w))
