"""zarr v3 stores through xarray."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from ..errors import MissingInputError, OutputExistsError


def write_zarr(dataset: xr.Dataset, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``dataset`` as a zarr format-3 store; refuses to replace an existing store unless asked.

    Text labels are stored as variable-length strings.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; choose another path or pass overwrite=True (CLI: --overwrite)")
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
