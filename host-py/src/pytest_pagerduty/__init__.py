"""pytest-pagerduty: page the right person when a marked pytest test fails.

PYTEST_DONT_REWRITE
"""

import importlib.metadata

# One source for the version: the package's metadata (host-py/pyproject.toml).
__version__ = importlib.metadata.version("pytest-pagerduty")
