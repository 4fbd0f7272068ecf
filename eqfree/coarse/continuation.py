"""Pseudo-arclength continuation of coarse fixed points in a parameter λ of the fine system.

Points u = (z, λ) of the branch F(z; λ) = 0 (F the burst drift, :mod:`.newton`) are found one after
another (Keller 1977; Kevrekidis et al. 2003 for the coarse time-stepper):

- **predictor** u_p = u_k + Δs t_k along the unit tangent t_k;
- **corrector**: Newton–Krylov on the bordered system [F(u); t_k·(u − u_p)] = 0, with the seed of
  point k (child k + 1 of the run's seed) fixed (common random numbers);
- **tangent** at the new point: [∂F/∂u; t_kᵀ] t = [0; 1], normalised — it keeps the orientation;
- **standard errors** of z and λ by the bordered delta method (:func:`~eqfree.coarse.newton.solve_bordered`);
- **step control**: Δs grows by 1.3 after a corrector of at most 2 iterations, shrinks by 0.7 after
  one of 5 or more, halves and retries after a failure, is kept above three standard errors of the
  point (noise) and within [``min_step``, ``max_step``] (by default step/16 and 2 step);
- **folds**: a sign change of the tangent's λ component between two points where it is resolved
  (|t_λ| above twice its standard error); located at the extremum between them of the weighted
  least-squares cubic λ = Σ_k c_k ζᵏ through those points and three more on each side (ζ: the state
  along the branch, weights 1/se(λ)²: a parabola would be biased by the cubic term over the window),
  its standard error from the fit's covariance (∂λ*/∂c_k = ζ*ᵏ at an extremum);
- **branch points**: a resolved sign change of det [∂F/∂u; tᵀ] (standard error by the delta method,
  d det = det · tr(A⁻¹ dA)). A corrector that lands on a branch point, where the tangent is undefined,
  may leave on the other branch; so where the determinant of the last two points, extrapolated
  linearly in arclength, vanishes within 1.5 steps at s*, the next step is 2 s*: the branch point
  falls midway between two points, and the step jumps it along the branch being followed. With a drift
  averaged over a symmetry S (:class:`~.newton.BurstDrift`), a branch point met on a branch of asymmetric
  states (S z ≠ z, resolved) is where the branch meets its own mirror image — a pitchfork — and the jump
  lands on S u, the mirror of the last point, with the tangent −S t: the tangent predictor cannot follow
  the branch round its turn there, and lands on the symmetric branch instead;
- **stop**: when λ leaves the range [λ₀, λ_end] (or its reverse), after ``max_points``, or when the
  step falls below ``min_step``.

Natural-parameter continuation (:func:`natural_continuation`: Newton at each λ of a grid from the
previous state) is here for comparison: it cannot pass a fold.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ..errors import ConvergenceError, InputError
from ..progress import progress_bar
from ..seeding import SeedLike, as_seed_sequence, child
from ..validation import checked_count, checked_positive
from .newton import BurstDrift, newton_krylov, solve_bordered
from .stability import coarse_eigenvalues

RESOLVED = 2.0  # a sign is resolved where the value is above this many standard errors


def tangent(jacobian: np.ndarray, jacobian_samples: np.ndarray, previous: np.ndarray) -> tuple:
    """Unit tangent solving [J; previousᵀ] t = [0; 1], the standard error of its λ component, the
    bordered determinant and its standard error (module doc)."""
    n = jacobian.shape[0]
    bordered = np.vstack([jacobian, previous])
    raw = np.linalg.solve(bordered, np.eye(n + 1)[n])
    norm = np.linalg.norm(raw)
    inverse = np.linalg.inv(bordered)
    walkers = jacobian_samples.shape[0]
    # walker r: dt = −A⁻¹ [J_r t; 0] (the constant part drops out of the scatter)
    shifts = -np.einsum("ij,rj->ri", inverse[:, :n], np.einsum("rij,j->ri", jacobian_samples, raw))
    lam_stderr = shifts[:, n].std(ddof=1) / math.sqrt(walkers) / norm
    determinant = np.linalg.det(bordered)
    traces = np.einsum("ji,rij->r", inverse[:, :n], jacobian_samples)
    det_stderr = abs(determinant) * traces.std(ddof=1) / math.sqrt(walkers)
    return raw / norm, lam_stderr, determinant, det_stderr


def resolved_sign_changes(values: np.ndarray, stderr: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (a, b), a < b, of consecutive resolved values (|value| > 2 se) of opposite sign."""
    resolved = [k for k in range(len(values)) if abs(values[k]) > RESOLVED * stderr[k]]
    return [(a, b) for a, b in zip(resolved, resolved[1:]) if np.sign(values[a]) != np.sign(values[b])]


def locate_fold(z: np.ndarray, lam: np.ndarray, lam_stderr: np.ndarray, a: int, b: int, window: int = 3):
    """λ, its standard error and z at the fold between points a and b: the extremum, between them, of the
    weighted cubic λ(ζ) through points a − window … b + window (module doc); ``None`` with fewer than four
    points, or without exactly one extremum between a and b."""
    lo, hi = max(0, a - window), min(len(lam), b + window + 1)
    if hi - lo < 4:
        return None
    direction = z[b] - z[a]
    direction = direction / (np.linalg.norm(direction) or 1.0)
    zeta = (z[lo:hi] - z[a]) @ direction
    weights = 1 / np.maximum(lam_stderr[lo:hi], 1e-12) ** 2
    design = np.vander(zeta, 4, increasing=True)
    covariance = np.linalg.pinv(design.T @ (weights[:, None] * design))
    c = covariance @ design.T @ (weights * lam[lo:hi])
    roots = np.roots([3 * c[3], 2 * c[2], c[1]])
    roots = roots[np.abs(roots.imag) < 1e-12].real
    roots = roots[(roots >= min(0, zeta[b - lo])) & (roots <= max(0, zeta[b - lo]))]
    if roots.size != 1:
        return None
    vertex = roots[0]
    powers = vertex ** np.arange(4)  # ∂λ*/∂c at an extremum (∂λ/∂ζ = 0 there)
    return float(c @ powers), float(np.sqrt(powers @ covariance @ powers)), z[a] + vertex * direction


def continuation(drift: BurstDrift, z0, lam0: float, lam_end: float, *, seed: SeedLike, parameter: str = "lam",
                 step: float = 0.1, min_step: float | None = None, max_step: float | None = None,
                 max_points: int = 200, max_iterations: int = 8, tolerance: float = 1e-8,
                 progress: bool | None = None) -> xr.Dataset:
    """Follow the branch of coarse fixed points from (``z0``, ``lam0``) towards ``lam_end`` (module doc).

    Returns a Dataset over ``point``: ``parameter`` and each CV with ``<name>_stderr`` (and
    ``<name>_drift``, the burst drift F̄ left at the point — Newton stops once it is within its noise — with
    ``<name>_drift_stderr``, its standard error: the branch's residual scale), the leading
    ``eigenvalue`` (real part) with ``eigenvalue_stderr``, ``stable``, the tangent's λ component
    ``tangent_parameter``, ``iterations`` and ``fine_steps`` (per point, walkers included); the folds and
    branch points in the attribute ``special_points`` and why it stopped in ``stop_reason``."""
    as_seed_sequence(seed)
    step = checked_positive(step, "step (the arclength step)")
    min_step = step / 16 if min_step is None else checked_positive(min_step, "min_step")
    max_step = 2 * step if max_step is None else checked_positive(max_step, "max_step")
    max_points = checked_count(max_points, "max_points", 2)
    if not (math.isfinite(lam0) and math.isfinite(lam_end)) or lam0 == lam_end:
        raise InputError(f"the parameter range [{lam0}, {lam_end}] must be finite and not empty")
    low, high = sorted((lam0, lam_end))
    first = newton_krylov(drift, z0, lam=lam0, seed=child(seed, 0), max_iterations=max_iterations,
                          tolerance=tolerance)
    n = first.z.size
    u = np.append(first.z, lam0)
    start = solve_bordered(drift, u, np.eye(n + 1)[n], u, seed=child(seed, 0), max_iterations=max_iterations,
                           tolerance=tolerance, columns=n + 1)
    # initial tangent: J t = 0 with t_λ of the sign of lam_end − lam0
    orient = np.append(np.zeros(n), math.copysign(1.0, lam_end - lam0))
    points = [record(drift, start, *tangent(start.jacobian, start.jacobian_samples, orient), 0)]
    t = points[0]["tangent"]
    ds, reason, spent, jump = step, f"max_points = {max_points} reached", 0, False
    bar = progress_bar(progress, total=max_points, desc="continuation")
    while len(points) < max_points:
        u = points[-1]["u"]
        mirror = mirror_of(drift, points[-1]) if jump else None
        predicted, direction = (u + ds * t, t) if mirror is None else (mirror @ u, -(mirror @ t))
        before = drift.n_bursts
        try:
            solution = solve_bordered(drift, predicted, direction, predicted, seed=child(seed, len(points)),
                                      max_iterations=max_iterations, tolerance=tolerance, columns=n + 1)
        except ConvergenceError:
            ds, jump = ds / 2, False
            if ds < min_step:
                reason = f"the corrector failed at the smallest step {min_step:g}"
                break
            continue
        if not low <= solution.u[n] <= high:
            reason = f"{parameter} left [{low:g}, {high:g}]"
            break
        spent += (drift.n_bursts - before) * drift.n_walkers * drift.n_steps(solution.u[n])
        point = record(drift, solution, *tangent(solution.jacobian, solution.jacobian_samples, direction), spent)
        points.append(point)
        t, spent = point["tangent"], 0
        bar.update()
        factor = 1.3 if solution.iterations <= 2 else 0.7 if solution.iterations >= 5 else 1.0
        ds = min(max(ds * factor, 3 * float(np.linalg.norm(solution.u_stderr)), min_step), max_step)
        ahead = branch_point_ahead(points[-2:])
        jump = ahead is not None and ahead < 1.5 * ds
        if jump:
            ds = min(2 * ahead, 2 * max_step)  # jump it: land as far beyond as the last point is before
    bar.close()
    return branch_dataset(points, drift.names(lam0), parameter, reason)


def mirror_of(drift: BurstDrift, point: dict) -> np.ndarray | None:
    """The drift's symmetry S acting on u = (z, λ), where the point is resolved off S's fixed set (its image
    is then on the same branch, beyond the branch point: module doc); ``None`` otherwise."""
    if drift.symmetry is None:
        return None
    n = drift.symmetry.shape[0]
    z, z_stderr = point["u"][:n], point["u_stderr"][:n]
    if np.linalg.norm(drift.symmetry @ z - z) <= 3 * np.linalg.norm(z_stderr):
        return None
    action = np.eye(n + 1)
    action[:n, :n] = drift.symmetry
    return action


def branch_point_ahead(last: list[dict]) -> float | None:
    """Arclength beyond the last point where the determinant of the last two, both resolved and of one sign,
    extrapolates linearly to zero; ``None`` where it does not."""
    if len(last) < 2 or any(abs(p["determinant"]) <= RESOLVED * p["determinant_stderr"] for p in last):
        return None
    before, after = (p["determinant"] for p in last)
    if np.sign(before) != np.sign(after) or abs(after) >= abs(before):
        return None
    distance = float(np.linalg.norm(last[1]["u"] - last[0]["u"]))
    return distance * after / (before - after)


def record(drift: BurstDrift, solution, t, t_stderr, determinant, det_stderr, fine_steps) -> dict:
    """One point of the branch as a dict: u = (z, λ) of the corrector's ``solution`` with its standard errors,
    the unit tangent t, det [∂F/∂u; tᵀ] (a resolved sign change marks a branch point), the flow eigenvalues
    (:func:`~eqfree.coarse.stability.coarse_eigenvalues`), iterations, walkers and fine steps.
    """
    n = solution.jacobian.shape[0]
    eigenvalues = coarse_eigenvalues(solution.jacobian_samples[:, :, :n], drift.tau)
    return {"u": solution.u, "u_stderr": solution.u_stderr, "drift": solution.residual,
            "drift_stderr": solution.residual_stderr,
            "tangent": t, "tangent_stderr": t_stderr,
            "determinant": determinant, "determinant_stderr": det_stderr, "eigenvalues": eigenvalues,
            "iterations": solution.iterations, "fine_steps": fine_steps, "n_walkers": solution.n_walkers}


def branch_dataset(points: list[dict], names: list[str], parameter: str, reason: str) -> xr.Dataset:
    """The branch's Dataset (see :func:`continuation`) with its special points."""
    n = len(names)
    u = np.array([p["u"] for p in points])
    se = np.array([p["u_stderr"] for p in points])
    eig = np.array([p["eigenvalues"].values[0].real for p in points])
    data = {parameter: ("point", u[:, n], {"long_name": f"continuation parameter {parameter}"}),
            f"{parameter}_stderr": ("point", se[:, n])}
    for i, name in enumerate(names):
        data[name] = ("point", u[:, i], {"long_name": f"coarse fixed point, {name}"})
        data[f"{name}_stderr"] = ("point", se[:, i])
        data[f"{name}_drift"] = ("point", np.array([p["drift"][i] for p in points]),
                                 {"long_name": f"burst drift of {name} left at the point (within its noise)"})
        data[f"{name}_drift_stderr"] = ("point", np.array([p["drift_stderr"][i] for p in points]),
                                        {"long_name": f"standard error of the burst drift of {name} at the point"})
    data |= {
        "eigenvalue": ("point", eig, {"long_name": "leading eigenvalue of the coarse flow (real part)"}),
        "eigenvalue_stderr": ("point", np.array([p["eigenvalues"].stderr[0] for p in points])),
        "stable": ("point", np.array([p["eigenvalues"].stable for p in points])),
        "tangent_parameter": ("point", np.array([p["tangent"][n] for p in points])),
        "tangent_parameter_stderr": ("point", np.array([p["tangent_stderr"] for p in points])),
        "determinant": ("point", np.array([p["determinant"] for p in points])),
        "determinant_stderr": ("point", np.array([p["determinant_stderr"] for p in points])),
        "iterations": ("point", np.array([p["iterations"] for p in points])),
        "fine_steps": ("point", np.array([p["fine_steps"] for p in points])),
    }
    dataset = xr.Dataset(data, coords={"point": np.arange(len(points))})
    special = []
    for a, b in resolved_sign_changes(dataset.tangent_parameter.values, dataset.tangent_parameter_stderr.values):
        fold = locate_fold(u[:, :n], u[:, n], se[:, n], a, b)
        if fold is None:  # no cubic to trust: where t_λ crosses zero, linearly
            slope = np.abs(dataset.tangent_parameter.values)
            w = slope[a] / (slope[a] + slope[b])
            fold = (float(u[a, n] + w * (u[b, n] - u[a, n])), float(max(se[a, n], se[b, n])),
                    u[a, :n] + w * (u[b, :n] - u[a, :n]))
        lam, lam_se, z = fold
        special.append({"kind": "fold", "between": [a, b], parameter: lam, f"{parameter}_stderr": lam_se,
                        **{name: float(z[i]) for i, name in enumerate(names)}})
    for a, b in resolved_sign_changes(dataset.determinant.values, dataset.determinant_stderr.values):
        det = np.abs(dataset.determinant.values)
        w = det[a] / (det[a] + det[b])
        at = u[a] + w * (u[b] - u[a])
        special.append({"kind": "branch_point", "between": [a, b], parameter: float(at[n]),
                        f"{parameter}_stderr": float(max(se[a, n], se[b, n])),
                        **{name: float(at[i]) for i, name in enumerate(names)}})
    dataset.attrs = {"parameter": parameter, "cv": list(names), "special_points": special, "stop_reason": reason,
                     "n_walkers": int(points[-1]["n_walkers"])}
    return dataset


def natural_continuation(drift: BurstDrift, z0, lams, *, seed: SeedLike, parameter: str = "lam",
                         max_iterations: int = 8, tolerance: float = 1e-8) -> xr.Dataset:
    """Newton–Krylov at each λ of ``lams`` in turn, from the previous fixed point (point k uses child k of
    ``seed``); a λ where Newton fails is skipped. Same variables as :func:`continuation` (no tangent)."""
    as_seed_sequence(seed)
    z, rows = np.atleast_1d(np.asarray(z0, dtype=float)), []
    for k, lam in enumerate(np.asarray(lams, dtype=float)):
        try:
            point = newton_krylov(drift, z, lam=float(lam), seed=child(seed, k), max_iterations=max_iterations,
                                  tolerance=tolerance)
        except ConvergenceError:
            continue
        z = point.z
        rows.append(point)
    if not rows:
        raise ConvergenceError("Newton failed at every parameter value: start closer to a fixed point")
    names = drift.names(rows[0].lam)
    data = {parameter: ("point", np.array([p.lam for p in rows]))}
    for i, name in enumerate(names):
        data[name] = ("point", np.array([p.z[i] for p in rows]))
        data[f"{name}_stderr"] = ("point", np.array([p.z_stderr[i] for p in rows]))
    data |= {"eigenvalue": ("point", np.array([p.eigenvalues.values[0].real for p in rows])),
             "eigenvalue_stderr": ("point", np.array([p.eigenvalues.stderr[0] for p in rows])),
             "stable": ("point", np.array([p.stable for p in rows]))}
    return xr.Dataset(data, coords={"point": np.arange(len(rows))}, attrs={"parameter": parameter, "cv": names})
