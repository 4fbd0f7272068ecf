"""Coarse derivatives, projective integration and the coarse right-hand side against known solutions."""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.integrate import solve_ivp
from scipy.linalg import expm
from scipy.optimize import brentq

from eqfree import CoarseTimeStepper, Coordinates, FunctionLift, systems
from eqfree.coarse import CoarseRHS, ODEBursts, WalkerBursts, coarse_derivative, projective_integrate
from eqfree.coarse.projective import TABLEAUS
from eqfree.seeding import as_seed_sequence

# -- linear stiff ODE, inner forward Euler ------------------------------------------------------------

def linear_bursts(eigenvalues, dt, tau, t_heal, basis):
    """Forward Euler bursts of x' = A x, A = V diag(λ) V⁻¹, restricted to the whole state."""
    a = basis @ np.diag(eigenvalues) @ np.linalg.inv(basis)

    def burst(z, n_steps):
        states = [z]
        for _ in range(n_steps):
            states.append(states[-1] + dt * a @ states[-1])
        return np.array(states)

    return a, ODEBursts(burst, dt=dt, tau=tau, t_heal=t_heal)


def test_projective_euler_matches_the_exponential_to_first_order():
    """x' = A x with eigenvalues −1 and −100, inner forward Euler with δt = 1/100 (which removes the
    fast mode in one step), tail = the last two of τ = 2δt, so the anchor is t̄ = 1.5δt. Per macro step
    the slow mode is multiplied by e^{−t̄}(1 − h), h = Δ − t̄, instead of e^{−Δ}: a relative error h²/2
    per step, T h²/(2Δ) at time T, first order in Δ once t̄ ≪ Δ. The iterate itself is exactly
    V diag(σ(μ)^N) V⁻¹ x0 with σ(μ) = μ((M + 1)μ − M), μ = 1 + λδt, M = (Δ − τ)/δt."""
    dt, T = 0.01, 2.0
    basis = np.array([[1.0, 0.5], [0.3, 1.0]])
    a, bursts = linear_bursts([-1.0, -100.0], dt, tau=2 * dt, t_heal=dt, basis=basis)
    x0 = np.array([1.0, 0.0])
    exact = expm(a * T) @ x0
    slow = basis[:, 0] * np.linalg.solve(basis, x0)[0]
    steps, errors = [0.4, 0.2, 0.1], []
    for macro in steps:
        result = projective_integrate(bursts, x0, T, macro, method="euler")
        mu, m = 1 + dt * np.array([-1.0, -100.0]), (macro - 2 * dt) / dt
        assert result.attrs["M"] == pytest.approx(m)
        sigma = mu * ((m + 1) * mu - m)
        n = round(T / macro)
        theory = basis @ (sigma**n * np.linalg.solve(basis, x0))
        np.testing.assert_allclose(result.z[-1].values, theory, rtol=1e-12, atol=1e-15)
        error = np.linalg.norm(result.z[-1].values - exact)
        h = macro - 1.5 * dt
        leading = np.linalg.norm(slow) * math.exp(-T) * T * h**2 / (2 * macro)
        # deterministic (no sampling): the ratio to the leading term is 1 + O(h) + O(t̄/Δ); computed 1.097, 1.096, 1.156
        # at Δ = 0.4, 0.2, 0.1 (the t̄/Δ = 0.15 stage offset grows as Δ shrinks); window 0.9–1.3 leaves the leading-
        # order claim and little else
        assert 0.9 < error / leading < 1.3
        errors.append(error)
        assert int(result.fine_steps[-1]) == 2 * n
    order = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    print(f"projective Euler errors {np.array(errors)}, order {order:.3f}")
    # deterministic: the fitted order is 1.14 (h = Δ − 1.5δt is not ∝ Δ: the offset t̄ bends the log–log line up); ±
    # 0.25 separates first order from second
    assert order == pytest.approx(1.0, abs=0.25)


@pytest.mark.parametrize("m, unstable", [(5.0, True), (4.6, False)])
def test_projective_euler_stability_region_splits_above_2_plus_2_sqrt2(m, unstable):
    """One healing step and one slope step (τ = 2δt, tail = the last two states), then a jump of
    Mδt: a mode with μ = 1 + λδt goes μ → μ² and is projected to
        σ(μ) = μ² + M(μ² − μ) = μ((M + 1)μ − M).
    On the real axis σ is a parabola with minimum −M²/(4(M + 1)) at μ* = M/(2(M + 1)); |σ| ≤ 1 holds
    on one interval while M² ≤ 4(M + 1), i.e. M ≤ 2 + 2√2 ≈ 4.83, and above it splits into a
    neighbourhood of μ = 0 (fast modes) and one of μ = 1 (slow modes). The mode μ = 5/12 = μ*(5)
    has σ = −25/24 at M = 5 (it grows) and σ = −0.944 at M = 4.6 (it decays); μ = 0.1 and
    μ = 0.99 stay stable at both M."""
    assert (m > 2 + 2 * math.sqrt(2)) == unstable
    dt, n = 0.01, 60
    lam = np.array([-1.0, -7 / 12 / dt, -0.9 / dt])
    basis = np.array([[1.0, 0.2, 0.1], [0.3, 1.0, 0.2], [0.1, 0.4, 1.0]])
    _, bursts = linear_bursts(lam, dt, tau=2 * dt, t_heal=dt, basis=basis)
    macro = (2 + m) * dt
    result = projective_integrate(bursts, [1.0, 1.0, 1.0], n * macro, macro)
    modes = np.linalg.solve(basis, result.z.values.T).T
    mu = 1 + lam * dt
    sigma = mu * ((m + 1) * mu - m)
    np.testing.assert_allclose(modes[1:9] / modes[:8], np.broadcast_to(sigma, (8, 3)), rtol=1e-8)  # before round-off
    assert abs(sigma[0]) < 1 and abs(sigma[2]) < 1
    growth = abs(modes[-1, 1] / modes[0, 1])
    print(f"M = {m}: sigma = {sigma}, gap-mode growth over {n} steps {growth:.4g}")
    if unstable:
        # deterministic: |σ| = 25/24 over n steps grows the gap mode by (25/24)ⁿ; 10 is the growth the test's n must
        # show (a bare count, as 0.1 below is its decay)
        assert sigma[1] == pytest.approx(-25 / 24) and growth > 10
    else:
        # deterministic: |σ| < 1 decays the gap mode geometrically; 0.1 the decay the test's n must show
        assert sigma[1] == pytest.approx(5 / 12 * (5.6 * 5 / 12 - 4.6)) and growth < 0.1


# -- Michaelis–Menten, restricted to x ----------------------------------------------------------------

EPS, DT_MM, T_MM = 1e-3, 1e-4, 4.0


def mm_euler(x, y, n_steps):
    """Forward Euler of ẋ = −x + (x + ½) y, ε ẏ = x − (x + 1) y; the x path."""
    path = [x]
    for _ in range(n_steps):
        x, y = x + DT_MM * (-x + (x + 0.5) * y), y + DT_MM / EPS * (x - (x + 1) * y)
        path.append(x)
    return np.array(path)


def mm_slow_manifold(x):
    """y = h0 + ε h1 with h0 = x/(x + 1) and h1 = −h0′ẋ/(x + 1) = x / (2 (x + 1)⁴)."""
    return x / (x + 1) + EPS * x / (2 * (x + 1) ** 4)


def mm_bursts():
    """Lift x onto the slow manifold (to O(ε²), so no healing is needed), 4 forward Euler steps."""
    return ODEBursts(lambda z, n: mm_euler(z[0], mm_slow_manifold(z[0]), n), dt=DT_MM, tau=4 * DT_MM)


def mm_reduced(t, x0=1.0):
    """On y = x/(x + 1): ẋ = −x / (2 (x + 1)), so 2 ln x + 2x = −t + 2 ln x0 + 2 x0."""
    c = 2 * math.log(x0) + 2 * x0
    return brentq(lambda x: 2 * math.log(x) + 2 * x + t - c, 1e-12, 10.0)


@pytest.fixture(scope="module")
def mm_fine():
    """The fine solver over the whole horizon from the same lifted state: what PI approximates."""
    return mm_euler(1.0, mm_slow_manifold(1.0), round(T_MM / DT_MM))


def loglog_order(steps, errors):
    return np.polyfit(np.log(steps), np.log(np.abs(errors)), 1)[0]


def test_fine_michaelis_menten_is_within_order_eps_of_the_reduced_solution(mm_fine):
    """The full system differs from the reduced ODE by O(ε) (here 0.12 ε at t = 4)."""
    # deterministic: the O(ε) gap is 0.117 ε at t = 4 and 0.081 ε at t = 2 (computed; the first-order correction of the
    # slow manifold plus forward Euler's O(δt) with δt = 0.1 ε); bound 0.25 ε, twice the leading term, for the O(ε²,
    # δt²) rest
    assert abs(mm_fine[-1] - mm_reduced(T_MM)) < 0.25 * EPS
    assert abs(mm_fine[len(mm_fine) // 2] - mm_reduced(T_MM / 2)) < 0.25 * EPS


def test_pi_rk2_and_rk4_convergence_orders_on_michaelis_menten(mm_fine):
    """Errors are measured against the fine solution of the full system (same micro-solver, same
    lift) rather than the reduced solution, whose O(ε) ≈ 1e-4 gap would hide the RK2 error at
    Δ ≤ 0.25; the PI limit differs from the fine solution by ~4e-8. The short anchor (t̄ = 2δt) keeps
    the stage-placement error O(t̄Δ) of the RK stages below the RK4 error at Δ ≥ 0.5."""
    bursts = mm_bursts()

    def error(method, macro):
        return float(projective_integrate(bursts, 1.0, T_MM, macro, method=method).z[-1, 0]) - mm_fine[-1]

    rk2_steps = [1.0, 0.5, 0.25, 0.125]
    rk2 = [error("rk2", s) for s in rk2_steps]
    rk4_steps = [2.0, 1.0, 0.5]
    rk4 = [error("rk4", s) for s in rk4_steps]
    print(f"PI-RK2 errors {np.array(rk2)}, order {loglog_order(rk2_steps, rk2):.3f}")
    print(f"PI-RK4 errors {np.array(rk4)}, order {loglog_order(rk4_steps, rk4):.3f}")
    # deterministic: fitted orders 2.10 (RK2; pairwise 2.17, 2.09, 2.05) and 4.44 (RK4; pairwise 4.29, 4.59) against the
    # fine solution; ± 0.3 and > 3.5 separate the nominal order from the next lower one
    assert loglog_order(rk2_steps, rk2) == pytest.approx(2.0, abs=0.3)
    assert loglog_order(rk4_steps, rk4) > 3.5
    # deterministic: RK4 errs 2.8e-5 and 1.1e-6 at Δ = 1 and 0.5 against RK2's 6.3e-3 and 1.4e-3 at the same Δ
    # (ratios 1/227, 1/1215, computed); the factor 100 is what fourth against second order must give at Δ ≤ 1
    assert abs(rk4[1]) < abs(rk2[0]) / 100 and abs(rk4[2]) < abs(rk2[1]) / 100
    # deterministic: the O(ε) gap 0.117 ε plus RK2's error at Δ = 0.125, 0.079 ε: 0.196 ε (computed) under 0.25 ε
    assert abs(rk2[-1] + mm_fine[-1] - mm_reduced(T_MM)) < 0.25 * EPS


def test_solve_ivp_with_the_coarse_rhs_reproduces_michaelis_menten(mm_fine):
    """f(t, z) is the burst slope, F(φ_t̄(z)) = F(z) + O(t̄), t̄ = 2δt; RK45 with tight tolerances."""
    rhs = CoarseRHS(mm_bursts())
    times = np.linspace(0.0, T_MM, 5)
    solution = solve_ivp(rhs, (0.0, T_MM), [1.0], method="RK45", t_eval=times, rtol=1e-8, atol=1e-10)
    assert solution.success
    for t, x in zip(times, solution.y[0]):
        # deterministic: the O(ε) gap of the full system, at most 0.135 ε over these times (computed); 0.25 ε as above
        assert abs(x - mm_reduced(t)) < 0.25 * EPS
    # deterministic: the burst slope is F at t̄ = 2δt, an O(t̄) = O(2e-4) shift of the time axis; computed gap 1.8e-5
    # against the fine solution; bound 5e-5
    assert abs(solution.y[0, -1] - mm_fine[-1]) < 5e-5
    assert rhs.n_calls == solution.nfev and rhs.fine_steps == 4 * solution.nfev


# -- stochastic: the averaging_cubic slow variable ----------------------------------------------------

def cubic_stepper(system):
    """The lift x1 = z, x2 ~ N(z, v), v = ``fast_variance(dt)``: the invariant law of the Euler–Maruyama
    fast chain at frozen x1, so the slope of a one-step burst, (x1(δt) − z)/δt = −x2(0)³, is unbiased
    for B_dt(z) = −z³ − 3vz (with the fast-limit v = s² it would be off by O(δt/ε) ≈ 2.6 %)."""
    sd = math.sqrt(system.fast_variance(system.dt))

    def lift(z, n, *, seed):
        rng = np.random.default_rng(as_seed_sequence(seed))
        return np.column_stack([np.full(n, z[0]), rng.normal(z[0], sd, n)])

    return CoarseTimeStepper(lift, system.evolver(), Coordinates("x1"))


def test_coarse_derivative_of_cubic_bursts_is_the_averaged_drift():
    system = systems.get("averaging_cubic")
    bursts = WalkerBursts(cubic_stepper(system), 40 * system.dt, 400, seed=11, t_heal=15 * system.dt)
    d = bursts.derivative(1.0)
    truth = system.averaged_drift(1.0, system.dt)
    # 3 standard errors of the slope (over the 400 independent replicas) plus the averaging's O(ε) bias, the
    # first-order drift εB₁(z) with B₁ = −3z⁵ − 3vz³ + 3v²z (ensemble_mean_to_first_order): at z = 1, v = 0.25,
    # |εB₁| = 3.56ε (old: 3ε, which under-stated it; the slope's se, 0.074, is 20× larger: measured error 1.15 se)
    v = system.fast_variance(system.dt)
    assert abs(d.slope[0] - truth) < 3 * d.slope_stderr[0] + system.eps * abs(-3 - 3 * v + 3 * v**2)
    # the standard error against its prediction (old bound: 0.01 < se < 0.2, a 20× window), within 4 of the
    # sampling errors of an sd, √((κ − 1)/(4R)) with κ the slopes' kurtosis (≈ 7: 6–7 %), plus 2 % for x1's
    # drift of −0.007 over the burst, which the prediction (frozen x1 = 1) ignores. Over seeds 11–40 the
    # ratio was 0.93–1.18
    predicted = tail_slope_sd(system, 1.0, 40, 15) / math.sqrt(d.n_walkers)
    kurtosis = stats.kurtosis(d.slopes[:, 0], fisher=False)
    # (the bound derived in the comment above: 4 sampling errors of an sd plus 2 % for x1's drift)
    assert abs(d.slope_stderr[0] / predicted - 1) < 4 * math.sqrt((kurtosis - 1) / (4 * d.n_walkers)) + 0.02
    assert d.anchor_time == pytest.approx(27.5 * system.dt)


def tail_slope_sd(system, x1, n_steps, heal_steps):
    """sd of one walker's least-squares tail slope for a burst of ``n_steps`` Euler–Maruyama steps from the
    lift, fitted over steps ``heal_steps``..``n_steps``, at frozen x1. x1(t_j) = x1 − δt Σ_{i<j} x2_i³, and
    x2 = x1 + √v u with u the EM chain's AR(1) (ρ = 1 − δt/ε, stationary from the lift), so x2³'s
    fluctuation is 3√v(x1² + v) He₁(u) + 3x1 v He₂(u) + v^{3/2} He₃(u), Hermite parts uncorrelated with
    autocovariances 9v(x1² + v)² ρ^|m|, 18 x1² v² ρ^{2|m|}, 6 v³ ρ^{3|m|}; the slope c·x1(t) (c the
    least-squares weights) has variance cᵀ A C Aᵀ c with A the partial-sum map."""
    dt, v = system.dt, system.fast_variance(system.dt)
    rho = 1 - dt / system.eps
    lags = np.abs(np.subtract.outer(np.arange(n_steps), np.arange(n_steps)))
    covariance = (9 * v * (x1**2 + v) ** 2 * rho**lags + 18 * x1**2 * v**2 * rho ** (2 * lags)
                  + 6 * v**3 * rho ** (3 * lags))
    steps = np.arange(heal_steps, n_steps + 1)
    partial_sums = -dt * (np.arange(n_steps)[None, :] < steps[:, None])
    weights = (steps - steps.mean()) / (((steps - steps.mean()) ** 2).sum() * dt)
    return math.sqrt(weights @ partial_sums @ covariance @ partial_sums.T @ weights)


def linearized_pi_stderr(system, z0, t_end, macro_step, method, replicas):
    """Standard error of one PI realization with one-step bursts of R replicas, linearized. Stage slopes
    are k_i = B_dt(X_i) + e_i with var e_i = Var(x2³ | X_i)/R = (9X⁴v + 36X²v² + 15v³)/R, the anchor
    is ā = z + t̄k₁ (t̄ = δt/2), and the step map z' = Φ(z, e) propagates

        var(z_{n+1}) = J_n² var(z_n) + Σ_i (∂Φ/∂e_i)² var e_i,    J_n = ∂Φ/∂z,

    (derivatives by central differences). Also returns √Σ(step variances), the error without J_n."""
    nodes, matrix, weights = TABLEAUS[method]
    v, t_bar = system.fast_variance(system.dt), system.dt / 2
    h = macro_step - t_bar
    drift = lambda x: system.averaged_drift(x, system.dt)  # noqa: E731

    def step(z, e):
        k, stages = [drift(z) + e[0]], [z]
        for i in range(1, len(nodes)):
            direction = sum(a * kj for a, kj in zip(matrix[i], k)) / nodes[i]
            stages.append(z + t_bar * k[0] + (nodes[i] * h - t_bar) * direction)
            k.append(drift(stages[-1]) + e[i])
        return z + t_bar * k[0] + h * sum(b * ki for b, ki in zip(weights, k)), np.array(stages)

    z, var, naive, d = z0, 0.0, 0.0, 1e-6
    zero = np.zeros(len(nodes))
    for _ in range(round(t_end / macro_step)):
        _, x = step(z, zero)
        noise = (9 * x**4 * v + 36 * x**2 * v**2 + 15 * v**3) / replicas
        gain = (step(z + d, zero)[0] - step(z - d, zero)[0]) / (2 * d)
        sens = np.array([step(z, d * e)[0] - step(z, -d * e)[0] for e in np.eye(len(nodes))]) / (2 * d)
        added = float(sens**2 @ noise)
        var, naive = gain**2 * var + added, naive + added
        z = step(z, zero)[0]
    return math.sqrt(var), math.sqrt(naive)


def ensemble_mean_to_first_order(system, z0, times):
    """Mean of x1 over an ensemble of full simulations, to O(ε). Expanding the generator
    L = L0/ε + L1 (L0: the OU in u = x2 − x1 at frozen x1, eigenfunctions He_k(u) with rates k;
    L1 = f ∂_x1, f = −x2³) gives the slow law dx1 = (B + εB₁) dt + √(2εD) dW with, for −L0χ = f − B,

        B₁ = E[f ∂_x1χ] = −3x⁵ − 3vx³ + 3v²x,    D = E[(f − B)χ] = 9v(x² + v)² + 9v²x² + 2v³,

    (v = EM's fast variance) so the mean m and variance P of x1 obey m' = B(m) + εB₁(m) + ½B''(m)P,
    P' = 2B'(m)P + 2εD(m): at t = 1 m is 5.7e-4 below the closed ODE (1.2e-4 from B₁, the rest
    from the spread of x1, √P = 0.022). 80,000 walkers agree within 1.5e-4 (EM's δt/ε = 0.1 part)."""
    v, eps = system.fast_variance(system.dt), system.eps

    def rhs(t, y):
        m, p = y
        drift = system.averaged_drift(m, system.dt) + eps * (-3 * m**5 - 3 * v * m**3 + 3 * v**2 * m) - 3 * m * p
        return [drift, -2 * (3 * m**2 + 3 * v) * p + 2 * eps * (9 * v * (m**2 + v) ** 2 + 9 * v**2 * m**2 + 2 * v**3)]

    return solve_ivp(rhs, (times[0], times[-1]), [z0, 0.0], t_eval=times, rtol=1e-11, atol=1e-14).y[0]


def test_stochastic_projective_integration_saves_10x_fine_steps_at_equal_accuracy():
    """Mean of the slow variable x1(t), t ≤ 1, from x1 = 1, x2 ~ N(1, v), by (a) direct Euler–Maruyama
    of the full system with W walkers and (b) PI-RK4 (Δ = 0.2) with one-step bursts (τ = δt, the
    classical one-inner-step projective Euler inside each stage) of R replicas, G independent
    realizations. Fine steps: direct W·T/δt, PI G·R·(T/Δ)·4.

    Why one-step bursts: over a tail of width w the slope's variance is ≈ Var(x2³) for w ≲ ε but
    ≈ 2ε_eff Var(x2³)/w for w ≫ ε (no better than direct simulation per fine step), so the shortest
    burst buys the most accuracy per fine step; extrapolating it over Δ costs nothing in variance
    per unit time relative to direct simulation's 2ε_eff. At equal error the saving is then about
    2ε_eff/δt ≈ 14 (ε_eff ≈ 0.7ε: the He₂, He₃ parts of x2³ decorrelate in ε/2, ε/3, and the
    contracting flow weights late times, small x1, where they matter most).

    Honest errors: PI's error is the spread across realizations (``z_stderr``), checked against the
    linearized propagation through the coarse flow (:func:`linearized_pi_stderr`) within its
    sampling error 1/√(2(G − 1)) ≈ 7 %; the sum of step variances, which ignores the flow's
    contraction, over-states it 1.8×. Direct's is sd/√W (±1.6 %). Equal accuracy is asserted on the
    precise linearized error and on the measured spread; at exactly equal error the ratio would be
    ≈ 13 for PI-RK4 (≈ 14.6 for PI-RK2, which needs Δ ≈ 0.025 for a 1e-4 truncation error), so
    R = 960 gives ≈ 10.4× at a PI error ≈ 0.9× direct's.

    Agreement: PI follows the closed ODE dx1/dt = B_dt(x1) (solve_ivp; PI-RK4's truncation error here
    is 7e-5): one-step bursts from the frozen-x1 lift see the ε → 0 averaged drift, and with R = 960
    a realization's spread is too small to shift its mean. The ensemble mean of direct simulation
    is 5.7e-4 (1.2 of its standard errors) lower at t = 1, by its O(ε) corrections
    (:func:`ensemble_mean_to_first_order`). Asserted: PI − ODE and direct − corrected ODE within 3
    standard errors (+1e-4, +1.5e-4 as above), PI − direct within 3 combined standard errors both
    raw and after the O(ε) shift."""
    system = systems.get("averaging_cubic")
    T, z0, macro, method = 1.0, 1.0, 0.2, "rk4"
    walkers, replicas, realizations = 2000, 960, 100
    stepper = cubic_stepper(system)

    n_direct = round(T / system.dt)
    x0 = stepper.lift(np.array([z0]), walkers, seed=1)
    save = round(macro / system.dt)
    direct = system.simulate(walkers, n_direct, seed=2, x0=x0, save_every=save).sel(coord="x1").values
    mean, stderr = direct.mean(axis=1), direct.std(axis=1, ddof=1) / math.sqrt(walkers)

    bursts = WalkerBursts(stepper, system.dt, replicas, seed=3)
    pi = projective_integrate(bursts, z0, T, macro, method=method, realizations=realizations)
    z, z_se = pi.z[:, 0].values, pi.z_stderr[:, 0].values

    times = pi.time.values
    ode = solve_ivp(lambda t, x: system.averaged_drift(x, system.dt), (0, T), [z0], t_eval=times,
                    rtol=1e-11, atol=1e-13).y[0]
    corrected = ensemble_mean_to_first_order(system, z0, times)
    shift = corrected - ode

    direct_steps = walkers * n_direct
    pi_steps = realizations * replicas * int(pi.fine_steps[-1])
    ratio = direct_steps / pi_steps
    predicted, naive = linearized_pi_stderr(system, z0, T, macro, method, replicas)
    predicted, naive = predicted / math.sqrt(realizations), naive / math.sqrt(realizations)
    combined = np.sqrt(z_se**2 + stderr**2)
    print(f"\nx1(t = {T}): PI {z[-1]:.5f} ± {z_se[-1]:.5f} (linearized {predicted:.5f}, summed step variances "
          f"{naive:.5f}); direct {mean[-1]:.5f} ± {stderr[-1]:.5f}; closed ODE {ode[-1]:.5f}, with O(eps) "
          f"corrections {corrected[-1]:.5f}")
    print(f"fine steps: direct {direct_steps:.3e} ({walkers} x {n_direct}), PI {pi_steps:.3e} "
          f"({realizations} x {replicas} x {int(pi.fine_steps[-1])}); ratio {ratio:.1f} at stderr ratio "
          f"PI/direct {z_se[-1] / stderr[-1]:.2f}")
    print(f"max over t of |PI - direct| / combined se {np.max(np.abs(z - mean)[1:] / combined[1:]):.2f}, "
          f"|PI - ODE| / se {np.max(np.abs(z - ode)[1:] / z_se[1:]):.2f}, "
          f"|direct - corrected| / se {np.max(np.abs(mean - corrected)[1:] / stderr[1:]):.2f}, "
          f"|PI + O(eps) shift - direct| / combined se {np.max(np.abs(z + shift - mean)[1:] / combined[1:]):.2f}")

    assert abs(z_se[-1] / predicted - 1) < 3 / math.sqrt(2 * (realizations - 1))
    # deterministic (both are formulas, linearized_pi_stderr): the docstring's 1.8× over-statement of the summed step
    # variances; 1.5 is the factor the test claims
    assert naive > 1.5 * predicted
    assert ratio >= 10 and predicted <= stderr[-1] and z_se[-1] <= stderr[-1]
    # docstring: 3 standard errors (z_se over the 100 realizations) plus PI-RK4's truncation error 7e-5 ≤ 1e-4
    assert np.all(np.abs(z - ode) <= 3 * z_se + 1e-4)
    # docstring: 3 standard errors of direct's mean over 2000 walkers plus the O(ε²)/EM δt/ε part left by the first-
    # order correction, measured 1.5e-4 with 80 000 walkers (ensemble_mean_to_first_order)
    assert np.all(np.abs(mean - corrected) <= 3 * stderr + 1.5e-4)
    assert np.all(np.abs(z - mean) <= 3 * combined)
    # 3 combined standard errors plus the two biases above, 1e-4 + 1.5e-4
    assert np.all(np.abs(z + shift - mean) <= 3 * combined + 2.5e-4)


# -- coarse_derivative against the exact slow law of eq. (2.1) ----------------------------------------

def test_coarse_derivative_slope_and_stderr_on_brownian_drift(fast_slow):
    """x1(t) = z + a1 t + a2 W(t) from the lift: each replica's least-squares slope b = Σ c_j x1(t_j)
    (c_j = (t_j − t̄)/S) is unbiased for a1 with variance a2² Σ_ij c_i c_j min(t_i, t_j)."""
    stepper = CoarseTimeStepper(FunctionLift(lambda z, n, *, seed: fast_slow.sample_conditional(z[0], n, seed)),
                                fast_slow.evolver(), Coordinates("x1"))
    replicas, tau, t_heal = 4000, 20.0, 5.0
    d = coarse_derivative(stepper(3.0, tau, replicas, seed=5), t_heal=t_heal)
    t = np.arange(5.0, 21.0)
    c = (t - t.mean()) / np.sum((t - t.mean()) ** 2)
    sd = fast_slow.a2 * math.sqrt(c @ np.minimum.outer(t, t) @ c)
    # the exact law (docstring): the slope is unbiased with the sd computed above; 3 standard errors over the
    # independent replicas
    assert abs(d.slope[0] - fast_slow.a1) < 3 * sd / math.sqrt(replicas)
    # slopes and ends are Gaussian: the sd of R of them has relative standard error 1/√(2(R − 1)) = 1.1 %;
    # bound 4 of them (old: rel = 0.05, 4.5 of them, uncommented)
    sd_rel = 4 / math.sqrt(2 * (replicas - 1))
    assert d.slope_stderr[0] == pytest.approx(sd / math.sqrt(replicas), rel=sd_rel)
    # x1(τ) is exactly N(3 + a1τ, a2²τ): 3 standard errors of the mean end
    assert abs(d.end[0] - (3.0 + fast_slow.a1 * tau)) < 3 * d.end_stderr[0]
    # (sd_rel derived above: 4 relative standard errors of a Gaussian sd)
    assert d.end_stderr[0] == pytest.approx(fast_slow.a2 * math.sqrt(tau / replicas), rel=sd_rel)
    value, stderr = d.line(tau)
    assert value[0] == pytest.approx(d.anchor[0] + (tau - 12.5) * d.slope[0]) and stderr[0] > 0


def test_walker_bursts_and_coarse_rhs_are_seeded_deterministically(fast_slow):
    stepper = CoarseTimeStepper(FunctionLift(lambda z, n, *, seed: fast_slow.sample_conditional(z[0], n, seed)),
                                fast_slow.evolver(), Coordinates("x1"))
    bursts = WalkerBursts(stepper, 10.0, 8, seed=7)
    np.testing.assert_array_equal(bursts.burst(2.0, (1, 0)).values, bursts.burst(2.0, (1, 0)).values)
    assert not np.array_equal(bursts.burst(2.0, (1, 0)).values, bursts.burst(2.0, (1, 1)).values)
    rhs = CoarseRHS(bursts)
    assert rhs(0.0, np.array([2.0]))[0] == rhs(5.0, np.array([2.0]))[0] != rhs(0.0, np.array([2.5]))[0]
    assert rhs.n_calls == 3 and rhs.fine_steps == 30
    with pytest.raises(ValueError, match="realizations >= 2"):
        projective_integrate(bursts, 2.0, 20.0, 10.0, realizations=1)
    three = projective_integrate(bursts, 2.0, 20.0, 10.0, realizations=3)
    assert three.z_stderr[0, 0] == 0 and (three.z_stderr[1:] > 0).all() and three.attrs["realizations"] == 3
    _, deterministic = linear_bursts([-1.0], 0.01, tau=0.02, t_heal=0.01, basis=np.eye(1))
    assert (projective_integrate(deterministic, 1.0, 1.0, 0.1).z_stderr == 0).all()


# -- bad input ----------------------------------------------------------------------------------------

def test_bad_input_names_the_parameter(fast_slow):
    _, bursts = linear_bursts([-1.0, -10.0], 0.01, tau=0.05, t_heal=0.02, basis=np.eye(2))
    stepper = CoarseTimeStepper(FunctionLift(lambda z, n, *, seed: fast_slow.sample_conditional(z[0], n, seed)),
                                fast_slow.evolver(), Coordinates("x1"))
    with pytest.raises(ValueError, match="tau"):
        ODEBursts(bursts.fn, dt=0.01, tau=0.0)
    with pytest.raises(ValueError, match="tau"):
        WalkerBursts(stepper, -1.0, 4, seed=0)
    with pytest.raises(ValueError, match="t_heal"):
        ODEBursts(bursts.fn, dt=0.01, tau=0.05, t_heal=0.05)
    with pytest.raises(ValueError, match="fewer than 2 saved states"):
        ODEBursts(bursts.fn, dt=0.01, tau=0.05, t_heal=0.045)
    with pytest.raises(ValueError, match="n_walkers"):
        WalkerBursts(stepper, 2.0, 1, seed=0)
    with pytest.raises(TypeError, match="seed"):
        WalkerBursts(stepper, 2.0, 4, seed=None)
    with pytest.raises(ValueError, match="macro_step"):
        projective_integrate(bursts, [1.0, 1.0], 1.0, 0.04)
    with pytest.raises(ValueError, match="multiple of macro_step"):
        projective_integrate(bursts, [1.0, 1.0], 1.0, 0.3)
    with pytest.raises(ValueError, match="z0"):
        projective_integrate(bursts, [1.0, np.nan], 1.0, 0.1)
    with pytest.raises(ValueError, match="method"):
        projective_integrate(bursts, [1.0, 1.0], 1.0, 0.1, method="rk3")
    with pytest.raises(ValueError, match="realizations"):
        projective_integrate(bursts, [1.0, 1.0], 1.0, 0.1, realizations=0)
    with pytest.raises(ValueError, match="t_heal"):
        coarse_derivative(bursts.burst(np.ones(2)), t_heal=0.05)
    with pytest.raises(ValueError, match="2 walkers"):
        coarse_derivative(stepper(1.0, 2.0, 1, seed=0))
    steep = ODEBursts(lambda z, n: z + 1e307 * np.arange(n + 1)[:, None], dt=1.0, tau=1.0)
    with pytest.raises(FloatingPointError, match="projective step 0"):
        projective_integrate(steep, 1.0, 100.0, 100.0)
    with pytest.raises(ValueError, match="non-finite at time 1"):
        projective_integrate(steep, 1.75e308, 100.0, 100.0)
