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

A fitted :class:`KernelExpansion` evaluates on numpy arrays (with :meth:`~KernelExpansion.gradient`)
and on torch tensors, where autograd differentiates it — so Φ can sit inside a bias potential
k/2 (Φ(x) − φ0)². It is also a :class:`~eqfree.Restrict` operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import linalg, optimize

from ..errors import InputError
from .diffusion_maps import _squared_distances, as_samples


@dataclass
class KernelExpansion:
    """Φ(x) = Σ_j c_j exp(−‖x − x_j‖²/(2ε)); ``coefficients`` has shape ``(n_centers, n_outputs)``.

    ``value_range`` (shape ``(2, n_outputs)``: min and max of the fitted values) is where Φ was
    learned; an umbrella window outside it is an extrapolation and draws a warning.
    """

    centers: np.ndarray
    coefficients: np.ndarray
    epsilon: float
    value_range: np.ndarray | None = None

    def save(self, path: str | Path) -> Path:
        """Write the expansion to a ``.npz`` file (what ``eqfree umbrella --cv FILE`` reads)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = {} if self.value_range is None else {"value_range": self.value_range}
        with open(path, "wb") as file:  # an open file keeps numpy from appending ".npz"
            np.savez(file, centers=self.centers, coefficients=self.coefficients, epsilon=self.epsilon, **extra)
        return path

    @classmethod
    def load(cls, path: str | Path) -> KernelExpansion:
        """Read an expansion written by :meth:`save`."""
        try:
            with np.load(path) as data:
                value_range = data["value_range"] if "value_range" in data else None
                return cls(data["centers"], data["coefficients"], float(data["epsilon"]), value_range)
        except (KeyError, ValueError) as error:
            raise InputError(f"{path} is not a kernel expansion written by KernelExpansion.save: {error}") from None

    @property
    def names(self) -> list[str]:
        return [f"phi{i + 1}" for i in range(self.coefficients.shape[1])]

    def _weights(self, x: np.ndarray) -> np.ndarray:
        if x.shape[-1] != self.centers.shape[1]:
            raise InputError(f"states have {x.shape[-1]} coordinates, the extension was fitted on {self.centers.shape[1]}")
        return np.exp(-_squared_distances(x, self.centers) / (2 * self.epsilon))

    def __call__(self, x):
        """Φ at states ``(..., dim)`` → ``(..., n_outputs)``; torch tensors stay differentiable."""
        if torch.is_tensor(x):
            centers = torch.as_tensor(self.centers, dtype=x.dtype, device=x.device)
            coefficients = torch.as_tensor(self.coefficients, dtype=x.dtype, device=x.device)
            flat = x.reshape(-1, x.shape[-1])
            kernel = torch.exp(-torch.cdist(flat, centers).square() / (2 * self.epsilon))
            return (kernel @ coefficients).reshape(*x.shape[:-1], coefficients.shape[1])
        x = np.asarray(x, dtype=float)
        flat = x.reshape(-1, x.shape[-1])
        return (self._weights(flat) @ self.coefficients).reshape(*x.shape[:-1], self.coefficients.shape[1])

    def gradient(self, x) -> np.ndarray:
        """∇Φ at states ``(M, dim)`` → ``(M, n_outputs, dim)``."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        weights = self._weights(x)  # (M, N)
        weighted = weights[:, :, None] * self.coefficients[None, :, :]  # (M, N, n_out)
        # Σ_j c_j k_j (x_j − x) / ε
        return (np.einsum("mjo,jd->mod", weighted, self.centers) - weighted.sum(1)[:, :, None] * x[:, None, :]) / self.epsilon


def _check_targets(X, f):
    X = as_samples(X)
    f = np.asarray(f, dtype=float)
    f = f[:, None] if f.ndim == 1 else f
    if f.ndim != 2 or len(f) != len(X):
        raise InputError(f"values must have shape (n_samples,) or (n_samples, n_outputs) with n_samples = {len(X)}, got {f.shape}")
    if not np.isfinite(f).all():
        raise InputError("values to extend must be finite")
    return X, f


def _value_range(f: np.ndarray) -> np.ndarray:
    return np.stack([f.min(axis=0), f.max(axis=0)])


class GeometricHarmonics:
    """Geometric-harmonics extension with bandwidth ``epsilon`` and spectral cut-off ``delta``."""

    def __init__(self, epsilon: float, *, delta: float = 1e-5):
        self.epsilon = epsilon
        self.delta = delta

    def fit(self, X, f) -> KernelExpansion:
        X, f = _check_targets(X, f)
        if not (self.epsilon > 0 and 0 < self.delta < 1):
            raise InputError(f"need epsilon > 0 and 0 < delta < 1, got epsilon={self.epsilon}, delta={self.delta}")
        sigma, phi = linalg.eigh(np.exp(-_squared_distances(X, X) / (2 * self.epsilon)))
        keep = sigma >= self.delta * sigma[-1]
        sigma, phi = sigma[keep], phi[:, keep]
        self.n_harmonics_ = int(keep.sum())
        return KernelExpansion(X, phi @ ((phi.T @ f) / sigma[:, None]), float(self.epsilon), _value_range(f))


class GaussianProcessRegression:
    """GP posterior mean with the Gaussian kernel; ``epsilon``/``noise`` (variance) fitted by ML-II when None."""

    def __init__(self, epsilon: float | None = None, *, noise: float | None = None):
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

    def fit(self, X, f) -> KernelExpansion:
        X, f = _check_targets(X, f)
        squared = _squared_distances(X, X)
        if self.epsilon is None or self.noise is None:
            start = np.log([self.epsilon or np.median(squared[squared > 0]), self.noise or 1e-6])
            fixed = lambda p: (self.epsilon or p[0], self.noise or p[1])
            result = optimize.minimize(self._negative_log_evidence, start, args=(squared, f, fixed), method="Nelder-Mead",
                                       options={"xatol": 1e-3, "fatol": 1e-6, "maxiter": 400})
            epsilon, noise = fixed(np.exp(result.x))
        else:
            epsilon, noise = self.epsilon, self.noise
        if not (epsilon > 0 and noise >= 0):
            raise InputError(f"need epsilon > 0 and noise >= 0, got epsilon={epsilon}, noise={noise}")
        self.epsilon_, self.noise_ = float(epsilon), float(noise)
        K = np.exp(-squared / (2 * epsilon)) + max(noise, 1e-12) * np.eye(len(X))
        return KernelExpansion(X, linalg.cho_solve(linalg.cho_factor(K, lower=True), f), float(epsilon), _value_range(f))
