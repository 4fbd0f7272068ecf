"""Data-driven coarse-graining: a VAE trained by forward KL, MAP with the ARD prior.

Minimizing KL(p_target || q) over data X = {x_i} (N states) is maximizing Σ_i log q(x_i), bounded
below by the ELBO; with the ARD prior on the decoder-mean parameters θ (:mod:`.ard`) the MAP
objective per step is

    L = mean_batch ℓ_f(x) + (1/N) · ½ Σ_j ⟨τ_j⟩ θ_j²,     ℓ_f = −log q(x|z) + KL(r(z|x) || N(0, I)),

minimized by Adam (one epoch: one step on a batch), with the E-step ⟨τ_j⟩ = (a0 + ½)/(b0 + θ_j²/2)
every ``ard_every`` epochs from the end of the KL warm-up on (⟨τ⟩ = 0 before: switched on from the
first step, the prior pruned the decoder's latent inputs of an alanine-dipeptide VAE with N = 50
frames to 1e-19, a collapsed latent). The decoder variance σ_θ² is a learned vector independent of z
(Mattei & Frelsen 2018: a z-dependent variance makes the likelihood unbounded).
"""

from __future__ import annotations

import math
import time

import torch

from ...errors import InputError
from ...scaling import DataScaler
from ...seeding import SeedLike, child_int
from ...validation import checked_count
from .ard import ARDPrior
from .model import LatentVariableModel, StepGuard, checked_states
from .networks import WIDTHS


def decoder_mean_parameters(networks) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) of the decoder-mean network θ (weights and biases; not the variance)."""
    return [(f"decoder.mean.{name}", p) for name, p in networks["decoder"].mean.named_parameters()]


class VAE(LatentVariableModel):
    """Variational autoencoder for coarse-graining from data (module doc).

    Parameters
    ----------
    latent_dim : dimension of z (2 in the slides).
    widths : (d1, d2, d3) of the encoder/decoder tables.
    n_epochs, batch_size, lr : training; one epoch is one Adam step on a minibatch drawn with replacement.
    ard : use the ARD prior (MAP); False gives the maximum-likelihood (ELBO) fit.
    a0, b0 : Gamma hyperprior of the ARD precisions; ``ard_every``: epochs between E-steps.
    off_tolerance : a parameter is switched off when ⟨τ_j⟩^(−1/2) ≈ max(|θ_j|, √(2 b0)) < off_tolerance.
    kl_warmup : epochs over which the prior term's weight rises linearly to 1 (0: none).
    importance_samples : K of the bound (:mod:`.model`). K = 1 is the slides' ELBO; K > 1 tightens
        it, which a rare state needs: on the double well (0.8 % minor well) K = 1 left 0.06 % of
        q in the minor well, the encoder placing it far in the prior's tail. K = 8 still leaves it low
        (issue 26; 2000 states, 10 seeds each): q(x1 > 0) was 0.72 of the data's with widths (8, 16, 16)
        (0.93 at K = 64) and 0.74–0.93 at the default widths, the decoder's smooth passage between the wells
        putting part of the minor well's mass on the barrier.
    device : ``"cpu"`` or ``"cuda"``.

    Learned attributes: ``networks_``, ``data_`` (standardization), ``dim_``, ``coords_``,
    ``history_`` (``loss``: mean ℓ_f per epoch, ``penalty``: the ARD term per sample),
    ``training_`` (seed, samples, seconds, rejected steps), ``ard_precisions_`` (name → ⟨τ⟩),
    ``switched_off_`` (fraction of decoder-mean parameters switched off; 0 without ARD).
    """

    method = "vae"

    def __init__(self, *, latent_dim: int = 2, widths=WIDTHS, n_epochs: int = 5000, batch_size: int = 128,
                 lr: float = 1e-3, ard: bool = True, a0: float = 1e-5, b0: float = 1e-5, ard_every: int = 1,
                 off_tolerance: float = 1e-2, kl_warmup: int = 0, importance_samples: int = 1,
                 device: str | torch.device = "cpu"):
        if not (a0 > 0 and b0 > 0):
            raise InputError(f"the ARD hyperprior needs a0 > 0 and b0 > 0, got a0 = {a0!r}, b0 = {b0!r}")
        floor = math.sqrt(b0 / (a0 + 0.5))  # ⟨τ⟩^(−1/2) at θ = 0
        if not off_tolerance > floor:
            raise InputError(f"off_tolerance must exceed sqrt(b0/(a0 + 1/2)) = {floor:.3g}, the prior standard "
                             f"deviation of a parameter at zero; got {off_tolerance!r}")
        self._set_training(latent_dim=latent_dim, widths=widths, n_epochs=n_epochs, batch_size=batch_size, lr=lr,
                           importance_samples=importance_samples, device=device)
        self.ard, self.a0, self.b0 = bool(ard), float(a0), float(b0)
        self.ard_every = checked_count(ard_every, "ard_every")
        self.off_tolerance = float(off_tolerance)
        self.kl_warmup = checked_count(kl_warmup, "kl_warmup", minimum=0)

    def fit(self, X, *, seed: SeedLike, coords=None, progress: bool = True) -> VAE:
        """Train on states ``X`` (N, dim); returns self."""
        X = checked_states(X)
        self._initialize(X.shape[1], DataScaler.fit(X), coords, seed)
        data = torch.as_tensor(X, device=self.device)
        generator = torch.Generator().manual_seed(child_int(seed, 1))
        named = decoder_mean_parameters(self.networks_)
        prior = ARDPrior([param for _, param in named], self.a0, self.b0) if self.ard else None
        parameters = list(self.networks_.parameters())
        optimizer = torch.optim.Adam(parameters, lr=self.lr, foreach=True)
        guard = StepGuard(max_consecutive=100)
        history = {"loss": [], "penalty": []}
        self.training_ = {"seed": repr(seed), "n_samples": len(X)}
        start = time.perf_counter()
        self.networks_.train()
        with self._progress(progress) as bar:
            for step in range(self.n_epochs):
                if prior is not None and step >= self.kl_warmup and (step - self.kl_warmup) % self.ard_every == 0:
                    prior.update()
                batch = data[torch.randint(len(X), (self.batch_size,), generator=generator).to(self.device)]
                kl_weight = min(1.0, (step + 1) / self.kl_warmup) if self.kl_warmup else 1.0
                terms = self.forward_terms(batch, self._forward_noise(len(batch), generator), kl_weight)
                penalty = prior.penalty() / len(X) if prior is not None else torch.zeros((), dtype=torch.float64)
                loss = terms.mean() + penalty
                guard.apply(step, loss, True, optimizer, parameters)
                history["loss"].append(terms.mean().item())
                history["penalty"].append(penalty.item())
                bar.update(1)
                if step % 100 == 0:
                    bar.set_postfix(loss=f"{history['loss'][-1]:.3f}")
        if prior is not None:
            prior.update()
        precisions = prior.precisions if prior is not None else [torch.zeros_like(param) for _, param in named]
        self.ard_precisions_ = {name: tau.detach().clone() for (name, _), tau in zip(named, precisions)}
        self.switched_off_ = prior.switched_off(self.off_tolerance) if prior is not None else 0.0
        self._finish(history, start, guard)
        return self

    def prior_precisions(self) -> dict[str, torch.Tensor]:
        """⟨τ_j⟩ of each decoder-mean parameter (zeros without ARD): the prior term of the Laplace precision."""
        self.check_fitted()
        return self.ard_precisions_

    def set_state(self, state: dict) -> None:
        """Restore the fitted state, the ARD precisions on the model's device."""
        super().set_state(state)
        self.ard_precisions_ = {name: tau.to(self.device) for name, tau in self.ard_precisions_.items()}
