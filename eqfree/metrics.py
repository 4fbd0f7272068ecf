"""Distances between sample sets, for judging a lifting operator against its target law.

A lifting operator L(z, n) should return n fine states distributed as the conditional equilibrium
ν_z. Four numbers say how close it gets:

    label_consistency      mean_i |R(x_i) − z|                 (does the lift land on z at all?)
    wasserstein_marginals  W1 per coordinate                    (against samples or an exact law)
    ks_marginals           Kolmogorov–Smirnov statistic per coordinate
    energy_distance        (2E‖X−Y‖ − E‖X−X′‖ − E‖Y−Y′‖)^{1/2}  (multivariate)
    local_spectra          eigenvalues of each sample's neighbourhood covariance (the dimension of
                           the set the samples fill: a collapsed generator fills fewer)
    running_wasserstein    W1 of the samples gathered so far against a reference, as a run goes on
                           (when does a sampler reach a given accuracy?)
    linear_separability    the accuracy of Fisher's linear discriminant between two sets of CV
                           values (does a learned CV tell two basins apart?)

Samples have shape ``(n, dim)``; a 1-D array is read as ``(n, 1)``. A *reference* is either an
array of reference samples ``(m, dim)`` or, for the marginal metrics, one frozen
``scipy.stats`` continuous distribution per coordinate (the exact marginal law; a single frozen
distribution stands for a list of one). To compare only some coordinates, slice the samples first.
Bad input (non-finite or empty samples, mismatched dimensions, the wrong number of distributions)
is refused with a ValueError.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
from scipy.integrate import quad
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from .errors import InputError
from .periodic import check_period, wrapped_difference
from .seeding import as_seed_sequence, child
from .validation import checked_count

__all__ = ["label_consistency", "wasserstein_marginals", "ks_marginals", "energy_distance", "local_spectra",
           "running_wasserstein", "linear_separability"]

# Gauss–Legendre rule used on each piece of the exact-law W1 integral, and its adaptive controls.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)
_QUAD_RTOL = 1e-12      # accept a piece when |whole − two halves| <= _QUAD_RTOL · width
_QUAD_MAX_ROUNDS = 60   # bisection rounds (each halves the unconverged pieces)
_BACKGROUND_LEVELS = 64  # quantiles ppf(j/64) always cut the real line, so no piece spans the bulk
_BLOCK = 1024           # rows per cdist block in the pairwise energy distance (8 MiB per block)


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------

def _as_samples(values, name: str) -> np.ndarray:
    """``values`` as a finite float64 array of shape (n, dim), n, dim >= 1."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise InputError(f"{name} must be a numeric array of shape (n, dim) or (n,): {error}") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise InputError(f"{name} must have shape (n, dim) or (n,), got shape {array.shape}")
    if array.shape[0] == 0:
        raise InputError(f"{name} is empty (shape {array.shape}); pass at least one sample")
    if array.shape[1] == 0:
        raise InputError(f"{name} has no coordinates (shape {array.shape}); pass at least one column")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)
        raise InputError(
            f"{name} contains non-finite values in {rows.size} row(s), first rows {rows[:5].tolist()}; "
            "drop or fix diverged samples before comparing"
        )
    return array


def _is_distribution(obj) -> bool:
    return hasattr(obj, "cdf") and hasattr(obj, "dist")


def _check_distribution(obj, index: int):
    if not (_is_distribution(obj) and isinstance(obj.dist, scipy.stats.rv_continuous)):
        raise InputError(
            f"reference distribution {index} must be a frozen scipy.stats continuous distribution "
            f"(e.g. scipy.stats.norm(0, 1)), got {obj!r}"
        )
    return obj


def _reference(reference, dim: int):
    """Either ('samples', array (m, dim)) or ('laws', list of `dim` frozen distributions)."""
    if _is_distribution(reference):
        reference = [reference]
    if isinstance(reference, (list, tuple)) and any(_is_distribution(r) or r is None for r in reference):
        laws = [_check_distribution(r, i) for i, r in enumerate(reference)]
        if len(laws) != dim:
            raise InputError(
                f"got {len(laws)} reference distribution(s) for {dim} coordinate(s); pass exactly one frozen "
                "distribution per column, or slice the samples to the columns you want to compare"
            )
        return "laws", laws
    array = _as_samples(reference, "reference")
    if array.shape[1] != dim:
        raise InputError(
            f"reference has {array.shape[1]} coordinate(s) but samples have {dim}; "
            "both must have the same number of columns"
        )
    return "samples", array


# --------------------------------------------------------------------------------------------
# label consistency
# --------------------------------------------------------------------------------------------

def label_consistency(restrict, samples, z, *, period=None) -> float:
    """Mean distance between the restricted samples and the label: (1/n) Σ_i ‖R(x_i) − z‖.

    ``restrict`` maps an array (n, dim) to (n,) or (n, n_cv); ``z`` is a scalar or has n_cv
    components; the norm is Euclidean over CV components. With ``period`` P (e.g. 2π for angles;
    it applies to every component) each component difference is wrapped into [−P/2, P/2) first.
    This is the micro–macro check |R(L(z)) − z| of a lifting operator L.
    """
    x = _as_samples(samples, "samples")
    period = check_period(period)
    if not callable(restrict):
        raise InputError(f"restrict must be a callable mapping (n, dim) -> (n,) or (n, n_cv), got {restrict!r}")
    target = np.atleast_1d(np.asarray(z, dtype=float))
    if target.ndim != 1 or not np.isfinite(target).all():
        raise InputError(f"z must be a finite scalar or a 1-D array of CV values, got {z!r}")
    raw = np.asarray(restrict(x), dtype=float)
    labels = raw[:, None] if raw.ndim == 1 else raw
    if labels.ndim != 2 or labels.shape[0] != x.shape[0]:
        raise InputError(
            f"restrict returned shape {raw.shape} for {x.shape[0]} samples; "
            "it must return (n,) or (n, n_cv), one row per sample"
        )
    if labels.shape[1] != target.size:
        raise InputError(
            f"restrict returned {labels.shape[1]} CV component(s) but z has {target.size}; "
            "pass z with one value per CV component"
        )
    if not np.isfinite(labels).all():
        raise InputError("restrict returned non-finite values; check the samples and the restriction")
    difference = wrapped_difference(labels, target, period)
    return float(np.linalg.norm(difference, axis=1).mean())


# --------------------------------------------------------------------------------------------
# Wasserstein-1 per marginal
# --------------------------------------------------------------------------------------------

def _gauss(cdf, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """∫_a^b F(x) dx on each interval by 8-point Gauss–Legendre."""
    half = (b - a) / 2
    nodes = ((a + b) / 2)[:, None] + half[:, None] * _GL_NODES
    return half * (cdf(nodes) @ _GL_WEIGHTS)


def _cdf_integrals(cdf, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """∫_a^b F(x) dx on each interval, adaptively: a piece is bisected until its Gauss–Legendre
    value and the sum over its two halves agree to _QUAD_RTOL times its width."""
    out = np.zeros(a.size)
    owner = np.arange(a.size)
    whole = _gauss(cdf, a, b)
    for _ in range(_QUAD_MAX_ROUNDS):
        middle = (a + b) / 2
        left, right = _gauss(cdf, a, middle), _gauss(cdf, middle, b)
        halves = left + right
        done = np.abs(halves - whole) <= _QUAD_RTOL * (b - a)
        out += np.bincount(owner[done], weights=halves[done], minlength=out.size)
        todo = ~done
        if not todo.any():
            return out
        a, middle, b, owner = a[todo], middle[todo], b[todo], owner[todo]
        a, b = np.concatenate([a, middle]), np.concatenate([middle, b])
        whole = np.concatenate([left[todo], right[todo]])
        owner = np.concatenate([owner, owner])
    return out + np.bincount(owner, weights=whole, minlength=out.size)


def _w1_to_law(x: np.ndarray, law) -> float:
    """W1 between the empirical law of ``x`` (1-D) and a continuous law with cdf F.

    W1 = ∫ |F_n(x) − F(x)| dx, the x-space form of ∫_0^1 |F_n^{-1}(u) − F^{-1}(u)| du. The line is
    cut at the samples (where F_n jumps), at the quantiles F^{-1}(k/n) (where F crosses the level
    k/n of F_n), at the quantiles F^{-1}(j/64) and at finite ends of the support. On each piece
    (a, b) F_n is a constant k/n and F − k/n keeps one sign, so the piece contributes
    |k/n (b − a) − ∫_a^b F dx| exactly; ∫_a^b F dx is computed by adaptive Gauss–Legendre to a
    relative 1e-12 of the piece width. The two unbounded tails, ∫_{−∞}^{a₀} F dx and
    ∫_{b_N}^{∞} (1 − F) dx, go to scipy.integrate.quad (zero on a bounded side of the support).
    """
    mean = float(law.mean())
    if not np.isfinite(mean):
        raise InputError(f"W1 to {law.dist.name} is undefined: its mean is not finite; use ks_marginals instead")
    x = np.sort(x)
    n = x.size
    lower, upper = (float(v) for v in law.support())
    cuts = [x, law.ppf(np.arange(1, n) / n), law.ppf(np.arange(1, _BACKGROUND_LEVELS) / _BACKGROUND_LEVELS)]
    cuts += [np.array([end]) for end in (lower, upper) if np.isfinite(end)]
    points = np.unique(np.concatenate(cuts))
    points = points[np.isfinite(points)]
    a, b = points[:-1], points[1:]
    level = np.searchsorted(x, (a + b) / 2, side="right") / n
    body = np.abs(level * (b - a) - _cdf_integrals(law.cdf, a, b)).sum() if a.size else 0.0
    options = dict(epsabs=1e-14, epsrel=1e-12, limit=200)
    left_tail = 0.0 if np.isfinite(lower) else quad(law.cdf, -np.inf, points[0], **options)[0]
    right_tail = 0.0 if np.isfinite(upper) else quad(law.sf, points[-1], np.inf, **options)[0]
    return float(body + left_tail + right_tail)


def wasserstein_marginals(samples, reference) -> np.ndarray:
    """Wasserstein-1 distance of each coordinate's marginal, shape (dim,).

    W1(μ, ν) = ∫_0^1 |F_μ^{-1}(u) − F_ν^{-1}(u)| du = ∫ |F_μ(x) − F_ν(x)| dx per column.
    ``reference`` is an array of reference samples (m, dim) — scipy.stats.wasserstein_distance
    per column — or a sequence of ``dim`` frozen scipy.stats continuous distributions, the exact
    marginal laws, for which the integral is evaluated piecewise to about 1e-12 relative accuracy
    (deterministic quadrature, no reference sampling; see ``_w1_to_law``).
    """
    x = _as_samples(samples, "samples")
    kind, ref = _reference(reference, x.shape[1])
    if kind == "laws":
        return np.array([_w1_to_law(x[:, j], law) for j, law in enumerate(ref)])
    return np.array([scipy.stats.wasserstein_distance(x[:, j], ref[:, j]) for j in range(x.shape[1])])


# --------------------------------------------------------------------------------------------
# Kolmogorov–Smirnov per marginal
# --------------------------------------------------------------------------------------------

def ks_marginals(samples, reference) -> np.ndarray:
    """Kolmogorov–Smirnov statistic sup_x |F_n(x) − F(x)| of each coordinate's marginal, shape (dim,).

    Against reference samples F is their empirical cdf (scipy.stats.ks_2samp); against a sequence
    of ``dim`` frozen continuous distributions F is the exact cdf (scipy.stats.kstest).
    """
    x = _as_samples(samples, "samples")
    kind, ref = _reference(reference, x.shape[1])
    if kind == "laws":
        return np.array([scipy.stats.kstest(x[:, j], law.cdf).statistic for j, law in enumerate(ref)])
    return np.array([scipy.stats.ks_2samp(x[:, j], ref[:, j]).statistic for j in range(x.shape[1])])


# --------------------------------------------------------------------------------------------
# energy distance
# --------------------------------------------------------------------------------------------

def _mean_pair_distance(x: np.ndarray, y: np.ndarray | None = None) -> float:
    """(1/(n m)) Σ_ij ‖x_i − y_j‖ over all pairs, in cdist blocks of _BLOCK rows × _BLOCK columns so
    memory stays bounded; with ``y`` None, the V-statistic of ``x`` with itself (diagonal included,
    each off-diagonal block computed once and counted twice)."""
    same = y is None
    y = x if same else y
    total = 0.0
    for i in range(0, x.shape[0], _BLOCK):
        for j in range(i if same else 0, y.shape[0], _BLOCK):
            block = cdist(x[i:i + _BLOCK], y[j:j + _BLOCK]).sum()
            total += block if not same or i == j else 2 * block
    return total / (x.shape[0] * y.shape[0])


def _energy_pairwise(x: np.ndarray, y: np.ndarray) -> float:
    squared = 2 * _mean_pair_distance(x, y) - _mean_pair_distance(x) - _mean_pair_distance(y)
    return float(np.sqrt(max(squared, 0.0)))


def _energy_1d(x: np.ndarray, y: np.ndarray) -> float:
    """In 1-D, 2E|X−Y| − E|X−X′| − E|Y−Y′| = 2 ∫ (F_n − G_m)² dx: one sort instead of all pairs."""
    x, y = np.sort(x), np.sort(y)
    pooled = np.sort(np.concatenate([x, y]))
    widths = np.diff(pooled)
    f = np.searchsorted(x, pooled[:-1], side="right") / x.size
    g = np.searchsorted(y, pooled[:-1], side="right") / y.size
    return float(np.sqrt(2 * np.sum((f - g) ** 2 * widths)))


def energy_distance(samples, reference, *, max_samples=None, seed=None) -> float:
    """Energy distance D = (2E‖X−Y‖ − E‖X−X′‖ − E‖Y−Y′‖)^{1/2} between two sample sets.

    Expectations are V-statistics (all pairs, the zero diagonal included), the convention of
    scipy.stats.energy_distance, which this equals in 1-D. In 1-D it is computed from the sorted
    samples as (2 ∫ (F_n − G_m)² dx)^{1/2} in O((n + m) log(n + m)); in higher dimension from all
    pairwise Euclidean distances in blocks, so memory stays bounded (time is O((n + m)²)).

    ``max_samples`` caps each set by a subsample drawn without replacement; it requires an
    explicit ``seed`` (int or SeedSequence), and the two sets use independent children of it.
    """
    x = _as_samples(samples, "samples")
    kind, y = _reference(reference, x.shape[1])
    if kind != "samples":
        raise InputError("energy_distance needs reference samples of shape (m, dim), not distributions; "
                         "draw a reference sample from the law (e.g. law.rvs(size=m, random_state=seed))")
    if max_samples is not None:
        max_samples = checked_count(max_samples, "max_samples", minimum=1)
        if seed is None:
            raise InputError("max_samples subsamples the sets at random and needs an explicit seed= (an int); "
                             "eqfree never draws an implicit seed")
        seed = as_seed_sequence(seed)
        sets = []
        for index, values in enumerate((x, y)):
            if values.shape[0] > max_samples:
                rng = np.random.default_rng(child(seed, index))
                values = values[np.sort(rng.choice(values.shape[0], size=max_samples, replace=False))]
            sets.append(values)
        x, y = sets
    if x.shape[1] == 1:
        return _energy_1d(x[:, 0], y[:, 0])
    return _energy_pairwise(x, y)


def local_spectra(samples, k: int = 20) -> np.ndarray:
    """Normalized local covariance spectra, shape ``(n, dim)``, each row descending with first entry 1.

    With coordinates standardized, row i holds the eigenvalues λ_1 ≥ … ≥ λ_dim of the covariance of
    the k nearest neighbours of sample i, divided by λ_1. Samples filling a d-dimensional region have
    d ratios of order one and the rest near zero; a curve (a generator whose noise has one
    dimension) has λ_2/λ_1 ≈ 0 wherever it does not cross itself.
    """
    x = _as_samples(samples, "samples")
    k = checked_count(k, "k (neighbours)", 2)
    if k > len(x):
        raise InputError(f"k = {k} neighbours but only {len(x)} samples: lower k or pass more samples")
    scale = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    _, neighbours = cKDTree(x).query(x, k)
    local = x[neighbours] - x[neighbours].mean(axis=1, keepdims=True)
    eigenvalues = np.linalg.eigvalsh(np.einsum("nki,nkj->nij", local, local) / k)[:, ::-1]
    return eigenvalues / eigenvalues[:, :1]


def running_wasserstein(frames, reference, *, points: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """W1 of the pooled samples of a run so far against ``reference``, at ``points`` checkpoints.

    ``frames`` (time, walker) holds one observable of every walker at every saved frame (after any
    warm-up the user discards); at checkpoint t_k the samples are frames[:t_k] of all walkers.
    ``reference`` is reference samples (m,) or a frozen scipy.stats law. Returns the checkpoints'
    sample counts (t_k · walkers) and the W1 values: a sampler's cost to reach an accuracy is where
    the curve falls below it, comparable between one long run and many short ones.
    """
    frames = np.asarray(frames, dtype=float)
    if frames.ndim == 1:
        frames = frames[:, None]
    if frames.ndim != 2:
        raise InputError(f"frames must have shape (time, walker), got {frames.shape}")
    _as_samples(frames.reshape(-1), "frames")
    points = checked_count(points, "points")
    laws = [reference] if _is_distribution(reference) else np.asarray(reference, dtype=float).reshape(-1, 1)
    ends = np.unique(np.linspace(0, frames.shape[0], points + 1)[1:].round().astype(int))
    ends = ends[ends > 0]
    curve = np.array([wasserstein_marginals(frames[:end].reshape(-1), laws)[0] for end in ends])
    return ends * frames.shape[1], curve


def linear_separability(z, in_a) -> float:
    """Fraction of states classified right by the best threshold on Fisher's discriminant w·z,
    w = S⁻¹(z̄_a − z̄_b) with S the pooled within-set covariance; 1 when a line in CV space separates
    the sets ``in_a`` (boolean, (n,)) and its complement, about the larger set's share when nothing does."""
    z = _as_samples(z, "z")
    in_a = np.asarray(in_a, dtype=bool).reshape(-1)
    if in_a.shape != (len(z),) or in_a.all() or not in_a.any():
        raise InputError(f"in_a must be a boolean mask of the {len(z)} states with both sets non-empty")
    a, b = z[in_a], z[~in_a]
    pooled = np.vstack([a - a.mean(axis=0), b - b.mean(axis=0)])
    w = np.linalg.lstsq(np.atleast_2d(np.cov(pooled.T)), a.mean(axis=0) - b.mean(axis=0), rcond=None)[0]
    order = np.argsort(z @ w, kind="stable")
    labels = in_a[order]
    # a cut after the first k projections: the b's among them and the a's after them are right
    right = np.concatenate([[0], np.cumsum(~labels)]) + np.concatenate([np.cumsum(labels[::-1])[::-1], [0]])
    return float(right.max() / len(z))
