"""Kinetics of a closed SDE dz = B(z) dt + √D(z) dW: mean first-passage times, rates and committors.

The mean first-passage time T(z) to a target region solves the backward Kolmogorov equation

    B·∇T + ½ D : ∇∇T = −1 outside the target,    T = 0 in it,

with reflecting (zero-flux) ends of the grid and periodic CVs wrapped; the committor q(z) (the probability
of reaching the target before the source) solves B·∇q + ½ D : ∇∇q = 0 with q = 0 in the source, 1 in the target
(Gardiner, *Stochastic Methods*, §5.5; Vanden-Eijnden, in *Computer Simulations in Condensed Matter*, 2006).

**1-D, by quadrature** (:func:`first_passage_time`). With ψ(z) = exp ∫ 2B/D the equation is
½ D ψ⁻¹ (ψ T′)′ = −1, so for a start z₀ below the target [b, …] and a reflecting lower end a,

    T(z₀) = ∫_{z₀}^{b} ψ(y)⁻¹ ∫_a^y 2 ψ(x)/D(x) dx dy

(above the target: the mirror image, reflecting at the upper end), by cumulative trapezoids on a fine mesh
over which the closure is interpolated. The stationary density is ρ ∝ ψ/D.

**n-D, by finite volumes** (:func:`grid_generator`). The generator on a regular grid is the rate matrix of a
Markov jump process between neighbouring cells (a Markov-chain approximation, Kushner & Dupuis 2001): along
axis i, Scharfetter–Gummel fluxes (exact for constant coefficients in 1-D, and never negative),

    k_{x → x ± h_i e_i} = (a_i/h_i²) Bern(∓ h_i B_i/a_i),    Bern(u) = u/(eᵘ − 1),
    a_i = ½ D_ii − Σ_{j≠i} |D_ij| h_i/(2 h_j),

and the cross terms D_ij ∂_i∂_j to the diagonal neighbours x ± (h_i e_i + sgn(D_ij) h_j e_j) at the rate
|D_ij|/(2 h_i h_j), with B and D at the midpoint of each pair of cells. It needs a_i > 0 (a grid fine enough
along the axis with the most diffusion relative to its spacing). The grid's end points are reflecting and hold
half a cell, so their inward rates double (zero flux through the end; with a correlated D the cross terms are
dropped at the ends, where the oblique reflection of the SDE is not represented). T and q then solve sparse
linear systems (:func:`solve`: SuperLU, or BiCGSTAB on large grids); the error is O(h²) where the Péclet
numbers h|B_i|/a_i are small.

**Standard errors** come from the closure's uncertainty: ``n_samples`` closures drawn from the estimates'
standard errors (independent normal draws at each grid point, as in :func:`~closures.integrate.mean_path`),
each solved in full; the standard error is the draws' standard deviation (itself uncertain by a factor
1 ± 1/√(2 n_samples)). The rate between a source region A and the target is k = 1/⟨T⟩_{ρ|A}, the inverse
of the mean first-passage time from the stationary density restricted to A.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.integrate import cumulative_trapezoid
from scipy.sparse.linalg import bicgstab, spsolve
from tqdm.auto import tqdm

from eqfree.errors import ConvergenceError, InputError
from eqfree.seeding import SeedLike, as_seed_sequence
from eqfree.validation import checked_count

from .model import Closure


@dataclass(frozen=True)
class Box:
    """A region: ``lo[i] <= z[i] <= hi[i]`` for every CV i."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]

    @classmethod
    def parse(cls, text: str) -> Box:
        """``lo:hi`` per CV, comma-separated (``0.5:3.5`` or ``-1:0,-2:2``).

        >>> Box.parse("-1:0,-2:2")
        Box(lo=(-1.0, -2.0), hi=(0.0, 2.0))
        """
        try:
            pairs = [tuple(float(v) for v in part.split(":")) for part in text.split(",")]
            lo, hi = zip(*pairs, strict=True)
        except ValueError:
            raise InputError(f"a region is lo:hi per CV, comma-separated (e.g. 0.5:3.5 or -1:0,-2:2), got {text!r}"
                             ) from None
        if any(len(p) != 2 for p in pairs) or not all(a <= b for a, b in zip(lo, hi, strict=True)):
            raise InputError(f"a region is lo:hi with lo <= hi per CV, comma-separated, got {text!r}")
        return cls(tuple(lo), tuple(hi))

    def contains(self, z: np.ndarray) -> np.ndarray:
        """Which rows of ``z`` (..., n) lie in the box."""
        z = np.asarray(z, dtype=float)
        return np.all((z >= np.array(self.lo)) & (z <= np.array(self.hi)), axis=-1)


def parse_point(text: str) -> np.ndarray:
    """Comma-separated coordinates, one per CV."""
    try:
        return np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise InputError(f"a point is comma-separated coordinates, one per CV (e.g. -2.5 or 1,0.5), got {text!r}"
                         ) from None


# -- 1-D, by quadrature ------------------------------------------------------------------------------------
def first_passage_time(mesh, drift, diffusion, target: tuple[float, float]) -> np.ndarray:
    """T on ``mesh`` (increasing) for dz = B dt + √D dW with ``drift`` and ``diffusion`` D > 0 given on it:
    0 in ``target = (lo, hi)``, and by the quadrature of the module doc elsewhere (reflecting at the mesh's ends).
    """
    z, b, d = (np.asarray(v, dtype=float) for v in (mesh, drift, diffusion))
    lo, hi = target
    if np.any(d[(z < lo) | (z > hi)] <= 0):
        raise InputError("the diffusion must be positive outside the target for a first-passage time")
    time = np.zeros_like(z)
    below, above = z < lo, z > hi
    if below.any():
        time[below] = _passage_up(z[below], b[below], d[below], lo)
    if above.any():
        time[above] = _passage_up(-z[above][::-1], -b[above][::-1], d[above][::-1], -hi)[::-1]
    return time


def _passage_up(z, b, d, boundary):
    """T(z) to ``boundary`` > z, reflecting at z[0]: T = ∫_z^{boundary} ψ⁻¹ ∫_{z[0]}^y 2ψ/D."""
    z, b, d = np.r_[z, boundary], np.r_[b, np.interp(boundary, z, b)], np.r_[d, np.interp(boundary, z, d)]
    phi = cumulative_trapezoid(2 * b / d, z, initial=0.0)
    psi = np.exp(phi - phi.max())
    inner = cumulative_trapezoid(2 * psi / d, z, initial=0.0)
    outer = cumulative_trapezoid(inner / psi, z, initial=0.0)
    return outer[-1] - outer[:-1]


def stationary_density(mesh, drift, diffusion) -> np.ndarray:
    """ρ ∝ ψ/D on ``mesh`` (reflecting ends), normalised by the trapezoid rule."""
    z, b, d = (np.asarray(v, dtype=float) for v in (mesh, drift, diffusion))
    phi = cumulative_trapezoid(2 * b / d, z, initial=0.0)
    rho = np.exp(phi - phi.max()) / d
    return rho / np.trapezoid(rho, z)


# -- n-D, by finite volumes ---------------------------------------------------------------------------------
def _bern(u):
    """u/(eᵘ − 1), 1 at u = 0."""
    u = np.asarray(u, dtype=float)
    small = np.abs(u) < 1e-8
    return np.where(small, 1 - u / 2, u / np.expm1(np.where(small, 1.0, u)))


def grid_generator(axes, drift, diffusion, periodic=None) -> sparse.csr_matrix:
    """The rate matrix Q (rows sum to 0) of the module doc's jump process on the regular grid ``axes``
    (one increasing, equispaced array per CV), with ``drift`` ``(*shape, n)`` and ``diffusion`` ``(*shape, n, n)``
    at the grid points; ``periodic[i]`` a period for a periodic CV (its grid without the repeated end), or None.
    Cells are numbered in C order of the grid.
    """
    axes = [np.asarray(a, dtype=float) for a in axes]
    n = len(axes)
    shape = tuple(a.size for a in axes)
    periodic = list(periodic or [None] * n)
    drift = np.asarray(drift, dtype=float).reshape(*shape, n)
    diffusion = np.asarray(diffusion, dtype=float).reshape(*shape, n, n)
    steps = []
    for i, a in enumerate(axes):
        gaps = np.diff(a)
        if a.size < 2 or not np.allclose(gaps, gaps[0], rtol=1e-6):
            raise InputError(f"axis {i} of the grid must be equispaced with at least 2 points")
        steps.append(gaps[0])
        if periodic[i] is not None and not np.isclose(periodic[i], a.size * gaps[0], rtol=1e-6):
            raise InputError(f"axis {i} is periodic with period {periodic[i]:g}: its grid must be N equispaced "
                             f"points at spacing period/N, without the repeated end (got {a.size} at {gaps[0]:g})")
    index = np.arange(math.prod(shape)).reshape(shape)
    rows, cols, rates = [], [], []

    flat_drift, flat_diffusion = drift.reshape(-1, n), diffusion.reshape(-1, n, n)
    position = np.indices(shape).reshape(n, -1)

    def connect(offset, rate_of):
        """Rates from each cell to the cell ``offset`` grid steps away, where it exists (or wraps, if periodic)."""
        moved = position + np.array(offset)[:, None]
        valid = np.ones(index.size, dtype=bool)
        for axis in range(n):
            if periodic[axis] is None:
                valid &= (moved[axis] >= 0) & (moved[axis] < shape[axis])
        src = np.flatnonzero(valid)
        dst = np.ravel_multi_index(tuple(moved[:, valid] % np.array(shape)[:, None]), shape)
        half = np.zeros(src.size)  # a node on a reflecting end holds half a cell: its rates inward double
        for axis in range(n):
            if offset[axis] and periodic[axis] is None:
                half += (position[axis, src] == 0) | (position[axis, src] == shape[axis] - 1)
        rows.append(src)
        cols.append(dst)
        rates.append(2.0**half * rate_of(0.5 * (flat_drift[src] + flat_drift[dst]),
                                         0.5 * (flat_diffusion[src] + flat_diffusion[dst])))

    for i in range(n):
        for sign in (1, -1):
            offset = [0] * n
            offset[i] = sign

            def axis_rate(b, d, i=i, sign=sign):
                cross = sum(np.abs(d[:, i, j]) * steps[i] / (2 * steps[j]) for j in range(n) if j != i)
                a = 0.5 * d[:, i, i] - cross
                if np.any(a <= 0):
                    raise InputError(f"the grid is too coarse along CV {i} for its diffusion tensor's correlations "
                                     "(the finite-volume rates would be negative): refine that axis")
                return a / steps[i] ** 2 * _bern(-sign * steps[i] * b[:, i] / a)

            connect(offset, axis_rate)
        for j in range(i + 1, n):
            for sign in (1, -1):
                for kind in (1, -1):  # kind: the sign of D_ij this diagonal carries
                    offset = [0] * n
                    offset[i], offset[j] = sign, sign * kind
                    connect(offset, lambda b, d, i=i, j=j, kind=kind:
                            np.where(np.sign(d[:, i, j]) == kind, np.abs(d[:, i, j]), 0.0)
                            / (2 * steps[i] * steps[j]))
    rows, cols, rates = np.concatenate(rows), np.concatenate(cols), np.concatenate(rates)
    size = index.size
    q = sparse.csr_matrix((rates, (rows, cols)), shape=(size, size))
    return (q - sparse.diags(np.asarray(q.sum(axis=1)).ravel())).tocsr()


#: above this many unknowns, an iterative solve (direct LU fills in badly on 3-D grids: 40³ takes 15x longer)
DIRECT_LIMIT = 20_000


def solve(matrix, rhs, *, tolerance: float = 1e-10, max_iterations: int = 20_000) -> np.ndarray:
    """x with matrix x = rhs: ``spsolve`` (SuperLU) up to :data:`DIRECT_LIMIT` unknowns, else BiCGSTAB with a
    Jacobi preconditioner to a relative residual ``tolerance``."""
    matrix = matrix.tocsc()
    if matrix.shape[0] <= DIRECT_LIMIT:
        return spsolve(matrix, rhs)
    x, info = bicgstab(matrix, rhs, M=sparse.diags(1 / matrix.diagonal()), rtol=tolerance, maxiter=max_iterations)
    if info != 0:
        raise ConvergenceError(f"BiCGSTAB did not reach a relative residual of {tolerance:g} in {max_iterations} "
                               "iterations: raise max_iterations, or coarsen the grid")
    return x


def grid_mfpt(generator, in_target: np.ndarray, **solver) -> np.ndarray:
    """T at every cell: Q T = −1 off the target, T = 0 on it (``in_target``: a boolean mask of the cells);
    ``solver``: ``tolerance`` and ``max_iterations`` of :func:`solve`."""
    free = ~np.asarray(in_target, dtype=bool).ravel()
    if free.all():
        raise InputError("the target region holds no grid point: widen it or refine the grid")
    time = np.zeros(free.size)
    time[free] = solve(generator[free][:, free], -np.ones(free.sum()), **solver)
    return time


def grid_committor(generator, in_source: np.ndarray, in_target: np.ndarray, **solver) -> np.ndarray:
    """q at every cell: Q q = 0 off both regions, q = 0 on the source and 1 on the target."""
    source, target = (np.asarray(m, dtype=bool).ravel() for m in (in_source, in_target))
    if not source.any() or not target.any():
        raise InputError("the source and the target regions must each hold a grid point")
    if np.any(source & target):
        raise InputError("the source and target regions overlap")
    free = ~(source | target)
    q = target.astype(float)
    rhs = -generator[free][:, target] @ np.ones(target.sum())
    q[free] = solve(generator[free][:, free], rhs, **solver)
    return q


# -- from a closure ---------------------------------------------------------------------------------------
def passage(closure: Closure, start, target, *, seed: SeedLike, n_samples: int = 64, points: int = 4001) -> dict:
    """Mean first-passage time of the closed SDE from ``start`` to ``target``, and the rate.

    ``start``: a point (its coordinates) or a :class:`Box` (the MFPT averaged over the stationary density in it);
    ``target``: a :class:`Box`. Solved on ``points`` mesh points over the closure's grid (1-D, by quadrature),
    with ``n_samples`` closures drawn from the standard errors (child draws of ``seed``). Returns
    ``{"mfpt", "mfpt_stderr", "rate", "rate_stderr", "n_samples"}``; rate = 1/mfpt (module doc).
    """
    if not closure.has_diffusion:
        raise InputError("first-passage times need the diffusion: estimate the closure with bursts")
    n_samples = checked_count(n_samples, "n_samples (closures drawn)", 2)
    target = target if isinstance(target, Box) else Box.parse(str(target))
    if len(target.lo) != 1:
        raise InputError(f"this closure has 1 CV; the target gives {len(target.lo)} ranges")
    grid = closure.grid
    if not closure.done.all():
        raise InputError("the closure is not complete: resume its estimation before computing kinetics")
    mesh = np.linspace(grid[0], grid[-1], max(int(points), grid.size))
    if not target.contains(mesh[:, None]).any():
        raise InputError(f"the target region [{target.lo[0]:g}, {target.hi[0]:g}] misses the closure's grid "
                         f"[{grid[0]:g}, {grid[-1]:g}]; closures never extrapolate: estimate on a wider grid")
    if isinstance(start, Box):
        if len(start.lo) != 1:
            raise InputError(f"this closure has 1 CV; the start region gives {len(start.lo)} ranges")
        weighting = start.contains(mesh[:, None])
        if not weighting.any():
            raise InputError("the start region holds no mesh point inside the closure's grid")
        if np.any(weighting & target.contains(mesh[:, None])):
            raise InputError("the start and target regions overlap")
    else:
        z0 = np.atleast_1d(np.asarray(start, dtype=float))
        if z0.shape != (1,):
            raise InputError(f"this closure has 1 CV; the start point gives {z0.size} coordinates")
        closure.check(z0)
        if target.contains(z0):
            raise InputError(f"the start {z0[0]:g} lies in the target region: its first-passage time is 0")
    data = closure.dataset
    rng = np.random.default_rng(as_seed_sequence(seed))
    values = []
    drift, diffusion = closure.drift(mesh), closure.diffusion(mesh)
    for k in range(n_samples + 1):  # k = 0: the estimate; then draws, linear between grid points
        shift = rng.standard_normal((2, grid.size)) * (k > 0)
        b = drift + np.interp(mesh, grid, shift[0] * np.nan_to_num(data["drift_stderr"].values))
        d = diffusion + np.interp(mesh, grid, shift[1] * np.nan_to_num(data["diffusion_stderr"].values))
        time = first_passage_time(mesh, b, np.maximum(d, 1e-12 * np.abs(d).max()), (target.lo[0], target.hi[0]))
        if isinstance(start, Box):
            rho = stationary_density(mesh, b, np.maximum(d, 1e-12 * np.abs(d).max())) * weighting
            values.append(np.trapezoid(rho * time, mesh) / np.trapezoid(rho, mesh))
        else:
            values.append(float(np.interp(z0[0], mesh, time)))
    values = np.array(values)
    mfpt, spread = values[0], values[1:].std(ddof=1)
    rates = 1 / values[1:]
    return {"mfpt": float(mfpt), "mfpt_stderr": float(spread), "rate": float(1 / mfpt),
            "rate_stderr": float(rates.std(ddof=1)), "n_samples": n_samples}


def simulated_passages(closure: Closure, start: float, target, *, n_walkers: int, dt: float, seed: SeedLike,
                       max_time: float, progress: bool = False) -> np.ndarray:
    """First-passage times of ``n_walkers`` paths of the closed SDE from ``start`` into ``target`` (a :class:`Box`),
    by Euler–Maruyama with step ``dt``, reflected at the grid's ends (the boundary :func:`passage` assumes);
    NaN for a path still out at ``max_time``. Checking only at the steps misses excursions between them,
    which delays the passage as if the target's edge were 0.5826 √(D dt) further (Broadie, Glasserman & Kou 1997).
    B and D are read from a table of the closure at 8001 points (linear between them: an O(10⁻⁸ h²) error).
    """
    n_walkers = checked_count(n_walkers, "n_walkers")
    target = target if isinstance(target, Box) else Box.parse(str(target))
    z = np.full(n_walkers, float(closure.check(start)))
    low, high = closure.grid[0], closure.grid[-1]
    mesh = np.linspace(low, high, 8001)
    drift, diffusion = closure.drift(mesh), np.maximum(closure.diffusion(mesh), 0.0)
    rng = np.random.default_rng(as_seed_sequence(seed))
    times = np.full(n_walkers, np.nan)
    active = np.flatnonzero(~target.contains(z[:, None]))
    times[~np.isin(np.arange(n_walkers), active)] = 0.0
    n_steps = int(math.ceil(max_time / dt))
    with tqdm(total=n_steps, disable=not progress, unit="step", desc="first passages") as bar:
        for step in range(1, n_steps + 1):
            if not active.size:
                break
            y = z[active]
            kick = np.sqrt(np.interp(y, mesh, diffusion) * dt) * rng.standard_normal(y.size)
            y = y + np.interp(y, mesh, drift) * dt + kick
            arrived = target.contains(np.clip(y, low, high)[:, None])  # a target may touch the grid's end
            times[active[arrived]] = step * dt
            y = np.where(y < low, 2 * low - y, np.where(y > high, 2 * high - y, y))
            z[active] = np.clip(y, low, high)
            active = active[~arrived]
            bar.update()
    return times
