"""What both variational coarse-graining models share: the latent-variable model, its loss terms,
its use as a Lift (decoder) and a Restrict (encoder mean), importance sampling, persistence.

    q(x) = ∫ q(x|z) q(z) dz,   q(z) = N(0, I_latent),   q(x|z) = N(μ_θ(z), diag σ_θ²),
    r(z|x) = N(μ_φ(x), diag σ_φ²(x))   (networks: :mod:`.networks`)

The networks see standardized states x̃ = (x − shift)/scale; densities are in physical units
(log q(x|z) includes −Σ log scale). Per-sample loss terms, both upper bounds in expectation:

- forward (data x): ℓ_f = −log q(x|z) + KL(r(·|x) || q(z)), z ~ r(z|x)   (E ℓ_f ≥ −log q(x)), or with
  K = ``importance_samples`` > 1 the tighter ℓ_f = −log (1/K) Σ_k q(x|z_k) q(z_k)/r(z_k|x);
- reverse (energy U at inverse temperature β): ℓ_r = βU(x) + log q(x|z) + log q(z) − log r(z|x),
  (x, z) ~ q(x|z) q(z)   (E ℓ_r ≥ −log Z, Z = ∫ exp(−βU)).

Both are drawn by reparametrization (z = μ + σ ε, x = μ_θ(z) + σ_θ ε'), so gradients of U reach
θ through the forces −∇U (autograd of ``energy``).

An energy is a callable ``energy(x) -> (n,)`` on float64 torch tensors ``(n, dim)``, in the same
units as 1/β, differentiable by torch autograd (wrap an external force field in a
``torch.autograd.Function`` whose backward returns −forces).

Both models follow the estimator convention of :mod:`eqfree.base` (hyperparameters by name, fitted
state in attributes ending in ``_``, :meth:`~eqfree.base.Estimator.save` and :func:`eqfree.base.load`).
One training epoch is one Adam step on a batch.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from ...base import Estimator, restored
from ...errors import InputError
from ...evolve import coordinate_names
from ...scaling import DataScaler
from ...seeding import SeedLike, child_int
from ...validation import checked_count
from .importance import ImportanceSample
from .networks import Decoder, Encoder, gaussian_log_density, kl_to_standard_normal, standard_normal_log_density

Energy = Callable[[torch.Tensor], torch.Tensor]
#: K of :meth:`LatentVariableModel.reweight`: latents per draw in the estimate of q(x) (:mod:`.importance`)
REWEIGHT_SAMPLES = 16
#: draws per block of that estimate (memory ∝ K · REWEIGHT_BLOCK; a constant, so a seed gives the same numbers)
REWEIGHT_BLOCK = 8192


class RejectedStepWarning(UserWarning):
    """Training steps were skipped because the energy, the loss or a gradient was not finite."""


def checked_states(X, name: str = "X") -> np.ndarray:
    """(N, dim) finite float64 states, N ≥ 2."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] < 2:
        raise InputError(f"{name} must have shape (N, dim) with N >= 2 samples, got {X.shape}")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise InputError(f"{name} has non-finite values in {bad.sum()} sample(s) (first at index "
                         f"{int(np.flatnonzero(bad)[0])}): drop or repair them before fitting")
    return X


class EncoderRestriction:
    """The encoder mean x ↦ μ_φ(x) as a :class:`~eqfree.Restrict`: (..., dim) → (..., latent), with
    ``names`` z1, z2, ..."""

    names: list[str]

    def __init__(self, model: LatentVariableModel):
        self.model = model
        self.names = [f"z{i + 1}" for i in range(model.latent_dim)]

    def __call__(self, x) -> np.ndarray:
        return self.model.encode(x)


class StepGuard:
    """Rejects optimizer steps whose loss, energies or gradients are not finite; counts them."""

    def __init__(self, max_consecutive: int):
        self.max_consecutive = max_consecutive
        self.rejected: list[int] = []
        self._run = 0

    def apply(self, step: int, loss: torch.Tensor, inputs_finite: bool, optimizer, parameters) -> bool:
        """Backpropagate ``loss`` and step ``optimizer`` if everything is finite; else reject."""
        optimizer.zero_grad(set_to_none=True)
        ok = inputs_finite and bool(torch.isfinite(loss))
        if ok:
            loss.backward()
            grads = [p.grad for p in parameters if p.grad is not None]
            ok = bool(torch.isfinite(torch.stack([g.sum() for g in grads]).sum()))
        if ok:
            optimizer.step()
            self._run = 0
            return True
        optimizer.zero_grad(set_to_none=True)
        self.rejected.append(step)
        self._run += 1
        if self._run >= self.max_consecutive:
            raise FloatingPointError(
                f"{self._run} consecutive training steps (up to step {step}) had a non-finite energy, loss or "
                "gradient and were rejected; check that the energy is finite wherever the model samples "
                "(e.g. start tempering from a smaller beta_start or lower lr)")
        return False

    def record(self) -> dict:
        """The count of rejected steps and the first of them, for ``training_``."""
        return {"rejected_steps": len(self.rejected), "first_rejected": self.rejected[0] if self.rejected else None}

    def warn(self, n_steps: int) -> None:
        """A :class:`RejectedStepWarning` when any of the ``n_steps`` training steps was rejected."""
        if self.rejected:
            warnings.warn(f"{len(self.rejected)} of {n_steps} training steps were rejected (non-finite energy, loss "
                          f"or gradient; first at step {self.rejected[0]}); they are counted in training_"
                          "['rejected_steps']", RejectedStepWarning, stacklevel=3)


class LatentVariableModel(Estimator):
    """Base class of :class:`~.vae.VAE` and :class:`~.reverse_kl.ReverseKL` (module doc).

    As a :class:`~eqfree.Lift` it lifts a latent value z, drawn from q(z) = N(0, I) over all of the
    latent space: ``valid_range`` is None."""

    method: ClassVar[str]
    valid_range: ClassVar[None] = None

    def _set_training(self, *, latent_dim: int, widths, n_epochs: int, batch_size: int, lr: float,
                      importance_samples: int, device: str | torch.device) -> None:
        """Check and store the hyperparameters both models have."""
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1:
            raise InputError(f"the latent dimension must be an integer >= 1, got latent_dim = {latent_dim!r}")
        widths = tuple(int(w) for w in widths)
        if len(widths) != 3 or min(widths) < 1:
            raise InputError(f"widths must be three positive integers (d1, d2, d3 of Tables 1-2), got {widths!r}")
        if not (np.isfinite(lr) and lr > 0):
            raise InputError(f"lr must be a finite positive number, got {lr!r}")
        importance_samples = checked_count(importance_samples, "importance_samples")
        n_epochs, batch_size = checked_count(n_epochs, "n_epochs"), checked_count(batch_size, "batch_size")
        self.latent_dim, self.widths, self.n_epochs, self.batch_size = int(latent_dim), widths, n_epochs, batch_size
        self.lr, self.importance_samples, self.device = float(lr), importance_samples, str(torch.device(device))

    # -- set-up -------------------------------------------------------------------------------------
    def _initialize(self, dim: int, scaler: DataScaler, coords, seed: SeedLike) -> None:
        coords = coordinate_names(int(dim), coords)  # checked before any fitted state is set
        self.dim_, self.data_, self.coords_ = int(dim), scaler, coords
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(child_int(seed, 0))
            self.networks_ = self._build()

    def _build(self) -> torch.nn.ModuleDict:
        networks = torch.nn.ModuleDict({"encoder": Encoder(self.dim_, self.latent_dim, self.widths),
                                        "decoder": Decoder(self.latent_dim, self.dim_, self.widths)})
        return networks.double().to(self.device)

    def set_state(self, state: dict) -> None:
        """The saved state, with the networks rebuilt from their state dict on ``device``."""
        state = dict(state)
        weights = state.pop("networks_")
        super().set_state(state)
        self.networks_ = restored(self._build(), weights)

    @property
    def _shift(self) -> torch.Tensor:
        return torch.as_tensor(self.data_.mean, dtype=torch.float64, device=self.device)

    @property
    def _scale(self) -> torch.Tensor:
        return torch.as_tensor(self.data_.scale, dtype=torch.float64, device=self.device)

    def unstandardize(self, x_tilde: torch.Tensor) -> torch.Tensor:
        """x = shift + scale x̃: the networks' units to physical states (torch, float64)."""
        return self._shift + self._scale * x_tilde

    def normal(self, shape, generator: torch.Generator) -> torch.Tensor:
        """Standard normal draws from a CPU generator, moved to the device (same numbers on any device)."""
        return torch.randn(shape, generator=generator, dtype=torch.float64).to(self.device)

    def prior_precisions(self) -> dict[str, torch.Tensor]:
        """Prior precisions of decoder-mean parameters by name (``decoder.mean.<name>``); none here
        (a :class:`~.vae.VAE` with ARD adds its ⟨τ_j⟩)."""
        self.check_fitted()
        return {}

    # -- loss terms (torch, physical units) ---------------------------------------------------------
    def forward_terms(self, x: torch.Tensor, noise: torch.Tensor, kl_weight: float = 1.0) -> torch.Tensor:
        """ℓ_f per sample (n,) for states ``x`` (n, dim), with z = μ_φ + σ_φ ⊙ ``noise``.

        ``noise`` (n, latent): the ELBO with the KL term in closed form. ``noise`` (K, n, latent):
        the importance-weighted bound ℓ_f = −log (1/K) Σ_k q(x|z_k) q(z_k)/r(z_k|x) (Burda et al.
        2016), tighter as K grows. ``kl_weight`` < 1 scales the prior-over-encoder term (warm-up;
        ℓ_f is a bound only at 1)."""
        z, log_likelihood, mean, log_var = self._encoded(x, noise)
        if noise.ndim == 2:
            return kl_weight * kl_to_standard_normal(mean, log_var) - log_likelihood
        log_ratio = standard_normal_log_density(z) - gaussian_log_density(z, mean, log_var)
        return math.log(len(noise)) - torch.logsumexp(log_likelihood + kl_weight * log_ratio, dim=0)

    def latent_draws(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Latents z = μ_φ(x) + σ_φ(x) ⊙ ``noise`` ((..., n, latent) for states ``x`` (n, dim)), with
        log q(x|z) and log r(z|x), each (..., n): the terms of every importance-sampled q(x) whatever q(z)."""
        z, log_likelihood, mean, log_var = self._encoded(x, noise)
        return z, log_likelihood, gaussian_log_density(z, mean, log_var)

    def _encoded(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(z, log q(x|z), μ_φ(x), log σ_φ²(x)) with z = μ_φ + σ_φ ⊙ noise."""
        decoder = self.networks_["decoder"]
        x_tilde = (x - self._shift) / self._scale
        mean, log_var = self.networks_["encoder"](x_tilde)
        z = mean + torch.exp(0.5 * log_var) * noise
        log_likelihood = gaussian_log_density(x_tilde, decoder(z), decoder.log_var) - torch.log(self._scale).sum()
        return z, log_likelihood, mean, log_var

    def _forward_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Encoder noise for ``forward_terms``: (n, latent) for the ELBO, (K, n, latent) for K > 1."""
        k, latent = self.importance_samples, self.latent_dim
        return self.normal((n, latent) if k == 1 else (k, n, latent), generator)

    def reverse_terms(self, energy: Energy, beta: float, z: torch.Tensor, noise: torch.Tensor):
        """(x, U(x), ℓ_r) per sample for latent draws ``z`` (n, latent) and decoder ``noise`` (n, dim)."""
        encoder, decoder = self.networks_["encoder"], self.networks_["decoder"]
        x_tilde = decoder(z) + torch.exp(0.5 * decoder.log_var) * noise
        x = self._shift + self._scale * x_tilde
        u = energy(x)
        if u.shape != (len(x),):
            raise InputError(f"the energy returned shape {tuple(u.shape)} for states {tuple(x.shape)}; "
                             f"it must return one value per state, shape ({len(x)},)")
        log_q_x = -0.5 * (noise**2 + decoder.log_var + torch.log(2 * torch.pi * self._scale**2)).sum(-1)
        mean, log_var = encoder(x_tilde)
        loss = beta * u + log_q_x + standard_normal_log_density(z) - gaussian_log_density(z, mean, log_var)
        return x, u, loss

    def encoder_terms(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """−log r(z|x) per sample (n,) at joint draws (x, z) of the generator: the encoder's part of ℓ_r,
        whose minimum over r is the posterior q(z|x) (the sleep phase of wake–sleep, Hinton et al. 1995)."""
        return -gaussian_log_density(z, *self._posterior(x))

    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ_φ(x), log σ_φ²(x)) of r(z|x) for physical states x."""
        return self.networks_["encoder"]((x - self._shift) / self._scale)

    # -- operators (numpy in, numpy out) ------------------------------------------------------------
    def sample(self, n: int, *, seed: SeedLike) -> np.ndarray:
        """n states (n, dim) from q(x) = ∫ q(x|z) q(z) dz."""
        self.check_fitted()
        n = checked_count(n, "n")
        generator = torch.Generator().manual_seed(child_int(seed, 0))
        z = self.normal((n, self.latent_dim), generator)
        return self._decode_noisy(z, self.normal((n, self.dim_), generator))

    def __call__(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        """The :class:`~eqfree.Lift` interface: n states (n, dim) from q(x|z) at one latent value z (latent,)."""
        self.check_fitted()
        z = np.asarray(z, dtype=float).reshape(-1)
        latent = self.latent_dim
        if z.shape != (latent,) or not np.isfinite(z).all():
            raise InputError(f"lifting takes one finite latent value of shape ({latent},); got z = {z.tolist()}")
        n = checked_count(n, "n")
        generator = torch.Generator().manual_seed(child_int(seed, 0))
        zs = torch.as_tensor(z, dtype=torch.float64, device=self.device).expand(n, latent)
        return self._decode_noisy(zs, self.normal((n, self.dim_), generator))

    @torch.inference_mode()
    def _decode_noisy(self, z: torch.Tensor, noise: torch.Tensor) -> np.ndarray:
        decoder = self.networks_["decoder"]
        x_tilde = decoder(z) + torch.exp(0.5 * decoder.log_var) * noise
        return (self._shift + self._scale * x_tilde).cpu().numpy()

    @torch.inference_mode()
    def decode(self, z) -> np.ndarray:
        """The decoder mean μ_θ(z) in physical units: (..., latent) → (..., dim)."""
        self.check_fitted()
        z = torch.as_tensor(np.asarray(z, dtype=float), device=self.device)
        return (self._shift + self._scale * self.networks_["decoder"](z)).cpu().numpy()

    @torch.inference_mode()
    def encode(self, x) -> np.ndarray:
        """The encoder mean μ_φ(x): (..., dim) → (..., latent)."""
        self.check_fitted()
        x = np.asarray(x, dtype=float)
        if x.shape[-1] != self.dim_:
            raise InputError(f"states have {x.shape[-1]} coordinates; the model encodes {self.dim_}")
        x = torch.as_tensor(x, device=self.device)
        return self._posterior(x)[0].cpu().numpy()

    def encoder_restriction(self) -> EncoderRestriction:
        """The encoder mean as a :class:`~eqfree.Restrict` with ``names`` z1, z2, ..."""
        self.check_fitted()
        return EncoderRestriction(self)

    @torch.inference_mode()
    def reweight(self, energy: Energy, n: int, *, seed: SeedLike, beta: float = 1.0,
                 importance_samples: int = REWEIGHT_SAMPLES) -> ImportanceSample:
        """n joint draws (x, z) ~ q(x|z) q(z) with importance weights to exp(−βU) (:mod:`.importance`);
        each weight's q(x) is estimated from the draw's own z and K − 1 = ``importance_samples`` − 1
        latents drawn from r(z|x) (K = 1: the joint weight)."""
        self.check_fitted()
        n, k = checked_count(n, "n"), checked_count(importance_samples, "importance_samples")
        generator = torch.Generator().manual_seed(child_int(seed, 0))
        z = self.normal((n, self.latent_dim), generator)
        x, u, loss = self.reverse_terms(energy, float(beta), z, self.normal((n, self.dim_), generator))
        log_weights = -loss
        if k > 1:
            log_q = torch.cat([self._log_marginal(x[i:i + REWEIGHT_BLOCK], z[i:i + REWEIGHT_BLOCK], k, generator)
                               for i in range(0, n, REWEIGHT_BLOCK)])
            log_weights = -float(beta) * u - log_q
        return ImportanceSample(x.cpu().numpy(), z.cpu().numpy(), log_weights.cpu().numpy(), float(beta))

    def _log_marginal(self, x: torch.Tensor, z: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        """log q̂(x) = log (1/K) Σ_k q(x|z_k) q(z_k)/r(z_k|x) with z_1 = ``z`` (drawn with x) and
        z_2..z_K ~ r(z|x): the K-sample bound of :meth:`forward_terms` with its first latent replaced."""
        mean, log_var = self._posterior(x)
        own = (z - mean) * torch.exp(-0.5 * log_var)  # the encoder noise that gives z
        noise = torch.cat([own[None], self.normal((k - 1, len(x), self.latent_dim), generator)])
        return -self.forward_terms(x, noise)

    # -- training helpers ---------------------------------------------------------------------------
    def _progress(self, progress: bool):
        return tqdm(total=self.n_epochs, disable=not progress, unit="epoch", desc=f"training {self.method}")

    def _finish(self, history: dict[str, list], start: float, guard: StepGuard) -> None:
        self.networks_.eval()
        self.history_ = {name: np.asarray(values, dtype=float) for name, values in history.items()}
        self.training_.update(seconds=time.perf_counter() - start, **guard.record())
        guard.warn(len(next(iter(history.values()), [])))
