"""Moments of ensemble trajectories with standard errors from independent walkers.

For samples x[t, w] of W independent walkers, time-correlated within each walker, the walker
averages m_w = ⟨x⟩_t and v_w = ⟨(x − m)²⟩_t (m the pooled mean) are i.i.d. across walkers, so

    mean = ⟨m_w⟩_w,  se(mean) = sd(m_w)/√W,    var = ⟨v_w⟩_w,  se(var) = sd(v_w)/√W

need no autocorrelation model.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .errors import InputError


class EnsembleMoments(NamedTuple):
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
