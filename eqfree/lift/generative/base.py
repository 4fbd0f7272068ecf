"""What every learned conditional generator shares: data and label scaling, fitting, sampling,
saving, and use as a :class:`~eqfree.Lift`.

A generator is trained on fine states X (N, dim) labelled by a scalar CV y (N,). It works in
scaled variables (:mod:`eqfree.scaling`): labels mapped affinely onto [0, 1] over the training range,
ỹ = (y − y_min)/(y_max − y_min), and each coordinate standardized, x̃ = (x − mean)/std. Both
transforms are stored with the model, so ``sample(z, n, seed=...)`` takes and returns physical units.

Generators follow the estimator convention of :mod:`eqfree.base` (hyperparameters by name, fitted
state in attributes ending in ``_``, :meth:`~eqfree.base.Estimator.save` and :func:`eqfree.base.load`).
Subclasses implement three hooks on the scaled variables (float32 tensors on ``device``):

- ``_build(dim) -> nn.ModuleDict`` — the networks;
- ``_train(x, y, generator, bar) -> dict[str, list]`` — the training loop of ``n_epochs`` epochs
  (loss history, floats or 0-d tensors per epoch; what it derives, e.g. bandwidths, it may add to
  ``self.training_``);
- ``_generate(labels, generator) -> (n, dim)`` — samples at scaled labels, networks in eval mode.
"""

from __future__ import annotations

import time
import warnings
from typing import ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from ...base import Estimator, restored
from ...errors import InputError
from ...evolve import coordinate_names
from ...scaling import DataScaler, LabelScaler
from ...seeding import SeedLike, child_int
from ...validation import checked_count


class ExtrapolationWarning(UserWarning):
    """Sampling at a CV value outside the labels a generator was trained on."""


def checked_training_data(X, y) -> tuple[np.ndarray, np.ndarray]:
    """(N, dim) finite states and (N,) finite labels with at least two distinct values."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or y.ndim != 1:
        raise InputError(f"X must have shape (N, dim) and y shape (N,); got {X.shape} and {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise InputError(f"X has {X.shape[0]} samples but y has {y.shape[0]} labels: give one label per sample")
    for name, values in (("X", X), ("y", y)):
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if bad.any():
            raise InputError(f"{name} has non-finite values in {bad.sum()} sample(s) (first at index "
                             f"{int(np.flatnonzero(bad)[0])}): drop or repair them before fitting")
    if np.unique(y).size < 2:
        raise InputError(f"all labels equal {y[0]:g}: a conditional generator needs samples at several CV values")
    return X, y


class ConditionalGenerator(Estimator):
    """Base class of the learned lifts (module doc). Subclasses set :attr:`method` and the hooks, and
    store the shared hyperparameters with :meth:`_set_training`."""

    method: ClassVar[str]

    def _set_training(self, n_epochs: int, batch_size: int, device: str | torch.device) -> None:
        """Check and store the hyperparameters every generator has."""
        self.n_epochs = checked_count(n_epochs, "n_epochs")
        self.batch_size = checked_count(batch_size, "batch_size")
        self.device = str(torch.device(device))

    # -- hooks ------------------------------------------------------------------------------------
    def _build(self, dim: int) -> torch.nn.ModuleDict:
        raise NotImplementedError

    def _train(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, bar) -> dict[str, list]:
        raise NotImplementedError

    def _generate(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, X, y, *, seed: SeedLike, coords=None, warm_start: bool = False,
            progress: bool = True) -> ConditionalGenerator:
        """Train on states ``X`` (N, dim) labelled by CV values ``y`` (N,) for ``n_epochs``; returns self.

        ``warm_start=True`` continues training a fitted model on new data (e.g. the old data plus
        states refined beyond its labels) for ``n_epochs`` more: networks and scalings are kept,
        ``label_range_`` becomes the range of the new labels.

        Learned attributes: ``labels_`` (:class:`~eqfree.scaling.LabelScaler`), ``data_``
        (:class:`~eqfree.scaling.DataScaler`), ``dim_``, ``coords_`` (``coords`` or x1, x2, ...),
        ``label_range_`` (the labels' range), ``networks_``, ``history_`` (loss name → array over
        epochs), ``training_`` (seed, samples, seconds, what the method derived).
        """
        X, y = checked_training_data(X, y)
        if warm_start and self.is_fitted:
            if X.shape[1] != self.dim_:
                raise InputError(f"warm start with {X.shape[1]}-dimensional states; the model generates {self.dim_}")
        else:
            coords = coordinate_names(X.shape[1], coords)  # checked before any fitted state is set
            self.labels_, self.data_, self.dim_ = LabelScaler.fit(y), DataScaler.fit(X), X.shape[1]
            self.coords_ = coords
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(child_int(seed, 0))
                self.networks_ = self._build(self.dim_).to(self.device)
        self.label_range_ = (float(y.min()), float(y.max()))
        generator = torch.Generator(device=self.device).manual_seed(child_int(seed, 1))
        x = torch.as_tensor(self.data_.transform(X), dtype=torch.float32, device=self.device)
        labels = torch.as_tensor(self.labels_.transform(y), dtype=torch.float32, device=self.device)
        self.training_ = {"seed": repr(seed), "n_samples": int(len(y))}  # _train may add what it derives
        start = time.perf_counter()
        self.networks_.train()
        with tqdm(total=self.n_epochs, disable=not progress, unit="epoch", desc=f"training {self.method}") as bar:
            history = self._train(x, labels, generator, bar)
        self.networks_.eval()
        self.history_ = {name: torch.stack([torch.as_tensor(v) for v in values]).double().cpu().numpy()
                         for name, values in history.items()}
        self.training_["seconds"] = time.perf_counter() - start
        return self

    def set_state(self, state: dict) -> None:
        """The saved state, with the networks rebuilt from their state dict on ``device``."""
        state = dict(state)
        weights = state.pop("networks_")
        super().set_state(state)
        self.networks_ = restored(self._build(self.dim_).to(self.device), weights)

    @property
    def valid_range(self) -> tuple[float, float]:
        """The :class:`~eqfree.Lift`'s range: the training labels' (closure grids stay inside it;
        sampling outside warns)."""
        self.check_fitted()
        return self.label_range_

    # -- sampling ---------------------------------------------------------------------------------
    def sample(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        """n fine states ``(n, dim)`` drawn at the CV value z (a scalar or shape ``(1,)``).

        Outside the training labels this is extrapolation: allowed, with an
        :class:`ExtrapolationWarning`. The same seed gives the same samples.
        """
        self.check_fitted()
        z = np.asarray(z, dtype=float).reshape(-1)
        if z.shape != (1,) or not np.isfinite(z[0]):
            raise InputError(f"a conditional generator lifts one finite CV value; got z = {z.tolist()}")
        n = checked_count(n, "n")
        low, high = self.valid_range
        if not low <= z[0] <= high:
            warnings.warn(f"z = {z[0]:g} is outside the training labels [{low:g}, {high:g}]: this is extrapolation, "
                          "check the samples (e.g. by umbrella sampling) before trusting them", ExtrapolationWarning,
                          stacklevel=2)
        generator = torch.Generator().manual_seed(child_int(seed, 0))
        labels = torch.full((n,), float(self.labels_.transform(z[0])), dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            x = self._generate(labels, generator)
        return self.data_.inverse(x.double().cpu().numpy())

    def __call__(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        """The :class:`~eqfree.Lift` interface: :meth:`sample`."""
        return self.sample(z, n, seed=seed)

    def noise(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Standard normal draws from a CPU generator, moved to the device (same numbers on any device)."""
        return torch.randn(shape, generator=generator).to(self.device)
