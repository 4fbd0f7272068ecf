"""Coarse fixed points of a stochastic coarse time-stepper by Jacobian-free Newton–Krylov.

The **burst drift** at coarse state z and parameter λ of the fine system,

    F(z; λ) = (1/R) Σ_r F_r,    F_r = (R(x_r(τ)) − R(x_r(0))) / τ,    x_r(0) ~ L(z) at λ,

is the coarse map's residual (Φ_τ(z) − z)/τ, measured from the restricted lift as in the closures'
burst estimator. Its zeros are the fixed points of the coarse time-stepper; for an averaged dynamics
dz = B(z) dt, E[Δz]/τ = B + ½ τ B′B + O(τ²) vanishes where B does (Kevrekidis et al. 2003).

**Common random numbers.** A solve fixes its seed: every evaluation lifts with child 0 and bursts
with child 1 of the same SeedSequence, so F(·; seed) is one sample function — smooth wherever the
lift and the fine dynamics are (an exact Gaussian lift, Euler–Maruyama noise) — and a directional
derivative is a central difference of per-walker values,

    J v ≈ (1/R) Σ_r [F_r(u + h v) − F_r(u − h v)] / 2h,      u = (z, λ),

whose noise is the scatter of the per-walker quotients, not σ_F/h. The increment is
h = min(√σ_F, 0.1) (at least 10⁻⁶), σ_F the largest standard error of F at u: Dennis & Schnabel's
rule for a function known to absolute accuracy σ_F, conservative here since the difference of two
evaluations with the same seed carries far less noise than σ_F.

Newton steps solve the linear system with ``scipy.sparse.linalg.gmres`` on a ``LinearOperator`` of
these products, inexactly (relative residual 10⁻³, one cycle of as many Krylov vectors as unknowns: a
difference quotient is linear in v only up to O(h²)). With the seed fixed, Newton converges on the
sample function (Shapiro's sample-average approximation); it stops when the step is below ``tolerance``
or the residual below a tenth of its standard error — or, after two steps, below one standard error:
a sample function that is not smooth (a stochastic simulation algorithm's jumps) has no exact root,
and steps below the noise resolve nothing. The root's error is the sampling error of F, by the delta
method,

    Cov(u*) = A⁻¹ diag(Cov F̄, 0) A⁻ᵀ,     A = [∂F/∂u; bᵀ],

with b the row that closes the system (λ fixed for a fixed point; the arclength row on a branch,
:mod:`.continuation`) and Cov F̄ the walkers' sample covariance over R; the distance to the sample
root, A⁻¹[F̄; 0], is added in quadrature. Where a requested
``stderr_target`` is not met, the walkers are doubled (the first R keep their numbers) and Newton
resumes from the root, until it is or ``max_walkers`` is reached.

**Symmetry.** A fine system equivariant under a coarse involution S (S² = I; F(Sz) = S F(z), e.g. z → −z
for an odd system) has branch points that exist only by that symmetry — a pitchfork — and a sampling
error that breaks it unfolds them (F + ε = 0 with ε ≠ 0 separates the crossing branches, so a continuation
may turn onto the wrong one). Given ``symmetry`` = S, each walker's drift is averaged over the group, with
common random numbers,

    F_r^S(z) = ½ [F_r(z) + S F_r(Sz)],

the Reynolds operator of the group {I, S} (an unbiased estimate of an equivariant F, at twice the bursts):
the estimate is then exactly equivariant, F̄^S(Sz) = S F̄^S(z), at every seed, and the branch points the
symmetry makes survive the sampling error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres

from ..errors import ConvergenceError, InputError, InputTypeError
from ..operators import CoarseTimeStepper, steps_for
from ..seeding import SeedLike, as_seed_sequence, child
from ..validation import checked_count, checked_positive
from .stability import Eigenvalues, coarse_eigenvalues

MAX_INCREMENT = 0.1
MIN_INCREMENT = 1e-6


class BurstDrift:
    """F(z; λ) of the module doc from ``family(λ) -> CoarseTimeStepper`` (the fine system at parameter
    λ; a fixed system ignores λ), bursts of length ``tau`` and ``n_walkers`` walkers.

    ``symmetry``: an involution S of the CVs, ``(n_cv, n_cv)`` with S² = I, under which the fine system is
    equivariant; the drift is then averaged over {I, S} (module doc). Counts its bursts (``n_bursts``)."""

    def __init__(self, family: Callable[[float], CoarseTimeStepper], *, tau: float, n_walkers: int,
                 symmetry=None):
        if not callable(family):
            raise InputTypeError(f"family must be callable as family(lam) -> CoarseTimeStepper, got {type(family)}")
        self.family = family
        self.tau = checked_positive(tau, "tau (the burst length)")
        self.n_walkers = checked_count(n_walkers, "n_walkers (the standard error needs two)", 2)
        self.symmetry = None if symmetry is None else checked_involution(symmetry)
        self.n_bursts = 0
        self._steppers: dict[float, CoarseTimeStepper] = {}

    def stepper(self, lam: float) -> CoarseTimeStepper:
        """The coarse time-stepper ``family(λ)`` at parameter λ (the last one built is reused)."""
        lam = float(lam)
        if lam not in self._steppers:
            self._steppers = {lam: self.family(lam)}  # the last one: Newton revisits a parameter value
        return self._steppers[lam]

    def names(self, lam: float) -> list[str]:
        """The CVs' names (the restriction's)."""
        return list(self.stepper(lam).restrict.names)

    def n_steps(self, lam: float) -> int:
        """Fine steps in a burst of length τ at parameter λ, τ/dt."""
        return steps_for(self.tau, self.stepper(lam).evolve.dt)

    def with_walkers(self, n_walkers: int) -> BurstDrift:
        """The same drift with ``n_walkers`` walkers per burst (its burst count starts at zero)."""
        return BurstDrift(self.family, tau=self.tau, n_walkers=n_walkers, symmetry=self.symmetry)

    def samples(self, u: np.ndarray, seed: SeedLike) -> np.ndarray:
        """Per-walker drifts F_r, shape ``(n_walkers, n_cv)``, at u = (z..., λ); with a ``symmetry`` S, their
        averages ½ [F_r(z) + S F_r(Sz)] (module doc)."""
        u = np.asarray(u, dtype=float)
        if self.symmetry is None:
            return self.bursts(u, seed)
        if self.symmetry.shape[0] != len(u) - 1:
            raise InputError(f"symmetry is {self.symmetry.shape[0]} x {self.symmetry.shape[0]} for "
                             f"{len(u) - 1} CVs: give one row and column per CV")
        mirrored = np.append(self.symmetry @ u[:-1], u[-1])
        return 0.5 * (self.bursts(u, seed) + self.bursts(mirrored, seed) @ self.symmetry.T)

    def bursts(self, u: np.ndarray, seed: SeedLike) -> np.ndarray:
        """Per-walker drifts F_r of one burst ensemble at u = (z..., λ), shape ``(n_walkers, n_cv)``."""
        stepper = self.stepper(u[-1])
        burst = stepper(u[:-1], self.tau, self.n_walkers, seed=seed, save_every=self.n_steps(u[-1]))
        self.n_bursts += 1
        values = (burst.values[-1] - burst.values[0]) / self.tau
        if not np.all(np.isfinite(values)):
            raise InputError(f"the bursts at z = {u[:-1]}, parameter {u[-1]:g} left non-finite CV values: the fine "
                             "simulation diverged; check that the state is within the model's range")
        return values

    def directional_samples(self, u: np.ndarray, v: np.ndarray, h: float, seed: SeedLike) -> np.ndarray:
        """Per-walker central differences [F_r(u + h v̂) − F_r(u − h v̂)] ‖v‖ / 2h, v̂ = v/‖v‖ (common random numbers)."""
        norm = float(np.linalg.norm(v))
        if norm == 0:
            return np.zeros((self.n_walkers, len(u) - 1))
        step = h * np.asarray(v, dtype=float) / norm
        return (self.samples(u + step, seed) - self.samples(u - step, seed)) * norm / (2 * h)


def checked_involution(symmetry) -> np.ndarray:
    """``symmetry`` as a square float matrix S with S² = I (to round-off), or an InputError."""
    matrix = np.atleast_2d(np.asarray(symmetry, dtype=float))
    n = matrix.shape[0]
    if matrix.ndim != 2 or matrix.shape != (n, n) or not np.allclose(matrix @ matrix, np.eye(n), atol=1e-12):
        raise InputError(f"symmetry must be a square matrix S with S @ S = I (an involution of the CVs, e.g. [[-1]] "
                         f"for z -> -z), got {matrix.tolist()}")
    return matrix


def stderr_of(samples: np.ndarray) -> np.ndarray:
    """Standard error of the walker mean, per column."""
    return samples.std(axis=0, ddof=1) / math.sqrt(samples.shape[0])


def increment(stderr: np.ndarray) -> float:
    """h = √σ_F within [10⁻⁶, 0.1] (module doc)."""
    return float(np.clip(math.sqrt(float(np.max(stderr, initial=0.0))), MIN_INCREMENT, MAX_INCREMENT))


@dataclass(frozen=True)
class Solution:
    """A converged root of the bordered system [F(u); b·(u − p)] = 0 at u = (z, λ), with what it took."""

    u: np.ndarray
    u_stderr: np.ndarray
    residual: np.ndarray
    residual_stderr: np.ndarray
    jacobian: np.ndarray  # ∂F/∂u at u, (n_cv, n_cv + 1) (λ column only where assembled)
    jacobian_samples: np.ndarray  # per walker, (n_walkers, n_cv, columns)
    iterations: int
    n_walkers: int


def solve_bordered(drift: BurstDrift, u0, row, point, *, seed: SeedLike, max_iterations: int, tolerance: float,
                   columns: int, gmres_tolerance: float = 1e-3) -> Solution:
    """Newton–Krylov on [F(u); row·(u − point)] = 0 from u0 with the seed fixed (module doc); assembles
    the first ``columns`` columns of ∂F/∂u at the root."""
    u = np.array(u0, dtype=float)
    row, point = np.asarray(row, dtype=float), np.asarray(point, dtype=float)
    n = len(u) - 1
    step = np.full(n + 1, np.inf)
    for iteration in range(1, max_iterations + 1):  # noqa: B007 (the count is returned)
        samples = drift.samples(u, seed)
        residual, stderr = samples.mean(axis=0), stderr_of(samples)
        # a residual far inside its noise, or (after two steps) within it: further steps are lost in noise
        within = np.all(np.abs(residual) <= (0.1 if iteration <= 2 else 1.0) * stderr) and np.all(stderr > 0)
        if np.max(np.abs(step)) <= tolerance * (1 + np.max(np.abs(u))) or within:
            break
        h = increment(stderr)

        def matvec(v, u=u, h=h):
            v = np.ravel(v)
            return np.append(drift.directional_samples(u, v, h, seed).mean(axis=0), row @ v)

        operator = LinearOperator((n + 1, n + 1), matvec=matvec, dtype=float)
        rhs = -np.append(residual, row @ (u - point))
        # an inexact Newton step: finite differences are linear in v only to O(h²), so GMRES may stop short
        step, _ = gmres(operator, rhs, rtol=gmres_tolerance, atol=0.0, restart=n + 1, maxiter=1)
        if not np.all(np.isfinite(step)):
            raise ConvergenceError(f"GMRES found no Newton step at u = {u}: the coarse Jacobian is singular or "
                                   "lost in noise; use more walkers or start elsewhere")
        u = u + step
    else:
        raise ConvergenceError(f"coarse Newton did not converge in {max_iterations} iterations (last step "
                               f"{np.max(np.abs(step)):.3g}, residual {np.max(np.abs(residual)):.3g} ± "
                               f"{np.max(stderr):.2g}): raise max_iterations, use more walkers, or start closer")
    h = increment(stderr)
    jacobian_samples = np.stack([drift.directional_samples(u, np.eye(n + 1)[k], h, seed) for k in range(columns)], -1)
    jacobian = np.zeros((n, n + 1))
    jacobian[:, :columns] = jacobian_samples.mean(axis=0)
    bordered = np.vstack([jacobian, row])
    covariance = np.zeros((n + 1, n + 1))
    covariance[:n, :n] = np.atleast_2d(np.cov(samples, rowvar=False)) / samples.shape[0]
    inverse = np.linalg.inv(bordered)
    offset = inverse[:, :n] @ residual  # where one more Newton step would go: added to the error budget
    u_stderr = np.sqrt(np.clip(np.diag(inverse @ covariance @ inverse.T), 0, None) + offset**2)
    return Solution(u, u_stderr, residual, stderr, jacobian, jacobian_samples, iteration, drift.n_walkers)


@dataclass(frozen=True)
class FixedPoint:
    """A coarse fixed point z* at parameter λ, with its standard error, the standard error of the burst drift
    there, the flow eigenvalues of the coarse Jacobian (:mod:`.stability`) and what the solve cost."""

    z: np.ndarray
    z_stderr: np.ndarray
    drift_stderr: np.ndarray
    lam: float
    eigenvalues: Eigenvalues
    iterations: int
    n_walkers: int
    fine_steps: int

    @property
    def stable(self) -> bool:
        """Whether every flow eigenvalue μ has Re μ < 0 (:attr:`Eigenvalues.stable`)."""
        return self.eigenvalues.stable


def newton_krylov(drift: BurstDrift, z0, *, lam: float = 0.0, seed: SeedLike, max_iterations: int = 20,
                  tolerance: float = 1e-8, stderr_target: float | None = None, max_walkers: int | None = None
                  ) -> FixedPoint:
    """Coarse fixed point F(z*; λ) = 0 from ``z0`` by Newton–Krylov with common random numbers (module doc).

    ``stderr_target``: double the walkers until every component of z*'s standard error is below it (up to
    ``max_walkers``, default 64 times the drift's)."""
    z0 = np.atleast_1d(np.asarray(z0, dtype=float))
    if z0.ndim != 1 or not np.all(np.isfinite(z0)) or not math.isfinite(lam):
        raise InputError(f"z0 must be a finite scalar or 1-D array and lam finite, got z0 = {z0!r}, lam = {lam!r}")
    as_seed_sequence(seed)
    max_iterations = checked_count(max_iterations, "max_iterations")
    max_walkers = 64 * drift.n_walkers if max_walkers is None else checked_count(max_walkers, "max_walkers", 2)
    n = z0.size
    row = np.eye(n + 1)[n]
    u, fine_steps = np.append(z0, lam), 0
    while True:
        before = drift.n_bursts
        solution = solve_bordered(drift, u, row, u, seed=child(seed, 0), max_iterations=max_iterations,
                                  tolerance=tolerance, columns=n)
        fine_steps += (drift.n_bursts - before) * drift.n_walkers * drift.n_steps(lam)
        u = solution.u
        met = stderr_target is None or np.all(solution.u_stderr[:n] <= stderr_target)
        if met or 2 * drift.n_walkers > max_walkers:
            break
        drift = drift.with_walkers(2 * drift.n_walkers)
    eigenvalues = coarse_eigenvalues(solution.jacobian_samples[:, :, :n], drift.tau)
    return FixedPoint(u[:n], solution.u_stderr[:n], solution.residual_stderr, float(lam), eigenvalues,
                      solution.iterations, drift.n_walkers, fine_steps)
