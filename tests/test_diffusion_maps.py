"""Diffusion maps against analytic eigenproblems, invariances, and the seed's slow manifold."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import ive

from eqfree import Restrict, systems
from eqfree.restrict import (
    DiffusionMaps,
    kernel_sum_bandwidth,
    local_linear_fit,
    local_noise_covariances,
    mahalanobis_squared_distances,
)


def circle(theta):
    return np.column_stack([np.cos(theta), np.sin(theta)])


@pytest.mark.parametrize("kernel", ["dense", "sparse"])
def test_equispaced_circle_bessel_spectrum(kernel):
    """Circulant kernel exp(−(1 − cos Δθ)/ε): λ_k = I_k(1/ε)/I_0(1/ε), each k ≥ 1 twice, ψ in span{cos kθ, sin kθ}."""
    n, eps = 200, 0.1
    theta = 2 * np.pi * np.arange(n) / n
    fit = DiffusionMaps(n_components=1, epsilon=eps, n_eigenpairs=8, kernel=kernel, select="leading").fit(
        circle(theta), seed=0)
    k = np.array([0, 1, 1, 2, 2, 3, 3, 4, 4])
    np.testing.assert_allclose(fit.eigenvalues_, ive(k, 1 / eps) / ive(0, 1 / eps), rtol=0, atol=1e-10)
    np.testing.assert_allclose(fit.eigenvectors_[:, 0], 1.0, atol=1e-10)
    for j in range(1, 9):
        basis = np.column_stack([np.cos(k[j] * theta), np.sin(k[j] * theta)])
        coefficients, *_ = np.linalg.lstsq(basis, fit.eigenvectors_[:, j], rcond=None)
        residual = fit.eigenvectors_[:, j] - basis @ coefficients
        assert np.linalg.norm(residual) < 1e-8 * np.linalg.norm(fit.eigenvectors_[:, j])


def test_random_circle_generator_ratios():
    """(1 − λ_k)/(1 − λ_1) → k² (Laplace–Beltrami, α = 1); at ε = 0.01 the equispaced (Bessel) values
    3.970 and 8.821 carry the finite-ε part, so uniform random points differ from them by sampling
    only, whose size was measured over 16 independent point sets (below)."""
    eps = 0.01
    gap = lambda k: 1 - ive(k, 1 / eps) / ive(0, 1 / eps)
    theta = np.random.default_rng(0).uniform(0, 2 * np.pi, 3000)
    maps = DiffusionMaps(n_components=1, epsilon=eps, n_eigenpairs=6, kernel="dense", select="leading")
    gaps = 1 - maps.fit(circle(theta), seed=0).eigenvalues_
    for k, pair in ((2, (3, 4)), (3, (5, 6))):
        expected = gap(k) / gap(1)
        assert abs(expected - k**2) < 0.2 * k**2  # the Bessel ratio is near k² itself
        for j, one in zip(pair, (1, 2)):
            # sampling error of the ratio at n = 3000, measured over point sets of seeds 0–15 (this fit per seed): the
            # random points split each degenerate pair, the first ratio of a pair low and the second high, relative
            # mean offsets −0.32 % / +0.24 % (k = 2) and −0.87 % / +0.65 % (k = 3), sd 0.34 % (k = 2) and 0.50 % (k = 3)
            # per point set. Bound: the larger offset (a bias of finite n) + 1 standard error of that mean (sd/√16) + 4
            # sd: 1.8 % (k = 2), 3.0 % (k = 3). Old: 3 % for both, a spread over 4 seeds × 2.5
            rel = {2: 0.0032 + 0.0034 / 4 + 4 * 0.0034, 3: 0.0087 + 0.0050 / 4 + 4 * 0.0050}[k]
            assert gaps[j] / gaps[one] == pytest.approx(expected, rel=rel)


def test_interval_eigenvectors_are_cosines():
    x = np.random.default_rng(1).uniform(0, 1, 2000)
    fit = DiffusionMaps(n_components=1, epsilon=1e-3, n_eigenpairs=5, select="leading").fit(x[:, None], seed=0)
    for k in (1, 2, 3):
        # a specification, not a standard error: the eigenvectors are cos(kπx) up to the O(ε) = 1e-3 kernel bias and the
        # finite-sample error at n = 2000, both giving 1 − ρ ≪ 0.01
        assert abs(np.corrcoef(fit.eigenvectors_[:, k], np.cos(k * np.pi * x))[0, 1]) > 0.99


def test_nonharmonic_selection_skips_harmonics():
    """On a thin strip [0, 4] × [0, 1] the leading eigenvectors are cos(kπx/4) harmonics of the first;
    the first new direction is cos(πy), eigenvalue gap ~(π)² vs (π/4)²·k²."""
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.uniform(0, 4, 3000), rng.uniform(0, 1, 3000)])
    fit = DiffusionMaps(n_components=2, epsilon=0.01, n_eigenpairs=8, kernel="dense").fit(X, seed=0)
    first, second = (fit.eigenvectors_ @ fit.loadings_).T
    assert fit.selected_[0] == 1 and fit.loadings_[1, 0] == 1.0
    # specifications (docstring: the harmonics of cos(πx/4) and the new direction cos(πy)); the 0.95 allows the mixing
    # of the near-degenerate cos(πy) with the 4th harmonic (eigenvalues (π)² vs (π/4)²·16): not derived from a standard
    # error
    assert abs(stats.spearmanr(first, X[:, 0]).statistic) > 0.99
    assert abs(np.corrcoef(second, np.cos(np.pi * X[:, 1]))[0, 1]) > 0.95
    assert fit.selected_[1] > 2  # a harmonic of the first came before it and was skipped
    np.testing.assert_allclose(fit.fit_transform(X, seed=0), np.column_stack([first, second]), atol=1e-12)


def test_fast_slow_linear_first_coordinate_is_x1():
    data = systems.get("fast_slow_linear").simulate(1, 30_000, seed=1)[::6, 0].values  # 5001 points, dt = 1
    fit = DiffusionMaps(n_components=1).fit(data, seed=0)  # automatic ε, sparse kernel
    coordinates = fit.eigenvectors_[:, fit.selected_]
    assert fit.sparse_ and len(data) >= 5000
    # a specification: on a 5001-point path x1 is the only slow direction (x2's variance 0.05 against x1's range ≈ 30),
    # so the first coordinate is monotone in x1 up to noise; not derived from a standard error
    assert abs(stats.spearmanr(coordinates[:, 0], data[:, 0]).statistic) > 0.99
    # a fitted map is a Restrict operator: φ of new states by Nyström, at a training point its coordinate
    assert isinstance(fit, Restrict) and fit.names == [f"phi{fit.selected_[0]}"]
    np.testing.assert_allclose(fit(data[:4]), coordinates[:4], atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(15, 40), seed=st.integers(0, 1000), angle=st.floats(0, 2 * np.pi),
       shift=st.tuples(st.floats(-10, 10), st.floats(-10, 10)))
def test_rigid_motions_and_permutations_leave_the_spectrum(n, seed, angle, shift):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (X @ rotation.T + np.array(shift))[rng.permutation(n)]
    options = dict(epsilon=1.0, n_eigenpairs=5, kernel="dense", select="leading")
    a = DiffusionMaps(n_components=1, **options).fit(X, seed=0)
    b = DiffusionMaps(n_components=1, **options).fit(moved, seed=0)
    np.testing.assert_allclose(a.eigenvalues_, b.eigenvalues_, atol=1e-9)
    assert a.eigenvalues_[0] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(a.eigenvectors_[:, 0], 1.0, atol=1e-9)
    # Nyström at a training point returns that point's coordinates
    np.testing.assert_allclose(a.nystrom(X[:3]), a.eigenvectors_[:3], atol=1e-9)


def test_bad_input():
    X = np.random.default_rng(0).normal(size=(50, 2))
    bad = X.copy()
    bad[[3, 7], 1] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"non-finite rows \[3, 7\]"):
        DiffusionMaps(n_components=1).fit(bad, seed=0)
    with pytest.raises(ValueError, match="provide more data"):
        DiffusionMaps(n_components=5, n_eigenpairs=5, select="leading").fit(X[:6], seed=0)
    clusters = np.vstack([X, X + 100])
    with pytest.raises(ValueError, match=r"epsilon = 0.5 falls apart into 2 .*choose a larger epsilon, e.g. 2"):
        DiffusionMaps(n_components=1, epsilon=0.5).fit(clusters, seed=0)
    with pytest.raises(ValueError, match="alpha"):
        DiffusionMaps(n_components=1, alpha=2).fit(X, seed=0)
    with pytest.raises(ValueError, match="cut_off"):
        DiffusionMaps(n_components=1, kernel="sparse", cut_off=-1.0).fit(X, seed=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        DiffusionMaps(n_components=1).transform(X)


@pytest.mark.parametrize("kernel", ["dense", "sparse"])
def test_duplicate_points_are_kept_as_samples(kernel):
    """Documented handling: a duplicated point is two samples with identical coordinates."""
    X = np.random.default_rng(3).uniform(0, 1, size=(300, 2))
    X = np.vstack([X, X[:1]])
    fit = DiffusionMaps(n_components=1, epsilon=0.01, n_eigenpairs=4, kernel=kernel, select="leading").fit(X, seed=0)
    np.testing.assert_allclose(fit.eigenvectors_[0], fit.eigenvectors_[-1], atol=1e-10)
    np.testing.assert_allclose(fit.nystrom(X[:1])[0], fit.eigenvectors_[0], atol=1e-9)


def half_moon_data():
    """Ten trajectories started along the slow direction (x1 = 0, 0.15, ..., 1.35), thinned. They are simulated
    in the original variables (2.1) and mapped by (4.1): by Itô's lemma these are paths of the half-moon SDE
    (the system's own Itô-transformed evolver gives the same law at ~50× the cost per step), and the slow
    variable is the original x1 itself."""
    moons = systems.get("half_moons")
    starts = np.column_stack([0.15 * np.arange(10), np.ones(10)])
    run = moons.original.simulate(10, 3000, seed=2, dt=moons.default_dt, x0=starts)[100::20]
    x = run.values.reshape(-1, 2)
    return moons, moons.from_original(x), x[:, 0]


def test_mahalanobis_finds_the_slow_variable_of_half_moons():
    moons, y, slow = half_moon_data()
    covariances = local_noise_covariances(moons.evolver(), y, n_steps=2, n_bursts=20, seed=3)
    # the bursts estimate Df σσᵀ Dfᵀ: compare with the exact diffusion at a few points (20 bursts: ~30 % scatter)
    exact = moons.diffusion(torch.tensor(y[:200]), 0.0).numpy()
    exact = exact @ exact.transpose(0, 2, 1)
    ratio = np.trace(covariances[:200], axis1=1, axis2=2) / np.trace(exact, axis1=1, axis2=2)
    # with the trace dominated by one direction the ratio is ≈ χ²₂₀/20 (sd 0.32): the median of |ratio − 1| over 200
    # points is 0.213 ± 0.017 (simulated, 4000 replicates; 0.151 for two equal directions); bound 0.3 ≈ mean + 5 sd, the
    # 2-step bursts' O(dt) bias aside
    assert np.median(np.abs(ratio - 1)) < 0.3
    mahalanobis = DiffusionMaps(n_components=1).fit(y, covariances=covariances, seed=0)
    euclidean = DiffusionMaps(n_components=1).fit(y, seed=0)
    rho_m = abs(stats.spearmanr(mahalanobis.eigenvectors_[:, mahalanobis.selected_[0]], slow).statistic)
    rho_e = abs(stats.spearmanr(euclidean.eigenvectors_[:, euclidean.selected_[0]], slow).statistic)
    print(f"half_moons, first selected coordinate vs x1: |rho| Mahalanobis {rho_m:.4f}, Euclidean {rho_e:.4f}")
    # the acceptance for the Mahalanobis coordinate (|ρ| > 0.95 against x1): a specification, measured value
    # printed
    assert rho_m > 0.95
    with pytest.raises(ValueError, match="GeometricHarmonics"):
        mahalanobis.transform(y[:3])


def test_mahalanobis_distance_of_a_constant_covariance():
    """With C(x) ≡ C the distance (4.2) is the classical (x_j − x_i)ᵀ C⁻¹ (x_j − x_i)."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 3))
    L = rng.normal(size=(3, 3))
    C = L @ L.T + 0.1 * np.eye(3)
    distances = mahalanobis_squared_distances(X, np.broadcast_to(np.linalg.inv(C), (30, 3, 3)))
    delta = X[:, None, :] - X[None, :, :]
    np.testing.assert_allclose(distances, np.einsum("ija,ab,ijb->ij", delta, np.linalg.inv(C), delta), atol=1e-10)


def test_noise_covariances_need_bursts_and_shapes():
    moons = systems.get("half_moons")
    with pytest.raises(ValueError, match="n_bursts must be at least 2"):
        local_noise_covariances(moons.evolver(), np.ones((3, 2)), n_steps=1, n_bursts=1, seed=0)
    with pytest.raises(ValueError, match=r"covariances must have shape \(3, 2, 2\)"):
        DiffusionMaps(n_components=1, select="leading").fit(np.random.default_rng(0).normal(size=(3, 2)),
                                                            covariances=np.ones((3, 2)), seed=0)


def swiss_roll(n: int = 2000, seed: int = 0):
    """The standard swiss roll: t = 1.5π(1 + 2u), height 21 u', (t cos t, height, t sin t); layers 2π apart."""
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    height = 21 * rng.uniform(size=n)
    return np.column_stack([t * np.cos(t), height, t * np.sin(t)]), t, height


def swiss_roll_coordinates(seed: int) -> tuple[float, float, float]:
    """|Spearman ρ| of the first coordinate with t and of the second with the height, and the local-linear
    residual of the (standardized) height regressed on both coordinates, all diffusion-maps defaults."""
    X, t, height = swiss_roll(seed=seed)
    fit = DiffusionMaps(n_components=2).fit(X, seed=0)
    first, second = (fit.eigenvectors_ @ fit.loadings_).T
    standard = (height - height.mean()) / height.std()
    residual = np.sqrt(np.mean((standard - local_linear_fit(np.column_stack([first, second]), standard[:, None])[:, 0])
                               ** 2))
    return abs(stats.spearmanr(first, t).statistic), abs(stats.spearmanr(second, height).statistic), residual


# Issue 19's acceptance, with every default: the first coordinate is monotone in t (|ρ| > 0.99; ε bridging the
# layers, e.g. 3.4, gives ~0.64) and the second is the height: |ρ| > 0.85 and the height a function of the two
# coordinates (residual < 0.2). The height's mode (eigenvalue ratio (L/21)² ≈ 18, L ≈ 89.5 the roll's length)
# lies between the roll's fourth harmonic (16) and its product with ψ_1 (19); at n = 2000 the eigenvectors mix
# and choosing among them (Dsilva et al.'s sequential residuals) gave ρ(height) 0.16–0.97 over seeds 0–9.
# The rotation within their span (nonharmonic_loadings) gave, over seeds 0–11: ρ(t) ≥ 0.9997,
# ρ(height) 0.88–0.99, residual 0.09–0.14.
def test_swiss_roll_with_every_default():
    rho_t, rho_height, residual = swiss_roll_coordinates(seed=0)
    print(f"swiss roll: rho(first, t) {rho_t:.5f}, rho(second, height) {rho_height:.3f}, residual {residual:.3f}")
    # issue 19's acceptance thresholds (comment above the test, with the measured ranges over seeds 0–11: ρ(t) ≥ 0.9997,
    # ρ(height) 0.88–0.99, residual 0.09–0.14)
    assert rho_t > 0.99 and rho_height > 0.85 and residual < 0.2


@pytest.mark.slow
def test_swiss_roll_seed_study():
    """The acceptance above over 20 samples of the roll: at least 19 pass (measured: all 20; ρ(height) ≥ 0.870,
    residual ≤ 0.160)."""
    rows = np.array([swiss_roll_coordinates(seed) for seed in range(20)])
    print(np.round(rows, 4))
    passed = (rows[:, 0] > 0.99) & (rows[:, 1] > 0.85) & (rows[:, 2] < 0.2)
    assert passed.sum() >= 19


def test_automatic_epsilon_is_translation_and_rotation_invariant():
    """Distances from coordinate differences: a shift by 1e3 or a rotation changes ε at rounding level only."""
    X, _, _ = swiss_roll()
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    epsilon = kernel_sum_bandwidth(X, seed=0)
    for moved in (X + 1e3, X @ rotation.T, (X - 1e3) @ rotation.T):
        assert kernel_sum_bandwidth(moved, seed=0) == pytest.approx(epsilon, rel=1e-6)


def test_no_epsilon_nan_in_messages():
    """Issue 18: a bandwidth suggestion is always a number."""
    with pytest.raises(ValueError, match="all points coincide"):
        DiffusionMaps(n_components=1).fit(np.ones((20, 2)), seed=0)
    with pytest.raises(ValueError, match="epsilon must be a positive number"):
        DiffusionMaps(n_components=1, epsilon=float("nan")).fit(np.eye(5), seed=0)
