"""Learned lifting operators: conditional generators trained on fine states labelled by a CV."""

from .base import ConditionalGenerator, ExtrapolationWarning
from .ccgan import CcGAN
from .networks import PRESETS
from .score import ConditionalScoreModel

__all__ = ["CcGAN", "ConditionalGenerator", "ConditionalScoreModel", "ExtrapolationWarning", "PRESETS"]
