"""fer: a performance test suite for training facial-expression-recognition models."""

from fer.errors import ConfigError, FERDataError, FERError

__version__ = "0.1.0"

__all__ = ["ConfigError", "FERDataError", "FERError", "__version__"]
