"""Variational coarse-graining (Schöberl, Zabaras & Koutsourelakis 2019): a latent-variable model
q(x) = ∫ q(x|z) q(z) dz whose decoder is a lift and whose encoder mean is a learned restriction, trained
from data (forward KL, :class:`VAE` with the ARD prior) or from the energy alone (reverse KL,
:class:`ReverseKL`), with a diagonal Laplace approximation of the decoder posterior for predictive
credible intervals."""

from .ard import ARDPrior, ard_precision
from .importance import ImportanceSample
from .laplace import DiagonalLaplace, Predictive
from .model import EncoderRestriction, LatentVariableModel, RejectedStepWarning
from .networks import WIDTHS, Decoder, Encoder
from .reverse_kl import LangevinWalkers, ReverseKL, TemperingWarning, tempering_increment
from .vae import VAE

__all__ = ["ARDPrior", "Decoder", "DiagonalLaplace", "Encoder", "EncoderRestriction", "ImportanceSample",
           "LangevinWalkers", "LatentVariableModel", "Predictive", "RejectedStepWarning", "ReverseKL",
           "TemperingWarning", "VAE", "WIDTHS", "ard_precision", "tempering_increment"]
