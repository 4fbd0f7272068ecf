"""The Evolve operator for SDEs: short bursts of Euler–Maruyama from given fine states."""

from __future__ import annotations

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
    """``E(x, n_steps)``: Euler–Maruyama bursts of ``sde`` with step ``dt`` (an :class:`~eqfree.Evolve`)."""

    sde: SDEProtocol
    dt: float
    bias: Potential | None = None
    device: str | torch.device | None = None
    noise_dtype: torch.dtype = torch.float64
    coords: Sequence[str] | None = None

    def __post_init__(self):
        self.dt = checked_positive(self.dt, "dt")

    def __call__(self, x, n_steps: int, *, seed: SeedLike, save_every: int = 1, progress: bool = False) -> xr.DataArray:
        return euler_maruyama(
            self.sde, x, dt=self.dt, n_steps=n_steps, seed=seed, save_every=save_every, bias=self.bias,
            device=self.device, noise_dtype=self.noise_dtype, coords=self.coords, progress=progress,
        )
