"""`eqfree train-lift` and `eqfree lift`, end to end: the files hold what the library computes."""

from dataclasses import asdict

import numpy as np
import pytest

from eqfree.base import load
from eqfree.cli import main
from eqfree.io import open_zarr
from eqfree.seeding import child


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "caps.zarr"
    assert main(["simulate", "--system", "caps", "--walkers", "10", "--steps", "2000", "--save-every", "20",
                 "--seed", "1", "--out", str(path), "--quiet"]) == 0
    return path


@pytest.mark.parametrize("method", ["ccgan", "score"])
def test_train_then_lift(store, tmp_path, method, capsys):
    model_dir, lifted = tmp_path / "model", tmp_path / "lifted.zarr"
    extra = ["--loss", "soft", "--noise-dim", "2"] if method == "ccgan" else []
    assert main(["train-lift", "--data", str(store), "--cv", "x1", "--discard", "0.2", "--method", method, *extra,
                 "--epochs", "30", "--batch-size", "64", "--seed", "3", "--out", str(model_dir), "--quiet"]) == 0
    saved = load(model_dir)
    assert saved.method == method and saved.training_["cv"] == "x1" and saved.coords_ == ["x1", "x2", "x3"]
    data = open_zarr(store).sel(time=slice(0.2, None))
    assert saved.training_["n_samples"] == data.x.sizes["time"] * 10
    assert asdict(saved.labels_) == {"low": float(data.x[..., 0].min()), "high": float(data.x[..., 0].max())}
    if method == "ccgan":
        assert saved.loss == "soft" and saved.noise_dim == 2

    assert main(["lift", "--model", str(model_dir), "--at", "1,1.5", "--samples", "50", "--seed", "4",
                 "--out", str(lifted)]) == 0
    out = capsys.readouterr().out
    assert "z = 1: label consistency mean |R(x) - z| = " in out and "z = 1.5:" in out
    result = open_zarr(lifted)
    assert result.x.dims == ("z", "sample", "coord") and result.x.shape == (2, 50, 3)
    model = load(model_dir)
    np.testing.assert_array_equal(result.x.values[1], model.sample(1.5, 50, seed=child(4, 1)))


def test_train_lift_on_observed_coordinates_names_them(store, tmp_path):
    assert main(["train-lift", "--data", str(store), "--cv", "x1", "--variable", "y", "--method", "score",
                 "--epochs", "5", "--seed", "0", "--out", str(tmp_path / "m"), "--quiet"]) == 0
    assert load(tmp_path / "m").coords_ == ["y1", "y2", "y3"]


def test_bad_requests_fail_with_a_message(store, tmp_path, capsys):
    base = ["train-lift", "--data", str(store), "--method", "ccgan", "--epochs", "2", "--seed", "0", "--quiet"]
    assert main([*base, "--cv", "x1", "--variable", "z", "--out", str(tmp_path / "a")]) == 2
    assert "has no variable 'z'" in capsys.readouterr().err
    assert main([*base, "--cv", "x1", "--discard", "1e9", "--out", str(tmp_path / "b")]) == 2
    assert "no samples left" in capsys.readouterr().err
    assert main([*base, "--cv", "x1", "--preset", "table9", "--out", str(tmp_path / "c")]) == 2
    assert "unknown network preset 'table9'" in capsys.readouterr().err
    assert main(["lift", "--model", str(tmp_path), "--at", "1", "--samples", "5", "--seed", "0",
                 "--out", str(tmp_path / "d")]) == 2
    assert "not a saved eqfree conditional generator" in capsys.readouterr().err


def test_assisted_lift_and_exploration_commands(tmp_path, capsys):
    data, model_dir = tmp_path / "fs.zarr", tmp_path / "model"
    assert main(["simulate", "--system", "fast_slow_linear", "--walkers", "20", "--steps", "2000", "--dt", "0.5",
                 "--save-every", "10", "--seed", "1", "--out", str(data), "--quiet"]) == 0
    assert main(["train-lift", "--data", str(data), "--cv", "x1", "--method", "score", "--epochs", "300",
                 "--seed", "2", "--out", str(model_dir), "--quiet"]) == 0
    lifted = tmp_path / "assisted.zarr"
    assert main(["lift", "--model", str(model_dir), "--at", "0.5", "--samples", "40", "--seed", "3",
                 "--method", "assisted", "--system", "fast_slow_linear", "--kappa", "0.5", "--steps", "100",
                 "--walkers", "4", "--out", str(lifted)]) == 0
    x = open_zarr(lifted).x.values[0]
    # the runs hold x1 near 0.5 with the window's width 1/sqrt(kappa) ≈ 1.4 (slow x1 barely moves in 100 steps)
    assert x.shape == (40, 2) and abs(x[:, 0].mean() - 0.5) < 1.0
    assert main(["lift", "--model", str(model_dir), "--at", "0.5", "--samples", "4", "--seed", "3",
                 "--method", "assisted", "--out", str(tmp_path / "no.zarr")]) == 2
    assert "give --system --kappa --steps" in capsys.readouterr().err

    rounds = tmp_path / "rounds.zarr"
    assert main(["explore", "--system", "fast_slow_linear", "--data", str(data), "--cv", "x1", "--to", "3",
                 "--step", "0.6", "--kappa", "0.5", "--steps", "50", "--walkers", "4", "--epochs", "50",
                 "--model", str(model_dir), "--seed", "4", "--out", str(rounds), "--quiet",
                 "--save-model", str(tmp_path / "explored")]) == 0
    out = capsys.readouterr().out
    result = open_zarr(rounds)
    assert "reached x1 = 3" in out and result.attrs["reached"] and float(result.z[-1]) == 3.0
    assert "energy" in result  # fast_slow_linear knows its exact conditional law
    assert load(tmp_path / "explored").valid_range[1] > 2.9
    assert main(["explore", "--system", "fast_slow_linear", "--data", str(data), "--cv", "x1", "--to", "3",
                 "--step", "0.6", "--kappa", "0.5", "--steps", "50", "--seed", "4", "--out", str(rounds)]) == 2
    assert "exists" in capsys.readouterr().err
