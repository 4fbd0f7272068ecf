"""What every SDE scheme shares: an ensemble of walkers advanced together, the fields with an added bias,
the noise stream, the divergence check and the saved trajectory.

A scheme is a class with a ``name``, ``draws(m)`` (standard normals per walker and step, m the number of
Brownian motions) and a constructor ``Scheme(fields, x, t0, dt, noise)`` whose instances advance the
ensemble in place, ``step(x, t)``. :func:`run_scheme` validates the arguments, builds the noise stream
(:mod:`eqfree.evolve.noise`: the draws of walker i depend only on (seed, i, step)), runs the steps and
returns the saved states.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import xarray as xr

from .. import errors
from ..errors import InputError
from ..progress import progress_bar
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


def broadcast_field(value: torch.Tensor, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """``value`` broadcast to ``shape``, or an InputError naming the field ``what``."""
    try:
        return torch.broadcast_to(value, shape)
    except (RuntimeError, TypeError) as error:
        got = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise InputError(f"{what} returned {got}, which does not broadcast to {shape}") from error


ROWS_PER_TILE = 256


def add_product_(x: torch.Tensor, a: torch.Tensor, g: torch.Tensor, value: float) -> torch.Tensor:
    """``x += value · a ∘ g`` in place in one pass (``torch.addcmul``: (value a) g added by a fused multiply-add), for
    ``x`` and ``a`` ``(walkers, m)`` and g broadcastable to them. On large ensembles a g shared by all walkers
    (m numbers) is tiled over :data:`ROWS_PER_TILE` rows, so the product runs along rows of 256 m elements instead
    of m (torch's broadcast over a short last axis is ~5x slower); the same operations, element for element. Below
    16 tiles of walkers the tiling costs more than it saves."""
    if (x.shape[0] < 16 * ROWS_PER_TILE or g.numel() != x.shape[-1]
            or not (x.is_contiguous() and a.is_contiguous())):
        return x.addcmul_(a, g, value=value)
    whole, width = x.shape[0] - x.shape[0] % ROWS_PER_TILE, ROWS_PER_TILE * x.shape[-1]
    x[:whole].view(-1, width).addcmul_(a[:whole].view(-1, width), g.reshape(-1).repeat(ROWS_PER_TILE), value=value)
    x[whole:].addcmul_(a[whole:], g.reshape(-1), value=value)
    return x


class Fields:
    """The drift f(x, t) − ∇U(x) (unit mobility for the bias U) and the diffusion g(x, t) of ``sde``,
    computed together where the SDE offers it (:class:`~eqfree.evolve.sde.JointFields`)."""

    def __init__(self, sde: SDEProtocol, bias: Potential | None):
        self.sde, self.bias = sde, bias
        self._both = sde.drift_and_diffusion if isinstance(sde, JointFields) else None
        #: diagonal noise: g ``(walkers, dim)`` multiplies dW elementwise; otherwise g is ``(walkers, dim, m)``
        self.diagonal = sde.noise == "diagonal"

    def __call__(self, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(drift, g) at ``x``; g is never a view of ``x`` (copied if the SDE returned one), so a scheme may move
        ``x`` before it adds the kick."""
        drift, g = self._both(x, t) if self._both else (self.sde.drift(x, t), self.sde.diffusion(x, t))
        if self.bias is not None:
            drift = drift + bias_force(self.bias, x)
        if torch.is_tensor(g) and g.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
            g = g.clone()
        return drift, g

    def add_kick_(self, x: torch.Tensor, g: torch.Tensor, dw: torch.Tensor, scale: float) -> torch.Tensor:
        """``x += scale · g dw`` per walker in place, ``dw`` ``(walkers, m)`` (left as it is); for diagonal noise in
        one fused pass (:func:`add_product_`)."""
        if self.diagonal:
            return add_product_(x, dw, g, scale)
        return x.add_(torch.matmul(g, dw.unsqueeze(-1)).squeeze(-1), alpha=scale)

    def noise_dimension(self, x: torch.Tensor, t: float) -> int:
        """m, the number of Brownian motions, after checking the shapes the fields return."""
        walkers, dim = x.shape
        diffusion = self.sde.diffusion(x, t)
        if self.diagonal:
            broadcast_field(diffusion, (walkers, dim), "diffusion (diagonal noise)")
            m = dim
        else:
            if not torch.is_tensor(diffusion) or diffusion.ndim < 2:
                raise InputError("diffusion with general noise must return shape (walkers, dim, m) or (dim, m)")
            m = diffusion.shape[-1]
            broadcast_field(diffusion, (walkers, dim, m), "diffusion (general noise)")
        broadcast_field(self.sde.drift(x, t), (walkers, dim), "drift")
        return m


class Scheme:
    """A one-step rule over an ensemble (module doc); subclasses implement :meth:`step`."""

    name: str

    @staticmethod
    def draws(m: int) -> int:
        """Standard normals per walker and step for m Brownian motions."""
        return m

    def __init__(self, fields: Fields, x: torch.Tensor, t0: float, dt: float, noise: BlockNoise):
        self.fields, self.dt, self.noise = fields, dt, noise
        self.sqrt_dt = math.sqrt(dt)

    def step(self, x: torch.Tensor, t: float) -> None:
        """Advance the walkers ``x`` ``(walkers, dim)`` in place from time t to t + Δt."""
        raise NotImplementedError

    def attrs(self) -> dict:
        """What the scheme reports about a run (stored in the trajectory's attributes)."""
        return {}


def first_divergent(x: torch.Tensor) -> int:
    """The first walker with a non-finite coordinate (or the largest, when only a sum overflowed)."""
    bad = ~torch.isfinite(x).all(dim=1)
    if not bad.any():
        bad = x.abs().amax(dim=1) == x.abs().amax()
    return int(torch.nonzero(bad)[0])


def run_scheme(
    scheme: type[Scheme],
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
    progress: bool | None = None,
    first_walker: int = 0,
) -> xr.DataArray:
    """Advance the walkers ``x0`` ``(walkers, dim)`` by ``n_steps`` of ``scheme`` (see
    :func:`eqfree.evolve.integrate` for the parameters); dims ``(time, walker, coord)``."""
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

    fields = Fields(sde, bias)
    m = fields.noise_dimension(x, t0)
    noise = BlockNoise(seed, walkers, scheme.draws(m), device, noise_dtype,
                       checked_count(first_walker, "first_walker", 0))
    stepper = scheme(fields, x, t0, dt, noise)
    saved_steps = np.arange(0, n_steps + 1, save_every)
    out = torch.empty((len(saved_steps), walkers, dim), dtype=torch.float64)
    out[0] = x.cpu()

    advance, total = stepper.step, x.sum
    with progress_bar(progress, total=n_steps, unit="step", desc=scheme.name) as bar:
        for step in range(1, n_steps + 1):
            advance(x, t0 + (step - 1) * dt)
            if not math.isfinite(total().item()):  # one reduction; locate the walker only on failure
                raise DivergenceError(first_divergent(x), step, t0 + step * dt)
            if step % save_every == 0:
                out[step // save_every] = x.cpu()
            if step % 256 == 0 or step == n_steps:
                bar.update(step - bar.n)

    return xr.DataArray(
        out.numpy(),
        dims=("time", "walker", "coord"),
        coords={"time": t0 + dt * saved_steps, "walker": np.arange(walkers), "coord": names},
        name="x",
        attrs={"long_name": "fine-scale state", "integrator": scheme.name, "dt": dt,
               "noise_dtype": str(noise_dtype).removeprefix("torch."), **stepper.attrs()},
    )
