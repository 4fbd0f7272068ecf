"""CF-style global attributes and provenance for everything eqfree writes."""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone

from ..version import __version__


def provenance(title: str, parameters: dict, command: list[str] | None = None) -> dict:
    """Global attributes: CF ``Conventions``/``title``/``history``/``source`` and the full parameters.

    ``parameters`` is stored as JSON under ``eqfree_parameters`` (zarr attributes must be flat).
    """
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    invocation = " ".join(command if command is not None else sys.argv)
    return {
        "Conventions": "CF-1.10",
        "title": title,
        "source": f"eqfree {__version__}",
        "history": f"{now}: {invocation}",
        "eqfree_version": __version__,
        "eqfree_command": invocation,
        "eqfree_parameters": json.dumps(parameters, sort_keys=True, default=str),
        "python": platform.python_version(),
    }


def parameters_of(attrs: dict) -> dict:
    """The parameters recorded by :func:`provenance`."""
    return json.loads(attrs.get("eqfree_parameters", "{}"))
