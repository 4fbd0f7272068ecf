"""
10 — Coarse bifurcation analysis on a stochastic fine simulator
===============================================================

The second half of the equation-free programme (Kevrekidis et al. 2003; Makeev, Maroudas & Kevrekidis
2002; Erban, Kevrekidis & Othmer on stochastic chemical kinetics): find coarse steady states, follow them
in a parameter, and read their stability, without ever writing the coarse equation down. Everything
below runs on bursts of the fine simulator, lifted at a coarse state z:

- **burst drift** F(z; λ) = E[R(x(τ)) − R(x(0))]/τ, its zeros the coarse fixed points;
- **Newton–Krylov** with common random numbers (the same seeds for the base and the perturbed bursts);
- **pseudo-arclength continuation** through folds, with standard errors for every point, its leading
  eigenvalue, and the folds located from the branch;
- three systems with the analytic answer beside the estimate: the pitchfork of ``averaging_cubic``
  (B = λz − z³ − 3s²z), the S-shaped fast–slow system (two folds, hysteresis), and the Schlögl
  reaction network simulated by Gillespie's SSA (two folds; the chain's branch is within O(1/Ω) of
  the rate equation's).

`EQFREE_FAST=1` uses fewer walkers and longer steps; figures go to `EQFREE_OUT` (default
`tutorials/output`).
"""

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from eqfree import CoarseTimeStepper, Coordinates, systems
from eqfree.coarse import BurstDrift, continuation, natural_continuation, newton_krylov

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)
WALKERS = 300 if FAST else 1000
STEP = 0.1
BURST = 100  # fine steps per burst of the SDE systems: 10 fast relaxation times ε


def sde_family(name, **params):
    """λ -> the coarse time-stepper of system ``name`` at lam = λ: exact lift, its own integrator, x1."""

    def family(lam):
        system = systems.get(name, lam=lam, **params)
        return CoarseTimeStepper(system.exact_lift(system.dt), system.evolver(), Coordinates("x1", system.dim))

    return family


def draw(ax, branch, parameter, title):
    """The estimated branch with ± 3 standard-error bars, stable filled, unstable open, folds starred."""
    lam, z = branch[parameter].values, branch.x1.values
    stable = branch.stable.values.astype(bool)
    ax.errorbar(lam, z, xerr=3 * branch[f"{parameter}_stderr"].values, yerr=3 * branch.x1_stderr.values,
                fmt="none", ecolor="C0", alpha=0.4)
    ax.plot(lam[stable], z[stable], "o", color="C0", ms=4, label="coarse branch, stable")
    ax.plot(lam[~stable], z[~stable], "o", mfc="white", color="C3", ms=4, label="coarse branch, unstable")
    for point in branch.attrs["special_points"]:
        if point["kind"] == "fold":
            ax.plot(point[parameter], point["x1"], "k*", ms=12, label="fold (estimated)")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(dict(zip(labels, handles)).values(), dict(zip(labels, handles)).keys(), fontsize=7)
    ax.set(xlabel=parameter, ylabel="z = x1", title=title)


# %%
# The pitchfork
# -------------
# ``averaging_cubic`` with lam: dx1 = (λx1 − x2³) dt, x2 a fast OU around x1 with variance s² = 1/4.
# Averaged, B(z) = z(λ − 3s² − z²): the trivial branch z = 0 loses stability at λ = 3s² = 0.75, where
# the branch λ = 0.75 + z² turns. Newton–Krylov on the trivial branch reads B′(0) = λ − 0.75 on both
# sides; continuation from z ≈ 1.2 at λ = 1.5 follows the parabola through its turning point.

# %%
cubic = systems.get("averaging_cubic")
# the settings of `eqfree continue` (1000 walkers, 100 fine steps) and its example's seed 7
drift = BurstDrift(sde_family("averaging_cubic"), tau=100 * cubic.dt, n_walkers=1000)
trivial = {lam: newton_krylov(drift, 0.1, lam=lam, seed=5) for lam in (0.5, 1.0)}
for lam, point in trivial.items():
    eig = point.eigenvalues
    print(f"lam = {lam}: z* = {point.z[0]:+.4f} ± {point.z_stderr[0]:.4f}, eigenvalue {eig.values[0]:+.3f} ± "
          f"{eig.stderr[0]:.3f} (analytic {lam - 0.75:+.2f}), stable {point.stable}")

# %%
# A pitchfork exists only by a symmetry — here (x1, x2) → −(x1, x2), so B(−z) = −B(z) — and the bursts' sampling
# error breaks it: the estimated branches unfold (λ = z² − ε/z), and the branch followed from z = 1.2 joins the
# trivial one instead of crossing at 6 of seeds 0–9 (tests/test_continuation.py). Declaring the symmetry
# (``symmetry=[[-1]]``, ``eqfree continue --odd``) averages each walker's drift over z and −z with the same
# numbers: the estimate is exactly odd, the pitchfork survives, and where the branch meets its mirror image
# the continuation jumps to it (9 of 10 seeds pass every check; the averaging also cancels the noise odd in
# the walkers' draws, halving the standard errors here, at twice the bursts).

# %%
odd = BurstDrift(sde_family("averaging_cubic"), tau=100 * cubic.dt, n_walkers=1000, symmetry=[[-1.0]])
pitchfork = continuation(odd, 1.2, 1.5, -0.5, seed=7, step=STEP)
(pitchfork_fold,) = [p for p in pitchfork.attrs["special_points"] if p["kind"] == "fold"]
print(f"pitchfork: {pitchfork.sizes['point']} points, turning point at lam = {pitchfork_fold['lam']:.4f} ± "
      f"{pitchfork_fold['lam_stderr']:.4f} (analytic 0.75); {int(pitchfork.fine_steps.sum())} fine steps")

# %%
# The S-shaped system
# -------------------
# dx1 = (λ + a x1 − x2³) dt: B = λ + cz − z³ with c = a − 3s² = 1.3125, folds at λ = ±0.5787. Natural-parameter
# continuation (Newton at each λ from the last state) jumps or stops at a fold; pseudo-arclength turns
# there and traces the unstable middle branch.

# %%
s_shaped = systems.get("s_shaped")
s_drift = BurstDrift(sde_family("s_shaped"), tau=BURST * s_shaped.dt, n_walkers=WALKERS)
s_branch = continuation(s_drift, -1.4, -1.0, 1.0, seed=21, step=STEP)
natural = natural_continuation(s_drift, -1.4, np.linspace(-1.0, 1.0, 6 if FAST else 11), seed=22)
s_folds = sorted((p["lam"], p["lam_stderr"]) for p in s_branch.attrs["special_points"] if p["kind"] == "fold")
print("S-shaped folds:", [f"{lam:.4f} ± {se:.4f}" for lam, se in s_folds], "analytic ±0.5788;",
      f"natural continuation converged at {natural.sizes['point']} values, "
      f"all on stable branches: {bool(np.all(natural.stable.values))}")

# %%
# The Schlögl model by Gillespie's SSA
# ------------------------------------
# A + 2X ⇌ 3X, B ⇌ X at volume Ω = 100, the inflow b varied. The state is the concentration X/Ω; the lift
# rounds z·Ω to whole molecules at random, so E[X/Ω] = z. The SSA is checked against the chain's exact
# stationary law in tests/test_gillespie.py; here the coarse branch from SSA bursts is drawn beside the rate
# equation's, b = x³ − 3x² + 2.5x, and the chain's own, which it must match (the two differ by O(1/Ω)).

# %%
schlogl = systems.get("schlogl")


def schlogl_family(b):
    system = systems.get("schlogl", b=b)
    return CoarseTimeStepper(system.exact_lift(), system.evolver(), Coordinates("x1", 1))


c_drift = BurstDrift(schlogl_family, tau=0.1, n_walkers=WALKERS)
c_branch = continuation(c_drift, 0.15, 0.3, 0.7, seed=11, parameter="b", step=STEP)
c_folds = sorted((p["b"], p["b_stderr"]) for p in c_branch.attrs["special_points"] if p["kind"] == "fold")
x = c_branch.x1.values
schlogl_gap = np.abs(c_branch.b.values - schlogl.chain_branch(x)) / c_branch.x1_drift_stderr.values
print("Schlögl folds:", [f"{b:.4f} ± {se:.4f}" for b, se in c_folds],
      f"rate equation {schlogl.folds()[:, 1].round(4).tolist()}; largest gap to the chain's branch "
      f"{schlogl_gap.max():.2f} standard errors of the drift")

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
z = np.linspace(-1.0, 1.0, 201)
axes[0].plot(0.75 + z**2, z, "k-", lw=1, label="analytic λ = 3s² + z²")
axes[0].plot([-0.5, 0.75], [0, 0], "k-", lw=1)
axes[0].plot([0.75, 1.5], [0, 0], "k--", lw=1, label="trivial branch, unstable")
draw(axes[0], pitchfork, "lam", "pitchfork of averaging_cubic")
z = np.linspace(-1.45, 1.45, 201)
axes[1].plot(s_shaped.branch(z, s_shaped.dt), z, "k-", lw=1, label="analytic λ = z³ − cz")
axes[1].plot(natural.lam, natural.x1, "s", mfc="none", color="C2", ms=7, label="natural continuation")
draw(axes[1], s_branch, "lam", "S-shaped system: two folds")
axes[1].set_xlim(-1.1, 1.1)
x = np.linspace(0.05, 2.0, 201)
axes[2].plot(schlogl.branch(x), x, "k-", lw=1, label="rate equation")
axes[2].plot(schlogl.chain_branch(x), x, "k:", lw=1, label="the chain at Ω = 100")
draw(axes[2], c_branch, "b", "Schlögl model by SSA bursts")
axes[2].set_xlim(0.25, 0.75)
fig.tight_layout()
fig.savefig(OUT / "bifurcation_diagrams.png", dpi=120)
