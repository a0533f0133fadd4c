"""The ``collabkit`` command line."""

from collabkit.cli import explore as _explore  # noqa: F401,E402  (registers commands)
from collabkit.cli import loop as _loop  # noqa: F401,E402  (registers commands)
from collabkit.cli.main import cli, main

__all__ = ["cli", "main"]
