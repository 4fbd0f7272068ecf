"""Restriction operators: fine states -> collective variables."""

from .coordinates import Coordinates, parse_coordinate
from .diffusion_maps import (
    DiffusionMaps, kernel_sum_bandwidth, local_linear_residuals, local_noise_covariances, mahalanobis_squared_distances,
)
from .extension import GaussianProcessRegression, GeometricHarmonics, KernelExpansion

__all__ = [
    "Coordinates", "DiffusionMaps", "GaussianProcessRegression", "GeometricHarmonics", "KernelExpansion",
    "kernel_sum_bandwidth", "local_linear_residuals", "local_noise_covariances", "mahalanobis_squared_distances",
    "parse_coordinate",
]
