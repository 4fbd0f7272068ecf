"""zarr v3 stores through xarray."""

from __future__ import annotations

from pathlib import Path

import xarray as xr
import zarr
import zarr.errors

from ..errors import MissingInputError, OutputExistsError


def is_eqfree_store(path: str | Path) -> bool:
    """Whether ``path`` is a zarr store that eqfree wrote (its attributes carry the provenance)."""
    try:
        return "eqfree_version" in zarr.open_group(Path(path), mode="r").attrs
    except (OSError, ValueError, zarr.errors.BaseZarrError):
        return False


def check_replaceable(path: Path, *, overwrite: bool) -> None:
    """Refuse an occupied ``path`` unless ``overwrite`` — and even then anything eqfree did not write."""
    if not path.exists():
        return
    if not overwrite:
        raise OutputExistsError(f"{path} exists; choose another path or pass overwrite=True (CLI: --overwrite)")
    if not is_eqfree_store(path):
        raise OutputExistsError(f"{path} was not written by eqfree, and overwriting replaces only eqfree's own "
                                "stores: choose another path")


def write_zarr(dataset: xr.Dataset, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``dataset`` as a zarr format-3 store; refuses to replace an existing store unless asked.

    Text labels are stored as variable-length strings.
    """
    path = Path(path)
    check_replaceable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    # fixed-width numpy strings have no zarr v3 spec; variable-length strings do
    labels = {name: var.astype(object) for name, var in dataset.variables.items() if var.dtype.kind == "U"}
    dataset = dataset.assign_coords({k: v for k, v in labels.items() if k in dataset.coords})
    dataset = dataset.assign({k: v for k, v in labels.items() if k not in dataset.coords})
    dataset.to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    return path


def open_zarr(path: str | Path) -> xr.Dataset:
    """Open an eqfree zarr store (lazily)."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"no zarr store at {path}")
    return xr.open_zarr(path, zarr_format=3, consolidated=False)
