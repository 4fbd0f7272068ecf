"""eqfree — equation-free multiscale modelling: lift, evolve, restrict, and coarse closures."""

from importlib.metadata import PackageNotFoundError, version

from .evolve import SDE, DivergenceError, SDEEvolver, euler_maruyama, ito_transform
from .operators import CoarseTimeStepper, Evolve, Lift, Restrict
from .restrict import Coordinates
from .seeding import as_seed_sequence, child

try:
    __version__ = version("eqfree")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "SDE", "SDEEvolver", "DivergenceError", "euler_maruyama", "ito_transform",
    "Lift", "Evolve", "Restrict", "CoarseTimeStepper", "Coordinates",
    "as_seed_sequence", "child", "__version__",
]
