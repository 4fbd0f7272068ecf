"""Dihedral angles of molecular states: the collective variables φ, ψ of a peptide backbone.

For four atoms p0, p1, p2, p3 with bonds b1 = p1 − p0, b2 = p2 − p1, b3 = p3 − p2 (IUPAC sign
convention, angle in (−π, π]):

    θ = atan2( |b2| b1 · (b2 × b3),  (b1 × b2) · (b2 × b3) ).

States are flat (..., 3 n_atoms) as an evolver holds them, or (..., n_atoms, 3); numpy in, numpy
out; torch in, torch out (differentiable, for biases and losses).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..errors import InputError


def as_atoms(x):
    """(..., n_atoms, 3) view of flat (..., 3 n_atoms) or atom-shaped states (a last axis of 3 is
    read as atom-shaped: a flat state of one atom has no dihedral)."""
    if x.shape[-1] == 3:
        return x
    if x.shape[-1] % 3:
        raise InputError(f"states must be flat (..., 3 n_atoms) or (..., n_atoms, 3); got shape {tuple(x.shape)}")
    return x.reshape(*x.shape[:-1], x.shape[-1] // 3, 3)


def dihedral(x, atoms: Sequence[int]):
    """The dihedral angle of atoms (i, j, k, l) in every state (module doc), shape ``(...)``."""
    if len(atoms) != 4 or len(set(atoms)) != 4:
        raise InputError(f"a dihedral needs four distinct atom indices, got {tuple(atoms)}")
    tensor = torch.is_tensor(x)
    positions = as_atoms(x if tensor else torch.as_tensor(np.asarray(x, dtype=float)))
    if max(atoms) >= positions.shape[-2] or min(atoms) < -positions.shape[-2]:
        raise InputError(f"atom indices {tuple(atoms)} out of range for {positions.shape[-2]} atoms")
    p0, p1, p2, p3 = (positions[..., a, :] for a in atoms)
    b1, b2, b3 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = torch.linalg.cross(b1, b2), torch.linalg.cross(b2, b3)
    y = torch.linalg.vector_norm(b2, dim=-1) * torch.sum(b1 * n2, dim=-1)
    angle = torch.atan2(y, torch.sum(n1 * n2, dim=-1))
    return angle if tensor else angle.numpy()


class Dihedrals:
    """A Restrict operator: named dihedral angles, e.g. ``Dihedrals({"phi": (4, 6, 8, 14), "psi": (6, 8, 14, 16)})``,
    mapping states (..., 3 n_atoms) to (..., n_cv) in radians, each periodic with period 2π."""

    period = 2 * math.pi

    def __init__(self, angles: Mapping[str, Sequence[int]]):
        if not angles:
            raise InputError("give at least one dihedral: {name: (i, j, k, l)}")
        self.angles = {str(name): tuple(int(a) for a in atoms) for name, atoms in angles.items()}
        for atoms in self.angles.values():
            if len(atoms) != 4 or len(set(atoms)) != 4:
                raise InputError(f"a dihedral needs four distinct atom indices, got {atoms}")

    @property
    def names(self) -> list[str]:
        """The dihedrals' names, in the order of the output columns."""
        return list(self.angles)

    def __call__(self, x):
        values = [dihedral(x, atoms) for atoms in self.angles.values()]
        return torch.stack(values, dim=-1) if torch.is_tensor(x) else np.stack(values, axis=-1)
