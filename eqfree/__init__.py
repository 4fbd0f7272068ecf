"""eqfree — equation-free multiscale modelling: lift, evolve, restrict, and coarse closures.

The public API in one namespace; ``eqfree.systems`` (model systems with their analytic facts) and
``eqfree.closures`` (closures across CV grids) are its subpackages. The shape of the code:
docs/architecture.md.
"""

from . import errors
from .base import Estimator, clone, load
from .coarse import CoarseRHS, WalkerBursts, coarse_derivative, projective_integrate
from .evolve import SDE, DivergenceError, SDEEvolver, euler_maruyama, ito_transform
from .lift import (
    VAE,
    AssistedUmbrella,
    CcGAN,
    ConditionalScoreModel,
    DiagonalLaplace,
    ReverseKL,
    ReweightedUmbrella,
    UmbrellaSampling,
    explore,
)
from .operators import CoarseTimeStepper, Evolve, FunctionLift, Lift, Restrict, StateLift, System
from .parallel import run_tasks
from .restrict import CollectiveVariable, Coordinates, DiffusionMaps
from .reweight import MBAR, WHAM
from .seeding import as_seed_sequence, child
from .version import __version__

__all__ = [
    "errors", "Estimator", "clone", "load",
    "System", "Lift", "FunctionLift", "StateLift", "Evolve", "Restrict", "CoarseTimeStepper",
    "SDE", "SDEEvolver", "DivergenceError", "euler_maruyama", "ito_transform",
    "Coordinates", "CollectiveVariable", "DiffusionMaps",
    "UmbrellaSampling", "ReweightedUmbrella", "WHAM", "MBAR",
    "CcGAN", "ConditionalScoreModel", "AssistedUmbrella", "explore",
    "VAE", "ReverseKL", "DiagonalLaplace",
    "coarse_derivative", "WalkerBursts", "projective_integrate", "CoarseRHS",
    "run_tasks", "as_seed_sequence", "child", "__version__",
]
