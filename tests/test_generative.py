"""The interface every learned lift shares: scalings, determinism, persistence, bad input."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eqfree import Lift, systems
from eqfree.base import load
from eqfree.errors import InputError, MissingInputError, NotFittedError
from eqfree.lift.generative import CcGAN, ConditionalScoreModel, ExtrapolationWarning
from eqfree.metrics import label_consistency
from eqfree.restrict import DiffusionMaps, GeometricHarmonics, local_noise_covariances
from eqfree.scaling import LabelScaler

TINY = {
    "ccgan": lambda: CcGAN(n_epochs=20, batch_size=64, preset={"generator": [8], "activation": "leaky_relu",
                                                            "discriminator": [8]}),
    "score": lambda: ConditionalScoreModel(n_epochs=20, batch_size=64, hidden=[8], n_levels=4),
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = rng.uniform(-2.0, 3.0, 500)
    return np.column_stack([y, 1.0 + 0.2 * rng.standard_normal(500)]), y


@pytest.fixture(scope="module", params=sorted(TINY))
def model(request, data):
    return TINY[request.param]().fit(*data, seed=0, progress=False)


@settings(max_examples=50, deadline=None)
@given(low=st.floats(-1e6, 1e6), width=st.floats(1e-6, 1e6), u=st.floats(-2.0, 3.0))
def test_label_scaling_round_trips(low, width, u):
    scaler = LabelScaler(low, low + width)
    assert scaler.transform(scaler.low) == 0.0
    assert scaler.transform(scaler.high) == pytest.approx(1.0, abs=1e-9)
    y = scaler.inverse(u)
    # round-off: the map's relative error is a few ulp of max(1, |low|/width)
    assert scaler.transform(y) == pytest.approx(u, abs=1e-9 * max(1.0, abs(low) / width))


def test_fitted_scalings_are_the_data_ranges(model, data):
    X, y = data
    assert (model.labels_.low, model.labels_.high) == (y.min(), y.max())
    np.testing.assert_allclose(model.data_.mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.data_.scale, X.std(axis=0), rtol=1e-12)
    assert model.valid_range == (y.min(), y.max()) and isinstance(model, Lift)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), z=st.floats(-1.9, 2.9))
def test_sampling_is_deterministic_for_a_seed(model, seed, z):
    first = model.sample(z, 16, seed=seed)
    np.testing.assert_array_equal(first, model(z, 16, seed=seed))
    assert first.shape == (16, 2) and np.isfinite(first).all()
    assert not np.array_equal(first, model.sample(z, 16, seed=seed + 1))


def test_save_load_gives_identical_samples(model, tmp_path):
    path = model.save(tmp_path / "model")
    config = json.loads((path / "config.json").read_text())
    assert config["class"].endswith(f":{type(model).__name__}")
    loaded = load(path)
    assert type(loaded) is type(model) and loaded.coords_ == ["x1", "x2"]
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.sample(0.5, 100, seed=3), model.sample(0.5, 100, seed=3))
    first = next(iter(model.history_))
    np.testing.assert_array_equal(loaded.history_[first], model.history_[first])


def test_sampling_outside_the_labels_warns_of_extrapolation(model):
    with pytest.warns(ExtrapolationWarning,
                      match=r"z = 5 is outside the training labels \[-1.99.*, 2.98.*\]: this is extrapolation"):
        samples = model.sample(5.0, 10, seed=0)
    assert np.isfinite(samples).all()


@pytest.mark.parametrize("method", sorted(TINY))
def test_bad_training_data_is_refused(method, data):
    X, y = data
    cases = [
        ((X, np.where(np.arange(len(y)) == 7, np.nan, y)),
         r"y has non-finite values in 1 sample\(s\) \(first at index 7\)"),
        ((np.where(np.arange(len(y))[:, None] == 3, np.inf, X), y), r"X has non-finite values .* index 3"),
        ((X, np.full(len(y), 2.0)), "all labels equal 2: a conditional generator needs samples at several CV values"),
        ((X[:-1], y), "X has 499 samples but y has 500 labels"),
        ((X, y[:, None]), r"y shape \(N,\)"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            TINY[method]().fit(*args, seed=0, progress=False)
    with pytest.raises(NotFittedError, match="not fitted: call fit"):
        TINY[method]().sample(0.0, 4, seed=0)


def test_bad_sampling_requests_are_refused(model):
    with pytest.raises(ValueError, match="lifts one finite CV value"):
        model.sample([0.0, 1.0], 4, seed=0)
    with pytest.raises(ValueError, match="lifts one finite CV value"):
        model.sample(np.nan, 4, seed=0)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        model.sample(0.0, 0, seed=0)
    with pytest.raises(TypeError, match="pass one explicitly"):
        model.sample(0.0, 4, seed=None)


def test_load_refuses_what_is_not_a_model(tmp_path):
    with pytest.raises(MissingInputError, match="is not a saved eqfree estimator"):
        load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "something", "method": "gan"}))
    with pytest.raises(InputError, match="holds format 'something', not an eqfree estimator"):
        load(tmp_path)


def test_half_moons_samples_lie_on_the_moon_at_the_learned_coordinate():
    """Conditioned on the learned (Mahalanobis diffusion-map) coordinate Φ = φ0, lifted states sit
    at Φ ≈ φ0 and on the moon of the data there: their original slow x1 (the angle less the
    radius, eq. 4.1) is that of the training states with Φ near φ0."""
    moons = systems.get("half_moons")
    rng = np.random.default_rng(1)
    starts = moons.from_original(np.column_stack([np.linspace(0, 1.5, 50), rng.normal(1, math.sqrt(0.05), 50)]))
    trajectories = moons.simulate(50, 400, seed=2, x0=starts)
    centres = trajectories[10::20].values.reshape(-1, 2)
    covariances = local_noise_covariances(moons.evolver(), centres, n_steps=2, n_bursts=20, seed=3)
    maps = DiffusionMaps(n_components=1).fit(centres, covariances=covariances, seed=0)
    phi = maps.eigenvectors_[:, maps.selected_[0]]
    width = np.median(np.sum((centres[:, None] - centres[None]) ** 2, -1)) / 20
    Phi = GeometricHarmonics(epsilon=width).fit(centres, phi / phi.std())
    Y = trajectories[1:].values.reshape(-1, 2)
    labels = Phi(Y)[:, 0]
    model = ConditionalScoreModel(n_epochs=3000, hidden=[64] * 3, lr=2e-3).fit(Y, labels, seed=0, progress=False)
    phi0 = float(Phi(moons.from_original(np.array([[0.7, 1.0]])))[0, 0])
    lifted = model.sample(phi0, 2000, seed=1)
    consistency = label_consistency(Phi, lifted, phi0)
    x1_lifted = moons.to_original(lifted)[:, 0]
    x1_data = moons.to_original(Y[np.abs(labels - phi0) < 0.02])[:, 0]
    print(f"half_moons at phi0 = {phi0:.3f}: mean |Phi - phi0| = {consistency:.4f} (Phi spans {np.ptp(labels):.2f}); "
          f"x1 {np.median(x1_lifted):.4f} ± {x1_lifted.std():.4f}, "
          f"data there {np.median(x1_data):.4f} ± {x1_data.std():.4f}")
    # not derived from a standard error: a label-consistency spec, mean |Φ − φ0| below 3 % of Φ's range (the width of
    # the data's own slice, |labels − φ0| < 0.02 ≈ 1 % of the range, is the floor); measured value printed. TODO(issue
    # 26): tie to the score model's label error
    assert consistency < 0.03 * np.ptp(labels)
    assert abs(np.median(x1_lifted) - np.median(x1_data)) < 0.05  # the moons span x1 ∈ [0, 1.55]
    assert x1_lifted.std() < 2 * x1_data.std()


@pytest.mark.parametrize("method", sorted(TINY))
def test_warm_start_keeps_the_model_and_widens_its_range(method, data):
    X, y = data
    model = TINY[method]().fit(X, y, seed=0, progress=False)
    before = {name: p.detach().clone() for name, p in model.networks_.named_parameters()}
    scalers = (model.labels_, model.data_)
    wider = np.concatenate([X, X + [5.0, 0.0]]), np.concatenate([y, y + 5.0])
    model.fit(*wider, seed=1, warm_start=True, progress=False)
    assert (model.labels_, model.data_) == scalers  # the networks' coordinates are unchanged
    assert model.valid_range == (y.min(), y.max() + 5.0)
    after = {name: p.detach() for name, p in model.networks_.named_parameters()}
    change = math.sqrt(sum(float(torch.sum((after[k] - v) ** 2)) for k, v in before.items()))
    size = math.sqrt(sum(float(torch.sum(v**2)) for v in before.values()))
    assert 0 < change < 0.2 * size  # 20 more small steps from the old weights, not a fresh initialization
    with pytest.raises(ValueError, match="warm start with 3-dimensional states; the model generates 2"):
        model.fit(np.column_stack([X, X[:, :1]]), y, seed=2, warm_start=True, progress=False)
