"""Fine-scale simulators: SDEs, Euler–Maruyama ensembles, Itô changes of variables."""

from .euler_maruyama import DivergenceError, coordinate_names, euler_maruyama
from .evolver import SDEEvolver
from .ito import ItoTransformedSDE, ito_transform
from .molecular import OpenMMEvolver
from .sde import SDE, SDEProtocol, diffusion_matrix

__all__ = [
    "SDE", "SDEProtocol", "SDEEvolver", "OpenMMEvolver", "DivergenceError", "ItoTransformedSDE",
    "coordinate_names", "diffusion_matrix", "euler_maruyama", "ito_transform",
]
