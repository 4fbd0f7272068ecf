"""Trained models saved as folders: ``config.json`` (method, parameters, scalings, training record —
readable without torch) and ``weights.pt`` (tensors, loaded with ``weights_only=True``).

A config names its ``format`` and ``method``; loading builds the class the method is registered
under with the saved constructor parameters, and restores what every model shares
(``dim_``, ``coords_``, ``training_``, ``history_``). The caller restores the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError


def write_model_folder(path: str | Path, config: dict, weights) -> Path:
    """Write ``config`` (plus the eqfree version) and ``weights`` to the folder ``path``; returns it."""
    from .. import __version__

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({**config, "eqfree_version": __version__}, indent=1))
    torch.save(weights, path / "weights.pt")
    return path


def read_model_folder(path: str | Path, *, format: str, registry: dict, kind: str, device):
    """The saved config, a model of the method it records (shared attributes restored) and its weights
    (on ``device``); a folder of another kind or format raises a ValueError saying so."""
    path = Path(path)
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not a saved eqfree {kind} (no readable config.json): {error}") from None
    if config.get("format") != format or config.get("method") not in registry:
        raise InputError(f"{path}/config.json does not describe an eqfree {kind} "
                         f"(format {config.get('format')!r}, method {config.get('method')!r})")
    model = registry[config["method"]](**config["params"], device=device)
    model.dim_, model.coords_, model.training_ = config["dim"], config["coords"], config["training"]
    model.history_ = {name: np.asarray(values, dtype=float) for name, values in config["history"].items()}
    weights = torch.load(path / "weights.pt", map_location=model.device, weights_only=True)
    return config, model, weights
