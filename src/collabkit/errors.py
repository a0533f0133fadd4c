"""Every error and warning collabkit raises, in one place.

Each message names the value at fault, what was expected, and what to do about it. The CLI
turns any :class:`CollabkitError` into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

__all__ = [
    "CollabkitError",
    "DataError",
    "FieldError",
    "DatasetNotAvailableError",
    "UnknownIdError",
    "NotFittedError",
    "ModelFitError",
    "ModelFileError",
    "ModelBusyError",
    "ConfigError",
    "UnknownModelKindError",
    "NotSupportedError",
    "ServiceError",
    "DistributedError",
    "DataWarning",
    "ModelFitWarning",
]


class CollabkitError(Exception):
    """Base class of every error collabkit raises on purpose."""

    exit_code: int = 1


class ConfigError(CollabkitError, ValueError):
    """A parameter has a value that cannot work (for example ``n_factors=0``)."""

    exit_code = 2


class UnknownModelKindError(ConfigError, KeyError):
    """A model kind that is not in :mod:`collabkit.models.registry`; the message lists the
    known kinds."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotSupportedError(ConfigError):
    """The model cannot do what was asked (for example fold-in into a model without factor
    tables); the message names the model kind and the missing capability."""


class DataError(CollabkitError, ValueError):
    """Input data is malformed: the message names the file, line and column where it can."""

    exit_code = 3


class FieldError(DataError, KeyError):
    """A named column is not in the table."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetNotAvailableError(CollabkitError, OSError):
    """A named dataset is neither cached nor downloadable right now."""

    exit_code = 4


class UnknownIdError(CollabkitError, KeyError):
    """A user or item id the model never saw, where a fallback is not allowed."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NotFittedError(CollabkitError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class ModelFitError(CollabkitError, RuntimeError):
    """Training diverged (non-finite loss or parameters)."""

    exit_code = 5


class ModelFileError(CollabkitError, OSError):
    """A saved model folder is missing files, is corrupt, or comes from a newer version."""

    exit_code = 6


class ModelBusyError(ModelFileError):
    """Another process is saving the same model folder right now; try again when it is done."""

    exit_code = 75  # EX_TEMPFAIL: the same command can succeed later


class ServiceError(CollabkitError):
    """A request ``collabkit serve`` refuses: answered with HTTP ``status`` and the body
    ``{"error": {"code": code, "message": message}}``; never raised by the library itself."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = int(status)
        self.code = code
        self.message = message
        self.headers = headers or {}


class DistributedError(CollabkitError, RuntimeError):
    """A rank of a distributed job failed (raised an error, was killed, timed out); the job
    stopped and saved nothing. The message names the rank and its own error."""

    exit_code = 7

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class DataWarning(UserWarning):
    """Input data was accepted but changed (for example duplicate rows dropped)."""


class ModelFitWarning(DataWarning):
    """Training finished but the model is no better than the bias baseline (lower ``lr``)."""
