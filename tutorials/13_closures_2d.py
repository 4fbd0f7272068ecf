"""
13 — Closures on two CVs, and their kinetics
============================================

Two slow variables are the common case — φ and ψ of a peptide, a learned pair of coordinates. This tutorial
estimates a closure on a grid of two CVs, dz = B(z) dt + √D(z) dW with a drift vector B ∈ R² and a diffusion
tensor D ∈ R²ˣ², from short bursts of a fine simulator, and computes kinetics from it: the mean first-passage
time (MFPT) between the wells of a double well and the committor between them, by finite volumes with
``scipy.sparse`` (:mod:`eqfree.closures.kinetics`), each with its standard error.

The fine system is ``correlated_ou``: slow (x1, x2) driven by fast Ornstein–Uhlenbeck noises whose
correlation ρ = 0.6 makes D non-diagonal. Its averaged drift B = −½ D ∇U and homogenized diffusion D (by
Green–Kubo) are known in closed form (``systems/correlated_ou.py``), so the estimate can be checked against
them, and its kinetics against direct fine simulation.

Run it as a script (``python tutorials/13_closures_2d.py``); ``EQFREE_FAST=1`` shortens every run.
Figures go to ``EQFREE_OUT`` (default ``tutorials/output``).
"""

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from eqfree import Coordinates, systems
from eqfree.closures import Box, BurstEstimator, Closure, committor, estimate_closure, mean_path, passage
from eqfree.seeding import child

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)

# %%
# The closure from bursts
# -----------------------
# Bursts of τ = 0.05 (25 fine steps, five correlation times of the fast noise) from the exact lift — the fast
# variables at their stationary law N(0, I) — at every point of a grid over [−1.75, 1.75] × [−3.5, 3.5].
# The store has one grid dimension per CV, ``component`` for the drift vector and ``row``, ``column`` for the
# diffusion tensor.

# %%
system = systems.get("correlated_ou")
x1 = np.linspace(-1.75, 1.75, 15 if FAST else 29)
x2 = np.linspace(-3.5, 3.5, 8 if FAST else 15)
estimator = BurstEstimator(system.exact_lift(system.dt), system.evolver(), Coordinates(["x1", "x2"]), tau=0.05,
                           n_walkers=500 if FAST else 2000)
store = OUT / "closure_2d.zarr"
closure = Closure(estimate_closure(estimator, [x1, x2], seed=1, store=store, overwrite=True))
print(closure)

# %%
# Drift vector and diffusion tensor against the closed forms
# ----------------------------------------------------------
# Each entry against the analytic value, within 3 standard errors plus the stated bias bounds: the fine
# system's at finite ε (``drift_bias``, ``diffusion_bias``: D_ε = D + ε(JD + DJᵀ)/2, a few %), and the bursts'
# after the closure removes ½τJB and ½p(JD + DJᵀ + (B·∇)D) (:mod:`eqfree.closures.estimators`): ¼τ∇²B : D on the
# drift; on D the fast noise's memory ε(e^{−τ/2ε} − e^{−τ/ε})/(τ/2) missing from the slope and 2ε‖J‖ D. At
# x1 beyond ±1.25 the walls are too steep for τ = 0.05 (τ‖J‖ ≈ 1: the expansion behind the debiasing fails there),
# which matters little for the kinetics: the stationary density is small there.

# %%
z = np.stack(np.meshgrid(x1, x2, indexing="ij"), axis=-1)
data, tau, eps = closure.dataset, 0.05, system.eps
truth_b, truth_d = system.averaged_drift(z), system.homogenized_diffusion(z)
memory = eps * (np.exp(-tau / (2 * eps)) - np.exp(-tau / eps)) / (tau / 2)
bias_b = np.abs(system.drift_bias(z) * (1 - tau / (2 * eps)))  # ∇²B : D = −2 drift_bias/ε
slope = np.linalg.norm(system.drift_jacobian(z), 2, axis=(-2, -1))[..., None, None]
bias_d = np.abs(system.diffusion_bias(z) - memory * truth_d) + 2 * eps * slope * np.abs(truth_d)
ok = (np.all(np.abs(data["drift"].values - truth_b) <= 3 * data["drift_stderr"].values + bias_b, axis=-1)
      & np.all(np.abs(data["diffusion"].values - truth_d) <= 3 * data["diffusion_stderr"].values + bias_d,
               axis=(-2, -1)))
within = ok[np.abs(x1) <= 1.25].mean()
print(f"drift and diffusion within 3 se + the stated biases at {within:.0%} of the points with |x1| ≤ 1.25; "
      f"D12 estimated {np.median(data['diffusion'].values[..., 0, 1]):.3f} (analytic {truth_d[0, 0, 0, 1]:.3f})")

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
axes[0].quiver(z[..., 0], z[..., 1], truth_b[..., 0], truth_b[..., 1], color="0.6", angles="xy", label="−½ D ∇U")
axes[0].quiver(z[..., 0], z[..., 1], data["drift"].values[..., 0], data["drift"].values[..., 1], color="tab:blue",
               angles="xy", label="bursts")
axes[0].set(xlabel="x1", ylabel="x2", title="drift vector")
axes[0].legend(loc="upper right", fontsize=8)
for ax, (i, j) in zip(axes[1:], ((0, 0), (0, 1)), strict=True):
    image = ax.pcolormesh(x1, x2, data["diffusion"].values[..., i, j].T, shading="nearest", cmap="viridis")
    fig.colorbar(image, ax=ax, label=f"D{i + 1}{j + 1} (analytic {truth_d[0, 0, i, j]:.2f})")
    ax.set(xlabel="x1", ylabel="x2", title=f"diffusion D{i + 1}{j + 1} from bursts")
fig.tight_layout()
fig.savefig(OUT / "closure_2d_coefficients.png", dpi=120)

# %%
# The mean path and its band
# --------------------------
# From (0.2, 0.5) the closed SDE's mean path, with the band of the closure's uncertainty, against the mean of
# direct fine runs lifted at the same point, to t = 0.2. Further on, some closed paths reach the grid's edge
# x1 = ±1.75, where the closure is biased (D11 of the fast mode 1.52 at 1.75 and 0.48 at −1.75, against 1: the
# walls are too steep for τ, above) and where the fine paths do not go (x1 stays within ±1.66 in 1024 direct runs
# to t = 0.5), and the integration stops there: of 1024 paths of the fast mode's closure, some leave the grid by
# t = 0.5 at 9 of 12 seeds, by t = 0.25 at 1 of 20, by t = 0.2 at none of 20.

# %%
z0 = np.array([0.2, 0.5])
times = np.linspace(0, 0.2, 11)
band = mean_path(closure, z0, (0, 0.2), seed=2, t_eval=times, n_walkers=1024 if FAST else 4096)
n_direct = 200 if FAST else 1000
steps_per_save = round(0.02 / system.dt)
direct = system.simulate(n_direct, 10 * steps_per_save, seed=child(3, 1), save_every=steps_per_save,
                         x0=system.exact_lift(system.dt)(z0, n_direct, seed=child(3, 0)))
direct_mean = direct.values[:, :, :2].mean(axis=1)
direct_se = direct.values[:, :, :2].std(axis=1, ddof=1) / np.sqrt(n_direct)
sd = np.sqrt(band["closure_sd"].values ** 2 + band["z_stderr"].values ** 2 + direct_se**2)[1:]  # 0 at t = 0
path_gap = np.abs(band["z"].values - direct_mean)[1:] / sd
print(f"mean path vs {n_direct} direct runs: largest gap {path_gap.max():.2f} combined standard errors")

# %%
# Mean first-passage time, and the direct first passages
# ------------------------------------------------------
# From the left well's bottom (−1, 0) into x1 ≥ 0.5: the finite volumes on the closure, standard error from
# closures drawn from the estimates' standard errors, against first passages of the fine system itself.
# The fine x1 is driven by noise of correlation time ε, which delays its passage across the target's edge as
# if the edge were ≲ 2√(D₁₁ε) further (the system's docstring): a few % here, as is the finite-ε bias of D.

# %%
target = Box((0.5, -3.5), (1.75, 3.5))
result = passage(closure, [-1.0, 0.0], target, seed=4, n_samples=16 if FAST else 64)
n_passages = 200 if FAST else 1000
x = system.exact_lift(system.dt)(np.array([-1.0, 0.0]), n_passages, seed=child(5, 0))
first, active, chunk, evolve = np.full(n_passages, np.nan), np.arange(n_passages), 250, system.evolver()
for k in range(120):
    if not active.size:
        break
    run = evolve(x[active], chunk, seed=child(5, k + 1)).values
    crossed = run[1:, :, 0] >= 0.5
    arrived = crossed.any(axis=0)
    first[active[arrived]] = (k * chunk + crossed[:, arrived].argmax(axis=0) + 1) * system.dt
    x[active] = run[-1]
    active = active[~arrived]
direct_mfpt, direct_mfpt_se = np.nanmean(first), np.nanstd(first, ddof=1) / np.sqrt(np.isfinite(first).sum())
# T′(edge), for the boundary layer's delay T′ ℓ, ℓ ≲ 2√(D₁₁ε)
edge_slope = (passage(closure, [-1.0, 0.0], Box((0.55, -3.5), (1.75, 3.5)), seed=4, n_samples=2)["mfpt"]
              - result["mfpt"]) / 0.05
mfpt_gap = abs(result["mfpt"] / direct_mfpt - 1)
print(f"MFPT from the closure {result['mfpt']:.3f} ± {result['mfpt_stderr']:.2f}; direct fine "
      f"{direct_mfpt:.3f} ± {direct_mfpt_se:.2f} ({mfpt_gap:.1%} apart); rate {result['rate']:.4f} ± "
      f"{result['rate_stderr']:.4f}")

# %%
# The committor
# -------------
# The probability of reaching x1 ≥ 0.5 before x1 ≤ −0.5. With ρ ≠ 0 it is not a function of x1 alone: the
# correlated noise tilts its level lines. Checked on the line x2 = 0 against the fraction of direct fine runs
# that reach the target first.

# %%
source = Box((-1.75, -3.5), (-0.5, 3.5))
field = committor(closure, source, target, seed=6, n_samples=8 if FAST else 32)
starts = np.array([-0.3, -0.15, 0.0, 0.15, 0.3])
n_runs = 100 if FAST else 400
hits = []
for i, start in enumerate(starts):
    x = system.exact_lift(system.dt)(np.array([start, 0.0]), n_runs, seed=child(7, 2 * i))
    run = evolve(x, round(3 / system.dt), seed=child(7, 2 * i + 1), save_every=1).values[:, :, 0]
    up, down = (run >= 0.5).argmax(axis=0), (run <= -0.5).argmax(axis=0)
    up, down = np.where(up == 0, run.shape[0], up), np.where(down == 0, run.shape[0], down)
    hits.append(np.mean(up < down))
hits = np.array(hits)
on_line = field["committor"].interp(x2=0.0).interp(x1=starts).values
line_se = field["committor_stderr"].interp(x2=0.0).interp(x1=starts).values
committor_se = np.sqrt(hits * (1 - hits) / n_runs + line_se**2)
# the colored noise's boundary layer moves both edges out by ℓ ≲ 2√(D₁₁ε), so q by ≲ ℓ |∂q/∂x1| here
slope = np.abs(field["committor"].differentiate("x1").interp(x2=0.0).interp(x1=starts).values)
committor_bias = 2 * np.sqrt(system.s1**2 * system.eps) * slope
print("committor on x2 = 0: closure " + ", ".join(f"{v:.2f}" for v in on_line) + "; direct " +
      ", ".join(f"{v:.2f}" for v in hits) + " (± " + ", ".join(f"{v:.2f}" for v in committor_se) + ")")

# %%
fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.5))
for k, (label, color) in enumerate((("x1", "tab:blue"), ("x2", "tab:green"))):
    left.plot(times, band["z"].values[:, k], color=color, label=f"closure {label}")
    left.fill_between(times, band["z"].values[:, k] - 3 * band["closure_sd"].values[:, k],
                      band["z"].values[:, k] + 3 * band["closure_sd"].values[:, k], color=color, alpha=0.3)
    left.errorbar(times, direct_mean[:, k], yerr=3 * direct_se[:, k], fmt="o", ms=3, color=color,
                  label=f"direct {label}, ± 3 se")
left.set(xlabel="t", title="mean path, ± 3 sd of the closure")
left.legend(fontsize=8)
middle.hist(first[np.isfinite(first)], bins=40, density=True, alpha=0.6, label="direct fine first passages")
middle.axvline(result["mfpt"], color="k", label=f"closure {result['mfpt']:.2f} ± {result['mfpt_stderr']:.2f}")
middle.axvline(direct_mfpt, color="tab:red", ls="--", label=f"direct {direct_mfpt:.2f} ± {direct_mfpt_se:.2f}")
middle.set(xlabel="first-passage time", title="(−1, 0) → x1 ≥ 0.5")
middle.legend(fontsize=8)
image = right.contourf(field["x1"], field["x2"], field["committor"].T, levels=20)
right.plot(starts, 0 * starts, "wo", ms=4)
fig.colorbar(image, ax=right, label="committor")
right.set(xlabel="x1", ylabel="x2", xlim=(-1, 1), title="committor x1 ≤ −0.5 → x1 ≥ 0.5")
fig.tight_layout()
fig.savefig(OUT / "closure_2d_kinetics.png", dpi=120)
