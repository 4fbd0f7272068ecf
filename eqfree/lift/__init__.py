"""Lifting operators: coarse CV values → fine states from the conditional equilibrium."""

from ..periodic import wrapped_difference
from .assisted import AssistedUmbrella
from .bias import CollectiveVariable, HarmonicBias, collective_variable
from .explore import ExplorationStopped, explore
from .gaussian import LinearGaussianLift
from .generative import CcGAN, ConditionalGenerator, ConditionalScoreModel, ExtrapolationWarning, load_generator
from .reweighted import ReweightedUmbrella
from .torsion_umbrella import TorsionUmbrella, torsion_bias
from .umbrella import UmbrellaSampling
from .variational import VAE, DiagonalLaplace, ReverseKL, load_variational

__all__ = [
    "AssistedUmbrella", "ExplorationStopped", "explore",
    "CcGAN", "ConditionalGenerator", "ConditionalScoreModel", "ExtrapolationWarning", "load_generator",
    "CollectiveVariable", "HarmonicBias", "LinearGaussianLift", "ReweightedUmbrella", "TorsionUmbrella", "UmbrellaSampling", "torsion_bias", "collective_variable",
    "wrapped_difference", "VAE", "ReverseKL", "DiagonalLaplace", "load_variational",
]
