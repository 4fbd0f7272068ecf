"""The installed version of eqfree (the lowest layer: stores and saved models record it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eqfree")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
