"""Embedded-physics coarse-graining: a latent-variable generator trained on the energy alone.

Minimizing KL(q(x) || p(x)), p ∝ exp(−βU), with the entropy of q bounded through the encoder
r(z|x) (Schöberl, Zabaras & Koutsourelakis 2019, "Lower bound the entropy"), is minimizing

    L(θ, φ) = E_{q(x,z)}[βU(x) + log q(x|z) + log q(z) − log r(z|x)] ≥ −log Z,

by reparametrization: only U(x) and its forces −∇U at the generator's own draws are needed — no
data. The gap L + log Z = KL(q(x) || p) + E_q KL(q(z|x) || r(z|x)) ≥ 0.

Training takes one Adam step on a batch of joint draws per epoch. Tempering: training starts at
β_s = ``beta_start`` (the slides: 1e-10) and every ``temper_every`` epochs raises β_s by the largest
Δ ≤ β − β_s for which the predicted increase of the objective,

    KL(p_{β_s} || p_{β_s+Δ}) = Δ E_{β_s}[U] + log E_{β_s}[exp(−Δ U)],

stays below ``threshold``; the expectations under p_{β_s} are self-normalized importance averages
over the last batch (weights exp(−ℓ_r), :mod:`.importance`), so no extra energy is evaluated.
Training ends ``epochs_at_target`` epochs after β_s reaches β (or after ``n_epochs`` in all). The
schedule (epoch, β_s) is recorded.

Guard against mode loss. Reverse KL is mode-seeking: a well holding 1 % of the mass is worth 0.01 nats of
loss, and a generator can drop it as β_s rises (seed-dependent). So the reverse term is mixed with a
forward (mass-covering) term on ``n_walkers`` Langevin walkers that follow the tempering,

    (1 − γ) · mean ℓ_r + γ · mean ℓ_f(walkers),   γ = ``coverage``,

the walkers started at the generator's first draws and moved by one Metropolis-adjusted Langevin step at
β_s per epoch (:class:`LangevinWalkers`, one more energy and force evaluation per walker and epoch). At
high temperature they spread over every well; as β_s rises they stop crossing the barriers and each well
keeps walkers, so −log q at those states keeps the generator's mass there (a dropped well would cost
γ · (its share of walkers) · ∞). The walkers' well populations freeze where crossings stop, so the
optimum is not exactly p: the generator's mass in a minor well is a compromise of both terms (on the
tilted double well 0.45–0.55 % of the draws against the exact 0.83 %), which importance reweighting
(:meth:`~.model.LatentVariableModel.reweight`) corrects; the loss still bounds −log Z from above.

Mixed objective when data X exist, 0 < α < 1:

    α · mean ℓ_f(X batch; KL weight β_s/β) + (1 − α) · (the above) + α (1 − γ) · mean[−log r(z|x)],

the last mean over the batch's joint draws (x, z), x held fixed. The data term's KL weight follows the
tempering (a warm-up, Bowman et al. 2016): at full weight from the first epoch the latent collapsed at
α = 0.99 (a Gaussian fit of the major well, no draw in the minor one: ΔF = ∞ and 11.4 kT at seeds 0 and 1).
The last term is the encoder's part of ℓ_r, −log r(z|x), the sleep phase of wake–sleep (Hinton et al.
1995): it keeps the encoder trained on the generator's draws at the weight 1 − γ that it has without data,
whatever α, where it would otherwise learn them at (1 − α)(1 − γ) only. Measured at α = 0.99 (seeds 0, 1,
joint weights): without it the generator put 0.31 and 0.26 % of its draws in the minor well (exact 0.83 %)
and ΔF came out 0.47 and 0.67 kT high; with it 0.79 and 0.97 %, and 0.42 and 0.34 kT. The rest of that error
is the weights' variance where the encoder misses the posterior, which the K latents of
:meth:`~.model.LatentVariableModel.reweight` remove (:mod:`.importance`). Both terms leave the bounds as they
are (ℓ_f is one at β_s = β, ℓ_r at any r).
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import torch

from ...errors import InputError, InputTypeError
from ...scaling import DataScaler
from ...seeding import SeedLike, child_int
from ...validation import checked_count
from .model import Energy, LatentVariableModel, StepGuard, checked_states
from .networks import WIDTHS

BISECTIONS = 60
#: MALA: largest step h (standardized units, proposal sd √(2h)) and the acceptance rate h adapts to
MAX_STEP, TARGET_ACCEPTANCE = 0.01, 0.574


class TemperingWarning(UserWarning):
    """Training ended before the tempering reached the target inverse temperature."""


def tempering_increment(energies, log_weights, beta: float, target: float, threshold: float) -> float:
    """The largest Δ ≤ target − beta with Δ E[U] + log E[exp(−ΔU)] ≤ threshold, expectations
    weighted by the normalized ``log_weights`` (module doc); the function is convex and increasing."""
    u = torch.as_tensor(energies, dtype=torch.float64)
    log_w = torch.log_softmax(torch.as_tensor(log_weights, dtype=torch.float64), 0)
    mean_u = torch.exp(log_w) @ u

    def increase(delta: float) -> float:
        return float(delta * mean_u + torch.logsumexp(log_w - delta * u, 0))

    high = target - beta
    if increase(high) <= threshold:
        return high
    low = 0.0
    for _ in range(BISECTIONS):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if increase(middle) <= threshold else (low, middle)
    return low


class LangevinWalkers:
    """Walkers x (n, dim) moved by one Metropolis-adjusted Langevin step per call (Roberts & Tweedie 1996)
    on exp(−βU), preconditioned by the model's ``scale`` s:

        x' = x − h s² β∇U(x) + √(2h) s ξ,   accepted with probability min(1, p(x') k(x | x') / (p(x) k(x' | x))),

    k the Gaussian proposal density. log h moves by 0.1 (acceptance rate − 0.574) per step (the optimal
    MALA rate, Roberts & Rosenthal 1998), h ≤ :data:`MAX_STEP`. A non-finite energy is rejected."""

    def __init__(self, x: torch.Tensor, scale: torch.Tensor):
        self.x, self.scale, self.log_step = x.clone(), scale, math.log(MAX_STEP)
        self.u, self.grad = None, None

    @staticmethod
    def _evaluate(energy: Energy, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            u = energy(x)
            (grad,) = torch.autograd.grad(u.sum(), x)
        return u.detach(), grad.detach()

    def step(self, energy: Energy, beta: float, generator: torch.Generator) -> torch.Tensor:
        """One MALA step at inverse temperature ``beta``; returns the walkers (detached)."""
        if self.u is None:
            self.u, self.grad = self._evaluate(energy, self.x)
        h, s = math.exp(self.log_step), self.scale
        noise = torch.randn(self.x.shape, generator=generator, dtype=torch.float64).to(self.x.device)
        drift = self.x - h * s**2 * beta * self.grad
        proposal = drift + math.sqrt(2 * h) * s * noise
        u, grad = self._evaluate(energy, proposal)
        back = proposal - h * s**2 * beta * grad
        log_ratio = (-beta * (u - self.u) - (((self.x - back) / s) ** 2).sum(-1) / (4 * h)
                     + (((proposal - drift) / s) ** 2).sum(-1) / (4 * h))
        uniform = torch.rand(len(u), generator=generator, dtype=torch.float64).to(self.x.device)
        accept = (torch.log(uniform) < log_ratio) & torch.isfinite(u)
        self.x = torch.where(accept[:, None], proposal, self.x)
        self.u = torch.where(accept, u, self.u)
        self.grad = torch.where(accept[:, None], grad, self.grad)
        rate = accept.double().mean().item()
        self.log_step = min(self.log_step + 0.1 * (rate - TARGET_ACCEPTANCE), math.log(MAX_STEP))
        return self.x


class ReverseKL(LatentVariableModel):
    """Generator q(x) = ∫ q(x|z) q(z) dz trained by reverse KL on an energy (module doc).

    Parameters
    ----------
    latent_dim, widths : as for :class:`~.vae.VAE` (Tables 1–2).
    n_epochs : the most epochs, one Adam step each; batch_size: joint draws (x, z) (energy evaluations)
        per epoch.
    beta_start, threshold, temper_every : tempering (module doc).
    epochs_at_target : epochs trained at the target β before training stops.
    alpha : weight of the forward (data) term of the mixed objective; 0 without data.
    coverage, n_walkers : weight γ of the forward term on Langevin walkers and their number (module doc);
        ``coverage = 0`` trains on reverse KL alone.
    importance_samples : K of the data term's bound (:mod:`.model`; the walkers' term is the ELBO). At 1 (the
        ELBO) a rare well's few states are left almost empty: on the double well at α = 0.99 the generator put
        5e-5 to 2e-3 of its draws there against the exact 8.3e-3 (seeds 0–3), and 2e-3 to 1.1e-2 at K = 8.
    scale : characteristic length(s) of x without data (x = scale · x̃); with data the
        standardization of X is used.
    max_rejected : consecutive rejected epochs (non-finite energy, loss or gradient) that stop training.
    device : ``"cpu"`` or ``"cuda"``.

    Learned attributes: ``networks_``, ``data_``, ``dim_``, ``coords_``, ``schedule_`` ((epochs, betas)
    of each tempering increase), ``history_`` (``loss``: mean ℓ_r at β_s, ``beta``; with data
    ``forward``: mean ℓ_f), ``training_`` (seed, β, energy evaluations — the batches' and the walkers',
    each walker evaluated with its force once at the start and once per epoch —, rejected steps, seconds).
    """

    method = "reverse_kl"

    def __init__(self, *, latent_dim: int = 2, widths=WIDTHS, n_epochs: int = 10_000, batch_size: int = 256,
                 lr: float = 3e-3, beta_start: float = 1e-10, threshold: float = 2e-3, temper_every: int = 50,
                 epochs_at_target: int = 500, alpha: float = 0.0, coverage: float = 0.1, n_walkers: int = 256,
                 importance_samples: int = 8, scale=1.0, max_rejected: int = 50, device: str | torch.device = "cpu"):
        for name, value in (("beta_start", beta_start), ("threshold", threshold)):
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name} must be a finite positive number, got {value!r}")
        if not 0 <= alpha < 1:
            raise InputError(f"alpha weighs the forward (data) term: it must lie in [0, 1), got {alpha!r}")
        if not 0 <= coverage < 1:
            raise InputError(f"coverage weighs the reweighted forward term: it must lie in [0, 1), got {coverage!r}")
        scale_given, scale = scale, np.atleast_1d(np.asarray(scale, dtype=float))
        if scale.ndim != 1 or not (np.isfinite(scale).all() and (scale > 0).all()):
            raise InputError("scale must be positive and finite (a number or one per coordinate), "
                             f"got {scale.tolist()}")
        temper_every = checked_count(temper_every, "temper_every")
        epochs_at_target = checked_count(epochs_at_target, "epochs_at_target", minimum=0)
        max_rejected = checked_count(max_rejected, "max_rejected")
        self._set_training(latent_dim=latent_dim, widths=widths, n_epochs=n_epochs, batch_size=batch_size, lr=lr,
                           importance_samples=importance_samples, device=device)
        self.beta_start, self.threshold, self.temper_every = float(beta_start), float(threshold), temper_every
        self.epochs_at_target, self.alpha, self.max_rejected = epochs_at_target, float(alpha), max_rejected
        self.coverage, self.n_walkers = float(coverage), checked_count(n_walkers, "n_walkers")
        self.scale = float(scale[0]) if np.ndim(scale_given) == 0 else tuple(scale.tolist())

    def fit(self, energy: Energy, *, dim: int, seed: SeedLike, beta: float = 1.0, X=None, coords=None,
            progress: bool = True) -> ReverseKL:
        """Train on ``energy`` (x (n, dim) tensor → (n,)) at inverse temperature ``beta``; with
        states ``X`` (N, dim) and ``alpha`` > 0, on the mixed objective. Returns self."""
        if not callable(energy):
            raise InputTypeError(f"energy must be a callable x (n, dim) tensor -> (n,) tensor, got {energy!r}")
        dim = checked_count(dim, "dim")
        if not (math.isfinite(beta) and beta >= self.beta_start):
            raise InputError(f"beta must be finite and >= beta_start = {self.beta_start:g}, got {beta!r}")
        if (X is None) != (self.alpha == 0):
            raise InputError("the mixed objective needs both data X and 0 < alpha < 1; pure reverse KL needs "
                             f"neither (got alpha = {self.alpha:g} and X {'missing' if X is None else 'given'})")
        if X is not None:
            X = checked_states(X)
            if X.shape[1] != dim:
                raise InputError(f"X has {X.shape[1]} coordinates but dim = {dim}")
            scaler = DataScaler.fit(X)
        else:
            scale = np.atleast_1d(self.scale)
            if len(scale) not in (1, dim):
                raise InputError(f"scale has {len(scale)} values for {dim} coordinates")
            scale = np.broadcast_to(scale, (dim,))
            scaler = DataScaler((0.0,) * dim, tuple(float(s) for s in scale))
        self._initialize(dim, scaler, coords, seed)
        data = torch.as_tensor(X, device=self.device) if X is not None else None
        generator = torch.Generator().manual_seed(child_int(seed, 1))
        parameters = list(self.networks_.parameters())
        optimizer = torch.optim.Adam(parameters, lr=self.lr, foreach=True)
        guard = StepGuard(self.max_rejected)
        history = {"loss": [], "beta": []} | ({"forward": []} if X is not None else {})
        beta_s, arrived, walkers = min(self.beta_start, beta), None, None
        schedule = [(0, beta_s)]
        self.training_ = {"seed": repr(seed), "beta": float(beta), "energy": repr(energy),
                          "n_samples": 0 if X is None else len(X)}
        start = time.perf_counter()
        self.networks_.train()
        with self._progress(progress) as bar:
            for step in range(self.n_epochs):
                if arrived is None and beta_s >= beta:
                    arrived = step
                if arrived is not None and step - arrived >= self.epochs_at_target:
                    break
                z = self.normal((self.batch_size, self.latent_dim), generator)
                x, u, terms = self.reverse_terms(energy, beta_s, z, self.normal((self.batch_size, dim), generator))
                loss = terms.mean()
                if self.coverage > 0:
                    if walkers is None:
                        walkers = LangevinWalkers(x[: self.n_walkers].detach(), self._scale)
                    states = walkers.step(energy, beta_s, generator)
                    covering = self.forward_terms(states, self.normal((len(states), self.latent_dim), generator)).mean()
                    loss = self.coverage * covering + (1 - self.coverage) * loss
                if data is not None:
                    batch = data[torch.randint(len(X), (self.batch_size,), generator=generator).to(self.device)]
                    forward = self.forward_terms(batch, self._forward_noise(len(batch), generator), beta_s / beta)
                    history["forward"].append(forward.mean().item())
                    loss = (self.alpha * forward.mean() + (1 - self.alpha) * loss
                            + self.alpha * (1 - self.coverage) * self.encoder_terms(x.detach(), z).mean())
                finite = bool(torch.isfinite(u).all())
                accepted = guard.apply(step, loss, finite, optimizer, parameters)
                history["loss"].append(terms.mean().item() if finite else math.nan)
                history["beta"].append(beta_s)
                if accepted and beta_s < beta and (step + 1) % self.temper_every == 0:
                    beta_s = min(beta, beta_s + tempering_increment(u.detach(), -terms.detach(), beta_s, beta,
                                                                    self.threshold))
                    schedule.append((step + 1, beta_s))
                bar.update(1)
                if step % 100 == 0:
                    bar.set_postfix(beta=f"{beta_s:.3g}", loss=f"{history['loss'][-1]:.3f}")
        self.schedule_ = (np.array([s for s, _ in schedule]), np.array([b for _, b in schedule]))
        walker_evaluations = (len(history["loss"]) + 1) * self.n_walkers if walkers is not None else 0
        self.training_.update(energy_evaluations=len(history["loss"]) * self.batch_size + walker_evaluations,
                              reached_step=arrived,
                              schedule={"step": self.schedule_[0].tolist(), "beta": self.schedule_[1].tolist()})
        self._finish(history, start, guard)
        if arrived is None:
            warnings.warn(f"tempering reached beta = {beta_s:.4g} of {beta:g} in {self.n_epochs} epochs: "
                          "raise n_epochs or threshold", TemperingWarning, stacklevel=2)
        return self
