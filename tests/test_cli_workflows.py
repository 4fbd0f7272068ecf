"""The eqfree commands for umbrella sampling, closures and projective integration, end to end."""

import math
import sys

import numpy as np
from scipy import integrate
from test_closures import burst_bias

from eqfree import systems
from eqfree.cli import main
from eqfree.io import open_zarr, parameters_of
from eqfree.lift import UmbrellaSampling
from eqfree.restrict import DiffusionMaps, GeometricHarmonics


def umbrella(path, *extra):
    return main(["umbrella", "--system", "double_well", "--cv", "x1", "--grid=-3:3:13", "--kappa", "20", "--dt", "1e-3",
                 "--steps", "800", "--walkers", "20", "--save-every", "20", "--seed", "4", "--out", str(path),
                 "--bins", "40", "--estimator", "wham", "--quiet", *extra])


def test_umbrella_writes_windows_and_the_pmf(tmp_path):
    path = tmp_path / "us.zarr"
    assert umbrella(path, "--save-states") == 0
    data = open_zarr(path)
    assert data.pmf.dims == ("cv",) and data.pmf.attrs["units"] == "kT"
    assert data.x.dims == ("sample", "coord") and data.sizes["window"] == 13
    # the same numbers as the library
    well = systems.get("double_well")
    sampler = UmbrellaSampling(well.evolver(1e-3), "x1", 20.0, n_steps=800, n_walkers=20, save_every=20,
                               initial=well.x0)
    windows = sampler.run(np.linspace(-3, 3, 13), seed=4)
    np.testing.assert_array_equal(data.x.values, windows.x.values)
    np.testing.assert_allclose(data.pmf.values, sampler.reweight(windows, "wham", bins=40, seed=0).pmf_.pmf.values)
    # against the exact bin-averaged PMF where it is below 6 kT (a small run: 4 se + 0.1 kT for EM at dt = 1e-3)
    density = lambda x1: math.exp(-(well.potential(np.array([x1, 0.0])) - well.potential(well.x0)))  # noqa: E731
    half = data.bin_width.values / 2
    exact = -np.log([integrate.quad(density, c - h, c + h)[0] / (2 * h) for c, h in zip(data.cv.values, half)])
    error = data.pmf.values - (exact - exact.min())
    error -= error[np.argmin(exact)]
    low = exact - exact.min() < 6
    # the bin-averaged exact PMF, so no binning bias; 4 standard errors (pmf_stderr: walker bootstrap) plus 0.1 kT for
    # EM at dt = 1e-3 and the small run's not-yet-equilibrated windows (comment above); not derived further. TODO(issue
    # 26): the EM bias at dt = 1e-3 is O(dt)·|U''| ≈ 0.006 kT, so 0.1 is mostly a finite-run allowance
    assert np.all(np.abs(error[low]) < 4 * data.pmf_stderr.values[low] + 0.1)
    assert parameters_of(data.attrs)["kappa"] == 20.0
    np.testing.assert_allclose(data.overlap.values.sum(axis=1), 1, atol=1e-9)


def test_umbrella_on_a_saved_learned_coordinate(tmp_path):
    store = tmp_path / "data.zarr"
    assert main(["simulate", "--system", "fast_slow_linear", "--walkers", "1", "--steps", "6000", "--save-every", "12",
                 "--seed", "1", "--out", str(store), "--quiet"]) == 0
    data = open_zarr(store).x.values[:, 0]
    maps = DiffusionMaps(n_components=1).fit(data, seed=0)
    extension = GeometricHarmonics(epsilon=4 * maps.epsilon_).fit(data, maps.fit_transform(data, seed=0)[:, 0])
    extension.save(tmp_path / "phi")
    phi0 = float(extension(np.array([[3.0, 1.0]]))[0, 0])
    slope = extension.gradient(np.array([[3.0, 1.0]]))[0, 0, 0]
    kappa = 0.5 / slope**2  # acts like κ = 0.5 on x1
    out = tmp_path / "us.zarr"
    # dt = 0.4: the restraint is stiffer where the walkers start (the κ·dt guard refuses dt = 1 there)
    assert main(["umbrella", "--system", "fast_slow_linear", "--cv", str(tmp_path / "phi"), "--dt", "0.4",
                 f"--grid={phi0 - 0.2 * slope}:{phi0 + 0.2 * slope}:3", "--kappa", str(kappa), "--steps", "1500",
                 "--initial", str(store), "--walkers", "10", "--seed", "1", "--out", str(out), "--quiet",
                 "--save-states"]) == 0
    windows = open_zarr(out)
    own = windows.window_index.values == 1
    samples, walker = windows.x.values[own], windows.walker.values[own]
    # x1 has tiny noise (a2 = 1e-3: sd a2/√(2κ) = 0.001 in the window) and relaxes to the restraint in 1/κ = 2,
    # so it follows the level set φ(x1, x2) = φ0 + a1/(κ_φ s1) as the fast x2 moves (s = ∇φ at (3, 1), κ = κ_φ s1²
    # = 0.5). Bias bound, the level set's displacement from x1 = 3: the restraint balancing the drift a1 holds x1 at
    # a1/κ = 0.002; its force on x2, −a1 s2/s1, moves x2 by −a1 s2/(s1 a3), hence x1 by |s2/s1| times that; and φ's
    # curvature in x2 bends the level set by ½|∂²φ/∂x2²| Var(x2)/|s1| (≈ 0.01 at seed 1). Bound: that plus 4
    # standard errors of the mean of the 10 walkers' medians (independent walkers; t with 9 dof). Measured over
    # simulation seeds 2–6: |offset| ≤ 0.006 against bounds 0.008–0.052 (the curvature term dominates; a bound on
    # the level set's bend, loose for the median). Old: |median − 3| < 0.1, 70 se at seed 1. (A
    # first-order prediction of the offset itself, without the curvature term, missed seeds 4 and 5 by 6–8 se:
    # the median of x1 over the curved level set is not the level set at x2's median once the map is not
    # monotone over x2's spread.)
    medians = np.array([np.median(samples[walker == w, 0]) for w in np.unique(walker)])
    se = medians.std(ddof=1) / math.sqrt(medians.size)
    h = 1e-3
    s1, s2 = extension.gradient(np.array([[3.0, 1.0]]))[0, 0]
    s22 = (extension.gradient(np.array([[3.0, 1.0 + h]]))[0, 0, 1]
           - extension.gradient(np.array([[3.0, 1.0 - h]]))[0, 0, 1]) / (2 * h)
    model = systems.get("fast_slow_linear")
    variance = model.conditional_moments()[1]
    bias = (model.a1 / (kappa * s1**2) + abs(s2 / s1) * model.a1 * abs(s2) / (abs(s1) * model.a3)
            + 0.5 * abs(s22) * variance / abs(s1))
    print(f"central window: mean walker median x1 - 3 = {medians.mean() - 3:.5f} +- {se:.5f}, bias bound {bias:.5f}")
    assert abs(medians.mean() - 3.0) < 4 * se + bias  # (derived above)
    # x2 in the window: its mean moved by −a1 s2/(s1 a3) (above; the restraint's force on x2 is constant to first
    # order); 4 standard errors of the mean of the 10 walkers' means. Old: 4√(0.05/n) over all n samples as if
    # independent, though x2's correlation time 1/a3 = 10 spans many frames (the old se was half the true one)
    means = np.array([samples[walker == w, 1].mean() for w in np.unique(walker)])
    print(f"x2: {means.mean() - 1:.5f} +- {means.std(ddof=1) / math.sqrt(means.size):.5f} (old se "
          f"{math.sqrt(0.05 / len(samples)):.5f}), predicted {-model.a1 * s2 / (s1 * model.a3):.5f}")
    # (4 se of the walkers' means around 1 + the predicted shift, above)
    assert abs(means.mean() - 1.0 + model.a1 * s2 / (s1 * model.a3)) < 4 * means.std(ddof=1) / math.sqrt(means.size)


def test_closure_estimate_resumes_and_integrate_compares(tmp_path, capsys):
    store = tmp_path / "closure.zarr"
    estimate = ["closure", "estimate", "--system", "averaging_cubic", "--cv", "x1", "--lift", "exact",
                "--grid=-1.5:1.5:7", "--burst", "0.002", "--walkers", "400", "--seed", "5", "--out", str(store),
                "--quiet"]
    assert main(estimate) == 0
    first = open_zarr(store).load()
    assert first.done.all() and first.sizes["x1"] == 7
    cubic = systems.get("averaging_cubic")
    exact = cubic.averaged_drift(first.x1.values, cubic.dt)
    # 4 standard errors (drift_stderr, over 400 independent walkers) plus the burst bias of a 0.002 burst (K = 20 steps
    # of the default Δt = ε/10) from the exact lift: tests/test_closures.py's β + r (its module docstring: ½(K−1)Δt B'B
    # and the fast variable's lag εB'B(1 − ⟨(1−a)^k⟩), plus the neglected finite-ε and second-order terms; its lift
    # term −3z(v − s²)… is 0, the CLI lifting with the scheme's own variance v = s²), computed per point: ≤ 0.022 on
    # this grid. Old: + 0.1, not derived
    beta, rest = burst_bias(first.x1.values, round(0.002 / cubic.dt))
    assert np.all(np.abs(first.drift.values[:, 0] - exact) < 4 * first.drift_stderr.values[:, 0] + np.abs(beta) + rest)
    assert main(estimate) == 0  # nothing missing: a rerun is a no-op
    assert open_zarr(store).load().identical(first)
    changed = [a if a != "400" else "500" for a in estimate]
    assert main(changed) == 2
    assert "n_walkers" in capsys.readouterr().err
    path = tmp_path / "path.zarr"
    assert main(["closure", "integrate", "--closure", str(store), "--z0", "1", "--t-end", "0.5", "--points", "11",
                 "--compare", "200", "--seed", "1", "--png", str(tmp_path / "c.png"), "--out", str(path),
                 "--quiet"]) == 0
    result = open_zarr(path)
    table = capsys.readouterr().out
    assert "diff/se" in table and (tmp_path / "c.png").stat().st_size > 20_000
    # closed ODE and direct simulation agree (O(ε) + burst bias ≤ 0.02, see tests/test_closures.py)
    assert np.all(np.abs(result.z.values - result.direct_mean.values) < 4 * result.direct_stderr.values + 0.02)


def test_project_and_recipes(tmp_path):
    out = tmp_path / "pi.zarr"
    recipe = tmp_path / "pi.toml"
    recipe.write_text(f'''command = "project"
system = "averaging_cubic"
cv = "x1"
lift = "exact"
z0 = 1.0
t_end = 0.4
macro_step = 0.2
burst = 1e-4
walkers = 400
realizations = 4
method = "rk2"
seed = 2
out = "{out}"
quiet = true
''')
    assert main(["run", str(recipe)]) == 0
    result = open_zarr(out)
    assert result.z.dims == ("time", "cv") and result.sizes["time"] == 3
    assert "walkers = 400" in parameters_of(result.attrs)["recipe"]
    # PI-RK2 with Δ = 0.2 against the closed ODE of the EM-consistent averaged drift, within 4 se + its O(Δ²) error
    from scipy.integrate import solve_ivp
    cubic = systems.get("averaging_cubic")
    truth = solve_ivp(lambda t, z: cubic.averaged_drift(z, cubic.dt), (0, 0.4), [1.0], rtol=1e-10).y[0, -1]
    # 4 standard errors of the 4 realizations' mean plus PI-RK2's O(Δ²) error: Heun's method itself on the
    # averaged drift at Δ = 0.2 errs by 0.0070 at t = 0.4 (two steps against solve_ivp), the 1e-4 burst's bias is
    # O(1e-4); bound 0.01
    assert abs(float(result.z[-1, 0]) - truth) < 4 * float(result.z_stderr[-1, 0]) + 0.01


def test_umbrella_bad_input(tmp_path, capsys):
    def umbrella(grid="--grid=-1:1:3", kappa="20", cv="x1"):
        return main(["umbrella", "--system", "double_well", "--cv", cv, grid, "--kappa", kappa, "--steps", "20",
                     "--walkers", "4", "--seed", "0", "--out", str(tmp_path / "u.zarr"), "--quiet"])
    for arguments, message in [({"grid": "--grid=1:0:0"}, "non-empty"), ({"kappa": "-1"}, "kappa"),
                               ({"cv": "x3"}, "out of range"), ({"cv": str(tmp_path / "none.npz")}, "No such file"),
                               ({"grid": "--grid=1:2"}, "START:STOP:NUM")]:
        try:
            assert umbrella(**arguments) == 2
        except SystemExit:  # argparse refuses a malformed grid itself
            pass
        assert message in capsys.readouterr().err


def test_closure_bad_input(tmp_path, capsys, monkeypatch):
    base = ["closure", "estimate", "--system", "averaging_cubic", "--cv", "x1", "--grid=-1:1:3", "--burst", "0.001",
            "--walkers", "10", "--seed", "0", "--out", str(tmp_path / "c.zarr"), "--quiet"]
    assert main([*base, "--lift", "umbrella:k=3"]) == 2
    assert "umbrella:kappa=K,steps=N" in capsys.readouterr().err
    assert main(["closure", "estimate", "--system", "caps", *base[4:]]) == 2
    assert "no exact conditional law" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main([*base, "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "pip install 'eqfree[dist]'" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("system = 'caps'\n")
    assert main(["run", str(bad)]) == 2
    assert "command" in capsys.readouterr().err
