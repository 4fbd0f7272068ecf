"""Stochastic chemical kinetics: Gillespie's exact stochastic simulation algorithm, and tau-leaping.

A reaction network of S species and M reactions is its stoichiometry ν (M, S) — reaction j changes the
counts by ν_j — and its propensities a(X) (walkers, S) → (walkers, M): a_j(X) dt is the probability
that reaction j fires in [t, t + dt). States at the operator boundary are concentrations x = X/Ω
(Ω the volume; Ω = 1 gives counts).

**SSA** (Gillespie 1977, the direct method): with a₀ = Σ_j a_j, the next reaction fires after
τ = −log(u₁)/a₀ and is the j with Σ_{i<j} a_i < u₂ a₀ ≤ Σ_{i≤j} a_i. Saved states are those
holding at the save times (the state is piecewise constant).

**Tau-leaping** (Gillespie 2001): over a leap δ, reaction j fires K_j ~ Poisson(a_j(X) δ) times,
X ← X + Σ_j K_j ν_j; exact as δ → 0, first order in δ; a leap that would make a count negative is
refused (take a shorter leap).

**Seeding** (as :mod:`eqfree.evolve.noise`): walkers are grouped in blocks of
:data:`~eqfree.evolve.noise.WALKERS_PER_BLOCK`; block b draws from its own generator, seeded by
child b of the seed, a full block of rows per event (SSA) or per leap. Every walker that is still
running takes exactly one event per round, so walker i's k-th event uses row i of its block's k-th
draw: its numbers do not depend on the other walkers of the call, and ``first_walker`` places a
call's walkers anywhere in that numbering (same seed, same numbers, whatever the split).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import special

from ..errors import InputError, InputTypeError
from ..progress import progress_bar
from ..seeding import SeedLike, child
from ..validation import checked_count, checked_positive
from .ensemble import coordinate_names
from .noise import WALKERS_PER_BLOCK


@dataclass(frozen=True)
class ReactionNetwork:
    """Stoichiometry ``(n_reactions, n_species)`` and ``propensities(X) -> (walkers, n_reactions)`` of counts X."""

    stoichiometry: np.ndarray
    propensities: Callable[[np.ndarray], np.ndarray]

    def __post_init__(self):
        nu = np.asarray(self.stoichiometry)
        if nu.ndim != 2 or not np.array_equal(nu, np.round(nu)):
            raise InputError(f"stoichiometry must be an integer matrix (n_reactions, n_species), got {nu!r}")
        if not callable(self.propensities):
            raise InputTypeError("propensities must be callable as propensities(X) -> (walkers, n_reactions)")
        object.__setattr__(self, "stoichiometry", nu.astype(np.int64))

    @property
    def n_species(self) -> int:
        """S, the number of species (columns of the stoichiometry)."""
        return self.stoichiometry.shape[1]

    def rates(self, counts: np.ndarray) -> np.ndarray:
        """The propensities at ``counts`` (walkers, n_species), checked."""
        a = np.asarray(self.propensities(counts), dtype=float)
        if a.shape != (counts.shape[0], self.stoichiometry.shape[0]) or not np.all(np.isfinite(a)) or np.any(a < 0):
            raise InputError(f"propensities must be finite, non-negative, of shape (walkers, n_reactions) = "
                             f"{(counts.shape[0], self.stoichiometry.shape[0])}; got shape {a.shape}")
        return a


def poisson_quantile(u: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The smallest k with P(K ≤ k) ≥ u for K ~ Poisson(mean), elementwise (inversion, one uniform per draw):
    k = ⌈κ⌉ or ⌈κ⌉ − 1 with κ the continuous solution of Q(κ + 1, mean) = u (``scipy.special.pdtrik``)."""
    u = np.minimum(u, 1 - 1e-16)
    with np.errstate(invalid="ignore"):
        upper = np.ceil(np.nan_to_num(special.pdtrik(u, mean)))
    lower = np.maximum(upper - 1, 0)
    k = np.where(special.pdtr(lower, mean) >= u, lower, upper)
    return np.where(mean > 0, k, 0).astype(np.int64)


class BlockUniforms:
    """Uniforms in (0, 1], ``(walkers, width)`` per call, row i from walker ``first + i``'s block (module doc)."""

    def __init__(self, seed: SeedLike, walkers: int, width: int, first: int = 0):
        first_block = first // WALKERS_PER_BLOCK
        n_blocks = (first + walkers - 1) // WALKERS_PER_BLOCK + 1 - first_block
        self.generators = [np.random.default_rng(child(seed, first_block + b)) for b in range(n_blocks)]
        offset = first - first_block * WALKERS_PER_BLOCK
        self.rows = slice(offset, offset + walkers)
        self.width = width

    def __call__(self) -> np.ndarray:
        draws = np.concatenate([g.random((WALKERS_PER_BLOCK, self.width)) for g in self.generators])
        return 1.0 - draws[self.rows]


@dataclass
class GillespieEvolver:
    """The :class:`~eqfree.Evolve` operator of a reaction network: bursts of ``n_steps`` save intervals
    ``dt`` by the SSA (``leap=None``) or by tau-leaping with leap ``leap`` (dividing ``dt``); states are
    concentrations X/``volume`` (module doc)."""

    network: ReactionNetwork
    dt: float
    volume: float = 1.0
    leap: float | None = None
    coords: Sequence[str] | None = None
    #: chemical kinetics has no energy: nothing to bias, no temperature
    beta: float = math.nan

    def __post_init__(self):
        self.dt = checked_positive(self.dt, "dt (the save interval)")
        self.volume = checked_positive(self.volume, "volume")
        self.coords = coordinate_names(self.network.n_species, self.coords)
        if self.leap is not None:
            self.leap = checked_positive(self.leap, "leap")
            if not math.isclose(self.dt / self.leap, round(self.dt / self.leap), rel_tol=1e-9):
                raise InputError(f"the leap {self.leap} must divide the save interval dt = {self.dt}")

    def biased(self, bias) -> GillespieEvolver:
        """Refused with :class:`~eqfree.errors.InputError`: a reaction network has no potential to bias."""
        raise InputError("a reaction network has no potential to bias: umbrella sampling does not apply; "
                         "lift by other means")

    def counts(self, x) -> np.ndarray:
        """Concentrations ``(walkers, n_species)`` as counts, refused unless whole and non-negative."""
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.network.n_species:
            raise InputError(f"states must have shape (walkers, {self.network.n_species}), got {x.shape}")
        counts = np.rint(x * self.volume)
        if not np.allclose(counts, x * self.volume, rtol=0, atol=1e-6) or np.any(counts < 0):
            raise InputError(f"states must be non-negative multiples of 1/volume = {1 / self.volume:g} "
                             "(whole molecule counts)")
        return counts.astype(np.int64)

    def __call__(self, x, n_steps: int, *, seed: SeedLike, save_every: int = 1, first_walker: int = 0,
                 progress: bool | None = None) -> xr.DataArray:
        """A burst of ``n_steps`` save intervals from ``x`` ``(walkers, n_species)``; dims ``(time, walker, coord)``."""
        counts = self.counts(x)
        n_steps = checked_count(n_steps, "n_steps", 0)
        save_every = checked_count(save_every, "save_every")
        if n_steps % save_every:
            raise InputError(f"save_every = {save_every} must divide n_steps = {n_steps}")
        times = self.dt * save_every * np.arange(n_steps // save_every + 1)
        if self.leap is None:
            saved = self.ssa(counts, times, seed, first_walker, progress)
        else:
            saved = self.tau_leaping(counts, times, seed, first_walker, progress)
        return xr.DataArray(saved / self.volume, dims=("time", "walker", "coord"),
                            coords={"time": times, "coord": list(self.coords)}, name="x",
                            attrs={"dt": self.dt, "method": "ssa" if self.leap is None else "tau_leaping"})

    def ssa(self, counts: np.ndarray, times: np.ndarray, seed, first: int, progress: bool) -> np.ndarray:
        """Counts ``(len(times), walkers, n_species)`` at the save ``times`` from ``counts`` ``(walkers, n_species)``
        by Gillespie's (1977) direct method (module doc); the walkers are walkers ``first, first + 1, ...`` of ``seed``.
        """
        walkers = counts.shape[0]
        saved = np.empty((len(times), *counts.shape))
        saved[0] = counts
        t = np.zeros(walkers)
        next_save = np.ones(walkers, dtype=np.int64)  # index into times of the next state to save
        running = np.flatnonzero(next_save < len(times))
        uniforms = BlockUniforms(seed, walkers, 2, first)
        nu = self.network.stoichiometry
        with progress_bar(progress, total=walkers, desc="SSA walkers done") as bar:
            while running.size:
                u = uniforms()[running]
                a = self.network.rates(counts[running])
                total = a.sum(axis=1)
                with np.errstate(divide="ignore"):
                    t_next = t[running] + np.where(total > 0, -np.log(u[:, 0]) / total, np.inf)
                # save the current state at every save time passed before the event
                while True:
                    due = next_save[running] < len(times)
                    due[due] &= times[next_save[running][due]] < t_next[due]
                    if not due.any():
                        break
                    w = running[due]
                    saved[next_save[w], w] = counts[w]
                    next_save[w] += 1
                fires = next_save[running] < len(times)
                w, a, total, u = running[fires], a[fires], total[fires], u[fires]
                reaction = (np.cumsum(a, axis=1) < (u[:, 1] * total)[:, None]).sum(axis=1)
                counts[w] += nu[np.minimum(reaction, nu.shape[0] - 1)]
                t[w] = t_next[fires]
                bar.update(running.size - w.size)
                running = w
        return saved

    def tau_leaping(self, counts: np.ndarray, times: np.ndarray, seed, first: int, progress: bool) -> np.ndarray:
        """Counts ``(len(times), walkers, n_species)`` at the save ``times`` by tau-leaping with leap δ = ``leap``
        (Gillespie 2001; module doc): K_j ~ Poisson(a_j(X) δ) firings of each reaction per leap.
        """
        walkers, nu = counts.shape[0], self.network.stoichiometry
        per_save = round((times[1] - times[0]) / self.leap) if len(times) > 1 else 0
        saved = np.empty((len(times), *counts.shape))
        saved[0] = counts
        uniforms = BlockUniforms(seed, walkers, nu.shape[0], first)
        for k in progress_bar(progress, iterable=range(1, len(times)), desc="tau-leaping"):
            for _ in range(per_save):
                fired = poisson_quantile(uniforms(), self.network.rates(counts) * self.leap)
                counts = counts + fired @ nu
                if np.any(counts < 0):
                    raise InputError(f"a tau-leap of {self.leap:g} made a count negative: take a shorter leap")
            saved[k] = counts
        return saved
