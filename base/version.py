"""The installed distribution's version, read once from its metadata."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tierserve")
except PackageNotFoundError:  # a checkout used without installing it
    __version__ = "0.0.0+unknown"
