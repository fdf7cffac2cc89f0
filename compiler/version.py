from importlib.metadata import PackageNotFoundError, version

try:
    COMPILER_VERSION = version("gatepost")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    COMPILER_VERSION = "0.0.0+source"
