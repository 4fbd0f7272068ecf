"""
02 — Learned slow coordinates: diffusion maps and their out-of-sample extension
===============================================================================

When the slow variable is not a coordinate, eqfree learns it. This tutorial reproduces the
learned-coordinate panels of Figures 2 and 4 of Crabtree, Bello-Rivas, Ferguson & Kevrekidis, "GANs and
closures: micro-macro consistency in multiscale modeling" (data coloured by the diffusion-map coordinate φ),
then extends φ to a differentiable function Φ(x) that a bias potential can use.

- `fast_slow_linear`: Euclidean diffusion maps; φ is one-to-one with x1.
- `half_moons`: Euclidean distances mix the fast radius into φ; the Mahalanobis distance (4.2),
  with local noise covariances from short bursts of the fine simulator, recovers x1.

`EQFREE_FAST=1` shortens every run; figures go to `EQFREE_OUT` (default `tutorials/output`).
"""

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from eqfree import systems
from eqfree.restrict import DiffusionMaps, GeometricHarmonics, local_noise_covariances

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)
scale = 3 if FAST else 1

# %%
# Figure 2 (right): `fast_slow_linear` coloured by φ
# --------------------------------------------------
#
# 5,000 points of one unbiased run at dt = 1; automatic bandwidth, sparse kernel, the first
# non-harmonic eigenvector.

# %%
linear = systems.get("fast_slow_linear")
data = linear.simulate(1, 30_000 // scale, seed=1)[::6, 0].values
linear_map = DiffusionMaps(n_components=1)
phi = linear_map.fit_transform(data, seed=0)[:, 0]
rho_linear = stats.spearmanr(phi, data[:, 0]).statistic
print(f"fast_slow_linear: {len(data)} points, epsilon = {linear_map.epsilon_:.3g}, "
      f"eigenvector {linear_map.selected_[0]} selected, Spearman rho(phi, x1) = {rho_linear:+.4f}")

# %%
# A folded manifold: the swiss roll with every default
# ----------------------------------------------------
#
# The automatic ε is taken in the regime where the kernel sum grows as ε^{d/2} (d = 2 here), a quarter of the
# way in, below the scale at which the kernel bridges the layers (2π apart): φ1 follows the roll parameter t.

# %%
rng = np.random.default_rng(0)
t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=2000 // scale))
roll = np.column_stack([t * np.cos(t), 21 * rng.uniform(size=t.size), t * np.sin(t)])
roll_map = DiffusionMaps(n_components=2).fit(roll, seed=0)
rho_roll = stats.spearmanr(roll_map.eigenvectors_[:, roll_map.selected_[0]], t).statistic
print(f"swiss roll: epsilon = {roll_map.epsilon_:.3g}, selected {roll_map.selected_.tolist()}, "
      f"Spearman rho(phi, t) = {rho_roll:+.4f}")

# %%
# Figure 4: `half_moons` coloured by φ, Euclidean against Mahalanobis
# -------------------------------------------------------------------

# %%
moons = systems.get("half_moons")
walkers = 10  # started along the slow direction so that together they span x1 in [0, 1.5]
starts = moons.from_original(np.column_stack([0.15 * np.arange(walkers), np.ones(walkers)]))
run = moons.simulate(walkers, 3000 // scale, seed=2, x0=starts)[100 // scale :: 10]
y = run.values.reshape(-1, 2)
angle = np.unwrap(np.arctan2(run[..., 1], run[..., 0]).values, axis=0)
slow = (angle - np.hypot(run[..., 0], run[..., 1]).values + 1).reshape(-1)
covariances = local_noise_covariances(moons.evolver(), y, n_steps=2, n_bursts=20, seed=3)
maps = {"Euclidean": DiffusionMaps(n_components=1).fit(y, seed=0),
        "Mahalanobis": DiffusionMaps(n_components=1).fit(y, covariances=covariances, seed=0)}
rho_moons = {}
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
axes[0].scatter(y[:, 0], y[:, 1], c=slow, s=3, cmap="viridis")
axes[0].set(title="coloured by the true slow $x_1$")
for ax, (name, fitted) in zip(axes[1:], maps.items()):
    coordinate = fitted.eigenvectors_[:, fitted.selected_[0]]
    rho_moons[name] = stats.spearmanr(coordinate, slow).statistic
    ax.scatter(y[:, 0], y[:, 1], c=coordinate, s=3, cmap="viridis")
    ax.set(title=f"{name} diffusion map: $\\phi$ (|rho| with $x_1$ = {abs(rho_moons[name]):.3f})")
    print(f"half_moons, {name}: Spearman rho(phi, x1) = {rho_moons[name]:+.4f}")
for ax in axes:
    ax.set(xlabel="$y_1$", ylabel="$y_2$", aspect="equal")
fig.tight_layout()
fig.savefig(OUT / "fig4_half_moons_learned.png", dpi=120)

# %%
# Φ(x): the learned coordinate as a differentiable function
# ---------------------------------------------------------
#
# Geometric harmonics fitted on a subset reproduce φ on held-out points; the gradient ∇Φ feeds the
# umbrella force −k (Φ(x) − φ0) ∇Φ(x) (eq. 2.3).

# %%
order = np.random.default_rng(0).permutation(len(data))
train, held_out = order[:600], order[600:900]
extension = GeometricHarmonics(epsilon=4 * linear_map.epsilon_).fit(data[train], phi[train])
held_out_error = np.linalg.norm(extension(data[held_out])[:, 0] - phi[held_out]) / np.linalg.norm(phi[held_out])
print(f"geometric harmonics: held-out relative error {held_out_error:.2e}")

fig, (ax, side) = plt.subplots(1, 2, figsize=(11, 4.2))
points = ax.scatter(data[:, 0], data[:, 1], c=phi, s=2, cmap="viridis")
fig.colorbar(points, ax=ax, label=r"$\phi$")
ax.set(xlabel="$x_1$", ylabel="$x_2$", title=r"fast_slow_linear coloured by $\phi$ (Figure 2, right)")
grid = np.column_stack([np.linspace(data[:, 0].min(), data[:, 0].max(), 200), np.ones(200)])
side.plot(data[:, 0], phi, ".", ms=1, alpha=0.3, label=r"$\phi$ on the data")
side.plot(grid[:, 0], extension(grid)[:, 0], "k", lw=1.5, label=r"$\Phi(x_1, x_2 = 1)$, geometric harmonics")
side.set(xlabel="$x_1$", ylabel=r"$\phi$", title="one-to-one with the slow variable")
side.legend()
fig.tight_layout()
fig.savefig(OUT / "fig2_fast_slow_linear_learned.png", dpi=120)
print(f"figures written to {OUT}")
