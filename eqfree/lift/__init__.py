"""Lifting operators: coarse CV values → fine states from the conditional equilibrium."""

from ..periodic import wrapped_difference
from .assisted import AssistedUmbrella
from .explore import ExplorationStopped, explore
from .generative import CcGAN, ConditionalGenerator, ConditionalScoreModel, ExtrapolationWarning
from .reweighted import ReweightedUmbrella
from .umbrella import UmbrellaSampling
from .variational import VAE, DiagonalLaplace, ReverseKL

__all__ = [
    "AssistedUmbrella", "ExplorationStopped", "explore",
    "CcGAN", "ConditionalGenerator", "ConditionalScoreModel", "ExtrapolationWarning",
    "ReweightedUmbrella", "UmbrellaSampling",
    "wrapped_difference", "VAE", "ReverseKL", "DiagonalLaplace",
]
