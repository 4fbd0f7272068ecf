"""Learned lifting operators: conditional generators trained on fine states labelled by a CV."""

from .base import ConditionalGenerator, DataScaler, ExtrapolationWarning, LabelScaler, load_generator
from .ccgan import CcGAN
from .networks import PRESETS
from .score import ConditionalScoreModel

__all__ = ["CcGAN", "ConditionalGenerator", "ConditionalScoreModel", "DataScaler", "ExtrapolationWarning", "LabelScaler", "PRESETS",
           "load_generator"]
