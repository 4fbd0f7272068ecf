"""Restriction to known coordinates: R(x) = x[..., indices].

Coordinates are named ``x1, x2, ...`` (1-based, as in Crabtree, Bello-Rivas, Ferguson & Kevrekidis,
"GANs and closures: micro-macro consistency in multiscale modeling") or given as 0-based integers.
Indexing works on numpy arrays and on torch tensors alike, so R is differentiable by autograd.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import InputError, InputTypeError


def parse_coordinate(spec: str | int, dim: int | None = None) -> int:
    """0-based index of a coordinate given as ``"x3"``, ``"3"`` (0-based, from the CLI) or ``3``."""
    if isinstance(spec, str):
        text = spec.strip()
        match = re.fullmatch(r"x([1-9][0-9]*)", text)
        if match:
            index = int(match.group(1)) - 1
        elif text.isdigit():
            index = int(text)
        else:
            raise InputError(f"coordinate {spec!r} not understood: use a name x1, x2, ... (1-based) or a 0-based index")
    elif isinstance(spec, int) and not isinstance(spec, bool):
        index = spec
    else:
        raise InputTypeError(f"coordinate must be a name like 'x1' or an int index, got {spec!r}")
    if index < 0 or (dim is not None and index >= dim):
        raise InputError(f"coordinate {spec!r} is out of range for states of dimension {dim}")
    return index


class Coordinates:
    """The :class:`~eqfree.Restrict` operator keeping some coordinates of the fine state."""

    def __init__(self, coordinates: str | int | Sequence[str | int], dim: int | None = None):
        if isinstance(coordinates, (str, int)):
            coordinates = [coordinates]
        self.indices = [parse_coordinate(c, dim) for c in coordinates]
        if not self.indices:
            raise InputError("Coordinates needs at least one coordinate")

    @property
    def names(self) -> list[str]:
        """The kept coordinates' names ``x1, x2, ...`` (1-based), one per output column."""
        return [f"x{i + 1}" for i in self.indices]

    def __call__(self, x):
        if x.shape[-1] <= max(self.indices):
            missing = self.names[self.indices.index(max(self.indices))]
            raise InputError(f"states of dimension {x.shape[-1]} have no coordinate {missing}")
        return x[..., self.indices]

    def __repr__(self) -> str:
        return f"Coordinates({self.names})"
