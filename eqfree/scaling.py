"""Affine scalings that learned models store with their weights: labels onto [0, 1], states standardized.

- :class:`LabelScaler`: ỹ = (y − low)/(high − low), the training labels' range onto [0, 1];
- :class:`DataScaler`: x̃ = (x − mean)/scale per coordinate, scale the standard deviation (1 for a
  constant coordinate).

Both are frozen dataclasses of plain floats (saved in a model's ``config.json``) and act on numpy
arrays and, through broadcasting, on scalars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelScaler:
    """ỹ = (y − low)/(high − low): the training labels onto [0, 1]."""

    low: float
    high: float

    @classmethod
    def fit(cls, y: np.ndarray) -> LabelScaler:
        """The scaler mapping the range [min y, max y] of labels ``y`` onto [0, 1]."""
        return cls(float(y.min()), float(y.max()))

    def transform(self, y):
        """ỹ = (y − low)/(high − low), same shape as ``y``."""
        return (y - self.low) / (self.high - self.low)

    def inverse(self, y):
        """y = low + ỹ (high − low), the inverse of :meth:`transform`."""
        return self.low + y * (self.high - self.low)


@dataclass(frozen=True)
class DataScaler:
    """x̃ = (x − mean)/scale per coordinate (scale 1 for a constant coordinate)."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(cls, x: np.ndarray) -> DataScaler:
        """The scaler standardizing each column of ``x`` ``(n_samples, dim)`` to mean 0 and standard deviation 1."""
        std = x.std(axis=0)
        return cls(tuple(x.mean(axis=0).tolist()), tuple(np.where(std > 0, std, 1.0).tolist()))

    def transform(self, x):
        """x̃ = (x − mean)/scale per coordinate, same shape as ``x`` ``(..., dim)``."""
        return (x - np.asarray(self.mean)) / np.asarray(self.scale)

    def inverse(self, x):
        """x = mean + x̃ · scale per coordinate, the inverse of :meth:`transform`."""
        return np.asarray(self.mean) + x * np.asarray(self.scale)
