"""The Evolve operator for SDEs: short bursts of Euler–Maruyama from given fine states."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import xarray as xr

from ..seeding import SeedLike
from ..validation import checked_positive
from .euler_maruyama import Potential, euler_maruyama
from .sde import SDEProtocol


@dataclass
class SDEEvolver:
    """``E(x, n_steps)``: Euler–Maruyama bursts of ``sde`` with step ``dt`` (an :class:`~eqfree.Evolve`).

    ``beta`` is the SDE's own (a system's, or the ``beta`` argument of a plain :class:`~eqfree.SDE`);
    ``coords`` names the coordinates (default ``x1, x2, ...``); ``bias`` an added potential U(x)
    whose force −∇U (autograd) joins the drift (unit mobility): :meth:`biased` sets it.
    """

    sde: SDEProtocol
    dt: float
    bias: Potential | None = None
    device: str | torch.device | None = None
    noise_dtype: torch.dtype = torch.float64
    coords: Sequence[str] | None = None

    def __post_init__(self):
        self.dt = checked_positive(self.dt, "dt")

    @property
    def beta(self) -> float:
        """1/kT of the SDE's equilibrium law."""
        return self.sde.beta

    def biased(self, bias: Potential) -> SDEEvolver:
        """The same dynamics with the potential ``bias`` added (e.g. a :class:`~eqfree.evolve.HarmonicBias`),
        replacing any bias this evolver holds."""
        return dataclasses.replace(self, bias=bias)

    def __call__(self, x, n_steps: int, *, seed: SeedLike, save_every: int = 1, first_walker: int = 0,
                 progress: bool = False) -> xr.DataArray:
        """A burst of ``n_steps`` from ``x`` ``(walkers, dim)``; walker i draws the noise of walker
        ``first_walker + i`` of ``seed``. Dims ``(time, walker, coord)``."""
        return euler_maruyama(
            self.sde, x, dt=self.dt, n_steps=n_steps, seed=seed, save_every=save_every, bias=self.bias,
            device=self.device, noise_dtype=self.noise_dtype, coords=self.coords, first_walker=first_walker,
            progress=progress,
        )
