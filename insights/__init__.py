"""Leaseora insights: rent and occupancy models, market insights and natural-language queries."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("leaseora-insights")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
