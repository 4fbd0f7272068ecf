"""Consistency checks of a user's own operators.

**Micro–macro consistency** (:func:`check_micro_macro_consistency`): restricting lifted states gives back
the coarse state, R(L(z)) ≈ z.

For n states x_j = L(z)_j and errors e_j = ‖R(x_j) − z‖ (Euclidean over the CV components),

    mean_j e_j ≤ tolerance      and      max_j e_j ≤ sample_tolerance  (default 10 · tolerance).

The mean catches a biased lift, the per-sample bound a lift that is right on average but throws
single states far off. Exact lifts (constrained coordinates) meet both with tolerance ~ 1e-12;
learned lifts need their own, stated tolerances.

**Calibrated checks** — statistical tests whose false-alarm rate is the nominal ``alpha``: at each
point of a grid a two-sample test (energy distance, permutation p-value, :mod:`.twosample`) or a
z-test, the p-values adjusted across the grid (Holm by default, or Benjamini–Hochberg); the check
rejects where an adjusted p-value is ≤ alpha. Each returns a :class:`CheckReport`.

- :func:`check_lift` — the lift is at the conditional equilibrium (invariant under restrained dynamics);
- :func:`check_markov` — the CV is Markovian at τ (Chapman–Kolmogorov of the coarse stepper);
- :func:`check_closure_pmf` — a closure's stationary density is the PMF's exp(−βF);
- :func:`check_lifts_agree` — two lifts of the same z give the same law.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import xarray as xr

from ..closures import debiased
from ..closures.store import in_layout
from ..errors import InputError
from ..evolve import HarmonicBias
from ..operators import Evolve, Lift, Restrict, steps_for
from ..progress import progress_bar
from ..restrict import Coordinates, collective_variable
from ..seeding import SeedLike, child
from ..validation import checked_count, checked_positive
from .twosample import CORRECTIONS, adjusted, two_sample_test, z_test


class ConsistencyReport(NamedTuple):
    """The micro–macro check's result: mean and largest label error |R(L(z)) − z| over ``n`` lifted states."""

    mean_error: float
    max_error: float
    n: int


def check_micro_macro_consistency(
    lift: Lift,
    restrict: Restrict,
    z,
    n: int = 100,
    *,
    seed: SeedLike,
    tolerance: float,
    sample_tolerance: float | None = None,
) -> ConsistencyReport:
    """Lift n states at ``z``, restrict them, and raise ``AssertionError`` (with the numbers) unless
    the mean and the largest error are within their tolerances (module doc); returns the errors."""
    z = np.atleast_1d(np.asarray(z, dtype=float))
    if z.ndim != 1 or not np.all(np.isfinite(z)):
        raise InputError(f"z must be a finite scalar or 1-D array, got {z!r}")
    if not tolerance >= 0:
        raise InputError(f"tolerance must be non-negative, got {tolerance}")
    sample_tolerance = 10 * tolerance if sample_tolerance is None else sample_tolerance
    valid = lift.valid_range
    if valid is not None and z.size == 1 and not valid[0] <= z[0] <= valid[1]:
        raise InputError(f"z = {z[0]:g} is outside the lift's valid range {tuple(valid)}; check inside it")
    x = np.asarray(lift(z, n, seed=seed), dtype=float)
    if x.ndim != 2 or x.shape[0] != n or not np.all(np.isfinite(x)):
        raise AssertionError(f"lift at z = {z.tolist()} returned shape {x.shape} (finite: {np.isfinite(x).all()}); "
                             f"expected {n} finite states of shape (n, dim)")
    restricted = np.asarray(restrict(x), dtype=float)
    if restricted.shape != (n, z.size):
        raise AssertionError(f"restriction of {n} lifted states has shape {restricted.shape}; expected ({n}, {z.size})")
    errors = np.linalg.norm(restricted - z, axis=1)
    report = ConsistencyReport(float(errors.mean()), float(errors.max()), n)
    if report.mean_error > tolerance or report.max_error > sample_tolerance:
        worst = int(errors.argmax())
        raise AssertionError(
            f"restrict∘lift is not consistent at z = {z.tolist()}: mean |R(L(z)) − z| = {report.mean_error:.3g} "
            f"(tolerance {tolerance:.3g}), largest {report.max_error:.3g} at sample {worst} "
            f"(per-sample tolerance {sample_tolerance:.3g}), over {n} samples"
        )
    return report


# -- calibrated checks ----------------------------------------------------------------------------------
@dataclass
class CheckReport:
    """The outcome of a calibrated check across a grid of CV values.

    ``check`` names it; ``grid`` ``(K,)`` or ``(K, n_cv)``; per point ``statistic`` (an energy distance, or a
    z-score), ``p_value`` and ``adjusted`` (after ``correction``); ``rejected`` where adjusted ≤ ``alpha``;
    ``samples`` the data each point was tested on (by name, arrays with a leading grid axis)."""

    check: str
    grid: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    adjusted: np.ndarray
    alpha: float
    correction: str
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def rejected(self) -> np.ndarray:
        """Per point: the adjusted p-value is ≤ ``alpha``."""
        return self.adjusted <= self.alpha

    @property
    def consistent(self) -> bool:
        """No grid point rejected: the family-wise (Holm) or false-discovery (BH) level is ``alpha``."""
        return not bool(self.rejected.any())

    def table(self) -> str:
        """One line per grid point: z, the statistic, p, adjusted p, and whether it rejects."""
        kind = "z-score" if self.check == "closure-pmf" else "energy"
        lines = [f"{'z':>16} {kind:>12} {'p':>8} {self.correction + ' p':>10}  reject at {self.alpha:g}"]
        for z, s, p, q, r in zip(self.grid, self.statistic, self.p_value, self.adjusted, self.rejected):
            point = ",".join(f"{v:.4g}" for v in np.atleast_1d(z))
            lines.append(f"{point:>16} {s:12.4g} {p:8.3g} {q:10.3g}  {'REJECT' if r else 'ok'}")
        verdict = "consistent" if self.consistent else f"rejected at {int(self.rejected.sum())} point(s)"
        return "\n".join([*lines, f"{self.check}: {verdict}"])

    def assert_consistent(self) -> CheckReport:
        """Raise ``AssertionError`` with the table unless no point rejects; returns the report."""
        if not self.consistent:
            raise AssertionError(f"the {self.check} check rejects ({self.correction}, alpha = {self.alpha:g}):\n"
                                 f"{self.table()}")
        return self

    def to_dataset(self) -> xr.Dataset:
        """The per-point results (and samples) as a dataset on a ``point`` dimension, for a store."""
        grid = np.asarray(self.grid, dtype=float).reshape(len(self.statistic), -1)
        data = {"z": (("point", "cv"), grid), "statistic": ("point", self.statistic),
                "p_value": ("point", self.p_value), "adjusted_p_value": ("point", self.adjusted),
                "rejected": ("point", self.rejected)}
        for name, values in self.samples.items():
            values = np.asarray(values, dtype=float)
            data[name] = (("point", *[f"{name}_{i}" for i in range(1, values.ndim)]), values)
        settings = {k: v for k, v in self.settings.items() if isinstance(v, (int, float, str))}
        return xr.Dataset(data, attrs={"check": self.check, "alpha": self.alpha, "correction": self.correction,
                                       "consistent": int(self.consistent), **settings})


def _grid(grid) -> np.ndarray:
    values = np.asarray(grid, dtype=float)
    values = values[:, None] if values.ndim == 1 else values
    if values.ndim != 2 or len(values) < 1 or not np.all(np.isfinite(values)):
        raise InputError(f"grid must be finite CV values, shape (K,) or (K, n_cv); got shape {np.shape(grid)}")
    return values


def _settings(alpha: float, correction: str, n_samples: int, n_permutations: int | None, points: int):
    if not 0 < alpha < 1:
        raise InputError(f"alpha must lie in (0, 1), got {alpha}")
    if correction not in CORRECTIONS:
        raise InputError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    n_samples = checked_count(n_samples, "n_samples", 2)
    # ten permutations per smallest Holm level α/K, so a rejection is never limited by the p-value's resolution
    n_permutations = max(199, math.ceil(10 * points / alpha) - 1) if n_permutations is None else n_permutations
    return n_samples, checked_count(n_permutations, "n_permutations", 19)


def _in_range(lift: Lift, grid: np.ndarray) -> None:
    valid = lift.valid_range
    if valid is not None and grid.shape[1] == 1 and not np.all((grid >= valid[0]) & (grid <= valid[1])):
        raise InputError(f"grid [{grid.min():g}, {grid.max():g}] leaves the lift's valid range {tuple(valid)}")


def _lifted(lift: Lift, z: np.ndarray, n: int, seed: SeedLike) -> np.ndarray:
    x = np.asarray(lift(z, n, seed=seed), dtype=float)
    if x.ndim != 2 or x.shape[0] != n or not np.all(np.isfinite(x)):
        raise InputError(f"the lift at z = {z.tolist()} returned shape {x.shape} (finite: {np.isfinite(x).all()}); "
                         f"a Lift returns {n} finite states (n, dim)")
    return x


def _report(check, grid, tests, *, alpha, correction, samples, settings) -> CheckReport:
    statistic = np.array([t.statistic for t in tests])
    p = np.array([t.p_value for t in tests])
    return CheckReport(check, grid[:, 0] if grid.shape[1] == 1 else grid, statistic, p, adjusted(p, correction),
                       alpha, correction, {k: np.asarray(v) for k, v in samples.items()}, settings)


def check_lift(lift: Lift, evolve: Evolve, cv, grid, *, n_steps: int, seed: SeedLike, n_samples: int = 4000,
               kappa: float | None = None, features: Callable[[np.ndarray], np.ndarray] | None = None,
               alpha: float = 0.05, correction: str = "holm", n_permutations: int | None = None,
               assert_consistent: bool = False, progress: bool | None = None) -> CheckReport:
    """Is the lift at the conditional equilibrium ν_z? At each z, ``n_samples`` states L(z) against as many
    drawn again and evolved ``n_steps`` (the healing time, several relaxation times of the fast variables)
    under the restraint κ/2 (ξ(x) − z)² (``evolve.biased``): an invariant lift gives both sets the same
    law, tested by the energy distance on ``features(x)``.

    The restraint holds the CV near z but not on it (its spread under a unit-gradient ξ is one step's
    drift and noise with the default κ = 1/dt, the stiffest restraint Euler-type schemes keep stable),
    while a lift puts it on z: the features leave the CV out. By default they are the coordinates other
    than ``cv`` when it is a coordinate (a name, index or :class:`~eqfree.Coordinates`), else the whole
    state; give ``features`` (fine states ``(n, dim)`` → ``(n, k)``) for a CV of your own. Seeds: point k
    lifts with children (k, 0) and (k, 1), evolves with (k, 2), permutes with (k, 3). Set
    ``assert_consistent`` to raise with the table on rejection."""
    grid = _grid(grid)
    if grid.shape[1] != 1:
        raise InputError("the lift check restrains one CV: give a grid of scalar CV values, shape (K,)")
    n_samples, n_permutations = _settings(alpha, correction, n_samples, n_permutations, len(grid))
    n_steps = checked_count(n_steps, "n_steps (the healing steps)")
    kappa = 1 / evolve.dt if kappa is None else checked_positive(kappa, "kappa")
    _in_range(lift, grid)
    dim = None if evolve.coords is None else len(evolve.coords)
    features = _features(cv, dim) if features is None else features
    bias_cv = collective_variable(cv, dim=dim)
    tests, lifted, healed = [], [], []
    for k, z in enumerate(progress_bar(progress, iterable=grid, desc="check lift")):
        before = _lifted(lift, z, n_samples, child(seed, k, 0))
        restrained = evolve.biased(HarmonicBias(bias_cv, kappa, float(z[0])))
        after = restrained(_lifted(lift, z, n_samples, child(seed, k, 1)), n_steps, seed=child(seed, k, 2),
                           save_every=n_steps).values[-1]
        tests.append(two_sample_test(features(before), features(after), n_permutations=n_permutations,
                                     seed=child(seed, k, 3)))
        lifted.append(before)
        healed.append(after)
    return _finish(_report("lift", grid, tests, alpha=alpha, correction=correction,
                           samples={"lifted": lifted, "healed": healed},
                           settings={"n_samples": n_samples, "n_steps": n_steps, "kappa": kappa,
                                     "n_permutations": n_permutations}), assert_consistent)


def _features(cv, dim: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """The coordinates other than a coordinate CV's, or the whole state for any other CV."""
    if isinstance(cv, (str, int)) and not isinstance(cv, bool):
        cv = Coordinates(cv, dim)
    if not isinstance(cv, Coordinates):
        return np.asarray

    def others(x):
        x = np.asarray(x)
        return np.delete(x, cv.indices, axis=-1) if x.shape[-1] > len(cv.indices) else x
    return others


def check_markov(lift: Lift, evolve: Evolve, restrict: Restrict, grid, *, tau: float, seed: SeedLike,
                 n_samples: int = 2000, alpha: float = 0.05, correction: str = "holm",
                 n_permutations: int | None = None, assert_consistent: bool = False,
                 progress: bool | None = None) -> CheckReport:
    """Is the CV Markovian at this τ? Chapman–Kolmogorov for the coarse stepper Φ_τ = R ∘ E_τ ∘ L: at each z,
    ``n_samples`` values R(E_2τ(L(z))) against as many R(E_τ(L(R(E_τ(L(z)))))) — a burst of τ, each walker
    restricted and lifted again at its own CV value (one lift call per walker), then τ more. A CV that
    leaves out a slow variable forgets it at the re-lift, and the two laws part; tested by the energy
    distance on the CV values. Seeds: point k lifts with children (k, 0) and (k, 2), bursts with (k, 1), (k, 3)
    and (k, 5), re-lifts walker i with (k, 4, i), permutes with (k, 6)."""
    grid = _grid(grid)
    n_samples, n_permutations = _settings(alpha, correction, n_samples, n_permutations, len(grid))
    n_steps = steps_for(checked_positive(tau, "tau"), evolve.dt)
    _in_range(lift, grid)
    tests, direct, relifted = [], [], []
    for k, z in enumerate(progress_bar(progress, iterable=grid, desc="check markov")):
        long = evolve(_lifted(lift, z, n_samples, child(seed, k, 0)), 2 * n_steps, seed=child(seed, k, 1),
                      save_every=2 * n_steps).values[-1]
        half = evolve(_lifted(lift, z, n_samples, child(seed, k, 2)), n_steps, seed=child(seed, k, 3),
                      save_every=n_steps).values[-1]
        middle = np.asarray(restrict(half), dtype=float).reshape(n_samples, -1)
        again = np.vstack([_lifted(lift, zi, 1, child(seed, k, 4, i)) for i, zi in enumerate(middle)])
        second = evolve(again, n_steps, seed=child(seed, k, 5), save_every=n_steps).values[-1]
        a = np.asarray(restrict(long), dtype=float).reshape(n_samples, -1)
        b = np.asarray(restrict(second), dtype=float).reshape(n_samples, -1)
        tests.append(two_sample_test(a, b, n_permutations=n_permutations, seed=child(seed, k, 6)))
        direct.append(a)
        relifted.append(b)
    return _finish(_report("markov", grid, tests, alpha=alpha, correction=correction,
                           samples={"direct": direct, "relifted": relifted},
                           settings={"n_samples": n_samples, "tau": float(tau), "n_permutations": n_permutations}),
                   assert_consistent)


def check_lifts_agree(lift: Lift, other: Lift, grid, *, seed: SeedLike, n_samples: int = 4000,
                      features: Callable[[np.ndarray], np.ndarray] = np.asarray, alpha: float = 0.05,
                      correction: str = "holm", n_permutations: int | None = None, assert_consistent: bool = False,
                      progress: bool | None = None) -> CheckReport:
    """Do two lifts of the same z give the same law of fine states? ``n_samples`` from each at every z,
    tested by the energy distance on ``features(x)`` (default the whole state; leave out a CV that one
    lift pins and the other only restrains, when its spread is not small against the test's resolution).
    Seeds: point k draws ``lift`` with child (k, 0), ``other`` with (k, 1), permutes with (k, 2)."""
    grid = _grid(grid)
    n_samples, n_permutations = _settings(alpha, correction, n_samples, n_permutations, len(grid))
    _in_range(lift, grid)
    _in_range(other, grid)
    tests, first, second = [], [], []
    for k, z in enumerate(progress_bar(progress, iterable=grid, desc="check lifts")):
        a, b = _lifted(lift, z, n_samples, child(seed, k, 0)), _lifted(other, z, n_samples, child(seed, k, 1))
        if a.shape[1] != b.shape[1]:
            raise InputError(f"the lifts give states of dimension {a.shape[1]} and {b.shape[1]}: compare lifts "
                             "of the same system")
        tests.append(two_sample_test(features(a), features(b), n_permutations=n_permutations,
                                     seed=child(seed, k, 2)))
        first.append(a)
        second.append(b)
    return _finish(_report("lifts", grid, tests, alpha=alpha, correction=correction,
                           samples={"lift": first, "other": second},
                           settings={"n_samples": n_samples, "n_permutations": n_permutations}), assert_consistent)


class _ZTest(NamedTuple):
    statistic: float
    p_value: float


def check_closure_pmf(closure: xr.Dataset, pmf: xr.Dataset, *, alpha: float = 0.05, correction: str = "holm",
                      assert_consistent: bool = False) -> CheckReport:
    """Do a closure dz = B dt + √D dW (Itô) and a PMF F(z) agree? For a reversible system the closed SDE's
    stationary density is exp(−βF), which holds iff at every z

        r(z) = B(z) − ½ D(z) g(z) − ½ D'(z) = 0,     g = −βF'.

    At each done interior closure point z_i (grid spacing h_i): D' by the central difference of the
    neighbours' D, g by the central difference of F (linearly interpolated) at z_i ± h_i/2, and the
    standard error of r from the estimates' standard errors taken independent,

        se² = se_B² + (g/2)² se_D² + (D/2)² se_g² + ¼ se_D'²,

    with se_D' and se_g from the differenced values' errors. z = r/se is tested against N(0, 1) per point
    (the truncation bias of the differences, h² D'''/6 and h² F'''/24, must be small against se).

    ``closure``: a closure dataset of one CV (``drift``, ``diffusion`` and their ``_stderr``, ``done``,
    :mod:`eqfree.closures.store`); ``pmf``: F in kT (``pmf``, optional ``pmf_stderr`` on ``cv``, the
    layout of a reweighting's ``pmf_``). A burst estimate is first :func:`~eqfree.closures.debiased` (its
    ½τB'B and p(B'D + ½BD') removed). Only closure points with both neighbours done and inside the PMF's
    range are tested."""
    _settings(alpha, correction, 2, None, 1)
    missing = {"drift", "drift_stderr", "diffusion", "diffusion_stderr", "done"} - set(closure.data_vars)
    if missing or len(closure["done"].dims) != 1:
        raise InputError(f"the closure needs {sorted(missing) or 'one CV'}: estimate it with bursts "
                         "(BurstEstimator), which give the diffusion")
    if "cv" not in pmf.dims or "pmf" not in pmf.data_vars:
        raise InputError("the PMF needs a 'pmf' variable (kT) on a 'cv' dimension, as umbrella sampling writes it")
    closure = debiased(in_layout(closure))
    z = np.asarray(closure[closure["done"].dims[0]].values, dtype=float)
    done = np.asarray(closure["done"].values, dtype=bool)
    b, se_b = (np.asarray(closure[v].values, dtype=float).reshape(z.size) for v in ("drift", "drift_stderr"))
    d, se_d = (np.asarray(closure[v].values, dtype=float).reshape(z.size) for v in ("diffusion", "diffusion_stderr"))
    zf = np.asarray(pmf["cv"].values, dtype=float)
    f = np.asarray(pmf["pmf"].values, dtype=float)
    se_f = np.asarray(pmf["pmf_stderr"].values, dtype=float) if "pmf_stderr" in pmf else np.zeros_like(f)
    finite = np.isfinite(f) & np.isfinite(se_f)
    zf, f, se_f = zf[finite], f[finite], se_f[finite]
    inner = np.arange(1, z.size - 1)
    half = 0.5 * np.minimum(z[inner] - z[inner - 1], z[inner + 1] - z[inner])
    usable = inner[done[inner - 1] & done[inner] & done[inner + 1]
                   & (z[inner] - half >= zf.min()) & (z[inner] + half <= zf.max())]
    if usable.size == 0:
        raise InputError("no closure point has both neighbours done inside the PMF's range: estimate the closure "
                         "on a grid inside the PMF")
    h = 0.5 * np.minimum(z[usable] - z[usable - 1], z[usable + 1] - z[usable])
    g = -(np.interp(z[usable] + h, zf, f) - np.interp(z[usable] - h, zf, f)) / (2 * h)
    se_g = np.hypot(np.interp(z[usable] + h, zf, se_f), np.interp(z[usable] - h, zf, se_f)) / (2 * h)
    span = z[usable + 1] - z[usable - 1]
    d_prime = (d[usable + 1] - d[usable - 1]) / span
    se_d_prime = np.hypot(se_d[usable + 1], se_d[usable - 1]) / span
    residual = b[usable] - 0.5 * d[usable] * g - 0.5 * d_prime
    stderr = np.sqrt(se_b[usable]**2 + (0.5 * g * se_d[usable])**2 + (0.5 * d[usable] * se_g)**2
                     + (0.5 * se_d_prime)**2)
    if not np.all(stderr > 0):
        raise InputError("the closure's standard errors are zero or missing: a z-test needs them")
    scores = residual / stderr
    tests = [_ZTest(float(s), float(p)) for s, p in zip(scores, z_test(scores, 0.0, 1.0))]
    samples = {"residual": residual, "residual_stderr": stderr, "g": g, "diffusion_derivative": d_prime}
    return _finish(_report("closure-pmf", z[usable, None], tests, alpha=alpha, correction=correction, samples=samples,
                           settings={"points": int(usable.size)}), assert_consistent)


def _finish(report: CheckReport, assert_consistent: bool) -> CheckReport:
    return report.assert_consistent() if assert_consistent else report
