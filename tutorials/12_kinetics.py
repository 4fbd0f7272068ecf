"""
12 — Kinetics from a closure
============================

What a user wants from an effective SDE dz = B(z) dt + √D(z) dW is often kinetics: how long until the
transition, at what rate, with what uncertainty. The mean first-passage time T(z) to a target region solves
the backward Kolmogorov equation B·∇T + ½ D : ∇∇T = −1, with T = 0 in the target and reflecting ends
of the grid. eqfree solves it by quadrature in 1-D and by finite volumes with ``scipy.sparse`` on n-D grids
(:mod:`eqfree.closures.kinetics`), and carries the closure's standard errors into the MFPT's.

The test system is the tilted double well (``double_well``) at β = 0.3, whose x1 is autonomous: its exact
closure is B = −U′(x1), D = 2/β, so the estimated closure's kinetics can be checked against the exact MFPT,
and against first passages of the closed SDE itself.

Run it as a script (``python tutorials/12_kinetics.py``); ``EQFREE_FAST=1`` shortens every run.
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
from eqfree.closures import (
    Box,
    BurstEstimator,
    Closure,
    estimate_closure,
    first_passage_time,
    grid_committor,
    grid_generator,
    grid_mfpt,
    passage,
    simulated_passages,
)
from eqfree.systems import LinearGaussianLift

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)

# %%
# The closure from bursts
# -----------------------
# Bursts of τ = 0.002 (ten fine steps) from the exact lift x2 ~ N(0, 1/(βd)) on 13 points of [−3.5, 0.5]
# (the target [0.5, 3.5] starts where the grid ends). Once the ½τB′B term is removed across the grid the
# drift keeps ¼τB″D, which shortens log T by ½τ(B′(barrier) − B′(well)) ≈ 9.6τ ≈ 2 %.

# %%
beta = 0.3
well = systems.get("double_well", beta=beta)
lift = LinearGaussianLift(0.0, 0.0, 1 / (beta * well.d))
estimator = BurstEstimator(lift, well.evolver(2e-4), Coordinates("x1"), tau=0.002,
                           n_walkers=10_000 if FAST else 100_000)
store = OUT / "kinetics_closure.zarr"
closure = Closure(estimate_closure(estimator, np.linspace(-3.5, 0.5, 13), seed=1, store=store, overwrite=True))

# %%
# Mean first-passage time and rate
# --------------------------------
# From x1 = −2.5 (the left well) into [0.5, 3.5]; the standard errors come from 64 closures drawn from the
# estimates' standard errors. The exact value is the same quadrature on the exact B, D.

# %%
target = Box((0.5,), (3.5,))
result = passage(closure, -2.5, target, seed=2)
mesh = np.linspace(-3.5, 3.5, 20001)
exact_time = first_passage_time(mesh, -(mesh**3 - 6 * mesh + 1), np.full_like(mesh, 2 / beta), (0.5, 3.5))
exact = float(np.interp(-2.5, mesh, exact_time))
mfpt_z = (result["mfpt"] - exact) / result["mfpt_stderr"]
print(f"MFPT {result['mfpt']:.3f} ± {result['mfpt_stderr']:.2f} (exact {exact:.3f}, {mfpt_z:+.2f} se); "
      f"rate {result['rate']:.4f} ± {result['rate_stderr']:.4f}")

# %%
# The closed SDE's own first passages
# -----------------------------------
# 500 Euler–Maruyama paths of the closed SDE (step 10⁻³, reflecting at the grid's lower end): their mean
# first-passage time must agree with the quadrature's within its standard error.

# %%
times = simulated_passages(closure, -2.5, target, n_walkers=500, dt=1e-3, seed=3, max_time=500)
passage_z = (times.mean() - result["mfpt"]) / (times.std(ddof=1) / np.sqrt(times.size))
print(f"closed SDE: mean first passage {times.mean():.3f} ({passage_z:+.2f} se from the quadrature)")

# %%
# Two CVs: finite volumes
# -----------------------
# On the (x1, x2) plane with the exact drift −∇U and D = (2/β) I, the MFPT map and the committor between
# x1 ≤ −2 and x1 ≥ 0.5 come from sparse solves; x1 being autonomous, both are flat in x2 and equal the 1-D ones.

# %%
x1, x2 = np.linspace(-3.5, 3.5, 141), np.linspace(-3, 3, 41)
z1, z2 = np.meshgrid(x1, x2, indexing="ij")
generator = grid_generator([x1, x2], np.stack([-(z1**3 - 6 * z1 + 1), -well.d * z2], axis=-1),
                           np.broadcast_to(np.eye(2) * 2 / beta, (*z1.shape, 2, 2)))
mfpt_map = grid_mfpt(generator, z1 >= 0.5).reshape(z1.shape)
committor = grid_committor(generator, z1 <= -2, z1 >= 0.5).reshape(z1.shape)
plane_error = abs(np.interp(-2.5, x1, mfpt_map[:, 20]) / exact - 1)
print(f"2-D MFPT from (−2.5, 0): {np.interp(-2.5, x1, mfpt_map[:, 20]):.3f} ({plane_error:.1e} from the 1-D one)")

# %%
fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
grid = closure.axes[0]
left.errorbar(grid, closure.dataset.drift[:, 0], yerr=3 * closure.dataset.drift_stderr[:, 0], fmt="o", ms=3,
              label="bursts, ± 3 se")
left.plot(mesh[mesh <= 0.5], -(mesh[mesh <= 0.5] ** 3 - 6 * mesh[mesh <= 0.5] + 1), "k", lw=1, label="−U′(x1)")
left.set(xlabel="x1", ylabel="B", title="estimated drift")
left.legend()
middle.hist(times, bins=40, density=True, alpha=0.6, label="closed-SDE first passages")
middle.axvline(result["mfpt"], color="k", label=f"MFPT {result['mfpt']:.2f} ± {result['mfpt_stderr']:.2f}")
middle.axvline(exact, color="tab:red", ls="--", label=f"exact {exact:.2f}")
middle.set(xlabel="first-passage time", title="x1 = −2.5 → [0.5, 3.5]")
middle.legend(fontsize=8)
image = right.contourf(z1, z2, committor, levels=20)
fig.colorbar(image, ax=right, label="committor")
right.set(xlabel="x1", ylabel="x2", title="committor x1 ≤ −2 → x1 ≥ 0.5")
fig.tight_layout()
fig.savefig(OUT / "kinetics.png", dpi=120)
