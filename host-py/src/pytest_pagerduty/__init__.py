"""pytest-pagerduty: page the right person when a marked pytest test fails."""

__version__ = "0.1.0"
