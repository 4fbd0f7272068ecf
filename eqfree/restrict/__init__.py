"""Restriction operators: fine states -> collective variables."""

from .coordinates import Coordinates, parse_coordinate

__all__ = ["Coordinates", "parse_coordinate"]
