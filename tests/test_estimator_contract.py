"""The estimator convention of :mod:`eqfree.base`, checked on every fitted object in one parametrized test.

Each :class:`Case` gives a factory of an unfitted estimator with small hyperparameters, a ``fit(estimator,
seed)`` on small data made here, the ``outputs`` (arrays) that must be identical after a refit with the same
seed and after a save/load round trip, and one hyperparameter ``change`` for ``set_params``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from eqfree._pymbar import pymbar_available
from eqfree.base import Estimator, clone, load
from eqfree.errors import InputError, NotFittedError, OutputExistsError
from eqfree.lift.generative import CcGAN, ConditionalScoreModel
from eqfree.lift.variational import VAE, DiagonalLaplace, ReverseKL
from eqfree.restrict import DiffusionMaps, GaussianProcessRegression, GeometricHarmonics
from eqfree.reweight import MBAR, WHAM

needs_pymbar = pytest.mark.skipif(not pymbar_available(), reason="pymbar is not installed (pip install 'eqfree[md]')")


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], Estimator]
    fit: Callable[[Estimator, int], Any]
    outputs: Callable[[Estimator], tuple]
    change: tuple[str, Any]
    marks: tuple = ()


def arc(n: int, seed: int) -> np.ndarray:
    """n noisy points on a quarter circle in the plane."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0, np.pi / 2, n)
    return np.stack([np.cos(theta), np.sin(theta)], axis=1) + 0.01 * rng.normal(size=(n, 2))


ARC = arc(1100, 0)  # more than the 1000 points the automatic bandwidth subsamples: the seed matters
PLANE = np.random.default_rng(1).uniform(-1, 1, size=(80, 2))
TEST_POINTS = np.random.default_rng(2).uniform(-0.8, 0.8, size=(7, 2))
# local noise covariances C(x_i) (Mahalanobis kernel): random symmetric positive definite 2 × 2 matrices
COVARIANCES = (lambda m: m @ m.transpose(0, 2, 1) + 0.1 * np.eye(2))(np.random.default_rng(4).normal(size=(200, 2, 2)))


def umbrella_data(seed: int = 3):
    """Five overlapping harmonic windows on a line: reduced biases (K, N), window labels, CV samples."""
    centers, kappa, per_window = np.linspace(-1, 1, 5), 10.0, 60
    rng = np.random.default_rng(seed)
    window = np.repeat(np.arange(centers.size), per_window)
    cv = centers[window] + rng.normal(scale=1 / np.sqrt(kappa), size=window.size)
    return 0.5 * kappa * (cv[None, :] - centers[:, None]) ** 2, window, cv


UMBRELLA = umbrella_data()


def reweighting_outputs(estimator) -> tuple:
    return (estimator.conditional_weights(0.0, 0.2), estimator.f_, estimator.f_stderr_, estimator.log_weights_,
            estimator.overlap_, estimator.pmf_.pmf.values, estimator.pmf_.pmf_stderr.values)


def extension_outputs(estimator) -> tuple:
    return estimator(TEST_POINTS), estimator.gradient(TEST_POINTS), estimator.value_range_


TINY_GAN = {"generator": [8], "activation": "leaky_relu", "discriminator": [8]}
LAPLACE_VAE = VAE(widths=(4, 4, 4), n_epochs=10, batch_size=16).fit(PLANE, seed=0, progress=False)


def quadratic(x):
    """U(x) = |x|²/2 on torch states (n, dim): the energy of the reverse-KL cases."""
    return 0.5 * (x**2).sum(-1)


CASES: list[Case] = [
    Case("DiffusionMaps", lambda: DiffusionMaps(n_components=1, n_eigenpairs=4),
         lambda e, seed: e.fit(ARC, seed=seed),
         lambda e: (e.transform(ARC[:5]), e.gradient(ARC[:3]), e.eigenvalues_, e.eigenvectors_, e.selected_),
         ("alpha", 0.5)),
    Case("DiffusionMaps-sparse", lambda: DiffusionMaps(n_components=1, epsilon=0.01, kernel="sparse",
                                                       select="leading", n_eigenpairs=3),
         lambda e, seed: e.fit(ARC[:400], seed=seed),
         lambda e: (e.transform(ARC[400:405]), e.eigenvalues_, e.eigenvectors_),
         ("n_eigenpairs", 2)),
    Case("DiffusionMaps-Mahalanobis", lambda: DiffusionMaps(n_components=1, n_eigenpairs=4),
         lambda e, seed: e.fit(ARC[:200], COVARIANCES, seed=seed),
         lambda e: (e.names, e.eigenvalues_, e.eigenvectors_, e.precisions_), ("select", "leading")),
    Case("GeometricHarmonics", lambda: GeometricHarmonics(epsilon=0.3),
         lambda e, seed: e.fit(PLANE, np.sin(2 * PLANE[:, 0]) + PLANE[:, 1] ** 2),
         extension_outputs, ("delta", 1e-4)),
    Case("GaussianProcessRegression", lambda: GaussianProcessRegression(),
         lambda e, seed: e.fit(PLANE, np.stack([np.sin(2 * PLANE[:, 0]), PLANE[:, 1] ** 2], axis=1)),
         extension_outputs, ("noise", 1e-6)),
    Case("WHAM", lambda: WHAM(bins=15, n_bootstrap=4),
         lambda e, seed: e.fit(*UMBRELLA, seed=seed),
         reweighting_outputs, ("tolerance", 1e-8)),
    Case("MBAR", lambda: MBAR(bins=15),
         lambda e, seed: e.fit(*UMBRELLA),
         lambda e: (*reweighting_outputs(e), e.free_energy_difference(UMBRELLA[2] < 0, UMBRELLA[2] > 0)),
         ("max_iterations", 500), marks=(needs_pymbar,)),
    # learned models: tiny networks, a few epochs (one epoch = one optimizer step)
    Case("CcGAN", lambda: CcGAN(n_epochs=5, batch_size=16, preset=TINY_GAN),
         lambda e, seed: e.fit(PLANE, PLANE[:, 0], seed=seed, progress=False),
         lambda e: (e.sample(0.5, 20, seed=1), e.valid_range), ("lr", 2e-4)),
    Case("ConditionalScoreModel", lambda: ConditionalScoreModel(n_epochs=5, batch_size=16, hidden=(8,), n_levels=4),
         lambda e, seed: e.fit(PLANE, PLANE[:, 0], seed=seed, progress=False),
         lambda e: (e.sample(0.5, 20, seed=1), e.valid_range), ("sampler", "sde")),
    Case("VAE", lambda: VAE(widths=(4, 4, 4), n_epochs=10, batch_size=16),
         lambda e, seed: e.fit(PLANE, seed=seed, progress=False),
         lambda e: (e.sample(20, seed=1), e.encode(PLANE[:5]), e.ard_precisions_["decoder.mean.0.weight"]),
         ("kl_warmup", 3)),
    Case("ReverseKL", lambda: ReverseKL(widths=(4, 4, 4), n_epochs=10, batch_size=16, beta_start=0.5, threshold=1.0,
                                        temper_every=2, epochs_at_target=2),
         lambda e, seed: e.fit(quadratic, dim=2, seed=seed, progress=False),
         lambda e: (e.sample(20, seed=1), *e.schedule_), ("threshold", 0.5)),
    Case("ReverseKL-mixed", lambda: ReverseKL(widths=(4, 4, 4), n_epochs=10, batch_size=16, beta_start=0.5,
                                              threshold=1.0, temper_every=2, epochs_at_target=2, alpha=0.5),
         lambda e, seed: e.fit(quadratic, dim=2, seed=seed, X=PLANE, progress=False),
         lambda e: (e.sample(20, seed=1), e.history_["forward"]), ("alpha", 0.25)),
    Case("DiagonalLaplace", lambda: DiagonalLaplace(prior_precision=1.0),
         lambda e, seed: e.fit(LAPLACE_VAE, PLANE[:20], seed=seed),
         lambda e: (e.predictive(LAPLACE_VAE, lambda x: x[:, 0], n_theta=4, n_x=10, seed=1).draws,
                    *e.standard_deviations().values()),
         ("prior_precision", 2.0)),
]


def assert_identical(actual: tuple, expected: tuple) -> None:
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.marks) for c in CASES])
def test_estimator_contract(case: Case, tmp_path):
    estimator = case.make()
    assert type(estimator).__name__ in repr(estimator)

    # hyperparameters: a round trip through the constructor; set_params checks names
    params = estimator.get_params()
    assert type(estimator)(**params).get_params() == params
    name, value = case.change
    assert estimator.set_params(**{name: value}) is estimator and estimator.get_params()[name] == value
    assert name in repr(estimator)
    estimator.set_params(**{name: params[name]})
    assert estimator.get_params() == params
    with pytest.raises(InputError, match="no hyperparameter"):
        estimator.set_params(no_such_hyperparameter=1)

    # use before fit
    with pytest.raises(NotFittedError, match="not fitted"):
        case.outputs(estimator)

    # fit returns self; a clone refitted with the same seed gives the same numbers
    assert case.fit(estimator, 5) is estimator
    expected = case.outputs(estimator)
    refit = clone(estimator)
    assert type(refit) is type(estimator) and refit.get_params() == params and not refit.is_fitted
    assert_identical(case.outputs(case.fit(refit, 5)), expected)

    # the fitted state, in memory and through a saved folder
    copied = clone(estimator)
    copied.set_state(estimator.get_state())
    assert_identical(case.outputs(copied), expected)
    loaded = load(estimator.save(tmp_path / case.name))
    assert type(loaded) is type(estimator) and loaded.get_params() == params
    assert_identical(case.outputs(loaded), expected)


def test_save_never_writes_into_a_folder_of_the_users(tmp_path):
    """A folder holding anything but a saved estimator is refused and left as it was; a saved one is replaced."""
    estimator = WHAM(bins=15, n_bootstrap=4).fit(*UMBRELLA, seed=0)
    own = tmp_path / "notes"
    own.mkdir()
    (own / "config.json").write_text("my own settings")
    with pytest.raises(OutputExistsError, match="not a saved eqfree estimator"):
        estimator.save(own)
    assert sorted(p.name for p in own.iterdir()) == ["config.json"]
    assert (own / "config.json").read_text() == "my own settings"
    saved = estimator.save(tmp_path / "wham")
    refit = WHAM(bins=15, n_bootstrap=4).fit(*UMBRELLA, seed=1)
    np.testing.assert_array_equal(load(refit.save(saved)).f_stderr_, refit.f_stderr_)


def test_every_estimator_has_a_case():
    """The contract covers every concrete estimator in eqfree (the leaves of the Estimator hierarchy)."""
    import eqfree  # noqa: F401  (imports every estimator)

    def leaves(cls):
        children = cls.__subclasses__()
        return {leaf for child in children for leaf in leaves(child)} if children else {cls}

    library = {cls for cls in leaves(Estimator) if cls.__module__.startswith("eqfree.")}
    assert library - {type(case.make()) for case in CASES} == set()
