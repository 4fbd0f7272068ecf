"""Lifting operators: coarse CV values → fine states from the conditional equilibrium."""

from ..periodic import wrapped_difference
from .assisted import AssistedUmbrella
from .bias import CollectiveVariable, HarmonicBias, collective_variable
from .explore import ExplorationStopped, explore
from .gaussian import LinearGaussianLift
from .generative import CcGAN, ConditionalGenerator, ConditionalScoreModel, ExtrapolationWarning, load_generator
from .reweighted import ReweightedUmbrella
from .umbrella import UmbrellaSampling

__all__ = [
    "AssistedUmbrella", "ExplorationStopped", "explore",
    "CcGAN", "ConditionalGenerator", "ConditionalScoreModel", "ExtrapolationWarning", "load_generator",
    "CollectiveVariable", "HarmonicBias", "LinearGaussianLift", "ReweightedUmbrella", "UmbrellaSampling", "collective_variable",
    "wrapped_difference",
]
