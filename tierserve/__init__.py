"""tierserve: a hot pool for popular TensorFlow models, a shared caching cold pool for the rest."""

from base.version import __version__

__all__ = ["__version__"]
