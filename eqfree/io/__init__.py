"""Storage conventions: zarr v3 through xarray, CF-style attributes, provenance, one writer per output."""

from .lock import StaleLockWarning, output_lock
from .provenance import parameters_of, provenance
from .store import check_output, is_eqfree_store, open_zarr, write_zarr

__all__ = ["StaleLockWarning", "check_output", "is_eqfree_store", "open_zarr", "output_lock", "parameters_of",
           "provenance", "write_zarr"]
