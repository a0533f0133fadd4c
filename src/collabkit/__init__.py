"""collabkit: collaborative filtering from a ratings table to recommendations."""

from collabkit._version import __version__

__all__ = ["__version__"]
