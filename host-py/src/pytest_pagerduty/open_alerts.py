"""Which tests have an open alert, remembered across runs in pytest's cache,
so a test that passes again resolves the alert its failure opened."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .delivery import Outcome

CACHE_KEY = "pagerduty/open-alerts"
# Entries for aggregate alerts are keyed by this and the aggregate's key.
AGGREGATE = "aggregate:"


def _file(config: pytest.Config) -> Path | None:
    """Where pytest's cache keeps the value, for replay, which runs before
    the cache plugin is configured; None when the cache plugin is off."""
    try:
        cache_dir = os.path.expanduser(os.path.expandvars(config.getini("cache_dir")))
    except ValueError:  # -p no:cacheprovider
        return None
    return Path(config.rootpath, cache_dir, "v", CACHE_KEY)


def load(config: pytest.Config) -> dict[str, dict[str, Any]]:
    cache = getattr(config, "cache", None)
    if cache is not None:
        remembered = cache.get(CACHE_KEY, {})
    else:
        path = _file(config)
        try:
            remembered = json.loads(path.read_text("utf-8")) if path else {}
        except (OSError, ValueError):
            remembered = {}
    return dict(remembered) if isinstance(remembered, dict) else {}


def remember(
    remembered: dict[str, dict[str, Any]],
    nodeid: str,
    dedup_key: str | None,
    incident_id: str | None,
    covers: Iterable[str] = (),
) -> None:
    """Records an open alert: a test's, or (with `covers`) an aggregate's."""
    covers = list(covers)
    name = f"{AGGREGATE}{dedup_key}" if covers else nodeid
    before = remembered.get(name, {})
    entry: dict[str, Any] = {
        "dedup_key": dedup_key,
        # "Already open" names no incident: keep the id an earlier run learned.
        "incident_id": incident_id or before.get("incident_id"),
    }
    if covers:
        entry["covers"] = covers
    remembered[name] = entry


def update(remembered: dict[str, dict[str, Any]], outcomes: Iterable[Outcome]) -> None:
    """Adds what this run opened, drops what it resolved."""
    for outcome in outcomes:
        opened = outcome.status in ("created", "already-open")
        if opened and outcome.what in ("trigger", "aggregate"):
            incident_id = outcome.incident.id if outcome.incident else None
            covers = outcome.covers if outcome.what == "aggregate" else ()
            remember(remembered, outcome.nodeid, outcome.dedup_key, incident_id, covers)
        elif outcome.what == "resolve" and outcome.status == "resolved":
            remembered.pop(outcome.nodeid, None)


def aggregates_covering(remembered: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """nodeid -> the remembered aggregate alerts that list it."""
    covering: dict[str, list[str]] = {}
    for name, entry in remembered.items():
        if name.startswith(AGGREGATE):
            for nodeid in entry.get("covers", ()):
                covering.setdefault(nodeid, []).append(name)
    return covering


def save(config: pytest.Config, remembered: dict[str, dict[str, Any]]) -> None:
    cache = getattr(config, "cache", None)
    if cache is not None:
        cache.set(CACHE_KEY, remembered)
        return
    path = _file(config)
    if path is not None:
        # As pytest's cache writes it, so the next run's cache.get reads it.
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(remembered, ensure_ascii=False, indent=2, sort_keys=True)
            path.write_text(text, "utf-8")
