"""Closures: estimated drifts against the closed-form averaged drift, closed ODE against direct
simulation, resumable stores, executors, and the errors at the boundary.

Bias of the burst estimator for ``averaging_cubic`` (dx1 = −x2³ dt, dx2 = −(x2 − x1)/ε dt +
√(2s²/ε) dW, Euler–Maruyama with a = Δt/ε, K steps, τ = KΔt), against the fast-limit drift
B(z) = −z³ − 3s²z. With the exact fast-limit lift x1 = z, x2 ~ N(z, s²) and y = x2 − x1,
the estimate is −(1/K) Σ_k x2_k³ and E[x2³] = m³ + 3 m v for x2 ~ N(m, v). Its leading bias is

    β(z) = ½ (K−1) Δt · B'B                         B changes along the burst
         − 3 z (v_EM − s²) (1 − ⟨(1−a)^{2k}⟩_k)      EM's OU variance v_EM = s²/(1 − a/2), reached after the lift
         − ε B'B (1 − ⟨(1−a)^k⟩_k)                  x2 lags x1: E[y] → −εB (finite ε)

(⟨·⟩_k the mean over k < K). The first neglected terms, allowed for in full, are

    r(z) = 3 |z| ε |B'| s²                          finite-ε variance shift v ≈ s²(1 − εB')
         + τ²/6 · |B'²B + B''B²|                    second order along the burst

so the test asserts |B̂ − B| ≤ Z se + |β| + r at every grid point, Z = 3.7 for 41 points at once
(Bonferroni: P(some |N(0,1)| > 3.7 among 41) ≈ 1 %), and within 3 se + |β| + r at 95 % of them. (With 10⁵ walkers
per point the residual B̂ − B − β is within one standard error at z = 0.3 … 1.5.) The conditional average
over the exact fast-limit law has no bias: E[−x2³ | x1 = z] = B(z) exactly.
"""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from eqfree import Coordinates, systems
from eqfree.closures import BurstEstimator, Closure, ConditionalAverageEstimator, estimate_closure, integrate, load
from eqfree.io import parameters_of
from eqfree.systems import LinearGaussianLift

CUBIC = systems.get("averaging_cubic")
EPS, S = CUBIC.eps, CUBIC.s
DT = EPS / 10
GRID = np.linspace(-1.5, 1.5, 41)
Z = 3.7  # standard errors allowed at each of 41 points (family-wise 1 %)
EXACT_CUBIC_LIFT = LinearGaussianLift(0.0, 1.0, S**2, valid_range=(-2.0, 2.0))


def slow_drift(x):
    """μ_slow of averaging_cubic in fine coordinates: dx1/dt = −x2³."""
    return -x[:, 1] ** 3


def derivatives(z):
    return -3 * z**2 - 3 * S**2, -6 * z  # B', B''


def burst_bias(z, n_steps):
    """(β, r) of the module docstring."""
    a, tau, B = DT / EPS, n_steps * DT, CUBIC.averaged_drift(z)
    dB, d2B = derivatives(z)
    k = np.arange(n_steps)
    v_em = S**2 / (1 - a / 2)
    beta = (0.5 * (n_steps - 1) * DT * dB * B - 3 * z * (v_em - S**2) * (1 - np.mean((1 - a) ** (2 * k)))
            - EPS * dB * B * (1 - np.mean((1 - a) ** k)))
    rest = 3 * np.abs(z) * EPS * np.abs(dB) * S**2 + tau**2 / 6 * np.abs(dB**2 * B + d2B * B**2)
    return beta, rest


def burst_setup(n_walkers=4000, n_steps=100):
    return BurstEstimator(EXACT_CUBIC_LIFT, CUBIC.evolver(DT), Coordinates("x1"), tau=n_steps * DT, n_walkers=n_walkers)


def test_burst_drift_matches_averaged_drift():
    n_steps = 100  # τ = 10 ε
    closure = estimate_closure(burst_setup(4000, n_steps), GRID, seed=2026)
    beta, rest = burst_bias(GRID, n_steps)
    se = closure["drift_stderr"].values
    allowed = Z * se + np.abs(beta) + rest
    error = np.abs(closure["drift"].values - CUBIC.averaged_drift(GRID))
    assert np.all(error <= allowed), np.c_[GRID, error, allowed][error > allowed]
    assert np.mean(error <= 3 * se + np.abs(beta) + rest) >= 0.95
    assert allowed.max() < 0.2 and closure["drift_stderr"].max() < 0.03
    wrong = np.abs(closure["drift"].values - (-(GRID**3)))  # missing −3 s² z
    assert np.any(wrong > 3 * allowed)
    assert np.all(closure["done"]) and np.all(closure["n_samples"] == 4000)
    assert closure["drift"].attrs["long_name"] and closure["drift"].attrs["units"] == "1"
    assert closure["cv"].attrs["long_name"] == "collective variable x1"
    recipe = parameters_of(closure.attrs)
    assert recipe["seed"] == 2026 and recipe["grid"] == GRID.tolist() and recipe["estimator"] == "bursts"
    assert "AveragingCubic(eps=0.001, s=0.5)" in recipe["evolve"] and recipe["tau"] == pytest.approx(0.01)


def test_conditional_average_matches_averaged_drift():
    estimator = ConditionalAverageEstimator(EXACT_CUBIC_LIFT, slow_drift, n_samples=20_000)
    closure = estimate_closure(estimator, GRID, seed=7)
    error = np.abs(closure["drift"].values - CUBIC.averaged_drift(GRID))
    se = closure["drift_stderr"].values
    assert np.all(error <= Z * se) and np.mean(error <= 3 * se) >= 0.95  # no bias: the lift is exact
    assert np.any(np.abs(closure["drift"].values + GRID**3) > 10 * se)
    assert "diffusion" not in closure and se.max() < 0.05


def test_burst_drift_and_diffusion_of_a_brownian_slow_variable(fast_slow):
    """fast_slow_linear: x1 is Brownian motion with drift a1 and diffusion a2², whatever x2 does."""
    mean, variance = fast_slow.conditional_moments()
    lift = LinearGaussianLift(mean, 0.0, variance)
    estimator = BurstEstimator(lift, fast_slow.evolver(), Coordinates("x1"), tau=20.0, n_walkers=2000)
    closure = estimate_closure(estimator, [-1.0, 0.0, 2.5], seed=3)
    assert np.all(np.abs(closure["drift"] - fast_slow.a1) <= 3 * closure["drift_stderr"])
    assert np.all(np.abs(closure["diffusion"] - fast_slow.a2**2) <= 3 * closure["diffusion_stderr"])
    assert np.all(closure["diffusion_stderr"] < 0.05 * fast_slow.a2**2)


def test_closure_sde_ensemble_matches_brownian_moments(fast_slow):
    lift = LinearGaussianLift(1.0, 0.0, 0.05)
    estimator = BurstEstimator(lift, fast_slow.evolver(), Coordinates("x1"), tau=20.0, n_walkers=2000)
    closure = Closure(estimate_closure(estimator, np.linspace(-1, 1, 5), seed=4))
    paths = integrate(closure, 0.0, (0.0, 100.0), sde=True, dt=1.0, n_walkers=4000, seed=5, t_eval=[0.0, 50.0, 100.0])
    assert paths.dims == ("time", "walker") and paths["time"].values.tolist() == [0.0, 50.0, 100.0]
    end = paths.isel(time=-1).values
    D, B = closure.diffusion(0.0), closure.drift(0.0)
    assert abs(end.mean() - 100 * B) < 4 * np.sqrt(100 * D / end.size)
    assert abs(end.var(ddof=1) / (100 * D) - 1) < 4 * np.sqrt(2 / end.size)
    np.testing.assert_allclose([B, D], [fast_slow.a1, fast_slow.a2**2], rtol=0.1)


def test_closed_ode_matches_direct_simulation():
    """Mean x1(t) of direct fine runs from x1 = 1 against dz/dt = B̂(z) from the conditional average.

    B' ≤ −3s² < 0, so a drift error δ(z) moves the path by at most ∫₀ᵗ e^{−3s²(t−u)} δ(z(u)) du, with
    δ = 3 se(B̂) (estimation) + 3|z|s² a/(2 − a) (EM variance) + ε|B'B| (lag) + 3|z|ε|B'|s² (variance
    shift) + ½|B''| Var x1(t) (the ensemble's spread seen through the curvature of B).
    """
    estimator = ConditionalAverageEstimator(EXACT_CUBIC_LIFT, slow_drift, n_samples=200_000)
    closure = Closure(estimate_closure(estimator, GRID, seed=11))
    times = np.linspace(0, 1, 101)
    ode = integrate(closure, 1.0, (0.0, 1.0), t_eval=times).values
    walkers = 1000
    x0 = EXACT_CUBIC_LIFT(np.array([1.0]), walkers, seed=12)
    x1 = CUBIC.simulate(walkers, 10_000, seed=13, x0=x0, save_every=100)[..., 0].values
    mean, se = x1.mean(axis=1), x1.std(axis=1, ddof=1) / np.sqrt(walkers)

    dB, d2B = derivatives(ode)
    a = DT / EPS
    stderr = np.interp(ode, GRID, closure.dataset["drift_stderr"].values)
    delta = (3 * stderr + 3 * np.abs(ode) * S**2 * a / (2 - a) + EPS * np.abs(dB * CUBIC.averaged_drift(ode))
             + 3 * np.abs(ode) * EPS * np.abs(dB) * S**2 + 0.5 * np.abs(d2B) * x1.var(axis=1))
    bound = np.zeros_like(times)
    for i in range(1, times.size):  # bound' = −3s² bound + δ
        h = times[i] - times[i - 1]
        bound[i] = bound[i - 1] * np.exp(-3 * S**2 * h) + h * 0.5 * (delta[i] + delta[i - 1] * np.exp(-3 * S**2 * h))
    assert np.all(np.abs(mean - ode) <= 3 * se + bound)
    assert bound[-1] < 0.05
    wrong = Closure(closure.dataset.assign(drift=-(closure.dataset["cv"] ** 3)))
    gap = np.abs(mean - integrate(wrong, 1.0, (0.0, 1.0), t_eval=times).values)
    assert gap[-1] > 3 * (3 * se[-1] + bound[-1])


# storage and resume -------------------------------------------------------------------------------

def small_burst(n_walkers=200, n_steps=20):
    return burst_setup(n_walkers, n_steps)


def assert_same_store(a: xr.Dataset, b: xr.Dataset):
    xr.testing.assert_equal(a, b)
    assert parameters_of(a.attrs) == parameters_of(b.attrs)


def test_store_has_one_chunk_per_point_and_reads_back(tmp_path):
    import zarr

    result = estimate_closure(small_burst(), GRID[:6], seed=1, store=tmp_path / "c.zarr")
    group = zarr.open_group(str(tmp_path / "c.zarr"), mode="r")
    assert group.metadata.zarr_format == 3
    assert all(group[name].chunks == (1,) for name in ("drift", "diffusion", "done", "n_samples"))
    stored = load(tmp_path / "c.zarr")
    assert_same_store(stored, result)
    assert stored.attrs["title"] and stored.attrs["eqfree_version"]


def test_interrupted_then_resumed_store_equals_uninterrupted(tmp_path, monkeypatch):
    reference = estimate_closure(small_burst(), GRID, seed=5, store=tmp_path / "reference.zarr")
    original = LinearGaussianLift.__call__
    calls = []

    def failing(self, z, n, *, seed):
        calls.append(z)
        if len(calls) == 8:
            raise KeyboardInterrupt("interrupted at the 8th grid point")
        return original(self, z, n, seed=seed)

    monkeypatch.setattr(LinearGaussianLift, "__call__", failing)
    with pytest.raises(KeyboardInterrupt):
        estimate_closure(small_burst(), GRID, seed=5, store=tmp_path / "resumed.zarr")
    partial = load(tmp_path / "resumed.zarr")
    assert partial["done"].sum() == 7 and np.isnan(partial["drift"].values[7:]).all()

    calls.clear()

    def counting(self, z, n, *, seed):
        calls.append(z)
        return original(self, z, n, seed=seed)

    monkeypatch.setattr(LinearGaussianLift, "__call__", counting)
    resumed = estimate_closure(small_burst(), GRID, seed=5, store=tmp_path / "resumed.zarr")
    assert len(calls) == GRID.size - 7  # only the missing points were computed
    assert_same_store(resumed, reference)
    assert_same_store(load(tmp_path / "resumed.zarr"), load(tmp_path / "reference.zarr"))


KILLED_RUN = """
import sys
sys.path.insert(0, {tests!r})
from test_closures import GRID, burst_setup
from eqfree.closures import estimate_closure
estimate_closure(burst_setup(2000, 100), GRID, seed=9, store={store!r})
"""


def test_killed_run_resumes_to_the_uninterrupted_store(tmp_path):
    """A real crash: the estimating process is SIGKILLed once a few points are stored."""
    store = tmp_path / "killed.zarr"
    script = KILLED_RUN.format(tests=str(Path(__file__).parent), store=str(store))
    process = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1"})
    chunks = store / "done" / "c"
    deadline = time.monotonic() + 120
    while (not (chunks.exists() and len(os.listdir(chunks)) >= 4) and process.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = load(store)
    assert 4 <= partial["done"].sum() < GRID.size
    resumed = estimate_closure(burst_setup(2000, 100), GRID, seed=9, store=store)
    reference = estimate_closure(burst_setup(2000, 100), GRID, seed=9)
    xr.testing.assert_equal(resumed, reference)
    xr.testing.assert_equal(load(store), reference)


def test_store_is_the_same_on_every_executor(tmp_path):
    distributed = pytest.importorskip("distributed")
    serial = estimate_closure(small_burst(), GRID[::4], seed=8, store=tmp_path / "serial.zarr")
    with ThreadPoolExecutor(2) as pool:
        threads = estimate_closure(small_burst(), GRID[::4], seed=8, store=tmp_path / "threads.zarr", executor=pool)
    assert_same_store(load(tmp_path / "threads.zarr"), serial)
    assert_same_store(threads, serial)
    for workers in (1, 2):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            store = tmp_path / f"dask{workers}.zarr"
            estimate_closure(small_burst(), GRID[::4], seed=8, store=store, executor=client.get_executor())
        assert_same_store(load(store), serial)


@pytest.mark.slow
def test_store_is_the_same_on_dask_worker_processes(tmp_path):
    distributed = pytest.importorskip("distributed")
    serial = estimate_closure(small_burst(), GRID[::4], seed=8)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        estimate_closure(small_burst(), GRID[::4], seed=8, store=tmp_path / "p.zarr", executor=client.get_executor())
    assert_same_store(load(tmp_path / "p.zarr"), serial)


# bad input ----------------------------------------------------------------------------------------

def test_grid_outside_the_lifts_valid_range_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"outside the lift's valid range \[-2, 2\]"):
        estimate_closure(small_burst(), np.linspace(-3, 3, 7), seed=0, store=tmp_path / "c.zarr")
    assert not (tmp_path / "c.zarr").exists()
    with pytest.raises(ValueError, match="strictly increasing"):
        estimate_closure(small_burst(), [0.0, 0.0, 1.0], seed=0)


@pytest.mark.parametrize("tau", [0.0, -0.01, float("nan")])
def test_non_positive_burst_is_refused(tau):
    with pytest.raises(ValueError, match="tau .*must be a finite positive"):
        BurstEstimator(EXACT_CUBIC_LIFT, CUBIC.evolver(DT), Coordinates("x1"), tau=tau, n_walkers=10)
    with pytest.raises(ValueError, match="multiple of the fine step"):
        BurstEstimator(EXACT_CUBIC_LIFT, CUBIC.evolver(DT), Coordinates("x1"), tau=1.5 * DT, n_walkers=10)


def test_store_from_a_different_recipe_is_refused(tmp_path):
    store = tmp_path / "c.zarr"
    estimate_closure(small_burst(), GRID[:3], seed=1, store=store)
    with pytest.raises(ValueError, match=r"different recipe.*seed: 1 → 2"):
        estimate_closure(small_burst(), GRID[:3], seed=2, store=store)
    with pytest.raises(ValueError, match=r"n_walkers: 200 → 300"):
        estimate_closure(small_burst(300), GRID[:3], seed=1, store=store)
    with pytest.raises(ValueError, match=r"grid: "):
        estimate_closure(small_burst(), GRID[:4], seed=1, store=store)
    fresh = estimate_closure(small_burst(300), GRID[:3], seed=1, store=store, overwrite=True)
    assert parameters_of(load(store).attrs)["n_walkers"] == 300 and fresh["done"].all()


def test_missing_dask_gives_an_install_hint(monkeypatch):
    from eqfree.parallel import executor_for

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'eqfree\[dist\]'"):
        with executor_for("tcp://127.0.0.1:8786"):
            pass


def test_closure_refuses_outside_the_grid_and_where_not_done():
    dataset = estimate_closure(small_burst(), GRID[:5], seed=1)
    dataset["done"].values[3] = False
    dataset["drift"].values[3] = np.nan
    closure = Closure(dataset)
    grid = GRID[:5]
    np.testing.assert_allclose(closure.drift(grid[:3]), dataset["drift"].values[:3])
    assert closure.drift(grid[1] + 0.01).shape == ()
    with pytest.raises(ValueError, match="outside the closure's grid"):
        closure.drift(grid[-1] + 0.1)
    with pytest.raises(ValueError, match=r"not estimated around z = -1.275.*resume"):
        closure.drift(grid[3])
    with pytest.raises(ValueError, match="not estimated around"):
        closure.diffusion(0.5 * (grid[3] + grid[4]))
    np.testing.assert_allclose(closure.drift(grid[4]), dataset["drift"].values[4])  # a lone done end point
    linear = Closure(dataset, interpolation="linear")
    np.testing.assert_allclose(linear.drift(0.5 * (grid[0] + grid[1])), dataset["drift"].values[:2].mean())
    with pytest.raises(ValueError, match="interpolation must be one of"):
        Closure(dataset, interpolation="spline")
    averages = ConditionalAverageEstimator(EXACT_CUBIC_LIFT, slow_drift, n_samples=10)
    no_diffusion = Closure(estimate_closure(averages, GRID[:3], seed=1))
    with pytest.raises(ValueError, match="no diffusion"):
        integrate(no_diffusion, -1.45, (0, 0.01), sde=True, dt=1e-3, n_walkers=2, seed=1)


def test_integration_leaving_the_grid_is_reported():
    averages = ConditionalAverageEstimator(EXACT_CUBIC_LIFT, slow_drift, n_samples=100)
    closure = Closure(estimate_closure(averages, GRID[25:], seed=1))
    with pytest.raises(ValueError, match=r"closed ODE at t = .*outside the closure's grid \[0.375, 1.5\]"):
        integrate(closure, 0.5, (0.0, 5.0))
    with pytest.raises(ValueError, match="t_span"):
        integrate(closure, 0.5, (1.0, 1.0))
    with pytest.raises(ValueError, match="explicit seed"):
        integrate(closure, 0.5, (0.0, 1.0), sde=True, dt=0.1)
