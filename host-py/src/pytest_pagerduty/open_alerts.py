"""Which tests have an open alert, remembered across runs in pytest's cache,
so a test that passes again resolves the alert its failure opened."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .delivery import Outcome

CACHE_KEY = "pagerduty/open-alerts"


def load(config: pytest.Config) -> dict[str, dict[str, Any]]:
    cache = getattr(config, "cache", None)
    remembered = cache.get(CACHE_KEY, {}) if cache is not None else {}
    return dict(remembered) if isinstance(remembered, dict) else {}


def update(remembered: dict[str, dict[str, Any]], outcomes: Iterable[Outcome]) -> None:
    """Adds what this run opened, drops what it resolved."""
    for outcome in outcomes:
        if outcome.what == "trigger" and outcome.status in ("created", "already-open"):
            incident = outcome.incident
            before = remembered.get(outcome.nodeid, {})
            remembered[outcome.nodeid] = {
                "dedup_key": outcome.dedup_key,
                # "Already open" names no incident: keep the id an earlier run learned.
                "incident_id": (incident.id if incident else None) or before.get("incident_id"),
            }
        elif outcome.what == "resolve" and outcome.status == "resolved":
            remembered.pop(outcome.nodeid, None)


def save(config: pytest.Config, remembered: dict[str, dict[str, Any]]) -> None:
    cache = getattr(config, "cache", None)
    if cache is not None:
        cache.set(CACHE_KEY, remembered)
