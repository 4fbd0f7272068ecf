"""`eqfree train-cg`, end to end: the saved model is what the library computes with the same seed."""


import numpy as np
import pytest

from eqfree import systems
from eqfree.base import load
from eqfree.cli import main
from eqfree.io import open_zarr
from eqfree.lift.variational import VAE, ReverseKL

SMALL = ["--widths", "4,8,8", "--batch-size", "32"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "well.zarr"
    assert main(["simulate", "--system", "double_well", "--walkers", "20", "--steps", "500", "--save-every", "50",
                 "--seed", "1", "--out", str(path), "--quiet"]) == 0
    return path


def test_train_cg_on_data_is_the_library_vae(store, tmp_path, capsys):
    out = tmp_path / "vae"
    assert main(["train-cg", "--data", str(store), "--discard", "1", "--epochs", "40", *SMALL, "--kl-warmup", "10",
                 "--importance-samples", "4", "--seed", "3", "--out", str(out), "--quiet"]) == 0
    assert "VAE on 180 states, ARD switched off" in capsys.readouterr().out
    states = open_zarr(store).x.sel(time=slice(1, None)).values.reshape(-1, 2)
    direct = VAE(widths=[4, 8, 8], n_epochs=40, batch_size=32, kl_warmup=10, importance_samples=4)
    direct.fit(states, seed=3, progress=False)
    loaded = load(out)
    assert loaded.coords_ == ["x1", "x2"] and loaded.training_["data"] == str(store)
    assert loaded.importance_samples == 4 and loaded.kl_warmup == 10
    np.testing.assert_array_equal(loaded.sample(100, seed=5), direct.sample(100, seed=5))


def test_train_cg_on_a_system_energy_is_the_library_reverse_kl(tmp_path, capsys):
    out = tmp_path / "rkl"
    assert main(["train-cg", "--system", "double_well", "--epochs", "60", *SMALL, "--beta-start", "0.5",
                 "--threshold", "1", "--epochs-at-target", "10", "--samples", "1000", "--seed", "4", "--out", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "reverse KL on double_well (beta 1)" in printed and "(>= -log Z, log Z = 12.0649)" in printed
    well = systems.get("double_well")
    direct = ReverseKL(widths=[4, 8, 8], n_epochs=60, batch_size=32, beta_start=0.5, threshold=1.0,
                       epochs_at_target=10)
    direct.fit(well.potential, dim=2, seed=4, progress=False)
    training = load(out).training_
    # 60 batches of 32, and the 256 Langevin walkers of the mode-loss guard at the start and once per epoch
    assert training["energy_evaluations"] == direct.training_["energy_evaluations"] == 60 * 32 + 61 * 256
    assert training["schedule"]["beta"] == [0.5, 1.0]
    evaluation = training["evaluation"]
    # the reverse-KL loss E_q[βU + log q] ≥ −log Z for every q (Gibbs' inequality: it is KL(q‖p) − log Z); its Monte
    # Carlo estimate may dip below by sampling noise only: 4 loss_stderr (the evaluation's standard error over its
    # independent draws)
    assert evaluation["loss"] > -well.log_partition() - 4 * evaluation["loss_stderr"]
    np.testing.assert_array_equal(load(out).sample(100, seed=5), direct.sample(100, seed=5))


def test_train_cg_mixed_and_bad_requests(store, tmp_path, capsys):
    assert main(["train-cg", "--data", str(store), "--system", "double_well", "--alpha", "0.5", "--epochs", "20",
                 *SMALL, "--beta-start", "0.9", "--threshold", "1", "--temper-every", "5", "--samples", "100",
                 "--seed", "0", "--out", str(tmp_path / "m"), "--quiet"]) == 0
    assert "alpha 0.5, 220 states" in capsys.readouterr().out
    assert set(load(tmp_path / "m").history_) == {"loss", "beta", "forward"}
    assert main(["train-cg", "--seed", "0", "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "give --data (a VAE on its states), --system" in capsys.readouterr().err
    assert main(["train-cg", "--system", "double_well", "--alpha", "0.5", "--seed", "0", "--out", str(tmp_path / "b"),
                 "--quiet"]) == 2
    assert "--alpha weighs the data term" in capsys.readouterr().err
    assert main(["train-cg", "--data", str(store), "--latent-dim", "0", "--seed", "0", "--out", str(tmp_path / "c"),
                 "--quiet"]) == 2
    assert "latent dimension must be an integer >= 1" in capsys.readouterr().err
