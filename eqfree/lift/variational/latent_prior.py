"""An empirical-Bayes latent prior: a Gaussian mixture fitted to a trained model's marginal likelihood, with
the Laplace approximation of its parameters.

A model trained with q(z) = N(0, I) draws every state from one Gaussian, so the decoder must pass
continuously from one metastable state to the next, and the prior mass a rare state receives is whatever
that passage leaves: on the tilted double well (2000 states, 0.8 % in the minor well) q(x1 > 0) was 0.66–0.93
of the data's share over seeds, part of it on the barrier (issue 26). With the encoder and decoder held at
their fit, the prior is replaced by

    p_η(z) = Σ_m π_m N(z; μ_m, diag s_m²),   π = softmax(a), a_1 = 0,   η = (a_2..a_M, μ, log s),

fitted by maximizing the importance-sampled marginal likelihood of the training states plus a unit Gaussian
hyperprior on the means and log-scales (the scale of N(0, I); the weights are left free),

    L(η) = Σ_i log (1/K) Σ_k q(x_i|z_ik) p_η(z_ik) / r(z_ik|x_i) − ½ Σ (μ² + (log s)²),   z_ik ~ r(z|x_i),

with the K latents and their likelihoods drawn once, so that L is a smooth function of η (L-BFGS from
k-means++ on the codes). Its Laplace approximation η ~ N(η*, H⁻¹), H = −∇²L(η*) by autograd, carries the
counting error of each component's mass: for a rare component holding n of N states the weight's standard
error is about √(n (1 − n/N))/N, the binomial one, which a decoder-only posterior cannot see. The optimal prior
of a fitted encoder is its aggregate posterior (Hoffman & Johnson 2016); mixture priors for VAEs: Dilokthanakul
et al. 2016, Tomczak & Welling 2018.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.cluster.vq import kmeans2

from ...errors import InputError
from .model import LatentVariableModel
from .networks import gaussian_log_density

#: latents per training state in the importance-sampled marginal likelihood
MARGINAL_SAMPLES = 64


def unpack(eta: torch.Tensor, components: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log π (M,), μ (M, latent), log s (M, latent)) from η = (a_2..a_M, μ, log s)."""
    logits = torch.cat([eta.new_zeros(1), eta[:components - 1]])
    means, log_scales = eta[components - 1:].reshape(2, components, -1)
    return torch.log_softmax(logits, 0), means, log_scales


def mixture_log_density(z: torch.Tensor, eta: torch.Tensor, components: int) -> torch.Tensor:
    """log p_η(z) for latents z (..., latent)."""
    log_weights, means, log_scales = unpack(eta, components)
    return torch.logsumexp(log_weights + gaussian_log_density(z[..., None, :], means, 2 * log_scales), dim=-1)


def mixture_sample(eta: torch.Tensor, components: int, n: int, model: LatentVariableModel,
                   generator: torch.Generator) -> torch.Tensor:
    """n latents (n, latent) from p_η, drawn with ``generator`` (CPU) and moved to the model's device."""
    log_weights, means, log_scales = unpack(eta, components)
    which = torch.multinomial(log_weights.exp().cpu(), n, replacement=True, generator=generator).to(eta.device)
    return means[which] + log_scales[which].exp() * model.normal((n, means.shape[1]), generator)


def fit_mixture_prior(model: LatentVariableModel, X: torch.Tensor, components: int,
                      generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """η* and the Hessian H of −L at η* (module doc) for the fitted ``model`` and its training states X (N, dim)."""
    if len(X) < 2 * components:
        raise InputError(f"{len(X)} training states cannot determine a latent prior of {components} components: "
                         "give fewer latent_components (or more states)")
    noise = model.normal((MARGINAL_SAMPLES, len(X), model.latent_dim), generator)
    with torch.no_grad():
        z, log_likelihood, log_r = model.latent_draws(X, noise)
    codes = z.mean(dim=0).cpu().numpy()  # the encoder means, up to the noise of K draws: k-means' input
    centres, labels = kmeans2(codes, components, minit="++", seed=int(torch.randint(2**31, (), generator=generator)))
    counts = np.bincount(labels, minlength=components)
    spread = [codes[labels == m].std(axis=0) if counts[m] > 1 else np.ones(codes.shape[1]) for m in range(components)]
    start = np.concatenate([np.log(np.maximum(counts[1:], 1) / max(counts[0], 1)), centres.ravel(),
                            np.log(np.maximum(np.asarray(spread), 1e-2)).ravel()])
    log_terms = log_likelihood - log_r
    shapes = slice(components - 1, None)

    def objective(eta: torch.Tensor) -> torch.Tensor:
        marginal = torch.logsumexp(log_terms + mixture_log_density(z, eta, components), dim=0) - math.log(len(z))
        return -marginal.sum() + 0.5 * (eta[shapes] ** 2).sum()

    eta = torch.as_tensor(start, dtype=torch.float64, device=z.device).requires_grad_(True)
    optimizer = torch.optim.LBFGS([eta], max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        value = objective(eta)
        value.backward()
        return value

    optimizer.step(closure)
    eta = eta.detach()
    hessian = torch.autograd.functional.hessian(objective, eta)
    if not bool(torch.isfinite(hessian).all()) or torch.linalg.eigvalsh(hessian).min() <= 0:
        raise InputError(f"the latent prior's {components} components are not all determined by the training states "
                         "(the marginal likelihood has no maximum there): give fewer latent_components")
    return eta, hessian
