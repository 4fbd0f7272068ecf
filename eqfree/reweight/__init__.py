"""Reweighting of umbrella sampling: binned WHAM and MBAR (through pymbar), with shared diagnostics."""

from .common import OVERLAP_THRESHOLD, UmbrellaReweighting
from .mbar import MBAR
from .wham import WHAM, ConvergenceError

__all__ = ["MBAR", "WHAM", "ConvergenceError", "OVERLAP_THRESHOLD", "UmbrellaReweighting"]
