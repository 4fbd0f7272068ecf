"""Fine-scale simulators: SDE schemes over ensembles, Itô changes of variables, bias potentials."""

from .bias import HarmonicBias, Restraints
from .ensemble import DivergenceError, as_ensemble, bias_force, coordinate_names
from .euler_maruyama import euler_maruyama
from .evolver import SDEEvolver, UnstableStepWarning
from .gillespie import GillespieEvolver, ReactionNetwork
from .integrate import SCHEMES, integrate
from .ito import ItoTransformedSDE, ito_transform
from .molecular import OpenMMEvolver
from .sde import SDE, GradientSDE, JointFields, SDEProtocol, diffusion_matrix

__all__ = [
    "SDE", "GradientSDE", "JointFields", "SDEProtocol", "SDEEvolver", "OpenMMEvolver", "DivergenceError",
    "HarmonicBias", "Restraints", "ItoTransformedSDE", "SCHEMES", "GillespieEvolver", "ReactionNetwork",
    "as_ensemble", "bias_force", "coordinate_names", "diffusion_matrix", "euler_maruyama", "integrate",
    "ito_transform", "UnstableStepWarning",
]
