"""The ``collabkit`` command line."""

from collabkit.cli.main import cli, main

__all__ = ["cli", "main"]
