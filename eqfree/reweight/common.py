"""What WHAM and MBAR share: umbrella data checks, histogram bins, sample weights, overlap, PMF dataset.

K windows, N pooled samples; u_k(x_n) the reduced bias of sample n in window k's bias, N_k the
number of samples drawn in window k and f_k the window free energies. Given f, the weight of
sample n in state i (MBAR eq. 9) and its unbiased weight are

    W_ni = exp(f_i − u_i(x_n)) / D_n,     W_n = (1/D_n) / Σ_m (1/D_m),     D_n = Σ_k N_k exp(f_k − u_k(x_n)),

and the overlap matrix O_ij = N_j Σ_n W_ni W_nj (Shirts & Chodera 2008) is the chance that a sample
drawn in window i is seen as drawn in window j; its rows sum to Σ_n W_ni, which is 1 at the MBAR
solution (WHAM's binned f_k leave a small residual, which is divided out).
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import xarray as xr
from scipy.special import logsumexp

from ..base import Estimator
from ..errors import InputError
from ..periodic import check_period, wrapped_difference

#: neighbouring windows whose overlap O_{k,k+1} or O_{k+1,k} falls below this are reported
OVERLAP_THRESHOLD = 0.03


def check_umbrella_data(reduced_bias, window, cv, groups=None):
    """Checked float64 ``(K, N)`` biases, int windows, float CVs, int groups (None: one per sample) and N_k."""
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
    groups = np.arange(n_samples) if groups is None else _as_labels(groups, "groups", n_samples)
    return u, window, cv, groups, n_k


def _as_labels(labels, name: str, n_samples: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n_samples,):
        raise InputError(f"{name} must have shape ({n_samples},), one label per sample, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{name} must hold integers, got dtype {labels.dtype}")
    return labels.astype(np.int64)


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


def log_unbiased_weights(u: np.ndarray, n_k: np.ndarray, f: np.ndarray) -> np.ndarray:
    """log W_n of the unbiased law, normalized so that Σ_n W_n = 1."""
    minus = -log_denominator(u, n_k, f)
    return minus - logsumexp(minus)


def overlap_matrix(u: np.ndarray, n_k: np.ndarray, f: np.ndarray) -> np.ndarray:
    """O_ij = N_j Σ_n W_ni W_nj, rows divided by Σ_n W_ni so that they sum to 1."""
    w = np.exp(f[:, None] - u - log_denominator(u, n_k, f))
    overlap = (w @ w.T) * n_k[None, :]
    return overlap / w.sum(axis=1, keepdims=True)


def warn_low_overlap(overlap: np.ndarray, threshold: float) -> None:
    """UserWarning naming the consecutive windows (k, k+1) with min(O_{k,k+1}, O_{k+1,k}) < threshold."""
    neighbours = np.minimum(np.diag(overlap, 1), np.diag(overlap, -1))
    low = np.flatnonzero(neighbours < threshold)
    if low.size:
        pairs = ", ".join(f"({k}, {k + 1}): {neighbours[k]:.3g}" for k in low)
        warnings.warn(f"low overlap between neighbouring windows {pairs} (threshold {threshold}); free energies "
                      "across these gaps are unreliable: add windows between them or lengthen the runs",
                      UserWarning, stacklevel=4)  # warn_low_overlap <- _finish <- fit <- the caller


def check_threshold(threshold) -> float:
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
                      "use fewer bins or sample the gaps", UserWarning, stacklevel=4)  # <- _histogram <- fit <- caller
    return filled


def pmf_dataset(edges, filled, pmf, stderr, counts, *, estimator: str, period: float | None) -> xr.Dataset:
    """The PMF on the centres of the filled bins, with standard errors and counts, CF-style attrs."""
    centres = 0.5 * (edges[:-1] + edges[1:])[filled]
    cv_attrs = {"long_name": "collective variable (bin centre)"}
    if period is not None:
        cv_attrs["period"] = period
    return xr.Dataset(
        {
            "pmf": ("cv", pmf, {"units": "kT", "long_name": "potential of mean force, zero at its minimum"}),
            "pmf_stderr": ("cv", stderr, {"units": "kT",
                                          "long_name": "standard error of the PMF difference to the minimum bin"}),
            "counts": ("cv", counts[filled], {"long_name": "samples per bin"}),
        },
        coords={"cv": ("cv", centres, cv_attrs),
                "bin_width": ("cv", np.diff(edges)[filled], {"long_name": "bin width"})},
        attrs={"estimator": estimator},
    )


class Histogram(NamedTuple):
    u: np.ndarray
    window: np.ndarray
    cv: np.ndarray
    groups: np.ndarray
    n_k: np.ndarray
    period: float | None
    edges: np.ndarray
    sample_bin: np.ndarray
    counts: np.ndarray
    filled: np.ndarray


class UmbrellaReweighting(Estimator):
    """Shared fitted state of WHAM and MBAR: unbiased sample weights, overlap, conditional weights.

    Attributes (after ``fit``)
    --------------------------
    f_ : ``(K,)`` window free energies in kT, f_0 = 0.      f_stderr_ : their standard errors.
    n_samples_ : ``(K,)`` N_k.                             log_weights_ : ``(N,)`` log W_n, Σ W_n = 1.
    overlap_ : ``(K, K)`` overlap matrix O.                pmf_ : ``xarray.Dataset`` (pmf, pmf_stderr, counts on cv).
    cv_ : ``(N,)`` the CV of each pooled sample.           bin_edges_ : the histogram edges.
    """

    period: float | None

    def get_state(self) -> dict:
        state = super().get_state()
        return {**state, "pmf_": state["pmf_"].to_dict(data="array")}

    def set_state(self, state: dict) -> None:
        super().set_state({**state, "pmf_": xr.Dataset.from_dict(state["pmf_"])})

    def _histogram(self, reduced_bias, window, cv, groups=None) -> Histogram:
        """The checked inputs of ``fit`` and their CV histogram (bins without samples flagged)."""
        period = check_period(self.period)
        u, window, cv, groups, n_k = check_umbrella_data(reduced_bias, window, cv, groups)
        edges = histogram_edges(self.bins, cv, period)
        sample_bin = bin_index(cv, edges, period)
        counts = np.bincount(sample_bin, minlength=edges.size - 1)
        return Histogram(u, window, cv, groups, n_k, period, edges, sample_bin, counts, drop_empty_bins(counts, edges))

    def _finish(self, u, n_k, f, cv, threshold):
        self.n_samples_ = n_k
        self.log_weights_ = log_unbiased_weights(u, n_k, f)
        self.overlap_ = overlap_matrix(u, n_k, f)
        self.cv_ = cv
        warn_low_overlap(self.overlap_, threshold)

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
