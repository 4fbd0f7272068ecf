"""The continuous conditional GAN (CcGAN, Ding et al., ICLR 2021) as used by Crabtree, Bello-Rivas,
Ferguson & Kevrekidis ("GANs and closures: micro-macro consistency in multiscale modeling"), appendix A.

Labels ỹ ∈ [0, 1] (training range). Each epoch (one discriminator and one generator step; the
paper's "epochs" count these steps) draws a batch of target labels

    t_j = ỹ_j + ε_j,   ỹ_j uniform over the distinct training labels,   ε_j ~ N(0, σ²),

with σ = 1.06 · std(ỹ) · N^(−1/5) (Silverman) unless given, and redraws ε_j until the vicinity of
t_j holds a training label. Vicinities, with κ = m_κ · (largest gap between sorted distinct
labels) unless given:

- hard (HVDL, eq. A.1): |ỹ − t_j| ≤ κ, weights 1;
- soft (SVDL): weights w = exp(−ν (ỹ − t_j)²), ν = 1/κ², cut where w < 10⁻³.

A real sample is drawn uniformly from the vicinity of t_j, a fake label uniformly over it, and the
discriminator scores both against t_j:

    L_D = −mean_j w_j^r log D(x_j^r, t_j) − mean_j w_j^g log(1 − D(G(ζ_j, y_j^g), t_j)),
    L_G = −mean_j log D(G(ζ_j, t_j), t_j),          ζ_j ~ N(0, I_noise_dim).

Networks: :data:`~eqfree.lift.generative.networks.PRESETS` (Tables 1–3); Adam(β1 = 0.5,
β2 = 0.999), learning rate 1e-4, batch 512 by default. By default both learning rates fall linearly to
zero over the epochs, lr_k = lr (1 − k/n_epochs), and the trained generator is the uniform average of the
generator's weights over the second half of the epochs (stochastic weight averaging, Izmailov, Podoprikhin,
Garipov, Vetrov & Wilson, UAI 2018; Yazıcı et al., ICLR 2019, for GANs), with its BatchNorm statistics
re-estimated on target labels. The last weights alone are not the trained law: at any rate the generator's
output at a label keeps oscillating, and as the rate falls to zero it freezes wherever the oscillation
happens to be. On eq. (2.1), x2 | x1 = 10, seeds 10–19 each on trajectories of its own, errors of the
generator's mean in standard errors of 4000 draws (root mean square): last weights 2.8, an exponential
average (decay 0.999) 1.6, the uniform average over the last 1250 of 5000 epochs 1.4 — of which ≈ 1.0 is
the data's own, the least-squares line through the states at the edge of their labels; its variance
0.7 standard errors (1.6 %) below the law, 1.0 for the exponential average. Draws within 3 standard errors
of both moments (benchmarks/seed_robustness.py; issue 26 asks 9 of 10), seeds 0–9 and 10–19 on 50 walkers'
data: 9 and 8 of 10 averaging over the second half, 9 and 9 over the last quarter, 8 and 8 with the
exponential average; on the second half and 200 walkers' data (the data's own error at the edge halved):
9 and 10 of 10, the generator's own mean +0.33 ± 0.55 and variance −0.54 ± 0.36 standard errors (1.2 % low). The
second half is the default because the last quarter leaves more of the oscillation in a wide network: the
alanine-dipeptide CcGAN (tests/test_alanine_generative.py) put 0.942 of its bonds within 0.01 nm of the
force field at ψ = 4.0 with it, 0.960 with the second half (the specification: 0.95).

Molecules (Crabtree et al., section 5): with ``align_to`` = a reference conformation Y (flat, 3 n_atoms),
the training states are Kabsch-aligned onto Y before scaling, and every generated state is aligned
the same way before the discriminator sees it and before it is returned,

    x̃ ↦ (A(x̃ ⊙ s + m; Y) − m) / s,   A(x; Y) = (x − x̄) R(x, Y) + Ȳ   (:func:`~eqfree.restrict.kabsch_align`),

with (m, s) the data scaling — differentiable through the SVD, so the generator is never penalized
for a rigid motion that carries no information.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn.functional import logsigmoid

from ...errors import InputError
from ...restrict.alignment import kabsch_align
from ...validation import checked_count
from .base import ConditionalGenerator, checked_training_data
from .networks import architecture, fold_batchnorm, generator_network, mlp

SOFT_CUTOFF = 1e-3
SAMPLE_BLOCK = 8192
BN_BATCHES = 50  # batches of target labels that re-estimate BatchNorm statistics after averaging


def silverman_bandwidth(labels: np.ndarray) -> float:
    """1.06 · std · N^(−1/5): the Gaussian kernel bandwidth of Silverman's rule."""
    return 1.06 * float(np.std(labels)) * len(labels) ** -0.2


def largest_gap(labels: np.ndarray) -> float:
    """The largest gap between sorted distinct labels."""
    return float(np.diff(np.unique(labels)).max())


class CcGAN(ConditionalGenerator):
    """Continuous conditional GAN lift (module doc).

    Parameters
    ----------
    loss : ``"hard"`` (HVDL) or ``"soft"`` (SVDL) vicinal discriminator loss.
    noise_dim : dimension of the generator's Gaussian noise (Crabtree et al., section 6.1: below the
        dimension of the conditional law, the output collapses onto a lower-dimensional subset).
    preset : networks, ``"table1"``, ``"table2"``, ``"table3"`` or a custom mapping
        (:func:`~eqfree.lift.generative.networks.architecture`).
    n_epochs, batch_size, lr, betas : training; one epoch is one discriminator and one generator
        optimizer step on a batch of ``batch_size`` target labels (the paper's "epochs").
    average_from : the trained generator is the uniform average of the generator's weights over the
        epochs from ``average_from · n_epochs`` on (BatchNorm statistics then re-estimated on target
        labels; module doc); 1 keeps the last weights, as in the paper.
    lr_schedule : ``"linear"`` (default): both learning rates fall linearly to zero over ``n_epochs``
        (module doc); ``"constant"``: the paper's fixed rate.
    sigma, kappa : label-noise bandwidth and vicinity half-width in scaled labels (None: the rules
        in the module doc); ``m_kappa`` multiplies the largest label gap.
    align_to : a reference conformation (3 n_atoms,) onto which training and generated states are
        Kabsch-aligned (module doc); None (default) leaves states as they are.
    device : ``"cpu"`` or ``"cuda"``.
    """

    method = "ccgan"

    def __init__(self, *, loss: str = "hard", noise_dim: int = 1, preset: str | dict = "table1", n_epochs: int = 5000,
                 batch_size: int = 512, lr: float = 1e-4, betas=(0.5, 0.999), sigma: float | None = None,
                 kappa: float | None = None, m_kappa: float = 2.0, average_from: float = 0.5,
                 lr_schedule: str = "linear", align_to=None, device: str | torch.device = "cpu"):
        if loss not in ("hard", "soft"):
            raise InputError(f"loss must be 'hard' (HVDL) or 'soft' (SVDL), got {loss!r}")
        if lr_schedule not in ("linear", "constant"):
            raise InputError(f"lr_schedule must be 'linear' (to zero over n_epochs) or 'constant', got {lr_schedule!r}")
        if not 0 <= average_from <= 1:
            raise InputError(f"average_from must lie in [0, 1] (the fraction of n_epochs after which the weights are "
                             f"averaged; 1 keeps the last weights), got {average_from!r}")
        for name, value in (("lr", lr), ("m_kappa", m_kappa), ("sigma", sigma), ("kappa", kappa)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InputError(f"{name} must be a finite positive number, got {value!r}")
        architecture(preset)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise InputError(f"betas must be two numbers in [0, 1) (Adam's β1, β2), got {betas!r}")
        if align_to is not None:
            align_to = np.asarray(align_to, dtype=float)
            if align_to.ndim != 1 or align_to.size < 9 or align_to.size % 3 or not np.isfinite(align_to).all():
                raise InputError("align_to must be a finite reference conformation, flat (3 n_atoms,) with at least "
                                 f"3 atoms, got an array of shape {align_to.shape}")
            align_to = align_to.tolist()
        self._set_training(n_epochs, batch_size, device)
        self.loss, self.noise_dim, self.preset = loss, checked_count(noise_dim, "noise_dim"), preset
        self.lr, self.betas = float(lr), tuple(float(b) for b in betas)
        self.sigma, self.kappa, self.m_kappa, self.average_from = sigma, kappa, float(m_kappa), float(average_from)
        self.lr_schedule = lr_schedule
        self.align_to = align_to

    def fit(self, X, y, *, seed, **options) -> CcGAN:
        """:meth:`ConditionalGenerator.fit` on the states Kabsch-aligned onto ``align_to`` when it is set."""
        reference = self.align_to
        if reference is not None:
            X, y = checked_training_data(X, y)
            if X.shape[1] != len(reference):
                raise InputError(f"align_to has {len(reference)} coordinates but the states have {X.shape[1]}: "
                                 "give a reference conformation of the same molecule")
            X = kabsch_align(X, reference)[0]
        return super().fit(X, y, seed=seed, **options)

    def _build(self, dim: int) -> nn.ModuleDict:
        generator_widths, activation, discriminator_widths = architecture(self.preset)
        return nn.ModuleDict({
            "generator": generator_network(self.noise_dim + 1, dim, generator_widths, activation),
            "discriminator": mlp(dim + 1, 1, discriminator_widths, "relu"),
        })

    def generate(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """G(ζ, ỹ) in scaled variables (aligned when ``align_to`` is set)."""
        return self._aligned(self.networks_["generator"](torch.cat([noise, labels[:, None]], dim=1)))

    def _aligned(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled states Kabsch-aligned onto ``align_to`` in physical units (module doc); x itself when unset."""
        if self.align_to is None:
            return x
        mean, scale = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (self.data_.mean, self.data_.scale))
        return (kabsch_align(x * scale + mean, self.align_to)[0] - mean) / scale

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The discriminator's logit, log D/(1 − D), of states x at scaled labels."""
        return self.networks_["discriminator"](torch.cat([x, labels[:, None]], dim=1))[:, 0]

    def _generate(self, labels, generator):
        """G with its BatchNorm folded into the Dense layers, on blocks of :data:`SAMPLE_BLOCK`
        samples so that the activations stay in cache (10⁵ samples about 3× faster than one pass)."""
        network = fold_batchnorm(self.networks_["generator"])
        noise = self.noise((len(labels), self.noise_dim), generator)
        return torch.cat([self._aligned(network(torch.cat([z, y[:, None]], dim=1)))
                          for z, y in zip(noise.split(SAMPLE_BLOCK), labels.split(SAMPLE_BLOCK))])

    def _train(self, x, y, generator, bar):
        order = torch.argsort(y)
        x, y = x[order], y[order]
        distinct = torch.unique(y)
        labels_np = y.cpu().numpy()
        sigma = self.sigma if self.sigma is not None else silverman_bandwidth(labels_np)
        kappa = self.kappa if self.kappa is not None else self.m_kappa * largest_gap(labels_np)
        nu = 1.0 / kappa**2
        half_width = kappa if self.loss == "hard" else math.sqrt(-math.log(SOFT_CUTOFF) / nu)
        self.training_.update(sigma=sigma, kappa=kappa, nu=nu, half_width=half_width)

        def uniform(n):
            return torch.rand(n, generator=generator, device=self.device)

        def targets(n):
            """Target labels with a non-empty vicinity, and the bounds of their vicinities in y."""
            t = distinct[torch.randint(len(distinct), (n,), generator=generator, device=self.device)]
            t = t + sigma * torch.randn(n, generator=generator, device=self.device)
            low = torch.searchsorted(y, t - half_width)
            high = torch.searchsorted(y, t + half_width, right=True)
            empty = high == low
            if empty.any():
                t[empty], low[empty], high[empty] = targets(int(empty.sum()))
            return t, low, high

        def weights(labels, t):
            return torch.ones_like(t) if self.loss == "hard" else torch.exp(-nu * (labels - t) ** 2)

        def noise(n):
            return torch.randn(n, self.noise_dim, generator=generator, device=self.device)

        net_g, net_d = self.networks_["generator"], self.networks_["discriminator"]
        optim_g = torch.optim.Adam(net_g.parameters(), lr=self.lr, betas=self.betas)
        optim_d = torch.optim.Adam(net_d.parameters(), lr=self.lr, betas=self.betas)
        end_factor = 0.0 if self.lr_schedule == "linear" else 1.0
        schedules = [torch.optim.lr_scheduler.LinearLR(optim, 1.0, end_factor, total_iters=self.n_epochs)
                     for optim in (optim_g, optim_d)]
        average_from = math.floor(self.average_from * self.n_epochs)
        average = torch.optim.swa_utils.AveragedModel(net_g) if average_from < self.n_epochs else None
        history = {"discriminator": [], "generator": []}
        b = self.batch_size
        for epoch in range(self.n_epochs):
            t, low, high = targets(b)
            real = low + (uniform(b) * (high - low)).long().clamp(max=high - low - 1)
            fake_labels = t + half_width * (2 * uniform(b) - 1)
            with torch.no_grad():
                fake = self.generate(noise(b), fake_labels)
            loss_d = -(weights(y[real], t) * logsigmoid(self.discriminate(x[real], t))).mean() \
                - (weights(fake_labels, t) * logsigmoid(-self.discriminate(fake, t))).mean()
            optim_d.zero_grad(set_to_none=True)
            loss_d.backward()
            optim_d.step()

            t, _, _ = targets(b)
            loss_g = -logsigmoid(self.discriminate(self.generate(noise(b), t), t)).mean()
            optim_g.zero_grad(set_to_none=True)
            loss_g.backward()
            optim_g.step()
            if average is not None and epoch >= average_from:
                average.update_parameters(net_g)
            for schedule in schedules:
                schedule.step()

            history["discriminator"].append(loss_d.detach())
            history["generator"].append(loss_g.detach())
            bar.update(1)
            if epoch % 100 == 0:
                bar.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}")
        if average is not None:  # averaged weights, and BatchNorm statistics recomputed for them
            net_g.load_state_dict(average.module.state_dict())
            inputs = [torch.cat([noise(b), targets(b)[0][:, None]], dim=1) for _ in range(BN_BATCHES)]
            torch.optim.swa_utils.update_bn(inputs, net_g)
        return history
