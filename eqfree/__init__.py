"""eqfree — equation-free multiscale modelling: lift, evolve, restrict, and coarse closures."""

from .coarse import CoarseRHS, ReplicaBursts, coarse_derivative, projective_integrate
from .evolve import SDE, DivergenceError, SDEEvolver, euler_maruyama, ito_transform
from .lift import (
                   VAE,
                   AssistedUmbrella,
                   CcGAN,
                   CollectiveVariable,
                   ConditionalScoreModel,
                   DiagonalLaplace,
                   ReverseKL,
                   ReweightedUmbrella,
                   UmbrellaSampling,
                   explore,
                   load_generator,
                   load_variational,
)
from .operators import CoarseTimeStepper, Evolve, Lift, Restrict
from .parallel import run_tasks
from .restrict import Coordinates
from .reweight import MBAR, WHAM
from .seeding import as_seed_sequence, child
from .version import __version__

__all__ = [
    "SDE", "SDEEvolver", "DivergenceError", "euler_maruyama", "ito_transform",
    "Lift", "Evolve", "Restrict", "CoarseTimeStepper", "Coordinates",
    "CollectiveVariable", "UmbrellaSampling", "ReweightedUmbrella", "WHAM", "MBAR",
    "CcGAN", "ConditionalScoreModel", "load_generator", "AssistedUmbrella", "explore",
    "VAE", "ReverseKL", "DiagonalLaplace", "load_variational",
    "coarse_derivative", "ReplicaBursts", "projective_integrate", "CoarseRHS",
    "run_tasks", "as_seed_sequence", "child", "__version__",
]
