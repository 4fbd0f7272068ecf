"""CcGAN lifting against Crabtree et al.'s exact conditional laws (Figures 3 and 9)."""

import copy
import math

import numpy as np
import pytest
import torch
from scipy import stats
from test_score_model import TRAINING_VAR, assert_training_law, perfect_sampler_w1, seed_data

from eqfree import systems
from eqfree.errors import InputError
from eqfree.lift.generative import CcGAN
from eqfree.lift.generative.ccgan import largest_gap, silverman_bandwidth
from eqfree.lift.generative.networks import PRESETS, fold_batchnorm, generator_network
from eqfree.metrics import label_consistency, local_spectra, wasserstein_marginals
from eqfree.seeding import child_int

EXACT_X2 = stats.norm(1.0, math.sqrt(0.05))  # eq. (2.1): x2 | x1 ~ N(1, 0.05)


def test_vicinity_follows_silverman_and_the_largest_label_gap():
    rng = np.random.default_rng(1)
    y = np.sort(rng.uniform(3.0, 7.0, 300))
    X = np.column_stack([y, rng.standard_normal(300)])
    for loss, half_width in (("hard", 1.0), ("soft", math.sqrt(-math.log(1e-3)))):
        model = CcGAN(loss=loss, n_epochs=1, batch_size=8).fit(X, y, seed=0, progress=False)
        scaled = (y - 3.0 + (3.0 - y.min())) / np.ptp(y)
        kappa = 2 * np.diff(scaled).max()
        # the rules run on the float32 labels the networks see: agreement to float32 precision
        assert model.training_["sigma"] == pytest.approx(1.06 * scaled.std() * 300**-0.2, rel=1e-5)
        assert model.training_["kappa"] == pytest.approx(kappa, rel=1e-5)
        assert model.training_["nu"] == pytest.approx(kappa**-2, rel=1e-5)  # float32 labels, as above
        assert model.training_["half_width"] == pytest.approx(half_width * kappa, rel=1e-5)  # float32, as above
    assert silverman_bandwidth(np.array([0.0, 1.0])) == pytest.approx(1.06 * 0.5 * 2**-0.2)
    assert largest_gap(np.array([0.0, 0.1, 0.1, 0.5, 0.6])) == pytest.approx(0.4)


def test_trained_generator_is_the_uniform_average_of_the_last_weights():
    """``average_from``: the trained generator's Dense weights are the mean of the weights after each epoch from
    ``average_from · n_epochs`` on. At a constant rate a shorter run is the start of a longer one (same seed, same
    draws), so the weights after 3 and after 4 epochs are those of 3- and 4-epoch runs that keep their last weights,
    and a 4-epoch run averaging from epoch 2 must hold their mean (float32 round-off)."""
    rng = np.random.default_rng(3)
    y = rng.uniform(0.0, 4.0, 400)
    X = np.column_stack([y, 1 + 0.3 * rng.standard_normal(400)])

    def dense_weights(n_epochs, average_from):
        model = CcGAN(n_epochs=n_epochs, batch_size=32, lr=1e-2, lr_schedule="constant", average_from=average_from)
        generator = model.fit(X, y, seed=0, progress=False).networks_["generator"]
        return [layer.weight.detach().clone() for layer in generator if isinstance(layer, torch.nn.Linear)]

    after_3, after_4 = dense_weights(3, 1.0), dense_weights(4, 1.0)
    assert not torch.allclose(after_3[0], after_4[0])  # the step moved the weights: the mean is not either one
    for averaged, w3, w4 in zip(dense_weights(4, 0.5), after_3, after_4):
        # float32 (ε = 6e-8): the running mean w3 + (w4 − w3)/2 and (w3 + w4)/2 differ by round-off of weights ≲ 1
        torch.testing.assert_close(averaged, (w3 + w4) / 2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("params, message", [
    (dict(average_from=1.5), r"average_from must lie in \[0, 1\]"), (dict(average_from=-0.1), "average_from must"),
    (dict(lr_schedule="cosine"), "lr_schedule must be 'linear'")])
def test_training_schedule_errors_say_what_is_allowed(params, message):
    with pytest.raises(InputError, match=message):
        CcGAN(**params)


@pytest.fixture(scope="module")
def fast_slow_ccgan(fast_slow_training_data):
    X, y = fast_slow_training_data
    return CcGAN(n_epochs=3000, lr=2e-4).fit(X, y, seed=0, progress=False)


def test_fast_slow_linear_samples_at_the_label(fast_slow_ccgan):
    """Figure 3: at x1 = 10 the samples' x1 is the label (Table 1 networks, HVDL)."""
    samples = fast_slow_ccgan.sample(10.0, 4000, seed=1)
    consistency = label_consistency(lambda x: x[:, 0], samples, 10.0)
    print(f"CcGAN fast_slow_linear at x1 = 10: mean |x1 - 10| = {consistency:.4f}")
    assert consistency < 0.2  # 2 % of the training range [0, 10]


def test_fast_slow_linear_samples_the_exact_conditional_law(fast_slow_ccgan):
    """Figure 3: at x1 = 10, x2 follows the training law N(1, 0.05) (Leimkuhler–Matthews at dt = 0.5 keeps it).
    A strict xfail at a constant learning rate (x2 mean 1.0127, 3.6 se above 1; W1 0.0128 against a perfect
    sampler's 0.0047 ± 0.0016); it passes with the rates falling linearly to zero (the default; measured x2 mean
    1.0076, variance 0.04827, W1 0.0079 with an exponential average of the weights; 1.0044, 0.04992, 0.0046 with
    the uniform average over the second half of the epochs, the default)."""
    samples = fast_slow_ccgan.sample(10.0, 4000, seed=1)
    w1 = wasserstein_marginals(samples[:, 1], [EXACT_X2])[0]
    print(f"CcGAN fast_slow_linear at x1 = 10: W1(x2) = {w1:.4f} (perfect sampler {perfect_sampler_w1(4000)}), "
          f"x2 mean {samples[:, 1].mean():.4f} var {samples[:, 1].var(ddof=1):.5f} (training law 1, "
          f"{TRAINING_VAR:.5f}), trained in {fast_slow_ccgan.training_['seconds']:.1f} s")
    # moments within 4 standard errors of the training law, W1 within 4 sd of a perfect sampler's score
    # (tests/test_score_model.py); old bound W1 < 0.02 (a perfect sampler scores 0.005 ± 0.002)
    assert_training_law(samples[:, 1], w1)


@pytest.mark.slow
def test_defaults_sample_the_training_law_over_seeds():
    """Issue 26: at the default hyperparameters, mean and variance of x2 | x1 = 10 (4000 draws) within 3
    standard errors of the training law (1, 0.05) in ≥ 9 of 10 seeds, each seed trained on trajectories of its
    own (:func:`test_score_model.seed_data`, 200 walkers), so that the seeds are independent checks;
    benchmarks/seed_robustness.py prints the same study. A generator of each data set's law passes with
    probability 0.997 (test_score_model.SEED_WALKERS).
    Measured 2026-12-05 (issue 26), seeds 0–9 and 10–19: 9 and 10 of 10 (seed 7 variance −3.06 se). The
    generator's own errors, from 4·10⁵ draws per seed: mean +0.33 ± 0.55 se, variance −0.54 ± 0.36 se (1.2 % low),
    which give a seed 0.978 and ≥ 9 of 10 0.98. With the fixture's 50 walkers, whose data alone put the line at
    x1 = 10 0.88 se off (root mean square), the same seeds passed 8 and 9 of 10 (seed 2 mean +3.57, where its data's
    line is at +1.75; seed 7 variance −3.14; seed 17 variance −4.49), the generator's errors +0.37 ± 0.83 and
    −0.77 ± 0.59: a seed 0.947, ≥ 9 of 10 0.90."""
    n, passed = 4000, 0
    for seed in range(10):
        X = seed_data(seed)
        x2 = CcGAN().fit(X, X[:, 0].copy(), seed=seed, progress=False).sample(10.0, n, seed=seed)[:, 1]
        z_mean = (x2.mean() - 1.0) / math.sqrt(TRAINING_VAR / n)
        z_var = (x2.var(ddof=1) - TRAINING_VAR) / (TRAINING_VAR * math.sqrt(2 / (n - 1)))
        print(f"seed {seed}: standardized errors of the mean {z_mean:.2f}, of the variance {z_var:.2f}")
        passed += abs(z_mean) < 3 and abs(z_var) < 3
    assert passed >= 9  # the acceptance (docstring: a generator of each data set's law meets it with P = 0.997)


@pytest.fixture(scope="module")
def caps_data():
    """Caps (eqs. 6.1–6.2) from the conditional equilibrium at x1 = 0 to x1 = 10: observed y, labels x1."""
    caps = systems.get("caps")
    v2, v3 = caps.conditional_variances()
    rng = np.random.default_rng(0)
    x0 = np.column_stack([np.zeros(50), rng.normal(0, math.sqrt(v2), 50), rng.normal(0, math.sqrt(v3), 50)])
    x = caps.simulate(50, 10_000, seed=3, x0=x0, save_every=10).values.reshape(-1, 3)
    return caps, caps.observe(x), x[:, 0]


def test_caps_one_dimensional_noise_collapses_onto_a_curve(caps_data):
    """Figure 9: at x1 = 0 the cap (y2, y3) = (x2² + x3², x3) is two-dimensional. A generator with
    1-D noise can only draw a curve on it (local covariance spectra λ2/λ1 ≈ 0); with 2-D noise it
    covers the cap (λ2/λ1 as for exact samples)."""
    caps, Y, x1 = caps_data
    v2, v3 = caps.conditional_variances()
    rng = np.random.default_rng(4)
    exact = caps.observe(np.column_stack([np.zeros(3000), rng.normal(0, math.sqrt(v2), 3000),
                                          rng.normal(0, math.sqrt(v3), 3000)]))
    networks = {"generator": [64] * 4, "activation": "leaky_relu", "discriminator": [64] * 3}
    ratio = {"exact": np.median(local_spectra(exact[:, 1:])[:, 1])}
    for noise_dim in (1, 2):
        model = CcGAN(noise_dim=noise_dim, preset=networks, n_epochs=1200, lr=3e-4).fit(Y, x1, seed=0, progress=False)
        ratio[noise_dim] = np.median(local_spectra(model.sample(0.0, 3000, seed=1)[:, 1:])[:, 1])
    print(f"caps at x1 = 0, median local λ2/λ1 of (y2, y3): {ratio}")
    # specifications, not standard-error bounds: a curve's local spectrum has λ2 = 0 up to its curvature over the
    # neighbourhood (1 % allowed); with 2-D noise the median ratio within 0.15 of the exact samples' (a stated
    # accuracy of a 1200-epoch generator, not derived)
    assert ratio[1] < 0.01
    assert abs(ratio[2] - ratio["exact"]) < 0.15  # stated accuracy (comment above)


@pytest.mark.parametrize("preset", ["table1", "table2", "table3"])
def test_folding_batchnorm_leaves_the_generator_unchanged(preset):
    """Sampling uses G with each BatchNorm folded into its Dense layer: the same map in eval mode."""
    torch.manual_seed(0)
    widths, activation, _ = PRESETS[preset]
    network = generator_network(3, 5, widths, activation)
    for layer in network:
        if isinstance(layer, torch.nn.BatchNorm1d):  # non-trivial statistics and affine parameters
            for tensor in (layer.running_mean, layer.weight, layer.bias):
                tensor.data.normal_()
            layer.running_var.data.uniform_(0.5, 2.0)
    network.eval()
    folded = fold_batchnorm(network)
    assert not any(isinstance(layer, torch.nn.BatchNorm1d) for layer in folded)
    x = torch.randn(256, 3)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), network(x), rtol=1e-5, atol=1e-5)


def test_generate_is_the_generator_that_sample_draws_from():
    """``generate`` (G with its BatchNorm layers, eval mode) on the noise ``sample`` draws for a seed, mapped
    back to physical units, gives ``sample``'s states (which use G with BatchNorm folded) to float32
    round-off; outputs lie in the scaled units of the data (shift and scale of ``data_``)."""
    rng = np.random.default_rng(2)
    y = rng.uniform(0.0, 4.0, 600)
    X = np.column_stack([y, 1 + 0.3 * rng.standard_normal(600)])
    model = CcGAN(n_epochs=40, batch_size=64).fit(X, y, seed=0, progress=False)
    n, z = 300, 2.5
    generator = torch.Generator().manual_seed(child_int(7, 0))
    noise = torch.randn((n, model.noise_dim), generator=generator)
    labels = torch.full((n,), float(model.labels_.transform(z)), dtype=torch.float32)
    model.networks_.eval()
    with torch.inference_mode():
        scaled = model.generate(noise, labels).double().numpy()
    # the truth: the unfolded network in float64 (round-off ~1e-16 times the layers' cancellation). Folding
    # γ(Wx + b − μ)/√(v + ε) + β into W'x + b' is exact algebra; in float32 it changes only which roundings occur,
    # of the same number and kind as the unfolded network's own, so the folded path's largest error over the 600
    # outputs is of the size of the unfolded path's: within a factor 4 (the spread of two maxima of round-off
    # patterns; measured ratio printed). A wrong folding errs by the outputs' own size (order 1)
    with torch.inference_mode():
        truth = copy.deepcopy(model.networks_["generator"]).double()(torch.cat([noise, labels[:, None]], 1).double())
    truth = model.data_.inverse(truth.numpy())
    paths = (model.data_.inverse(scaled), model.sample(z, n, seed=7))
    unfolded, folded = (np.abs(path - truth).max() for path in paths)
    print(f"float32 errors against float64: generate {unfolded:.2e}, sample (folded) {folded:.2e}")
    assert unfolded < 1e-3  # a specification: float32 holds the outputs (order 1) to 1e-3
    assert folded <= 4 * unfolded
