"""Checks of scalar arguments shared by every module: counts and positive numbers."""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError


def checked_count(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int, or an InputError naming ``name`` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def checked_positive(value, name: str) -> float:
    """``value`` as a float, or an InputError naming ``name`` unless it is finite and positive (a step,
    a duration, a temperature, a learning rate)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a finite positive number, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a finite positive number, got {value}")
    return value
