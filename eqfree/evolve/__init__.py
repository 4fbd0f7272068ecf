"""Fine-scale simulators: SDEs, Euler–Maruyama ensembles, Itô changes of variables, bias potentials."""

from .bias import HarmonicBias
from .euler_maruyama import DivergenceError, as_ensemble, bias_force, coordinate_names, euler_maruyama
from .evolver import SDEEvolver
from .ito import ItoTransformedSDE, ito_transform
from .molecular import OpenMMEvolver
from .sde import SDE, JointFields, SDEProtocol, diffusion_matrix

__all__ = [
    "SDE", "JointFields", "SDEProtocol", "SDEEvolver", "OpenMMEvolver", "DivergenceError", "HarmonicBias",
    "ItoTransformedSDE",
    "as_ensemble", "bias_force", "coordinate_names", "diffusion_matrix", "euler_maruyama", "ito_transform",
]
