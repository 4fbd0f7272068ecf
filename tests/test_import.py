"""Umbrella data from other engines: the three text formats, units, and the round trip through text files
of the windows that ``UmbrellaSampling`` produces (same PMF, errors and free energies to 1e-10)."""

import math

import numpy as np
import pytest

from eqfree import systems
from eqfree._pymbar import pymbar_available
from eqfree.cli import main
from eqfree.errors import InputError, MissingInputError
from eqfree.io import open_zarr
from eqfree.lift import UmbrellaSampling
from eqfree.reweight.importing import (
    import_windows,
    kappa_in_kt,
    natural_sorted,
    read_centers,
    read_series,
    reduced_bias,
    reweight_windows,
)

needs_pymbar = pytest.mark.skipif(not pymbar_available(), reason="pymbar is not installed (pip install 'eqfree[md]')")

TIME, VALUES = np.array([0.0, 0.5, 1.0]), np.array([-1.25, 0.125, 3.0])


def write_xvg(path, time, values, legend="psi"):
    header = ["# GROMACS style", '@    title "Dihedral"', "@TYPE xy", f'@ s0 legend "{legend}"', '@ s1 legend "other"']
    rows = [f"{float(t)!r} {float(v)!r} {2 * float(v)!r}" for t, v in zip(time, values)]
    path.write_text("\n".join(header + rows) + "\n")


def write_colvar(path, time, values, name="d1"):
    rows = [f" {float(t)!r} {float(v)!r} {7.0!r}" for t, v in zip(time, values)]
    path.write_text("\n".join([f"#! FIELDS time {name} other", "#! SET min_d1 -pi"] + rows) + "\n")


def write_plain(path, time, values):
    path.write_text("# time value\n" + "\n".join(f"{float(t)!r}\t{float(v)!r}" for t, v in zip(time, values)) + "\n")


@pytest.mark.parametrize("write, column", [(write_xvg, "psi"), (write_xvg, 1), (write_colvar, "d1"),
                                           (write_colvar, 1), (write_plain, 1)])
def test_the_three_formats_are_read(tmp_path, write, column):
    path = tmp_path / "series.txt"
    write(path, TIME, VALUES)
    time, values = read_series(path, column)
    np.testing.assert_array_equal(time, TIME)
    np.testing.assert_array_equal(values, VALUES)


def test_one_column_gives_frame_numbers_and_errors_name_the_file(tmp_path):
    path = tmp_path / "one.dat"
    path.write_text("1.5\n2.5\n")
    np.testing.assert_array_equal(read_series(path)[0], [0.0, 1.0])
    write_colvar(tmp_path / "COLVAR", TIME, VALUES)
    with pytest.raises(InputError, match=r"no column named 'phi'; its columns: \['time', 'd1', 'other'\]"):
        read_series(tmp_path / "COLVAR", "phi")
    (tmp_path / "bad").write_text("1 2\n3 x\n")
    with pytest.raises(InputError, match="bad, line 2: not numbers"):
        read_series(tmp_path / "bad")
    with pytest.raises(MissingInputError, match="no series file"):
        read_series(tmp_path / "absent")


def test_kappa_units_convert_to_kt_per_cv_unit_squared():
    """200 kJ/mol/rad² at 300 K on a CV in degrees: βκ = 200/(R·300) · (π/180)² per deg² (pymbar's example)."""
    beta_kappa, beta = kappa_in_kt(200.0, "kJ/mol/rad^2", 300.0, "deg")
    assert beta == pytest.approx(1 / (0.0083144626 * 300))
    assert beta_kappa == pytest.approx(200.0 * beta * (math.pi / 180) ** 2, rel=1e-14)
    assert kappa_in_kt(1.0, "kcal/mol/A^2", 300.0, "nm")[0] == pytest.approx(100 / (0.0019872043 * 300))
    assert kappa_in_kt(3.0, "kT/1", None, None) == (3.0, 1.0)
    with pytest.raises(InputError, match="needs the temperature"):
        kappa_in_kt(1.0, "kJ/mol/nm^2", None, None)
    with pytest.raises(InputError, match="do not convert"):
        kappa_in_kt(1.0, "kJ/mol/nm^2", 300.0, "deg")
    with pytest.raises(InputError, match="not understood"):
        kappa_in_kt(1.0, "kJ/rad", 300.0, None)


def test_pymbar_layout_walkers_and_periodic_wrapping(tmp_path):
    """centers.dat of 'centre kappa' lines in degrees, prod{k}.xvg sorted naturally; two files at one centre
    are two walkers of one window; angles wrapped into [−180, 180)."""
    (tmp_path / "centers.dat").write_text("-180 200\n-150 200\n-150 200\n170 300\n")
    for k, values in enumerate([[179.0, 185.0], [-150.0, -149.0], [-151.0, -152.0], [170.0, 171.0]]):
        write_xvg(tmp_path / f"prod{k * 5}.xvg", [0.0, 0.2], values)
    files = natural_sorted(tmp_path.glob("prod*.xvg"))
    assert [f.name for f in files] == ["prod0.xvg", "prod5.xvg", "prod10.xvg", "prod15.xvg"]
    windows = import_windows(tmp_path / "centers.dat", files, kappa_units="kJ/mol/rad^2", cv_units="deg",
                             temperature=300.0, period=360.0)
    assert windows.sizes["window"] == 3 and windows.n_samples.values.tolist() == [2, 4, 2]
    np.testing.assert_array_equal(windows.center, [-180.0, -150.0, 170.0])
    np.testing.assert_array_equal(windows.walker, [0, 0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(windows.xi[:2], [179.0, -175.0])
    beta_kappa = kappa_in_kt(np.array([200.0, 300.0]), "kJ/mol/rad^2", 300.0, "deg")[0]
    np.testing.assert_allclose(windows.kappa, beta_kappa[[0, 0, 1]], rtol=1e-14)
    # the bias of window 0 at 179° is 1° from its centre at −180°, across the cut
    u = reduced_bias(windows)
    assert u[0, 0] == pytest.approx(0.5 * beta_kappa[0] * 1.0**2)
    assert u[2, 0] == pytest.approx(0.5 * beta_kappa[1] * 9**2)
    np.testing.assert_allclose(windows.bias, u[windows.window_index.values, np.arange(8)])
    with pytest.raises(InputError, match="4 series files for 3 centres"):
        import_windows(np.array([[0.0, 1.0]] * 3), files, kappa_units="kT/1")
    assert read_centers(tmp_path / "centers.dat").shape == (4, 2)


@pytest.fixture(scope="module")
def run():
    """A small umbrella run of the double well, as ``eqfree umbrella`` makes it."""
    well = systems.get("double_well")
    sampler = UmbrellaSampling(well.evolver(1e-3), "x1", 20.0, n_steps=1500, n_walkers=12, save_every=10,
                               initial=well.x0)
    return sampler, sampler.run(np.linspace(-2.5, 2.5, 9), seed=3)


def write_as_text(windows, folder):
    """One file per (window, walker), cycling through the three formats; a centres file with βκ in kT."""
    lines, paths = [], []
    beta_kappa = windows.attrs["beta"] * windows.attrs["kappa"]
    for k, centre in enumerate(windows.center.values):
        in_k = windows.window_index.values == k
        for walker in np.unique(windows.walker.values[in_k]):
            mine = in_k & (windows.walker.values == walker)
            path = folder / f"w{k}_{walker}.{['xvg', 'colvar', 'dat'][(k + walker) % 3]}"
            writer = {"xvg": write_xvg, "colvar": write_colvar, "dat": write_plain}[path.suffix[1:]]
            writer(path, windows.frame_time.values[mine], windows.xi.values[mine])
            lines.append(f"{float(centre)!r} {float(beta_kappa)!r}")
            paths.append(path)
    (folder / "centers.dat").write_text("\n".join(lines) + "\n")
    return paths


@pytest.mark.parametrize("estimator", ["wham", pytest.param("mbar", marks=needs_pymbar)])
def test_round_trip_through_text_reproduces_the_pmf(run, tmp_path, estimator):
    """The run's windows written as xvg, COLVAR and plain files (one per walker, formats mixed) and imported:
    the same samples, and the same PMF, errors, free energies and overlap to 1e-10."""
    sampler, windows = run
    paths = write_as_text(windows, tmp_path)
    assert {p.suffix for p in paths} == {".xvg", ".colvar", ".dat"}
    again = import_windows(tmp_path / "centers.dat", paths, kappa_units="kT/1")
    assert again.sizes["sample"] == windows.sizes["sample"] and again.sizes["window"] == windows.sizes["window"]
    np.testing.assert_array_equal(again.center, windows.center)
    np.testing.assert_array_equal(again.n_samples, windows.n_samples)
    key = lambda data: np.lexsort((data.frame_time.values, data.walker.values, data.window_index.values))  # noqa: E731
    np.testing.assert_array_equal(again.xi.values[key(again)], windows.xi.values[key(windows)])
    np.testing.assert_allclose(again.bias.values[key(again)], windows.bias.values[key(windows)], rtol=1e-14)
    expected = sampler.reweight(windows, estimator, bins=30, seed=7)
    fitted = reweight_windows(again, estimator, seed=7, bins=30)
    for name in ("pmf", "pmf_stderr", "cv"):
        np.testing.assert_allclose(fitted.pmf_[name], expected.pmf_[name], rtol=0, atol=1e-10)
    np.testing.assert_allclose(fitted.f_, expected.f_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fitted.f_stderr_, expected.f_stderr_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fitted.overlap_, expected.overlap_, rtol=0, atol=1e-10)


def test_cli_reweight_writes_the_umbrella_store(run, tmp_path):
    sampler, windows = run
    write_as_text(windows, tmp_path)
    out = tmp_path / "pmf.zarr"
    assert main(["reweight", "--centers", str(tmp_path / "centers.dat"), "--series", str(tmp_path / "w*.*"),
                 "--kappa-units", "kT/1", "--estimator", "wham", "--bins", "30", "--seed", "7", "--bootstrap", "50",
                 "--out", str(out)]) == 0
    store = open_zarr(out)
    expected = sampler.reweight(windows, "wham", bins=30, seed=7, n_bootstrap=50)
    np.testing.assert_allclose(store.pmf.values, expected.pmf_.pmf.values, rtol=0, atol=1e-10)
    np.testing.assert_allclose(store.pmf_stderr.values, expected.pmf_.pmf_stderr.values, rtol=0, atol=1e-10)
    for name in ("xi", "bias", "window_index", "walker", "frame_time", "f", "f_stderr", "overlap", "n_samples"):
        assert name in store
    assert store.attrs["estimator"] == "WHAM" and "whole walkers" in store.attrs["uncertainty"]
    assert store.attrs["residual"] < 1e-10 and store.attrs["tolerance"] == 1e-10


def test_cli_reweight_user_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "centers.dat").write_text("0 1\n")
    base = ["reweight", "--centers", str(tmp_path / "centers.dat"), "--out", str(tmp_path / "o.zarr")]
    assert main([*base, "--series", str(tmp_path / "none*.xvg"), "--kappa-units", "kT/1"]) == 2
    assert "no files match" in capsys.readouterr().err
    write_plain(tmp_path / "a.dat", TIME, VALUES)
    assert main([*base, "--series", str(tmp_path / "a.dat"), "--kappa-units", "kJ/mol/nm^2"]) == 2
    err = capsys.readouterr().err
    assert "needs the temperature" in err and "Traceback" not in err and not (tmp_path / "o.zarr").exists()
