"""Replay: send the incidents kept in the outbox with the current settings,
through the same delivery pipeline as a test run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from . import open_alerts, summary
from .delivery import Delivery, Outcome, Trigger
from .outbox import Entry, Outbox, fingerprint
from .settings import Settings


def _trigger(entry: Entry, settings: Settings) -> Trigger | str:
    """The entry as a run would have submitted it, its marker's secrets
    found again (the outbox holds only their fingerprints: a setting must
    hold the same value), or why it cannot be."""
    marker = dict(entry.marker)
    for name, value in entry.marker.items():
        if isinstance(value, str) and value.startswith("sha256:"):
            known = [s for s in settings.secrets if fingerprint(s) == value]
            if not known:
                return (
                    f"this alert went to a {name} given in its marker, which the outbox "
                    f"does not keep. Fix: set the {name} setting (PAGERDUTY_{name.upper()}) "
                    "to that value to replay it"
                )
            marker[name] = known[0]
    return Trigger(entry.failure, marker, entry.positional, entry.severity, entry.id)


def _line(outcome: Outcome) -> str:
    line = summary.line(outcome)
    if outcome.status == "dry-run" and outcome.request is not None:
        return f"would open: {outcome.title} ({outcome.request.method} {outcome.request.url})"
    if outcome.status in ("queued", "failed", "lost"):
        return f"kept {outcome.nodeid}: {outcome.reason}" + (
            f". Fix: {outcome.fix}" if outcome.fix else ""
        )
    return line


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
    print("  dry run: nothing is sent" if settings.dry_run_requested else "  sending")

    # The entries are in the outbox already: nothing is kept again.
    delivery = Delivery(settings, suite, keep=None)
    for entry in entries:
        trigger = _trigger(entry, settings)
        if isinstance(trigger, str):
            print(f"  kept {entry.failure.nodeid}: {trigger}")
        else:
            delivery.submit(trigger)
    # No flush timeout: replay is what the user is waiting for.
    outcomes = delivery.finish(flush=False)
    if outcomes and all(o.dry_run == "no-credentials" for o in outcomes):
        # The component's verdict: nothing here could send them.
        print("  no API key, OAuth token or routing key is configured: nothing can be sent")
        return 1
    for outcome in outcomes:
        print(f"  {_line(outcome)}")
    confirmed = {
        entry_id
        for o in outcomes
        if o.status in ("created", "already-open")
        for entry_id in o.entry_ids
    }
    if any(o.status != "dry-run" for o in outcomes):
        open_alerts.update(remembered, [replace(o, quiet=False) for o in outcomes])
    remaining = outbox.remove(confirmed) if confirmed else len(entries) + len(unreadable)
    print(f"pagerduty replay: {len(confirmed)} sent, {remaining} left in {path}")
    return 0 if remaining == 0 else 1
