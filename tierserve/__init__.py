"""tierserve: a hot pool for popular TensorFlow models, a shared caching cold pool for the rest."""

__version__ = "0.1.0"
