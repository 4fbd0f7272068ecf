"""Reweighting of umbrella sampling: binless WHAM (on samples or on cells of compressed samples) and MBAR
(through pymbar), walker-bootstrap errors, shared diagnostics, and the import of umbrella data from other engines."""

from ..errors import ConvergenceError
from .cells import COMPRESSION_BOUND, Cells, compress, fine_width
from .common import OVERLAP_THRESHOLD, UmbrellaReweighting
from .importing import (
           import_windows,
           kappa_in_kt,
           pmf_store,
           read_centers,
           read_series,
           reduced_bias,
           reweight_windows,
           stiffness,
)
from .mbar import MBAR
from .surface import free_energy_surface
from .wham import WHAM

__all__ = ["MBAR", "WHAM", "COMPRESSION_BOUND", "Cells", "ConvergenceError", "OVERLAP_THRESHOLD",
           "UmbrellaReweighting", "compress", "fine_width", "import_windows", "kappa_in_kt", "pmf_store",
           "read_centers", "read_series", "reduced_bias", "reweight_windows", "stiffness", "free_energy_surface"]
