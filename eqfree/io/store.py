"""zarr v3 stores through xarray, with consolidated metadata; what an output path may be."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import xarray as xr
import zarr
import zarr.errors

from ..errors import InputError, MissingInputError, OutputExistsError
from .lock import output_lock


def is_eqfree_store(path: str | Path) -> bool:
    """Whether ``path`` is a zarr store that eqfree wrote (its attributes carry the provenance)."""
    try:
        return "eqfree_version" in zarr.open_group(Path(path), mode="r").attrs
    except (OSError, ValueError, zarr.errors.BaseZarrError):
        return False


def check_output(path: str | Path, *, overwrite: bool, inputs: Iterable = (), resume: bool = False,
                 replaceable: Callable[[Path], bool] = is_eqfree_store, kind: str = "zarr store",
                 flag: str = "overwrite=True") -> Path:
    """Before any computation, the checks of an output path; returns it as a ``Path``.

    Refused: a path that is one of the ``inputs``; a path whose nearest existing folder is not a writable
    folder; an occupied path unless ``overwrite`` (or ``resume``, for an eqfree store a run continues);
    and, even with ``overwrite``, anything ``replaceable`` does not recognise as eqfree's own output.
    An empty folder counts as free. ``kind`` names what is written, ``flag`` the overwrite option, in messages."""
    path = Path(path)
    if any(item is not None and Path(item).resolve() == path.resolve() for item in inputs):
        raise OutputExistsError(f"{path} is also an input of this command: write the result elsewhere")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: {parent} is not a folder you can write to; choose another path")
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    if not replaceable(path):
        raise OutputExistsError(f"{path} exists and was not written by eqfree as a {kind}; nothing was changed: "
                                "choose another path (eqfree replaces only its own outputs of the same kind)")
    if not (overwrite or resume):
        raise OutputExistsError(f"{path} exists; choose another path or pass {flag} to replace it")
    return path


def write_zarr(dataset: xr.Dataset, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``dataset`` as a zarr format-3 store with consolidated metadata, holding the store's lock
    (:func:`~eqfree.io.lock.output_lock`); refuses to replace an existing store unless asked, and anything
    but an eqfree store even then.

    Text labels are stored as variable-length strings.
    """
    path = check_output(path, overwrite=overwrite)
    with output_lock(path):
        # fixed-width numpy strings have no zarr v3 spec; variable-length strings do
        labels = {name: var.astype(object) for name, var in dataset.variables.items() if var.dtype.kind == "U"}
        dataset = dataset.assign_coords({k: v for k, v in labels.items() if k in dataset.coords})
        dataset = dataset.assign({k: v for k, v in labels.items() if k not in dataset.coords})
        with warnings.catch_warnings():  # xarray's open_zarr warns on a store without them; zarr warns on writing them
            warnings.filterwarnings("ignore", "Consolidated metadata is currently not part", UserWarning)
            dataset.to_zarr(path, mode="w", zarr_format=3, consolidated=True)
    return path


def open_zarr(path: str | Path) -> xr.Dataset:
    """Open a zarr store (lazily): with its consolidated metadata where it has them (eqfree's stores)."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"no zarr store at {path}")
    consolidated = _group_metadata(path).get("consolidated_metadata") is not None
    return xr.open_zarr(path, zarr_format=3, consolidated=consolidated)


def _group_metadata(path: Path) -> dict:
    try:
        return zarr.open_group(path, mode="r").metadata.to_dict()
    except (OSError, ValueError, zarr.errors.BaseZarrError):
        raise InputError(f"{path} is not a zarr v3 store (one written by eqfree): give such a store") from None
