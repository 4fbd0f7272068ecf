"""
14 — Alanine dipeptide: a φ/ψ closure from umbrella-lifted bursts, its stationary law and its kinetics
======================================================================================================

A closure on the two backbone dihedrals of alanine dipeptide (Amber14 + OBC2, Langevin at 300 K with OpenMM,
``systems.get("alanine_dipeptide")``): dz = B(z) dt + √D(z) dW on a grid over the φ < 0 half of the
Ramachandran plane (ψ periodic), estimated from short MD bursts whose starts are lifted by umbrella sampling on
(φ, ψ) at once — two torsion restraints, one OpenMM ``CustomTorsionForce`` each
(:class:`~eqfree.evolve.Restraints`). Then two checks of the closed SDE against the molecule itself:

- its stationary law (the stationary Fokker–Planck equation solved by finite volumes, the null vector of the
  adjoint of :func:`eqfree.closures.grid_generator`) against the PMF(φ, ψ) of umbrella sampling on (φ, ψ) by
  MBAR (:func:`eqfree.reweight.free_energy_surface`);
- its mean first-passage time from αR to β (:func:`eqfree.closures.passage`) against direct MD started at the
  same point.

The Langevin friction is 1/ps, so velocities remember for about 1 ps: bursts of τ = 2 ps fit the diffusion to
the variance's slope over [1, 2] ps. For a free Langevin particle Var = 2D(t − (1 − e^{−γt})/γ), whose chord
over [1, 2] ps has slope 0.77 × 2D: the closure's D is biased low by some 23 %, and its kinetics slow by some
30 % where diffusion limits them. That is the price of τ well below the αR → β time (tens of ps).

Measured in the full mode (2026-12-04, the settings below): the PMF(φ, ψ) (bins of 0.5 × 0.79 rad) is lowest
in β at (φ, ψ) ≈ (−1.25, 2.4), with αR (−1.25, 0.05) 0.74 kT above it (MBAR standard errors 0.1–0.4 kT); direct
MD from αR crosses to β after 36.9 ± 7.1 ps (24 runs). The closure does not yet reproduce either: the bursts'
diffusion along φ is lost in noise (raw D_φφ ≈ 0 ± 0.2 rad²/ps; D_ψψ from −2.7 to 5.7), 37 of the 48 tensors
need the floor below, its stationary law misses the PMF by 1.25 kT RMS and its MFPT is 5.8 ps (the
estimate's own; its standard error was not measured in full mode). Twice the walkers (32 per
point) change none of this (D_φφ ≈ 0 ± 0.1, 37 floored, 1.43 kT RMS, 3.8 ps): at friction 1/ps no τ is both
long against the velocities' memory (≈ 1 ps) and short against φ's relaxation in its well (≈ 2 ps), so φ's
variance has nearly stopped growing over [τ/2, τ]. A higher friction (``systems.get("alanine_dipeptide",
friction=10)``: memory 0.1 ps) with τ ≈ 0.5 ps, compared with direct MD at that friction, is the next step.

Full mode: 48 umbrella windows × 4 walkers × 6 ps, a 6 × 8 closure grid × 16 walkers × (1 ps lift + 2 ps
burst), 24 direct runs — about 25 minutes on one core (measured: 6 + 13 + 4 minutes). ``EQFREE_FAST=1`` runs
a 2 × 2 grid with picosecond runs in seconds (its numbers only exercise the code). Figures go to
``EQFREE_OUT`` (default ``tutorials/output``).
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
from eqfree.closures import (
    Box,
    BurstEstimator,
    Closure,
    debiased,
    estimate_closure,
    grid_generator,
    grid_stationary,
    kinetics_axes,
    passage,
)
from eqfree.closures.kinetics import limited
from eqfree.lift import UmbrellaSampling
from eqfree.periodic import wrap_into
from eqfree.reweight import free_energy_surface
from eqfree.systems.alanine_dipeptide import CUTS

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)

# %%
# The grid, the CVs and the restraints
# ------------------------------------
# φ on [−3, −0.5] every 0.5 rad (the αR and β basins; φ > 0 is another basin, rarely visited), ψ every 45°,
# periodic, midway between the cuts at −110° (``CUTS``: the ψ-PMF maximum between β and αR). The restriction
# of the closure, ``alanine.ramachandran()``, returns φ and ψ cut there: the walkers lifted at a grid point
# (0.11 rad wide) all lie on one side of the cut, so their spread is not inflated by 2π jumps (the bursts'
# increments across the cut are unwrapped by the estimator, ψ being periodic).

# %%
alanine = systems.get("alanine_dipeptide")
evolve = alanine.evolver()
cvs = [alanine.cv("phi"), alanine.cv("psi")]
PHI = np.array([-2.0, -1.0]) if FAST else np.arange(-3.0, -0.49, 0.5)
N_PSI = 2 if FAST else 8
PSI = CUTS["psi"] + (np.arange(N_PSI) + 0.5) * 2 * math.pi / N_PSI
START = np.array([-1.5, -0.7])  # αR
PSI_BETA = math.radians(85.0)  # β: ψ ≥ 85° (to ψ = 250°, the cut)
steps_per_second = 4000  # one CPU thread, measured in benchmarks/md.py
print(f"grid {PHI.size} x {PSI.size}; alpha_R start (phi, psi) = {tuple(START)} rad")

# %%
# Umbrella sampling on (φ, ψ) and the PMF
# ---------------------------------------
# A window at every grid point, κ = 25 kJ/mol/rad² on each dihedral (width 1/√(βκ) ≈ 0.32 rad, so windows 0.5
# and 0.79 rad apart overlap), walkers from the minimized structure. MBAR (pymbar's FES) gives the PMF on one
# bin per grid cell, with its analytical standard errors.

# %%
umbrella = UmbrellaSampling(evolve, cvs, 25.0, n_steps=400 if FAST else 6000, n_walkers=2 if FAST else 4,
                            save_every=20, initial=alanine.x0)
windows = umbrella.run(np.array([(a, b) for a in PHI for b in PSI]), seed=21)
edges = [PHI, CUTS["psi"] + np.arange(N_PSI + 1) * 2 * math.pi / N_PSI]
pmf = free_energy_surface(windows, edges)
print(f"{windows.sizes['sample']} decorrelated samples in {windows.sizes['window']} windows; "
      f"PMF range {np.nanmin(pmf.pmf.values):.2f} to {np.nanmax(pmf.pmf.values):.2f} kT")

# %%
# The closure from umbrella-lifted bursts
# ---------------------------------------
# The lift: the walkers start from the umbrella samples whose (φ, ψ) lie nearest z (equilibrated states, at most
# a window's width away), then run 1 ps under restraints of κ = 200 kJ/mol/rad² (width 1/√(βκ) = 0.11 rad) at
# z; their last states start bursts of τ = 2 ps of unbiased MD, restricted to (φ, ψ). (Pulling the minimized
# structure to a far z with a stiff restraint instead would pump tens of kT into the molecule, which friction
# 1/ps takes picoseconds to drain: the bursts would start hot.) One chunk per grid point in a resumable store.

# %%
lift = UmbrellaSampling(evolve, cvs, 200.0, n_steps=200 if FAST else 1000, warmup=0, initial=windows.x.values)
estimator = BurstEstimator(lift, evolve, alanine.ramachandran(), tau=0.4 if FAST else 2.0,
                           n_walkers=8 if FAST else 16, periods=[None, 2 * math.pi])
estimate = estimate_closure(estimator, [PHI, PSI], seed=31, store=OUT / "alanine_closure_2d.zarr", overwrite=True,
                            cv_units="rad", time_units="ps")
print(Closure(estimate))

# %%
# The kinetics need a positive-definite D at every grid point. Where the bursts' variance slopes are noisy (a few
# walkers: the fast mode) the estimate, debiased (:func:`~eqfree.closures.debiased`: the bursts' ½τJB and
# ½p(JD + DJᵀ + (B·∇)D) removed), can be indefinite: its eigenvalues are raised to a floor of 1 % of the median
# diagonal entry, and the number of points where the floor binds is printed (where it binds, the kinetics below
# are not the estimate's own).

# %%
corrected = debiased(estimate)
values, vectors = np.linalg.eigh(corrected["diffusion"].values)
floor = 0.01 * np.median(np.diagonal(corrected["diffusion"].values, axis1=-2, axis2=-1))
floored = int(np.any(values < floor, axis=-1).sum())
corrected["diffusion"].values = (vectors * np.maximum(values, floor)[..., None, :]) @ np.swapaxes(vectors, -1, -2)
closure = Closure(corrected)
print(f"diffusion floored at {floor:.3g} rad²/ps at {floored} of {PHI.size * PSI.size} points")

# %%
# The closed SDE's stationary law against the PMF
# -----------------------------------------------
# The stationary Fokker–Planck equation on a finite-volume mesh over the grid (reflecting at the φ ends,
# periodic in ψ): π Q = 0 for the mesh's rate matrix Q. Its probabilities, summed over each PMF bin, give the
# closure's free energy F = −log(P/V) there, compared with the PMF where the PMF lies below 5 kT (up to a
# constant: both are relative).

# %%
axes = kinetics_axes(closure, 12 if FAST else 40)
mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
steps = [a[1] - a[0] for a in axes]
generator = grid_generator(axes, closure.drift(mesh), limited(closure.diffusion(mesh), steps),
                           periodic=closure.periods)
pi = grid_stationary(generator)
in_bin = [np.digitize(mesh[:, 0], edges[0]) - 1, np.digitize(wrap_into(mesh[:, 1], edges[1][0]), edges[1]) - 1]
shape = pmf.pmf.shape
inside = (in_bin[0] >= 0) & (in_bin[0] < shape[0])
mass = np.bincount(np.ravel_multi_index((in_bin[0][inside], in_bin[1][inside]), shape), weights=pi[inside],
                   minlength=math.prod(shape)).reshape(shape)
volume = np.outer(np.diff(edges[0]), np.diff(edges[1]))
with np.errstate(divide="ignore"):
    closure_free_energy = -np.log(mass / volume)
compared = np.isfinite(pmf.pmf.values) & (pmf.pmf.values < 5) & np.isfinite(closure_free_energy)
gap = closure_free_energy - pmf.pmf.values
gap -= gap[compared].mean()
rms_gap = float(np.sqrt(np.mean(gap[compared] ** 2)))
print(f"stationary law vs PMF on {compared.sum()} bins below 5 kT: RMS gap {rms_gap:.2f} kT, largest "
      f"{np.abs(gap[compared]).max():.2f} kT (PMF standard errors: median {np.nanmedian(pmf.pmf_stderr.values):.2f} "
      "kT)")

# %%
# αR → β: the closure's mean first-passage time against direct MD
# ---------------------------------------------------------------
# The closure's MFPT from START to ψ ≥ 85° solves the backward Kolmogorov equation on the mesh, with standard
# errors from closures drawn within the estimates' errors. Direct MD: walkers lifted at START by the same
# lift, then unbiased MD in chunks until ψ first reaches 85° (runs still in αR at the cap are counted
# as censored: the mean over finished runs is then a lower bound).

# %%
target = Box((PHI[0], PSI_BETA), (PHI[-1], CUTS["psi"] + 2 * math.pi))
result = passage(closure, START, target, seed=41, n_samples=4 if FAST else 32)
n_runs, chunk, cap = (3, 1000, 3) if FAST else (24, 5000, 60)
starts = lift(START, n_runs, seed=11)
first = np.full(n_runs, np.nan)
for run in range(n_runs):
    state, elapsed = starts[run], 0.0
    for piece in range(cap):
        burst = evolve(state, chunk, seed=10_000 * (run + 1) + piece, save_every=50)
        psi = alanine.ramachandran()(burst.values[:, 0])[:, 1]
        hits = np.flatnonzero(psi >= PSI_BETA)
        if hits.size:
            first[run] = elapsed + burst.time.values[hits[0]]
            break
        elapsed += chunk * evolve.dt
        state = burst.values[-1]
finished = np.isfinite(first)
direct_mfpt = first[finished].mean() if finished.any() else math.nan
direct_mfpt_se = first[finished].std(ddof=1) / math.sqrt(finished.sum()) if finished.sum() > 1 else math.nan
print(f"MFPT alpha_R -> beta: closure {result['mfpt']:.1f} +- {result['mfpt_stderr']:.1f} ps; direct MD "
      f"{direct_mfpt:.1f} +- {direct_mfpt_se:.1f} ps over {finished.sum()} of {n_runs} runs "
      f"({n_runs - finished.sum()} censored at {cap * chunk * evolve.dt:g} ps)")

# %%
# Figures
# -------

# %%
fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.2))
extent = [edges[0][0], edges[0][-1], edges[1][0], edges[1][-1]]
for ax, values, title in ((left, pmf.pmf.values, "umbrella PMF (MBAR), kT"),
                          (middle, closure_free_energy - np.nanmin(closure_free_energy[compared]),
                           "closed SDE: −log stationary density, kT")):
    image = ax.imshow(values.T, origin="lower", extent=extent, aspect="auto", vmin=0, vmax=8, cmap="viridis")
    ax.set(xlabel="φ (rad)", ylabel="ψ (rad)", title=title)
    fig.colorbar(image, ax=ax)
grid = np.stack(np.meshgrid(PHI, PSI, indexing="ij"), axis=-1)
drift = closure.dataset["drift"].values
middle.quiver(grid[..., 0], grid[..., 1], drift[..., 0], drift[..., 1], color="w")
middle.plot(*START, "r*", ms=12)
right.hist(first[finished], bins=12, alpha=0.6, label=f"direct MD ({finished.sum()} runs)")
right.axvline(direct_mfpt, color="C0", label=f"direct mean {direct_mfpt:.0f} ps")
right.axvline(result["mfpt"], color="C3", label=f"closure {result['mfpt']:.0f} ± {result['mfpt_stderr']:.0f} ps")
right.set(xlabel="first-passage time αR → β (ps)", title="αR → β")
right.legend()
fig.tight_layout()
fig.savefig(OUT / "alanine_closure_2d.png", dpi=120)
