"""Alanine dipeptide in implicit solvent with OpenMM (needs the ``md`` extra: ``pip install 'eqfree[md]'``)."""

from .system import BASINS, CUTS, TORSIONS, AlanineDipeptide, CutDihedrals, basin_of, radius_of_gyration

__all__ = ["AlanineDipeptide", "BASINS", "CUTS", "CutDihedrals", "TORSIONS", "basin_of", "radius_of_gyration"]
