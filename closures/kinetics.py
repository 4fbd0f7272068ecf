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
|D_ij|/(2 h_i h_j), with B and D at the midpoint of each pair of cells. It needs a_i ≥ 0 (at a_i = 0, a tensor
singular along e_i such as a closure drawn within wide errors, the flux is its upwind limit max(±B_i, 0)/h_i):
spacings h_i in proportion to √D_ii admit any correlation |D_ij| < √(D_ii D_jj) in 2-D. The grid's end points are
reflecting and hold half a cell, so their inward rates double (zero flux through the end; with a correlated D the
cross terms are dropped at the ends, where the oblique reflection of the SDE is not represented). T and q then solve
sparse linear systems (:func:`solve`: SuperLU, or BiCGSTAB on large grids); the error is O(h²) where the Péclet
numbers h|B_i|/a_i are small. The stationary probabilities π of the jump process (π Q = 0, :func:`grid_stationary`)
are the discrete ψ/D.

**From a closure** (:func:`passage`, :func:`committor`): one CV by quadrature; several by finite volumes on a
mesh of their own over the closure's grid (:func:`kinetics_axes`): about :data:`POINTS` nodes per CV, spaced
along CV i in proportion to √D_ii (then a_i > 0 for any correlation |D_ij| < √(D_ii D_jj) in 2-D), with the
regions' edges on nodes, and B, D the closure's interpolants at the nodes. Where a tensor is too correlated
for the mesh all the same (a badly estimated point, a draw), its off-diagonal entries are shrunk toward the
diagonal just enough (:func:`limited`). T at a start point is interpolated multilinearly between nodes; from a
start region it is averaged with the weights π.

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
import xarray as xr
from scipy import sparse
from scipy.integrate import cumulative_trapezoid
from scipy.interpolate import RegularGridInterpolator
from scipy.sparse.linalg import bicgstab, spsolve
from tqdm.auto import tqdm

from eqfree.errors import ConvergenceError, InputError
from eqfree.seeding import SeedLike, as_seed_sequence
from eqfree.validation import checked_count

from .integrate import root
from .model import Closure
from .store import periodic_padding


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
    with np.errstate(over="ignore"):  # u → ∞: u/(eᵘ − 1) → 0
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
                if np.any(a < 0):
                    raise InputError(f"the diffusion tensor's correlations are too strong for the grid's spacings "
                                     f"along CV {i} (the finite-volume rates would be negative): space the axes in "
                                     "proportion to √D_ii (kinetics_axes), or shrink the correlations (limited)")
                with np.errstate(divide="ignore", invalid="ignore"):
                    rate = a / steps[i] ** 2 * _bern(-sign * steps[i] * b[:, i] / a)
                return np.where(a > 0, rate, np.maximum(sign * b[:, i], 0.0) / steps[i])  # a → 0: upwind

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
#: mesh points per CV of the kinetics solve by default, for 1, 2 and 3 CVs
POINTS = {1: 4001, 2: 101, 3: 31}


def grid_stationary(generator, **solver) -> np.ndarray:
    """The stationary probabilities π of the jump process (π Q = 0, Σ π = 1), one per cell: π at the cell of
    smallest exit rate fixed to 1, the others solved from the remaining equations, then normalised."""
    transposed = generator.T.tocsr()
    anchor = int(np.argmax(generator.diagonal()))
    keep = np.arange(generator.shape[0]) != anchor
    pi = np.ones(generator.shape[0])
    pi[keep] = solve(transposed[keep][:, keep], -transposed[keep][:, [anchor]].toarray().ravel(), **solver)
    pi = np.maximum(pi, 0.0)
    return pi / pi.sum()


def kinetics_axes(closure: Closure, points: int, anchors=()) -> list[np.ndarray]:
    """The regular mesh of the finite-volume solve over the closure's grid: about ``points`` nodes per CV, the
    spacing along CV i proportional to √D_ii (the median over the grid), so that the rates stay positive for any
    correlation |D_ij| < √(D_ii D_jj) in 2-D (module doc); periodic CVs get N nodes at spacing period/N. Along each
    CV the nodes start at the first of ``anchors`` (values per CV, None to skip) inside the grid — a region's
    edge, so that it falls on a node — and the spacing is shrunk so that a second one does too."""
    n = closure.ndim
    data = closure.dataset["diffusion"].values.reshape(-1, n, n)[closure.done.reshape(-1)]
    scale = np.sqrt(np.maximum(np.median(np.diagonal(data, axis1=1, axis2=2), axis=0), 1e-300))
    extents = [period if period is not None else axis[-1] - axis[0]
               for axis, period in zip(closure.axes, closure.periods, strict=True)]
    c = math.prod(e / s for e, s in zip(extents, scale, strict=True)) ** (1 / n) / (points - 1)
    mesh = []
    for i, (axis, period) in enumerate(zip(closure.axes, closure.periods, strict=True)):
        low, high = axis[0], axis[-1]
        edges = [a[i] for a in anchors if a is not None and (period is not None or low < a[i] < high)]
        edges = list(dict.fromkeys(float(e) for e in edges))
        h = min(c * scale[i], extents[i] / 2)
        if period is not None:
            m = max(int(round(period / h)), 2)
            origin = edges[0] if edges else low
            mesh.append(np.sort(low + np.mod(origin + np.arange(m) * period / m - low, period)))
            continue
        if len(edges) >= 2:
            gap = abs(edges[1] - edges[0])
            h = gap / max(1, round(gap / h))
        origin = edges[0] if edges else low
        below = np.floor((origin - low) / h + 1e-9)
        above = np.floor((high - origin) / h + 1e-9)
        mesh.append(np.clip(origin + h * np.arange(-below, above + 1), low, high))
    return mesh


def limited(diffusion: np.ndarray, steps) -> np.ndarray:
    """D ``(..., n, n)`` with its off-diagonal entries shrunk, where they must be, so that the finite-volume rates
    on a grid of spacings ``steps`` stay positive (module doc: Σ_{j≠i} |D_ij| h_i/h_j ≤ 0.95 D_ii):
    D' = s D + (1 − s) diag(D), s ∈ [0, 1] the largest that does — positive semi-definite as D is, and as the
    average of two neighbours' (the rates use the pair's midpoint)."""
    steps = np.asarray(steps, dtype=float)
    diagonal = np.diagonal(diffusion, axis1=-2, axis2=-1)
    off = np.abs(diffusion) * (1 - np.eye(steps.size))
    load = np.einsum("...ij,i,j->...i", off, steps, 1 / steps)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.clip(np.min(np.where(load > 0, 0.95 * np.maximum(diagonal, 0.0) / load, 1.0), axis=-1), 0.0, 1.0)
    eye = np.eye(steps.size)
    return s[..., None, None] * diffusion + (1 - s[..., None, None]) * diffusion * eye


def closure_draws(closure: Closure, axes, mesh_points: np.ndarray, n_samples: int, rng):
    """(B, D) on ``mesh_points`` ``(m, n)`` of the mesh ``axes``: the closure's estimate (k = 0), then
    ``n_samples`` closures drawn from its standard errors (independent normals at each grid point and entry, D
    symmetrised, interpolated linearly between grid points), D projected onto the positive semi-definite tensors
    and :func:`limited` to the mesh."""
    data = closure.dataset
    steps = [a[1] - a[0] for a in axes]
    drift, diffusion = closure.drift(mesh_points), closure.diffusion(mesh_points)
    drift_se = np.nan_to_num(data["drift_stderr"].values)
    diffusion_se = np.nan_to_num(data["diffusion_stderr"].values)
    for k in range(n_samples + 1):
        if k == 0:
            yield drift, limited(diffusion, steps)
            continue
        shift_b = rng.standard_normal(drift_se.shape) * drift_se
        upper = np.triu(rng.standard_normal(diffusion_se.shape))
        shift_d = (upper + np.swapaxes(np.triu(upper, 1), -1, -2)) * diffusion_se
        b = drift + closure.interpolator(shift_b)(mesh_points)
        d = diffusion + closure.interpolator(shift_d)(mesh_points)
        values, vectors = np.linalg.eigh(d)
        yield b, limited((vectors * np.maximum(values, 0.0)[..., None, :]) @ np.swapaxes(vectors, -1, -2), steps)


def _regions(closure: Closure, *regions) -> list[Box]:
    n = closure.ndim
    boxes = []
    for name, region in regions:
        box = region if isinstance(region, Box) else Box.parse(str(region))
        if len(box.lo) != n:
            raise InputError(f"this closure has {n} CV{'s' if n > 1 else ''}; the {name} region gives "
                             f"{len(box.lo)} ranges")
        boxes.append(box)
    return boxes


def _ready(closure: Closure) -> None:
    if not closure.has_diffusion:
        raise InputError("kinetics need the diffusion: estimate the closure with bursts")
    if not closure.done.all():
        raise InputError("the closure is not complete: resume its estimation before computing kinetics")


def _mesh(closure: Closure, points, anchors) -> tuple[list[np.ndarray], np.ndarray]:
    axes = kinetics_axes(closure, POINTS[closure.ndim] if points is None else int(points), anchors)
    return axes, np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def _misses(region: str, box: Box, closure: Closure) -> InputError:
    extent = " × ".join(f"[{a[0]:g}, {a[-1]:g}]" for a in closure.axes)
    wanted = " × ".join(f"[{lo:g}, {hi:g}]" for lo, hi in zip(box.lo, box.hi, strict=True))
    return InputError(f"the {region} region {wanted} misses the closure's grid {extent}; closures never "
                      "extrapolate: estimate on a wider grid")


def passage(closure: Closure, start, target, *, seed: SeedLike, n_samples: int = 64, points: int | None = None,
            progress: bool = False) -> dict:
    """Mean first-passage time of the closed SDE from ``start`` to ``target``, and the rate.

    ``start``: a point (its coordinates) or a :class:`Box` (the MFPT averaged over the stationary density in it);
    ``target``: a :class:`Box`. One CV: by quadrature on ``points`` mesh points (default 4001) over the closure's
    grid; several: by finite volumes on :func:`kinetics_axes` with ``points`` nodes per CV (default
    :data:`POINTS`), T at a start point interpolated multilinearly, over a start region weighted by
    :func:`grid_stationary`. ``n_samples`` closures drawn from the standard errors (child draws of ``seed``)
    give the standard errors (``progress``: a bar over them). Returns ``{"mfpt", "mfpt_stderr", "rate",
    "rate_stderr", "n_samples"}``; rate = 1/mfpt (module doc).
    """
    _ready(closure)
    n_samples = checked_count(n_samples, "n_samples (closures drawn)", 2)
    (target,) = _regions(closure, ("target", target))
    if isinstance(start, Box) or (isinstance(start, str) and ":" in start):
        (start,) = _regions(closure, ("start", start))
    else:
        z0 = np.atleast_1d(np.asarray(start, dtype=float))
        if z0.shape != (closure.ndim,):
            raise InputError(f"this closure has {closure.ndim} CV{'s' if closure.ndim > 1 else ''}; the start point "
                             f"gives {z0.size} coordinates")
        z0 = closure.check(z0[None, :])[0]
        if target.contains(z0):
            where = ", ".join(f"{v:g}" for v in z0)
            raise InputError(f"the start {where} lies in the target region: its first-passage time is 0")
    rng = np.random.default_rng(as_seed_sequence(seed))
    if closure.ndim == 1:
        values = _passage_1d(closure, start if isinstance(start, Box) else z0[0], target, rng, n_samples,
                             POINTS[1] if points is None else points)
    else:
        values = _passage_nd(closure, start if isinstance(start, Box) else z0, target, rng, n_samples, points,
                             progress)
    values = np.array(values)
    mfpt, spread = values[0], values[1:].std(ddof=1)
    rates = 1 / values[1:]
    return {"mfpt": float(mfpt), "mfpt_stderr": float(spread), "rate": float(1 / mfpt),
            "rate_stderr": float(rates.std(ddof=1)), "n_samples": n_samples}


def _passage_1d(closure, start, target, rng, n_samples, points) -> list[float]:
    """The MFPT of the estimate and of each drawn closure, by quadrature (module doc)."""
    grid = closure.axes[0]
    mesh = np.linspace(grid[0], grid[-1], max(int(points), grid.size))
    if not target.contains(mesh[:, None]).any():
        raise InputError(f"the target region [{target.lo[0]:g}, {target.hi[0]:g}] misses the closure's grid "
                         f"[{grid[0]:g}, {grid[-1]:g}]; closures never extrapolate: estimate on a wider grid")
    if isinstance(start, Box):
        weighting = start.contains(mesh[:, None])
        if not weighting.any():
            raise InputError("the start region holds no mesh point inside the closure's grid")
        if np.any(weighting & target.contains(mesh[:, None])):
            raise InputError("the start and target regions overlap")
    data = closure.dataset
    drift_se = np.nan_to_num(data["drift_stderr"].values[..., 0])
    diffusion_se = np.nan_to_num(data["diffusion_stderr"].values[..., 0, 0])
    values = []
    drift, diffusion = closure.drift(mesh), closure.diffusion(mesh)
    for k in range(n_samples + 1):  # k = 0: the estimate; then draws, linear between grid points
        shift = rng.standard_normal((2, grid.size)) * (k > 0)
        b = drift + np.interp(mesh, grid, shift[0] * drift_se)
        d = diffusion + np.interp(mesh, grid, shift[1] * diffusion_se)
        time = first_passage_time(mesh, b, np.maximum(d, 1e-12 * np.abs(d).max()), (target.lo[0], target.hi[0]))
        if isinstance(start, Box):
            rho = stationary_density(mesh, b, np.maximum(d, 1e-12 * np.abs(d).max())) * weighting
            values.append(np.trapezoid(rho * time, mesh) / np.trapezoid(rho, mesh))
        else:
            values.append(float(np.interp(start, mesh, time)))
    return values


def _passage_nd(closure, start, target, rng, n_samples, points, progress) -> list[float]:
    """The MFPT of the estimate and of each drawn closure, by finite volumes (module doc)."""
    axes, mesh = _mesh(closure, points, [target.lo, target.hi])
    in_target = target.contains(mesh)
    if not in_target.any():
        raise _misses("target", target, closure)
    if isinstance(start, Box):
        weighting = start.contains(mesh).ravel()
        if not weighting.any():
            raise InputError("the start region holds no mesh point inside the closure's grid")
        if np.any(weighting & in_target.ravel()):
            raise InputError("the start and target regions overlap")
    else:
        padded = _periodic_interpolator(axes, closure.periods)
    values = []
    points_flat = mesh.reshape(-1, closure.ndim)
    for b, d in tqdm(closure_draws(closure, axes, points_flat, n_samples, rng), total=n_samples + 1,
                     disable=not progress, unit="closure", desc="first-passage times"):
        generator = grid_generator(axes, b, d, closure.periods)
        time = grid_mfpt(generator, in_target)
        if isinstance(start, Box):
            pi = grid_stationary(generator) * weighting
            values.append(float(pi @ time / pi.sum()))
        else:
            values.append(float(padded(time.reshape(mesh.shape[:-1]), start)))
    return values


def _periodic_interpolator(axes, periods):
    """``f(values on the mesh, point) -> value``: multilinear, periodic axes wrapped (:func:`periodic_padding`)."""

    def evaluate(values, point):
        padded_axes, values = periodic_padding(axes, periods, values)
        point = [a[0] + np.mod(v - a[0], p) if p is not None else np.clip(v, a[0], a[-1])
                 for v, a, p in zip(point, axes, periods, strict=True)]
        return RegularGridInterpolator(tuple(padded_axes), values)(np.array(point)[None, :])[0]

    return evaluate


def committor(closure: Closure, source, target, *, seed: SeedLike, n_samples: int = 64,
              points: int | None = None, progress: bool = False) -> xr.Dataset:
    """The committor q (the probability of reaching ``target`` before ``source``, two :class:`Box` es) of the
    closed SDE on the finite-volume mesh :func:`kinetics_axes` (``points`` nodes per CV, default
    :data:`POINTS`, the regions' edges on nodes), with its standard error from ``n_samples`` closures drawn from
    the estimates' standard errors (child draws of ``seed``). Dataset: ``committor`` and ``committor_stderr``
    with a dimension per CV."""
    _ready(closure)
    n_samples = checked_count(n_samples, "n_samples (closures drawn)", 2)
    source, target = _regions(closure, ("source", source), ("target", target))
    axes, mesh = _mesh(closure, points, [target.lo, target.hi, source.hi, source.lo])
    in_source, in_target = source.contains(mesh), target.contains(mesh)
    for name, box, inside in (("source", source, in_source), ("target", target, in_target)):
        if not inside.any():
            raise _misses(name, box, closure)
    rng = np.random.default_rng(as_seed_sequence(seed))
    draws = tqdm(closure_draws(closure, axes, mesh.reshape(-1, closure.ndim), n_samples, rng), total=n_samples + 1,
                 disable=not progress, unit="closure", desc="committors")
    values = np.array([grid_committor(grid_generator(axes, b, d, closure.periods), in_source, in_target)
                       for b, d in draws])
    shape = mesh.shape[:-1]
    coords = {name: (name, axis, closure.dataset[name].attrs) for name, axis in zip(closure.names, axes, strict=True)}
    return xr.Dataset({"committor": (closure.names, values[0].reshape(shape),
                                     {"long_name": "probability of reaching the target before the source"}),
                       "committor_stderr": (closure.names, values[1:].std(axis=0, ddof=1).reshape(shape),
                                            {"long_name": "standard error of the committor"})},
                      coords=coords, attrs={"n_samples": n_samples})


def simulated_passages(closure: Closure, start, target, *, n_walkers: int, dt: float, seed: SeedLike,
                       max_time: float, progress: bool = False) -> np.ndarray:
    """First-passage times of ``n_walkers`` paths of the closed SDE from the point ``start`` into ``target``
    (a :class:`Box`), by Euler–Maruyama with step ``dt``, reflected at the grid's ends (the boundary
    :func:`passage` assumes) and wrapped along periodic CVs; NaN for a path still out at ``max_time``. Checking
    only at the steps misses excursions between them, which delays the passage as if the target's edge were
    0.5826 √(D dt) further (Broadie, Glasserman & Kou 1997). B and D are the closure's interpolants, √D by the
    eigendecomposition of D (clipped at 0).
    """
    n_walkers = checked_count(n_walkers, "n_walkers")
    (target,) = _regions(closure, ("target", target))
    n = closure.ndim
    z0 = np.atleast_1d(np.asarray(start, dtype=float))
    if z0.shape != (n,):
        raise InputError(f"this closure has {n} CVs; the start point gives {z0.size} coordinates")
    z = np.repeat(closure.check(z0[None, :]), n_walkers, axis=0)
    periodic = np.array([p is not None for p in closure.periods])
    period = np.array([p if p is not None else 0.0 for p in closure.periods])
    low = np.array([a[0] for a in closure.axes])
    high = np.where(periodic, low + period, [a[-1] for a in closure.axes])  # periodic: wrapped, never reached
    # the walkers stay on the grid (reflected, wrapped), where the closure's interpolants need no check
    # B and D interpolated together: one evaluation per step (the per-step overhead bounds a long tail of few walkers)
    drift, diffusion = closure.dataset["drift"].values, closure.dataset["diffusion"].values
    tables = (drift, diffusion.reshape(closure.done.shape + (n * n,)))
    fields = closure.interpolator(np.concatenate(tables, axis=-1), closure.interpolation)
    rng = np.random.default_rng(as_seed_sequence(seed))
    times = np.full(n_walkers, np.nan)
    active = np.flatnonzero(~target.contains(z))
    times[~np.isin(np.arange(n_walkers), active)] = 0.0
    n_steps = int(math.ceil(max_time / dt))
    with tqdm(total=n_steps, disable=not progress, unit="step", desc="first passages") as bar:
        for step in range(1, n_steps + 1):
            if not active.size:
                break
            y = z[active]
            both = fields(y)
            kick = np.einsum("wij,wj->wi", root(both[:, n:].reshape(-1, n, n)), rng.standard_normal(y.shape))
            kick *= math.sqrt(dt)
            y = y + both[:, :n] * dt + kick
            y = np.where(periodic, low + np.mod(y - low, np.where(periodic, period, 1.0)), y)
            arrived = target.contains(np.clip(y, low, high))  # a target may touch the grid's end
            times[active[arrived]] = step * dt
            y = np.where(y < low, 2 * low - y, np.where(y > high, 2 * high - y, y))
            z[active] = np.clip(y, low, high)
            active = active[~arrived]
            bar.update()
    return times
