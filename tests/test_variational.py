"""Variational coarse-graining on the tilted double well: reverse KL without data, the VAE on exact
samples, the mixed objective, ARD, Laplace, persistence and bad input — against quadrature truths.

U = x1⁴/4 − 3x1² + x1 + x2²/2, β = 1: P(x1 > 0) = 0.00835, ΔF = −log(P(x1 > 0)/P(x1 < 0)) = 4.777,
log Z = 12.065 (systems/double_well.py, by quadrature).
"""

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize

from eqfree import Lift, Restrict, systems
from eqfree.base import load
from eqfree.errors import MissingInputError, NotFittedError
from eqfree.lift.variational import (
    VAE,
    DiagonalLaplace,
    LangevinWalkers,
    RejectedStepWarning,
    ReverseKL,
    TemperingWarning,
    ard_precision,
    tempering_increment,
)
from eqfree.lift.variational.ard import ARDPrior
from eqfree.lift.variational.laplace import ggn_diagonal
from eqfree.lift.variational.latent_prior import fit_mixture_prior, unpack
from eqfree.lift.variational.networks import gaussian_log_density
from eqfree.seeding import child_int
from eqfree.statistics import kish_ess

WELL = systems.get("double_well")
P_RIGHT = 1 - WELL.prob_left()
DELTA_F = -math.log(P_RIGHT / (1 - P_RIGHT))
LOG_Z = WELL.log_partition()
SMALL = (8, 16, 16)


def right(x):
    return x[:, 0] > 0


def exact_samples(n, seed, beta=1.0):
    """Independent draws of exp(−βU): x1 by inverting its CDF on a fine grid, x2 ~ N(0, 1/β)."""
    grid = np.linspace(-6.0, 6.0, 400_001)
    density = np.exp(-beta * (WELL.potential(np.column_stack([grid, 0 * grid])) - WELL.potential(WELL.x0)))
    cdf = integrate.cumulative_trapezoid(density, grid, initial=0.0)
    rng = np.random.default_rng(seed)
    x1 = np.interp(rng.uniform(0, cdf[-1], n), cdf, grid)
    return np.column_stack([x1, rng.normal(0, beta**-0.5, n)])


def entropy():
    """H(p) = β E_p[U] + log Z by quadrature (x2 contributes E[x2²/2] = 1/2)."""
    shift = WELL.potential(WELL.x0)
    u1 = lambda x1: WELL.potential(np.array([x1, 0.0]))
    weight = lambda x1: np.exp(-(u1(x1) - shift))
    mean_u1 = integrate.quad(lambda x1: u1(x1) * weight(x1), -np.inf, np.inf, epsrel=1e-12)[0] / \
        integrate.quad(weight, -np.inf, np.inf, epsrel=1e-12)[0]
    return mean_u1 + 0.5 + LOG_Z


# -- reverse KL without data ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def reverse():
    """At the defaults a user runs, with seed 0 (fixed before any run of these defaults; it is the seed
    that lost the minor well before the Langevin-walker guard)."""
    return ReverseKL().fit(WELL.potential, dim=2, seed=0, progress=False)


def test_reverse_kl_populates_both_wells_and_recovers_the_free_energy(reverse):
    # 10⁵ draws: with the default K = 16 latents per weight they cost about what 10⁶ joint weights (K = 1) did
    sample = reverse.reweight(WELL.potential, 100_000, seed=1)
    n_right = int(right(sample.x).sum())
    raw, raw_se = sample.free_energy_difference(right, weighted=False)
    dF, dF_se = sample.free_energy_difference(right)
    gap = sample.loss + LOG_Z
    print(f"\nreverse KL: {n_right} of {len(sample.x)} draws in the minor well; dF raw {raw:.3f} ± {raw_se:.3f}, "
          f"reweighted {dF:.3f} ± {dF_se:.3f} (exact {DELTA_F:.3f}); "
          f"loss {sample.loss:.4f} ± {sample.loss_stderr:.4f}, "
          f"gap to -log Z {gap:.4f}; importance log Z {sample.log_partition:.4f} (exact {LOG_Z:.4f}); "
          f"Kish ESS {sample.ess / len(sample.x):.3f} n; {reverse.training_['energy_evaluations']} energy evaluations")
    # the generator itself populates the minor well (the walker guard, module doc; measured 4500-5500 of 10⁶
    # draws at seeds 0-1 against 10⁶ P = 8350 exact, so about 500 of these 10⁵); 100 is the floor below which
    # the weights could not estimate P to the 0.3 kT acceptance (relative error of P ≈ (ESS-weighted count)^(−1/2) =
    # 0.1 kT at 100)
    assert n_right >= 100
    # acceptance (issue 26): within 0.3 kT with a standard error below 0.3 kT. The reweighted estimate is
    # consistent (self-normalized importance sampling: bias O(1/ESS) = 1e-5 kT), so it must also lie within
    # 4 of its own standard errors
    assert abs(dF - DELTA_F) < 0.3 and dF_se < 0.3
    assert abs(dF - DELTA_F) < 4 * dF_se
    assert gap > -4 * sample.loss_stderr  # the loss bounds -log Z from above: below it is a bug
    # fit quality (stated bound, not a statistical one): the gap, at most KL(q || p) + E KL(q(z|x) || r(z|x)) (its
    # value at K = 1; K > 1 tightens it towards KL(q || p)), < 0.1 nats, of
    # which the minor well's raw mass m ≈ 0.6 P costs m log(m/P) + (1 − m) log((1 − m)/(1 − P)) ≈ 0.0008
    assert gap < 0.1
    assert sample.ess > 0.05 * len(sample.x)  # at least 5000 effective draws: dF_se ≈ 0.15 kT


@pytest.mark.slow
def test_reverse_kl_free_energy_over_seeds():
    """The defaults over seeds 0-9 (issue 26 acceptance: ≥ 9 of 10 within 0.3 kT with a standard error
    below 0.3 kT; benchmarks/seed_robustness.py prints the same study). Without the Langevin-walker guard
    (``coverage = 0``) the minor well (0.8 % of the mass, worth 0.008 nats of loss) was dropped or
    mis-weighted at 3 of 6 seeds."""
    passed = 0
    for seed in range(10):
        sample = ReverseKL().fit(WELL.potential, dim=2, seed=seed, progress=False).reweight(WELL.potential,
                                                                                           1_000_000, seed=1)
        dF, dF_se = sample.free_energy_difference(right)
        print(f"seed {seed}: {int(right(sample.x).sum())} draws in the minor well, dF {dF:.3f} ± {dF_se:.3f}, "
              f"gap {sample.loss + LOG_Z:.4f}")
        assert sample.loss + LOG_Z > -4 * sample.loss_stderr  # a bound: below it is a bug, at every seed
        passed += abs(dF - DELTA_F) < 0.3 and dF_se < 0.3
    assert passed >= 9


def test_tempering_schedule_is_recorded_and_reaches_the_target(reverse):
    steps, betas = reverse.schedule_
    assert betas[0] == 1e-10 and betas[-1] == 1.0 and np.all(np.diff(betas) > 0) and np.all(np.diff(steps) > 0)
    np.testing.assert_array_equal(reverse.history_["beta"][steps[1:] - 1], betas[:-1])
    # a batch of 256 draws per epoch, and 256 Langevin walkers evaluated once at the start and once per epoch
    assert reverse.training_["energy_evaluations"] == len(reverse.history_["loss"]) * 512 + 256
    assert reverse.training_["rejected_steps"] == 0


def test_tempering_increment_solves_its_equation():
    """Two equally weighted energies 0 and 1: Δ/2 + log((1 + e^−Δ)/2) = threshold, solved by brentq."""
    u, log_w = torch.tensor([0.0, 1.0]), torch.zeros(2)
    increase = lambda d: d / 2 + math.log((1 + math.exp(-d)) / 2)
    for threshold in (1e-3, 1e-2, 0.1):
        exact = optimize.brentq(lambda d, t=threshold: increase(d) - t, 0, 100, xtol=1e-14)
        assert tempering_increment(u, log_w, 0.0, 100.0, threshold) == pytest.approx(exact, rel=1e-9)
    assert tempering_increment(u, log_w, 0.9, 1.0, 0.1) == pytest.approx(0.1)  # capped at the target
    # a weight concentrated on u = 1 makes the ensemble energy-deterministic: no KL increase at all
    assert tempering_increment(u, torch.tensor([-1e3, 0.0]), 0.0, 5.0, 1e-3) == pytest.approx(5.0)


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_langevin_walkers_keep_and_reach_the_boltzmann_law(beta):
    """MALA is exact: on U = x1²/2 + 2 x2² (variances 1/β, 1/(4β)) walkers started from the exact law stay
    there, and walkers started at the origin reach it (variance relaxes like e^{−2hkβ t}: after 1500 steps
    at h = 0.01, below e^{−15}). Each variance of n = 5000 independent walkers has relative standard error
    √(2/n) = 2 %; bound 4 standard errors (two coordinates, two starts)."""
    n, stiffness = 5000, torch.tensor([1.0, 4.0], dtype=torch.float64)
    energy = lambda x: 0.5 * (stiffness * x**2).sum(-1)  # noqa: E731
    exact = 1 / (beta * stiffness.numpy())
    generator = torch.Generator().manual_seed(3)
    starts = {"exact": torch.randn((n, 2), generator=generator, dtype=torch.float64) * torch.as_tensor(exact) ** 0.5,
              "origin": torch.zeros((n, 2), dtype=torch.float64)}
    for name, start in starts.items():
        walkers = LangevinWalkers(start, torch.ones(2, dtype=torch.float64))
        for _ in range(1500 if name == "origin" else 200):
            x = walkers.step(energy, beta, generator)
        variance = x.numpy().var(axis=0)
        print(f"\nMALA from {name} at beta {beta}: variances {variance} (exact {exact}), step {walkers.log_step:.3f}")
        assert np.all(np.abs(variance / exact - 1) < 4 * math.sqrt(2 / n)), (name, variance)
        assert np.all(np.abs(x.numpy().mean(axis=0)) < 4 * np.sqrt(exact / n))


# -- data-driven VAE and the mixed objective ------------------------------------------------------

@pytest.fixture(scope="module")
def training_states():
    return exact_samples(10_000, seed=11)


@pytest.fixture(scope="module")
def vae(training_states):
    model = VAE(widths=SMALL, n_epochs=3000, batch_size=256, lr=3e-3, kl_warmup=1000, importance_samples=8)
    return model.fit(training_states, seed=0, progress=False)


@pytest.fixture(scope="module")
def held_out():
    return exact_samples(20_000, seed=12)


def cross_entropy(model, states, seed, importance_samples=8):
    """Mean ℓ_f (the K-sample bound) over ``states`` and its standard error: E_p ℓ_f ≥ E_p[−log q] ≥ H(p)."""
    noise = torch.as_tensor(np.random.default_rng(seed).standard_normal((importance_samples, len(states), 2)))
    with torch.no_grad():
        terms = model.forward_terms(torch.as_tensor(states), noise).numpy()
    return terms.mean(), terms.std(ddof=1) / math.sqrt(len(terms))


def test_vae_bounds_the_entropy(vae, held_out):
    bound, bound_se = cross_entropy(vae, held_out, seed=0)
    print(f"\nVAE: held-out -ELBO {bound:.4f} ± {bound_se:.4f} >= H(p) = {entropy():.4f}; ARD switched off "
          f"{vae.switched_off_:.1%} of {sum(t.numel() for t in vae.ard_precisions_.values())} decoder parameters")
    assert bound > entropy() - 4 * bound_se  # cross-entropy >= entropy: below it is a bug
    assert bound - entropy() < 0.1
    assert 0 <= vae.switched_off_ < 1


def test_importance_weighted_bound_tightens_with_k(vae, held_out):
    """Burda et al. (2016): E ℓ_f^K is non-increasing in K, and every K bounds −E log q ≥ H(p) from above."""
    x = torch.as_tensor(held_out)
    rng = np.random.default_rng(4)
    with torch.no_grad():
        terms = {k: vae.forward_terms(x, torch.as_tensor(rng.standard_normal((k, len(x), 2)))).numpy()
                 for k in (1, 4, 32)}
    for low, high in ((1, 4), (4, 32)):
        difference = terms[low] - terms[high]
        print(f"\nbound(K={low}) - bound(K={high}) = {difference.mean():.4f} "
              f"± {difference.std(ddof=1) / math.sqrt(len(x)):.4f}")
        # an inequality in expectation: the sample mean of the per-state differences may fall below 0 only by
        # sampling error, so 4 standard errors of that mean over the held-out states (one-sided, P ≈ 3e-5)
        assert difference.mean() > -4 * difference.std(ddof=1) / math.sqrt(len(x))
    # E ℓ_f^K ≥ H(p) (the gap is a KL divergence): likewise 4 standard errors of the mean over the held-out states
    assert terms[32].mean() > entropy() - 4 * terms[32].std(ddof=1) / math.sqrt(len(x))
    elbo = vae.forward_terms(x[:5], torch.as_tensor(rng.standard_normal((5, 2))))
    assert elbo.shape == (5,) and bool(torch.isfinite(elbo).all())


def test_vae_recovers_the_populations(vae, training_states):
    generated = vae.sample(400_000, seed=1)
    p = right(generated).mean()
    # the training set's own fluctuation dominates the error
    se = math.hypot(math.sqrt(P_RIGHT * (1 - P_RIGHT) / len(training_states)), math.sqrt(p * (1 - p) / len(generated)))
    print(f"\nVAE: P(x1 > 0) = {p:.5f} (exact {P_RIGHT:.5f}, data {right(training_states).mean():.5f}, se {se:.5f})")
    # se of P from the training states (binomial) and from the generated draws, combined; 4 se (two-sided,
    # P ≈ 6e-5) with no bias allowance (a consistent model)
    assert abs(p - P_RIGHT) < 4 * se


@pytest.fixture(scope="module")
def mixed(training_states):
    model = ReverseKL(widths=SMALL, n_epochs=4000, beta_start=1e-2, epochs_at_target=0, alpha=0.5)
    return model.fit(WELL.potential, dim=2, seed=1, X=training_states[:1000], progress=False)


def test_mixed_objective_obeys_both_bounds(mixed, held_out):
    sample = mixed.reweight(WELL.potential, 100_000, seed=2)
    forward, forward_se = cross_entropy(mixed, held_out, seed=1)
    dF, dF_se = sample.free_energy_difference(right)
    print(f"\nmixed (alpha 0.5): P raw {right(sample.x).mean():.5f}; dF reweighted {dF:.3f} ± {dF_se:.3f}; reverse "
          f"gap {sample.loss + LOG_Z:.4f} ± {sample.loss_stderr:.4f}; "
          f"forward gap {forward - entropy():.4f} ± {forward_se:.4f}")
    assert set(mixed.history_) == {"loss", "beta", "forward"} and mixed.schedule_[1][-1] == 1.0
    # both gaps are KL divergences (≥ 0): estimated by Monte Carlo, each may fall below 0 by sampling error only —
    # 4 of its standard errors (one-sided, P ≈ 3e-5)
    assert sample.loss + LOG_Z > -4 * sample.loss_stderr
    assert forward - entropy() > -4 * forward_se


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.5, 0.99])
def test_mixed_objective_free_energy_over_seeds(alpha):
    """The mixed objective at its defaults over seeds 0–9, each on 5000 exact states of its own (≈ 42 in the minor
    well, which fix ΔF to ± 0.15 kT), reweighted with 10⁶ draws (issue 26's acceptance: ≥ 8 of 10 within 0.3 kT
    with a standard error below 0.3 kT; benchmarks/seed_robustness.py prints the same study). Measured
    2026-12-05: α = 0.5 passes 10 of 10 (errors −0.020 to +0.029 kT), α = 0.99 10 of 10 (−0.142 to +0.287 kT,
    standard errors 0.020–0.231); before the data term's warm-up, its K = 8 bound, the encoder's sleep term and
    the K = 16 weights, α = 0.99 passed 1 of 10 (the latent collapsed: no draw in the minor well), α = 0.5 8."""
    passed = 0
    for seed in range(10):
        model = ReverseKL(alpha=alpha).fit(WELL.potential, dim=2, seed=seed, X=exact_samples(5000, 100 + seed),
                                           progress=False)
        sample = model.reweight(WELL.potential, 1_000_000, seed=1)
        dF, dF_se = sample.free_energy_difference(right)
        print(f"alpha {alpha}, seed {seed}: dF {dF:.3f} ± {dF_se:.3f}, gap {sample.loss + LOG_Z:.4f}")
        assert sample.loss + LOG_Z > -4 * sample.loss_stderr  # a bound: below it is a bug, at every seed
        passed += abs(dF - DELTA_F) < 0.3 and dF_se < 0.3
    assert passed >= 8  # the specification (docstring)


@pytest.mark.parametrize("k", [1, 16])
def test_importance_weights_are_unbiased_whatever_the_encoder(vae, k):
    """E[w] = ∫ exp(−βU) dx for every K and every encoder r (:mod:`~eqfree.lift.variational.importance`). Here
    exp(−U) is the normalized Gaussian N(x; (−2.5, 0), diag(0.3², 0.7²)) inside q's support, so the mean weight
    estimates 1, with the encoder moved off the posterior (means + 0.5, variances halved): there taking all K
    latents from r (the importance-weighted bound's estimate of q(x)) gives 1/q̂ a Jensen bias upward."""
    model = copy.deepcopy(vae)
    with torch.no_grad():
        model.networks_["encoder"].mean.bias += 0.5
        model.networks_["encoder"].log_var.bias -= math.log(2.0)
    mean, sd = torch.tensor([-2.5, 0.0], dtype=torch.float64), torch.tensor([0.3, 0.7], dtype=torch.float64)

    def gaussian(x):  # −log N(x; mean, diag sd²)
        return (0.5 * ((x - mean) / sd) ** 2 + torch.log(sd) + 0.5 * math.log(2 * math.pi)).sum(-1)

    w = np.exp(model.reweight(gaussian, 200_000, seed=5, importance_samples=k).log_weights)
    se = w.std(ddof=1) / math.sqrt(len(w))
    print(f"\nK = {k}: mean weight {w.mean():.4f} ± {se:.4f} (exact 1)")
    assert abs(w.mean() - 1) < 4 * se  # unbiased: 4 standard errors of the mean (two-sided, P ≈ 6e-5)


# -- ARD, Laplace ---------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(theta=st.floats(-10, 10), a0=st.floats(1e-6, 5.0), b0=st.floats(1e-6, 5.0))
def test_ard_update_is_the_posterior_mean_of_the_precision(theta, a0, b0):
    """⟨τ⟩ under p(τ|θ) ∝ Gamma(τ; a0, b0) N(θ; 0, 1/τ) ∝ τ^(a0 − ½) exp(−τ (b0 + θ²/2)), by
    quadrature over s = log τ of ∫ τ^k p dτ (k = 0, 1), each integrand scaled by its maximum."""
    rate = b0 + theta**2 / 2

    def log_moment(k):
        c = k + a0 + 0.5
        h = lambda s: c * s - rate * math.exp(s)
        top = math.log(c / rate)
        value = integrate.quad(lambda s: math.exp(h(s) - h(top)), top - 60 / c, top + 10, points=[top], limit=200,
                               epsabs=0, epsrel=1e-11)[0]
        return h(top) + math.log(value)

    assert ard_precision(theta, a0, b0) == pytest.approx(math.exp(log_moment(1) - log_moment(0)), rel=1e-7)


def test_ard_penalty_gradient_is_the_m_step():
    theta = torch.nn.Parameter(torch.tensor([0.5, -2.0, 1e-4], dtype=torch.float64))
    prior = ARDPrior([theta])
    prior.update()
    prior.penalty().backward()
    np.testing.assert_allclose(theta.grad.numpy(), (ard_precision(theta, 1e-5, 1e-5) * theta).detach().numpy())
    # ⟨τ⟩^(−1/2) = (2 (b0 + θ²/2)/(2 a0 + 1))^½ = 4.5e-3 for θ = 1e-4: off at tolerance 1e-2, not at 1e-3
    assert prior.switched_off(1e-2) == pytest.approx(1 / 3) and prior.switched_off(1e-3) == 0


def test_ggn_diagonal_is_the_hessian_where_residuals_vanish(vae, training_states):
    """With targets replaced by the decoder's own means, the GGN is the exact Hessian of the negative
    log-likelihood; the diagonal ggn_diagonal returns is the Hessian's, and it is a sum over latents."""
    decoder = vae.networks_["decoder"]
    z = torch.as_tensor(vae.encode(training_states[:40]))
    names = [name for name, _ in decoder.mean.named_parameters()]
    shapes = [p.shape for p in decoder.mean.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in decoder.mean.parameters()])
    with torch.no_grad():
        target = decoder(z)

    def nll(vector):
        params, start = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = vector[start:start + math.prod(shape)].reshape(shape)
            start += math.prod(shape)
        mean = torch.func.functional_call(decoder.mean, params, (z,))
        return 0.5 * (((mean - target) ** 2) * torch.exp(-decoder.log_var.detach())).sum()

    hessian = torch.autograd.functional.hessian(nll, flat).diagonal()
    ggn = ggn_diagonal(decoder, z)
    np.testing.assert_allclose(torch.cat([ggn[name].reshape(-1) for name in names]).numpy(), hessian.numpy(),
                               rtol=1e-9, atol=1e-9)
    doubled = ggn_diagonal(decoder, torch.cat([z, z]))
    for name in names:
        np.testing.assert_allclose(doubled[name].numpy(), 2 * ggn[name].numpy(), rtol=1e-12)


def test_laplace_precision_is_the_ggn_at_posterior_latents_plus_the_ard_prior(vae, training_states):
    """Λ_j = Σ_i GGN_j(z_i) + ⟨τ_j⟩ with z_i = μ_φ(x_i) + σ_φ(x_i) ε_i (the noise drawn as fit draws it), and
    N/2 for the decoder log-variances."""
    states = training_states[:40]
    laplace = DiagonalLaplace(latent_components=0).fit(vae, states, seed=5)
    generator = torch.Generator().manual_seed(child_int(5, 0))
    with torch.no_grad():
        z = vae.latent_draws(torch.as_tensor(states), vae.normal((len(states), vae.latent_dim), generator))[0]
    ggn = ggn_diagonal(vae.networks_["decoder"], z)
    for name, value in ggn.items():
        np.testing.assert_allclose(laplace.precision_[name].numpy(),
                                   (value + vae.ard_precisions_[f"decoder.mean.{name}"]).numpy(),
                                   rtol=1e-12)
    np.testing.assert_allclose(laplace.precision_["log_var"].numpy(), 20.0)
    assert laplace.latent_prior_ is None and laplace.latent_covariance_ is None


class IdentityModel:
    """q(x|z) = N(x; z, v I) and r(z|x) = N(z; x, v I): every importance ratio q(x|z)/r(z|x) is 1, so the
    marginal likelihood of a prior p is that of the states under p convolved with N(0, v I)."""

    latent_dim = 2

    def __init__(self, variance: float):
        self.variance = variance

    def normal(self, shape, generator):
        return torch.randn(shape, generator=generator, dtype=torch.float64)

    def latent_draws(self, x, noise):
        z = x + math.sqrt(self.variance) * noise
        log_density = gaussian_log_density(z, x, torch.full_like(x, math.log(self.variance)))
        return z, log_density, log_density


def test_latent_prior_recovers_a_mixture_and_its_counting_error():
    """States from two separated Gaussians (5 % at (2.5, 0), sd 0.3; the rest at (−0.5, 0), sd 0.6) under
    IdentityModel with v = 1e-8: the marginal likelihood is the mixture likelihood of the states, whose
    maximum for separated components is each cluster's share, mean and sd (the unit hyperprior on the means and
    log-scales shifts the rare cluster's by 0.05 and 0.06 of their standard errors). The Laplace variance of the second
    component's logit is then 1/(N π (1 − π)), the binomial counting error on the logit scale."""
    rng = np.random.default_rng(0)
    n, share = 4000, 0.05
    rare = rng.random(n) < share
    z = np.where(rare[:, None], rng.normal([2.5, 0.0], 0.3, (n, 2)), rng.normal([-0.5, 0.0], 0.6, (n, 2)))
    model = IdentityModel(variance=1e-8)
    eta, hessian = fit_mixture_prior(model, torch.as_tensor(z), 2, torch.Generator().manual_seed(1))
    log_weights, means, log_scales = unpack(eta, 2)
    minor = int(torch.argmax(means[:, 0]))
    weight = float(log_weights[minor].exp())
    covariance = torch.linalg.inv(hessian)
    se_logit = math.sqrt(float(covariance[0, 0]))  # a_2: the second component's logit against the first's
    p = rare.mean()
    print(f"rare weight {weight:.4f} (sample share {p:.4f}), logit se {se_logit:.4f} "
          f"(binomial {1 / math.sqrt(n * p * (1 - p)):.4f}), means {means.numpy().round(3).tolist()}")
    # the clusters are ≥ 5 of their sds apart, so the responsibilities are 0 or 1 to < 1e-5 and the maximum is the
    # clusters' own statistics: a tenth of each one's standard error is a generous bound on what is left
    binomial = math.sqrt(p * (1 - p) / n)
    assert abs(weight - p) < 0.1 * binomial
    # the logit's variance is exactly 1/(N w (1 − w)) at the fitted weight w (no coupling to the shapes of separated
    # components); w within a tenth of a binomial se of p changes it by < 0.4 %: 1 % bounds what is left
    np.testing.assert_allclose(se_logit, 1 / math.sqrt(n * p * (1 - p)), rtol=0.01)
    # a tenth of the cluster mean's standard error sd/√n (the hyperprior's pull is 0.05 of it, docstring)
    np.testing.assert_allclose(means[minor].numpy(), z[rare].mean(axis=0), atol=0.1 * 0.3 / math.sqrt(rare.sum()))
    # a tenth of the relative standard error 1/√(2n) of a Gaussian sample's sd (the hyperprior's pull is 0.06 of it)
    np.testing.assert_allclose(log_scales[minor].exp().numpy(), z[rare].std(axis=0),
                               rtol=0.1 / math.sqrt(2 * rare.sum()))


def test_laplace_band_is_a_band_of_posterior_draws(vae, training_states):
    laplace = DiagonalLaplace().fit(vae, training_states[:500], seed=2)
    band = laplace.predictive(vae, lambda x: right(x).astype(float), n_theta=20, n_x=2000, seed=3)
    low, high = band.interval
    assert band.draws.shape == (20,) and low <= band.mean <= high
    again = laplace.predictive(vae, lambda x: right(x).astype(float), n_theta=20, n_x=2000, seed=3)
    np.testing.assert_array_equal(again.draws, band.draws)


def test_laplace_refuses_a_model_trained_after_its_fit(vae, training_states):
    """The approximation keeps its own copy of θ*: a decoder changed in place afterwards (an optimizer step, a
    warm start) is another model, and the band is refused rather than drawn around the wrong mode."""
    model = copy.deepcopy(vae)
    laplace = DiagonalLaplace(latent_components=0).fit(model, training_states[:100], seed=0)
    with torch.no_grad():
        next(model.networks_["decoder"].mean.parameters()).add_(1e-3)
    with pytest.raises(ValueError, match="fitted to another model"):
        laplace.predictive(model, lambda x: x[:, 0], n_theta=2, n_x=10, seed=0)


@pytest.mark.slow
def test_laplace_band_covers_the_exact_population_over_seeds():
    """Issue 26: the 95 % Laplace band of P(x1 > 0) covers the quadrature value 0.00835 in ≥ 8 of 10 seeds
    (each seed its own 2000 exact training states and its own VAE, the fixture's settings). At nominal
    coverage the count is Binomial(10, 0.95): P(count < 8) = 1.2 %. Measured 2026-12-05 with the latent prior
    refitted as a two-component mixture (the default): 10 of 10, half-widths 0.74–1.61 times the binomial
    1.96 √(P(1 − P)/N) (seeds 10–19: 10 of 10, 0.71–2.64); with the prior N(0, I) 3 of 10 (0.22–0.40), and 7 of 10
    with the decoder's GGN at the encoder means, as before."""
    covered = 0
    for seed in range(10):
        states = exact_samples(2000, seed=100 + seed)
        model = VAE(widths=SMALL, n_epochs=3000, batch_size=256, lr=3e-3, kl_warmup=1000, importance_samples=8)
        model.fit(states, seed=seed, progress=False)
        band = DiagonalLaplace().fit(model, states, seed=seed).predictive(
            model, lambda x: right(x).astype(float), n_theta=50, n_x=20_000, seed=seed)
        low, high = band.interval
        print(f"seed {seed}: P(x1 > 0) band [{low:.5f}, {high:.5f}] (exact {P_RIGHT:.5f}), half-width "
              f"{(high - low) / 2 / (1.96 * math.sqrt(P_RIGHT * (1 - P_RIGHT) / 2000)):.2f} binomial")
        covered += low <= P_RIGHT <= high
    # issue 26's acceptance: ≥ 8 of 10 (at nominal coverage P(count < 8) = 1.2 %, docstring)
    assert covered >= 8


# -- invariances, persistence, operators ----------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_loss_terms_are_invariant_to_the_batch_order(vae, reverse, seed):
    rng = np.random.default_rng(seed)
    order = torch.as_tensor(rng.permutation(64))
    x = torch.as_tensor(exact_samples(64, seed))
    noise = torch.as_tensor(rng.standard_normal((64, 2)))
    with torch.no_grad():
        forward = vae.forward_terms(x, noise)
        np.testing.assert_allclose(vae.forward_terms(x[order], noise[order]).numpy(), forward[order].numpy(),
                                   rtol=1e-12)
        z, eps = torch.as_tensor(rng.standard_normal((64, 2))), torch.as_tensor(rng.standard_normal((64, 2)))
        _, _, terms = reverse.reverse_terms(WELL.potential, 1.0, z, eps)
        _, _, permuted = reverse.reverse_terms(WELL.potential, 1.0, z[order], eps[order])
    np.testing.assert_allclose(permuted.numpy(), terms[order].numpy(), rtol=1e-12)
    assert permuted.mean().item() == pytest.approx(terms.mean().item(), rel=1e-12)


@pytest.fixture(scope="module")
def saved(vae, reverse, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"vae": (vae, load(vae.save(root / "vae"))),
            "reverse_kl": (reverse, load(reverse.save(root / "reverse")))}


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), which=st.sampled_from(["vae", "reverse_kl"]),
       z=st.tuples(st.floats(-3, 3), st.floats(-3, 3)))
def test_saved_model_reloads_to_identical_samples(saved, seed, which, z):
    model, loaded = saved[which]
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.sample(50, seed=seed), model.sample(50, seed=seed))
    np.testing.assert_array_equal(loaded(np.array(z), 20, seed=seed), model(np.array(z), 20, seed=seed))
    x = model.sample(10, seed=seed)
    np.testing.assert_array_equal(loaded.encode(x), model.encode(x))
    assert not np.array_equal(model.sample(50, seed=seed), model.sample(50, seed=seed + 1))


def test_saved_model_keeps_its_training_record(saved):
    vae, loaded = saved["vae"]
    assert loaded.switched_off_ == vae.switched_off_
    assert loaded.history_["loss"].tolist() == vae.history_["loss"].tolist()
    for name, tau in vae.ard_precisions_.items():
        torch.testing.assert_close(loaded.ard_precisions_[name], tau)
    reverse, loaded = saved["reverse_kl"]
    np.testing.assert_array_equal(loaded.schedule_[1], reverse.schedule_[1])


def test_decoder_is_a_lift_and_encoder_mean_a_restriction(vae):
    restriction = vae.encoder_restriction()
    assert isinstance(vae, Lift) and isinstance(restriction, Restrict) and restriction.names == ["z1", "z2"]
    x = exact_samples(30, seed=5)
    assert restriction(x).shape == (30, 2) and restriction(x.reshape(3, 10, 2)).shape == (3, 10, 2)
    lifted = vae(np.array([0.5, -0.2]), 4000, seed=1)
    assert lifted.shape == (4000, 2) and lifted.dtype == np.float64
    # q(x|z) is Gaussian around the decoder mean with the learned variance
    sigma = vae.data_.scale * np.exp(0.5 * vae.networks_["decoder"].log_var.detach().numpy())
    np.testing.assert_allclose(lifted.mean(axis=0), vae.decode(np.array([0.5, -0.2])),
                               atol=5 * sigma.max() / math.sqrt(4000))
    # the sd of n Gaussian draws has relative standard error 1/√(2(n − 1)); 5 of them, as for the mean above
    np.testing.assert_allclose(lifted.std(axis=0), sigma, rtol=5 / math.sqrt(2 * 4000))


def test_kish_ess_of_equal_and_degenerate_weights():
    assert kish_ess(np.zeros(100)) == pytest.approx(100)
    assert kish_ess(np.array([0.0, -800.0, -900.0])) == pytest.approx(1)
    assert kish_ess(np.log([1.0, 3.0])) == pytest.approx(16 / 10)


# -- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("latent", [0, -1, 1.5, True])
def test_latent_dimension_below_one_is_refused(latent):
    for cls in (VAE, ReverseKL):
        with pytest.raises(ValueError, match="latent dimension must be an integer >= 1"):
            cls(latent_dim=latent)


def test_non_finite_energy_steps_are_rejected_and_reported():
    def holed(x):  # NaN beyond x1 = 2.8: the far side of the minor well, visited now and then
        u = WELL.potential(x)
        return torch.where(x[:, 0] > 2.8, torch.full_like(u, math.nan), u)

    model = ReverseKL(widths=SMALL, n_epochs=300, beta_start=0.2, epochs_at_target=300)
    with pytest.warns(RejectedStepWarning, match=r"\d+ of 300 training steps were rejected"), \
            pytest.warns(TemperingWarning, match="tempering reached beta"):
        model.fit(holed, dim=2, seed=0, progress=False)
    rejected = model.training_["rejected_steps"]
    assert 0 < rejected == int(np.isnan(model.history_["loss"]).sum())
    assert all(torch.isfinite(p).all() for p in model.networks_.parameters())

    with pytest.raises(FloatingPointError, match="50 consecutive training steps"):
        ReverseKL(widths=SMALL, n_epochs=100).fit(lambda x: x[:, 0] * math.inf, dim=2, seed=0, progress=False)


def test_other_bad_input_is_refused(vae):
    with pytest.raises(ValueError, match=r"the energy returned shape \(256, 1\)"):
        ReverseKL(widths=SMALL, n_epochs=5).fit(lambda x: x[:, :1], dim=2, seed=0, progress=False)
    with pytest.raises(ValueError, match="mixed objective needs both data X and 0 < alpha < 1"):
        ReverseKL(widths=SMALL, n_epochs=5, alpha=0.5).fit(WELL.potential, dim=2, seed=0, progress=False)
    with pytest.raises(ValueError, match="alpha weighs the forward"):
        ReverseKL(alpha=1.0)
    with pytest.raises(ValueError, match=r"off_tolerance must exceed sqrt\(b0/\(a0 \+ 1/2\)\) = 0.00447"):
        VAE(off_tolerance=1e-3)
    with pytest.raises(ValueError, match="importance_samples must be"):
        VAE(importance_samples=0)
    with pytest.raises(ValueError, match=r"X has non-finite values in 1 sample\(s\) \(first at index 2\)"):
        VAE(n_epochs=5).fit(np.where(np.arange(10)[:, None] == 2, np.nan, np.ones((10, 2))), seed=0, progress=False)
    with pytest.raises(ValueError, match=r"lifting takes one finite latent value of shape \(2,\)"):
        vae(np.zeros(3), 5, seed=0)
    with pytest.raises(NotFittedError, match="not fitted"):
        VAE().sample(5, seed=0)
    with pytest.raises(ValueError, match="latent_components must be an integer >= 0"):
        DiagonalLaplace(latent_components=-1)
    with pytest.raises(ValueError, match="3 training states cannot determine a latent prior of 2 components"):
        DiagonalLaplace().fit(vae, exact_samples(3, 0), seed=0)
    with pytest.raises(TypeError, match="pass one explicitly"):
        vae.sample(5, seed=None)
    with pytest.warns(TemperingWarning, match="tempering reached beta"):
        ReverseKL(widths=SMALL, n_epochs=20, temper_every=10).fit(WELL.potential, dim=2, seed=0, progress=False)


def test_load_refuses_what_is_not_a_model(tmp_path):
    with pytest.raises(MissingInputError, match="is not a saved eqfree estimator"):
        load(tmp_path)
