"""Out-of-sample extensions: held-out accuracy, gradients against finite differences, torch use."""

import numpy as np
import pytest
import torch

from eqfree import Restrict, systems
from eqfree.evolve import bias_force
from eqfree.restrict import DiffusionMaps, GaussianProcessRegression, GeometricHarmonics


@pytest.fixture(scope="module")
def learned():
    """fast_slow_linear data (5001 points, dt = 1) and its first diffusion coordinate."""
    data = systems.get("fast_slow_linear").simulate(1, 30_000, seed=1)[::6, 0].values
    maps = DiffusionMaps(n_components=1)
    phi = maps.fit_transform(data, seed=0)[:, 0]
    order = np.random.default_rng(0).permutation(len(data))
    return data, maps, phi, order[:600], order[600:900]


def central_difference(f, x, h=1e-3):
    """Fourth-order central difference of a scalar field, (M, dim) → (M, dim); error O(h⁴)."""
    columns = []
    for e in np.eye(x.shape[1]) * h:
        columns.append((-f(x + 2 * e) + 8 * f(x + e) - 8 * f(x - e) + f(x - 2 * e)) / 12 / h)
    return np.stack(columns, axis=1)


@pytest.mark.parametrize("estimator, bound", [
    (lambda maps: GeometricHarmonics(epsilon=4 * maps.epsilon_), 0.05),
    (lambda maps: GaussianProcessRegression(), 0.01),
])
def test_extension_reproduces_held_out_coordinates(learned, estimator, bound):
    data, maps, phi, train, held_out = learned
    model = estimator(maps).fit(data[train], phi[train])
    missed = model(data[held_out])[:, 0] - phi[held_out]
    error = np.linalg.norm(missed) / np.linalg.norm(phi[held_out])
    # the held-out squared errors against 10-fold cross-validation on the training points alone (each fold predicted
    # by the same estimator, hyperparameters as fitted, on the other 540). Given the trajectory, the 300 held-out
    # points are a simple random sample of the points outside the fit, so their mean squared error estimates the
    # fit's population MSE there with standard error sd/√300; the cross-validated errors likewise (sd/√600) for fits
    # on 540 points, which miss by at least as much as on 600 (bias ≥ 0: more data, smaller error), so the held-out
    # MSE lies below the cross-validated one + 4 standard errors of the difference. This bound comes from the
    # training data; the stated accuracy (below) is a specification
    folds = np.array_split(train, 10)
    params = model.get_params() if isinstance(model, GeometricHarmonics) else {"epsilon": model.epsilon_,
                                                                              "noise": model.noise_}
    validated = np.concatenate([
        type(model)(**params).fit(data[np.setdiff1d(train, fold)], phi[np.setdiff1d(train, fold)])(data[fold])[:, 0]
        - phi[fold] for fold in folds])
    se = np.hypot(np.std(missed**2, ddof=1) / np.sqrt(missed.size), np.std(validated**2, ddof=1) / np.sqrt(train.size))
    print(f"{type(model).__name__} held-out relative error {error:.2e}, MSE {np.mean(missed**2):.2e} (cross-validated "
          f"{np.mean(validated**2):.2e} ± {se:.1e})")
    assert np.mean(missed**2) < np.mean(validated**2) + 4 * se  # (derived above)
    # a specification, not a standard-error bound: the accuracy claimed for each extension (parametrized: 0.05 geometric
    # harmonics, 0.01 GP; tutorial 02 states the 5 %), measured 0.022 and 0.0039; the training-point check uses the
    # same bound on the scale of φ. No interpolation-error bound is computable here: the power-function bound needs φ's
    # native-space norm, and the GP's posterior sd, its would-be error bar, is 5.5× smaller than its held-out error
    assert error < bound
    np.testing.assert_allclose(model(data[train[:20]])[:, 0], phi[train[:20]], rtol=0, atol=bound * np.abs(phi).max())
    x = data[held_out[:20]]
    gradient = model.gradient(x)[:, 0, :]
    fd = central_difference(lambda p: model(p)[:, 0], x)
    assert np.abs(gradient - fd).max() < 1e-6 * np.abs(gradient).max()
    # torch: the same function, differentiated by autograd
    xt = torch.tensor(x, requires_grad=True)
    model(xt).sum().backward()
    # the same sums in another order: agreement to rounding, amplified by coefficients up to ~1e3
    np.testing.assert_allclose(xt.grad.numpy(), gradient, rtol=0, atol=1e-9 * np.abs(gradient).max())
    assert isinstance(model, Restrict)


def test_nystrom_gradient_matches_finite_differences(learned):
    data, maps, phi, _, held_out = learned
    x = data[held_out[:10]] + 1e-3
    gradient = maps.gradient(x)[:, 0, :]
    fd = central_difference(lambda p: maps(p)[:, 0], x)
    assert np.abs(gradient - fd).max() < 1e-6 * np.abs(gradient).max()
    np.testing.assert_allclose(maps(torch.tensor(x)).numpy(), maps(x), atol=1e-12)


def test_learned_coordinate_biases_the_dynamics(learned):
    """U = k/2 (Φ(x) − φ0)² gives the force −k (Φ − φ0) ∇Φ, by autograd through the extension."""
    data, maps, phi, train, _ = learned
    model = GeometricHarmonics(epsilon=4 * maps.epsilon_).fit(data[train], phi[train])
    k, phi0 = 50.0, float(np.median(phi))
    potential = lambda x: 0.5 * k * (model(x)[:, 0] - phi0) ** 2
    x = torch.tensor(data[:5])
    expected = -k * (model(data[:5])[:, :1] - phi0) * model.gradient(data[:5])[:, 0, :]
    np.testing.assert_allclose(bias_force(potential, x).numpy(), expected, rtol=1e-9, atol=1e-12)


def test_bad_values():
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="n_samples = 20"):
        GeometricHarmonics(epsilon=1.0).fit(X, np.zeros(19))
    with pytest.raises(ValueError, match="finite"):
        GaussianProcessRegression(epsilon=1.0, noise=1e-6).fit(X, np.full(20, np.nan))
    model = GeometricHarmonics(epsilon=1.0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="fitted on 2"):
        model(np.zeros((3, 3)))
