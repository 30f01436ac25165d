"""The plugin's section of the terminal summary, and the dry-run file."""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .open_alerts import AGGREGATE

if TYPE_CHECKING:  # the mirrors cost ~50 ms to import: a green run never does
    from . import wit
    from .delivery import Outcome
    from .settings import Settings


def redacted(request: wit.AlertRequest) -> dict[str, Any]:
    from . import wit  # loaded already whenever there is a request to show

    return wit.redacted(request)


def write_dry_run(path: Path, outcomes: Sequence[Outcome]) -> None:
    requests = [
        {"nodeid": o.nodeid, "title": o.title, "request": redacted(o.request)}
        for o in outcomes
        if o.request is not None
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(requests, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _fix(outcome: Outcome) -> str:
    return f" Fix: {outcome.fix}" if outcome.fix else ""


def line(outcome: Outcome) -> str:
    name = outcome.title or outcome.nodeid
    if outcome.what == "resolve":
        if outcome.status == "resolved" and outcome.nodeid.startswith(AGGREGATE):
            key = outcome.nodeid.removeprefix(AGGREGATE)
            return f"resolved: the aggregate alert {key}: its tests pass again"
        if outcome.status == "resolved":
            return f"resolved: {outcome.nodeid} passes again"
        if outcome.status == "dry-run" and outcome.request is not None:
            return (
                f"would resolve: {outcome.nodeid} ({outcome.request.method} {outcome.request.url})"
            )
        return f"not resolved: {outcome.nodeid}: {outcome.reason}.{_fix(outcome)}"
    if outcome.what == "aggregate" and outcome.status == "created":
        return (
            f"created (one for {len(outcome.covers)} failures past pagerduty_max_incidents): {name}"
        )
    if outcome.status == "created":
        incident = outcome.incident
        number = incident.number if incident else None
        link = f" {incident.html_url}" if incident and incident.html_url else ""
        shown = f"#{number}" if number is not None else "(number unknown)"
        return f"created {shown}: {name}{link}"
    if outcome.status == "already-open":
        return f"already open: {name} ({outcome.reason})"
    if outcome.status == "dry-run" and outcome.request is not None:
        request = redacted(outcome.request)
        lines = [f"would open: {name}", f"    {request['method']} {request['url']}"]
        lines += [f"    {header}: {value}" for header, value in request["headers"].items()]
        lines.append(f"    {request['body']}")
        return "\n".join(lines)
    if outcome.status == "dry-run":  # one of an aggregate's failures
        return f"would open (listed in the alert above): {name}"
    if outcome.status == "queued":
        return f"queued: {name}: {outcome.reason}.{_fix(outcome)}"
    if outcome.status == "lost":
        return f"LOST: {name}: {outcome.reason}"
    return f"failed: {name}: {outcome.reason}.{_fix(outcome)}"


def _flaky_note(nodeid: str, outcomes: Sequence[Outcome]) -> str:
    """What became of a flaky test's info alert, if one was sent."""
    alert = next((o for o in outcomes if o.nodeid == nodeid and o.what == "trigger"), None)
    if alert is None:
        return "not paged"
    if alert.status in ("created", "already-open"):
        return "an info alert was sent"
    if alert.status == "dry-run":
        return "an info alert was built, not sent"
    return f"its info alert was not sent: {alert.status}, as listed above"


def replay_command(outbox: Path) -> str:
    return f"python -m pytest_pagerduty replay --outbox {shlex.quote(str(outbox))}"


def lines(
    outcomes: Sequence[Outcome],
    settings: Settings,
    dry_run_file: Path | None,
    flaky: Sequence[str] = (),
    dry_run: wit.DryRunReason | None = None,
) -> list[str]:
    """One line per alert (one for all those a refused credential held back,
    one for the quiet resolves), the flaky tests, then the counts."""
    out: list[str] = []
    quiet = [o for o in outcomes if o.quiet]
    outcomes = [o for o in outcomes if not o.quiet]
    held_back = [o for o in outcomes if o.held_back]
    for outcome in outcomes:
        if outcome not in held_back:
            out.append(line(outcome))
    if quiet:
        done = sum(1 for o in quiet if o.status in ("resolved", "dry-run"))
        out.append(
            f"resolve sent for {done} of {len(quiet)} passing test(s) (pagerduty_resolve = always)"
        )
    for nodeid in flaky:
        out.append(
            f"flaky: {nodeid} failed, then passed on rerun ({_flaky_note(nodeid, outcomes)})"
        )
    if held_back:
        out.append(
            f"queued: {len(held_back)} more incident(s) not sent, since every request with "
            "these settings would be refused as above"
        )
    # Why the component made these a dry run: asked for, or no credentials
    # (or, when nothing failed, its verdict on the run at collection).
    reasons = {o.dry_run for o in outcomes if o.status == "dry-run"}
    if not outcomes and dry_run:
        reasons = {dry_run}
    if reasons:
        why = (
            "--pagerduty_dry_run"
            if "requested" in reasons
            else "no API key, OAuth token or routing key is configured"
        )
        built = sum(1 for o in outcomes if o.status == "dry-run" and o.request is not None)
        where = f"; requests written to {dry_run_file}" if dry_run_file and built else ""
        out.append(f"dry run ({why}): {built} incident(s) built, nothing sent{where}")
    counts: Counter[str] = Counter(o.status for o in outcomes)
    kept = sorted({o.outbox for o in outcomes if o.outbox is not None})
    parts = [
        f"{counts[status]} {label}"
        for status, label in (
            ("created", "created"),
            ("already-open", "already open"),
            ("resolved", "resolved"),
        )
        if counts[status]
    ]
    if kept:
        queued = sum(1 for o in outcomes if o.outbox is not None and o.status != "failed")
        later = "the next run here sends them, or " if settings.auto_replay else "send later: "
        if queued:
            parts.append(f"{queued} queued in {kept[0]} ({later}{replay_command(kept[0])})")
    if counts["failed"]:
        dead = sum(1 for o in outcomes if o.outbox is not None and o.status == "failed")
        letters = f" (kept as dead letters in {kept[0]}: see replay)" if dead and kept else ""
        parts.append(f"{counts['failed']} failed permanently{letters}")
    if counts["lost"]:
        parts.append(f"{counts['lost']} LOST")
    replayed = [o for o in outcomes if o.replayed]
    if replayed:
        sent = sum(1 for o in replayed if o.status in ("created", "already-open"))
        out.append(
            f"replayed {len(replayed)} alert(s) an earlier run kept in the outbox: {sent} sent "
            "(pagerduty_auto_replay)"
        )
    if parts:
        out.append("PagerDuty: " + ", ".join(parts))
    return out
