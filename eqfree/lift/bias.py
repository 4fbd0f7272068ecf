"""Collective variables and the harmonic umbrella bias on them (seed paper, eqs. 2.2–2.3).

    U_z(x) = κ/2 d(ξ(x), z)²,    −∇U_z(x) = −κ d(ξ(x), z) ∇ξ(x)

with d(a, b) = a − b, or, for a periodic CV of period P (an angle), the wrapped difference
d(a, b) = a − b − P·round((a − b)/P) ∈ [−P/2, P/2): the force does not jump where the angle
crosses ±P/2. ∇ξ comes from autograd, so ξ can be a coordinate, an angle or a learned
diffusion-map coordinate Φ(x) (:class:`~eqfree.restrict.KernelExpansion`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..errors import InputError, InputTypeError
from ..periodic import check_period, wrapped_difference
from ..restrict import Coordinates, KernelExpansion, parse_coordinate


class CollectiveVariable:
    """ξ: fine states ``(..., dim)`` → ``(...)``, differentiable on torch tensors; also a Restrict.

    Built by :func:`collective_variable` from a coordinate name, a fitted kernel expansion or any
    callable mapping a torch tensor ``(walkers, dim)`` to ``(walkers,)`` or ``(walkers, 1)``.
    ``period`` marks an angle; ``valid_range`` = (low, high) is where a learned ξ was fitted.
    """

    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor], *, name: str = "xi",
                 period: float | None = None, valid_range: tuple[float, float] | None = None):
        self.function, self.name, self.period = function, name, check_period(period)
        self.valid_range = None if valid_range is None else (float(valid_range[0]), float(valid_range[1]))

    @property
    def names(self) -> list[str]:
        return [self.name]

    def __call__(self, x):
        if not torch.is_tensor(x):
            with torch.no_grad():
                return self(torch.as_tensor(np.asarray(x, dtype=float))).numpy()
        value = self.function(x)
        if value.ndim == x.ndim and value.shape[-1] == 1:
            value = value[..., 0]
        if value.shape != x.shape[:-1]:
            raise InputError(f"the CV must return one value per state, shape {tuple(x.shape[:-1])}; got {tuple(value.shape)}")
        return value

    def __repr__(self) -> str:
        extra = "" if self.period is None else f", period={self.period:g}"
        return f"CollectiveVariable({self.name}{extra})"


def collective_variable(spec, *, dim: int | None = None, period: float | None = None) -> CollectiveVariable:
    """A :class:`CollectiveVariable` from ``"x1"``/``0`` (a coordinate), :class:`Coordinates` with one
    coordinate, a :class:`KernelExpansion` with one output (its fitted range becomes ``valid_range``),
    an existing :class:`CollectiveVariable` (returned as is), or a callable."""
    if isinstance(spec, CollectiveVariable):
        return spec
    if isinstance(spec, (str, int)) and not isinstance(spec, bool):
        spec = Coordinates(parse_coordinate(spec, dim))
    if isinstance(spec, Coordinates):
        if len(spec.indices) != 1:
            raise InputError(f"an umbrella CV is one coordinate, got {spec.names}")
        return CollectiveVariable(spec, name=spec.names[0], period=period)
    if isinstance(spec, KernelExpansion):
        if spec.coefficients.shape[1] != 1:
            raise InputError(f"an umbrella CV is one function; this expansion has {spec.coefficients.shape[1]} outputs")
        valid = None if spec.value_range is None else spec.value_range[:, 0]
        return CollectiveVariable(spec, name=spec.names[0], period=period, valid_range=valid)
    if callable(spec):
        return CollectiveVariable(spec, name=getattr(spec, "__name__", "xi"), period=period)
    raise InputTypeError(f"a CV is a coordinate name ('x1'), an index, a KernelExpansion or a callable; got {spec!r}")


class HarmonicBias:
    """U(x) = κ/2 d(ξ(x), z)² per walker — a bias potential for :func:`eqfree.euler_maruyama`;
    ``center`` is one z or one per walker (a tensor ``(walkers,)``)."""

    def __init__(self, cv: CollectiveVariable, kappa: float, center: float | torch.Tensor):
        self.cv, self.kappa, self.center = cv, float(kappa), center

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.kappa * wrapped_difference(self.cv(x), self.center, self.cv.period) ** 2
