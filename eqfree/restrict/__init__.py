"""Restriction operators: fine states -> collective variables."""

from .coordinates import Coordinates, parse_coordinate
from .diffusion_maps import DiffusionMaps, kernel_sum_bandwidth, local_linear_residuals

__all__ = ["Coordinates", "DiffusionMaps", "kernel_sum_bandwidth", "local_linear_residuals", "parse_coordinate"]
