"""Coarse stability: eigenvalues of the coarse Jacobian with their standard errors.

F = (Φ_τ − I)/τ is the burst drift (:mod:`.newton`), so the coarse map's Jacobian is DΦ_τ = I + τ J with
J = ∂F/∂z, and an eigenvalue ν of J gives the coarse flow's eigenvalue

    μ = log(1 + τ ν) / τ,

exact for an averaged flow whose map over τ is Φ_τ (μ = B′(z*) in one dimension), where ν itself is
B′ + O(τ B′²). J is assembled from n directional derivatives (n, the number of CVs, is small), and its
eigenvalues come from a dense eigensolver (``scipy.linalg.eig``: with n ≤ 2 Arnoldi has no room, and the
per-walker Jacobians are needed anyway). Standard errors by the delta method: with right and left
eigenvectors v, w of J, dν = wᴴ dJ v / wᴴ v, so each walker's Jacobian J_r gives
ℓ_r = Re(wᴴ J_r v / wᴴ v), and se(Re μ) = sd_r(ℓ_r) / (√R |1 + τ ν|).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from ..errors import InputError


@dataclass(frozen=True)
class Eigenvalues:
    """The coarse flow's eigenvalues μ (largest real part first) and the standard errors of their real parts."""

    values: np.ndarray
    stderr: np.ndarray

    @property
    def leading(self) -> complex:
        """μ₁, the eigenvalue with the largest real part: the slowest mode, unstable where Re μ₁ > 0."""
        return complex(self.values[0])

    @property
    def stable(self) -> bool:
        """Whether every eigenvalue has a negative real part (the estimate, not a test against its error)."""
        return bool(np.all(self.values.real < 0))


def coarse_eigenvalues(jacobian_samples: np.ndarray, tau: float) -> Eigenvalues:
    """Eigenvalues of the coarse flow from per-walker Jacobians of the burst drift, ``(n_walkers, n, n)``."""
    samples = np.asarray(jacobian_samples, dtype=float)
    if samples.ndim != 3 or samples.shape[1] != samples.shape[2] or samples.shape[0] < 2:
        raise InputError(f"jacobian_samples must have shape (n_walkers >= 2, n, n), got {samples.shape}")
    jacobian = samples.mean(axis=0)
    nu, left, right = linalg.eig(jacobian, left=True, right=True)
    mu = np.log((1 + tau * nu).astype(complex)) / tau
    norms = np.einsum("ik,ik->k", left.conj(), right)
    functionals = np.einsum("ik,rij,jk->rk", left.conj(), samples, right) / norms
    stderr = functionals.real.std(axis=0, ddof=1) / math.sqrt(samples.shape[0]) / np.abs(1 + tau * nu)
    order = np.argsort(-mu.real)
    values = mu[order] if np.any(mu.imag != 0) else mu[order].real
    return Eigenvalues(values, stderr[order])
