"""pymbar, imported lazily and quietly.

Importing pymbar 4 logs two banners at WARNING level ("JAX NOT FOUND" from ``pymbar.mbar_solvers``,
"Warning on use of the timeseries module" from ``pymbar.timeseries``); with no handler configured,
Python's last-resort handler prints them to stderr. :func:`import_pymbar` raises the ``pymbar``
logger to ERROR for the duration of the first import only, so later pymbar warnings still reach the
user.
"""

from __future__ import annotations

import importlib
import logging

from .errors import MissingDependencyError

MISSING = "umbrella reweighting with MBAR needs pymbar: pip install 'eqfree[md]'"


def import_pymbar():
    """The ``pymbar`` module; ImportError with the install line when it is missing."""
    logger = logging.getLogger("pymbar")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return importlib.import_module("pymbar")
    except ImportError as error:
        raise MissingDependencyError(MISSING) from error
    finally:
        logger.setLevel(level)


def pymbar_available() -> bool:
    """Whether pymbar can be imported (imports it, quietly, if so)."""
    try:
        import_pymbar()
    except ImportError:
        return False
    return True
