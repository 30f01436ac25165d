"""Secrets kept out of everything the plugin writes: one rule for the
terminal, the outbox and the dry-run file.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"


def scrubbed(value: Any, secrets: Iterable[str]) -> Any:
    """The value with every secret replaced, in every string it holds
    (inside lists and mappings too; keys included). A longer secret goes
    first, so one holding another is not left half-replaced."""
    ordered = sorted((s for s in secrets if s), key=len, reverse=True)
    return _scrub(value, ordered)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secrets) for v in value]
    return value
