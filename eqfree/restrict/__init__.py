"""Restriction operators: fine states -> collective variables."""

from .alignment import kabsch_align
from .collective import CollectiveVariable, collective_variable
from .coordinates import Coordinates, parse_coordinate
from .diffusion_maps import (
    DiffusionMaps,
    intrinsic_dimension,
    kernel_sum_bandwidth,
    local_linear_fit,
    local_noise_covariances,
    mahalanobis_squared_distances,
    nonharmonic_loadings,
    plateau_bandwidth,
)
from .dihedrals import Dihedrals, dihedral
from .extension import GaussianProcessRegression, GeometricHarmonics, KernelExpansion

__all__ = [
    "CollectiveVariable", "collective_variable",
    "Coordinates", "Dihedrals", "DiffusionMaps", "dihedral", "kabsch_align", "GaussianProcessRegression",
    "GeometricHarmonics", "KernelExpansion",
    "intrinsic_dimension", "kernel_sum_bandwidth", "local_linear_fit", "local_noise_covariances",
    "mahalanobis_squared_distances", "nonharmonic_loadings", "parse_coordinate", "plateau_bandwidth",
]
