"""
07 — Alanine dipeptide: OpenMM as the fine simulator, umbrella sampling on ψ, a CcGAN on 66 coordinates
=======================================================================================================

The molecular case of Crabtree, Bello-Rivas, Ferguson & Kevrekidis, "GANs and closures" (section 5,
Figures 7 and 8): alanine dipeptide (ACE-ALA-NME,
22 atoms) with the Amber14 force field in OBC2 implicit solvent, Langevin dynamics at 300 K with a
1 fs step and friction 1/ps. An unbiased run gives the training data; umbrella sampling on the
backbone dihedral ψ (κ = 50 and 500 kJ/mol/rad²) gives the PMF(ψ) and biased reference samples;
a CcGAN conditioned on ψ (Table 3 architecture) generates all 66 coordinates, Kabsch-aligned onto
a reference conformation in training and before the discriminator.

`EQFREE_FAST=1` runs picoseconds and a brief training; the full mode runs 36 windows × 4
walkers × 20 ps of umbrella sampling, 4.8 ns of unbiased MD and the paper's 5000 training epochs
(about 20 minutes on two cores). Figures and stores go to `EQFREE_OUT` (default `tutorials/output`).
"""

# %%
import contextlib
import math
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from scipy import stats

from eqfree import systems
from eqfree.io import write_zarr
from eqfree.lift import CcGAN, UmbrellaSampling
from eqfree.periodic import wrap_into, wrapped_difference

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)
WORKERS = 1 if FAST else min(4, os.cpu_count() or 1)

# %%
# The system
# ----------
#
# Ten heavy atoms from a PDB file shipped with eqfree, hydrogens added by OpenMM, minimized. The
# built-in `GBSAOBCForce` replaces OpenMM's generic OBC2 `CustomGBForce` with the same energies.

# %%
alanine = systems.get("alanine_dipeptide")
phi0, psi0 = np.degrees(alanine.restriction()(alanine.x0))
print(f"{alanine.openmm_system.getNumParticles()} atoms; minimized: phi = {phi0:.1f} deg, psi = {psi0:.1f} deg "
      f"({alanine.basins(alanine.x0)}), U = {alanine.energy(alanine.x0[None])[0]:.2f} kJ/mol")
generic = systems.get("alanine_dipeptide", gb="obc2-custom")
reference_energy = {}
for name, system in (("built-in GBSAOBCForce", alanine), ("generic CustomGBForce", generic)):
    evolver = system.evolver()
    evolver(alanine.x0, 200, seed=0)  # builds the context
    start = time.perf_counter()
    evolver(alanine.x0, 2000, seed=0, save_every=100)
    rate = 2000 / (time.perf_counter() - start)
    reference_energy[name] = system.evolver(platform="Reference").potential_energy(alanine.x0)[0]
    print(f"{name:22s} U(x0) = {reference_energy[name]:.5f} kJ/mol, "
          f"{rate:,.0f} steps/s = {rate * 86400 * 1e-6:.0f} ns/day on one thread")
gb_gap = abs(np.subtract(*reference_energy.values()))

# %%
# Umbrella sampling on ψ and the PMF
# ----------------------------------
#
# Windows every 10° (30° in fast mode) at κ = 50 kJ/mol/rad², walkers started from the minimized
# (β) structure; MBAR removes the bias. The windows stay in the φ < 0 half of the Ramachandran
# plane (they never cross to φ > 0 in tens of ps), so this is the PMF of that half. The free energy
# difference ΔG(αR − β) is MBAR's, between the basins of `systems.alanine_dipeptide.BASINS`.

# %%
KAPPA = 50.0


def executor():
    return ProcessPoolExecutor(WORKERS) if WORKERS > 1 else contextlib.nullcontext()


N_WINDOWS, US_WALKERS, US_STEPS = (12, 2, 1500) if FAST else (36, 4, 20_000)
grid = np.linspace(-math.pi, math.pi, N_WINDOWS, endpoint=False)
sampler = UmbrellaSampling(alanine.evolver(), alanine.cv("psi"), KAPPA, n_steps=US_STEPS, n_walkers=US_WALKERS,
                           save_every=10, initial=alanine.x0)
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore" if FAST else "default", UserWarning)  # short fast-mode windows still relax
    with executor() as pool:
        windows = sampler.run(grid, seed=2, executor=pool, progress=not FAST)
    fitted = sampler.reweight(windows, "mbar", bins=36)
us_seconds = time.perf_counter() - start
kt = 1 / alanine.beta  # kJ/mol
pmf = fitted.pmf_
psi_deg, free_energy, free_error = np.degrees(pmf.cv.values), pmf.pmf.values * kt, pmf.pmf_stderr.values * kt
window_basins = alanine.basins(windows.x.values)
delta_g, delta_g_error = fitted.free_energy_difference(window_basins == "beta", window_basins == "alpha_R")
alpha_side = (psi_deg > -90) & (psi_deg < 60)
minima = {"beta": psi_deg[np.argmin(free_energy)], "alpha_R": psi_deg[alpha_side][np.argmin(free_energy[alpha_side])]}
print(f"{N_WINDOWS} windows x {US_WALKERS} walkers x {US_STEPS * alanine.dt:g} ps in {us_seconds:.0f} s; "
      f"{windows.sizes['sample']} decorrelated samples, {np.mean(window_basins == 'alpha_L'):.3f} of them at phi > 0")
print(f"PMF minima: beta at psi = {minima['beta']:.0f} deg, alpha_R at {minima['alpha_R']:.0f} deg; "
      f"dG(alpha_R - beta) = {delta_g * kt:+.2f} ± {delta_g_error * kt:.2f} kJ/mol")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.fill_between(psi_deg, free_energy - 2 * free_error, free_energy + 2 * free_error, alpha=0.3, label="± 2 s.e.")
ax.plot(psi_deg, free_energy, "o-", ms=3, label=f"MBAR, κ = {KAPPA:g} kJ/mol/rad²")
ax.set(xlabel="ψ (degrees)", ylabel="PMF (kJ/mol)", xlim=(-180, 180), title="PMF(ψ), φ < 0 half")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "alanine_pmf_psi.png", dpi=120)

# %%
# Unbiased MD: the training data
# ------------------------------
#
# Independent walkers started from umbrella samples spread along ψ (one per window of the run
# above), frames every 0.5 ps (every 20 fs in fast mode), run as tasks on a process pool in full
# mode (the numbers do not depend on it). The paper ran 20 ns from one structure; the spread starts
# let a shorter run cover both basins.

# %%
WALKERS, STEPS, SAVE = (12, 1000, 20) if FAST else (12, 400_000, 500)
first_sample = np.unique(windows.window_index.values, return_index=True)[1]
starts = windows.x.values[first_sample[np.linspace(0, len(first_sample) - 1, WALKERS).astype(int)]]
start = time.perf_counter()
with executor() as pool:
    md = alanine.simulate(WALKERS, STEPS, seed=1, x0=starts, save_every=SAVE, executor=pool, progress=not FAST)
md_seconds = time.perf_counter() - start
write_zarr(xr.Dataset({"x": md}), OUT / "alanine_md.zarr", overwrite=True)
frames = md.isel(time=slice(1, None)).values.reshape(-1, alanine.dim)  # the start excluded
angles = alanine.restriction()(frames)
basins = alanine.basins(frames)
populations = {name: float(np.mean(basins == name)) for name in ("beta", "alpha_R", "alpha_L")}
rg = alanine.radius_of_gyration(frames) * 10  # Å
print(f"{WALKERS} x {STEPS * alanine.dt / 1000:g} ns in {md_seconds:.0f} s; {len(frames)} frames; populations "
      + ", ".join(f"{k} {v:.3f}" for k, v in populations.items()) + f"; Rg = {rg.mean():.3f} ± {rg.std():.3f} Å")

# %%
# Windows at ψ = 4 rad with both spring constants
# -----------------------------------------------
#
# The biased samples of Figure 8 (before reweighting). A window's width is 1/√(β(κ + F'')) with F''
# the PMF's curvature at the centre: κ = 500 is ten times stiffer, its ψ about √10 times narrower.

# %%
Z = 4.0
reference_windows, widths = {}, {}
for kappa in (50.0, 500.0):
    window_sampler = UmbrellaSampling(alanine.evolver(), alanine.cv("psi"), kappa, n_steps=US_STEPS * 2,
                                      n_walkers=2 * US_WALKERS, save_every=10, initial=alanine.x0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if FAST else "default", UserWarning)
        window = window_sampler.window(Z, seed=5)
    kept = window.isel(time=slice(window.attrs["warmup_frames"], None))
    reference_windows[kappa] = kept.x.values.reshape(-1, alanine.dim)
    offset = wrapped_difference(kept.xi.values, Z, 2 * math.pi)
    widths[kappa] = float(offset.std())
    print(f"kappa = {kappa:g}: psi = {Z:g} {offset.mean():+.3f} rad, width {offset.std():.3f} rad "
          f"(1/sqrt(beta kappa) = {1 / math.sqrt(alanine.beta * kappa):.3f})")

# %%
# A CcGAN conditioned on ψ (Figures 7 and 8)
# ------------------------------------------
#
# Labels are ψ put on [−1.9, −1.9 + 2π) (`wrap_into`): the cut sits at the sparsely visited
# ψ ≈ −110°, so the β basin (ψ ≈ 150° and its continuation past ±180°) is one interval and ψ = 4 rad
# lies inside the data. Table 3 networks, the hard vicinal loss, states aligned onto the minimized
# structure.

# %%
CUT = -1.9
labels = wrap_into(angles[:, 1], CUT)
gan = CcGAN(preset="table3", noise_dim=8, n_epochs=40 if FAST else 5000, batch_size=128 if FAST else 512, lr=1e-4,
            align_to=alanine.x0)
gan.fit(frames, labels, seed=3, progress=not FAST)
print(f"CcGAN trained on {len(frames)} frames in {gan.training_['seconds']:.0f} s")


def ramachandran(ax, points, title, color="C0"):
    """Generated (φ, ψ) over the density contours of the unbiased MD."""
    density, xe, ye = np.histogram2d(np.degrees(angles[:, 0]), np.degrees(angles[:, 1]), bins=60,
                                     range=[[-180, 180], [-180, 180]])
    ax.contour(0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]), np.log1p(density.T), levels=6, colors="k",
               linewidths=0.6)
    ax.scatter(*np.degrees(points).T, s=2, alpha=0.3, color=color)
    ax.set(xlim=(-180, 180), ylim=(-180, 180), xlabel="φ (degrees)", ylabel="ψ (degrees)", title=title)


N_GENERATED = 2000 if FAST else 20_000
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
generated_at = {}
for ax, (basin, psi_min) in zip(axes, minima.items()):
    z = float(wrap_into(math.radians(psi_min), CUT))
    generated_at[basin] = alanine.restriction()(gan.sample(z, N_GENERATED, seed=4))
    ramachandran(ax, generated_at[basin], f"CcGAN at ψ = {psi_min:.0f}° ({basin})", "C3" if basin == "beta" else "C0")
fig.tight_layout()
fig.savefig(OUT / "fig7_alanine_ccgan.png", dpi=120)

generated = gan.sample(Z, N_GENERATED, seed=6)
generated_angles = alanine.restriction()(generated)
label_error = float(np.abs(wrapped_difference(generated_angles[:, 1], Z, 2 * math.pi)).mean())
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
figure8 = {}
for ax, (kappa, states) in zip(axes, reference_windows.items()):
    us_angles = alanine.restriction()(states)
    # φ on [0, 2π): its cut at φ = 0 lies between the φ < 0 basins and αL, where neither sample goes
    w1_phi = stats.wasserstein_distance(wrap_into(generated_angles[:, 0], 0.0), wrap_into(us_angles[:, 0], 0.0))
    figure8[kappa] = {"W1(phi)": w1_phi, "US psi width": float(us_angles[:, 1].std())}
    ramachandran(ax, generated_angles, f"CcGAN at ψ = 4 vs US, κ = {kappa:g}")
    ax.scatter(*np.degrees(us_angles).T, s=2, alpha=0.3, color="k", label="US (biased)")
    ax.legend(loc="lower left", markerscale=4)
fig.tight_layout()
fig.savefig(OUT / "fig8_alanine_ccgan_vs_us.png", dpi=120)
print(f"CcGAN at psi = 4: label consistency {label_error:.3f} rad; "
      + "; ".join(f"kappa {k:g}: W1(phi) = {v['W1(phi)']:.3f} rad" for k, v in figure8.items()))

# %%
# Generated conformations as molecules
# ------------------------------------
#
# Bond lengths against the force field's equilibrium, and the energy after a short minimization
# (the generator's raw output has bonds stretched by a few hundredths of an ångström, which cost
# energy that a few minimizer steps release).

# %%
_, equilibrium = alanine.bonds()
bond_error = np.abs(alanine.bond_lengths(generated) - equilibrium)
bonds_within = float(np.mean(bond_error < 0.01))
sample = generated[:20 if FAST else 200]
raw_energy = alanine.energy(sample)
relaxed_energy = alanine.energy(alanine.evolver().minimize(sample, tolerance=10.0, max_iterations=200))
md_energy = alanine.energy(frames[:: max(1, len(frames) // len(sample))][: len(sample)])
print(f"bonds within 0.01 nm of equilibrium: {bonds_within:.3f}; "
      f"energy (kJ/mol) median raw {np.median(raw_energy):.0f}, "
      f"after 200 minimizer steps {np.median(relaxed_energy):.1f}, MD frames {np.median(md_energy):.1f}")
