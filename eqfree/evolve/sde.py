"""Itô SDEs dX = f(X, t) dt + g(X, t) dW as pairs of torch callables.

Anything with ``drift(x, t)``, ``diffusion(x, t)`` and a ``noise`` attribute is an SDE to eqfree
(duck typing, as in torchsde); :class:`SDE` wraps two plain functions into one.

Shapes, for an ensemble ``x`` of shape ``(walkers, dim)`` and a float time ``t``:

- ``drift(x, t)``: broadcastable to ``(walkers, dim)``.
- ``noise == "diagonal"``: ``diffusion(x, t)`` broadcastable to ``(walkers, dim)``; component i is
  driven by its own Brownian motion, dX_i = f_i dt + g_i dW_i.
- ``noise == "general"``: ``diffusion(x, t)`` broadcastable to ``(walkers, dim, m)``; m Brownian
  motions, dX = f dt + G dW.

An SDE declares ``beta`` = 1/kT of its equilibrium law (1 for unit noise √2 dW). It may also offer
``drift_and_diffusion(x, t) -> (f, g)`` when both share work (e.g. the derivatives of an Itô change
of variables; the :class:`JointFields` protocol); integrators then call it once per step. Overdamped
Langevin systems dX = −∇V dt + √(2/β) dW may declare their potential ``potential(x) -> (walkers,)``
(:class:`GradientSDE`), which the Metropolis-adjusted scheme needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from ..errors import InputError, InputTypeError

NOISE_TYPES = ("diagonal", "general")

Field = Callable[[torch.Tensor, float], torch.Tensor]


@runtime_checkable
class SDEProtocol(Protocol):
    """What the integrators need: drift, diffusion, the noise type, and β of the equilibrium law."""

    noise: str
    beta: float

    def drift(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """f(x, t), broadcastable to ``(walkers, dim)``."""

    def diffusion(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """g(x, t): ``(walkers, dim)`` (diagonal noise) or ``(walkers, dim, m)`` (general), broadcastable."""


@runtime_checkable
class JointFields(Protocol):
    """An SDE that computes drift and diffusion together, ``drift_and_diffusion(x, t) -> (f, g)``."""

    def drift_and_diffusion(self, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(f, g) of :class:`SDEProtocol` ``drift`` and ``diffusion`` in one call."""


@runtime_checkable
class GradientSDE(Protocol):
    """An SDE with a potential V, ``potential(x) -> (walkers,)`` (torch), whose equilibrium is ∝ exp(−βV)."""

    beta: float

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        """V(x) per walker, ``(walkers,)``, in the energy unit of 1/β."""


@dataclass(frozen=True)
class SDE:
    """An Itô SDE from two callables ``drift(x, t)`` and ``diffusion(x, t)`` (see module doc).

    ``beta`` is 1/kT of its equilibrium law (for overdamped Langevin dX = −∇V dt + √(2/β) dW,
    the law ∝ exp(−βV)): the unit in which a bias added to the dynamics is reported (umbrella
    sampling); 1 for the unit-noise dynamics √2 dW."""

    drift_fn: Field
    diffusion_fn: Field
    noise: str = "diagonal"
    beta: float = 1.0

    def __post_init__(self):
        check_noise_type(self.noise)
        for name in ("drift_fn", "diffusion_fn"):
            if not callable(getattr(self, name)):
                raise InputTypeError(f"SDE {name} must be callable as f(x, t), got {type(getattr(self, name))}")

    def drift(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """``drift_fn(x, t)``, broadcastable to ``(walkers, dim)``."""
        return self.drift_fn(x, t)

    def diffusion(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """``diffusion_fn(x, t)``: ``(walkers, dim)`` (diagonal) or ``(walkers, dim, m)`` (general), broadcastable."""
        return self.diffusion_fn(x, t)


def check_noise_type(noise: str) -> None:
    """Refuse a ``noise`` that is not ``"diagonal"`` or ``"general"`` (:class:`~eqfree.errors.InputError`)."""
    if noise not in NOISE_TYPES:
        raise InputError(f"noise must be one of {NOISE_TYPES}, got {noise!r}")


def diffusion_matrix(sde: SDEProtocol, x: torch.Tensor, t: float) -> torch.Tensor:
    """G(x, t) of shape ``(walkers, dim, m)``, whatever the SDE's noise type."""
    walkers, dim = x.shape
    g = sde.diffusion(x, t)
    if sde.noise == "diagonal":
        return torch.diag_embed(torch.broadcast_to(g, (walkers, dim)))
    return torch.broadcast_to(g, (walkers, dim, g.shape[-1]))
