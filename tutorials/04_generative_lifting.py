"""
04 — Generative lifting: a CcGAN and a conditional score model as lifting operators
===================================================================================

A conditional generator trained on fine states labelled by their CV value samples the
conditional equilibrium ν_z at once, with no warm-up. This tutorial reproduces Crabtree et al.'s
Figure 3 (CcGAN on `fast_slow_linear` at x1 = 10 against the exact N(1, 0.05), here with the
score model beside it), Figure 9 (on `caps`, 1-D generator noise draws a curve on the 2-D cap,
2-D noise covers it) and Figure 10 (the 2-D-noise CcGAN conditioned at x1 = 20, outside the
training data on [0, 10]), with numbers against the exact laws.

`EQFREE_FAST=1` trains briefly (the figures then show half-trained generators); figures go to
`EQFREE_OUT` (default `tutorials/output`).
"""

# %%
import math
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from eqfree import systems
from eqfree.lift import CcGAN, ConditionalScoreModel, ExtrapolationWarning
from eqfree.metrics import energy_distance, label_consistency, local_spectra, wasserstein_marginals

FAST = os.environ.get("EQFREE_FAST") == "1"
OUT = Path(os.environ.get("EQFREE_OUT") or Path(__file__).parent / "output")
OUT.mkdir(parents=True, exist_ok=True)
scale = 10 if FAST else 1

# %%
# Figure 3: x2 at x1 = 10 on `fast_slow_linear`
# ---------------------------------------------
#
# Training data: 50 walkers of eq. (2.1) from (0, 1) until x1 ≈ 10 (dt = 0.5, every 20th step).
# The CcGAN has the paper's Table 1 networks and the hard vicinal loss; the score model an MLP
# denoiser with EDM preconditioning, sampled by the probability-flow ODE.

# %%
linear = systems.get("fast_slow_linear")
X = linear.simulate(50, 20_000, dt=0.5, save_every=20, seed=11).isel(time=slice(1, None)).values.reshape(-1, 2)
exact_x2 = stats.norm(1.0, math.sqrt(0.05))

models = {
    "CcGAN": CcGAN(n_epochs=5000 // scale),  # the paper's settings: Table 1, Adam lr 1e-4, 5000 epochs
    "score model": ConditionalScoreModel(n_epochs=4000 // scale),
}
samples, report = {}, {}
for name, model in models.items():
    model.fit(X, X[:, 0], seed=0)
    samples[name] = model.sample(10.0, 10_000, seed=1)
    report[name] = {
        "W1(x2)": wasserstein_marginals(samples[name][:, 1], [exact_x2])[0],
        "KS(x2)": stats.kstest(samples[name][:, 1], exact_x2.cdf).statistic,
        "|x1 - 10|": label_consistency(lambda x: x[:, 0], samples[name], 10.0),
        "training s": model.training_["seconds"],
    }
    print(f"{name:12s} " + "  ".join(f"{key} {value:.4f}" for key, value in report[name].items()))

# %%
fig, axes = plt.subplots(2, 2, figsize=(10, 7), height_ratios=(1, 0.8))
grid = np.linspace(0, 2, 200)
for column, (name, lifted) in enumerate(samples.items()):
    top, bottom = axes[0, column], axes[1, column]
    top.scatter(X[::10, 0], X[::10, 1], c=X[::10, 0], s=1, cmap="viridis", alpha=0.3)
    top.scatter(lifted[:2000, 0], lifted[:2000, 1], s=2, color="tab:red", label=f"{name} at $x_1$ = 10")
    top.set(xlabel="$x_1$", ylabel="$x_2$", title=name)
    top.legend(loc="lower left", markerscale=4)
    bottom.hist(lifted[:, 1], bins=60, density=True, color="tab:red", alpha=0.6, label=name)
    bottom.plot(grid, exact_x2.pdf(grid), color="tab:blue", label="exact N(1, 0.05)")
    bottom.set(xlabel="$x_2$", ylabel="density", title=f"W1 = {report[name]['W1(x2)']:.4f}")
    bottom.legend()
fig.tight_layout()
fig.savefig(OUT / "fig3_generative_x2.png", dpi=120)

# %%
# Figure 9: the noise dimension on `caps`
# ---------------------------------------
#
# The fast pair (x2, x3) has a 2-D Gaussian law at every x1; seen through map (6.2) it fills a cap
# (y2, y3) = (x2² + x3², x3). A generator G(ζ, z) with one noise variable draws, at fixed z, a
# curve ζ ↦ G(ζ, z); two noise variables can fill the cap. The local covariance spectra of the
# samples (λ2/λ1 of each sample's 20 nearest neighbours) make this a number: near 0 on a curve,
# as for exact samples on a region. Networks: Table 2, 6000 epochs (the paper trained 15000;
# fast mode: 4 × 64 generator, 600 epochs).

# %%
caps = systems.get("caps")
v2, v3 = caps.conditional_variances()
rng = np.random.default_rng(0)
x0 = np.column_stack([np.zeros(50), rng.normal(0, math.sqrt(v2), 50), rng.normal(0, math.sqrt(v3), 50)])
x_caps = caps.simulate(50, 10_000, seed=3, x0=x0, save_every=10).values.reshape(-1, 3)
Y = caps.observe(x_caps)


def exact_caps(x1, n, seed):
    """n exact conditional samples at x1, observed through (6.2)."""
    rng = np.random.default_rng(seed)
    return caps.observe(np.column_stack([np.full(n, x1), rng.normal(0, math.sqrt(v2), n),
                                         rng.normal(0, math.sqrt(v3), n)]))


def caps_label(y):
    """x1 = y1 − y2, the restriction in observed coordinates."""
    return y[:, 0] - y[:, 1]


networks = {"generator": [64] * 4, "activation": "leaky_relu", "discriminator": [64] * 3} if FAST else "table2"
cap_models = {d: CcGAN(noise_dim=d, preset=networks, n_epochs=6000 // scale, lr=2e-4).fit(Y, x_caps[:, 0], seed=0)
              for d in (1, 2)}
reference = exact_caps(0.0, 3000, seed=4)
ratio = {"exact": np.median(local_spectra(reference[:, 1:])[:, 1])}
cap_samples = {}
for d, model in cap_models.items():
    cap_samples[d] = model.sample(0.0, 3000, seed=1)
    ratio[d] = np.median(local_spectra(cap_samples[d][:, 1:])[:, 1])
print("median local λ2/λ1 at x1 = 0: " + ", ".join(f"{k}: {v:.2g}" for k, v in ratio.items()))

fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True, sharey=True)
for ax, d in zip(axes, (1, 2)):
    ax.scatter(reference[:, 1], reference[:, 2], s=2, color="0.75", label="exact at $x_1$ = 0")
    ax.scatter(cap_samples[d][:, 1], cap_samples[d][:, 2], s=2, color="tab:red", label=f"CcGAN, {d}-D noise")
    ax.set(xlabel="$y_2 = x_2^2 + x_3^2$", ylabel="$y_3 = x_3$", title=f"{d}-D noise: median λ2/λ1 = {ratio[d]:.2g}")
    ax.legend(loc="upper right", markerscale=4)
fig.tight_layout()
fig.savefig(OUT / "fig9_caps_noise_dimension.png", dpi=120)

# %%
# Figure 10: extrapolation to x1 = 20
# -----------------------------------
#
# The 2-D-noise CcGAN conditioned at x1 = 10 (inside the data) and at x1 = 20 (twice the largest
# training label). Sampling there warns of extrapolation; the numbers say how far the samples are
# from the exact conditional law: the label error `|y1 − y2 − z|`, W1 per observed coordinate and the
# energy distance, each beside the same statistic for exact samples of the same size (the floor).

# %%
extrapolation = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ExtrapolationWarning)  # expected at x1 = 20
    for z in (10.0, 20.0):
        lifted, exact = cap_models[2].sample(z, 3000, seed=5), exact_caps(z, 3000, seed=6)
        floor = exact_caps(z, 3000, seed=7)
        extrapolation[z] = {
            "label": label_consistency(caps_label, lifted, z),
            "W1": wasserstein_marginals(lifted, exact), "W1 floor": wasserstein_marginals(floor, exact),
            "energy": energy_distance(lifted, exact), "energy floor": energy_distance(floor, exact),
            "samples": lifted,
        }
        e = extrapolation[z]
        print(f"x1 = {z:g}: label error {e['label']:.3f}; W1 (y1, y2, y3) {np.round(e['W1'], 4)} "
              f"(exact-vs-exact {np.round(e['W1 floor'], 4)}); energy distance {e['energy']:.4f} "
              f"(floor {e['energy floor']:.4f})")

fig, ax = plt.subplots(figsize=(7, 4))
ax.scatter(Y[::20, 0], Y[::20, 1], c=x_caps[::20, 0], s=1, cmap="viridis", alpha=0.4)
for z, e in extrapolation.items():
    ax.scatter(e["samples"][:, 0], e["samples"][:, 1], s=2, color="tab:red")
    ax.axvline(z, color="0.5", lw=0.5)
ax.set(xlabel="$y_1 = x_1 + x_2^2 + x_3^2$", ylabel="$y_2$",
       title="CcGAN (2-D noise) at $x_1$ = 10 and 20; data on [0, 10]")
fig.tight_layout()
fig.savefig(OUT / "fig10_caps_extrapolation.png", dpi=120)
