"""
11 — Testing your own operators: calibrated consistency checks
==============================================================

Before trusting an equation-free result, four questions need an answer, and `eqfree.testing` answers
each with a statistical test whose false-alarm rate is its nominal level α (docs/consistency.md):

1. **Is my lift at the conditional equilibrium?** `check_lift`: states lifted at z keep their law under
   the dynamics restrained at z.
2. **Is my CV Markovian at τ?** `check_markov`: bursts of 2τ agree in law with bursts of τ, restricted,
   lifted again and run τ more (Chapman–Kolmogorov).
3. **Do my closure and my PMF agree?** `check_closure_pmf`: B = ½ D (−βF)' + ½ D' at every grid point.
4. **Do two lifts agree?** `check_lifts_agree`.

Here a user brings their own SDE — nothing from `eqfree.systems` — in the potential
U(x, y) = (x² − 1)² + (y − sin x)² / (2σ²), with y the fast variable (mobility 1/ε):

    dx = −∂ₓU dt + √2 dW₁,     dy = −ε⁻¹ ∂_yU dt + √(2/ε) dW₂.

Its facts: y | x ~ N(sin x, σ²), the PMF of x is F(x) = (x² − 1)² (kT), and the closure in x is
B = −F'(x), D = 2 up to O(ε). `EQFREE_FAST=1` shrinks the samples; figures go to `EQFREE_OUT`.
"""

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr

from eqfree import SDE, Coordinates, FunctionLift
from eqfree.closures import BurstEstimator, estimate_closure
from eqfree.evolve import SDEEvolver
from eqfree.seeding import as_seed_sequence
from eqfree.testing import (
    check_closure_pmf,
    check_lift,
    check_lifts_agree,
    check_markov,
    check_micro_macro_consistency,
)

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)
N = 1000 if FAST else 4000  # samples per grid point and law (4000: the documented size)

# %%
# The user's operators: an SDE, a CV, a lift
# ------------------------------------------

# %%
SIGMA, EPS = 0.5, 0.01


def drift(x, t):
    pos, fast = x[:, 0], x[:, 1]
    pull = (fast - torch.sin(pos)) / SIGMA**2
    return torch.stack([-4 * pos * (pos**2 - 1) + pull * torch.cos(pos), -pull / EPS], dim=1)


def diffusion(x, t):
    return torch.tensor([2**0.5, (2 / EPS) ** 0.5], dtype=x.dtype)


# Leimkuhler–Matthews keeps the fast Ornstein–Uhlenbeck law exact at any step
evolve = SDEEvolver(SDE(drift, diffusion), dt=0.1 * EPS * SIGMA**2, scheme="leimkuhler_matthews")
cv = Coordinates("x1")  # the position x; the fast y is x2


def gaussian_lift(variance):
    def lift(z, n, *, seed):
        rng = np.random.default_rng(as_seed_sequence(seed))
        z = float(np.asarray(z).reshape(-1)[0])
        return np.column_stack([np.full(n, z), np.sin(z) + np.sqrt(variance) * rng.standard_normal(n)])
    return FunctionLift(lift, valid_range=(-2.0, 2.0))


lift = gaussian_lift(SIGMA**2)
wrong = gaussian_lift(1.5 * SIGMA**2)  # a learned lift whose fast variance came out 50 % too large
grid = np.linspace(-1.5, 1.5, 3 if FAST else 5)

# %%
# 1. Is the lift at equilibrium?
# ------------------------------
#
# Restriction undoes lifting for both lifts — the old check cannot tell them apart:

# %%
for candidate in (lift, wrong):
    check_micro_macro_consistency(candidate, cv, 0.5, seed=1, tolerance=1e-12)

# %%
# The calibrated check can: 100 healing steps are 10 relaxation times of y.

# %%
heal = 100
good_lift = check_lift(lift, evolve, cv, grid, n_steps=heal, n_samples=N, seed=1)
print(good_lift.table())
wrong_lift = check_lift(wrong, evolve, cv, grid, n_steps=heal, n_samples=N, seed=1)
print(wrong_lift.table())

# %%
# 2. Is x Markovian at τ = 0.05?
# ------------------------------

# %%
markov = check_markov(lift, evolve, cv, grid, tau=0.05, n_samples=N // 2, seed=2)
print(markov.table())

# %%
# 3. Does the closure agree with the PMF?
# ---------------------------------------
#
# The closure comes from bursts (debiased by the check); the PMF here is the exact F(x) = (x² − 1)², where
# a user would hand in the `pmf` of `eqfree umbrella` (or of `UmbrellaSampling.reweight`).

# %%
estimator = BurstEstimator(lift, evolve, cv, tau=40 * evolve.dt, n_walkers=N)
closure = estimate_closure(estimator, np.linspace(-1.6, 1.6, 17), seed=3)
z = np.linspace(-2, 2, 4001)
pmf = xr.Dataset({"pmf": ("cv", (z**2 - 1) ** 2)}, coords={"cv": z})
closure_pmf = check_closure_pmf(closure, pmf)
print(closure_pmf.table())

# %%
# 4. Do two lifts agree?
# ----------------------

# %%
lifts = check_lifts_agree(lift, wrong, grid, n_samples=N, seed=4)
print(lifts.table())

# %%
# In a test suite the same checks are one fixture away (`pip install eqfree[test]` registers the plugin):
#
# .. code-block:: python
#
#     @pytest.mark.eqfree(seed=1)
#     def test_my_lift(eqfree_check):
#         eqfree_check.lift(lift, evolve, cv, grid, n_steps=100)

# %%
figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for report, label in ((good_lift, "exact lift"), (wrong_lift, "variance 50 % off")):
    axes[0].semilogy(report.grid, np.maximum(report.adjusted, 1e-3), "o-", label=label)
axes[0].axhline(0.05, color="k", ls="--", lw=1)
axes[0].set(xlabel="z", ylabel="Holm-adjusted p", title="lift check")
axes[0].legend()
axes[1].errorbar(closure_pmf.grid, closure_pmf.samples["residual"], 2 * closure_pmf.samples["residual_stderr"],
                 fmt="o")
axes[1].axhline(0, color="k", lw=1)
axes[1].set(xlabel="x", ylabel="B − ½D(−F') − ½D'", title="closure vs PMF (± 2 se)")
figure.tight_layout()
figure.savefig(OUT / "consistency_checks.png", dpi=120)
