"""Umbrella sampling as a lifting operator, against exact conditional laws and free energies."""

import itertools
import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from eqfree import SDE, SDEEvolver, systems
from eqfree.errors import InputError
from eqfree.evolve import HarmonicBias, UnstableStepWarning
from eqfree.lift import ReweightedUmbrella, UmbrellaSampling, wrapped_difference
from eqfree.lift import umbrella as umbrella_module
from eqfree.restrict import CollectiveVariable, DiffusionMaps, GeometricHarmonics, local_noise_covariances
from eqfree.testing import check_micro_macro_consistency


def exact_x2_w1(system, samples) -> float:
    """W1 between samples and the exact N(1, 0.05), through a large exact reference draw."""
    reference = system.sample_conditional(10.0, 200_000, seed=99)[:, 1]
    return stats.wasserstein_distance(samples, reference)


def x2_w1_bound(window, n: int) -> float:
    """Bound on W1 of n kept x2 samples of a window at dt = 1 to N(1, 0.05): a perfect sampler's W1 has mean
    1.29 σ/√N_eff and sd 0.34 of that (tests/test_metrics.py's formula, simulated there), so mean + 3 sd =
    2.6 σ/√N_eff; N_eff = n/g, g = (1 + ρ)/(1 − ρ) the inefficiency of x2 (OU of rate a3 = 0.1) between kept
    frames Δt = (time between frames)·stride apart, ρ = e^{−a3 Δt}; plus the bias bounds: the scheme's variance of x2
    (worst EM's 0.0526: 0.005, the first test's docstring) and the reference draw's own W1 (1.29 σ/√2e5 = 6e-4)."""
    rho = math.exp(-0.1 * float(window.time[1] - window.time[0]) * window.attrs["stride"])
    return 2.6 * math.sqrt(0.05 * (1 + rho) / (1 - rho) / n) + 0.005 + 6e-4


# -- Figures 2-3: fast_slow_linear at x1 = 10 ----------------------------------------------------------
def test_known_coordinate_window_gives_the_exact_conditional_law(fast_slow):
    """Bias on x1 (eq. 2.2) from (0, 1): x1 settles at 10 + a1/κ, x2 ~ N(1, 0.05) untouched.

    At dt = 1 the system's scheme holds an OU coordinate of rate r and noise σ at variance σ²/(r(2 − r dt))
    (Euler–Maruyama) or σ²/(2r) (Leimkuhler–Matthews, exact for an OU); for x2 the worst is EM's
    0.0526: W1 to N(1, 0.05) is (0.2294 − 0.2236)√(2/π) = 0.005 from that alone, the bias term of
    :func:`x2_w1_bound`."""
    sampler = UmbrellaSampling(fast_slow.evolver(1.0), "x1", 0.5, n_steps=600, n_walkers=50, save_every=2,
                               initial=fast_slow.x0)
    window = sampler.window(10.0, seed=1)
    # warmup: a specification of the detector (mser_warmup), not an estimate: x1 relaxes from x0 at rate κ = 0.5
    # (ln(10/0.001) / κ ≈ 18 time units = 9 frames), x2 is stationary from the start; 50 frames (100 time units,
    # 10 relaxation times 1/a3 of x2) would discard a sixth of the run
    assert window.x.shape == (301, 50, 2) and window.attrs["warmup_frames"] < 50
    kept = window.isel(time=slice(window.attrs["warmup_frames"], None, window.attrs["stride"]))
    x1, x2 = kept.x.values[..., 0].ravel(), kept.x.values[..., 1].ravel()
    # biased x1: OU with rate κ around 10 + a1/κ; its variance at dt = 1 for the system's scheme (docstring)
    assert abs(x1.mean() - (10 + 1e-3 / 0.5)) < 1e-4
    variance = {"euler_maruyama": 1e-6 / (0.5 * 1.5), "leimkuhler_matthews": 1e-6 / (2 * 0.5)}[fast_slow.scheme]
    # variance: exact for the scheme (no bias); 4 standard errors of a variance, √(2g/n), g = the window's
    # inefficiency of x1 per kept frame (frames are thinned by the stride already: g ≈ 1). Old: rtol 0.1 ≈ 8 se
    g = max(1.0, window.attrs["inefficiency"] / window.attrs["stride"])
    np.testing.assert_allclose(x1.var(), variance, rtol=4 * math.sqrt(2 * g / x1.size))
    w1 = exact_x2_w1(fast_slow, x2)
    ks = stats.kstest(x2, "norm", args=(1.0, math.sqrt(0.05))).statistic
    bound = x2_w1_bound(window, x2.size)
    print(f"known x1: {x2.size} samples, W1 = {w1:.4f} (bound {bound:.4f}), KS = {ks:.4f}")
    assert w1 < bound  # (x2_w1_bound: perfect sampler's mean + 3 sd, plus the scheme's bias; old: 0.02)
    # bias energies are βU = κ/2 (x1 − 10)² per frame
    np.testing.assert_allclose(window.bias.values, 0.25 * (window.xi.values - 10) ** 2)


@pytest.fixture(scope="module")
def learned_coordinate():
    """Φ: geometric-harmonics extension of the first diffusion-map coordinate of one unbiased run (Figure 2, right)."""
    system = systems.get("fast_slow_linear")
    data = system.simulate(1, 20_000, seed=1)[::25, 0].values
    maps = DiffusionMaps(n_components=1).fit(data, seed=0)
    return data, GeometricHarmonics(epsilon=4 * maps.epsilon_).fit(data, maps.fit_transform(data, seed=0)[:, 0])


def test_learned_coordinate_window_gives_the_exact_conditional_law(fast_slow, learned_coordinate):
    """Bias on Φ at φ0 = Φ(10, 1) (eq. 2.3): restricted samples sit at φ0, x1 near 10, x2 ~ N(1, 0.05)."""
    data, extension = learned_coordinate
    point = np.array([[10.0, 1.0]])
    phi0 = float(extension(point)[0, 0])
    slope = float(extension.gradient(point)[0, 0, 0])  # dΦ/dx1: κ_Φ = 0.5 / slope² acts like κ = 0.5 on x1
    sampler = UmbrellaSampling(fast_slow.evolver(1.0), extension, 0.5 / slope**2, n_steps=600, n_walkers=50,
                               save_every=2, initial=data)
    window = sampler.window(phi0, seed=2)
    kept = window.isel(time=slice(window.attrs["warmup_frames"], None, window.attrs["stride"]))
    x = kept.x.values.reshape(-1, 2)
    # x1 (noise a2 = 1e-3, sd 0.001 in the window) follows the level set φ = φ0 + a1/(κ_φ s1) as x2 moves
    # (s = ∇φ at (10, 1)). Bias bound, the level set's displacement from x1 = 10 (as derived for
    # tests/test_cli_workflows.py::test_umbrella_on_a_saved_learned_coordinate): the restraint balancing the drift
    # a1 holds x1 at a1/κ = 0.002; its force on x2, −a1 s2/s1, moves x2 by −a1 s2/(s1 a3), hence x1 by |s2/s1|
    # times that; φ's curvature in x2 bends the level set by ½|∂²φ/∂x2²| Var(x2)/|s1|. Bound: that plus 4 standard
    # errors of the mean of the 50 walkers' medians (independent walkers). Old: |median − 10| < 0.1, ~100 se
    medians = np.median(kept.x.values[..., 0], axis=0)
    se = medians.std(ddof=1) / math.sqrt(medians.size)
    h = 1e-3
    s1, s2 = extension.gradient(point)[0, 0]
    s22 = (extension.gradient(point + [0, h])[0, 0, 1] - extension.gradient(point - [0, h])[0, 0, 1]) / (2 * h)
    a1, a3, variance = fast_slow.a1, fast_slow.a3, fast_slow.conditional_moments()[1]
    bias = a1 / 0.5 + abs(s2 / s1) * a1 * abs(s2) / (abs(s1) * a3) + 0.5 * abs(s22) * variance / abs(s1)
    print(f"learned phi: mean walker median x1 - 10 = {medians.mean() - 10:.5f} +- {se:.5f}, bias bound {bias:.5f}")
    assert abs(medians.mean() - 10.0) < 4 * se + bias  # (derived above)
    w1 = exact_x2_w1(fast_slow, x[:, 1])
    ks = stats.kstest(x[:, 1], "norm", args=(1.0, math.sqrt(0.05))).statistic
    bound = x2_w1_bound(window, len(x))
    print(f"learned phi: phi0 = {phi0:.4f}, {len(x)} samples, W1 = {w1:.4f} (bound {bound:.4f}), KS = {ks:.4f}")
    # x2_w1_bound plus the restraint's shift of x2's mean, a1|s2/s1|/a3 (above): a shift moves W1 by at most its
    # size. Old: 0.02
    assert w1 < bound + abs(a1 * s2 / (s1 * a3))


def test_window_outside_the_learned_range_warns_with_the_range(fast_slow, learned_coordinate):
    data, extension = learned_coordinate
    low, high = extension.value_range_[:, 0]
    # walkers started far beyond the data (x1 = 100; the data span x1 in [0, 20]), where Φ is flat: started at x0 they
    # left the data only when the window lay on the side of the range away from Φ(x0), which the arbitrary sign of
    # the diffusion-map coordinate decides
    far = fast_slow.x0 + np.array([100.0, 0.0])
    sampler = UmbrellaSampling(fast_slow.evolver(1.0), extension, 1.0, n_steps=10, n_walkers=2, initial=far)
    with pytest.warns(UserWarning, match=f"outside \\[{low:g}, {high:g}\\]"):
        with pytest.raises(ValueError, match="the CV does not change"):  # Φ is flat far from the data
            sampler.window(high + 0.5 * (high - low), seed=0)


def test_half_moons_window_on_the_mahalanobis_coordinate_has_the_width_of_k():
    """US on the Mahalanobis Φ at φ0 = 0: Φ of the samples concentrates at φ0 with the OU width of κ.

    Locally dΦ ≈ −κ g² (Φ − φ0) dt + ∇Φᵀσ dW (g² = |∇Φ|², s² = |σᵀ∇Φ|²): Euler–Maruyama's chain
    Φ' = (1 − κ g² dt) Φ + s √dt ξ has variance s² / (κ g² (2 − κ g² dt)), averaged over the samples (printed: a
    linearization). Asserted exactly: the window samples the invariant law π of the biased Euler–Maruyama chain
    x' = x + (b − κ u ∇Φ) dt + σ √dt ξ (u = Φ − φ0, unit mobility), so u's first two moments are stationary,
    E_π[m_p] = 0 with m_p(x) = E_ξ[u(x')^p] − u(x)^p, p = 1, 2 — the Itô balance of the restraint's pull against
    the drift b·∇Φ and the noise's ½ tr(σσᵀ∇²Φ), in the scheme's own discrete form (no O(dt) bias). E_ξ by
    Gauss–Hermite, 5 nodes per noise dimension (7 nodes change the means by < 3e-8, 0.002 standard errors)."""
    moons = systems.get("half_moons")
    starts = moons.from_original(np.column_stack([0.15 * np.arange(10), np.ones(10)]))
    # data seed 0: Φ's steepest gradient at the starts (all of y) must admit the step, κ g² dt < 2, which depends on
    # the draw of the data (the extension is steep where the data thin out): over data seeds 0-7, 3 are refused at the
    # start (κ g² up to 83.6 against 2/dt = 40)
    y = moons.simulate(10, 1000, seed=0, x0=starts)[34::10].values.reshape(-1, 2)
    covariances = local_noise_covariances(moons.evolver(), y, n_steps=2, n_bursts=20, seed=3)
    maps = DiffusionMaps(n_components=1).fit(y, covariances=covariances, seed=0)
    phi = maps.eigenvectors_[:, maps.selected_[0]]
    epsilon = np.median(np.sum((y[:, None] - y[None]) ** 2, -1)) / 20
    extension = GeometricHarmonics(epsilon=epsilon).fit(y, phi / phi.std())
    # κ g² dt ≈ 0.79 on average: Φ forgets its last value within a step or two, so the 100 walkers × 200 frames
    # (every 5th of 1000 steps; 3000 before) are ~2·10⁴ independent samples: relative standard error of the
    # variance √(2/n) = 1.0 % (mean: √(var/n) = 0.007 √var). The bounds below are the linearization's bias bound
    # (measured −1.7 % here, −3.8 % at 3000 steps) plus ≥ 6 of those standard errors; a stiffness wrong by 20 %
    # moves the variance by 20 % and fails
    kappa, dt = 0.5, moons.dt
    sampler = UmbrellaSampling(moons.evolver(dt), extension, kappa, n_steps=1000, n_walkers=100, save_every=5,
                               initial=y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnstableStepWarning)
        window = sampler.window(0.0, seed=4)
    kept = window.isel(time=slice(window.attrs["warmup_frames"], None, window.attrs["stride"]))
    states, restricted = kept.x.values.reshape(-1, 2), kept.xi.values.ravel()
    gradient = extension.gradient(states)[:, 0, :]
    sigma = moons.diffusion(torch.as_tensor(states), 0.0).numpy()  # (n, 2, m)
    g2 = np.sum(gradient**2, axis=1)
    # the evolver's check along the run (tested on its own below): where the explicit step is unstable at a kept
    # sample (κ g² dt ≥ 2; kept samples are saved states), the run warned
    if np.max(kappa * g2 * dt) >= 2:
        assert any(issubclass(w.category, UnstableStepWarning) for w in caught)
    s2 = np.sum(np.einsum("nd,ndm->nm", gradient, sigma) ** 2, axis=1)
    expected_var = np.mean(s2 / (kappa * g2 * (2 - kappa * g2 * dt)))
    print(f"half_moons: Phi mean {restricted.mean():+.2e}, var {restricted.var():.3e} "
          f"(expected {expected_var:.3e}), {restricted.size} samples; "
          f"Phi spans {np.ptp(phi / phi.std()):.2f} on the data")
    # the docstring's identities E_π[m_p] = 0, each within 4 standard errors of a mean over the 100 independent walkers
    # (sd of the walkers' means of m_p / √100); no bias term, the identities being exact for the scheme (over window
    # seeds 4–11 the z were within 2.1 for p = 1 and 2.4 for p = 2, sd 1.2 and 1.3, measured). Old: |mean u| <
    # 0.1 √var and var within 4√(2/n) + 0.04 of the linearized formula, both allowances not derived (the continuous
    # Itô shift E[½ tr(σσᵀ∇²Φ) + b·∇Φ]/E[κ g²] = 7e-4 misses the measured mean 5e-5 by 3.6 se: u and g² correlate);
    # the formula held at seed 4 only by luck: over seeds 5–11 the samples' variance is −46 … +38 % off it (4 of 7
    # beyond the old 8 %), κ g² dt reaching 2.4 at some samples, where the linearized chain has no variance
    def moment_changes(k, center=0.0):
        """z of the walkers' mean m_1, m_2 (u = Φ − center) at the samples for the chain with spring constant k."""
        nodes, weights = np.polynomial.hermite_e.hermegauss(5)
        weights = weights / weights.sum()
        u = restricted - center
        drift = moons.drift(torch.as_tensor(states), 0.0).numpy() - k * u[:, None] * gradient
        m1, m2 = -u, -(u**2)
        for index in itertools.product(range(nodes.size), repeat=sigma.shape[2]):
            moved = states + drift * dt + math.sqrt(dt) * np.einsum("ndm,m->nd", sigma, nodes[list(index)])
            step, w = extension(moved)[:, 0] - center, np.prod(weights[list(index)])
            m1, m2 = m1 + w * step, m2 + w * step**2
        walkers = [m.reshape(-1, kept.sizes["walker"]).mean(axis=0) for m in (m1, m2)]  # samples in (time, walker)
        return tuple(w.mean() / (w.std(ddof=1) / math.sqrt(w.size)) for w in walkers)

    (z1, z2), moved = moment_changes(kappa), moment_changes(kappa, 0.1 * math.sqrt(restricted.var()))[0]
    print(f"stationarity of u's moments under the window's chain: z = {z1:.2f}, {z2:.2f} (centre moved: {moved:.1f})")
    # (the figures in these comments were measured at data seed 2 with the former noise stream; at data seed 0 with
    # numpy's: z = 2.91, −1.57, the centre moved 10.4, var 1.64e-3 against the linearized 1.73e-3, 9800 samples)
    assert abs(z1) < 4 and abs(z2) < 4  # (derived above: 4 standard errors, no bias)
    # not vacuous: the same samples judged as a window centred 0.1 sd of Φ away (the old bound on the mean) fail the
    # first identity, z ≈ 12 (0.05 sd: 6.4, measured at seed 4). The second is weak against a wrong κ (2κ: z ≈ 3.5): the
    # walkers' means of m_2 then spread with where they sit, where g² varies (κ g² dt spans 2e-4 … 2.4 over the samples)
    assert abs(moved) > 4


# -- periodic CV ------------------------------------------------------------------------------------
def ring_sde():
    """Overdamped Langevin in V = 10 (|x| − 1)², β = 1: the angle is uniform at equilibrium."""
    def drift(x, t):
        r = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        return -20 * (r - 1) * x / r
    return SDE(drift, lambda x, t: torch.full((2,), math.sqrt(2.0), dtype=x.dtype))


def angle(x):
    return torch.atan2(x[..., 1], x[..., 0])


def test_bias_on_an_angle_near_pi_wraps_instead_of_jumping():
    """Window at θ0 = π − 0.05 with κ = 20: the biased angle is a wrapped N(θ0, 1/κ) (the radial factor
    does not depend on θ), and walkers crossing ±π feel the small wrapped force, not κ·2π."""
    cv = CollectiveVariable(angle, name="theta", period=2 * math.pi)
    start = np.array([math.cos(3.0), math.sin(3.0)])
    sampler = UmbrellaSampling(SDEEvolver(ring_sde(), 2e-3), cv, 20.0, n_steps=3000, n_walkers=200, save_every=10,
                               initial=start)
    window = sampler.window(math.pi - 0.05, seed=5)
    theta = window.xi.values[window.attrs["warmup_frames"]:]
    assert (theta < 0).mean() > 0.1  # the walkers do cross the branch cut
    offset = wrapped_difference(theta, math.pi - 0.05, 2 * math.pi)
    n_eff = offset.size / window.attrs["inefficiency"]
    # mean: 4 standard errors √(var/n_eff), var = 1/κ, n_eff from the window's statistical inefficiency; no bias
    # (the law is symmetric about θ0)
    assert abs(offset.mean()) < 4 * math.sqrt(1 / 20 / n_eff)
    # variance: 4 relative standard errors √(2/n_eff) plus Euler–Maruyama's bias: the angle (r ≈ 1) is an OU of
    # rate κ, whose EM variance is 1/(κ(1 − κ dt/2)), relative bias κ dt/2 = 20 · 2e-3 / 2 = 0.02; the truncation
    # of the wrapped normal at ±π from θ0 (14 sd) is negligible
    np.testing.assert_allclose(offset.var(), 1 / 20, rtol=4 * math.sqrt(2 / n_eff) + 0.02)
    assert window.bias.values.max() < 12  # βU = 10 d² stays O(1): no 2π jump (that would be ~180)


# -- windows across a grid, reproducibility, the Lift ----------------------------------------------------
def test_windows_do_not_depend_on_tasks_or_executor(fast_slow, monkeypatch):
    monkeypatch.setattr(umbrella_module, "FRAMES_PER_BLOCK", 7)  # 100 steps: 15 blocks, the last one partial
    sampler = UmbrellaSampling(fast_slow.evolver(1.0), "x1", 0.5, n_steps=100, n_walkers=4, warmup=10,
                               initial=fast_slow.x0)
    grid = [9.0, 10.0, 11.0]
    together = sampler.run(grid, seed=3)
    with ThreadPoolExecutor(2) as pool:
        apart = sampler.run(grid, seed=3, executor=pool)
    assert together.identical(apart)
    assert together.identical(sampler.run(grid, seed=3, windows_per_task=2))
    # without states: the same CV samples and bias energies, no x
    light = sampler.run(grid, seed=3, save_states=False)
    assert "x" not in light and light.identical(together.drop_vars(["x", "coord"]))
    np.testing.assert_array_equal(together.window_index.values, np.repeat([0, 1, 2], together.n_samples.values))
    # a window alone is the first window of a run with the same seed
    alone = sampler.window(9.0, seed=3)
    frames = np.arange(alone.attrs["warmup_frames"], alone.sizes["time"], alone.attrs["stride"])
    np.testing.assert_array_equal(alone.x.values[frames].reshape(-1, 2),
                                  together.x.values[together.window_index.values == 0])
    assert dict(together.sizes) == {"sample": int(together.n_samples.sum()), "coord": 2, "window": 3}


def test_umbrella_lift_passes_the_micro_macro_check(fast_slow):
    sampler = UmbrellaSampling(fast_slow.evolver(1.0), "x1", 0.5, n_steps=60, n_walkers=8, initial=fast_slow.x0)
    states = sampler(np.array([10.0]), 40, seed=6)
    assert states.shape == (40, 2)
    check_micro_macro_consistency(sampler, lambda x: x[..., :1], np.array([10.0]), 40, seed=6, tolerance=0.01)


# -- double well: PMF by WHAM and MBAR, unbiased conditional lift ------------------------------------------
def double_well_pmf_reference(system, edges):
    """Exact −log ∫ e^{−U} dx2 averaged over each bin (what a histogram estimates), zero at its minimum."""
    shift = system.potential(system.x0)
    density = lambda x1: math.exp(-(system.potential(np.array([x1, 0.0])) - shift))
    mass = np.array([integrate.quad(density, a, b)[0] / (b - a) for a, b in zip(edges[:-1], edges[1:])])
    pmf = -np.log(mass)
    return pmf - pmf.min()


def double_well_study(walkers, n_steps, save_every, seed):
    system = systems.get("double_well")
    sampler = UmbrellaSampling(system.evolver(5e-4), "x1", 20.0, n_steps=n_steps, n_walkers=walkers,
                               save_every=save_every, initial=np.zeros(2))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="window at .* still relaxing")
        windows = sampler.run(np.linspace(-3.5, 3.5, 25), seed=seed)
    fits = {name: sampler.reweight(windows, name, bins=150, seed=0, **({"n_bootstrap": 40} if name == "wham" else {}))
            for name in ("wham", "mbar")}
    return system, sampler, windows, fits


def check_pmf(system, fits, tolerance_of):
    for name, fitted in fits.items():
        pmf = fitted.pmf_
        edges = np.concatenate([pmf.cv.values - pmf.bin_width.values / 2,
                                [pmf.cv.values[-1] + pmf.bin_width.values[-1] / 2]])
        exact = double_well_pmf_reference(system, edges)
        # shift both to the same reference: the exact minimum bin
        error = pmf.pmf.values - exact
        error -= error[np.argmin(exact)]
        low = exact < 8
        excess = np.abs(error[low]) / tolerance_of(pmf.pmf_stderr.values[low])
        print(f"{name}: max |PMF error| = {np.abs(error[low]).max():.3f} kT over {low.sum()} bins, "
              f"max error/tolerance {excess.max():.2f}")
        assert excess.max() < 1
    wham, mbar = fits["wham"].pmf_, fits["mbar"].pmf_
    difference = np.abs(wham.pmf.values - mbar.pmf.values)
    combined = np.hypot(wham.pmf_stderr.values, mbar.pmf_stderr.values)
    resolved = combined > 0  # the reference bins have no error bar
    print(f"WHAM - MBAR: max {difference.max():.3f} kT, "
          f"max in combined se {np.max(difference[resolved] / combined[resolved]):.2f}")
    assert np.all(difference <= 2 * combined + 0.05)  # same data: the binning bias of WHAM (≤ 0.05 kT at 150 bins)


def test_double_well_pmf_by_wham_and_mbar_matches_quadrature():
    """Small run: errors within 4 se plus 0.07 kT (Euler–Maruyama at dt = 5e-4 shifts the invariant law by
    ~dt |U'|²/4 ≤ 0.05 kT where the PMF is below 8 kT; WHAM's binning bias ≤ 0.05 kT)."""
    system, sampler, windows, fits = double_well_study(walkers=200, n_steps=4000, save_every=40, seed=1)
    check_pmf(system, fits, lambda se: 4 * se + 0.07)
    overlap = fits["mbar"].overlap_
    # a specification: eqfree's low-overlap threshold (eqfree.reweight.common.OVERLAP_THRESHOLD = 0.03); the
    # windows' spacing 7/24 = 1.3 sd of a window (1/√20) gives neighbours an exact overlap ≈ 0.24 for a flat F
    # (quadrature of Gaussian windows), far above it
    assert np.all(np.diag(overlap, 1) > 0.03)
    np.testing.assert_allclose(overlap.sum(axis=1), 1, atol=1e-10)


@pytest.mark.slow
def test_double_well_pmf_within_015_kT():
    """The acceptance study: 25 windows, κ = 20, 800 walkers × 16000 steps each; |error| < 0.15 kT below 8 kT."""
    system, sampler, windows, fits = double_well_study(walkers=800, n_steps=16_000, save_every=200, seed=2)
    check_pmf(system, fits, lambda se: np.full_like(se, 0.15))


def test_reweighted_windows_lift_the_unbiased_kernel_law():
    """Resampling with w_n ∝ W_n K_h(x1 − z) gives x1 ~ e^{−F(x1)} K_h(x1 − z): its mean by quadrature.

    The bias pulls each window's x1 towards its centre; without the weights W_n the mean would be off."""
    system, sampler, windows, fits = double_well_study(walkers=100, n_steps=2000, save_every=40, seed=3)
    z, h = -1.0, 0.15
    lift = ReweightedUmbrella(windows, fits["mbar"], bandwidth=h)
    shift = system.potential(system.x0)
    law = lambda x1: math.exp(-(system.potential(np.array([x1, 0.0])) - shift) - 0.5 * ((x1 - z) / h) ** 2)
    exact_mean = (integrate.quad(lambda x: x * law(x), z - 8 * h, z + 8 * h)[0]
                  / integrate.quad(law, z - 8 * h, z + 8 * h)[0])
    weights = lift.weights(z)
    x1 = windows.x.values[:, 0]
    mean = np.sum(weights * x1)
    se = math.sqrt(np.sum(weights * (x1 - mean) ** 2) / (1 / np.sum(weights**2)))
    print(f"reweighted x1 mean at z = {z}: {mean:.4f} ± {se:.4f}, exact {exact_mean:.4f}")
    # 4 standard errors (weighted variance over the Kish ESS; the pooled samples are thinned by each window's
    # stride ⌈g⌉, so about independent) plus Euler–Maruyama's bias: dt = 5e-4 shifts the PMF by δF ≈ dt U'²/4,
    # which moves the kernel law's mean by ≈ h² |δF'| ≤ 0.15² · max|dt U'U''/2| over z ± 0.3 = 1.2e-4, bounded by
    # 2e-4. Old: + 0.01 (50 times that; measured offset 0.0009 ± 0.0044 at seed 3)
    assert abs(mean - exact_mean) < 4 * se + 2e-4
    states = lift(np.array([z]), 500, seed=7)
    # an invariant in practice: the Gaussian kernel leaves a mass ~e^{−32} beyond 8h (times e^{ΔF} ≲ e^{5} of the
    # PMF's slope over that range), so 500 draws land there with probability < 1e-10
    assert states.shape == (500, 2) and np.all(np.abs(states[:, 0] - z) < 8 * h)
    with pytest.raises(InputError, match="save_states=True"):
        ReweightedUmbrella(windows.drop_vars("x"), fits["mbar"], bandwidth=h)


# -- bad input --------------------------------------------------------------------------------------
def test_bad_input_is_refused_clearly(fast_slow):
    with pytest.raises(ValueError, match="kappa"):
        UmbrellaSampling(fast_slow.evolver(1.0), "x1", 0.0, n_steps=10, initial=fast_slow.x0)
    with pytest.raises(ValueError, match="kappa"):
        UmbrellaSampling(fast_slow.evolver(1.0), "x1", -1.0, n_steps=10, initial=fast_slow.x0)
    sampler = UmbrellaSampling(fast_slow.evolver(1.0), "x1", 0.5, n_steps=10, n_walkers=2, initial=fast_slow.x0)
    with pytest.raises(ValueError, match="non-empty"):
        sampler.run([], seed=0)
    with pytest.raises(ValueError, match="out of range"):
        UmbrellaSampling(fast_slow.evolver(1.0), "x3", 0.5, n_steps=10, initial=fast_slow.x0)
    root = CollectiveVariable(lambda x: torch.sqrt(x[..., 0]), name="sqrt_x1")
    at_origin = UmbrellaSampling(fast_slow.evolver(1.0), root, 1.0, n_steps=10, n_walkers=2, initial=fast_slow.x0)
    with pytest.raises(ValueError, match="gradient of the CV sqrt_x1 is not finite"):
        at_origin.window(1.0, seed=0)
    with pytest.raises(ValueError, match="period"):
        CollectiveVariable(angle, period=-1.0)
    with pytest.raises(ValueError, match="estimator"):
        sampler.reweight(sampler.run([1.0, 2.0], seed=0), "tram")


def test_the_cv_contract_is_checked_before_the_first_step(fast_slow):
    """A CV written for (walkers, dim) with x[:, 0] is refused on its (2, 3, dim) probe, showing both shapes,
    before any step: at construction when the evolver names its coordinates, else before the first step."""
    first_axis = CollectiveVariable(lambda x: x[:, 0], name="first")
    with pytest.raises(InputError, match=r"shape \(2, 3, dim\) it returned \(2, 2\), expected \(2, 3\)"):
        UmbrellaSampling(fast_slow.evolver(1.0), first_axis, 0.5, n_steps=10, initial=fast_slow.x0)
    # dim 3: x[:, 0] has the expected shape on the (2, 3, dim) probe but the values of the wrong states
    calls = []

    def drift(x, t):
        calls.append(t)
        return -x

    unnamed = SDEEvolver(SDE(drift, lambda x, t: torch.ones_like(x)), 0.01)  # no coords: dim known from the states
    sampler = UmbrellaSampling(unnamed, first_axis, 1.0, n_steps=10, n_walkers=2, initial=np.zeros(3))
    with pytest.raises(InputError, match=r"other values for the same states in a \(2, 3, dim\) batch"):
        sampler.run([0.0, 1.0], seed=0)
    failing = CollectiveVariable(lambda x: x[:, :, 0], name="two_axes")
    with pytest.raises(InputError, match=r"fails on states of shape \(2, dim\)"):
        UmbrellaSampling(unnamed, failing, 1.0, n_steps=10, n_walkers=2, initial=np.zeros(3)).window(0.0, seed=0)
    assert calls == []
    UmbrellaSampling(fast_slow.evolver(1.0), CollectiveVariable(lambda x: x[..., 0]), 0.5, n_steps=10,
                     initial=fast_slow.x0)  # the contract written for (..., dim) passes


def test_walkers_without_a_start_name_what_to_pass(fast_slow):
    with pytest.raises(InputError, match="pass initial states .* or define x0"):
        UmbrellaSampling(fast_slow.evolver(1.0), "x1", 0.5, n_steps=10, initial=None)


def test_a_run_that_cannot_fit_in_memory_is_refused_before_any_step(fast_slow):
    """10^12 steps of 100 walkers: 16 B per walker and frame of CV series far beyond any memory."""
    sampler = UmbrellaSampling(fast_slow.evolver(1.0), "x1", 0.5, n_steps=10**12, n_walkers=100, initial=fast_slow.x0)
    with pytest.raises(InputError, match=r"GiB of memory available; raise save_every \(--save-every\)"):
        sampler.run([9.0, 10.0], seed=0)
    with pytest.raises(InputError, match=r"call run\(\), which keeps the CV series alone"):
        sampler.window(10.0, seed=0)


def test_a_restraint_too_stiff_for_the_step_is_refused_at_the_start_and_flagged_along_the_run():
    """ξ = x1²/2 has |∇ξ|² = x1², so the restraint's stiffness κ x1² grows away from the origin. A start where
    κ x1² dt ≥ 2 is refused with the largest stable dt; a start where it is stable but a run that reaches it
    warns with the share of saved states where it is unstable — the same share computed here from the path."""
    cv = CollectiveVariable(lambda x: 0.5 * x[..., 0] ** 2, name="half_square")
    sde = SDE(lambda x, t: torch.zeros_like(x), lambda x, t: torch.full((2,), 0.3, dtype=x.dtype), beta=1.0)
    stiff = SDEEvolver(sde, 0.6).biased(HarmonicBias(cv, 1.0, 2.0))  # pulls x1 towards ±2, where κ x1² dt = 2.4
    with pytest.raises(InputError, match=r"dt < 0\.5;"):  # 2/(κ x1²) at x1 = 2
        stiff(np.array([[2.0, 0.0]]), 10, seed=0)
    with pytest.warns(UnstableStepWarning) as caught:
        path = stiff(np.array([[0.5, 0.0]] * 8), 50, seed=0)
    share = np.mean(path.values[..., 0] ** 2 * 0.6 >= 2)
    assert share > 0 and f"at {share:.2%} of the saved states" in str(caught[0].message)
    gentle = SDEEvolver(sde, 0.05).biased(HarmonicBias(cv, 1.0, 2.0))  # κ x1² dt = 0.2 at x1 = 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnstableStepWarning)
        gentle(np.array([[0.5, 0.0]] * 8), 50, seed=0)
