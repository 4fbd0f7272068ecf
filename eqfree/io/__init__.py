"""Storage conventions: zarr v3 through xarray, CF-style attributes, provenance."""

from .provenance import parameters_of, provenance
from .store import open_zarr, write_zarr

__all__ = ["open_zarr", "parameters_of", "provenance", "write_zarr"]
