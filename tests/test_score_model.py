"""Conditional score model: acceptance on eq. (2.1), samplers against exact Gaussian denoisers,
the trained denoiser against its closed form, reproducibility, persistence, argument checks."""

import functools
import time

import numpy as np
import pytest
import torch
from scipy import stats

from eqfree import systems
from eqfree.base import load
from eqfree.lift.generative import ExtrapolationWarning
from eqfree.lift.generative.score import ConditionalScoreModel, karras_sigmas
from eqfree.scaling import DataScaler, LabelScaler

#: small, fast configuration of the acceptance test (about 5–15 s of training on one thread)
FAST = dict(n_epochs=4000, batch_size=512, hidden=(64, 64, 64), lr=2e-3, ema_decay=0.9995)
X2_MEAN, X2_VAR = 1.0, 0.05  # exact conditional law of x2 given x1 (eq. 2.1)


@pytest.fixture(scope="module")
def trained(fast_slow_training_data):
    X, y = fast_slow_training_data
    model = ConditionalScoreModel(**FAST).fit(X, y, seed=0, progress=False)
    print(f"\nscore model trained in {model.training_['seconds']:.1f} s, "
          f"final loss {model.history_['loss'][-200:].mean():.4f}")
    return model


def exact_x2_quantiles(m: int = 100_000) -> np.ndarray:
    """The exact law N(1, 0.05) as m quantiles at (i − ½)/m: W1 to it is W1 to the law up to O(1/m)."""
    return stats.norm.ppf((np.arange(m) + 0.5) / m, loc=X2_MEAN, scale=np.sqrt(X2_VAR))


#: the law the model is trained on: x2 | x1 of the default Leimkuhler–Matthews scheme at the data's dt = 0.5
#: (tests/conftest.py), exact for this OU coordinate: 0.05 (the 50 000 training states have 0.0499 ± 0.0005;
#: Euler–Maruyama's 0.05128, the value used here before, is not the law of the data)
TRAINING_VAR = systems.get("fast_slow_linear").exact_lift(0.5).variance  # 0.05


#: walkers per data set of the over-seeds studies (here, test_ccgan.py, benchmarks/seed_robustness.py). Each data
#: set's own least-squares line at x1 = 10 is off the law by 0.44 standard errors of 4000 draws (root mean square
#: over simulation seeds 100-139; 0.88 with the fixture's 50 walkers), so a generator of each data set's law passes
#: a seed with probability ≈ P(|N(0, 1.09)| < 3) · 0.9973 = 0.991 and ≥ 9 of 10 with probability 0.997 (0.97 at 50)
SEED_WALKERS = 200


def seed_data(seed: int) -> np.ndarray:
    """States (N, 2) of eq. (2.1) for an over-seeds study: SEED_WALKERS walkers of their own (simulation seed
    100 + seed), dt = 0.5, every 20th step, as the fixture."""
    trajectories = systems.get("fast_slow_linear").simulate(SEED_WALKERS, 20_000, dt=0.5, save_every=20,
                                                             seed=100 + seed)
    return trajectories.isel(time=slice(1, None)).values.reshape(-1, 2)


@functools.cache
def perfect_sampler_w1(n: int, replicates: int = 200) -> tuple[float, float]:
    """Mean and sd of W1(x2, N(1, 0.05)) for n independent draws of the training law N(1, v), v =
    TRAINING_VAR, over independent replicates: what a perfect sampler of the training data scores (v = 0.05:
    the training law is the exact law)."""
    rng, quantiles = np.random.default_rng(0), exact_x2_quantiles()
    scores = [stats.wasserstein_distance(rng.normal(X2_MEAN, np.sqrt(TRAINING_VAR), n), quantiles)
              for _ in range(replicates)]
    return float(np.mean(scores)), float(np.std(scores, ddof=1))


def assert_training_law(x2, w1):
    """n draws of x2 against the training law N(1, v), no model-bias allowance: the mean within 4 standard
    errors √(v/n), the variance within 4 standard errors v √(2/(n − 1)) (Gaussian law), and W1 within
    4 sd of a perfect sampler's mean score (old bound: W1 < 0.02, where a perfect sampler scores 0.007 and a
    9 % error in the standard deviation would still pass)."""
    n = len(x2)
    perfect, spread = perfect_sampler_w1(n)
    assert abs(x2.mean() - X2_MEAN) < 4 * np.sqrt(TRAINING_VAR / n)
    assert abs(x2.var(ddof=1) - TRAINING_VAR) < 4 * TRAINING_VAR * np.sqrt(2 / (n - 1))
    assert w1 < perfect + 4 * spread


# -- acceptance (issue): eq. (2.1), x1 = 10 ----------------------------------------------------------
@pytest.mark.parametrize("sampler, n_levels", [("ode", 64), ("sde", 256)])
def test_samples_at_x1_10_follow_the_exact_conditional_law(trained, sampler, n_levels):
    trained.set_sampler(sampler, n_levels)
    start = time.perf_counter()
    samples = trained.sample(10.0, 4000, seed=5)
    seconds = time.perf_counter() - start
    w1 = stats.wasserstein_distance(samples[:, 1], exact_x2_quantiles())
    label_error = np.abs(samples[:, 0] - 10.0).mean()
    mean, var = samples[:, 1].mean(), samples[:, 1].var(ddof=1)
    print(f"\n{sampler} ({trained.levels} levels, {seconds:.2f} s): W1(x2, N(1, 0.05)) = {w1:.4f} (perfect sampler "
          f"{perfect_sampler_w1(len(samples))}), x2 mean {mean:.4f} var {var:.5f} (training law 1, "
          f"{TRAINING_VAR:.5f}; se {np.sqrt(TRAINING_VAR / len(samples)):.4f}, "
          f"{TRAINING_VAR * np.sqrt(2 / (len(samples) - 1)):.5f}), "
          f"mean |x1 - 10| = {label_error:.4f}")
    assert samples.shape == (4000, 2)
    assert_training_law(samples[:, 1], w1)
    assert label_error < 0.05  # 0.017 training-data standard deviations of x1


def test_extrapolation_to_x1_20_as_in_the_seed_paper(trained):
    """Trained on x1 ∈ [0, 10.3], sampled at x1 = 20 (Crabtree et al.'s test): allowed with a warning.
    Not guaranteed, measured: x1 within 1 of 20 on average (5 %), x2 still N(1, 0.05) to W1 < 0.02."""
    trained.set_sampler("ode", 64)
    with pytest.warns(ExtrapolationWarning, match="outside the training labels"):
        samples = trained.sample(20.0, 4000, seed=6)
    w1 = stats.wasserstein_distance(samples[:, 1], exact_x2_quantiles())
    print(f"\nat x1 = 20: mean x1 = {samples[:, 0].mean():.3f}, W1(x2, N(1, 0.05)) = {w1:.4f}")
    # specifications, measured (docstring: "not guaranteed"): outside the training labels the model is bound to no
    # truth, so these are not standard-error bounds — x1 within 1 of 20 (5 %), W1(x2) < 0.02 (a perfect sampler of
    # 4000 draws scores ≈ 1.29σ/√4000 = 0.0046)
    assert abs(samples[:, 0].mean() - 20.0) < 1.0
    assert w1 < 0.02


def test_trained_denoiser_matches_the_gaussian_closed_form(trained):
    """Given the label, x1 is a point mass at the label and x2 ~ N(1, v) (v = TRAINING_VAR, the data's law: the
    Leimkuhler–Matthews chain keeps it exact at dt = 0.5), so in scaled units the ideal denoiser is
    D*_1 = x̃1(ỹ) and D*_2 = (s² x2 + σ² μ)/(s² + σ²), with μ, s² the scaled mean and variance."""
    mu = trained.data_.transform(np.array([0.0, X2_MEAN]))[1]
    var = TRAINING_VAR / trained.data_.scale[1] ** 2
    rng, n, errors = np.random.default_rng(7), 2000, []
    for label in (0.1, 0.5, 0.9):
        x1 = trained.data_.transform(np.array([trained.labels_.inverse(label), 0.0]))[0]
        for sigma in (0.1, 0.3, 1.0, 3.0):
            clean = np.column_stack([np.full(n, x1), rng.normal(mu, np.sqrt(var), n)])
            noisy = clean + sigma * rng.standard_normal(clean.shape)
            with torch.inference_mode():
                d = trained.denoise(torch.as_tensor(noisy, dtype=torch.float32), sigma, torch.full((n,), label))
            ideal = np.column_stack([clean[:, 0], (var * noisy[:, 1] + sigma**2 * mu) / (var + sigma**2)])
            errors.append(np.sqrt(np.mean((d.double().numpy() - ideal) ** 2, axis=0)))
    worst = np.max(errors, axis=0)
    print(f"\nRMS |D - D*| in scaled units (x1, x2), worst over labels and sigmas: {worst}")
    # An accuracy specification of the trained network (FAST training), not a standard-error bound: no theory gives the
    # error of 4000 Adam epochs, so the bound states what a trained denoiser must reach — RMS |D − D*| < 0.1 in scaled
    # units (a tenth of the data's scaled sd ≈ 1) at every label and σ ∈ {0.1, 0.3, 1, 3}. What it protects: the
    # samplers integrate the score (D − x)/σ², so at the smallest σ the sample moves with D itself; an error of 0.1 in
    # x2's scaled units (a tenth of its sd, ≈ 0.022 in x2) left there would move x2's mean by up to 6 of its standard
    # errors over 4000 draws (√(0.05/4000) = 0.0035), which the moment checks of the acceptance test above catch; here
    # the fault is localized to the network (measured: 0.045 in x1, 0.020 in x2). The Monte Carlo noise of the RMS over
    # n = 2000 points is ≈ 1/√(2n) = 1.6 % of it, negligible against the specification
    assert np.all(worst < 0.1)


# -- samplers with the exact denoiser of Gaussian data ------------------------------------------------
M_SLOPE, M_OFFSET, S = np.array([2.0, -1.0]), np.array([-1.0, 0.5]), np.array([1.0, 0.3])


def exact_gaussian_model(monkeypatch, **params) -> ConditionalScoreModel:
    """A 'trained' model whose denoiser is the exact one for x | ỹ ~ N(m(ỹ), diag S²),
    m(ỹ) = M_OFFSET + M_SLOPE ỹ, with identity scalings: the samplers alone are tested."""
    model = ConditionalScoreModel(**params)
    model.labels_, model.data_, model.dim_ = LabelScaler(0.0, 1.0), DataScaler((0.0, 0.0), (1.0, 1.0)), 2
    model.label_range_ = (0.0, 1.0)
    model.networks_ = model._build(2)

    def denoise(x, sigma, labels):
        var, offset, slope = (torch.as_tensor(a, dtype=x.dtype) for a in (S**2, M_OFFSET, M_SLOPE))
        m = offset + labels.reshape(-1, 1).to(x.dtype) * slope
        return (var * x + sigma**2 * m) / (var + sigma**2)

    monkeypatch.setattr(model, "denoise", denoise)
    return model


@pytest.mark.parametrize("sampler, n_levels", [("ode", 128), ("sde", 4096)])
def test_samplers_reproduce_a_gaussian_from_its_exact_denoiser(monkeypatch, sampler, n_levels):
    """At these step counts the discretization bias of the variance is below 0.3 %, a quarter of a
    standard error; mean and variance must match within 4 standard errors."""
    n, label = 40_000, 0.25
    model = exact_gaussian_model(monkeypatch, sampler=sampler, n_levels=n_levels)
    samples = model.sample(label, n, seed=3)
    mean, var = M_OFFSET + M_SLOPE * label, S**2
    z_mean = (samples.mean(axis=0) - mean) / (S / np.sqrt(n))
    z_var = (samples.var(axis=0) / var - 1) / np.sqrt(2 / n)
    print(f"\n{sampler}: standardized errors of the mean {z_mean}, of the variance {z_var}")
    # the docstring's bound: 4 standard errors of a Gaussian's mean, s/√n, and variance, √(2/n) relative, with the
    # discretization bias a quarter of one
    assert np.all(np.abs(z_mean) < 4) and np.all(np.abs(z_var) < 4)


def test_sde_sampler_has_the_euler_maruyama_variance_predicted_for_few_steps(monkeypatch):
    """With N = 64 levels the reverse-SDE update x ← x + Δ s + √Δ ξ (Δ = σ_i² − σ_{i+1}²), then D,
    maps variance v at σ_i to v B²/A² + Δ (A = s² + σ_i², B = s² + σ_{i+1}²): the recursion predicts
    the samples' variance (here 17 % and 20 % too large), which the samples must match within 4 SE."""
    n, n_levels = 40_000, 64
    model = exact_gaussian_model(monkeypatch, sampler="sde", n_levels=n_levels)
    sigmas = np.array(karras_sigmas(n_levels, 0.002, 80.0, 7.0))
    variance = np.full(2, sigmas[0] ** 2)
    for sigma, sigma_next in zip(sigmas[:-2], sigmas[1:-1]):
        a, b = S**2 + sigma**2, S**2 + sigma_next**2
        variance = variance * (b / a) ** 2 + (a - b)
    predicted = variance * (S**2 / (S**2 + sigmas[-2] ** 2)) ** 2
    samples = model.sample(0.5, n, seed=4)
    z = (samples.var(axis=0) / predicted - 1) / np.sqrt(2 / n)
    print(f"\nsde, 64 levels: predicted variance / s^2 = {predicted / S**2}, standardized errors {z}")
    # deterministic (the recursion): 17 % and 20 % (docstring); 1.15 is the size of the effect the check must see
    assert np.all(predicted / S**2 > 1.15)
    assert np.all(np.abs(z) < 4)


def test_ode_sampler_converges_at_second_order(monkeypatch):
    """The probability flow of N(m, s²) data is x(σ) − m = (x_0 − m) √((s² + σ²)/(s² + σ_max²)); the
    sampler's last Euler step from σ_min returns D exactly. Halving the step must cut the error ~4×."""
    model = exact_gaussian_model(monkeypatch)
    x0 = 80.0 * torch.linspace(-3, 3, 13, dtype=torch.float64).reshape(-1, 1).repeat(1, 2)
    labels = torch.full((13,), 0.5, dtype=torch.float64)
    m = M_OFFSET + 0.5 * M_SLOPE
    at_min = m + (x0.numpy() - m) * np.sqrt((S**2 + 0.002**2) / (S**2 + 80.0**2))
    exact = m + (at_min - m) * S**2 / (S**2 + 0.002**2)
    errors = [np.abs(model._ode(x0, labels, karras_sigmas(n, 0.002, 80.0, 7.0)).numpy() - exact).max()
              for n in (16, 32, 64, 128)]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    print(f"\nHeun errors at 16/32/64/128 levels: {errors}, ratios {ratios}")
    # deterministic: second order quarters the error per halving, the ratio 4 moved by the O(h³) rest and the
    # non-uniform Karras steps (window 3.5–5.5: an observed order log2(ratio) between 1.81 and 2.46)
    assert np.all((ratios > 3.5) & (ratios < 5.5))


# -- reproducibility and persistence ------------------------------------------------------------------
def test_same_seed_same_samples_different_seed_different(trained):
    for sampler in ("ode", "sde"):
        trained.set_sampler(sampler, 16)
        a, b, c = (trained.sample(5.0, 200, seed=s) for s in (1, 1, 2))
        assert np.array_equal(a, b), sampler
        assert np.abs(a - c).max() > 1e-3, sampler  # another seed, other samples: far above float32 round-off
    trained.set_sampler("ode", None)


def test_training_is_reproducible_for_a_seed(fast_slow_training_data):
    X, y = (a[::25] for a in fast_slow_training_data)
    fits = [ConditionalScoreModel(n_epochs=30, hidden=(16,), n_fourier=2).fit(X, y, seed=s, progress=False)
            for s in (4, 4, 5)]
    first, again, other = (list(f.networks_.state_dict().values()) for f in fits)
    assert all(torch.equal(p, q) for p, q in zip(first, again))
    assert np.array_equal(fits[0].history_["loss"], fits[1].history_["loss"]) and len(fits[0].history_["loss"]) == 30
    assert not all(torch.equal(p, q) for p, q in zip(first, other))


def test_save_load_gives_identical_samples_and_can_switch_sampler(fast_slow_training_data, tmp_path):
    X, y = (a[::25] for a in fast_slow_training_data)
    model = ConditionalScoreModel(n_epochs=30, hidden=[16, 16], n_fourier=3, n_levels=8)
    model.fit(X, y, seed=1, progress=False)
    loaded = load(model.save(tmp_path / "score"))
    assert isinstance(loaded, ConditionalScoreModel) and loaded.get_params() == model.get_params()
    assert torch.equal(loaded.networks_.frequencies, model.networks_.frequencies)
    assert np.array_equal(loaded.sample(3.0, 100, seed=9), model.sample(3.0, 100, seed=9))
    assert loaded.set_sampler("sde") is loaded and loaded.sampler == "sde" and loaded.levels == 256
    model.set_sampler("sde")
    assert np.array_equal(loaded.sample(3.0, 100, seed=9), model.sample(3.0, 100, seed=9))
    assert loaded.set_sampler(n_levels=12).levels == 12 and loaded.sampler == "sde"


# -- argument checks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(sampler="euler"), "unknown sampler 'euler'"),
    (dict(n_levels=1), "n_levels must be an integer >= 2"),
    (dict(sigma_min=0.0), "sigma_min must be a finite positive"),
    (dict(sigma_max=float("inf")), "sigma_max must be a finite positive"),
    (dict(sigma_min=1.0, sigma_max=0.5), r"sigma_min \(1\) must be smaller than sigma_max \(0.5\)"),
    (dict(rho=-7), "rho must be a finite positive"),
    (dict(hidden=()), "at least one layer width"),
    (dict(hidden=64), "sequence of layer widths"),
    (dict(hidden=(64, 0)), "each hidden width must be an integer >= 1"),
    (dict(ema_decay=1.0), r"ema_decay must lie in \[0, 1\)"),
    (dict(lr=0), "lr must be a finite positive"),
    (dict(p_std=-1.0), "p_std must be a finite positive"),
    (dict(n_fourier=-1), "n_fourier must be an integer >= 0"),
    (dict(n_epochs=0), "n_epochs must be an integer >= 1"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConditionalScoreModel(**kwargs)


def test_bad_sampler_switch_is_refused_and_changes_nothing():
    model = ConditionalScoreModel(sampler="sde", n_levels=100)
    with pytest.raises(ValueError, match="unknown sampler 'heun'"):
        model.set_sampler("heun")
    with pytest.raises(ValueError, match="n_levels must be an integer >= 2"):
        model.set_sampler(n_levels=0)
    assert model.sampler == "sde" and model.levels == 100


@pytest.mark.slow
def test_defaults_sample_the_training_law_over_seeds():
    """Issue 26: at the default hyperparameters, mean and variance of x2 | x1 = 10 (4000 draws) within 3
    standard errors of the training law N(1, 0.05) (TRAINING_VAR) in ≥ 9 of 10 seeds, each seed trained on
    trajectories of its own (:func:`seed_data`) so that the seeds are independent checks, as in test_ccgan.py.
    On one shared data set the data's own error is common to all seeds: the fixture's
    states put the least-squares line at x1 = 10 at 0.9929, −2.0 standard errors of 4000 draws, and the model,
    reproducing its data, was off by −2.3 on average and passed 8 of 10 (measured 2026-12-05). On data of its own
    per seed: 10 of 10 with 50 walkers (largest |z| 2.34) and with 200 (SEED_WALKERS; largest |z| 1.65)."""
    n, passed = 4000, 0
    for seed in range(10):
        X = seed_data(seed)
        x2 = ConditionalScoreModel().fit(X, X[:, 0].copy(), seed=seed, progress=False).sample(10.0, n, seed=seed)[:, 1]
        z_mean = (x2.mean() - X2_MEAN) / np.sqrt(TRAINING_VAR / n)
        z_var = (x2.var(ddof=1) - TRAINING_VAR) / (TRAINING_VAR * np.sqrt(2 / (n - 1)))
        print(f"seed {seed}: standardized errors of the mean {z_mean:.2f}, of the variance {z_var:.2f}")
        passed += abs(z_mean) < 3 and abs(z_var) < 3
    # the acceptance, ≥ 9 of 10 seeds within 3 se on both moments; a generator of each data set's law meets
    # it with probability 0.997 (SEED_WALKERS)
    assert passed >= 9
