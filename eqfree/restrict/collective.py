"""Collective variables ξ: one differentiable function of the fine state, a restriction.

ξ can be a coordinate, an angle (with ``period``) or a learned diffusion-map coordinate Φ(x)
(:class:`~eqfree.restrict.KernelExpansion`); on torch tensors it is differentiable, so a bias
potential on ξ (:class:`~eqfree.evolve.HarmonicBias`) gets its force by autograd.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..errors import InputError, InputTypeError
from ..periodic import check_period
from .coordinates import Coordinates, parse_coordinate
from .dihedrals import Dihedrals
from .extension import KernelExpansion


class CollectiveVariable:
    """ξ: fine states ``(..., dim)`` → ``(...)``, differentiable on torch tensors; also a Restrict.

    Built by :func:`collective_variable` from a coordinate name, a fitted kernel expansion or any
    callable mapping a torch tensor ``(..., dim)`` to ``(...)`` or ``(..., 1)``, acting on the last axis
    alone (it meets walkers ``(walkers, dim)`` and trajectories ``(time, walker, dim)``; :meth:`check`).
    ``period`` marks an angle; ``valid_range`` = (low, high) is where a learned ξ was fitted.
    """

    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor], *, name: str = "xi",
                 period: float | None = None, valid_range: tuple[float, float] | None = None):
        self.function, self.name, self.period = function, name, check_period(period)
        self.valid_range = None if valid_range is None else (float(valid_range[0]), float(valid_range[1]))

    @property
    def torsion(self) -> tuple[int, int, int, int] | None:
        """The four atoms when ξ is one dihedral angle (:class:`~eqfree.restrict.Dihedrals`), else ``None``:
        an MD engine biases it with a torsion force of its own."""
        if isinstance(self.function, Dihedrals) and len(self.function.angles) == 1:
            return next(iter(self.function.angles.values()))
        return None

    @property
    def names(self) -> list[str]:
        """The CV's name, one per output column (a Restrict's names)."""
        return [self.name]

    def __call__(self, x):
        if not torch.is_tensor(x):
            with torch.no_grad():
                return self(torch.as_tensor(np.asarray(x, dtype=float))).numpy()
        value = self.function(x)
        if value.ndim == x.ndim and value.shape[-1] == 1:
            value = value[..., 0]
        if value.shape != x.shape[:-1]:
            raise InputError(f"the CV must return one value per state, shape {tuple(x.shape[:-1])}; "
                             f"got {tuple(value.shape)}")
        return value

    def check(self, dim: int, state=None) -> None:
        """The contract ξ: ``(..., dim)`` → ``(...)``, checked on a ``(2, dim)`` and a ``(2, 3, dim)`` probe of
        torch states near ``state`` (default the origin): shapes, and the same values for the same states
        in either batch (a CV written for ``(walkers, dim)`` that indexes the first axis fails here)."""
        base = torch.zeros(dim, dtype=torch.float64) if state is None else torch.as_tensor(
            np.asarray(state, dtype=float).reshape(dim))
        probe = base + 1e-3 * torch.arange(6 * dim, dtype=torch.float64).reshape(2, 3, dim) / (6 * dim)
        values = []
        for x in (probe[:, 0], probe, probe.reshape(6, dim)):
            shape = f"({', '.join(map(str, x.shape[:-1]))}, dim)"
            try:
                with torch.no_grad():
                    value = self.function(x)
            except Exception as error:  # the user's function: its error becomes one line naming the probe
                raise InputError(f"the CV {self.name} fails on states of shape {shape}: "
                                 f"{type(error).__name__}: {error}; it must map (..., dim) to (...)") from error
            got = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
            if torch.is_tensor(value) and value.ndim == x.ndim and value.shape[-1] == 1:
                value = value[..., 0]
            if not torch.is_tensor(value) or value.shape != x.shape[:-1]:
                raise InputError(f"the CV {self.name} must map states (..., dim) to one value each (...): on states "
                                 f"of shape {shape} it returned {got}, expected {tuple(x.shape[:-1])}; index the "
                                 "last axis (x[..., 0]), not the first (x[:, 0])")
            values.append(value)
        if not torch.allclose(values[1].reshape(6), values[2], rtol=1e-10, atol=1e-12, equal_nan=True):
            raise InputError(f"the CV {self.name} gives other values for the same states in a (2, 3, dim) batch than "
                             "in a (6, dim) batch: it must act on the last axis alone (x[..., 0], not x[:, 0])")

    def __repr__(self) -> str:
        extra = "" if self.period is None else f", period={self.period:g}"
        return f"CollectiveVariable({self.name}{extra})"


def collective_variable(spec, *, dim: int | None = None, period: float | None = None,
                        name: str = "xi") -> CollectiveVariable:
    """A :class:`CollectiveVariable` from ``"x1"``/``0`` (a coordinate), :class:`Coordinates` with one
    coordinate, a :class:`KernelExpansion` with one output (its fitted range becomes ``valid_range``),
    an existing :class:`CollectiveVariable` (returned as is), or a callable (named ``name``)."""
    if isinstance(spec, CollectiveVariable):
        return spec
    if isinstance(spec, (str, int)) and not isinstance(spec, bool):
        spec = Coordinates(parse_coordinate(spec, dim))
    if isinstance(spec, Coordinates):
        if len(spec.indices) != 1:
            raise InputError(f"a CV is one coordinate, got {spec.names}")
        return CollectiveVariable(spec, name=spec.names[0], period=period)
    if isinstance(spec, KernelExpansion):
        if len(spec.names) != 1:
            raise InputError(f"a CV is one function; this expansion has {len(spec.names)} outputs")
        return CollectiveVariable(spec, name=spec.names[0], period=period, valid_range=spec.value_range_[:, 0])
    if callable(spec):
        return CollectiveVariable(spec, name=name, period=period)
    raise InputTypeError(f"a CV is a coordinate name ('x1'), an index, a KernelExpansion or a callable; got {spec!r}")
