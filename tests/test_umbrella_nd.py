"""Umbrella sampling on several CVs at once: windows against the exact biased law, the bias energies against
their closed form, and the n-D PMF by MBAR against the potential."""

import math

import numpy as np
import pytest
from scipy import integrate

from eqfree import systems
from eqfree.errors import InputError
from eqfree.lift import UmbrellaSampling
from eqfree.reweight import free_energy_surface

WELL = systems.get("double_well")  # U = x1⁴/4 − 3 x1² + x1 + x2²/2, β = 1


def biased_x1_moments(kappa: float, z: float) -> tuple[float, float]:
    """E[x1] and E[x1²] under exp(−β(U1(x1) + κ/2 (x1 − z)²)), U1 the x1 part of U, by quadrature."""
    def weight(x1):
        return math.exp(-WELL.beta * (WELL.potential(np.array([x1, 0.0])) + 0.5 * kappa * (x1 - z) ** 2))
    moments = [integrate.quad(lambda x1, p=p: x1**p * weight(x1), -8, 8, epsabs=0, epsrel=1e-12)[0] for p in range(3)]
    return moments[1] / moments[0], moments[2] / moments[0]


def test_a_window_on_two_cvs_has_the_moments_of_the_exact_biased_law():
    """double_well restrained on (x1, x2) at z = (0, 0.5), κ = (10, 3): the biased law exp(−β(U + Σ κ_i/2 (x_i −
    z_i)²)) factorizes (U separates), so x1's moments are 1-D quadratures, x2 ~ N(κ2 z2/(1 + κ2), 1/(β(1 + κ2)))
    and E[x1 x2] = E[x1] E[x2].

    Errors: every walker is independent; the standard error of each moment is the spread of the 200 walkers'
    own time-averages over √200 (their frames' correlation is inside each average). Bias: the system's scheme
    (Leimkuhler–Matthews) is exact for the OU x2 and O(dt²) for x1: with the biased curvature U1'' + κ1 ≈ 4 at
    dt = 0.01, (4 dt)² ≈ 2e-3 relative on the variance 0.25, about 4e-4 absolute, a tenth of a standard error
    (≈ 0.004). Bound: 4 standard errors for each of the five moments (two-sided normal, 6e-5 each)."""
    kappa, z = (10.0, 3.0), np.array([0.0, 0.5])
    sampler = UmbrellaSampling(WELL.evolver(), ["x1", "x2"], kappa, n_steps=2000, n_walkers=200, save_every=5,
                               initial=WELL.x0)
    window = sampler.window(z, seed=3)
    assert window.xi.dims == ("time", "walker", "cv") and list(window.cv.values) == ["x1", "x2"]
    kept = window.isel(time=slice(window.attrs["warmup_frames"], None))
    x1, x2 = kept.x.values[..., 0], kept.x.values[..., 1]  # (time, walker)
    m1, s1 = biased_x1_moments(kappa[0], z[0])
    precision = WELL.beta * (WELL.d + kappa[1])
    m2 = kappa[1] * z[1] / (WELL.d + kappa[1])
    exact = {"x1": m1, "x2": m2, "x1²": s1, "x2²": m2**2 + 1 / precision, "x1 x2": m1 * m2}
    measured = {"x1": x1, "x2": x2, "x1²": x1**2, "x2²": x2**2, "x1 x2": x1 * x2}
    for name, values in measured.items():
        per_walker = values.mean(axis=0)
        stderr = per_walker.std(ddof=1) / math.sqrt(per_walker.size)
        assert abs(per_walker.mean() - exact[name]) < 4 * stderr, (name, per_walker.mean(), exact[name], stderr)
    # the window's own bias column is βΣκ_i/2 (x_i − z_i)² at its own CVs, to rounding
    xi = window.xi.values
    by_hand = 0.5 * WELL.beta * (kappa[0] * (xi[..., 0] - z[0]) ** 2 + kappa[1] * (xi[..., 1] - z[1]) ** 2)
    np.testing.assert_allclose(window.bias.values, by_hand, rtol=1e-12, atol=1e-12)


def test_the_lift_on_two_cvs_takes_a_point_of_two_and_refuses_other_shapes():
    """The Lift returns n states of the restrained law at z (2,): their mean x2 is κ2 z2/(1 + κ2) within 4 standard
    errors (independent walkers, the law above); a z of one value is refused in one line."""
    sampler = UmbrellaSampling(WELL.evolver(), ["x1", "x2"], 20.0, n_steps=500, initial=WELL.x0)
    states = sampler(np.array([-2.0, 1.0]), 400, seed=5)
    assert states.shape == (400, 2)
    mean, stderr = states[:, 1].mean(), states[:, 1].std(ddof=1) / math.sqrt(400)
    # 4 standard errors over the 400 independent walkers' last states; no bias: x2 is an OU of rate d + κ2 = 21,
    # relaxed from x0 for 500 steps of 0.01 (105 relaxation times), whose mean Leimkuhler–Matthews keeps exactly
    assert abs(mean - 20 / 21) < 4 * stderr
    with pytest.raises(InputError, match=r"lifts one point of shape \(2,\)"):
        sampler(np.array([1.0]), 4, seed=0)


def test_reduced_bias_on_several_cvs_wraps_each_periodic_cv():
    """βU_k(ξ_n) = Σ_i βκ_i/2 d_i² with d_2 wrapped into [−2, 2) (period 4) and d_1 not: the closed form at chosen
    values, to rounding."""
    sampler = UmbrellaSampling(WELL.evolver(), ["x1", "x2"], [1.0, 2.0], n_steps=10, initial=WELL.x0,
                               period=[None, 4.0])
    values = np.array([[0.0, 1.9], [3.0, -1.9]])
    centers = np.array([[0.0, -1.9], [1.0, 1.9]])
    d2 = np.array([[1.9 - 4 + 1.9, -1.9 + 1.9], [0.0, -1.9 - 1.9 + 4]])  # wrapped x2 − z2, (K, N)
    d1 = values[None, :, 0] - centers[:, None, 0]
    np.testing.assert_allclose(sampler.reduced_bias(values, centers), 0.5 * d1**2 + 0.5 * 2.0 * d2**2, atol=1e-12)
    with pytest.raises(InputError, match="one kappa and one period per CV"):
        UmbrellaSampling(WELL.evolver(), ["x1", "x2"], [1.0, 2.0, 3.0], n_steps=10, initial=WELL.x0)


def exact_bin_free_energy(function, low: float, high: float) -> float:
    """−log of the bin average of exp(−βf) over [low, high], by quadrature."""
    weight, _ = integrate.quad(lambda x: math.exp(-WELL.beta * function(x)), low, high, epsabs=0, epsrel=1e-12)
    return -math.log(weight / (high - low))


def test_mbar_pmf_on_two_cvs_matches_the_potential_bin_by_bin():
    """24 windows (6 × 4) on (x1, x2) of double_well, κ = 5, MBAR through pymbar's FES on a 10 × 6 histogram. The
    unbiased law of (x1, x2) is exp(−βU), so the truth of bin b is −log of the bin average of exp(−βU) (separable:
    a product of 1-D quadratures; no bin-width bias, since the same average is what the histogram estimates),
    relative to the bin that the estimate takes as its reference. Bound: 4 of pymbar's analytical standard errors
    of F_b − F_ref at every bin holding ≥ 20 samples (where the asymptotic error applies; two-sided normal 6e-5 a
    bin, < 0.4 % over the 60); the scheme's O(dt²) bias at dt = 0.01 (≈ 1e-3 kT) is far below the errors (≥ 0.05)."""
    sampler = UmbrellaSampling(WELL.evolver(), ["x1", "x2"], 5.0, n_steps=1000, n_walkers=50, save_every=5,
                               initial=WELL.x0)
    grid = np.array([(a, b) for a in np.linspace(-2.5, 2.5, 6) for b in np.linspace(-1.5, 1.5, 4)])
    windows = sampler.run(grid, seed=1)
    assert windows.xi.dims == ("sample", "cv") and windows.center.shape == (24, 2)
    edges = [np.linspace(-2.5, 2.5, 11), np.linspace(-1.5, 1.5, 7)]
    surface = free_energy_surface(windows, edges)
    u1 = lambda x1: float(WELL.potential(np.array([x1, 0.0])))  # noqa: E731  (the x1 part of U)
    u2 = lambda x2: 0.5 * WELL.d * x2**2  # noqa: E731
    exact = np.add.outer([exact_bin_free_energy(u1, a, b) for a, b in zip(edges[0][:-1], edges[0][1:])],
                         [exact_bin_free_energy(u2, a, b) for a, b in zip(edges[1][:-1], edges[1][1:])])
    reference = tuple(int(np.flatnonzero(np.isclose(c, r))[0])
                      for c, r in zip((surface.x1.values, surface.x2.values), surface.attrs["reference"]))
    exact -= exact[reference]
    populated = surface.n_samples.values >= 20
    assert populated.sum() >= 40
    error = np.abs(surface.pmf.values - exact)[populated]
    assert np.all(error <= 4 * surface.pmf_stderr.values[populated])  # the reference bin: 0 ≤ 0
