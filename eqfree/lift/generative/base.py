"""What every learned conditional generator shares: data and label scaling, fitting, sampling,
saving, and use as a :class:`~eqfree.Lift`.

A generator is trained on fine states X (N, dim) labelled by a scalar CV y (N,). It works in
scaled variables: labels mapped affinely onto [0, 1] over the training range,
ỹ = (y − y_min)/(y_max − y_min), and each coordinate standardized, x̃ = (x − mean)/std. Both
transforms are stored with the model, so ``sample(z, n, seed)`` takes and returns physical units.

Subclasses implement three hooks on the scaled variables (float32 tensors on ``device``):

- ``_build(dim) -> nn.ModuleDict`` — the networks;
- ``_train(x, y, generator, bar) -> dict[str, list]`` — the training loop (loss history, floats or
  0-d tensors per epoch; what it derives, e.g. bandwidths, it may add to ``self.training_``);
- ``_generate(labels, generator) -> (n, dim)`` — samples at scaled labels, networks in eval mode.

A saved model is a folder: ``config.json`` (method, constructor parameters, scalings, training
record — readable without torch) and ``weights.pt`` (the state dicts).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from ...errors import InputError
from ...evolve import coordinate_names
from ...io.model_folder import read_model_folder, write_model_folder
from ...seeding import SeedLike, child_int
from ...validation import checked_count

FORMAT = "eqfree-conditional-generator"


class ExtrapolationWarning(UserWarning):
    """Sampling at a CV value outside the labels a generator was trained on."""


@dataclass(frozen=True)
class LabelScaler:
    """ỹ = (y − low)/(high − low): the training labels onto [0, 1]."""

    low: float
    high: float

    @classmethod
    def fit(cls, y: np.ndarray) -> LabelScaler:
        return cls(float(y.min()), float(y.max()))

    def transform(self, y):
        return (y - self.low) / (self.high - self.low)

    def inverse(self, y):
        return self.low + y * (self.high - self.low)


@dataclass(frozen=True)
class DataScaler:
    """x̃ = (x − mean)/scale per coordinate (scale 1 for a constant coordinate)."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(cls, x: np.ndarray) -> DataScaler:
        std = x.std(axis=0)
        return cls(tuple(x.mean(axis=0).tolist()), tuple(np.where(std > 0, std, 1.0).tolist()))

    def transform(self, x):
        return (x - np.asarray(self.mean)) / np.asarray(self.scale)

    def inverse(self, x):
        return np.asarray(self.mean) + x * np.asarray(self.scale)


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


class ConditionalGenerator:
    """Base class of the learned lifts (module doc). Subclasses set :attr:`method` and the hooks."""

    method: ClassVar[str]
    registry: ClassVar[dict[str, type[ConditionalGenerator]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.registry[cls.method] = cls

    def __init__(self, *, epochs: int, batch_size: int, device: str | torch.device = "cpu", **params):
        self.params = {"epochs": checked_count(epochs, "epochs"),
                       "batch_size": checked_count(batch_size, "batch_size"), **params}
        self.device = torch.device(device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

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
        """Train on states ``X`` (N, dim) labelled by CV values ``y`` (N,); returns self.

        ``warm_start=True`` continues training a fitted model on new data (e.g. the old data plus
        states refined beyond its labels) for ``epochs`` more: networks and scalings are kept,
        ``label_range_`` becomes the range of the new labels.

        Learned attributes: ``labels_`` (:class:`LabelScaler`), ``data_`` (:class:`DataScaler`),
        ``dim_``, ``coords_`` (``coords`` or x1, x2, ...), ``label_range_`` (the labels' range),
        ``networks_``, ``history_`` (loss name → array over epochs), ``training_`` (seed, samples,
        seconds, what the method derived).
        """
        X, y = checked_training_data(X, y)
        if warm_start and hasattr(self, "networks_"):
            if X.shape[1] != self.dim_:
                raise InputError(f"warm start with {X.shape[1]}-dimensional states; the model generates {self.dim_}")
        else:
            self.labels_, self.data_, self.dim_ = LabelScaler.fit(y), DataScaler.fit(X), X.shape[1]
            self.coords_ = coordinate_names(self.dim_) if coords is None else [str(c) for c in coords]
            if len(self.coords_) != self.dim_:
                raise InputError(f"{len(self.coords_)} coordinate names for {self.dim_} coordinates")
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
        with tqdm(total=self.params["epochs"], disable=not progress, unit="epoch", desc=f"training {self.method}") as bar:
            history = self._train(x, labels, generator, bar)
        self.networks_.eval()
        self.history_ = {name: torch.stack([torch.as_tensor(v) for v in values]).double().cpu().numpy()
                         for name, values in history.items()}
        self.training_["seconds"] = time.perf_counter() - start
        return self

    @property
    def valid_range(self) -> tuple[float, float]:
        """The training labels' range (closure grids stay inside it; sampling outside warns)."""
        self._check_fitted()
        return self.label_range_

    def _check_fitted(self):
        if not hasattr(self, "networks_"):
            raise RuntimeError(f"this {type(self).__name__} is not trained: call fit(X, y, seed=...) or load a saved model")

    # -- sampling ---------------------------------------------------------------------------------
    def sample(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        """n fine states ``(n, dim)`` drawn at the CV value z (a scalar or shape ``(1,)``).

        Outside the training labels this is extrapolation: allowed, with an
        :class:`ExtrapolationWarning`. The same seed gives the same samples.
        """
        self._check_fitted()
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

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model to the folder ``path`` (``config.json`` + ``weights.pt``); returns it."""
        self._check_fitted()
        config = {
            "format": FORMAT, "method": self.method, "params": self.params, "dim": self.dim_, "coords": self.coords_,
            "labels": asdict(self.labels_), "label_range": self.label_range_, "data": asdict(self.data_),
            "training": self.training_,
            "history": {name: values.tolist() for name, values in self.history_.items()},
        }
        return write_model_folder(path, config, self.networks_.state_dict())

    @staticmethod
    def load(path: str | Path, device: str | torch.device = "cpu") -> ConditionalGenerator:
        """A model saved by :meth:`save`, of whichever method it records, on ``device``."""
        config, model, weights = read_model_folder(path, format=FORMAT, registry=ConditionalGenerator.registry,
                                                   kind="conditional generator", device=device)
        model.labels_ = LabelScaler(**config["labels"])
        model.data_ = DataScaler(**{k: tuple(v) for k, v in config["data"].items()})
        model.label_range_ = tuple(config["label_range"])
        model.networks_ = model._build(model.dim_).to(model.device)
        model.networks_.load_state_dict(weights)
        model.networks_.eval()
        return model


load_generator = ConditionalGenerator.load
