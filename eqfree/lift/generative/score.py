"""Conditional score model: a denoiser trained by denoising score matching, sampled by the
probability-flow ODE or the reverse-time SDE (no guidance).

Everything happens in the base's scaled variables: each coordinate standardized, so the data
scale is σ_data = 1, and labels ỹ ∈ [0, 1] over the training range.

**Denoiser.** With Gaussian noise of level σ added to a clean x, the model's estimate of x is
(the EDM preconditioning of Karras et al. 2022, with σ_data = 1)

    D(x; σ, ỹ) = c_skip(σ) x + c_out(σ) F(c_in(σ) x, c_noise(σ), e(ỹ)),
    c_skip = 1/(σ² + 1),  c_out = σ/√(σ² + 1),  c_in = 1/√(σ² + 1),  c_noise = ¼ ln σ,

where F is an MLP (SiLU) whose inputs are c_in x, the raw c_noise, and the label embedding
e(ỹ) = [ỹ, sin(2π b ỹ), cos(2π b ỹ)] with fixed frequencies b_k ~ N(0, fourier_scale²),
k = 1..n_fourier (drawn once when the networks are built, saved with the weights). The raw ỹ
keeps the dependence on the label smooth beyond the training range; the Fourier features help with
laws that vary with the label in fine detail, but they spoil extrapolation (trained on eq. (2.1)
with x1 ∈ [0, 10] and sampled at x1 = 20, the samples' x1 came out between 5.7 and 14 with
n_fourier = 4 or 8, against 19.5–20.4 without), so ``n_fourier`` is 0 unless asked for. The
score of the noised conditional law p_σ(x | ỹ) is s(x; σ, ỹ) = (D − x)/σ² (Tweedie).

**Training.** ln σ ~ N(p_mean, p_std²), ε ~ N(0, I), minimize E λ(σ) ‖D(x + σε; σ, ỹ) − x‖² with
λ = (σ² + 1)/σ². Since λ c_out² = 1 this equals E ‖F − (x − c_skip (x + σε))/c_out‖², the form
used here: a unit-variance regression target at every σ. One epoch is one Adam step on a batch;
sampling uses an exponential moving average of the weights (decay ``ema_decay``).

**Sampling.** Noise levels σ_i = (σ_max^{1/ρ} + i/(N−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,
i = 0..N−1 (N = ``n_levels``), then σ_N = 0; x_0 = σ_max ε.

- ``"ode"``: the probability-flow ODE dx/dσ = (x − D(x; σ))/σ, Heun's method (2N − 1 network
  calls; the last step, to σ = 0, is an Euler step, which returns D(x; σ_{N−1})). Second order.
- ``"sde"``: the reverse-time SDE dx = −s d(σ²) + dW_{σ²} (σ² decreasing), Euler–Maruyama:
  x ← x + (σ_i² − σ_{i+1}²) s(x; σ_i) + √(σ_i² − σ_{i+1}²) ξ, the last step returning D
  (N network calls). First order: for Gaussian data it is exact only as N → ∞, and with the
  default ρ = 7 the variance of N(m, 1) data comes out about 10/N too large (relative), so it
  needs several hundred steps.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ...errors import InputError
from ...validation import checked_count, checked_positive
from .base import ConditionalGenerator
from .networks import mlp

SAMPLERS = ("ode", "sde")
#: noise levels used when ``n_levels`` is None; with these, Gaussian N(m, 1) data come out with a
#: variance about 0.6 % (ode) and 4 % (sde) too large (module doc)
DEFAULT_LEVELS = {"ode": 64, "sde": 256}


def _finite(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a finite number, got {value!r}") from None
    if not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return value


def _checked_sampler(sampler, n_levels) -> tuple[str, int | None]:
    if sampler not in SAMPLERS:
        raise InputError(f"unknown sampler {sampler!r}: choose 'ode' (probability-flow ODE, Heun) "
                         "or 'sde' (reverse-time SDE, Euler-Maruyama)")
    if n_levels is not None:
        n_levels = checked_count(n_levels, "n_levels", minimum=2)
    return sampler, n_levels


def karras_sigmas(n_levels: int, sigma_min: float, sigma_max: float, rho: float) -> list[float]:
    """σ_0 = σ_max > ... > σ_{N−1} = σ_min on the ρ-warped grid (module doc), then σ_N = 0."""
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return [(a + i / (n_levels - 1) * (b - a)) ** rho for i in range(n_levels)] + [0.0]


class ConditionalScoreModel(ConditionalGenerator):
    """Conditional denoising score model with EDM preconditioning (module doc).

    Parameters (all keyword-only, all saved with the model):
    ``n_epochs`` — training epochs, one Adam step on a batch each; ``batch_size``; ``lr`` — Adam's
    learning rate; ``hidden`` — widths of F's hidden layers; ``n_fourier``, ``fourier_scale`` — the
    label's Fourier features (none by default: they spoil extrapolation, module doc);
    ``p_mean``, ``p_std`` — the training law of ln σ; ``ema_decay`` — of the sampled weights' moving
    average (0: the last weights); ``sigma_min``, ``sigma_max``, ``rho`` — the sampling schedule;
    ``sampler`` — "ode" or "sde"; ``n_levels`` — noise levels N of the sampler (None: 64 for ode,
    256 for sde); ``device``.
    """

    method = "score"

    def __init__(self, *, n_epochs: int = 4000, batch_size: int = 512, lr: float = 1e-3,
                 hidden=(128, 128, 128), n_fourier: int = 0, fourier_scale: float = 1.0,
                 p_mean: float = -1.2, p_std: float = 1.2, ema_decay: float = 0.999,
                 sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                 sampler: str = "ode", n_levels: int | None = None, device: str | torch.device = "cpu"):
        if isinstance(hidden, (int, str)) or not hasattr(hidden, "__iter__"):
            raise InputError(f"hidden must be a sequence of layer widths such as (128, 128, 128), got {hidden!r}")
        hidden = tuple(checked_count(width, "each hidden width") for width in hidden)
        if not hidden:
            raise InputError("hidden must list at least one layer width, e.g. (128, 128, 128)")
        ema_decay = _finite(ema_decay, "ema_decay")
        if not 0 <= ema_decay < 1:
            raise InputError(f"ema_decay must lie in [0, 1) (0 samples with the last weights), got {ema_decay!r}")
        sigma_min, sigma_max = checked_positive(sigma_min, "sigma_min"), checked_positive(sigma_max, "sigma_max")
        if sigma_min >= sigma_max:
            raise InputError(f"sigma_min ({sigma_min:g}) must be smaller than sigma_max ({sigma_max:g})")
        sampler, n_levels = _checked_sampler(sampler, n_levels)
        self._set_training(n_epochs, batch_size, device)
        self.lr, self.hidden = checked_positive(lr, "lr"), hidden
        self.n_fourier = checked_count(n_fourier, "n_fourier", minimum=0)
        self.fourier_scale = checked_positive(fourier_scale, "fourier_scale")
        self.p_mean, self.p_std = _finite(p_mean, "p_mean"), checked_positive(p_std, "p_std")
        self.ema_decay, self.sigma_min, self.sigma_max = ema_decay, sigma_min, sigma_max
        self.rho = checked_positive(rho, "rho")
        self.sampler, self.n_levels = sampler, n_levels

    def set_sampler(self, sampler: str | None = None, n_levels: int | None = None) -> ConditionalScoreModel:
        """Switch the sampler and/or its number of noise levels (None keeps the sampler; a new
        sampler without ``n_levels`` takes its default); returns self."""
        if sampler is not None and n_levels is None and sampler != self.sampler:
            return self.set_params(sampler=sampler, n_levels=None)
        return self.set_params(sampler=self.sampler if sampler is None else sampler,
                               n_levels=self.n_levels if n_levels is None else n_levels)

    @property
    def levels(self) -> int:
        """The number of noise levels N the current sampler uses."""
        return self.n_levels or DEFAULT_LEVELS[self.sampler]

    # -- networks ---------------------------------------------------------------------------------
    def _build(self, dim: int) -> nn.ModuleDict:
        net = mlp(dim + 2 + 2 * self.n_fourier, dim, self.hidden, activation="silu")
        ema = copy.deepcopy(net).requires_grad_(False)
        networks = nn.ModuleDict({"F": net, "ema": ema})
        networks.register_buffer("frequencies", torch.randn(self.n_fourier) * self.fourier_scale)
        return networks

    def embed(self, labels: torch.Tensor) -> torch.Tensor:
        """e(ỹ) = [ỹ, sin(2π b ỹ), cos(2π b ỹ)], shape (n, 1 + 2 n_fourier)."""
        y = labels.reshape(-1, 1).to(self.networks_.frequencies.dtype)
        phase = 2 * math.pi * y * self.networks_.frequencies
        return torch.cat([y, torch.sin(phase), torch.cos(phase)], dim=1)

    def _preconditioned(self, net: nn.Module, x, sigma, embedding):
        """(c_skip, c_out, F(c_in x, c_noise, e)) for σ a float or an (n, 1) tensor."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(len(x), 1)
        c_in = torch.rsqrt(sigma**2 + 1)
        out = net(torch.cat([c_in * x, 0.25 * torch.log(sigma), embedding], dim=1))
        return c_in**2, sigma * c_in, out

    def denoise(self, x: torch.Tensor, sigma, labels: torch.Tensor) -> torch.Tensor:
        """D(x; σ, ỹ) with the averaged weights: the estimate of the clean state (scaled units)."""
        c_skip, c_out, out = self._preconditioned(self.networks_["ema"], x, sigma, self.embed(labels))
        return c_skip * x + c_out * out

    def score(self, x: torch.Tensor, sigma, labels: torch.Tensor) -> torch.Tensor:
        """s(x; σ, ỹ) = (D − x)/σ², the score of the noised conditional law (scaled units)."""
        return (self.denoise(x, sigma, labels) - x) / torch.as_tensor(sigma, dtype=x.dtype, device=x.device) ** 2

    # -- training ---------------------------------------------------------------------------------
    def _train(self, x, y, generator, bar):
        net, ema = self.networks_["F"], self.networks_["ema"]
        optimizer = torch.optim.Adam(net.parameters(), lr=self.lr)
        embedding = self.embed(y)
        n, batch = len(x), min(self.batch_size, len(x))
        losses = []
        for step in range(self.n_epochs):
            index = torch.randint(n, (batch,), generator=generator, device=x.device)
            clean = x[index]
            sigma = torch.exp(self.p_mean + self.p_std * torch.randn(
                (batch, 1), generator=generator, device=x.device))
            noisy = clean + sigma * torch.randn(clean.shape, generator=generator, device=x.device)
            c_skip, c_out, out = self._preconditioned(net, noisy, sigma, embedding[index])
            loss = torch.mean((out - (clean - c_skip * noisy) / c_out) ** 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # averaging with warm-up: early weights are forgotten quickly
            decay = min(self.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for average, current in zip(ema.parameters(), net.parameters()):
                    average.lerp_(current, 1 - decay)
            losses.append(loss.detach())
            bar.update(1)
            if step % 100 == 0 or step == self.n_epochs - 1:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        return {"loss": torch.stack(losses).cpu().tolist()}

    # -- sampling ---------------------------------------------------------------------------------
    def _generate(self, labels, generator):
        sigmas = karras_sigmas(self.levels, self.sigma_min, self.sigma_max, self.rho)
        x = sigmas[0] * self.noise((len(labels), self.dim_), generator)
        if self.sampler == "ode":
            return self._ode(x, labels, sigmas)
        return self._sde(x, labels, sigmas, generator)

    def _ode(self, x, labels, sigmas):
        """Heun's method for dx/dσ = (x − D)/σ from σ_0 to σ_N = 0 (Euler on the last step)."""
        for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
            slope = (x - self.denoise(x, sigma, labels)) / sigma
            x_euler = x + (sigma_next - sigma) * slope
            if sigma_next == 0:
                return x_euler
            slope_next = (x_euler - self.denoise(x_euler, sigma_next, labels)) / sigma_next
            x = x + (sigma_next - sigma) * 0.5 * (slope + slope_next)
        return x

    def _sde(self, x, labels, sigmas, generator):
        """Euler–Maruyama for the reverse SDE in σ², the last step (to σ = 0) returning D."""
        for sigma, sigma_next in zip(sigmas[:-2], sigmas[1:-1]):
            variance = sigma**2 - sigma_next**2
            x = x + variance * self.score(x, sigma, labels) + math.sqrt(variance) * self.noise(x.shape, generator)
        return self.denoise(x, sigmas[-2], labels)
