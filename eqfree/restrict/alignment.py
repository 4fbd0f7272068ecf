"""Kabsch alignment: remove rigid translation and rotation from molecular states.

For configurations X (n atoms × 3) and a reference Y, with centred Xc = X − x̄, Yc = Y − ȳ and
H = Xcᵀ Yc = U S Vᵀ, the rotation minimizing ‖Xc R − Yc‖ is

    R = U diag(1, 1, d) Vᵀ,   d = sign det(U Vᵀ)  (a proper rotation, never a reflection),

and the aligned configuration is Xc R + ȳ. Batched over leading axes, in torch (differentiable
through the SVD, for use inside a generator's loss); numpy in, numpy out.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from .dihedrals import as_atoms


def kabsch_align(x, reference):
    """States x (..., 3 n_atoms) or (..., n_atoms, 3) rotated and translated onto ``reference``
    (n_atoms × 3 or flat), returned in x's shape, and the RMSD after alignment, shape ``(...)``."""
    tensor = torch.is_tensor(x)
    positions = as_atoms(x if tensor else torch.as_tensor(np.asarray(x, dtype=float)))
    target = as_atoms(torch.as_tensor(reference, dtype=positions.dtype, device=positions.device))
    if target.ndim != 2 or target.shape != positions.shape[-2:]:
        raise InputError(f"reference has {tuple(target.shape)} atom coordinates; the states have "
                         f"{tuple(positions.shape[-2:])}")
    centred, target_centre = positions - positions.mean(dim=-2, keepdim=True), target.mean(dim=0)
    u, _, vh = torch.linalg.svd(centred.transpose(-1, -2) @ (target - target_centre))
    d = torch.sign(torch.linalg.det(u @ vh))
    rotation = u @ torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], dim=-1)) @ vh
    aligned = centred @ rotation + target_centre
    rmsd = torch.sqrt(torch.mean(torch.sum((aligned - target) ** 2, dim=-1), dim=-1))
    aligned = aligned.reshape(x.shape)
    return (aligned, rmsd) if tensor else (aligned.numpy(), rmsd.numpy())
