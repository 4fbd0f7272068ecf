"""Self-normalized importance sampling from a latent-variable model to exp(−βU).

A draw (x, z_1) ~ q(x|z) q(z) and K − 1 latents z_2..z_K ~ r(z|x) carry the weight

    w = exp(−βU(x)) / q̂(x),     q̂(x) = (1/K) Σ_k q(x|z_k) q(z_k) / r(z_k|x),     E[w | x] = exp(−βU(x)) / q(x)

for every K and every encoder r: the latents' law q(z_1|x) Π_{k≥2} r(z_k|x) is one term of the symmetric
mixture (1/K) Σ_j q(z_j|x) Π_{k≠j} r(z_k|x) = q̂(x) Π_k r(z_k|x) / q(x), and 1/q̂ is symmetric in them, so
E[1/q̂(x) | x] = 1/q(x) (the estimate of a reciprocal normalizer from one exact posterior draw: Grosse,
Ghahramani & Adams 2015). K = 1 is the joint weight exp(−βU) r(z|x)/(q(x|z) q(z)), whose variance is large
where r misses the posterior q(z|x) (a rare well the encoder maps elsewhere); K > 1 lowers it. So
the weighted draws estimate expectations under p(x) ∝ exp(−βU(x)) exactly in the limit, whatever K and r.
−log w averages to ≥ −log Z for every K (Jensen); at K = 1 it is the per-sample reverse-KL loss
ℓ = βU + log q(x|z) + log q(z) − log r(z|x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from ...errors import InputError
from ...statistics import kish_ess


@dataclass(frozen=True)
class ImportanceSample:
    """Joint draws ``x`` (n, dim), ``z`` (n, latent) and their log-weights (n,) at inverse temperature ``beta``."""

    x: np.ndarray
    z: np.ndarray
    log_weights: np.ndarray
    beta: float

    @property
    def normalized_weights(self) -> np.ndarray:
        """W_n = exp(log w_n − logsumexp(log w)), summing to 1."""
        return np.exp(self.log_weights - logsumexp(self.log_weights))

    @property
    def loss(self) -> float:
        """Mean of −log w, ≥ −log Z (at K = 1 the reverse-KL loss ℓ)."""
        return float(-self.log_weights.mean())

    @property
    def loss_stderr(self) -> float:
        """Standard error of :attr:`loss` (independent draws)."""
        return float(self.log_weights.std(ddof=1) / math.sqrt(len(self.log_weights)))

    @property
    def log_partition(self) -> float:
        """log of the mean weight: an estimate of log Z (biased low by Jensen, consistent)."""
        return float(logsumexp(self.log_weights) - math.log(len(self.log_weights)))

    @property
    def ess(self) -> float:
        """Kish's effective sample size of the weights."""
        return kish_ess(self.log_weights)

    def probability(self, event, *, weighted: bool = True) -> tuple[float, float]:
        """P(event) and its standard error; ``event`` is a boolean mask (n,) or a function of x.

        Weighted: P = Σ w̄_i 1_i with the delta-method error (Σ w̄_i² (1_i − P)²)^½; unweighted:
        the raw fraction of the generator's draws, error (P(1 − P)/n)^½.
        """
        mask = np.asarray(event(self.x) if callable(event) else event, dtype=bool)
        if mask.shape != self.log_weights.shape:
            raise InputError(f"the event mask has shape {mask.shape}; expected {self.log_weights.shape}")
        if not weighted:
            p = mask.mean()
            return float(p), float(math.sqrt(p * (1 - p) / len(mask)))
        w = self.normalized_weights
        p = float(w @ mask)
        return p, float(math.sqrt(np.sum(w**2 * (mask - p) ** 2)))

    def free_energy_difference(self, event, *, weighted: bool = True) -> tuple[float, float]:
        """ΔF = −log(P(A)/P(not A)) in kT (units of 1/β) and its standard error (delta method);
        infinite when the draws (or their weights) put no mass on one side."""
        p, se = self.probability(event, weighted=weighted)
        if p <= 0 or p >= 1:
            return math.inf if p <= 0 else -math.inf, math.inf
        return -math.log(p / (1 - p)) / self.beta, se / (p * (1 - p)) / self.beta
