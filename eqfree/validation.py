"""Checks of scalar arguments shared by every module: counts and durations."""

from __future__ import annotations

import math

import numpy as np


def checked_count(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int, or a ValueError naming ``name`` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def checked_duration(value, name: str) -> float:
    """``value`` as a float, or a ValueError naming ``name`` unless it is finite and positive."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value}")
    return value
