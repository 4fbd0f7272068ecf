"""Alanine dipeptide in implicit solvent with OpenMM (needs the ``md`` extra: ``pip install 'eqfree[md]'``)."""

from .system import BASINS, TORSIONS, AlanineDipeptide, basin_of, radius_of_gyration

__all__ = ["AlanineDipeptide", "BASINS", "TORSIONS", "basin_of", "radius_of_gyration"]
