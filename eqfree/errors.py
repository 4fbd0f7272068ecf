"""The errors eqfree raises on purpose, one family under :class:`EqfreeError`.

Each also derives from the built-in error a Python user expects (``ValueError`` for a bad
argument, ``FileExistsError`` for an occupied output path, ...), so ``except ValueError`` keeps
working; the command line catches :class:`EqfreeError` alone and prints its message in one line,
so that anything else, a bug, still shows its traceback.
"""


class EqfreeError(Exception):
    """Base of every error eqfree raises on purpose; the message says what is wrong and what to do."""


class InputError(EqfreeError, ValueError):
    """An argument, file or setting that cannot be used as given."""


class InputTypeError(InputError, TypeError):
    """An argument of the wrong kind (a number where a callable is needed, ...)."""


class NotFittedError(EqfreeError, RuntimeError):
    """An estimator used before :meth:`fit` (or :meth:`load`)."""


class ConvergenceError(EqfreeError, RuntimeError):
    """An iterative solver stopped at ``max_iterations`` without reaching its ``tolerance``."""


class DivergenceError(EqfreeError, FloatingPointError):
    """A simulation left the finite numbers (the step is too large for the dynamics)."""


class OutputExistsError(EqfreeError, FileExistsError):
    """An output path is occupied and was not to be overwritten."""


class MissingInputError(EqfreeError, FileNotFoundError):
    """An input path (a store, a model folder, a recipe) does not exist."""


class MissingDependencyError(EqfreeError, ImportError):
    """An optional dependency (OpenMM, pymbar, dask, matplotlib) is not installed."""
