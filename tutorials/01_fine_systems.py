"""
01 — The fine-scale systems
===========================

The fine-scale systems of Crabtree, Bello-Rivas, Ferguson & Kevrekidis, "GANs and closures: micro-macro
consistency in multiscale modeling".

eqfree's fine simulators are vectorized ensembles of SDEs, integrated by default with the
Leimkuhler–Matthews scheme (second order in the invariant law). This tutorial simulates the
training data of that work's Figures 2, 4 and 9 (appendix C time steps) and checks each
against what is known exactly:

- `fast_slow_linear` (eq. 2.1): x1 drifts slowly, x2 relaxes fast to N(1, 0.05) (Figure 2).
- `half_moons` (eq. 2.1 through map 4.1): simulated directly in the new coordinates by Itô's
  lemma; the radius is the old fast variable (Figure 4).
- `caps` (eqs. 6.1–6.2): a two-dimensional fast measure, caps moving with x1 (Figure 9).

Run it as a script (`python tutorials/01_fine_systems.py`); `EQFREE_FAST=1` shortens every run.
Figures go to `EQFREE_OUT` (default `tutorials/output`).
"""

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from eqfree import systems
from eqfree.statistics import ensemble_moments

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)
scale = 10 if FAST else 1

# %%
# Figure 2: `fast_slow_linear`, one unbiased run with dt = 1
# ----------------------------------------------------------
#
# 30,000 samples as in the paper; x1 advances by a1 = 1e-3 per unit time. At the paper's dt = 1 the
# default scheme keeps the fast variable's law exact; Euler–Maruyama would inflate its variance.

# %%
linear = systems.get("fast_slow_linear")
run = linear.simulate(1, 30_000 // scale, seed=1)  # default dt = 1 (appendix C)
x = run[:, 0].values
mean, var = linear.conditional_moments()
em_var = linear.euler_maruyama_conditional_variance(linear.dt)
settled = x[200:, 1]  # after 20 relaxation times of x2
print(f"x2 after warm-up: mean {settled.mean():.4f}, variance {settled.var():.4f} "
      f"(exact N({mean:g}, {var:g}); Euler–Maruyama at dt = 1 would give variance {em_var:.4f})")

fig, (ax, hist) = plt.subplots(1, 2, figsize=(10, 4))
points = ax.scatter(x[:, 0], x[:, 1], c=x[:, 0], s=2, cmap="viridis")
fig.colorbar(points, ax=ax, label="$x_1$")
ax.set(xlabel="$x_1$", ylabel="$x_2$", title="fast_slow_linear (eq. 2.1), dt = 1")
grid = np.linspace(0, 2, 200)
hist.hist(settled, bins=60, density=True, color="tab:orange", alpha=0.6, label="simulation")
hist.plot(grid, linear.conditional_density(grid), color="tab:blue", label="exact N(1, 0.05)")
hist.set(xlabel="$x_2$", ylabel="density", title="conditional law of $x_2$")
hist.legend()
fig.tight_layout()
fig.savefig(OUT / "fig2_fast_slow_linear.png", dpi=120)

# %%
# Figure 4: `half_moons`, simulated in y by Itô's lemma, dt = 5e-2
# ----------------------------------------------------------------
#
# The colour is the original slow x1 (recovered as `atan2(y2, y1) − |y| + 1`); the radius follows
# the law of x2.

# %%
moons = systems.get("half_moons")
walkers = 10  # started along the slow direction, x1 = 0, 0.15, ..., so together they span x1 in [0, 1.5]
starts = moons.from_original(np.column_stack([0.15 * np.arange(walkers), np.ones(walkers)]))
moon_run = moons.simulate(walkers, 30_000 // walkers // scale, seed=2, x0=starts)
y = moon_run.values.reshape(-1, 2)
slow = np.unwrap(np.arctan2(moon_run[..., 1], moon_run[..., 0]).values, axis=0) - np.hypot(
    moon_run[..., 0], moon_run[..., 1]).values + 1
radius = ensemble_moments(np.hypot(moon_run[..., 0], moon_run[..., 1]).values)
radius_mean, radius_var = moons.radius_moments()
print(f"half-moon radius: mean {radius.mean:.3f} ± {radius.mean_stderr:.3f}, variance {radius.variance:.4f} "
      f"± {radius.variance_stderr:.4f} (law of x2: N({radius_mean:g}, {radius_var:g}))")

fig, ax = plt.subplots(figsize=(5.5, 5))
points = ax.scatter(y[:, 0], y[:, 1], c=slow.reshape(-1), s=2, cmap="viridis")
fig.colorbar(points, ax=ax, label="original slow $x_1$")
ax.set(xlabel="$y_1$", ylabel="$y_2$", aspect="equal", title="half_moons (eqs. 2.1, 4.1, D.2), dt = 5e-2")
fig.tight_layout()
fig.savefig(OUT / "fig4_half_moons.png", dpi=120)

# %%
# Figure 9: `caps`, dt = 1e-3, x1 from 0 to 10
# --------------------------------------------
#
# The fast pair (x2, x3) has a two-dimensional conditional measure; through (6.2) each value of
# x1 carries a spherical cap.

# %%
caps = systems.get("caps")
cap_run = caps.simulate(4, 10_000, seed=3, save_every=scale)
cap_y = caps.observe(cap_run.values).reshape(-1, 3)
cap_x1 = cap_run.sel(coord="x1").values.reshape(-1)
fast_pair = cap_run.sel(coord=["x2", "x3"], time=slice(0.5, None)).values.reshape(-1, 2)
print(f"caps fast variances: {fast_pair.var(axis=0).round(6)} (exact {np.round(caps.conditional_variances(), 6)})")

fig = plt.figure(figsize=(11, 4.5))
ax = fig.add_subplot(1, 2, 1, projection="3d")
points = ax.scatter(cap_y[:, 0], cap_y[:, 2], cap_y[:, 1], c=cap_x1, s=1, cmap="viridis")
fig.colorbar(points, ax=ax, label="$x_1$", shrink=0.7, pad=0.15)
ax.set(xlabel="$y_1$", ylabel="$y_3$", zlabel="$y_2$", title="caps (eqs. 6.1-6.2), dt = 1e-3")
side = fig.add_subplot(1, 2, 2)
near = np.abs(cap_x1 - 5) < 0.5
side.scatter(cap_y[near, 2], cap_y[near, 1], s=2, c=cap_x1[near], cmap="viridis")
side.plot(np.sort(cap_y[near, 2]), np.sort(cap_y[near, 2]) ** 2, color="k", lw=1, label="rim $y_2 = y_3^2$ ($x_2 = 0$)")
side.set(xlabel="$y_3$", ylabel="$y_2$", title="one cap: $4.5 < x_1 < 5.5$")
side.legend()
fig.tight_layout()
fig.savefig(OUT / "fig9_caps.png", dpi=120)
print(f"figures written to {OUT}")
