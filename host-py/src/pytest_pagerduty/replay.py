"""Replay: send the alerts kept in the outbox with the current settings,
through the same delivery pipeline (and the same outbox bookkeeping) as a
test run. A test run does the same by itself when it starts
(`pagerduty_auto_replay`); this is the command for doing it by hand.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from . import open_alerts, summary
from .delivery import Delivery, Outcome, reason_of
from .keeping import Keeper, component_facts, outboxes
from .outbox import Entry
from .settings import Settings


def _line(outcome: Outcome) -> str:
    if outcome.status == "dry-run" and outcome.request is not None:
        return f"would open: {outcome.title} ({outcome.request.method} {outcome.request.url})"
    if outcome.status == "failed":
        return f"dead letter {outcome.nodeid}: {outcome.reason}" + (
            f". Fix: {outcome.fix}" if outcome.fix else ""
        )
    if outcome.status in ("queued", "lost"):
        return f"kept {outcome.nodeid}: {outcome.reason}" + (
            f". Fix: {outcome.fix}" if outcome.fix else ""
        )
    return summary.line(outcome)


def _dead_line(entry: Entry) -> str:
    fix = f". Fix: {entry.fix}" if entry.fix else ""
    return f"dead letter {entry.failure.nodeid} ({entry.queued_at}): {entry.reason}{fix}"


def replay(
    settings: Settings,
    path: Path,
    suite: str,
    remembered: dict[str, dict[str, Any]],
    drop_dead: bool = False,
) -> int:
    """Sends every entry no live run owns (past `pagerduty_max_incidents`,
    as aggregates) and lists the dead letters, which are never re-sent
    blindly (`drop_dead` forgets them once handled). Records what PagerDuty
    confirmed in `remembered` (the open alerts) so a later pass resolves it.
    Returns 0 when the outbox is empty afterwards, 1 when entries remain."""
    try:
        from . import component  # noqa: F401  (wasmtime, which every send needs)
    except Exception as err:
        print(
            f"pagerduty replay: cannot send: wasmtime cannot load ({reason_of(err)}); "
            f"the outbox {path} is kept as it is. Fix: reinstall wasmtime for this platform "
            "(pip install --force-reinstall wasmtime)"
        )
        return 1
    boxes = [o for o in outboxes(path) if o.pending()]
    unreadable = sum(len(o.read().unreadable) for o in boxes)
    keeper = Keeper(settings, path, component_facts(settings.memory_limit_mib).secret_arguments)
    try:
        entries, dead = keeper.claim()
        print(f"pagerduty replay: {len(entries)} alert(s) to send from {path}")
        if keeper.busy:
            print(f"  {keeper.busy} alert(s) belong to a run still in progress: left to it")
        for entry in dead:
            print(f"  {_dead_line(entry)}")
        if drop_dead and dead:
            keeper.forget(dead)
            print(f"  {len(dead)} dead letter(s) forgotten")
        elif dead:
            print(
                "  dead letters are not re-sent: PagerDuty refused them for good. Fix the "
                "cause, then forget them with `python -m pytest_pagerduty replay --drop-dead`"
            )
        outcomes = _send(settings, suite, keeper, entries) if entries else []
    except OSError as err:
        print(f"pagerduty replay: cannot use the outbox: {reason_of(err)}")
        return 1
    finally:
        remaining = keeper.close()
    if unreadable:
        aside = ", ".join(str(o.unreadable_path) for o in boxes)
        print(
            f"  {unreadable} line(s) were not outbox entries (a torn or corrupted line): "
            f"moved to {aside}"
        )
    if outcomes and all(o.dry_run == "no-credentials" for o in outcomes):
        # The component's verdict: nothing here could send them.
        print("  no API key, OAuth token or routing key is configured: nothing can be sent")
        return 1
    for outcome in outcomes:
        print(f"  {_line(outcome)}")
    if any(o.status != "dry-run" for o in outcomes):
        open_alerts.update(remembered, [replace(o, quiet=False) for o in outcomes])
    sent = sum(o.status in ("created", "already-open") for o in outcomes)
    print(f"pagerduty replay: {sent} sent, {remaining} left in the outbox")
    return 0 if remaining == 0 else 1


def _send(settings: Settings, suite: str, keeper: Keeper, entries: list[Entry]) -> list[Outcome]:
    print("  dry run: nothing is sent" if settings.dry_run_requested else "  sending")
    delivery = Delivery(settings, suite, keeper)
    for entry in entries:
        trigger, problem = keeper.trigger_of(entry)
        if problem is not None:
            print(f"  kept {entry.failure.nodeid}: {problem}")
        else:
            delivery.submit(trigger)
    # No flush timeout: replay is what the user is waiting for.
    return delivery.finish(flush=False)
