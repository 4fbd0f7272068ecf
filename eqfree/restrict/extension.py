"""Out-of-sample extension of functions known on data: Φ(x) with its gradient, in numpy or torch.

Both estimators here fit a Gaussian-kernel expansion

    Φ(x) = Σ_j c_j k(x, x_j),    k(x, y) = exp(−‖x − y‖² / (2ε)),
    ∇Φ(x) = −Σ_j c_j k(x, x_j) (x − x_j) / ε,

and differ in how the coefficients c solve K c ≈ f on the data:

- :class:`GeometricHarmonics` (Coifman & Lafon 2006): K = Σ_l σ_l φ_l φ_lᵀ truncated to
  σ_l ≥ δ σ_0, c = Σ_l φ_l ⟨φ_l, f⟩ / σ_l — a spectral cut-off regularization.
- :class:`GaussianProcessRegression` (Rasmussen & Williams 2006, ch. 2): c = (K + s² I)⁻¹ f, the
  posterior mean of a GP with this kernel and noise variance s²; ε and s² are chosen by maximizing
  the log marginal likelihood unless given.

Both are :class:`KernelExpansion` estimators (:mod:`eqfree.base` convention): ``fit(X, f)`` returns
the estimator itself, which is then the fitted map Φ, a :class:`~eqfree.Restrict` operator. It
evaluates on numpy arrays (with :meth:`~KernelExpansion.gradient`) and on torch tensors, where
autograd differentiates it — so Φ can sit inside a bias potential k/2 (Φ(x) − φ0)². Neither fit
draws random numbers, so ``fit`` takes no seed.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg, optimize
from threadpoolctl import threadpool_limits

from ..base import Estimator
from ..errors import InputError
from .diffusion_maps import as_samples, squared_distances


class KernelExpansion(Estimator):
    """Φ(x) = Σ_j c_j exp(−‖x − x_j‖²/(2ε)), fitted by a subclass; what both extensions share.

    Attributes
    ----------
    centers_ : ``(n_centers, dim)``
        The data x_j (set by ``fit``, as are the others).
    coefficients_ : ``(n_centers, n_outputs)``
        The c_j.
    epsilon_ : float
        The bandwidth ε used.
    value_range_ : ``(2, n_outputs)``
        Min and max of the fitted values: where Φ was learned; an umbrella window outside it is an
        extrapolation and draws a warning.
    """

    def _expansion(self, X: np.ndarray, coefficients: np.ndarray, epsilon: float, f: np.ndarray) -> None:
        # C order, as eqfree.base.load restores them: evaluations then sum in the same order
        self.centers_, self.coefficients_ = np.ascontiguousarray(X), np.ascontiguousarray(coefficients)
        self.epsilon_ = float(epsilon)
        self.value_range_ = np.stack([f.min(axis=0), f.max(axis=0)])

    @property
    def names(self) -> list[str]:
        """``phi1, phi2, ...``, one per fitted output."""
        self.check_fitted()
        return [f"phi{i + 1}" for i in range(self.coefficients_.shape[1])]

    def _weights(self, x: np.ndarray) -> np.ndarray:
        self.check_fitted()
        if x.shape[-1] != self.centers_.shape[1]:
            raise InputError(f"states have {x.shape[-1]} coordinates, the extension was fitted on "
                             f"{self.centers_.shape[1]}")
        return np.exp(-squared_distances(x, self.centers_) / (2 * self.epsilon_))

    def __call__(self, x):
        """Φ at states ``(..., dim)`` → ``(..., n_outputs)``; torch tensors stay differentiable."""
        self.check_fitted()
        if torch.is_tensor(x):
            centers = torch.as_tensor(self.centers_, dtype=x.dtype, device=x.device)
            coefficients = torch.as_tensor(self.coefficients_, dtype=x.dtype, device=x.device)
            flat = x.reshape(-1, x.shape[-1])
            # differences, not |x|² + |y|² − 2x·y (torch's matrix-product mode loses precision far from 0)
            distances = torch.cdist(flat, centers, compute_mode="donot_use_mm_for_euclid_dist")
            kernel = torch.exp(-distances.square() / (2 * self.epsilon_))
            return (kernel @ coefficients).reshape(*x.shape[:-1], coefficients.shape[1])
        x = np.asarray(x, dtype=float)
        flat = x.reshape(-1, x.shape[-1])
        return (self._weights(flat) @ self.coefficients_).reshape(*x.shape[:-1], self.coefficients_.shape[1])

    def gradient(self, x) -> np.ndarray:
        """∇Φ at states ``(M, dim)`` → ``(M, n_outputs, dim)``."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        weights = self._weights(x)  # (M, N)
        weighted = weights[:, :, None] * self.coefficients_[None, :, :]  # (M, N, n_out)
        # Σ_j c_j k_j (x_j − x) / ε
        return (np.einsum("mjo,jd->mod", weighted, self.centers_)
                - weighted.sum(1)[:, :, None] * x[:, None, :]) / self.epsilon_


def _check_targets(X, f):
    X = as_samples(X)
    f = np.asarray(f, dtype=float)
    f = f[:, None] if f.ndim == 1 else f
    if f.ndim != 2 or len(f) != len(X):
        raise InputError(f"values must have shape (n_samples,) or (n_samples, n_outputs) with n_samples = {len(X)}, "
                         f"got {f.shape}")
    if not np.isfinite(f).all():
        raise InputError("values to extend must be finite")
    return X, f


class GeometricHarmonics(KernelExpansion):
    """Geometric-harmonics extension with bandwidth ``epsilon`` and spectral cut-off ``delta``;
    ``n_harmonics_`` after ``fit``: the eigenpairs kept."""

    def __init__(self, *, epsilon: float, delta: float = 1e-5):
        self.epsilon = epsilon
        self.delta = delta

    def fit(self, X, f) -> GeometricHarmonics:
        """Fit Φ to values ``f`` ``(N,)`` or ``(N, n_outputs)`` at data ``X`` ``(N, dim)``; returns self."""
        X, f = _check_targets(X, f)
        if not (self.epsilon > 0 and 0 < self.delta < 1):
            raise InputError(f"need epsilon > 0 and 0 < delta < 1, got epsilon={self.epsilon}, delta={self.delta}")
        sigma, phi = linalg.eigh(np.exp(-squared_distances(X, X) / (2 * self.epsilon)))
        keep = sigma >= self.delta * sigma[-1]
        sigma, phi = sigma[keep], phi[:, keep]
        self.n_harmonics_ = int(keep.sum())
        self._expansion(X, phi @ ((phi.T @ f) / sigma[:, None]), self.epsilon, f)
        return self


class GaussianProcessRegression(KernelExpansion):
    """GP posterior mean with the Gaussian kernel; ``epsilon``/``noise`` (variance) fitted by ML-II when None
    (``epsilon_``, ``noise_`` after ``fit``)."""

    def __init__(self, *, epsilon: float | None = None, noise: float | None = None):
        self.epsilon = epsilon
        self.noise = noise

    @staticmethod
    def _negative_log_evidence(log_params, squared, f, fixed):
        epsilon, noise = np.exp(log_params) if fixed is None else fixed(np.exp(log_params))
        scale = np.mean(f**2)  # signal variance: profiled as the data's second moment
        K = scale * np.exp(-squared / (2 * epsilon)) + noise * scale * np.eye(len(f))
        try:
            factor = linalg.cho_factor(K, lower=True)
        except linalg.LinAlgError:
            return np.inf
        alpha = linalg.cho_solve(factor, f)
        return 0.5 * np.sum(f * alpha) + np.sum(np.log(np.diag(factor[0]))) * f.shape[1]

    def fit(self, X, f) -> GaussianProcessRegression:
        """Fit Φ to values ``f`` ``(N,)`` or ``(N, n_outputs)`` at data ``X`` ``(N, dim)``; returns self."""
        X, f = _check_targets(X, f)
        squared = squared_distances(X, X)
        if self.epsilon is None or self.noise is None:
            start = np.log([self.epsilon or np.median(squared[squared > 0]), self.noise or 1e-6])
            fixed = lambda p: (self.epsilon or p[0], self.noise or p[1])
            # hundreds of small Cholesky factorizations: one BLAS thread (with OpenBLAS threads spinning on a
            # busy machine this fit took 20.6 s instead of 2.1 s, measured)
            with threadpool_limits(1, user_api="blas"):
                result = optimize.minimize(self._negative_log_evidence, start, args=(squared, f, fixed),
                                           method="Nelder-Mead",
                                           options={"xatol": 1e-3, "fatol": 1e-6, "maxiter": 400})
            epsilon, noise = fixed(np.exp(result.x))
        else:
            epsilon, noise = self.epsilon, self.noise
        if not (epsilon > 0 and noise >= 0):
            raise InputError(f"need epsilon > 0 and noise >= 0, got epsilon={epsilon}, noise={noise}")
        self.noise_ = float(noise)
        K = np.exp(-squared / (2 * epsilon)) + max(noise, 1e-12) * np.eye(len(X))
        self._expansion(X, linalg.cho_solve(linalg.cho_factor(K, lower=True), f), epsilon, f)
        return self
