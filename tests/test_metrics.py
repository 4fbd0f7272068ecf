"""Sample-set distances against analytic results, scipy as a peer, and invariances."""

import math

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as st_h
from scipy.integrate import quad
from scipy.spatial.transform import Rotation
from scipy.special import ndtr

import eqfree.metrics as metrics
from eqfree.metrics import energy_distance, ks_marginals, label_consistency, wasserstein_marginals
from eqfree.seeding import child


def normal_abs_deviation(c, mu, s):
    """E|X − c| for X ~ N(μ, s²)."""
    d = (c - mu) / s
    return s * math.sqrt(2 / math.pi) * math.exp(-d * d / 2) + s * d * (2 * ndtr(d) - 1)


def expected_w1_of_empirical(law, n):
    """E W1(F_n, F) = ∫ g(F(x)) dx exactly for finite n, where g(p) = E|B/n − p|, B ~ Binomial(n, p),
    has de Moivre's closed form g(p) = 2ν(1 − p) P(B = ν)/n with ν = ⌊np⌋ + 1. g is smooth between
    the quantiles F^{-1}(j/n): Gauss–Legendre there, quad on the two tails (ν = 1 and ν = n)."""
    def g(p, nu):
        return 2 * nu * (1 - p) * st.binom.pmf(nu, n, p) / n

    cuts = law.ppf(np.arange(1, n) / n)
    a, b = cuts[:-1], cuts[1:]
    nu = np.arange(2, n)  # on (F^{-1}(j/n), F^{-1}((j+1)/n)), ν = j + 1
    nodes, weights = np.polynomial.legendre.leggauss(12)
    x = (a + b)[:, None] / 2 + (b - a)[:, None] / 2 * nodes
    body = np.sum((b - a) / 2 * (g(law.cdf(x), nu[:, None]) @ weights))
    left = quad(lambda t: g(law.cdf(t), 1), -np.inf, cuts[0], epsabs=1e-13)[0]
    right = quad(lambda t: g(law.cdf(t), n), cuts[-1], np.inf, epsabs=1e-13)[0]
    return body + left + right


def perfect_chain_w1(law, frames: int, walkers: int, rho: float, replicates: int = 400,
                     seed: int = 0) -> tuple[float, float]:
    """Mean and sd of W1(F_n, F) for a perfect sampler of an umbrella window: ``walkers`` independent stationary
    chains of ``frames`` frames of the normal law F = ``law``, consecutive frames correlated ρ (an
    Ornstein–Uhlenbeck coordinate of rate r saved Δt apart: ρ = e^{−r Δt}), over independent replicates — what a
    window scores when its only error is its finite, correlated sample (ρ = 0: n = frames·walkers independent
    draws, :func:`expected_w1_of_empirical`). Each replicate is scored against the n midpoint quantiles
    F^{-1}((i − ½)/n), G_n (one sort); W1(G_n, F), exact, is added to the mean: by the triangle inequality it
    bounds what that substitution changes."""
    rng, n = np.random.default_rng(seed), frames * walkers
    x = rng.standard_normal((replicates, walkers))
    chain = [x]
    for _ in range(frames - 1):
        x = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(x.shape)
        chain.append(x)
    chain = np.sort(np.stack(chain, axis=1).reshape(replicates, n), axis=1)
    grid = st.norm.ppf((np.arange(n) + 0.5) / n)
    scores = law.std() * np.abs(chain - grid).mean(axis=1)
    substitution = wasserstein_marginals(law.mean() + law.std() * grid, law)[0]
    return float(scores.mean() + substitution), float(scores.std(ddof=1))


# ------------------------------------------------------------------------------------------------
# Wasserstein-1 against an exact law
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 5, 1000])
@pytest.mark.parametrize("c", [-7.0, 0.3, 1.0, 3.0, 40.0])
def test_w1_point_mass_vs_normal_is_mean_abs_deviation(n, c):
    mu, s = 1.0, 2.0
    w1 = wasserstein_marginals(np.full(n, c), st.norm(mu, s))
    assert w1.shape == (1,)
    assert w1[0] == pytest.approx(normal_abs_deviation(c, mu, s), abs=1e-9)


@pytest.mark.parametrize("c", [-2.0, 0.0, 0.5, 3.0])
def test_w1_point_mass_vs_exponential(c):
    """Bounded support: E|X − c| = c − 1 + 2e^{−c} for c >= 0 and 1 − c below the support."""
    exact = c - 1 + 2 * math.exp(-c) if c >= 0 else 1 - c
    assert wasserstein_marginals(np.full((7, 1), c), st.expon())[0] == pytest.approx(exact, abs=1e-9)


@pytest.mark.parametrize("c", [-0.5, 0.2, 0.5, 1.5])
def test_w1_point_mass_vs_uniform(c):
    exact = (c**2 + (1 - c) ** 2) / 2 if 0 <= c <= 1 else abs(c - 0.5)
    assert wasserstein_marginals(np.full(3, c), st.uniform())[0] == pytest.approx(exact, abs=1e-9)


def test_w1_of_a_true_sample_matches_its_exact_expectation():
    """E W1(F_n, N(μ, s²)) is O(n^{-1/2}); the mean over independent replicates matches the exact
    finite-n expectation within 4 standard errors."""
    law, n, replicates = st.norm(0.5, 1.5), 1000, 20
    values = np.array([wasserstein_marginals(law.rvs(size=n, random_state=seed), law)[0] for seed in range(replicates)])
    truth = expected_w1_of_empirical(law, n)
    assert truth == pytest.approx(1.5 * math.sqrt(2 / (math.pi * n)) * 1.6147, rel=0.03)  # the n^{-1/2} law
    assert abs(values.mean() - truth) <= 4 * values.std(ddof=1) / math.sqrt(replicates)


def test_perfect_chain_w1_of_independent_draws_is_the_exact_expectation():
    """ρ = 0: the simulated mean of perfect_chain_w1 is E W1 of n independent draws (expected_w1_of_empirical),
    within 4 standard errors of a mean of 400 replicates (sd/√400) plus its quantile substitution (added to it)."""
    law, n = st.norm(1.0, math.sqrt(0.05)), 2000
    mean, sd = perfect_chain_w1(law, n, 1, 0.0)
    substitution = wasserstein_marginals(1.0 + math.sqrt(0.05) * st.norm.ppf((np.arange(n) + 0.5) / n), law)[0]
    truth = expected_w1_of_empirical(law, n)
    assert abs(mean - truth) <= 4 * sd / math.sqrt(400) + substitution
    # correlated frames (ρ = 0.9, 100 frames × 20 walkers) hold fewer independent draws: W1 is larger
    assert perfect_chain_w1(law, 100, 20, 0.9)[0] > mean


@pytest.mark.parametrize("law", [st.norm(0, 1), st.gamma(2.0), st.t(4), st.beta(0.5, 2.0)], ids=lambda d: d.dist.name)
def test_w1_exact_agrees_with_scipy_against_a_huge_reference_sample(law):
    """|W1(F_n, F_m) − W1(F_n, F)| <= W1(F_m, F), whose mean is E W1 ≈ √(2/(πm)) ∫√(F(1−F)) dx."""
    x = law.rvs(size=300, random_state=1) * 1.1 + 0.05  # a slightly wrong sample
    m = 1_000_000
    reference = law.rvs(size=m, random_state=2)
    spread = quad(lambda t: math.sqrt(max(law.cdf(t) * law.sf(t), 0.0)), *law.support(), limit=200)[0]
    sampling_error = math.sqrt(2 / (math.pi * m)) * spread
    exact = wasserstein_marginals(x, law)[0]
    # triangle inequality (docstring): |W1(x, F_m) − W1(x, F)| ≤ W1(F_m, F), whose mean is sampling_error; W1(F_m, F)·√m
    # → ∫|B(F(t))|dt (B a Brownian bridge), whose sd is ≈ 0.4 of its mean, so 5 × the mean is the mean + 10 sd: a worst
    # case that holds for every seed (the difference itself is typically far smaller)
    assert abs(exact - st.wasserstein_distance(x, reference)) <= 5 * sampling_error
    assert exact > 50 * sampling_error  # the comparison is not vacuous


def test_w1_per_column_laws_and_shapes():
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.normal(size=50), rng.exponential(size=50)])
    laws = [st.norm(0, 1), st.expon()]
    both = wasserstein_marginals(x, laws)
    assert both.shape == (2,)
    assert both[0] == wasserstein_marginals(x[:, 0], st.norm(0, 1))[0]
    assert both[1] == wasserstein_marginals(x[:, 1:], (st.expon(),))[0]


@settings(max_examples=25, deadline=None)
@given(seed=st_h.integers(0, 2**32 - 1), n=st_h.integers(1, 200), shift=st_h.floats(-20, 20))
def test_w1_to_law_is_translation_equivariant(seed, n, shift):
    x = np.random.default_rng(seed).normal(0.3, 2.0, size=n)
    base = wasserstein_marginals(x, st.norm(0, 1.5))[0]
    moved = wasserstein_marginals(x + shift, st.norm(shift, 1.5))[0]
    assert moved == pytest.approx(base, rel=1e-8, abs=1e-9 * (1 + abs(shift)))


# ------------------------------------------------------------------------------------------------
# Wasserstein-1 and KS between sample sets
# ------------------------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(seed=st_h.integers(0, 2**32 - 1), n=st_h.integers(1, 60), dim=st_h.integers(1, 4),
       shift=st_h.lists(st_h.floats(-10, 10), min_size=4, max_size=4))
def test_w1_of_a_shift_is_the_shift(seed, n, dim, shift):
    x = np.random.default_rng(seed).normal(size=(n, dim))
    a = np.array(shift[:dim])
    np.testing.assert_allclose(wasserstein_marginals(x, x + a), np.abs(a),
                               atol=1e-12 * (1 + np.abs(x).max() + np.abs(a).max()))


def test_w1_between_samples_matches_scipy_per_column():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 3)), rng.gamma(2.0, size=(70, 3))
    expected = [st.wasserstein_distance(x[:, j], y[:, j]) for j in range(3)]
    np.testing.assert_allclose(wasserstein_marginals(x, y), expected, rtol=1e-14)


def test_ks_matches_scipy():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(80, 2)), rng.normal(0.3, 1.2, size=(60, 2))
    np.testing.assert_array_equal(ks_marginals(x, y), [st.ks_2samp(x[:, j], y[:, j]).statistic for j in range(2)])
    laws = [st.norm(0, 1), st.norm(0.3, 1.2)]
    np.testing.assert_array_equal(ks_marginals(x, laws), [st.kstest(x[:, j], laws[j].cdf).statistic for j in range(2)])


def test_ks_of_a_point_mass_is_the_law_mass_on_one_side():
    """sup|F_n − F| for all samples at c is max(F(c), 1 − F(c))."""
    c = 0.7
    assert ks_marginals(np.full(9, c), st.norm())[0] == pytest.approx(max(ndtr(c), 1 - ndtr(c)), abs=1e-15)


# ------------------------------------------------------------------------------------------------
# energy distance
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_energy_distance_matches_scipy_in_1d(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rng.integers(1, 300))
    y = np.round(rng.normal(0.2, 1.3, size=rng.integers(1, 300)), 1)  # ties within and across the sets
    expected = st.energy_distance(x, y)
    assert energy_distance(x, y) == pytest.approx(expected, abs=1e-10)
    assert energy_distance(x[:, None], y[:, None]) == pytest.approx(expected, abs=1e-10)
    monkeypatch.setattr(metrics, "_BLOCK", 17)  # the blocked all-pairs path, across many blocks
    assert metrics._energy_pairwise(x[:, None], y[:, None]) == pytest.approx(expected, abs=1e-10)


def test_energy_distance_blocks_equal_the_direct_formula(monkeypatch):
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(53, 3)), rng.normal(0.4, 1.0, size=(41, 3))
    direct = math.sqrt(2 * np.mean(np.linalg.norm(x[:, None] - y[None], axis=-1))
                       - np.mean(np.linalg.norm(x[:, None] - x[None], axis=-1))
                       - np.mean(np.linalg.norm(y[:, None] - y[None], axis=-1)))
    assert energy_distance(x, y) == pytest.approx(direct, rel=1e-12)
    monkeypatch.setattr(metrics, "_BLOCK", 8)
    assert energy_distance(x, y) == pytest.approx(direct, rel=1e-12)


def test_energy_distance_of_identical_sets_is_zero():
    x = np.random.default_rng(7).normal(size=(120, 4))
    assert energy_distance(x, x) <= 1e-6
    assert energy_distance(x[:, :1], x[:, :1]) == 0.0


def test_energy_distance_is_invariant_under_a_rigid_motion():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(90, 3)), rng.normal(0.5, 1.2, size=(70, 3))
    rotation = Rotation.random(rng=np.random.default_rng(9)).as_matrix()
    offset = np.array([3.0, -1.0, 10.0])
    moved = energy_distance(x @ rotation.T + offset, y @ rotation.T + offset)
    assert moved == pytest.approx(energy_distance(x, y), rel=1e-10)


@pytest.mark.parametrize("dim", [1, 2, 5])
@pytest.mark.parametrize("d", [0.5, 3.0])
def test_energy_distance_of_two_point_masses(dim, d):
    p = np.linspace(-1, 1, dim)
    direction = np.ones(dim) / math.sqrt(dim)
    x, y = np.tile(p, (11, 1)), np.tile(p + d * direction, (6, 1))
    assert energy_distance(x, y) == pytest.approx(math.sqrt(2 * d), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st_h.integers(0, 2**32 - 1), n=st_h.integers(1, 40), m=st_h.integers(1, 40), dim=st_h.integers(1, 3))
def test_energy_distance_is_symmetric(seed, n, m, dim):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, dim)), rng.normal(0.3, 2.0, size=(m, dim))
    assert energy_distance(x, y) == pytest.approx(energy_distance(y, x), rel=1e-10, abs=1e-12)


def test_energy_distance_subsample_is_seeded():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(400, 2)), rng.normal(0.5, 1.0, size=(300, 2))
    full = energy_distance(x, y)
    assert energy_distance(x, y, max_samples=400, seed=0) == full  # nothing to subsample
    a = energy_distance(x, y, max_samples=100, seed=1)
    assert a == energy_distance(x, y, max_samples=100, seed=1)
    assert a != energy_distance(x, y, max_samples=100, seed=2)
    # the subsample of x does not depend on y: subsampling only x equals subsampling x by hand
    rows = np.sort(np.random.default_rng(child(1, 0)).choice(400, 100, replace=False))
    assert energy_distance(x, y[:50], max_samples=100, seed=1) == energy_distance(x[rows], y[:50])


# ------------------------------------------------------------------------------------------------
# label consistency
# ------------------------------------------------------------------------------------------------

def test_label_consistency_of_known_offsets():
    z, offsets = 1.5, np.array([0.1, -0.3, 0.0, 0.2])
    x = np.column_stack([z + offsets, np.arange(4.0)])
    assert label_consistency(lambda s: s[:, 0], x, z) == pytest.approx(np.mean(np.abs(offsets)), abs=1e-15)


def test_label_consistency_is_euclidean_over_cvs():
    z = np.array([1.0, -2.0])
    x = np.tile(z + [3.0, 4.0], (5, 1))
    assert label_consistency(lambda s: s, x, z) == pytest.approx(5.0, abs=1e-14)


def test_label_consistency_wraps_angles():
    z = math.pi - 0.1
    x = np.full((6, 1), -math.pi + 0.1)
    assert label_consistency(lambda s: s[:, 0], x, z, period=2 * math.pi) == pytest.approx(0.2, abs=1e-12)
    assert label_consistency(lambda s: s[:, 0], x, z) == pytest.approx(2 * math.pi - 0.2, abs=1e-12)


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("metric", [wasserstein_marginals, ks_marginals, energy_distance])
def test_non_finite_samples_are_refused(metric, bad):
    x = np.zeros((5, 2))
    x[3, 1] = bad
    with pytest.raises(ValueError, match=r"samples contains non-finite values.*\[3\]"):
        metric(x, np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"reference contains non-finite values.*\[3\]"):
        metric(np.ones((4, 2)), x)


@pytest.mark.parametrize("metric", [wasserstein_marginals, ks_marginals, energy_distance])
def test_empty_and_misshapen_sets_are_refused(metric):
    with pytest.raises(ValueError, match="samples is empty"):
        metric(np.zeros((0, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="reference is empty"):
        metric(np.ones((4, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"reference has 3 coordinate\(s\) but samples have 2"):
        metric(np.ones((4, 2)), np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"shape \(n, dim\) or \(n,\)"):
        metric(np.ones((4, 2, 1)), np.ones((4, 2)))


@pytest.mark.parametrize("metric", [wasserstein_marginals, ks_marginals])
def test_wrong_distributions_are_refused(metric):
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"got 1 reference distribution\(s\) for 2 coordinate\(s\)"):
        metric(x, st.norm())
    with pytest.raises(ValueError, match=r"got 3 reference distribution\(s\) for 2"):
        metric(x, [st.norm()] * 3)
    with pytest.raises(ValueError, match="distribution 1 must be a frozen scipy.stats continuous"):
        metric(x, [st.norm(), None])
    with pytest.raises(ValueError, match="distribution 0 must be a frozen scipy.stats continuous"):
        metric(x, [st.poisson(2.0), st.norm()])


def test_law_without_finite_mean_is_refused_for_w1():
    with pytest.raises(ValueError, match="mean is not finite"):
        wasserstein_marginals(np.zeros(3), st.cauchy())


def test_energy_distance_refuses_laws_and_unseeded_subsamples():
    x = np.zeros((5, 1))
    with pytest.raises(ValueError, match="needs reference samples"):
        energy_distance(x, st.norm())
    with pytest.raises(ValueError, match="needs an explicit seed"):
        energy_distance(x, x, max_samples=2)
    with pytest.raises(ValueError, match="max_samples must be an integer >= 1"):
        energy_distance(x, x, max_samples=0, seed=0)


def test_label_consistency_refuses_bad_restrictions():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="samples contains non-finite"):
        label_consistency(lambda s: s[:, 0], np.full((4, 2), np.nan), 0.0)
    with pytest.raises(ValueError, match="samples is empty"):
        label_consistency(lambda s: s[:, 0], np.zeros((0, 2)), 0.0)
    with pytest.raises(ValueError, match=r"restrict returned shape \(3,\) for 4 samples"):
        label_consistency(lambda s: s[:3, 0], x, 0.0)
    with pytest.raises(ValueError, match=r"restrict returned 2 CV component\(s\) but z has 1"):
        label_consistency(lambda s: s, x, 0.0)
    with pytest.raises(ValueError, match="restrict returned non-finite values"):
        label_consistency(lambda s: s[:, 0] + np.inf, x, 0.0)
    with pytest.raises(ValueError, match="z must be a finite"):
        label_consistency(lambda s: s[:, 0], x, np.nan)
    with pytest.raises(ValueError, match="period must be a positive number"):
        label_consistency(lambda s: s[:, 0], x, 0.0, period=-1.0)


def test_local_spectra_tell_a_curve_from_a_region():
    rng = np.random.default_rng(5)
    t = rng.uniform(0, 2 * np.pi, 2000)
    circle = np.column_stack([np.cos(t), np.sin(t)])
    disc = np.sqrt(rng.uniform(0, 1, 2000))[:, None] * circle
    curve, region = metrics.local_spectra(circle, k=10), metrics.local_spectra(disc, k=10)
    assert curve.shape == (2000, 2) and np.all(curve[:, 0] == 1.0)
    # k neighbours on a unit circle span an arc of length ℓ ~ πk/n ≈ 0.016: its sagitta ℓ²/8 against
    # its length ℓ makes λ2/λ1 of order (ℓ/8)² ~ 1e-5
    assert np.median(curve[:, 1]) < 1e-3
    # uniform in a disc a neighbourhood is isotropic; with k = 10 points the sample covariance's
    # eigenvalue ratio scatters around 0.45
    assert 0.25 < np.median(region[:, 1]) < 0.8
    with pytest.raises(ValueError, match="k = 30 neighbours but only 20 samples"):
        metrics.local_spectra(disc[:20], k=30)


@settings(max_examples=30, deadline=None)
@given(seed=st_h.integers(0, 2**32 - 1), shift=st_h.floats(0.0, 3.0))
def test_linear_separability_is_the_best_threshold_in_one_dimension_and_affine_invariant(seed, shift):
    rng = np.random.default_rng(seed)
    in_a = rng.random(300) < 0.3
    z = rng.normal(size=300) + shift * in_a
    # in 1-D Fisher's direction is the sign of the mean difference: the best cut, by brute force
    labels = in_a[np.argsort(z)]
    sign = 1 if z[in_a].mean() >= z[~in_a].mean() else -1
    cuts = [np.sum(~labels[:k]) + np.sum(labels[k:]) if sign > 0 else np.sum(labels[:k]) + np.sum(~labels[k:])
            for k in range(len(z) + 1)]
    assert metrics.linear_separability(z, in_a) == pytest.approx(max(cuts) / len(z), abs=1e-12)
    # Fisher's discriminant commutes with invertible affine maps of the CV space
    z2 = np.column_stack([z, rng.normal(size=300)])
    matrix = np.array([[2.0, 0.5], [-1.0, 3.0]])
    assert metrics.linear_separability(z2 @ matrix.T + 7.0, in_a) == pytest.approx(
        metrics.linear_separability(z2, in_a), abs=1e-12)


def test_linear_separability_of_separated_sets_and_bad_masks():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 2))
    in_a = z @ np.array([1.0, -2.0]) > 0.3
    assert metrics.linear_separability(z + 5.0 * in_a[:, None] * np.array([1.0, -2.0]), in_a) == 1.0
    with pytest.raises(ValueError, match="both sets non-empty"):
        metrics.linear_separability(z, np.ones(200, bool))
    with pytest.raises(ValueError, match="boolean mask of the 200 states"):
        metrics.linear_separability(z, np.ones(3, bool))
