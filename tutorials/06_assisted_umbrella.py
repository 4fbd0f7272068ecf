"""
06 — Generator-seeded umbrella sampling, and exploring beyond the training data
===============================================================================

A trained conditional generator G gives fine states already near the conditional equilibrium
at z, so umbrella sampling need not relax from a poor start: many short biased runs started
from G(z) replace one long run, and they can run side by side. The samples still come from the
true dynamics, so the generator's own errors do not enter them. This tutorial reproduces Crabtree, Bello-Rivas,
Ferguson & Kevrekidis's
Figure 6 on `fast_slow_linear` (10 runs of 1000 steps seeded by a score model against one run
of 10,000 steps from (0, 3), both biased at x1 = 10), with the accuracy of each as the runs go
on, and then the exploration the paper suggests at the end of its section 6.2: on `caps`, from
data on x1 ∈ [0, 10], rounds of extrapolate → refine by seeded umbrella sampling → retrain carry
the generator to x1 = 20, each round checked against the exact conditional law.

`EQFREE_FAST=1` trains briefly and uses fewer seeds; figures go to `EQFREE_OUT`
(default `tutorials/output`).
"""

# %%
import math
import os
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from eqfree import systems
from eqfree.lift import AssistedUmbrella, ConditionalScoreModel, ExtrapolationWarning, UmbrellaSampling, explore
from eqfree.metrics import energy_distance, label_consistency, running_wasserstein, wasserstein_marginals

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)

# %%
# Figure 6: ten seeded runs of 1000 steps against one run of 10,000
# -----------------------------------------------------------------
#
# The generator: a conditional score model trained on 50 walkers of eq. (2.1) from (0, 1) until
# x1 ≈ 10 (dt = 0.5, every 20th step), as in the tests. Both samplers are biased on x1 at 10 with
# κ = 0.5, dt = 1. The single run starts at (0, 3), away from equilibrium, and its warm-up
# (detected on x1) is discarded; the seeded runs keep every frame. Accuracy is W1 of the pooled x2
# samples against the exact N(1, 0.05), as a function of the fine steps spent (warm-up included).
# Euler–Maruyama at dt = 1 has the invariant variance 0.0526, so W1 cannot fall below about 0.005.

# %%
linear = systems.get("fast_slow_linear")
X = linear.simulate(50, 20_000, dt=0.5, save_every=20, seed=11).isel(time=slice(1, None)).values.reshape(-1, 2)
generator = ConditionalScoreModel(n_epochs=1000 if FAST else 4000, hidden=(64, 64, 64), lr=2e-3, ema_decay=0.9995)
generator.fit(X, X[:, 0], seed=0, progress=not FAST)
print(f"score model trained in {generator.training_['seconds']:.1f} s on {len(X)} states")

Z, KAPPA, THRESHOLD = 10.0, 0.5, 0.02
exact_x2 = stats.norm(1.0, math.sqrt(0.05))
# W1 between N(1, s1²) and N(1, s2²) is `|s1 − s2| E|N(0, 1)| = |s1 − s2| √(2/π)`
em_floor = abs(math.sqrt(linear.euler_maruyama_conditional_variance(1.0)) - math.sqrt(0.05)) * math.sqrt(2 / math.pi)
assisted = AssistedUmbrella(generator, linear.evolver(1.0), "x1", KAPPA, n_steps=1000, n_walkers=10)
single = UmbrellaSampling(linear.evolver(1.0), "x1", KAPPA, n_steps=10_000, initial=np.array([0.0, 3.0]))


def w1_curve(window, points=50):
    """Running W1 of x2 after the warm-up, against the fine steps spent by all walkers."""
    warm, walkers = window.attrs["warmup_frames"], window.sizes["walker"]
    samples, curve = running_wasserstein(window.x.values[warm:, :, 1], exact_x2, points=points)
    return (warm + samples // walkers - 1) * walkers, curve


def stays_below(steps, curve, threshold=THRESHOLD):
    """Fine steps after which the curve stays below ``threshold`` (inf if it ends above)."""
    above = np.flatnonzero(curve >= threshold)
    if above.size == 0:
        return float(steps[0])
    return float(steps[above[-1] + 1]) if above[-1] + 1 < len(steps) else math.inf


seeds = range(3 if FAST else 8)
curves = {"seeded 10 x 1000": [], "single 1 x 10000": []}
seconds = {name: [] for name in curves}
windows = {}
print(f"{'seed':>4} {'W1 seeded':>10} {'W1 single':>10} {'start error':>12} {'warm-up':>8}")
for seed in seeds:
    start = time.perf_counter()
    short = assisted.run(Z, seed=seed)
    seconds["seeded 10 x 1000"].append(time.perf_counter() - start)
    start = time.perf_counter()
    long_ = single.window(Z, seed=seed, n_walkers=1)
    seconds["single 1 x 10000"].append(time.perf_counter() - start)
    curves["seeded 10 x 1000"].append(w1_curve(short))
    curves["single 1 x 10000"].append(w1_curve(long_))
    if seed == 0:
        windows = {"seeded": short, "single": long_}
    print(f"{seed:4d} {curves['seeded 10 x 1000'][-1][1][-1]:10.4f} {curves['single 1 x 10000'][-1][1][-1]:10.4f} "
          f"{short.attrs['initial_label_error']:12.4f} {long_.attrs['warmup_frames']:8d}")

w1_short = float(np.median([curve[-1] for _, curve in curves["seeded 10 x 1000"]]))
w1_long = float(np.median([curve[-1] for _, curve in curves["single 1 x 10000"]]))
stay = {name: float(np.median([stays_below(*c) for c in found])) for name, found in curves.items()}
wall = {name: float(np.median(s)) for name, s in seconds.items()}
speedup = wall["single 1 x 10000"] / wall["seeded 10 x 1000"]
print(f"median final W1(x2) after 10,000 fine steps: seeded {w1_short:.4f}, single {w1_long:.4f} "
      f"(Euler-Maruyama floor {em_floor:.4f})")
print(f"W1 stays below {THRESHOLD} after (median) {stay['seeded 10 x 1000']:,.0f} fine steps seeded "
      f"({stay['seeded 10 x 1000'] / 10:,.0f} per run) and {stay['single 1 x 10000']:,.0f} single")
print(f"wall-clock, runs vectorized in this process: seeded {wall['seeded 10 x 1000']:.2f} s, single "
      f"{wall['single 1 x 10000']:.2f} s ({speedup:.1f}x; benchmarks/assisted_umbrella.py times the runs side by side)")

# %%
short, long_ = windows["seeded"], windows["single"]
pooled_x2 = short.x.values[:, :, 1].reshape(-1)
settled_single = long_.x.values[long_.attrs["warmup_frames"]:, 0, 1]
fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), width_ratios=(1.1, 1.3, 1))
ax = axes[0]
ax.scatter(X[::10, 0], X[::10, 1], c=X[::10, 0], s=1, cmap="viridis", alpha=0.3)
approach = long_.x.values[:60, 0]
ax.plot(approach[:, 0], approach[:, 1], "-o", color="darkorange", ms=3, lw=1, label="single run from (0, 3)")
ax.scatter(short.x.values[1:, :, 0].reshape(-1), short.x.values[1:, :, 1].reshape(-1), s=1, color="tab:blue",
           alpha=0.3, label="seeded runs' samples")
ax.scatter(*short.x.values[0].T, s=30, color="tab:red", edgecolor="k", zorder=5, label="generator's starts")
ax.set(xlabel="$x_1$", ylabel="$x_2$", title="umbrella sampling at $x_1$ = 10 over the training data")
ax.legend(loc="upper left", fontsize=8, markerscale=2)
ax = axes[1]
steps = np.arange(short.sizes["time"])
for k in range(short.sizes["walker"]):
    ax.plot(steps, short.x.values[:, k, 1], lw=0.5, alpha=0.7)
ax.plot(steps, long_.x.values[: len(steps), 0, 1], color="darkorange", lw=1, label="single run (first 1000 steps)")
ax.scatter(np.zeros(short.sizes["walker"]), short.x.values[0, :, 1], s=30, color="tab:red", edgecolor="k",
           zorder=5, label="generator's starts")
ax.set(xlabel="fine step", ylabel="$x_2$", title="x2 of the 10 seeded runs: no warm-up")
ax.legend(loc="upper right", fontsize=8)
ax = axes[2]
grid = np.linspace(0, 2, 200)
ax.hist(pooled_x2, bins=50, density=True, color="tab:blue", alpha=0.5, label="seeded, 10 x 1000 pooled")
ax.hist(settled_single, bins=50, density=True, histtype="step", color="darkorange", lw=1.5,
        label="single, 1 x 10000 after warm-up")
ax.plot(grid, exact_x2.pdf(grid), "k", label="exact N(1, 0.05)")
ax.set(xlabel="$x_2$", ylabel="density", title=f"seed 0: W1 seeded {curves['seeded 10 x 1000'][0][1][-1]:.4f}, "
       f"single {curves['single 1 x 10000'][0][1][-1]:.4f}")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "fig6_assisted_umbrella.png", dpi=120)

# %%
# The convergence of the two samplers: against the fine steps spent (equal cost) they are alike —
# the generator's starts spare only the short warm-up here — but the seeded runs reach each
# accuracy after a tenth of the steps *per run*, which is the wall-clock when the ten run side by
# side: the paper's 10x.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), sharey=True)
colours = {"seeded 10 x 1000": "tab:blue", "single 1 x 10000": "darkorange"}
walkers = {"seeded 10 x 1000": 10, "single 1 x 10000": 1}
for ax, per_run in zip(axes, (False, True)):
    for name, found in curves.items():
        scale = walkers[name] if per_run else 1
        for steps_k, curve in found:
            ax.plot(steps_k / scale, curve, color=colours[name], lw=0.5, alpha=0.4)
        median_steps = np.median([s for s, _ in found], axis=0) / scale
        ax.plot(median_steps, np.median([c for _, c in found], axis=0), color=colours[name], lw=2,
                label=f"{name} (median of {len(found)} seeds)")
    ax.axhline(THRESHOLD, color="k", ls=":", lw=1, label=f"W1 = {THRESHOLD}")
    ax.axhline(em_floor, color="0.5", ls="--", lw=1, label="Euler-Maruyama floor (dt = 1)")
    ax.set(xscale="log", yscale="log", ylabel="W1($x_2$) to N(1, 0.05)",
           xlabel="fine steps per run (wall-clock when run side by side)" if per_run else "fine steps, all runs",
           title="against the wall-clock depth" if per_run else "against the total cost")
    ax.grid(True, which="both", alpha=0.3)
axes[0].legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "fig6_convergence.png", dpi=120)

# %%
# Exploring beyond the data on `caps`
# -----------------------------------
#
# Training data: 50 walkers of `caps` from x1 = 0 with the fast pair at equilibrium, dt = 1e-3,
# until x1 = 10. The fast pair's conditional law is exactly N(0, v2) × N(0, v3) whatever x1.
# `explore` goes 2.5 beyond the data each round: it checks the label consistency mean `|x1 − z|` of
# the generator's extrapolated states (it stops above 5 window widths 5/√κ = 0.5), refines them by
# 20 seeded umbrella runs of 500 steps (κ = 100), adds the refined states to the training set and
# continues training. Each round's refined states are compared with the exact law: W1 per
# coordinate and the energy distance. x1 has no noise (dx1 = a1 dt), so under the bias it rests
# at z + a1/κ = z + 0.01: W1(x1) ≈ 0.01 by construction, and that offset alone sets the energy
# distance, shown beside the energy distance of exact states moved by 1/κ in x1 (the "expected").
# The rounds are written to `explore_rounds.zarr` as they end, so an interrupted run keeps them.

# %%
caps = systems.get("caps")
v2, v3 = caps.conditional_variances()
rng = np.random.default_rng(0)
x0 = np.column_stack([np.zeros(50), rng.normal(0, math.sqrt(v2), 50), rng.normal(0, math.sqrt(v3), 50)])
X_caps = caps.simulate(50, 10_000, seed=3, x0=x0, save_every=10).values.reshape(-1, 3)


def exact_caps(z, n, seed):
    """n exact conditional states at x1 = z: (z, N(0, v2), N(0, v3))."""
    rng = np.random.default_rng(seed)
    return np.column_stack([np.full(n, z), rng.normal(0, math.sqrt(v2), n), rng.normal(0, math.sqrt(v3), n)])


def judged(states, z, seed):
    """Label error, W1 of (x2, x3) and energy distance of ``states`` against exact ones at z."""
    exact = exact_caps(z, len(states), seed)
    return (label_consistency(lambda x: x[:, 0], states, z), wasserstein_marginals(states[:, 1:], exact[:, 1:]),
            energy_distance(states, exact, max_samples=2000, seed=seed))


TARGET, KAPPA_CAPS, RUNS, STEPS = 20.0, 100.0, 20, 500
cap_generator = ConditionalScoreModel(n_epochs=1000 if FAST else 3000, hidden=(64, 64, 64), lr=2e-3)
cap_generator.fit(X_caps, X_caps[:, 0], seed=0, progress=not FAST)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ExtrapolationWarning)  # sampling at 20 before exploring is the point
    guess = cap_generator.sample(TARGET, 2000, seed=5)
before = judged(guess, TARGET, seed=6)

start = time.perf_counter()
rounds = explore(cap_generator, X_caps, caps.evolver(1e-3), "x1", to=TARGET, step=2.5, kappa=KAPPA_CAPS, n_steps=STEPS,
                 n_walkers=RUNS, n_epochs=200 if FAST else 500, reference=exact_caps, seed=1,
                 store=OUT / "explore_rounds.zarr", progress=not FAST)
explore_seconds = time.perf_counter() - start
reached = bool(rounds.attrs["reached"])
after = judged(cap_generator.sample(TARGET, 2000, seed=5), TARGET, seed=6)


def biased_exact(z, n, seed):
    """Exact states with x1 at z + 1/κ, where the bias holds it: what the refined states should match."""
    states = exact_caps(z, n, seed)
    states[:, 0] += 1 / KAPPA_CAPS
    return states


energy_expected = [energy_distance(biased_exact(z, int(n), 7 + r), exact_caps(z, int(n), 70 + r), max_samples=2000,
                                   seed=r) for r, (z, n) in enumerate(zip(rounds.z.values, rounds.n_added.values))]

print(f"\nexploration to x1 = {TARGET:g}: {rounds.sizes['round']} rounds in {explore_seconds:.1f} s, "
      f"reached: {reached}")
print(f"{'round':>5} {'z':>7} {'label':>7} {'refined':>8} {'W1 x1':>7} {'W1 x2':>7} {'W1 x3':>8} "
      f"{'energy':>7} {'expected':>9} {'train s':>8}")
for r in range(rounds.sizes["round"]):
    w1 = rounds.w1.values[r]
    print(f"{r:5d} {float(rounds.z[r]):7.3f} {float(rounds.label_consistency[r]):7.4f} "
          f"{float(rounds.refined_label_consistency[r]):8.4f} {w1[0]:7.4f} {w1[1]:7.4f} {w1[2]:8.5f} "
          f"{float(rounds.energy[r]):7.4f} {energy_expected[r]:9.4f} {float(rounds.train_seconds[r]):8.2f}")
print(f"the generator at x1 = {TARGET:g} before / after exploring: label error {before[0]:.3f} / {after[0]:.3f}; "
      f"W1 (x2, x3) {np.round(before[1], 4)} / {np.round(after[1], 4)}; "
      f"energy distance {before[2]:.4f} / {after[2]:.4f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), width_ratios=(1.5, 1, 1))
ax = axes[0]
ax.scatter(X_caps[::20, 0], X_caps[::20, 1], s=1, color="0.7", label="training data ($x_1$ ≤ 10)")
colour = plt.cm.plasma(np.linspace(0, 0.85, rounds.sizes["round"]))
for r, z in enumerate(rounds.z.values):
    lifted = cap_generator.sample(float(z), 400, seed=10 + r)
    ax.scatter(lifted[:, 0], lifted[:, 1], s=2, color=colour[r], label=f"round {r}: G($x_1$ = {z:.1f}) after exploring")
ax.scatter(rounds.x.values[::25, 0], rounds.x.values[::25, 1], s=2, color="k", marker="x",
           label="last round's refined states")
ax.scatter(guess[:400, 0], guess[:400, 1], s=2, color="tab:green", alpha=0.5, label="G($x_1$ = 20) before exploring")
ax.set(xlabel="$x_1$", ylabel="$x_2$", title="caps: the generator's reach, round by round")
ax.legend(fontsize=7, markerscale=4, loc="upper left")
ax = axes[1]
index = np.arange(rounds.sizes["round"])
ax.plot(index, rounds.label_consistency, "o-", label="extrapolated G($z_r$)")
ax.plot(index, rounds.refined_label_consistency, "s-", label="refined by seeded US")
ax.axhline(5 / math.sqrt(KAPPA_CAPS), color="k", ls=":", label="stopping tolerance 5/√κ")
ax.set(yscale="log", xlabel="round", ylabel="mean $|x_1 - z_r|$", title="label consistency",
       xticks=index, xticklabels=[f"{r}\n{z:.1f}" for r, z in zip(index, rounds.z.values)])
ax.legend(fontsize=8)
ax = axes[2]
for k, name in enumerate(("x1", "x2", "x3")):
    ax.plot(index, rounds.w1.values[:, k], "o-", label=f"W1 {name}")
ax.plot(index, rounds.energy, "k^-", label="energy distance")
ax.plot(index, energy_expected, "k--", lw=1, label="energy, exact with $x_1$ + 1/κ vs exact")
ax.axhline(1 / KAPPA_CAPS, color="tab:blue", ls=":", lw=1, label="1/κ (x1's bias offset)")
ax.set(yscale="log", ylim=(1e-4, 1), xlabel="round", title="refined states against the exact law", xticks=index)
ax.legend(fontsize=7, ncol=2, loc="upper center")
fig.tight_layout()
fig.savefig(OUT / "explore_rounds.png", dpi=120)
print(f"figures written to {OUT}")
