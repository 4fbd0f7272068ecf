"""Periodic collective variables (angles): the wrapped difference and the period check."""

from __future__ import annotations

import math

import numpy as np
import torch

from .errors import InputError


def check_period(period) -> float | None:
    """``None`` (not periodic) or a finite positive period, as a float."""
    if period is None:
        return None
    number = isinstance(period, (int, float, np.number)) and not isinstance(period, bool)
    if not (number and math.isfinite(period) and period > 0):
        raise InputError(f"period must be a positive number (e.g. 2π for an angle) or None, got {period!r}")
    return float(period)


def wrapped_difference(a, b, period: float | None):
    """a − b, wrapped into [−P/2, P/2) when ``period`` P is given (numpy or torch; differentiable).

    >>> float(wrapped_difference(350.0, 10.0, 360.0))
    -20.0
    >>> float(wrapped_difference(350.0, 10.0, None))
    340.0
    """
    difference = a - b
    if period is None:
        return difference
    half = period / 2
    if torch.is_tensor(difference):
        return torch.remainder(difference + half, period) - half
    return np.mod(difference + half, period) - half


def wrap_into(angle, low: float, period: float = 2 * math.pi):
    """The representative of ``angle`` in [low, low + P): puts the cut of a periodic CV where the data
    are sparse (e.g. a generator's labels ψ on [−1.9, −1.9 + 2π), so no basin is split)."""
    shifted = angle - low
    return low + (torch.remainder(shifted, period) if torch.is_tensor(shifted) else np.mod(shifted, period))
