"""Fine-scale model systems of the seed documents, each with its analytic facts.

>>> from eqfree import systems
>>> systems.available()
['alanine_dipeptide', 'averaging_cubic', 'caps', 'correlated_ou', 'double_well', 'fast_slow_linear', 'half_moons',
 's_shaped', 'schlogl', 'two_slow']
>>> system = systems.get("fast_slow_linear", a3=0.2)
"""

from eqfree.errors import InputError

from .alanine_dipeptide import AlanineDipeptide
from .averaging_cubic import AveragingCubic
from .base import System
from .caps import Caps
from .correlated_ou import CorrelatedOU
from .double_well import DoubleWell
from .fast_slow_linear import FastSlowLinear
from .gaussian import LinearGaussianLift
from .half_moons import HalfMoons
from .s_shaped import SShaped
from .schlogl import Schlogl
from .two_slow import GaussianConditionalLift, TwoSlow

_REGISTRY = {cls.name: cls for cls in (AlanineDipeptide, AveragingCubic, Caps, CorrelatedOU, DoubleWell, FastSlowLinear,
                                      HalfMoons, TwoSlow, SShaped, Schlogl)}


def available() -> list[str]:
    """Names of the systems :func:`get` can build."""
    return sorted(_REGISTRY)


def get(name: str, **params) -> System:
    """Build system ``name`` with parameters overriding its defaults."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown system {name!r}; available systems: {available()}") from None
    return cls(**params)


__all__ = [
    "System", "available", "get", "LinearGaussianLift",
    "AlanineDipeptide", "AveragingCubic", "Caps", "CorrelatedOU", "DoubleWell", "FastSlowLinear", "HalfMoons",
    "GaussianConditionalLift", "TwoSlow", "SShaped", "Schlogl",
]
