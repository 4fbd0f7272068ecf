"""
05 — Averaged-drift closures
============================

The averaging principle (Crabtree et al., section 6.2) closes a fast–slow system on its slow variable:
dz/dt = B(z) with B(z) = ∫ μ_slow(z, x_fast) ν_z(dx_fast), the slow drift averaged over the
fast variables' conditional equilibrium ν_z, and homogenization adds the slow variable's O(ε)
fluctuations, dz = B dt + √D dW. eqfree estimates B (and D) on a grid of z values without writing
them down, from lifted states:

- **bursts**: lift n walkers at z, run the fine simulator for a short τ, restrict: B from the
  walkers' mean displacement, D from the slope of their variance once the fast variables have healed;
- **conditional average**: when μ_slow is known in fine coordinates, B = E_{ν_z}[μ_slow].

The test system is `averaging_cubic`, dx1 = −x2³ dt, dx2 = −(x2 − x1)/ε dt + √(2s²/ε) dW, whose
fast limit x2 | x1 ~ N(x1, s²) gives B(z) = −z³ − 3s²z exactly, and Green–Kubo on the
Ornstein–Uhlenbeck x2 the diffusion D(z) = 2ε[9s²(z² + s²)² + 9z²s⁴ + 2s⁶]. Both closures go to zarr
stores (one chunk per grid point, resumable), are read back as interpolating models, and the
closed SDE's mean path, with its error band, is compared with direct fine simulation.

`EQFREE_FAST=1` shortens every run; figures go to `EQFREE_OUT` (default `tutorials/output`).
"""

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from eqfree import Coordinates, systems
from eqfree.closures import (
    BurstEstimator,
    Closure,
    ConditionalAverageEstimator,
    estimate_closure,
    integrate,
    mean_path,
)
from eqfree.systems import LinearGaussianLift

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)
scale = 4 if FAST else 1

# %%
# Operators
# ---------
#
# The lift is exact in the fast limit: x1 = z, x2 ~ N(z, s²). The fine scheme is the default
# (Leimkuhler–Matthews, whose Ornstein–Uhlenbeck x2 keeps the variance s² at any stable step) with
# Δt = ε/10; the restriction keeps x1.

# %%
system = systems.get("averaging_cubic")
eps, s = system.eps, system.s
dt = eps / 10
lift = LinearGaussianLift(0.0, 1.0, s**2, valid_range=(-2.0, 2.0))
restrict = Coordinates("x1")
grid = np.linspace(-1.5, 1.5, 41)
exact = system.averaged_drift(grid)

# %%
# Estimating the closure on the grid
# ----------------------------------
#
# Bursts of τ = 10ε (100 fine steps); the diffusion is the slope of the walkers' variance over
# [τ/2, τ], after the fast variables have forgotten the lift. Grid point i uses seed child i of the
# run's seed, so the store is the same on any executor; rerunning into the same store computes only
# missing points. `Closure` reads the store with the bursts' ½τB'B (drift) and p(B'D + ½BD')
# (diffusion) removed across the grid (`eqfree.closures.debiased`).

# %%
n_steps = 100
bursts = BurstEstimator(lift, system.evolver(dt), restrict, tau=n_steps * dt, n_walkers=4000 // scale)
estimate_closure(bursts, grid, seed=2026, store=OUT / "closure_bursts.zarr", overwrite=True,
                 metadata={"system": system.name, **system.params})
burst_closure = Closure.from_zarr(OUT / "closure_bursts.zarr")
burst = burst_closure.dataset.squeeze(["component", "row", "column"], drop=True)  # one CV: a value per grid point


def slow_drift(x):
    return -x[:, 1] ** 3


averages = ConditionalAverageEstimator(lift, slow_drift, n_samples=200_000 // scale)
average = estimate_closure(averages, grid, seed=2027, store=OUT / "closure_average.zarr", overwrite=True,
                           metadata={"system": system.name, **system.params}).squeeze("component", drop=True)

# %%
# What the debiased burst drift still carries, at leading order: x2 lags the moving x1 by −εB
# (a finite-ε effect the fast limit lacks), the scheme's x2 variance v (s² here) differs from the
# lift's, and the burst sums τ/Δt explicit steps (−½ΔtB'B); β(z) below is derived in
# `tests/test_closures.py`. Its standard error adds the noise of the grid's slope B̂' to the point's.
# The conditional average over the exact law has no bias.

# %%
a, tau, h = dt / eps, n_steps * dt, grid[1] - grid[0]
dB = -3 * grid**2 - 3 * s**2
k = np.arange(n_steps)
beta = (-0.5 * dt * dB * exact
        - 3 * grid * (system.fast_variance(dt) - s**2) * (1 - np.mean((1 - a) ** (2 * k)))
        - eps * dB * exact * (1 - np.mean((1 - a) ** k)))
stencil = np.where((grid == grid[0]) | (grid == grid[-1]), np.sqrt(26), np.sqrt(2)) / (2 * h)
burst_se = np.hypot(burst["drift_stderr"].values, 0.5 * tau * np.abs(exact) * stencil * burst["drift_stderr"].values)
burst_z = np.abs(burst["drift"].values - exact - beta) / burst_se
average_z = np.abs(average["drift"].values - exact) / average["drift_stderr"].values
homogenized = system.homogenized_diffusion(grid)
diffusion_error = burst["diffusion"].values / homogenized - 1
print(f"bursts: largest |B̂ − B − β| = {burst_z.max():.2f} se; largest |β| = {np.abs(beta).max():.4f}")
print(f"conditional average: largest |B̂ − B| = {average_z.max():.2f} se")
print(f"burst diffusion against the homogenized D: mean relative error {diffusion_error.mean():+.3f} "
      f"(its standard error {np.sqrt(np.sum((burst['diffusion_stderr'].values / homogenized) ** 2)) / grid.size:.3f})")

fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.2))
z_fine = np.linspace(-1.5, 1.5, 300)
left.plot(z_fine, system.averaged_drift(z_fine), color="k", lw=1, label="exact $B(z) = -z^3 - 3s^2 z$")
left.plot(z_fine, -z_fine**3, color="0.6", ls="--", lw=1, label="wrong: $-z^3$")
left.errorbar(grid, burst["drift"], yerr=3 * burst_se, fmt="o", ms=3, capsize=2,
              color="tab:blue", label="bursts ± 3 se")
left.errorbar(grid, average["drift"], yerr=3 * average["drift_stderr"], fmt="s", ms=2, capsize=2,
              color="tab:orange", label="conditional average ± 3 se")
left.set(xlabel="$z = x_1$", ylabel="drift", title="averaged drift across the grid")
left.legend(fontsize=8)
middle.errorbar(grid, burst["drift"] - exact, yerr=3 * burst_se, fmt="o", ms=3, capsize=2,
                color="tab:blue", label="bursts − exact")
middle.plot(grid, beta, color="tab:blue", lw=1, label=r"derived bias $\beta(z)$")
middle.errorbar(grid, average["drift"] - exact, yerr=3 * average["drift_stderr"], fmt="s", ms=2, capsize=2,
                color="tab:orange", label="conditional average − exact")
middle.axhline(0, color="k", lw=0.5)
middle.set(xlabel="$z$", ylabel="error", title="errors of the drift")
middle.legend(fontsize=8)
right.plot(z_fine, system.homogenized_diffusion(z_fine), color="k", lw=1, label="homogenized $D(z)$ (Green–Kubo)")
right.errorbar(grid, burst["diffusion"], yerr=3 * burst["diffusion_stderr"], fmt="o", ms=3, capsize=2,
               color="tab:blue", label="bursts ± 3 se")
right.set(xlabel="$z$", ylabel="diffusion", title="diffusion of the slow variable (O(ε))")
right.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "closure_drift.png", dpi=120)

# %%
# The closed paths against direct simulation
# ------------------------------------------
#
# The closed ODE dz/dt = B̂(z) from z = 1, the conditional-average closure; beside it, the mean path of
# the burst closure's SDE with its band: the spread of the mean path over closures drawn from the
# estimates' standard errors, and the spread of single paths. The direct fine simulation's mean
# should lie within the band's combined standard error.

# %%
closure = Closure.from_zarr(OUT / "closure_average.zarr")
times = np.linspace(0.0, 1.0, 101)
ode = integrate(closure, 1.0, (0.0, 1.0), t_eval=times)
cubed = -(closure.dataset[closure.names[0]] ** 3).expand_dims(component=closure.names, axis=-1)
wrong = integrate(Closure(closure.dataset.assign(drift=cubed)), 1.0, (0.0, 1.0), t_eval=times)
walkers = 1000 // scale
x0 = lift(np.array([1.0]), walkers, seed=12)
direct = system.simulate(walkers, 10_000, seed=13, x0=x0, save_every=100)[..., 0]
mean = direct.mean("walker").values
stderr = direct.std("walker", ddof=1).values / np.sqrt(walkers)
band = mean_path(burst_closure, 1.0, (0.0, 1.0), t_eval=times, seed=14, n_walkers=4096 // scale)
combined = np.sqrt(band.closure_sd**2 + band.z_stderr**2 + stderr**2).values
band_gap = np.abs(band.z.values - mean)[1:] / combined[1:]
ode_gap = np.abs(mean - ode.values).max()
wrong_gap = np.abs(mean - wrong.values).max()
print(f"closed ODE vs direct mean: largest gap {ode_gap:.4f} (ensemble se ≤ {stderr.max():.4f}); "
      f"the wrong closure −z³ misses by {wrong_gap:.3f}")
print(f"burst closure's mean path vs direct mean: largest gap {band_gap.max():.2f} combined se; "
      f"closure sd ≤ {float(band.closure_sd.max()):.4f}")
print(f"spread at t = 1: direct sd {direct.isel(time=-1).std().item():.4f}, "
      f"closure SDE sd {float(band.path_sd[-1]):.4f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
left.fill_between(times, band.z - band.path_sd, band.z + band.path_sd, color="tab:blue", alpha=0.15,
                  label="closure SDE, single paths ± 1 sd")
left.fill_between(times, band.z - 3 * band.closure_sd, band.z + 3 * band.closure_sd, color="tab:blue", alpha=0.5,
                  label="closure SDE, mean path ± 3 sd of the closure")
left.errorbar(times[::5], mean[::5], yerr=3 * stderr[::5], fmt=".", ms=3, color="tab:orange",
              label=f"direct fine simulation, mean ± 3 se ({walkers} walkers)")
left.plot(times, ode, color="k", lw=1, label="closed ODE, conditional-average closure")
left.plot(times, wrong, color="0.6", ls="--", lw=1, label="wrong closure $-z^3$")
left.set(xlabel="t", ylabel="$x_1$", title="slow path from $x_1(0) = 1$")
left.legend(fontsize=8)
right.fill_between(times, -3 * combined, 3 * combined, color="tab:blue", alpha=0.3,
                   label="± 3 combined se (closure, Monte Carlo, direct)")
right.plot(times, mean - band.z.values, color="tab:orange", label="direct mean − closure SDE mean")
right.plot(times, ode.values - band.z.values, color="k", lw=1, ls=":", label="closed ODE − closure SDE mean")
right.axhline(0, color="k", lw=0.5)
right.set(xlabel="t", ylabel="difference", title="the band, magnified")
right.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "closure_paths.png", dpi=120)
print(f"figures written to {OUT}")
