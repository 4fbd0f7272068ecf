"""The Evolve operator for SDEs: short bursts of an SDE scheme from given fine states."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import xarray as xr

from ..errors import InputError
from ..seeding import SeedLike
from ..validation import checked_positive
from .bias import HarmonicBias, restraint_terms
from .ensemble import Potential, as_ensemble
from .integrate import check_scheme, integrate
from .sde import SDEProtocol


class UnstableStepWarning(UserWarning):
    """A restraint was too stiff for the step at some of a burst's saved states (:class:`SDEEvolver`)."""


def restraints(bias) -> tuple:
    """The :class:`~eqfree.evolve.HarmonicBias` terms of ``bias`` (none for another potential)."""
    return tuple(term for term in restraint_terms(bias) if isinstance(term, HarmonicBias))


@dataclass
class SDEEvolver:
    """``E(x, n_steps)``: bursts of ``sde`` by ``scheme`` with step ``dt`` (an :class:`~eqfree.Evolve`).

    ``scheme`` names an integrator of :mod:`eqfree.evolve.integrate` (a system's evolver takes the
    system's own, :attr:`~eqfree.systems.System.scheme`); ``beta`` is the SDE's own (a system's, or the
    ``beta`` argument of a plain :class:`~eqfree.SDE`); ``coords`` names the coordinates (default
    ``x1, x2, ...``); ``bias`` an added potential U(x) whose force −∇U (autograd) joins the drift (unit
    mobility): :meth:`biased` sets it. A :class:`~eqfree.evolve.HarmonicBias` is checked against the step
    before a burst runs: an explicit step of a restraint of stiffness κ|∇ξ|² is stable only for
    κ|∇ξ|²·dt < 2 (the Ornstein–Uhlenbeck chain x' = (1 − κ dt) x + …). A learned ξ's gradient varies, so the
    saved states are checked again after the burst: where κ|∇ξ|²·dt ≥ 2 the step overshoots the restraint
    and the samples there do not follow the biased law (:class:`UnstableStepWarning`).
    """

    sde: SDEProtocol
    dt: float
    bias: Potential | None = None
    device: str | torch.device | None = None
    noise_dtype: torch.dtype = torch.float64
    coords: Sequence[str] | None = None
    scheme: str = "euler_maruyama"

    def __post_init__(self):
        self.dt = checked_positive(self.dt, "dt")
        check_scheme(self.scheme)

    @property
    def beta(self) -> float:
        """1/kT of the SDE's equilibrium law."""
        return self.sde.beta

    def biased(self, bias: Potential) -> SDEEvolver:
        """The same dynamics with the potential ``bias`` added (e.g. a :class:`~eqfree.evolve.HarmonicBias`),
        replacing any bias this evolver holds."""
        return dataclasses.replace(self, bias=bias)

    def check_step(self, x) -> None:
        """Refuse a step unstable in the restraint at the states ``x`` (class doc), naming the largest stable dt."""
        for bias in restraints(self.bias):
            self._check_restraint(bias, x)

    def check_path(self, path: xr.DataArray) -> None:
        """Warn where a restraint was unstable in the step at the saved states of ``path`` (class doc)."""
        terms = restraints(self.bias)
        if not terms:
            return
        states = torch.as_tensor(path.values.reshape(-1, path.sizes["coord"]))
        for bias in terms:
            stiffness = bias.stiffness(states)
            unstable = float((stiffness * self.dt >= 2).double().mean())
            if unstable:
                largest = stiffness.max().item()
                warnings.warn(UnstableStepWarning(
                    f"the restraint kappa = {bias.kappa:g} on {bias.cv.name} was too stiff for dt = {self.dt:g} at "
                    f"{unstable:.2%} of the saved states: kappa·|grad xi|²·dt reached {largest * self.dt:.3g} "
                    f"(stable below 2), where the step overshoots and the samples do not follow the biased law; "
                    f"use dt < {2 / largest:.4g} or a smaller kappa"), stacklevel=3)

    def _check_restraint(self, bias: HarmonicBias, x) -> None:
        stiffness = bias.stiffness(as_ensemble(x)).max().item()
        if stiffness * self.dt >= 2:
            raise InputError(
                f"dt = {self.dt:g} is unstable in the restraint kappa = {bias.kappa:g} on {bias.cv.name}: "
                f"an explicit step needs kappa·|grad xi|²·dt < 2 (kappa·|grad xi|² = {stiffness:g} at the walkers' "
                f"start), so dt < {2 / stiffness:.4g}; use a smaller dt (dt <= {1 / stiffness:.4g} relaxes the "
                "restraint fastest) or a smaller kappa")

    def __call__(self, x, n_steps: int, *, seed: SeedLike, save_every: int = 1, first_walker: int = 0,
                 progress: bool | None = None) -> xr.DataArray:
        """A burst of ``n_steps`` from ``x`` ``(walkers, dim)``; walker i draws the noise of walker
        ``first_walker + i`` of ``seed``. Dims ``(time, walker, coord)``."""
        self.check_step(x)
        path = integrate(
            self.sde, x, scheme=self.scheme, dt=self.dt, n_steps=n_steps, seed=seed, save_every=save_every,
            bias=self.bias, device=self.device, noise_dtype=self.noise_dtype, coords=self.coords,
            first_walker=first_walker, progress=progress,
        )
        self.check_path(path)
        return path
