"""Euler–Maruyama over an ensemble of walkers at once.

    X_{n+1} = X_n + [f(X_n, t_n) − ∇U(X_n)] Δt + G(X_n, t_n) √Δt ξ_n,    ξ_n ~ N(0, I_m)

with an optional bias potential U (unit mobility, as the umbrella force of eqs. 2.2–2.3), its
gradient taken by autograd. Strong order 1/2, weak order 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from .. import errors
from ..errors import InputError
from ..seeding import SeedLike, as_seed_sequence
from ..validation import checked_count, checked_positive
from .noise import BlockNoise
from .sde import JointFields, SDEProtocol, check_noise_type

Potential = Callable[[torch.Tensor], torch.Tensor]


class DivergenceError(errors.DivergenceError):
    """A walker became non-finite; ``walker`` and ``step`` say which and when."""

    def __init__(self, walker: int, step: int, t: float):
        self.walker, self.step, self.t = walker, step, t
        super().__init__(
            f"walker {walker} became non-finite at step {step} (t = {t:g}); "
            "the step is too large for the dynamics there, or the drift/diffusion returned NaN: "
            "reduce dt or check the model"
        )


def coordinate_names(dim: int, names=None) -> list[str]:
    """``names`` as strings, checked to be ``dim`` of them; by default ``x1, x2, ...`` (1-based, as in
    Crabtree, Bello-Rivas, Ferguson & Kevrekidis)."""
    if names is None:
        return [f"x{i + 1}" for i in range(dim)]
    names = [str(name) for name in names]
    if len(names) != dim:
        raise InputError(f"{len(names)} coordinate names for {dim} coordinates")
    return names


def as_ensemble(x0, device=None) -> torch.Tensor:
    """Validate an initial ensemble: shape ``(walkers, dim)``, finite; returned as float64."""
    if torch.is_tensor(x0):
        x = x0.detach().to(device=device, dtype=torch.float64).clone()
    else:
        x = torch.tensor(np.asarray(x0, dtype=np.float64), device=device)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(
            f"initial states must have shape (walkers, dim) with walkers, dim >= 1, got {tuple(x.shape)}; "
            "for one walker use x0[None, :]"
        )
    if not torch.isfinite(x).all():
        rows = torch.nonzero(~torch.isfinite(x).all(dim=1)).flatten().tolist()
        raise InputError(f"initial states must be finite; walkers {rows[:10]} are not")
    return x


def _first_divergent(x: torch.Tensor) -> int:
    bad = ~torch.isfinite(x).all(dim=1)
    if not bad.any():  # finite entries whose sum overflowed: report the largest walker
        bad = x.abs().amax(dim=1) == x.abs().amax()
    return int(torch.nonzero(bad)[0])


def _broadcast_field(value: torch.Tensor, shape: tuple[int, ...], what: str) -> torch.Tensor:
    try:
        return torch.broadcast_to(value, shape)
    except (RuntimeError, TypeError) as error:
        got = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise InputError(f"{what} returned {got}, which does not broadcast to {shape}") from error


def bias_force(bias: Potential, x: torch.Tensor) -> torch.Tensor:
    """−∇U(x) by autograd, for a potential returning one energy per walker."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        energy = bias(xg)
        if energy.shape != (x.shape[0],):
            raise InputError(f"bias potential must return shape (walkers,) = ({x.shape[0]},), "
                             f"got {tuple(energy.shape)}")
        (grad,) = torch.autograd.grad(energy.sum(), xg)
    return -grad


def euler_maruyama(
    sde: SDEProtocol,
    x0,
    *,
    dt: float,
    n_steps: int,
    seed: SeedLike,
    save_every: int = 1,
    t0: float = 0.0,
    bias: Potential | None = None,
    device: str | torch.device | None = None,
    noise_dtype: torch.dtype = torch.float64,
    coords: Sequence[str] | None = None,
    progress: bool = False,
    first_walker: int = 0,
) -> xr.DataArray:
    """Integrate an ensemble of walkers and return the saved states.

    Parameters
    ----------
    sde : drift/diffusion/noise object (see :mod:`eqfree.evolve.sde`).
    x0 : array ``(walkers, dim)`` of finite initial states.
    dt, n_steps : time step (> 0) and number of steps (>= 0).
    seed : int or ``numpy.random.SeedSequence``; increments of walker i depend only on
        (seed, i, step, device, noise_dtype) — see :mod:`eqfree.evolve.noise`.
    save_every : keep every k-th state (the initial one included).
    bias : optional potential U(x) -> ``(walkers,)``; its force −∇U is added to the drift.
    device : ``"cpu"`` (default) or ``"cuda"``; states are float64 everywhere.
    noise_dtype : dtype of the Gaussian draws. ``torch.float32`` (mixed precision: float32
        increments accumulated in a float64 state) is ~3x faster on CPU.
    coords : coordinate names, default ``x1, x2, ...``.
    first_walker : walker i of this call draws the increments of walker ``first_walker + i`` of the
        seed's stream (to simulate a slice of a larger ensemble on its own).

    Returns
    -------
    ``xarray.DataArray`` with dims ``(time, walker, coord)``; raises :class:`DivergenceError`
    naming the first walker and step at which a state became non-finite.
    """
    check_noise_type(sde.noise)
    dt = checked_positive(dt, "dt")
    n_steps = checked_count(n_steps, "n_steps", 0)
    save_every = checked_count(save_every, "save_every")
    seed = as_seed_sequence(seed)
    if noise_dtype not in (torch.float32, torch.float64):
        raise InputError(f"noise_dtype must be torch.float32 or torch.float64, got {noise_dtype}")
    device = torch.device(device or "cpu")
    x = as_ensemble(x0, device)
    walkers, dim = x.shape
    names = list(coords) if coords is not None else coordinate_names(dim)
    if len(names) != dim:
        raise InputError(f"{len(names)} coordinate names given for states of dimension {dim}")

    diffusion = sde.diffusion(x, t0)
    if sde.noise == "diagonal":
        m = dim
        _broadcast_field(diffusion, (walkers, dim), "diffusion (diagonal noise)")
    else:
        if not torch.is_tensor(diffusion) or diffusion.ndim < 2:
            raise InputError("diffusion with general noise must return shape (walkers, dim, m) or (dim, m)")
        m = diffusion.shape[-1]
        _broadcast_field(diffusion, (walkers, dim, m), "diffusion (general noise)")
    _broadcast_field(sde.drift(x, t0), (walkers, dim), "drift")

    both = sde.drift_and_diffusion if isinstance(sde, JointFields) else None
    noise = BlockNoise(seed, walkers, m, device, noise_dtype, checked_count(first_walker, "first_walker", 0))
    sqrt_dt = math.sqrt(dt)
    saved_steps = np.arange(0, n_steps + 1, save_every)
    out = torch.empty((len(saved_steps), walkers, dim), dtype=torch.float64)
    out[0] = x.cpu()

    with tqdm(total=n_steps, disable=not progress, unit="step", desc="Euler–Maruyama") as bar:
        for step in range(1, n_steps + 1):
            t = t0 + (step - 1) * dt
            drift, g = both(x, t) if both else (sde.drift(x, t), sde.diffusion(x, t))
            if bias is not None:
                drift = drift + bias_force(bias, x)
            dw = noise()  # float64, ours to overwrite: the kick is formed before x changes (g may alias x)
            kick = dw.mul_(g) if sde.noise == "diagonal" else torch.matmul(g, dw.unsqueeze(-1)).squeeze(-1)
            x.add_(drift, alpha=dt).add_(kick, alpha=sqrt_dt)
            if not torch.isfinite(x.sum()):  # one reduction; locate the walker only on failure
                raise DivergenceError(_first_divergent(x), step, t0 + step * dt)
            if step % save_every == 0:
                out[step // save_every] = x.cpu()
            if step % 256 == 0 or step == n_steps:
                bar.update(step - bar.n)

    return xr.DataArray(
        out.numpy(),
        dims=("time", "walker", "coord"),
        coords={"time": t0 + dt * saved_steps, "walker": np.arange(walkers), "coord": names},
        name="x",
        attrs={"long_name": "fine-scale state", "integrator": "euler_maruyama", "dt": dt,
               "noise_dtype": str(noise_dtype).removeprefix("torch.")},
    )
