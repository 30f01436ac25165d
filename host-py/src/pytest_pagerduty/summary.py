"""The plugin's section of the terminal summary, and the dry-run file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .delivery import Outcome
from .settings import Settings


def write_dry_run(path: Path, outcomes: Sequence[Outcome]) -> None:
    requests = [
        {"nodeid": o.nodeid, "title": o.title, "request": o.request.redacted()}
        for o in outcomes
        if o.request is not None
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(requests, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _incident_line(outcome: Outcome) -> str:
    incident = outcome.incident
    number = (
        f"#{incident.number}" if incident and incident.number is not None else "(number unknown)"
    )
    link = f" {incident.html_url}" if incident and incident.html_url else ""
    return f"created {number}: {outcome.title}{link}"


def lines(outcomes: Sequence[Outcome], settings: Settings, dry_run_file: Path | None) -> list[str]:
    """One line per incident, or one for a cause that stopped them all."""
    out: list[str] = []
    fatal = next((o for o in outcomes if o.fatal), None)
    for outcome in outcomes:
        if outcome.status == "created":
            out.append(_incident_line(outcome))
        elif outcome.status == "already-open":
            out.append(f"already open: {outcome.title} ({outcome.reason})")
        elif outcome.status == "dry-run" and outcome.request is not None:
            out.append(
                f"would open: {outcome.title} ({outcome.request.method} {outcome.request.url})"
            )
        elif outcome.status == "not-sent" and fatal is not None and not outcome.fix:
            continue  # counted on the fatal line
        else:
            fix = f" Fix: {outcome.fix}" if outcome.fix else ""
            name = outcome.title or outcome.nodeid
            out.append(f"not created: {name}: {outcome.reason}.{fix}")
    if fatal is not None:
        skipped = sum(1 for o in outcomes if o.status == "not-sent" and not o.fix)
        if skipped:
            out.append(
                f"not sent: {skipped} more incident(s), since PagerDuty refused "
                f"the credentials above"
            )
    if settings.dry_run:
        why = (
            "no API key or OAuth token is configured"
            if settings.no_credentials
            else "--pagerduty_dry_run"
        )
        built = sum(1 for o in outcomes if o.status == "dry-run")
        where = f"; requests written to {dry_run_file}" if dry_run_file and built else ""
        out.append(f"dry run ({why}): {built} incident(s) built, nothing sent{where}")
    return out
