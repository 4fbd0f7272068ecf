"""Moments of ensemble trajectories with standard errors from independent walkers.

For samples x[t, w] of W independent walkers, time-correlated within each walker, the walker
averages m_w = ⟨x⟩_t and v_w = ⟨(x − m)²⟩_t (m the pooled mean) are i.i.d. across walkers, so

    mean = ⟨m_w⟩_w,  se(mean) = sd(m_w)/√W,    var = ⟨v_w⟩_w,  se(var) = sd(v_w)/√W

need no autocorrelation model. Weighted samples have Kish's effective sample size (:func:`kish_ess`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from .errors import InputError


class EnsembleMoments(NamedTuple):
    """Mean and variance of ensemble samples with their standard errors (:func:`ensemble_moments`).

    Attributes
    ----------
    mean, variance : float
        Pooled mean and variance over all times and walkers.
    mean_stderr, variance_stderr : float
        Standard errors sd(m_w)/√W and sd(v_w)/√W from the W walker averages.
    n_walkers : int
        W, the number of independent walkers.
    """

    mean: float
    variance: float
    mean_stderr: float
    variance_stderr: float
    n_walkers: int


def ensemble_moments(samples) -> EnsembleMoments:
    """Mean and variance of ``samples`` of shape ``(time, walker)`` with their standard errors."""
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 2:
        raise InputError(f"samples must have shape (time, walker) with at least 2 walkers, got {x.shape}")
    walkers = x.shape[1]
    per_walker_mean = x.mean(axis=0)
    mean = per_walker_mean.mean()
    per_walker_var = ((x - mean) ** 2).mean(axis=0)
    return EnsembleMoments(
        float(mean),
        float(per_walker_var.mean()),
        float(per_walker_mean.std(ddof=1) / np.sqrt(walkers)),
        float(per_walker_var.std(ddof=1) / np.sqrt(walkers)),
        walkers,
    )


def kish_ess(log_weights) -> float:
    """Kish's effective sample size (Σ w)² / Σ w² of weights w = exp(``log_weights``), unnormalized.

    Computed in logs, exp(2 logsumexp(log w) − logsumexp(2 log w)), so weights spanning any range of
    magnitudes are fine; a zero weight is log w = −∞.
    """
    log_w = np.asarray(log_weights, dtype=float)
    if log_w.ndim != 1 or log_w.size == 0 or np.isnan(log_w).any() or (log_w == np.inf).any() or \
            (log_w == -np.inf).all():
        raise InputError("log_weights must be a non-empty 1-D array of logs of finite, non-negative weights, "
                         "not all zero (NaN: a negative weight)")
    return float(np.exp(2 * logsumexp(log_w) - logsumexp(2 * log_w)))
