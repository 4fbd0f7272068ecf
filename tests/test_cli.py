"""The eqfree command: zarr v3 output with provenance, statistics, clear errors."""

import re
import subprocess
import sys

import numpy as np
import pytest
import zarr

from eqfree import systems
from eqfree.cli import main, parser
from eqfree.errors import OutputExistsError
from eqfree.io import open_zarr, parameters_of
from eqfree.statistics import ensemble_moments


def simulate(path, *extra):
    return main(["simulate", "--system", "caps", "--walkers", "16", "--steps", "40", "--save-every", "4",
                 "--seed", "3", "--out", str(path), "--quiet", *extra])


def test_simulate_writes_a_zarr_v3_store_with_provenance(tmp_path):
    path = tmp_path / "caps.zarr"
    assert simulate(path, "--param", "a2=20") == 0
    assert zarr.open_group(str(path), mode="r").metadata.zarr_format == 3
    data = open_zarr(path)
    assert data["x"].dims == ("time", "walker", "coord") and data["x"].shape == (11, 16, 3)
    assert list(data.coord.values) == ["x1", "x2", "x3"]
    np.testing.assert_allclose(data["y"].values, systems.get("caps").observe(data["x"].values))
    assert data.attrs["Conventions"].startswith("CF-") and data["x"].attrs["units"] == "1"
    params = parameters_of(data.attrs)
    assert params["seed"] == 3 and params["system_params"]["a2"] == 20.0 and params["dt"] == 1e-3
    assert "--param a2=20" in data.attrs["eqfree_command"]
    # the same command gives the same numbers as the library
    direct = systems.get("caps", a2=20).simulate(16, 40, seed=3, save_every=4)
    np.testing.assert_array_equal(data["x"].values, direct.values)


def test_existing_store_is_not_replaced_silently(tmp_path, capsys):
    path = tmp_path / "caps.zarr"
    assert simulate(path) == 0
    assert simulate(path) == 2
    assert "exists" in capsys.readouterr().err
    assert simulate(path, "--overwrite") == 0


def test_overwrite_never_replaces_what_eqfree_did_not_write(tmp_path, capsys):
    """--overwrite refuses a folder of the user's and the command's own input, before computing."""
    own = tmp_path / "results"
    own.mkdir()
    (own / "notes.txt").write_text("a week of work")
    assert simulate(own, "--overwrite") == 2
    assert "not written by eqfree" in capsys.readouterr().err
    assert (own / "notes.txt").read_text() == "a week of work" and len(list(own.iterdir())) == 1
    store = tmp_path / "caps.zarr"
    assert simulate(store) == 0
    before = open_zarr(store)["x"].values
    assert main(["umbrella", "--system", "caps", "--cv", "x1", "--grid=0:1:3", "--kappa", "10", "--steps", "20",
                 "--walkers", "4", "--seed", "0", "--initial", str(store), "--out", str(store), "--overwrite",
                 "--quiet"]) == 2
    assert "also an input" in capsys.readouterr().err
    np.testing.assert_array_equal(open_zarr(store)["x"].values, before)


def test_bad_parameters_exit_with_a_message(tmp_path, capsys):
    assert simulate(tmp_path / "x.zarr", "--param", "a9=1") == 2
    assert "valid parameters" in capsys.readouterr().err
    assert main(["simulate", "--system", "caps", "--walkers", "2", "--steps", "2", "--dt", "-1",
                 "--seed", "0", "--out", str(tmp_path / "y.zarr"), "--quiet"]) == 2
    assert "dt must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--system", "nope", "--walkers", "2", "--steps", "2", "--seed", "0", "--out", "z.zarr"])


def test_stats_compares_with_the_exact_conditional_law(tmp_path, capsys):
    path = tmp_path / "fsl.zarr"
    assert main(["simulate", "--system", "fast_slow_linear", "--walkers", "400", "--steps", "1000", "--dt", "0.1",
                 "--save-every", "10", "--seed", "1", "--out", str(path), "--quiet"]) == 0
    assert main(["stats", str(path), "--coord", "x2", "--discard", "30"]) == 0
    out = capsys.readouterr().out
    assert "exact           N(1, 0.05000)" in out and "euler_maruyama  N(1, 0.05025)" in out
    # the printed moments are the library's (ensemble_moments of the stored x2 after t = 30), to the 5 decimals
    # printed; old: printed, never checked
    moments = ensemble_moments(open_zarr(path).x.sel(coord="x2", time=slice(30, None)).values)
    assert f"mean     = {moments.mean:.5f} ± {moments.mean_stderr:.5f}" in out
    assert f"variance = {moments.variance:.5f} ± {moments.variance_stderr:.5f}" in out
    # and they agree with EM's exact invariant law at dt = 0.1, N(1, 0.05025) (no discretization bias; the start
    # x2 = 1 is the mean and 30 ≫ the relaxation time 1/a3 = 10 for the variance): 3 standard errors each
    off = re.search(r"euler_maruyama  N\(1, 0.05025\): mean off by ([-+.\d]+) se, variance off by ([-+.\d]+) se", out)
    assert abs(float(off[1])) < 3 and abs(float(off[2])) < 3, out


def test_module_entry_point_lists_systems():
    listing = subprocess.run([sys.executable, "-m", "eqfree", "systems"], capture_output=True, text=True, check=True)
    for name in systems.available():
        assert name in listing.stdout


def test_stats_refuses_to_discard_everything(tmp_path, capsys):
    path = tmp_path / "caps.zarr"
    assert simulate(path) == 0
    assert main(["stats", str(path), "--coord", "x2", "--discard", "10"]) == 2
    assert "choose a smaller --discard" in capsys.readouterr().err


def test_a_mistake_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    path = tmp_path / "caps.zarr"
    assert simulate(path) == 0
    assert simulate(path) == 2
    err = capsys.readouterr().err
    assert err.startswith("eqfree: error: ") and err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(OutputExistsError):
        simulate(path, "--debug")
    with pytest.raises(OutputExistsError):
        main(["--debug", "simulate", "--system", "caps", "--walkers", "2", "--steps", "2", "--seed", "0",
              "--out", str(path), "--quiet"])


def test_recipe_options_can_be_overridden(tmp_path):
    recipe = tmp_path / "sim.toml"
    recipe.write_text(f'command = "simulate"\nsystem = "caps"\nwalkers = 4\nsteps = 10\nseed = 3\n'
                      f'out = "{tmp_path / "a.zarr"}"\nquiet = true\n')
    assert main(["run", str(recipe), "--walkers=2", f"--out={tmp_path / 'b.zarr'}"]) == 0
    assert not (tmp_path / "a.zarr").exists()
    data = open_zarr(tmp_path / "b.zarr")
    assert data.x.sizes["walker"] == 2 and "walkers = 4" in parameters_of(data.attrs)["recipe"]


def test_cli_defaults_are_the_library_defaults():
    import inspect

    from eqfree.lift import UmbrellaSampling

    args = parser().parse_args(["umbrella", "--system", "double_well", "--cv", "x1", "--grid=-1:1:3", "--kappa", "1",
                                "--steps", "2", "--walkers", "2", "--seed", "0", "--out", "u.zarr"])
    assert args.estimator == inspect.signature(UmbrellaSampling.reweight).parameters["estimator"].default == "wham"
