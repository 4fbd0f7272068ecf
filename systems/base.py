"""The shape every model system shares: named parameters, an SDE, defaults and analytic facts.

A :class:`System` satisfies the :class:`~eqfree.operators.System` protocol (``name``, ``dim``,
``coords``, ``slow``, ``beta``, ``x0``, ``dt``, ``params``, ``evolver(dt)``) and is itself a duck-typed
SDE (``drift``, ``diffusion``, ``noise``), so it can be handed to any integrator; its default step
``dt`` follows appendix C of Crabtree, Bello-Rivas, Ferguson & Kevrekidis, "GANs and closures:
micro-macro consistency in multiscale modeling", and its default ``scheme`` is the Leimkuhler–Matthews
integrator where the noise is additive (second order in the invariant law, exact for the
Ornstein–Uhlenbeck fast variables: :mod:`eqfree.evolve.leimkuhler_matthews`), Euler–Maruyama elsewhere.
Analytic facts that depend on the integrator (``reference_moments``, ``exact_lift(dt)``) are those of
the scheme named, by default the system's own.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import xarray as xr

from eqfree.errors import InputError
from eqfree.evolve import SDEEvolver, coordinate_names, integrate
from eqfree.validation import checked_count


class System:
    """Base class: subclasses set the class attributes and implement ``drift``/``diffusion``."""

    name: ClassVar[str]
    dim: ClassVar[int]
    slow: ClassVar[tuple[str, ...]]
    noise: ClassVar[str] = "diagonal"
    #: β = 1/kT of the equilibrium law: with unit-noise dynamics (dX = −∇V dt + √2 dW, or a scale set by the
    #: parameters) it is 1, the unit in which an added bias potential is reported; systems with a ``beta``
    #: parameter (``double_well``) set their own. A bias U added at unit mobility to a coordinate with noise σ
    #: is removed by reweighting with exp(+2U/σ²), i.e. β = 2/σ² of the biased coordinates: double_well's
    #: declared β is that (σ² = 2/β); fast_slow_linear's x1 (σ = a2) would need β = 2/a2² = 2·10⁶, caps' and
    #: averaging_cubic's x1 carry no noise (no Gibbs law to reweight to), half_moons' noise depends on the
    #: state: for those the windows serve as lifts (their conditional laws), and their reweighted PMFs are
    #: not physical free energies
    beta: ClassVar[float] = 1.0
    defaults: ClassVar[dict[str, float]]
    default_dt: ClassVar[float]
    summary: ClassVar[str]
    #: the integrator :meth:`evolver` and :meth:`simulate` run (a name of :data:`eqfree.evolve.SCHEMES`)
    scheme: ClassVar[str] = "leimkuhler_matthews"
    #: names of the observed coordinates when the paper shows the data through a map (caps: eq. 6.2)
    observed: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise InputError(
                f"unknown parameter(s) {unknown} for system {self.name!r}; "
                f"valid parameters: {sorted(self.defaults)}"
            )
        self.params = dict(self.defaults)
        for key, value in params.items():
            try:
                self.params[key] = float(value)
            except (TypeError, ValueError):
                raise InputError(f"parameter {key!r} of system {self.name!r} must be a number, got {value!r}") from None
            if not np.isfinite(self.params[key]):
                raise InputError(f"parameter {key!r} of system {self.name!r} must be finite, got {value!r}")
        for key, value in self.params.items():
            setattr(self, key, value)
        self.dt = self.default_dt

    @property
    def coords(self) -> list[str]:
        """The fine coordinates' names ``x1, ..., x{dim}``."""
        return coordinate_names(self.dim)

    @property
    def x0(self) -> np.ndarray:
        """Default initial state, shape ``(dim,)``."""
        raise NotImplementedError

    def drift(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """f(x, t), broadcastable to ``(walkers, dim)``; each system gives its own."""
        raise NotImplementedError

    def diffusion(self, x: torch.Tensor, t: float) -> torch.Tensor:
        """g(x, t): ``(walkers, dim)`` (diagonal noise) or ``(walkers, dim, m)`` (general); given by each system."""
        raise NotImplementedError

    def observe(self, x: np.ndarray) -> np.ndarray:
        """Map states ``(..., dim)`` to the observed coordinates (only where :attr:`observed` is set)."""
        raise NotImplementedError(f"system {self.name!r} has no observation map")

    def reference_moments(self, coord: str, dt: float) -> dict[str, tuple[float, float]] | None:
        """Known stationary (mean, variance) of a fast coordinate: ``{"exact": ..., scheme: ...}`` for
        the schemes whose invariant moments at step ``dt`` are known (here ``euler_maruyama`` and
        ``leimkuhler_matthews``), or ``None`` where none is known."""
        return None

    def exact_lift(self, dt: float | None = None, scheme: str | None = None):
        """The exact conditional law of the fast coordinates given the slow one, as a Lift (where known;
        with ``dt``: the invariant law of ``scheme``, by default :attr:`scheme`, at that step)."""
        raise InputError(f"system {self.name!r} has no exact conditional law: lift by umbrella sampling instead")

    def evolver(self, dt: float | None = None, **options) -> SDEEvolver:
        """The Evolve operator of this system: :attr:`scheme` (or ``scheme=...``) with step ``dt``."""
        options = {"scheme": self.scheme, **options}
        return SDEEvolver(self, self.dt if dt is None else dt, coords=self.coords, **options)

    def simulate(self, n_walkers: int, n_steps: int, *, seed, dt: float | None = None, x0=None,
                 save_every: int = 1, **options) -> xr.DataArray:
        """:attr:`scheme` (or ``scheme=...``) from ``x0`` (default: :attr:`x0` for every walker); dims
        ``(time, walker, coord)``."""
        n_walkers = checked_count(n_walkers, "n_walkers")
        if x0 is None:
            x0 = np.broadcast_to(self.x0, (n_walkers, self.dim))
        else:
            x0 = np.asarray(x0, dtype=float)
            if x0.shape not in {(self.dim,), (n_walkers, self.dim)}:
                raise InputError(
                    f"x0 for {self.name} must have shape ({self.dim},) or ({n_walkers}, {self.dim}), got {x0.shape}"
                )
            x0 = np.broadcast_to(x0, (n_walkers, self.dim))
        options = {"scheme": self.scheme, **options}
        result = integrate(self, x0, dt=self.dt if dt is None else dt, n_steps=n_steps, seed=seed,
                           save_every=save_every, coords=self.coords, **options)
        result.attrs.update(system=self.name, **{f"param_{k}": v for k, v in self.params.items()})
        return result

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def euler_maruyama_ou_variance(rate: float, sigma: float, dt: float) -> float:
    """Invariant variance of Euler–Maruyama for dx = −rate·x dt + σ dW: σ² / (rate (2 − rate dt)).

    (The exact process has σ²/(2 rate); the scheme's chain x' = (1 − rate dt) x + σ√dt ξ is stable for
    rate·dt < 2.)
    """
    return sigma**2 / (rate * (2 - rate * dt))


def ou_variance(rate: float, sigma: float, dt: float | None = None, scheme: str = "leimkuhler_matthews") -> float:
    """Stationary variance of dx = −rate·x dt + σ dW: σ²/(2 rate) exactly (``dt`` None), or the invariant
    variance of ``scheme`` at step ``dt``. The Leimkuhler–Matthews chain x' = (1 − rate dt) x + σ√dt (ξ + ξ')/2
    has it exact (x_n = c[ξ_n + (1 + a) Σ_k a^(k−1) ξ_(n−k)], a = 1 − rate dt, c = σ√dt/2, so Var =
    c²·2/(1 − a) = σ²/(2 rate)); Euler–Maruyama has :func:`euler_maruyama_ou_variance`."""
    if dt is None or scheme == "leimkuhler_matthews":
        return sigma**2 / (2 * rate)
    if scheme == "euler_maruyama":
        return euler_maruyama_ou_variance(rate, sigma, dt)
    raise InputError(f"the invariant variance of scheme {scheme!r} is not known here: "
                     "use 'euler_maruyama' or 'leimkuhler_matthews'")


def ou_reference_moments(mean: float, rate: float, sigma: float, dt: float) -> dict[str, tuple[float, float]]:
    """``{"exact", "euler_maruyama", "leimkuhler_matthews"}`` → (mean, variance) of an Ornstein–Uhlenbeck
    coordinate, exactly and under each scheme at step ``dt``."""
    return {"exact": (mean, ou_variance(rate, sigma)),
            **{scheme: (mean, ou_variance(rate, sigma, dt, scheme)) for scheme in ("euler_maruyama",
                                                                                   "leimkuhler_matthews")}}


def columns(*values) -> torch.Tensor:
    """Assemble per-walker components (tensors of shape ``(walkers,)`` or numbers) into ``(walkers, dim)``.

    Writes into one fresh array (cheaper than ``torch.stack`` on large ensembles).
    """
    reference = next(v for v in values if torch.is_tensor(v))
    out = reference.new_empty((*reference.shape, len(values)))
    for i, value in enumerate(values):
        column = out.select(-1, i)
        column.copy_(value) if torch.is_tensor(value) else column.fill_(value)
    return out
