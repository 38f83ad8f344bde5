"""anigan: from booru images on the web to a trained anime-face generator, reproducibly."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("anigan")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
