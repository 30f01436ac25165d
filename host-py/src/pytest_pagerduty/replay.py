"""Replay: send the incidents kept in the outbox with the current settings."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import open_alerts, wit
from .component import Alerts
from .delivery import RetryPolicy, describe, send_with_retries
from .outbox import Entry, Outbox, fingerprint
from .settings import Settings


@dataclass(frozen=True)
class _Result:
    confirmed: bool
    line: str
    # Every later entry would fail the same way (bad credentials): stop.
    stop: bool = False
    # The alert's key and incident id, to remember it as open.
    dedup_key: str | None = None
    incident_id: str | None = None


class _Replayer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.alerts = Alerts(settings.memory_limit_mib)
        self.policy = RetryPolicy(max_attempts=settings.max_attempts)
        names = self.alerts.ci_variables()
        self.ci = tuple(wit.Variable(n, os.environ[n]) for n in names if os.environ.get(n))

    def failure(self, entry: Entry) -> wit.TestFailure:
        return replace(entry.failure, ci=self.ci, host=socket.gethostname())

    def options(self, entry: Entry) -> Any:
        """The marker's options, with its routing key found again: the outbox
        holds only its fingerprint; the settings' key must match it."""
        marker = dict(entry.marker)
        stored = marker.get("routing_key")
        if isinstance(stored, str) and stored.startswith("sha256:"):
            key = self.settings.routing_key
            if key is None or fingerprint(key) != stored:
                return wit.MarkerError(
                    "routing_key",
                    "this alert went to a routing key given in its marker, which the outbox "
                    "does not keep",
                    "set PAGERDUTY_ROUTING_KEY to that key to replay it",
                )
            marker["routing_key"] = key
        return self.alerts.check_marker(marker, entry.positional, self.settings)

    def send(self, built: wit.AlertRequest, name: str) -> _Result:
        if self.settings.dry_run:
            return _Result(False, f"would open: {built.title} ({built.method} {built.url})")
        result, _ = send_with_retries(self.alerts, built, self.policy, threading.Event())
        if isinstance(result, wit.Delivered):
            number = f"#{result.number}" if result.number is not None else "(number unknown)"
            line = f"created {number}: {built.title} {result.html_url or ''}".rstrip()
            return _Result(True, line, dedup_key=built.dedup_key, incident_id=result.id)
        if isinstance(result, wit.AlreadyOpen):
            return _Result(True, f"already open: {built.title}", dedup_key=built.dedup_key)
        if isinstance(result, wit.RetryLater):
            return _Result(False, f"kept {name}: {result.reason}")
        return _Result(
            False,
            f"kept {name}: {describe(result.error)}. Fix: {result.fix}",
            stop=result.applies_to_all,
        )

    def one(self, entry: Entry) -> _Result:
        name = entry.failure.nodeid
        options = self.options(entry)
        if isinstance(options, wit.MarkerError):
            return _Result(False, f"kept {name}: {options.problem}. Fix: {options.fix}")
        built = self.alerts.build_trigger(
            self.failure(entry), options, self.settings, entry.severity
        )
        if isinstance(built, wit.SettingsError):
            return _Result(
                False, f"kept {name}: {built.setting}: {built.problem}. Fix: {built.fix}"
            )
        return self.send(built, name)

    def aggregates(self, entries: list[Entry], suite: str) -> list[tuple[list[Entry], _Result]]:
        """Entries past the cap, one aggregate alert per destination."""
        groups: dict[str, list[tuple[Entry, Any]]] = {}
        results: list[tuple[list[Entry], _Result]] = []
        for entry in entries:
            options = self.options(entry)
            key = None
            if not isinstance(options, wit.MarkerError):
                key = self.alerts.aggregate_key(options, self.settings, suite)
            if key is None:
                results.append(([entry], _Result(False, f"kept {entry.failure.nodeid}")))
                continue
            groups.setdefault(key, []).append((entry, options))
        for members in groups.values():
            failures = [self.failure(e) for e, _ in members]
            built = self.alerts.build_aggregate(failures, suite, members[0][1], self.settings)
            group = [e for e, _ in members]
            if isinstance(built, wit.SettingsError):
                results.append((group, _Result(False, f"kept {len(group)}: {built.problem}")))
            else:
                results.append((group, self.send(built, f"{len(group)} incidents")))
        return results


def replay(
    settings: Settings, path: Path, suite: str, remembered: dict[str, dict[str, Any]]
) -> int:
    """Sends every entry (past `pagerduty_max_incidents`, as aggregates);
    removes only those PagerDuty confirmed, and records them in `remembered`
    (the open alerts) so a later pass resolves them. Returns 0 when the
    outbox is empty afterwards, 1 when entries remain."""
    outbox = Outbox(path)
    entries, unreadable = outbox.read()
    print(f"pagerduty replay: {len(entries)} incident(s) in {path}")
    if unreadable:
        print(f"  {len(unreadable)} line(s) are not outbox entries; they are kept")
    if not entries:
        return 1 if unreadable else 0
    if settings.no_credentials and not settings.dry_run_requested:
        print("  no API key, OAuth token or routing key is configured: nothing can be sent")
        return 1
    print("  dry run: nothing is sent" if settings.dry_run else "  sending")

    replayer = _Replayer(settings)
    confirmed: set[str] = set()
    single, past_cap = entries[: settings.max_incidents], entries[settings.max_incidents :]
    stopped = False
    for entry in single:
        try:
            result = replayer.one(entry)
        except Exception as err:  # a trap: that entry stays, the others go on
            reason = str(err).splitlines()[0] if str(err) else ""
            result = _Result(
                False,
                f"kept {entry.failure.nodeid}: the component failed: "
                f"{type(err).__name__}: {reason}",
            )
        print(f"  {result.line}")
        if result.confirmed:
            confirmed.add(entry.id)
            nodeid = entry.failure.nodeid
            open_alerts.remember(remembered, nodeid, result.dedup_key, result.incident_id)
        if result.stop:
            stopped = True
            break
    if past_cap and not stopped:
        for group, result in replayer.aggregates(past_cap, suite):
            print(f"  {result.line}")
            if result.confirmed:
                confirmed.update(e.id for e in group)
                covers = [e.failure.nodeid for e in group]
                open_alerts.remember(
                    remembered, covers[0], result.dedup_key, result.incident_id, covers
                )
    remaining = outbox.remove(confirmed) if confirmed else len(entries) + len(unreadable)
    print(f"pagerduty replay: {len(confirmed)} sent, {remaining} left in {path}")
    return 0 if remaining == 0 else 1
