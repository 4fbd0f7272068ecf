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
    error = np.linalg.norm(model(data[held_out])[:, 0] - phi[held_out]) / np.linalg.norm(phi[held_out])
    print(f"{type(model).__name__} held-out relative error {error:.2e}")
    # not derived from a standard error: the bound is the accuracy claimed for each extension (parametrized: 0.05
    # geometric harmonics, 0.01 GP) on this noise-free swiss-roll data, printed as measured; the training-point check
    # uses the same bound on the scale of φ. TODO(issue 26): an interpolation-error derivation
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
