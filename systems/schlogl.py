"""The Schlögl model: a bistable chemical reaction network with two folds (Schlögl 1972).

    A + 2X ⇌ 3X  (rates k1, k2),     B ⇌ X  (rates b, k4)

with A and B buffered, at volume Ω. The state is the concentration x = X/Ω of X (X molecules); the
propensities of the four reactions at count X are

    k1 X(X−1)/Ω,   k2 X(X−1)(X−2)/Ω²,   b Ω,   k4 X,

a birth–death chain with births β(X) = k1 X(X−1)/Ω + bΩ and deaths δ(X) = k2 X(X−1)(X−2)/Ω² + k4 X.

Analytic facts:

- the **rate equation** (Ω → ∞) dx/dt = f(x) = k1 x² − k2 x³ + b − k4 x; its steady states are the
  roots of b = g(x) = k2 x³ − k1 x² + k4 x, its folds the extrema of g (3 k2 x² − 2 k1 x + k4 = 0);
  at the defaults (k1, k2, k4) = (3, 1, 2.5) they lie at x = 1 ∓ 1/√6, b = 0.6361 and 0.3639;
- the chain's **mean drift** in concentration at x = X/Ω, d E[x]/dt = (β − δ)/Ω,
  F_Ω(x) = k1 x(x − 1/Ω) − k2 x(x − 1/Ω)(x − 2/Ω) + b − k4 x = f(x) − (k1 x − 3 k2 x²)/Ω − 2 k2 x/Ω²;
  b enters F_Ω as it enters f, so the chain's steady-state curve b_Ω(x) = g(x) + (k1 x − 3 k2 x²)/Ω
  + 2 k2 x/Ω² differs from g(x), folds included, by at most (k1 x + 3 k2 x²)/Ω + 2 k2 x/Ω²;
- the **stationary distribution** of the chain, π(X) ∝ Π_{Y<X} β(Y)/δ(Y + 1) (detailed balance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqfree.errors import InputError
from eqfree.evolve import GillespieEvolver, ReactionNetwork
from eqfree.seeding import SeedLike, as_seed_sequence, child
from eqfree.validation import checked_count

from .base import System


@dataclass(frozen=True)
class RoundingLift:
    """The :class:`~eqfree.Lift` of a concentration z to whole counts at volume Ω: X = ⌊zΩ⌋ + 1{U < frac(zΩ)},
    so that E[X/Ω] = z (the chain has no fast variables: a state is its own coarse value)."""

    volume: float
    valid_range: tuple[float, float] | None = (0.0, np.inf)

    def __call__(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        z = np.asarray(z, dtype=float).reshape(-1)
        if z.shape != (1,) or not z[0] >= 0:
            raise InputError(f"the Schlögl lift takes one non-negative concentration, got {z!r}")
        scaled = z[0] * self.volume
        up = np.random.default_rng(as_seed_sequence(seed)).random(n) < scaled - np.floor(scaled)
        return ((np.floor(scaled) + up) / self.volume)[:, None]


class Schlogl(System):
    """The Schlögl reactions A + 2X ⇌ 3X, B ⇌ X (Schlögl 1972; module doc) at volume Ω = ``omega``, rates
    ``k1``, ``k2``, ``b``, ``k4``; the state is the concentration x1 = X/Ω, simulated by Gillespie's SSA.
    """

    name = "schlogl"
    dim = 1
    slow = ("x1",)
    noise = "jump"
    defaults = {"omega": 100.0, "k1": 3.0, "k2": 1.0, "b": 0.5, "k4": 2.5}
    default_dt = 0.01
    summary = "Schloegl reactions A+2X <-> 3X, B <-> X by Gillespie's SSA; concentration x1 = X/omega, bistable"

    def __init__(self, **params):
        super().__init__(**params)
        if self.omega < 1 or min(self.k1, self.k2, self.b, self.k4) < 0 or self.k2 == 0:
            raise InputError(f"schlogl needs omega >= 1, k2 > 0 and non-negative rates, got {self.params}")

    @property
    def x0(self) -> np.ndarray:
        """The lowest steady state of the rate equation, rounded to whole counts."""
        return np.array([np.round(self.steady_states()[0] * self.omega) / self.omega])

    def propensities(self, counts: np.ndarray) -> np.ndarray:
        """(k1 X(X−1)/Ω, k2 X(X−1)(X−2)/Ω², b Ω, k4 X) at counts X ``(walkers, 1)``: ``(walkers, 4)``."""
        x = counts[:, 0].astype(float)
        omega = self.omega
        return np.column_stack([self.k1 * x * (x - 1) / omega, self.k2 * x * (x - 1) * (x - 2) / omega**2,
                                np.full_like(x, self.b * omega), self.k4 * x])

    def network(self) -> ReactionNetwork:
        """The four reactions as a :class:`~eqfree.evolve.ReactionNetwork`: stoichiometry (+1, −1, +1, −1)."""
        return ReactionNetwork(np.array([[1], [-1], [1], [-1]]), self.propensities)

    def evolver(self, dt: float | None = None, *, leap: float | None = None) -> GillespieEvolver:
        """Gillespie's SSA (or tau-leaping with ``leap``) saving every ``dt``; states are concentrations."""
        return GillespieEvolver(self.network(), self.dt if dt is None else dt, volume=self.omega, leap=leap,
                                coords=self.coords)

    def simulate(self, n_walkers: int, n_steps: int, *, seed, dt: float | None = None, x0=None, save_every: int = 1,
                 progress: bool | None = None, leap: float | None = None, device=None, noise_dtype=None):
        """SSA runs from ``x0`` (default :attr:`x0`); dims ``(time, walker, coord)``. The SSA runs in numpy on
        the CPU with float64 uniforms: ``device`` must be the CPU, ``noise_dtype`` has no use."""
        if device is not None and str(device) != "cpu":
            raise InputError(f"the Schlögl model's SSA runs on the CPU, not {device}: drop --device")
        n_walkers = checked_count(n_walkers, "n_walkers")
        x0 = np.broadcast_to(self.x0 if x0 is None else np.asarray(x0, dtype=float), (n_walkers, 1))
        result = self.evolver(dt, leap=leap)(x0, n_steps, seed=seed, save_every=save_every, progress=progress)
        result.attrs.update(system=self.name, **{f"param_{k}": v for k, v in self.params.items()})
        return result

    def exact_lift(self, dt: float | None = None) -> RoundingLift:
        """:class:`RoundingLift` at volume Ω (``dt`` is not used: the SSA has no step error)."""
        return RoundingLift(self.omega)

    # analytic facts -------------------------------------------------------------------------
    def rate_equation(self, x, b: float | None = None):
        """f(x) = k1 x² − k2 x³ + b − k4 x."""
        x = np.asarray(x, dtype=float)
        return self.k1 * x**2 - self.k2 * x**3 + (self.b if b is None else b) - self.k4 * x

    def branch(self, x):
        """b = g(x) = k2 x³ − k1 x² + k4 x, the inflow at which x is a steady state of the rate equation."""
        x = np.asarray(x, dtype=float)
        return self.k2 * x**3 - self.k1 * x**2 + self.k4 * x

    def branch_bound(self, x):
        """|b_Ω(x) − g(x)| ≤ (k1 x + 3 k2 x²)/Ω + 2 k2 x/Ω² (module doc)."""
        x = np.asarray(x, dtype=float)
        return (self.k1 * x + 3 * self.k2 * x**2) / self.omega + 2 * self.k2 * x / self.omega**2

    def chain_branch(self, x):
        """b_Ω(x) = g(x) + (k1 x − 3 k2 x²)/Ω + 2 k2 x/Ω², where the chain's mean drift vanishes (module doc)."""
        x = np.asarray(x, dtype=float)
        return self.branch(x) + (self.k1 * x - 3 * self.k2 * x**2) / self.omega + 2 * self.k2 * x / self.omega**2

    def chain_drift(self, x):
        """F_Ω(x) = (β(xΩ) − δ(xΩ))/Ω, the chain's mean drift in concentration per unit time."""
        x = np.asarray(x, dtype=float)
        counts = np.atleast_1d(x * self.omega)[:, None]
        rates = self.propensities(counts)
        return ((rates[:, 0] + rates[:, 2] - rates[:, 1] - rates[:, 3]) / self.omega).reshape(x.shape)

    def steady_states(self, b: float | None = None) -> np.ndarray:
        """Non-negative real roots of f (ascending)."""
        roots = np.roots([-self.k2, self.k1, -self.k4, self.b if b is None else b])
        return np.sort(roots[(np.abs(roots.imag) < 1e-9) & (roots.real >= 0)].real)

    def folds(self) -> np.ndarray:
        """(x, b) of the rate equation's folds, rows ordered by x."""
        x = np.sort(np.roots([3 * self.k2, -2 * self.k1, self.k4]).real)
        return np.column_stack([x, self.branch(x)])

    def stationary_distribution(self, tail: float = 1e-16) -> tuple[np.ndarray, np.ndarray]:
        """Counts X = 0, 1, ... and π(X) of the chain, cut where the recursion's terms fall below ``tail``
        times the largest."""
        log_terms, x = [0.0], 0
        while True:
            births = self.propensities(np.array([[x]]))[0]
            deaths = self.propensities(np.array([[x + 1]]))[0]
            log_terms.append(log_terms[-1] + np.log(births[0] + births[2]) - np.log(deaths[1] + deaths[3]))
            x += 1
            if x > 10 and log_terms[-1] < max(log_terms) + np.log(tail) and log_terms[-1] < log_terms[-2]:
                break
        log_pi = np.array(log_terms) - max(log_terms)
        pi = np.exp(log_pi)
        return np.arange(len(pi)), pi / pi.sum()

    def stationary_samples(self, n: int, *, seed: SeedLike) -> np.ndarray:
        """n concentrations drawn from π, ``(n, 1)``."""
        counts, pi = self.stationary_distribution()
        rng = np.random.default_rng(child(seed, 0))
        return (rng.choice(counts, size=checked_count(n, "n"), p=pi) / self.omega)[:, None]
