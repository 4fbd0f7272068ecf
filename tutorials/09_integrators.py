"""
09 — Integrators: the equilibrium they sample
=============================================

An explicit integrator with step dt samples a law near, not at, the equilibrium exp(−βV). For
Euler–Maruyama the gap is O(dt); for the Leimkuhler–Matthews scheme (the default of every
additive-noise system) it is O(dt²) at the same cost, and exact for Ornstein–Uhlenbeck variables;
MALA removes it with a Metropolis test. This tutorial measures the three on the double well
(U = x1⁴/4 − 3x1² + x1 + x2²/2, β = 1):

- each scheme's invariant ⟨x1²⟩ without sampling (its transfer operator), against quadrature;
- the same by simulation, with standard errors;
- the guard that refuses a step unstable in an umbrella restraint.

Run it as a script (`python tutorials/09_integrators.py`); `EQFREE_FAST=1` shortens every run.
Figures go to `EQFREE_OUT` (default `tutorials/output`).
"""

# %%
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from eqfree import systems
from eqfree.errors import InputError
from eqfree.evolve import SCHEMES, HarmonicBias
from eqfree.restrict import collective_variable

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)

# %%
# Schemes by name
# ---------------
#
# A system runs its own scheme (`system.scheme`); any other is one keyword away, in `simulate`,
# `evolver` and `eqfree.evolve.integrate`.

# %%
well = systems.get("double_well")
print(f"schemes: {sorted(SCHEMES)}; double_well runs {well.scheme!r} at dt = {well.dt:g} by default")

# %%
# The invariant law of each scheme, without sampling
# --------------------------------------------------
#
# x1 is an autonomous Markov chain under each scheme; the null vector of its transfer operator is the
# scheme's invariant law (`DoubleWell.scheme_moments`). Its error against quadrature falls like dt for
# Euler–Maruyama and like dt² for Leimkuhler–Matthews.

# %%
exact = well.mean_square()
dts = np.array([0.02, 0.04] if FAST else [0.005, 0.01, 0.02, 0.04])
errors = {scheme: np.array([well.scheme_moments(dt, scheme)["mean_square"] - exact for dt in dts])
          for scheme in ("euler_maruyama", "leimkuhler_matthews")}
orders = {scheme: np.polyfit(np.log(dts), np.log(np.abs(error)), 1)[0] for scheme, error in errors.items()}
for dt, em, lm in zip(dts, errors["euler_maruyama"], errors["leimkuhler_matthews"]):
    print(f"dt = {dt:5.3f}: error of <x1^2>  Euler-Maruyama {em:+.2e}   Leimkuhler-Matthews {lm:+.2e}")
print(f"fitted orders: {orders}")

fig, ax = plt.subplots(figsize=(5, 4))
for scheme, error in errors.items():
    ax.loglog(dts, np.abs(error), "o-", label=f"{scheme} (order {orders[scheme]:.2f})")
ax.set(xlabel="dt", ylabel=r"$|\langle x_1^2\rangle_{dt} - \langle x_1^2\rangle|$",
       title="double well: invariant-measure error")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "integrators_invariant_error.png", dpi=120)

# %%
# The same by simulation
# ----------------------
#
# Walkers start from the exact law and run at dt = 0.02; each walker's time average over t ≥ 0.5 is
# one draw, so the standard error is over walkers. Euler–Maruyama lands on its own (biased) law,
# the other two on the exact one.

# %%
walkers, t_end, dt = (4000, 1.5, 0.02) if FAST else (20_000, 3.0, 0.02)
rng = np.random.default_rng(0)
grid = np.linspace(-5.5, 5.0, 40_001)
cdf = np.cumsum(np.exp(-(well.potential(np.column_stack([grid, 0 * grid])) - well.potential(well.x0))))
x0 = np.column_stack([np.interp(rng.random(walkers), cdf / cdf[-1], grid), rng.standard_normal(walkers)])
sampled = {}
for scheme in ("euler_maruyama", "leimkuhler_matthews", "mala"):
    run = well.simulate(walkers, round(t_end / dt), seed=1, dt=dt, x0=x0, scheme=scheme, save_every=5)
    per_walker = (run.sel(coord="x1", time=slice(0.5, None)).values ** 2).mean(axis=0)
    sampled[scheme] = per_walker.mean(), per_walker.std(ddof=1) / math.sqrt(walkers)
    extra = f" (acceptance {run.attrs['acceptance']:.3f})" if scheme == "mala" else ""
    print(f"{scheme:20s} <x1^2> = {sampled[scheme][0]:.4f} ± {sampled[scheme][1]:.4f}{extra}; exact {exact:.4f}")

# %%
# A step the restraint cannot take
# --------------------------------
#
# An umbrella restraint κ/2 (ξ − z)² adds a stiffness `κ|∇ξ|²`; an explicit step is stable only for
# `κ|∇ξ|² dt < 2`. The evolver refuses an unstable one before any step, naming the largest stable dt.

# %%
restraint = HarmonicBias(collective_variable("x1", dim=2), 250.0, 0.0)
try:
    well.evolver().biased(restraint)(np.zeros((4, 2)), 10, seed=0)
except InputError as error:
    refusal = str(error)
    print(refusal)
