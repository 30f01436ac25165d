"""The plugin's section of the terminal summary, and the dry-run file.

What reaches the terminal is shown, never obeyed: control characters in a
test id, a title or PagerDuty's answer (an ANSI escape, a NUL, a newline
that would forge a line) are printed as their escapes.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .open_alerts import AGGREGATE
from .redaction import scrubbed

if TYPE_CHECKING:  # the mirrors cost ~50 ms to import: a green run never does
    from . import wit
    from .delivery import Outcome
    from .settings import Settings


# C0 and C1 controls, DEL, the bidirectional overrides and isolates (which
# reorder what a terminal shows), and lone surrogates (which cannot be printed).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """The text with every control character shown as its escape (`\\x1b`)."""
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)


def redacted(request: wit.AlertRequest) -> dict[str, Any]:
    from . import wit  # loaded already whenever there is a request to show

    return wit.redacted(request)


def write_dry_run(path: Path, outcomes: Sequence[Outcome], secrets: Sequence[str] = ()) -> None:
    """The requests a dry run built, as the component says they may be shown,
    and with none of the run's secrets anywhere (a key in a test id, say)."""
    requests = [
        {"nodeid": o.nodeid, "title": o.title, "request": redacted(o.request)}
        for o in outcomes
        if o.request is not None
    ]
    text = json.dumps(scrubbed(requests, secrets), indent=2, ensure_ascii=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8", errors="backslashreplace")


def _fix(outcome: Outcome) -> str:
    return f" Fix: {printable(outcome.fix)}" if outcome.fix else ""


# How much of an alert's text a dry run shows; the file holds it all.
PREVIEW_TEXT_LINES = 4
PREVIEW_FIELD_CHARS = 80


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def preview(request: wit.AlertRequest) -> list[str]:
    """A request as a person reads it: where it goes, the short fields of
    its body (service, urgency, assignee, severity... whatever it holds),
    its key, and the first lines of its text. Nothing here knows
    PagerDuty's fields: the body is shown as the component built it."""
    shown = redacted(request)
    try:
        body = json.loads(shown["body"])
    except ValueError:
        body = shown["body"]
    leaves = [(p, v) for p, v in _leaves(body) if not p.endswith(".type") and v is not None]
    texts = [(p, v) for p, v in leaves if isinstance(v, str)]
    text_path, text = max(texts, key=lambda t: len(t[1])) if texts else ("", "")
    fields = [
        f"{p.rsplit('.', 1)[-1] if p.count('.') < 2 else p.split('.', 1)[1]}: {v}"
        for p, v in leaves
        if p != text_path
        and v not in (request.title, request.dedup_key)
        and len(str(v)) <= PREVIEW_FIELD_CHARS
    ]
    lines = [f"    {shown['method']} {shown['url']}"]
    if fields:
        lines.append("    " + " · ".join(fields))
    lines.append(f"    key: {request.dedup_key}")
    body_lines = text.splitlines()
    lines += [f"    | {line}" for line in body_lines[:PREVIEW_TEXT_LINES]]
    if len(body_lines) > PREVIEW_TEXT_LINES:
        lines.append(f"    | … ({len(body_lines) - PREVIEW_TEXT_LINES} more lines in the file)")
    return lines


def line(outcome: Outcome) -> str:
    """One outcome, every field of it printable."""
    nodeid, reason = printable(outcome.nodeid), printable(outcome.reason)
    name = printable(outcome.title) or nodeid
    if outcome.what == "fallback":
        if outcome.status in ("created", "already-open"):
            return f"fallback alert sent: {nodeid} could not page"
        if outcome.status == "dry-run":
            return f"would send a fallback alert: {nodeid} could not page"
        return f"fallback alert NOT sent for {nodeid}: {reason}.{_fix(outcome)}"
    if outcome.what == "note":
        if outcome.status == "noted":
            return f"noted on its open incident: {nodeid} failed again"
        said = reason if reason.startswith("not noted") else f"not noted: {reason}"
        return f"{nodeid}: {said}.{_fix(outcome)}"
    if outcome.status == "counting":
        return f"{reason}: {name}"
    if outcome.what == "resolve":
        if outcome.status == "resolved" and nodeid.startswith(AGGREGATE):
            key = nodeid.removeprefix(AGGREGATE)
            return f"resolved: the aggregate alert {key}: its tests pass again"
        if outcome.status == "resolved":
            return f"resolved: {nodeid} passes again"
        if outcome.status == "dry-run" and outcome.request is not None:
            target = f"{outcome.request.method} {outcome.request.url}"
            return f"would resolve: {nodeid} ({printable(target)})"
        return f"not resolved: {nodeid}: {reason}.{_fix(outcome)}"
    if outcome.what == "aggregate" and outcome.status == "created":
        return (
            f"created (one for {len(outcome.covers)} failures past pagerduty_max_incidents): {name}"
        )
    if outcome.status == "created":
        incident = outcome.incident
        number = incident.number if incident else None
        link = f" {printable(incident.html_url)}" if incident and incident.html_url else ""
        shown = f"#{number}" if number is not None else "(number unknown)"
        return f"created {shown}: {name}{link}"
    if outcome.status == "already-open":
        return f"already open: {name} ({reason})"
    if outcome.status == "dry-run" and outcome.request is not None:
        lines = [f"would open: {name}", *preview(outcome.request)]
        return "\n".join(printable(line) for line in lines)
    if outcome.status == "dry-run":  # one of an aggregate's failures
        return f"would open (listed in the alert above): {name}"
    if outcome.status == "queued":
        return f"queued: {name}: {reason}.{_fix(outcome)}"
    if outcome.status == "lost":
        return f"LOST: {name}: {reason}"
    return f"failed: {name}: {reason}.{_fix(outcome)}"


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
        # Why the others were not: one line per distinct answer, not per test.
        unresolved: Counter[tuple[str, str]] = Counter(
            (o.reason, o.fix) for o in quiet if o.status not in ("resolved", "dry-run")
        )
        for (reason, fix), count in unresolved.items():
            shown_fix = f" Fix: {printable(fix)}" if fix else ""
            out.append(f"  not resolved ({count}): {printable(reason)}.{shown_fix}")
    for nodeid in flaky:
        note = _flaky_note(nodeid, outcomes)
        out.append(f"flaky: {printable(nodeid)} failed, then passed on rerun ({note})")
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
        shown = printable(str(dry_run_file))
        where = f"; requests written to {shown}" if dry_run_file and built else ""
        out.append(f"dry run ({why}): {built} incident(s) built, nothing sent{where}")
    fallbacks = [o for o in outcomes if o.what == "fallback"]
    noted = sum(1 for o in outcomes if o.what == "note" and o.status == "noted")
    outcomes = [o for o in outcomes if o.what not in ("fallback", "note")]
    counts: Counter[str] = Counter(o.status for o in outcomes)
    kept = sorted({o.outbox for o in outcomes if o.outbox is not None})
    parts = [
        f"{counts[status]} {label}"
        for status, label in (
            ("created", "created"),
            ("already-open", "already open"),
            ("resolved", "resolved"),
            ("counting", "counting toward page_after_failures"),
        )
        if counts[status]
    ]
    if noted:
        parts.append(f"{noted} noted on open incidents")
    if kept:
        where = printable(str(kept[0]))
        queued = sum(1 for o in outcomes if o.outbox is not None and o.status != "failed")
        later = "the next run here sends them, or " if settings.auto_replay else "send later: "
        if queued:
            command = printable(replay_command(kept[0]))
            parts.append(f"{queued} queued in {where} ({later}{command})")
    if counts["failed"]:
        dead = sum(1 for o in outcomes if o.outbox is not None and o.status == "failed")
        letters = f" (kept as dead letters in {where}: see replay)" if dead and kept else ""
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
    sent = sum(1 for o in fallbacks if o.status in ("created", "already-open"))
    if sent:
        parts.append(f"{sent} fallback alert(s) sent")
    if parts:
        out.append("PagerDuty: " + ", ".join(parts))
    return out
