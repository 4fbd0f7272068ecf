"""Dihedral angles and Kabsch alignment against independent computations and rigid-motion invariance."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from eqfree.restrict import Dihedrals, dihedral, kabsch_align


def reference_dihedral(p0, p1, p2, p3):
    """An independent formula: the signed angle, about the axis n = b2/|b2|, from p0 − p1 to p3 − p2,
    both projected on the plane normal to n."""
    n = (p2 - p1) / np.linalg.norm(p2 - p1)
    v, w = p0 - p1, p3 - p2
    v, w = v - np.dot(v, n) * n, w - np.dot(w, n) * n
    return math.atan2(np.dot(np.cross(v, w), n), np.dot(v, w))


def test_dihedral_of_a_constructed_angle():
    """Atoms 0–2 fixed; atom 3 rotated by θ about the 1–2 axis from the cis position gives θ."""
    p0, p1, p2 = np.array([1.0, 0.0, 0.0]), np.zeros(3), np.array([0.0, 0.0, 1.5])
    cis = np.array([1.2, 0.0, 1.5])
    for theta in np.linspace(-math.pi + 1e-3, math.pi, 17):
        p3 = p2 + Rotation.from_rotvec(theta * np.array([0.0, 0.0, 1.0])).apply(cis - p2)
        x = np.concatenate([p0, p1, p2, p3])
        assert dihedral(x, (0, 1, 2, 3)) == pytest.approx(theta, abs=1e-12)
        assert reference_dihedral(p0, p1, p2, p3) == pytest.approx(theta, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_dihedrals_match_the_reference_and_ignore_rigid_motions(seed):
    rng = np.random.default_rng(seed)
    atoms = rng.normal(size=(6, 3))
    restrict = Dihedrals({"a": (0, 1, 2, 3), "b": (2, 3, 4, 5)})
    values = restrict(atoms.reshape(-1))
    expected = [reference_dihedral(*atoms[[0, 1, 2, 3]]), reference_dihedral(*atoms[[2, 3, 4, 5]])]
    np.testing.assert_allclose(values, expected, atol=1e-9)
    moved = Rotation.random(random_state=rng).apply(atoms) + rng.normal(size=3) * 10
    np.testing.assert_allclose(restrict(moved), values, atol=1e-9)
    # torch in, torch out, with gradients
    tensor = torch.tensor(atoms.reshape(-1), requires_grad=True)
    restrict(tensor).sum().backward()
    assert torch.isfinite(tensor.grad).all() and restrict.names == ["a", "b"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_kabsch_matches_scipy_and_is_invariant_to_rigid_motions(seed):
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(8, 3))
    x = Rotation.random(random_state=rng).apply(reference + 0.1 * rng.normal(size=(8, 3))) + rng.normal(size=3)
    aligned, rmsd = kabsch_align(x.reshape(-1), reference)
    # scipy's optimal rotation of the centred sets gives the same RMSD and the same aligned positions
    centred = x - x.mean(axis=0)
    rotation, _ = Rotation.align_vectors(reference - reference.mean(axis=0), centred)
    expected = rotation.apply(centred) + reference.mean(axis=0)
    np.testing.assert_allclose(aligned.reshape(8, 3), expected, atol=1e-9)
    assert rmsd == pytest.approx(math.sqrt(np.mean(np.sum((expected - reference) ** 2, axis=1))), abs=1e-10)
    # moving either input rigidly leaves the aligned RMSD unchanged
    other = Rotation.random(random_state=rng)
    assert kabsch_align(other.apply(x) - 3.0, reference)[1] == pytest.approx(rmsd, abs=1e-9)
    assert kabsch_align(x, other.apply(reference) + 2.0)[1] == pytest.approx(rmsd, abs=1e-9)


def test_kabsch_is_batched_differentiable_and_never_reflects():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(5, 3))
    mirrored = reference * np.array([1.0, 1.0, -1.0])  # a reflection cannot be undone by a rotation
    batch = torch.tensor(np.stack([reference, mirrored]), requires_grad=True)
    aligned, rmsd = kabsch_align(batch, reference)
    assert aligned.shape == (2, 5, 3) and rmsd[0] < 1e-7 < rmsd[1]
    rmsd[1].backward()
    assert torch.isfinite(batch.grad).all()
    with pytest.raises(ValueError, match="reference has"):
        kabsch_align(batch, reference[:4])


def test_bad_dihedral_requests():
    with pytest.raises(ValueError, match="four distinct atom indices"):
        dihedral(np.zeros(12), (0, 1, 1, 2))
    with pytest.raises(ValueError, match="out of range for 4 atoms"):
        dihedral(np.zeros(12), (0, 1, 2, 7))
    with pytest.raises(ValueError, match=r"flat \(..., 3 n_atoms\)"):
        dihedral(np.zeros(13), (0, 1, 2, 3))
