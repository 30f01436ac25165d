"""Which tests have an open alert, remembered across runs in pytest's cache,
so a test that passes again resolves the alert its failure opened.

Tests are remembered by a digest of their id, never the id itself: an id
may hold a secret (a key in a parametrize id), and the cache is a file on
disk, often kept by CI between runs. A file an older version wrote, with
raw ids, is read too and written back with digests.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from . import cached

if TYPE_CHECKING:
    from .delivery import Outcome

CACHE_KEY = "pagerduty/open-alerts"
# Entries for aggregate alerts are keyed by this and the aggregate's key.
AGGREGATE = "aggregate:"
# Entries for a test are keyed by this and the digest of its id.
DIGEST = "sha256:"


def digest(nodeid: str) -> str:
    """How a test id is remembered (an aggregate's name, or a digest, as is)."""
    if nodeid.startswith((AGGREGATE, DIGEST)):
        return nodeid
    data = nodeid.encode("utf-8", "surrogatepass")
    return DIGEST + hashlib.sha256(b"pytest-pagerduty test id\0" + data).hexdigest()


class ByTestId(dict[str, Any]):
    """A dict keyed by digests of test ids that is read and written by the
    ids themselves: `remembered.get(nodeid)` finds the test's entry."""

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(digest(key))

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(digest(key), value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(digest(key))

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(digest(key), default)

    def pop(self, key: str, *default: Any) -> Any:
        return super().pop(digest(key), *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        return super().setdefault(digest(key), default)


def _with_digests(remembered: Mapping[str, Any]) -> ByTestId:
    """The entries keyed (and their `covers` listed) by digests, whichever
    way the file held them."""
    out = ByTestId()
    for name, entry in remembered.items():
        if not isinstance(name, str) or not isinstance(entry, dict):
            continue
        entry = dict(entry)
        if "covers" in entry:
            entry["covers"] = [digest(n) for n in entry["covers"] if isinstance(n, str)]
        out[name] = entry
    return out


def load(config: pytest.Config) -> dict[str, dict[str, Any]]:
    return _with_digests(cached.read(config, CACHE_KEY))


def remember(
    remembered: dict[str, dict[str, Any]],
    nodeid: str,
    dedup_key: str | None,
    incident_id: str | None,
    covers: Iterable[str] = (),
) -> None:
    """Records an open alert: a test's, or (with `covers`) an aggregate's."""
    covers = [digest(n) for n in covers]
    name = f"{AGGREGATE}{dedup_key}" if covers else digest(nodeid)
    before = remembered.get(name, {})
    entry: dict[str, Any] = {
        "dedup_key": dedup_key,
        # "Already open" names no incident: keep the id an earlier run learned.
        "incident_id": incident_id or before.get("incident_id"),
    }
    # The same incident ("already open" names none): its notes so far. A
    # created one is new, with none.
    same = before.get("dedup_key") == dedup_key and incident_id in (None, before.get("incident_id"))
    if same and before.get("notes"):
        entry["notes"] = before["notes"]
    if covers:
        entry["covers"] = covers
    remembered[name] = entry


def update(remembered: dict[str, dict[str, Any]], outcomes: Iterable[Outcome]) -> None:
    """Adds what this run opened, drops what it resolved."""
    if not isinstance(remembered, ByTestId):  # a caller's own dict
        keyed = _with_digests(remembered)
        remembered.clear()
        remembered.update(keyed)
    for outcome in outcomes:
        opened = outcome.status in ("created", "already-open")
        if opened and outcome.what in ("trigger", "aggregate"):
            incident_id = outcome.incident.id if outcome.incident else None
            covers = outcome.covers if outcome.what == "aggregate" else ()
            remember(remembered, outcome.nodeid, outcome.dedup_key, incident_id, covers)
        elif outcome.what == "resolve" and outcome.status == "resolved":
            remembered.pop(digest(outcome.nodeid), None)
        elif outcome.what == "note" and outcome.status == "noted":
            entry = remembered.setdefault(outcome.nodeid, {"dedup_key": outcome.dedup_key})
            entry["notes"] = int(entry.get("notes") or 0) + 1
            if outcome.incident is not None and outcome.incident.id:
                entry["incident_id"] = outcome.incident.id  # found by key: remember it


class Covering:
    """Which remembered aggregate alerts a passing test completes: an
    aggregate is named once every test it lists has passed in this run (its
    tests are known only by digests, so a failure among them is told by its
    not passing)."""

    def __init__(self, remembered: Mapping[str, Mapping[str, Any]]) -> None:
        # aggregate name -> digests of its tests not yet seen passing
        self._waiting: dict[str, set[str]] = {}
        self._listing: dict[str, list[str]] = {}  # digest -> aggregate names
        for name, entry in remembered.items():
            if name.startswith(AGGREGATE):
                covers = {digest(nodeid) for nodeid in entry.get("covers", ())}
                self._waiting[name] = covers
                for test in covers:
                    self._listing.setdefault(test, []).append(name)

    def get(self, nodeid: str, default: Sequence[str] = ()) -> Sequence[str]:
        """Records that the test passed; the aggregates it was the last of."""
        test = digest(nodeid)
        done = []
        for name in self._listing.get(test, ()):
            self._waiting[name].discard(test)
            if not self._waiting[name]:
                done.append(name)
        return done or default


def aggregates_covering(remembered: Mapping[str, Mapping[str, Any]]) -> Covering:
    """Passing test id -> the remembered aggregate alerts it completes."""
    return Covering(remembered)


def save(config: pytest.Config, remembered: dict[str, dict[str, Any]]) -> None:
    cached.write(config, CACHE_KEY, _with_digests(remembered))  # never a raw test id on disk
