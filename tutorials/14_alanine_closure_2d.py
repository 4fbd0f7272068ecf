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

The Langevin friction is 10/ps (``systems.get("alanine_dipeptide", friction=10)``), so velocities forget in
0.1 ps, and direct MD runs at that friction. Bursts of τ = 0.25 ps fit the diffusion to the variance's slope
over [0.125, 0.25] ps; for a free Langevin particle Var = 2D(t − (1 − e^{−γt})/γ), whose least-squares slope
there is 0.825 × 2D: D biased low by some 17 %, a diffusion-limited MFPT long by some 21 %. τ = 0.5 ps, whose
slope over [0.25, 0.5] would carry 3 % only, is too long: in a pilot (64 walkers lifted at αR and at β) the
dihedrals' variance grows only until about 0.25 ps (ψ: 0.014 rad² at 0.05 ps, 0.105 at 0.25, then 0.09 to 0.14
up to 1.5 ps; φ levels off at 0.06 to 0.08 rad²), and 32 walkers over [0.25, 0.5] ps gave D_φφ = −0.11 ± 0.11,
D_ψψ = −0.20 ± 0.14 rad²/ps at αR.

Measured in the full mode (2026-12-04, the settings below, one core shared with other jobs): the PMF(φ, ψ) (bins of
0.5 × 0.79 rad, 3796 decorrelated samples) spans 0 to 11.2 kT; direct MD at friction 10/ps from αR crosses to β
after 45.3 ± 9.7 ps (24 runs, none censored at 1 ns) — against 36.9 ± 7.1 ps at friction 1/ps, a factor 1.2 where
overdamped (Smoluchowski) kinetics would scale with the friction, ×10. The closure does not reproduce the molecule:
raw D_φφ has median 0.30 rad²/ps (range −0.005 to 1.7, median standard error 0.14), D_ψψ median 0.62 (0.08 to 4.1,
se 0.16); debiased, 7 of the 48 tensors need the floor below, all on the grid's φ ends, where the drift pushes back
into the well at 1.5 to 3.4 rad/ps and the one-sided J_φφ ≈ −5/ps makes ½pJ ≈ −0.9 (p = 0.36 ps): the first-order
correction's F = I + ½pJ is nearly singular there. Its stationary law misses the PMF by 1.00 kT RMS over 25 bins
(largest 1.94 kT) against standard errors of 0.35 kT (RMS; the PMF's 0.23, the closure's own 0.27), and puts 0.34
of the probability at ψ ≥ 70° where the PMF puts 0.63; its MFPT is 15.0 ± 4.7 ps. Why: at friction 10/ps the
dihedrals are still underdamped in their wells — over the first 10 fs their variance grows ballistically, (kT/I) t²
with kT/I ≈ 45 to 75 rad²/ps², and the ψ-PMF's curvature at β, 33 kJ/mol/rad² ≈ 13 kT/rad² (umbrella integration,
tests/test_alanine_dipeptide.py), gives ω₀ ≈ 24 to 31/ps > γ/2 — so no τ is both long against the velocities'
memory and short against the wells' relaxation, and the crossing (a factor 1.2 from 1/ps to 10/ps: near Kramers'
turnover, which a barrier frequency of about 20/ps reproduces) is not the overdamped one a closure dz = B dt + √D
dW describes. At friction 100/ps (τ = 0.05 ps, 256 walkers, 0.2 ps lift: overdamped by that estimate) it is worse:
D_φφ, D_ψψ medians 0.16 and 0.11 rad²/ps with standard errors 0.06 and 0.05, 10 tensors floored, the stationary law
4.4 kT RMS from the PMF (standard errors 1.8 kT) with no probability left at ψ ≥ 70°.

Full mode: 48 umbrella windows × 4 walkers × 6 ps at friction 1/ps (the PMF does not depend on the friction),
a 6 × 8 closure grid × 64 walkers × (0.5 ps lift + 0.25 ps burst), 24 direct runs in chunks of 10 ps up to
1 ns — about 17 minutes on one core (measured: 3.2 + 9.3 + 4.1 minutes). ``EQFREE_FAST=1`` runs a 2 × 2 grid
with picosecond runs in seconds (its numbers only exercise the code). Figures go to ``EQFREE_OUT`` (default
``tutorials/output``).
"""

# %%
import math
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

from eqfree import systems
from eqfree.closures import (
    Box,
    BurstEstimator,
    Closure,
    closure_draws,
    debiased,
    estimate_closure,
    grid_generator,
    grid_stationary,
    kinetics_axes,
    passage,
)
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
FRICTION = 10.0  # 1/ps
alanine = systems.get("alanine_dipeptide", friction=FRICTION)
evolve = alanine.evolver()
cvs = [alanine.cv("phi"), alanine.cv("psi")]
clock = time.perf_counter()
PHI = np.array([-2.0, -1.0]) if FAST else np.arange(-3.0, -0.49, 0.5)
N_PSI = 2 if FAST else 8
PSI = CUTS["psi"] + (np.arange(N_PSI) + 0.5) * 2 * math.pi / N_PSI
START = np.array([-1.5, -0.7])  # αR
PSI_BETA = math.radians(85.0)  # β: ψ ≥ 85° (to ψ = 250°, the cut)
print(f"grid {PHI.size} x {PSI.size}; alpha_R start (phi, psi) = {tuple(START)} rad")

# %%
# Umbrella sampling on (φ, ψ) and the PMF
# ---------------------------------------
# A window at every grid point, κ = 25 kJ/mol/rad² on each dihedral (width 1/√(βκ) ≈ 0.32 rad, so windows 0.5
# and 0.79 rad apart overlap), walkers from the minimized structure. MBAR (pymbar's FES) gives the PMF on one
# bin per grid cell, with its analytical standard errors. The windows run at the default friction 1/ps: the PMF
# is the Boltzmann law's, whatever the friction, and the lower friction crosses the windows' barriers sooner.

# %%
sampler = systems.get("alanine_dipeptide").evolver()  # friction 1/ps: the same Boltzmann law, sampled faster
umbrella = UmbrellaSampling(sampler, cvs, 25.0, n_steps=400 if FAST else 6000, n_walkers=2 if FAST else 4,
                            save_every=20, initial=alanine.x0)
windows = umbrella.run(np.array([(a, b) for a in PHI for b in PSI]), seed=21)
edges = [PHI, CUTS["psi"] + np.arange(N_PSI + 1) * 2 * math.pi / N_PSI]
pmf = free_energy_surface(windows, edges)
print(f"{windows.sizes['sample']} decorrelated samples in {windows.sizes['window']} windows; "
      f"PMF range {np.nanmin(pmf.pmf.values):.2f} to {np.nanmax(pmf.pmf.values):.2f} kT "
      f"({(time.perf_counter() - clock) / 60:.1f} min)")
clock = time.perf_counter()

# %%
# The closure from umbrella-lifted bursts
# ---------------------------------------
# The lift: the walkers start from the umbrella samples whose (φ, ψ) lie nearest z (equilibrated states, at most
# a window's width away), then run 0.5 ps under restraints of κ = 200 kJ/mol/rad² (width 1/√(βκ) = 0.11 rad) at
# z — at friction 10/ps the velocities forget in 0.1 ps and the restrained dihedrals, whose unrestrained variance
# already levels off within 0.25 ps in their wells (below), relax faster still in the stiffer restraint; their last
# states start bursts of τ = 0.25 ps of unbiased MD, restricted to (φ, ψ). (Pulling the minimized structure to a
# far z with a stiff restraint instead would pump tens of kT into the molecule: the bursts would start hot.)
# One chunk per grid point in a resumable store.

# %%
lift = UmbrellaSampling(evolve, cvs, 200.0, n_steps=200 if FAST else 500, warmup=0, initial=windows.x.values)
estimator = BurstEstimator(lift, evolve, alanine.ramachandran(), tau=0.1 if FAST else 0.25,
                           n_walkers=8 if FAST else 64, periods=[None, 2 * math.pi])
estimate = estimate_closure(estimator, [PHI, PSI], seed=31, store=OUT / "alanine_closure_2d.zarr", overwrite=True,
                            cv_units="rad", time_units="ps")
print(Closure(estimate))
print(f"({(time.perf_counter() - clock) / 60:.1f} min)")
raw = estimate["diffusion"].values
for i, name in enumerate(("phiphi", "psipsi")):
    print(f"raw D_{name}: median {np.median(raw[..., i, i]):.3f}, range {raw[..., i, i].min():.3f} to "
          f"{raw[..., i, i].max():.3f} rad²/ps; median standard error "
          f"{np.median(estimate['diffusion_stderr'].values[..., i, i]):.3f}")

# %%
# The kinetics need a positive-definite D at every grid point. Where the bursts' variance slopes are noisy (a few
# walkers: the fast mode), or where the drift changes so fast that the first-order correction fails (the full
# mode's φ ends), the estimate, debiased (:func:`~eqfree.closures.debiased`: the bursts' ½τJB and
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
# constant: both are relative). F's standard error per bin: the same for closures drawn within the estimates'
# standard errors (:func:`~eqfree.closures.closure_draws`, as :func:`~eqfree.closures.passage` draws them),
# each shifted by its mean over the compared bins, as the gap is.

# %%
axes = kinetics_axes(closure, 12 if FAST else 40)
mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
in_bin = [np.digitize(mesh[:, 0], edges[0]) - 1, np.digitize(wrap_into(mesh[:, 1], edges[1][0]), edges[1]) - 1]
shape = pmf.pmf.shape
inside = (in_bin[0] >= 0) & (in_bin[0] < shape[0])
volume = np.outer(np.diff(edges[0]), np.diff(edges[1]))


def binned_free_energy(pi):
    """−log(P/V) per PMF bin of the mesh's stationary probabilities π."""
    mass = np.bincount(np.ravel_multi_index((in_bin[0][inside], in_bin[1][inside]), shape), weights=pi[inside],
                       minlength=math.prod(shape)).reshape(shape)
    with np.errstate(divide="ignore"):
        return -np.log(mass / volume)


free_energies = []
for k, (b, d) in enumerate(closure_draws(closure, axes, mesh, 4 if FAST else 32, np.random.default_rng(51))):
    drawn = grid_generator(axes, b, d, periodic=closure.periods)
    if k == 0:  # the estimate itself
        generator, pi = drawn, grid_stationary(drawn)
    free_energies.append(binned_free_energy(grid_stationary(drawn)))
closure_free_energy, drawn_free_energies = free_energies[0], np.array(free_energies[1:])
compared = np.isfinite(pmf.pmf.values) & (pmf.pmf.values < 5) & np.isfinite(closure_free_energy)
compared &= np.isfinite(drawn_free_energies).all(axis=0)
drawn_free_energies -= drawn_free_energies[:, compared].mean(axis=1)[:, None, None]
closure_free_energy_se = drawn_free_energies.std(axis=0, ddof=1)
gap = closure_free_energy - pmf.pmf.values
gap -= gap[compared].mean()
gap_se = np.hypot(pmf.pmf_stderr.values, closure_free_energy_se)
rms_gap = float(np.sqrt(np.mean(gap[compared] ** 2)))
print(f"stationary law vs PMF on {compared.sum()} bins below 5 kT: RMS gap {rms_gap:.2f} kT, largest "
      f"{np.abs(gap[compared]).max():.2f} kT; standard errors (RMS over these bins): PMF "
      f"{np.sqrt(np.mean(pmf.pmf_stderr.values[compared] ** 2)):.2f} kT, closure "
      f"{np.sqrt(np.mean(closure_free_energy_se[compared] ** 2)):.2f} kT, both "
      f"{np.sqrt(np.mean(gap_se[compared] ** 2)):.2f} kT")
beta_bins = edges[1][:-1] >= math.radians(70.0)  # ψ ∈ [70°, 250°]: β and the bin that holds its 85° edge
masses = [np.nan_to_num(np.exp(-f) * volume) for f in (pmf.pmf.values, closure_free_energy)]
p_beta_pmf, p_beta_closure = (float(m[:, beta_bins].sum() / m.sum()) for m in masses)
print(f"P(psi >= 70 deg) on the grid's phi range: PMF {p_beta_pmf:.2f}, closure {p_beta_closure:.2f}")
clock = time.perf_counter()

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
n_runs, chunk, cap = (3, 1000, 3) if FAST else (24, 10_000, 100)
starts = lift(START, n_runs, seed=11)
first = np.full(n_runs, np.nan)
for run in tqdm(range(n_runs), desc="direct MD", unit="run", disable=FAST):
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
      f"({n_runs - finished.sum()} censored at {cap * chunk * evolve.dt:g} ps; "
      f"{(time.perf_counter() - clock) / 60:.1f} min)")

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
