"""Umbrella samples compressed into cells (window k, fine CV bin b), exact to a stated bound.

A harmonic bias is a function of ξ alone, u_j(ξ) = ½a_j d(ξ, z_j)², a_j = βκ_j (d wrapped when periodic). The
binless equations (:mod:`eqfree.reweight.solver`) read each sample only through the factors exp(−u_j(ξ_n)), so
the c_kb samples of window k in a fine bin b can stand as one column of multiplicity c_kb at their mean ξ̄_kb.
For a smooth φ, Σ_n φ(ξ_n) = c φ(ξ̄) (1 + ½ (φ''/φ)(ξ̄) Var_kb + …): the first-order term cancels at the mean, and
for φ = exp(−u_j), φ''/φ = u_j'² − u_j'' = a_j² d² − a_j. Over the ±4σ range of window j (|d| ≤ 4/√a_j) this lies
in [−a_j, 15 a_j], and a bin of width h holds samples of variance at most h²/4, so each factor's relative error is

    ε ≤ ½ · 15 a_max · h²/4 = 15 a_max h² / 8,      hence      h = √(8 ε / (15 a_max)) ≈ 0.0231 / √a_max

for ε = 10⁻³ (:data:`COMPRESSION_BOUND`). Window free energies and PMF bins are logs of ratios of such sums, so
they move by at most a few ε kT (≤ 0.004 kT at ε = 10⁻³). The fine bins subdivide the output bins, so no cell
straddles two of them, and the bound reported (``compression_bound``) is the measured one, 15 a_max max_kb Var_kb/2.

Each column keeps its samples' walkers (a sparse matrix cells × walkers), so the bootstrap of whole walkers
gives every resample's multiplicities by one sparse product, and the equations are solved on the cells.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import sparse

from .common import bin_index

#: relative error ε of each bias factor exp(−u_j) allowed by the compression (to leading order in the bin width)
COMPRESSION_BOUND = 1e-3


class Cells(NamedTuple):
    """Compressed samples: ``cv`` (C,) the mean CV of each cell, ``window`` (C,) its window, ``multiplicity``
    (C, units) sparse sample counts of each (window, walker) unit in each cell, and ``attrs`` stating the
    compression (``fine_bin_width``, ``n_cells``, ``compression_bound``)."""

    cv: np.ndarray
    window: np.ndarray
    multiplicity: sparse.csr_matrix
    attrs: dict


def fine_width(stiffness, bound: float = COMPRESSION_BOUND) -> float:
    """Widest fine bin h = √(8ε/(15 max_k a_k)) that keeps each bias factor within relative ``bound`` ε
    (module docstring); ``stiffness`` are the reduced spring constants a_k = βκ_k."""
    return math.sqrt(8 * bound / (15 * float(np.max(stiffness))))


def compress(cv: np.ndarray, window: np.ndarray, walker: np.ndarray, stiffness, edges: np.ndarray,
             period: float | None, bound: float = COMPRESSION_BOUND) -> Cells:
    """Cells of the samples (``cv``, ``window``, ``walker`` within its window) on fine bins of width at most
    :func:`fine_width` that subdivide the output bins ``edges``; units are numbered by (window, walker), as the
    bootstrap of raw samples numbers them."""
    cv, window, walker = np.asarray(cv, float), np.asarray(window, np.int64), np.asarray(walker, np.int64)
    h = fine_width(stiffness, bound)
    pieces = np.ceil(np.diff(edges) / h).astype(np.int64)
    fine = np.concatenate([np.linspace(low, high, p + 1)[:-1] for low, high, p in zip(edges[:-1], edges[1:], pieces)]
                          + [edges[-1:]])
    n_fine, n_windows = fine.size - 1, int(window.max()) + 1
    fine_bin = bin_index(cv, fine, period)
    offset = (cv if period is None else edges[0] + np.mod(cv - edges[0], period)) - fine[fine_bin]
    key = window * n_fine + fine_bin
    size = np.bincount(key, minlength=n_windows * n_fine)
    present = np.flatnonzero(size)
    column = np.zeros(size.size, dtype=np.int64)
    column[present] = np.arange(present.size)
    column = column[key]
    del key
    count = size[present].astype(float)
    mean = np.bincount(column, weights=offset, minlength=present.size) / count
    variance = np.maximum(np.bincount(column, weights=offset**2, minlength=present.size) / count - mean**2, 0.0)
    del offset
    walker = walker - walker.min()
    unit_key = window * (int(walker.max()) + 1) + walker
    used = np.flatnonzero(np.bincount(unit_key))
    unit = np.searchsorted(used, unit_key)
    del unit_key
    multiplicity = sparse.csr_matrix((np.ones(cv.size), (column, unit)), shape=(present.size, used.size))
    multiplicity.sum_duplicates()
    attrs = {"fine_bin_width": float(np.max(np.diff(fine))), "n_cells": int(present.size),
             "compression_bound": float(7.5 * np.max(stiffness) * variance.max()),
             "compression": (f"samples compressed into {present.size} cells (window, fine CV bin of width ≤ "
                             f"{h:.4g}) at their mean CV: each bias factor exact to a relative {bound:g} over ±4σ "
                             "of every window (eqfree.reweight.cells)")}
    return Cells(fine[present % n_fine] + mean, present // n_fine, multiplicity, attrs)
