"""Multilayer perceptrons of appendix A (Tables 1–3) of Crabtree, Bello-Rivas, Ferguson & Kevrekidis, "GANs and
closures: micro-macro consistency in multiscale modeling", and a plain one for scores.

Generator: concat(noise ∈ R^n, label) → [Dense(w); BatchNorm; activation] per hidden width →
Dense(dim). Discriminator: concat(x, label) → [Dense(w); ReLU] per hidden width → Dense(1), a
logit (the tables' final sigmoid is applied inside the loss, as log σ, for numerical stability).
The tables list only x as the discriminator's input; the label is concatenated to it, as a
conditional discriminator needs.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import InputError

#: generator hidden widths, generator activation, discriminator hidden widths
PRESETS = {
    "table1": ((16, 32, 64, 128, 256), None, (100,) * 5),  # section 3 (eq. 2.1); BN only, no activation
    "table2": ((200,) * 7, "leaky_relu", (100,) * 6),  # sections 4 and 6 (half-moons, caps)
    "table3": ((64, 128, 256, 512, 1024), "leaky_relu", (100, 200, 200, 200, 200)),  # section 5 (alanine)
}

LEAKY_SLOPE = 0.2


def _activation(name: str | None) -> list[nn.Module]:
    return {None: [], "leaky_relu": [nn.LeakyReLU(LEAKY_SLOPE)], "relu": [nn.ReLU()], "silu": [nn.SiLU()]}[name]


def generator_network(n_in: int, n_out: int, widths, activation: str | None) -> nn.Sequential:
    """Dense → BatchNorm → activation per width, then a linear output layer."""
    layers, width_in = [], n_in
    for width in widths:
        layers += [nn.Linear(width_in, width), nn.BatchNorm1d(width), *_activation(activation)]
        width_in = width
    return nn.Sequential(*layers, nn.Linear(width_in, n_out))


def fold_batchnorm(network: nn.Sequential) -> nn.Sequential:
    """The same map in eval mode with each BatchNorm absorbed into the Dense layer before it:
    γ (Wx + b − μ)/√(v + ε) + β = W'x + b' with W' = s W, b' = s (b − μ) + β, s = γ/√(v + ε)
    (one pass less over the activations per layer, for sampling)."""
    layers = list(network)
    folded = []
    for layer in layers:
        if isinstance(layer, nn.BatchNorm1d) and folded and isinstance(folded[-1], nn.Linear):
            dense = folded.pop()
            scale = layer.weight / torch.sqrt(layer.running_var + layer.eps)
            merged = nn.Linear(dense.in_features, dense.out_features).to(dense.weight)
            with torch.no_grad():
                merged.weight.copy_(scale[:, None] * dense.weight)
                merged.bias.copy_(scale * (dense.bias - layer.running_mean) + layer.bias)
            folded.append(merged)
        else:
            folded.append(layer)
    return nn.Sequential(*folded).eval()


def mlp(n_in: int, n_out: int, widths, activation: str = "relu") -> nn.Sequential:
    """Dense → activation per width, then a linear output layer (discriminators, score networks)."""
    layers, width_in = [], n_in
    for width in widths:
        layers += [nn.Linear(width_in, width), *_activation(activation)]
        width_in = width
    return nn.Sequential(*layers, nn.Linear(width_in, n_out))


def architecture(preset) -> tuple[tuple[int, ...], str | None, tuple[int, ...]]:
    """(generator widths, generator activation, discriminator widths) of a preset name, or of a
    mapping ``{"generator": [...], "activation": "leaky_relu" | None, "discriminator": [...]}``."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise InputError(f"unknown network preset {preset!r}; choose one of {sorted(PRESETS)} (Crabtree et al., "
                             "Tables 1-3) or give {'generator': widths, 'activation': ..., 'discriminator': widths}")
        return PRESETS[preset]
    try:
        widths = tuple(int(w) for w in preset["generator"]), tuple(int(w) for w in preset["discriminator"])
        activation = preset.get("activation")
        _activation(activation)
    except (TypeError, KeyError, ValueError):
        raise InputError(f"custom networks {preset!r}: give {{'generator': widths, 'activation': None | "
                         "'leaky_relu' | 'relu' | 'silu', 'discriminator': widths}") from None
    if min(widths[0] + widths[1], default=0) < 1:
        raise InputError(f"network widths must be positive integers, got {preset!r}")
    return widths[0], activation, widths[1]
