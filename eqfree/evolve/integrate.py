"""Ensembles of SDE walkers by a scheme chosen by name.

=======================  =====================================================================
``euler_maruyama``       any noise; weak order 1, invariant law off by O(Δt)
``leimkuhler_matthews``  additive noise; invariant law off by O(Δt²), exact for Ornstein–Uhlenbeck
``milstein``             diagonal multiplicative noise; strong order 1
``mala``                 a potential and constant noise; exact equilibrium (Metropolis-adjusted)
=======================  =====================================================================

A system declares the scheme it runs by default (:attr:`eqfree.systems.System.scheme`): the
Leimkuhler–Matthews scheme for the additive-noise systems, Euler–Maruyama for the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import xarray as xr

from ..errors import InputError
from ..seeding import SeedLike
from .ensemble import Potential, run_scheme
from .euler_maruyama import EulerMaruyama
from .leimkuhler_matthews import LeimkuhlerMatthews
from .mala import MALA
from .milstein import Milstein
from .sde import SDEProtocol

SCHEMES = {scheme.name: scheme for scheme in (EulerMaruyama, LeimkuhlerMatthews, Milstein, MALA)}


def check_scheme(scheme: str) -> str:
    """``scheme`` if it names one of :data:`SCHEMES`, else an InputError listing them."""
    if scheme not in SCHEMES:
        raise InputError(f"unknown scheme {scheme!r}; available schemes: {sorted(SCHEMES)}")
    return scheme


def integrate(
    sde: SDEProtocol,
    x0,
    *,
    scheme: str,
    dt: float,
    n_steps: int,
    seed: SeedLike,
    save_every: int = 1,
    t0: float = 0.0,
    bias: Potential | None = None,
    device: str | torch.device | None = None,
    noise_dtype: torch.dtype = torch.float64,
    coords: Sequence[str] | None = None,
    progress: bool | None = None,
    first_walker: int = 0,
) -> xr.DataArray:
    """``n_steps`` of ``scheme`` (module doc) from the walkers ``x0`` ``(walkers, dim)``; the other
    parameters are those of :func:`~eqfree.evolve.euler_maruyama`. Walker i draws the normals of walker
    ``first_walker + i`` of ``seed`` (:mod:`eqfree.evolve.noise`), so the same seed gives the same numbers
    however the walkers are split. Dims ``(time, walker, coord)``, the scheme in the ``integrator`` attribute."""
    return run_scheme(SCHEMES[check_scheme(scheme)], sde, x0, dt=dt, n_steps=n_steps, seed=seed,
                      save_every=save_every, t0=t0, bias=bias, device=device, noise_dtype=noise_dtype,
                      coords=coords, progress=progress, first_walker=first_walker)
