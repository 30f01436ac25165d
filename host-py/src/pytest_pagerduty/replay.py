"""Replay: send the incidents kept in the outbox with the current settings."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from . import wit
from .component import Alerts
from .delivery import RetryPolicy, describe, send_with_retries
from .outbox import Entry, Outbox
from .settings import Settings


@dataclass(frozen=True)
class _Result:
    confirmed: bool
    line: str
    # Every later entry would fail the same way (bad credentials): stop.
    stop: bool = False


def _replay_one(alerts: Alerts, entry: Entry, settings: Settings, policy: RetryPolicy) -> _Result:
    name = entry.failure.nodeid
    options = alerts.check_marker(entry.marker, entry.positional, settings)
    if isinstance(options, wit.MarkerError):
        return _Result(False, f"kept {name}: the marker is no longer valid: {options.problem}")
    failure = replace(entry.failure, host=socket.gethostname())
    built = alerts.build_trigger(failure, options, settings, entry.severity)
    if isinstance(built, wit.SettingsError):
        return _Result(False, f"kept {name}: {built.setting}: {built.problem}. Fix: {built.fix}")
    if settings.dry_run:
        return _Result(False, f"would open: {built.title} ({built.method} {built.url})")
    result, _ = send_with_retries(alerts, built, policy, threading.Event())
    if isinstance(result, wit.Delivered):
        number = f"#{result.number}" if result.number is not None else "(number unknown)"
        return _Result(True, f"created {number}: {built.title} {result.html_url or ''}".rstrip())
    if isinstance(result, wit.AlreadyOpen):
        return _Result(True, f"already open: {built.title}")
    if isinstance(result, wit.RetryLater):
        return _Result(False, f"kept {name}: {result.reason}")
    return _Result(
        False,
        f"kept {name}: {describe(result.error)}. Fix: {result.fix}",
        stop=result.applies_to_all,
    )


def replay(settings: Settings, path: Path) -> int:
    """Sends every entry; removes only those PagerDuty confirmed. Returns 0
    when the outbox is empty afterwards, 1 when entries remain."""
    outbox = Outbox(path)
    entries, unreadable = outbox.read()
    print(f"pagerduty replay: {len(entries)} incident(s) in {path}")
    if unreadable:
        print(f"  {len(unreadable)} line(s) are not outbox entries; they are kept")
    if not entries:
        return 1 if unreadable else 0
    if settings.no_credentials and not settings.dry_run_requested:
        print("  no API key or OAuth token is configured: nothing can be sent")
        return 1
    print("  dry run: nothing is sent" if settings.dry_run else f"  sending to {settings.api_url}")

    alerts = Alerts(settings.memory_limit_mib)
    policy = RetryPolicy(max_attempts=settings.max_attempts)
    confirmed: set[str] = set()
    for entry in entries:
        try:
            result = _replay_one(alerts, entry, settings, policy)
        except Exception as err:  # a trap: that entry stays, the others go on
            result = _Result(
                False,
                f"kept {entry.failure.nodeid}: the component failed: "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
            )
        print(f"  {result.line}")
        if result.confirmed:
            confirmed.add(entry.id)
        if result.stop:
            break
    remaining = outbox.remove(confirmed) if confirmed else len(entries) + len(unreadable)
    print(f"pagerduty replay: {len(confirmed)} sent, {remaining} left in {path}")
    return 0 if remaining == 0 else 1
