"""Encoder and decoder networks (Tables 1–2 of the variational coarse-graining of Schöberl, Zabaras &
Koutsourelakis 2019, as presented in their slides), and Gaussian log-densities.

Encoder r(z|x; φ) = N(μ_φ(x), diag σ_φ²(x)) (Table 1):

    x → Dense(d1) → SELU → Dense(d2) → SELU → Dense(d3) → log-sigmoid → {Dense(latent) = μ_φ,
                                                                           Dense(latent) = log σ_φ²}

Decoder q(x|z; θ) = N(μ_θ(z), diag σ_θ²) (Table 2), the variance a learned vector independent of z:

    z → Dense(d3) → tanh → Dense(d2) → tanh → Dense(d1) → tanh → Dense(dim) = μ_θ

Widths (d1, d2, d3) = (50, 100, 100) in the slides. Both work on standardized states
x̃ = (x − shift)/scale (the model stores the affine map).
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: (d1, d2, d3) of Tables 1–2
WIDTHS = (50, 100, 100)
LOG_2PI = math.log(2 * math.pi)


class Encoder(nn.Module):
    """x̃ (n, dim) → (μ_φ, log σ_φ²), each (n, latent)."""

    def __init__(self, dim: int, latent: int, widths=WIDTHS):
        super().__init__()
        d1, d2, d3 = widths
        self.body = nn.Sequential(nn.Linear(dim, d1), nn.SELU(), nn.Linear(d1, d2), nn.SELU(),
                                  nn.Linear(d2, d3), nn.LogSigmoid())
        self.mean = nn.Linear(d3, latent)
        self.log_var = nn.Linear(d3, latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance ``(n, latent)`` each of r(z | x)."""
        h = self.body(x)
        return self.mean(h), self.log_var(h)


class Decoder(nn.Module):
    """z (n, latent) → μ_θ(z) (n, dim); ``log_var`` holds log σ_θ² (dim,)."""

    def __init__(self, latent: int, dim: int, widths=WIDTHS):
        super().__init__()
        d1, d2, d3 = widths
        self.mean = nn.Sequential(nn.Linear(latent, d3), nn.Tanh(), nn.Linear(d3, d2), nn.Tanh(),
                                  nn.Linear(d2, d1), nn.Tanh(), nn.Linear(d1, dim))
        self.log_var = nn.Parameter(torch.zeros(dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The mean ``(n, dim)`` of q(x | z)."""
        return self.mean(z)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag exp(log_var)), summed over the last axis."""
    return -0.5 * (((x - mean) ** 2) * torch.exp(-log_var) + log_var + LOG_2PI).sum(-1)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last axis."""
    return -0.5 * (z**2 + LOG_2PI).sum(-1)


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag exp(log_var)) || N(0, I)) = ½ Σ (mean² + σ² − 1 − log σ²)."""
    return 0.5 * (mean**2 + torch.exp(log_var) - 1 - log_var).sum(-1)
