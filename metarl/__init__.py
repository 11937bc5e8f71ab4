"""metarl: meta-learning and AutoRL in JAX."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metarl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"
