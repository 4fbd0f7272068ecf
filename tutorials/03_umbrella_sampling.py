"""
03 — Umbrella sampling: lifting by biased dynamics, and free energies by WHAM and MBAR
======================================================================================

Umbrella sampling adds a harmonic bias κ/2 (ξ(x) − z)² on a collective variable ξ to the fine
dynamics, so the walkers settle near ξ = z and sample the conditional equilibrium there. This
tutorial reproduces Figures 2–3 of Crabtree, Bello-Rivas, Ferguson & Kevrekidis ("GANs and
closures") on `fast_slow_linear` — a window at x1 = 10 biased
on the known x1 (eq. 2.2) and on the learned diffusion-map coordinate Φ (eq. 2.3), and the x2
histogram against the exact N(1, 0.05) — then the potential of mean force of `double_well` along
x1 from 25 windows, unbiased by WHAM and by MBAR, against quadrature.

`EQFREE_FAST=1` shortens every run; figures go to `EQFREE_OUT` (default `tutorials/output`).
"""

# %%
import math
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import integrate, stats

from eqfree import systems
from eqfree.lift import UmbrellaSampling
from eqfree.restrict import DiffusionMaps, GeometricHarmonics
from eqfree.reweight import import_windows, reweight_windows

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)
scale = 4 if FAST else 1

# %%
# Figure 2: windows at x1 = 10 on the known and on the learned coordinate
# -----------------------------------------------------------------------
#
# The data: one unbiased run at dt = 1 (x1 drifts from 0 to about 20). Φ is the geometric-harmonics
# extension of the first diffusion-map coordinate; its window sits at φ0 = Φ(10, 1) with a spring
# constant that acts like κ = 0.5 on x1 (κ_Φ = 0.5 / (∂Φ/∂x1)²). The window on x1 starts at (0, 1),
# as in the paper; the one on Φ starts from the data points nearest φ0 — Φ is only learned where the
# data are, and a kernel extension flattens out beyond them, where a bias on it has no grip.

# %%
linear = systems.get("fast_slow_linear")
data = linear.simulate(1, 20_000, seed=1)[::20 * scale, 0].values
maps = DiffusionMaps(n_components=1).fit(data, seed=0)
phi = maps.fit_transform(data, seed=0)[:, 0]
Phi = GeometricHarmonics(epsilon=4 * maps.epsilon_).fit(data, phi)
target = np.array([[10.0, 1.0]])
phi0, slope = float(Phi(target)[0, 0]), float(Phi.gradient(target)[0, 0, 0])

steps = 3000 // scale
known = UmbrellaSampling(linear.evolver(1.0), "x1", 0.5, n_steps=steps, n_walkers=20, save_every=2, initial=linear.x0)
learned = UmbrellaSampling(linear.evolver(1.0), Phi, 0.5 / slope**2, n_steps=steps, n_walkers=20, save_every=2,
                           initial=data)
windows = {"known $x_1$": known.window(10.0, seed=2), r"learned $\phi$": learned.window(phi0, seed=3)}


def settled(window):
    """Samples after the detected warm-up, thinned by the statistical inefficiency."""
    kept = window.isel(time=slice(window.attrs["warmup_frames"], None, window.attrs["stride"]))
    return kept.x.values.reshape(-1, 2)


samples = {name: settled(window) for name, window in windows.items()}
exact = linear.sample_conditional(10.0, 200_000, seed=4)[:, 1]
w1 = {name: stats.wasserstein_distance(x[:, 1], exact) for name, x in samples.items()}
ks = {name: stats.kstest(x[:, 1], "norm", args=(1.0, math.sqrt(0.05))).statistic for name, x in samples.items()}
for name in windows:
    print(f"{name:14s}: {len(samples[name])} samples, x1 median {np.median(samples[name][:, 0]):.3f}, "
          f"W1(x2, N(1, 0.05)) = {w1[name]:.4f}, KS = {ks[name]:.4f}")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for ax, (name, window), colour in zip(axes, windows.items(), (data[:, 0], phi)):
    ax.scatter(data[:, 0], data[:, 1], c=colour, s=2, cmap="viridis")
    first = window.x.values[: window.attrs["warmup_frames"] + 1, 0]  # the approach of one walker
    ax.plot(first[:, 0], first[:, 1], "o", color="darkorange", ms=4, label="warm-up of walker 0")
    ax.scatter(*samples[name].T, s=2, color="orange", label="umbrella samples")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=f"US at $x_1$ = 10 biased on the {name}")
    ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig(OUT / "fig2_umbrella_windows.png", dpi=120)

# %%
# Figure 3: the x2 samples against the exact conditional density
# --------------------------------------------------------------

# %%
fig, ax = plt.subplots(figsize=(6, 4))
grid = np.linspace(0, 2, 200)
for name, x in samples.items():
    ax.hist(x[:, 1], bins=40, density=True, histtype="step", lw=1.5, label=f"US on the {name} (W1 = {w1[name]:.3f})")
ax.plot(grid, linear.conditional_density(grid), "k", label="exact N(1, 0.05)")
ax.set(xlabel="$x_2$", ylabel="density", title="conditional law of $x_2$ at $x_1$ = 10")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "fig3_umbrella_x2.png", dpi=120)

# %%
# The double-well PMF from 25 windows
# -----------------------------------
#
# κ = 20 kT per unit², dt = 5e-4 (Euler–Maruyama's invariant law deviates by about `dt |U'|²/4` kT on the
# steep walls), all windows advanced together as one ensemble. WHAM solves the binless
# self-consistent equations (each sample keeps its own bias energies, so the bins only histogram the
# unbiased weights); MBAR goes through pymbar; both take their error bars from a bootstrap of whole
# walkers. The PMF is zero at the free energy density of the bins within 1 kT of the lowest (the
# `reference` region), and its errors are those of differences to it. The exact PMF is −log ∫ e^{−U} dx2
# averaged over each histogram bin, referenced to the same region.

# %%
well = systems.get("double_well")
short = 2 if FAST else 1
sampler = UmbrellaSampling(well.evolver(5e-4), "x1", 20.0, n_steps=8000 // short, n_walkers=400 // short,
                           save_every=100 // short, initial=np.zeros(2))
pooled = sampler.run(np.linspace(-3.5, 3.5, 25), seed=5, progress=not FAST)
fits = {name: sampler.reweight(pooled, name, bins=150, seed=0) for name in ("wham", "mbar")}

shift = well.potential(well.x0)
density = lambda x1: math.exp(-(well.potential(np.array([x1, 0.0])) - shift))  # noqa: E731
pmf = fits["mbar"].pmf_
half = pmf.bin_width.values / 2
reference = -np.log([integrate.quad(density, c - h, c + h)[0] / (2 * h) for c, h in zip(pmf.cv.values, half)])
reference -= reference.min()
below = reference < 8
pmf_error, pmf_excess = {}, {}
fig, (ax, err) = plt.subplots(1, 2, figsize=(12, 4.2))
ax.plot(pmf.cv, reference, "k", lw=2, label="exact (quadrature)")
for name, fitted in fits.items():
    estimate = fitted.pmf_
    region, width = estimate.reference.values, estimate.bin_width.values[estimate.reference.values]
    error = estimate.pmf.values - reference - math.log(np.sum(width * np.exp(-reference[region])) / width.sum())
    pmf_error[name] = float(np.abs(error[below]).max())
    pmf_excess[name] = float(np.max(np.abs(error[below]) / (4 * estimate.pmf_stderr.values[below] + 0.07)))
    ax.errorbar(estimate.cv, estimate.pmf, yerr=estimate.pmf_stderr, fmt=".", ms=3, label=name.upper())
    err.errorbar(estimate.cv[below], error[below], yerr=estimate.pmf_stderr[below], fmt=".", ms=3, label=name.upper())
    print(f"{name.upper()}: max |PMF error| where the PMF < 8 kT: {pmf_error[name]:.3f} kT "
          f"({pmf_excess[name]:.2f} of 4 se + 0.07 kT)")
ax.set(xlabel="$x_1$", ylabel="PMF (kT)", ylim=(-0.5, 12), title="double well: PMF along $x_1$")
ax.legend()
err.axhline(0, color="k", lw=0.8)
err.set(xlabel="$x_1$", ylabel="estimate − exact (kT)", title="error where the PMF < 8 kT")
err.legend()
fig.tight_layout()
fig.savefig(OUT / "double_well_pmf.png", dpi=120)
print(f"figures written to {OUT}")

# %%
# Windows from another engine
# ---------------------------
#
# Umbrella data run elsewhere come in as text: a centres file (`centre kappa` per series file, pymbar's
# `centers.dat`) and one series per walker — GROMACS xvg, PLUMED COLVAR or plain `time value` columns.
# Here the pooled windows above are written as plain files, one per walker, read back by
# `eqfree.reweight.import_windows` (κ in kT: βκ per unit²) and reweighted: the PMF is the one above.
# `eqfree reweight --centers FILE --series GLOB --kappa-units kT/1 --out PATH` does the same from the shell.

# %%
with tempfile.TemporaryDirectory() as folder:
    lines, files = [], []
    for k, centre in enumerate(pooled.center.values):
        for walker in range(sampler.n_walkers):
            mine = (pooled.window_index.values == k) & (pooled.walker.values == walker)
            path = Path(folder) / f"window{k}_walker{walker}.dat"
            np.savetxt(path, np.column_stack([pooled.frame_time.values[mine], pooled.xi.values[mine]]), fmt="%.17g")
            lines.append(f"{float(centre)!r} {float(pooled.attrs['beta'] * pooled.attrs['kappa'])!r}")
            files.append(path)
    (Path(folder) / "centers.dat").write_text("\n".join(lines) + "\n")
    imported = import_windows(Path(folder) / "centers.dat", files, kappa_units="kT/1")
imported_fit = reweight_windows(imported, "mbar", seed=0, bins=150)
import_difference = float(np.max(np.abs(imported_fit.pmf_.pmf.values - fits["mbar"].pmf_.pmf.values)))
print(f"{imported.sizes['sample']} samples from {len(files)} text files: "
      f"max |PMF difference| {import_difference:.1e} kT")
