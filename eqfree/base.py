"""The estimator convention every fitted object in eqfree follows (after scikit-learn's).

- The constructor takes keyword-only hyperparameters, checks them and stores each under its own
  name, nothing else; :meth:`Estimator.get_params` reads them back, :meth:`Estimator.set_params`
  changes them (checked again), ``repr`` shows those that differ from the defaults.
- ``fit(data, ..., *, seed)`` learns and returns ``self``; what it learns lives in public
  attributes ending in ``_`` (``eigenvalues_``, ``networks_``, ``pmf_``). A method that needs them
  calls :meth:`Estimator.check_fitted` first, which raises :class:`~eqfree.errors.NotFittedError`.
- Randomness enters through the ``seed`` of ``fit`` (and of sampling methods) alone: a clone
  (:func:`clone`) refitted with the same seed gives the same numbers.
- One save format for all: :meth:`Estimator.save` writes a folder with ``config.json`` (the class,
  its hyperparameters and the JSON-able part of the fitted state, readable without Python) and
  ``state.pt`` (arrays and tensors, read back with ``torch.load(weights_only=True)``);
  :func:`load` (= :meth:`Estimator.load`) rebuilds the estimator whatever its class.

:meth:`Estimator.get_state` and :meth:`Estimator.set_state` read and restore the fitted state; a
subclass whose state is more than arrays, numbers and dataclasses (a torch module, a KD-tree)
overrides them (a module is saved as its state dict and handed back as one).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import shutil
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from .errors import InputError, MissingInputError, NotFittedError, OutputExistsError
from .version import __version__

FORMAT = "eqfree-estimator"
CONFIG, STATE = "config.json", "state.pt"

E = TypeVar("E", bound="Estimator")


class Estimator:
    """Base class of the fitted objects (module doc)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters, by name: ``type(self)(**est.get_params())`` is an unfitted copy."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: E, **params) -> E:
        """Change hyperparameters (checked as in the constructor); fitted state is kept until the next fit."""
        unknown = sorted(set(params) - set(self._param_names()))
        if unknown:
            raise InputError(f"{type(self).__name__} has no hyperparameter(s) {unknown}; "
                             f"valid: {self._param_names()}")
        type(self).__init__(self, **{**self.get_params(), **params})
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        shown = [f"{k}={v!r}" for k, v in self.get_params().items() if not _same(v, defaults.get(k))]
        return f"{type(self).__name__}({', '.join(shown)})"

    # -- fitted state ---------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :func:`load`) has run."""
        return any(name.endswith("_") and not name.startswith("_") for name in vars(self))

    def check_fitted(self) -> None:
        """Raise :class:`~eqfree.errors.NotFittedError` unless the estimator is fitted."""
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted: call fit(...) first, "
                                 "or load a saved one with eqfree.load(path)")

    def get_state(self) -> dict[str, Any]:
        """The fitted state, what :meth:`save` keeps: the public attributes ending in ``_``."""
        return {name: value for name, value in vars(self).items() if name.endswith("_") and not name.startswith("_")}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a fitted state from :meth:`get_state` (or a saved folder) on a fresh estimator."""
        for name, value in state.items():
            setattr(self, name, value)

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted estimator to the folder ``path`` (``config.json`` + ``state.pt``); returns it.

        ``path`` is new, empty, or a saved estimator (replaced): a folder holding anything else is refused.
        The folder is written whole beside ``path`` and then renamed into place, so it is never half written."""
        self.check_fitted()
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())) and not is_saved_estimator(path):
            raise OutputExistsError(f"{path} exists and is not a saved eqfree estimator (or holds other files too): "
                                    "choose another folder (nothing was written)")
        tensors: dict[str, torch.Tensor] = {}
        config = {"format": FORMAT, "class": f"{type(self).__module__}:{type(self).__qualname__}",
                  "eqfree_version": __version__,
                  "params": _encode(self.get_params(), tensors, "params"),
                  "fitted": _encode(self.get_state(), tensors, "fitted")}
        # atomically: written whole into a temporary folder beside it, which then takes its place
        path.parent.mkdir(parents=True, exist_ok=True)
        new, old = (path.with_name(f".{path.name}.{part}-{os.getpid()}") for part in ("new", "old"))
        for leftover in (new, old):
            shutil.rmtree(leftover, ignore_errors=True)
        new.mkdir()
        try:
            (new / CONFIG).write_text(json.dumps(config, indent=1))
            torch.save(tensors, new / STATE)
            if path.exists():
                path.rename(old)
            new.rename(path)
        except BaseException:
            if old.exists() and not path.exists():
                old.rename(path)
            shutil.rmtree(new, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return path

    @classmethod
    def load(cls: type[E], path: str | Path, **params) -> E:
        """An estimator saved by :meth:`save`; ``params`` override saved hyperparameters (e.g. ``device``)."""
        path = Path(path)
        config = _read_config(path)
        module, _, name = config["class"].partition(":")
        found = getattr(importlib.import_module(module), name, None)
        if not (isinstance(found, type) and issubclass(found, cls)):
            raise InputError(f"{path} holds a {config['class']}, not a {cls.__name__}")
        tensors = torch.load(path / STATE, map_location="cpu", weights_only=True)
        estimator = found(**{**_decode(config["params"], tensors), **params})
        estimator.set_state(_decode(config["fitted"], tensors))
        return estimator


load = Estimator.load


def _read_config(path: Path) -> dict:
    """The config of a folder written by :meth:`Estimator.save`; an error saying what is wrong otherwise."""
    if not (path / CONFIG).is_file():
        raise MissingInputError(f"{path} is not a saved eqfree estimator (no {CONFIG}): give the folder "
                                "that save() or a train command wrote")
    try:
        config = json.loads((path / CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path / CONFIG} cannot be read: {error}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise InputError(f"{path} holds format {found!r}, not an eqfree estimator ({FORMAT})")
    return config


def is_saved_estimator(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by :meth:`Estimator.save`, holding nothing else (what may be replaced)."""
    try:
        _read_config(Path(path))
    except (MissingInputError, InputError):
        return False
    return {p.name for p in Path(path).iterdir()} <= {CONFIG, STATE}


def restored(module: torch.nn.Module, weights) -> torch.nn.Module:
    """``module`` (freshly built) with ``weights`` loaded — a state dict, as :meth:`Estimator.save` keeps
    a module, or a module of the same shape, as :meth:`Estimator.get_state` returns it — in eval mode."""
    module.load_state_dict(weights.state_dict() if isinstance(weights, torch.nn.Module) else weights)
    return module.eval()


def clone(estimator: E) -> E:
    """An unfitted estimator with the same hyperparameters."""
    return type(estimator)(**estimator.get_params())


def _same(a, b) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except (ValueError, TypeError):  # arrays compare element-wise
        return False


# -- JSON encoding of parameters and fitted state; arrays and tensors go to state.pt -----------------
def _encode(value, tensors: dict, key: str):
    if isinstance(value, np.ndarray) and value.dtype != object:
        tensors[key] = torch.from_numpy(np.array(value, order="C"))  # a writable copy
        return {"__array__": key, "dtype": value.dtype.str}
    if torch.is_tensor(value):
        tensors[key] = value.detach().cpu()
        return {"__tensor__": key}
    if isinstance(value, torch.nn.Module):
        for name, tensor in value.state_dict().items():
            tensors[f"{key}.{name}"] = tensor.detach().cpu()
        return {"__module__": key}
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).removeprefix("torch.")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"__dataclass__": f"{type(value).__module__}:{type(value).__qualname__}",
                "fields": _encode(fields, tensors, key)}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise InputError(f"cannot save {key}: dictionary keys must be strings")
        return {"__dict__": {k: _encode(v, tensors, f"{key}.{k}") for k, v in value.items()}}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise InputError(f"cannot save {key} of type {type(value).__name__}: override get_state")


def _decode(value, tensors: dict):
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return tensors[value["__array__"]].numpy().astype(np.dtype(value["dtype"]), copy=False)
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__module__" in value:
        prefix = value["__module__"] + "."
        return {k[len(prefix):]: t for k, t in tensors.items() if k.startswith(prefix)}
    if "__dtype__" in value:
        return getattr(torch, value["__dtype__"])
    if "__dataclass__" in value:
        module, _, name = value["__dataclass__"].partition(":")
        return getattr(importlib.import_module(module), name)(**_decode(value["fields"], tensors))
    if "__tuple__" in value:
        return tuple(_decode(v, tensors) for v in value["__tuple__"])
    return {k: _decode(v, tensors) for k, v in value["__dict__"].items()}
