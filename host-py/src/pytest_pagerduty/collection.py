"""At collection: find marked tests, have the component check each marker
and the settings, and stop the run before any test when one is wrong.

Verdicts the component gave before are remembered, keyed by all they depend
on (the component, wasmtime, the settings it sees, the marker's arguments),
so a repeat run checks nothing and never imports wasmtime.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from .settings import SPELLING, Settings, component_fields, component_settings, spelled
from .summary import printable

if TYPE_CHECKING:
    from .wit import DryRunReason

MARKER = "pagerduty_trigger_incident"
FIXTURE = "pagerduty_fixture"


class PagerDutyWarning(pytest.PytestWarning):
    """A marked test that will not page, or an incident that was not created."""


@dataclass(frozen=True)
class Paging:
    """A test that pages: the marker's arguments, to build its incident from."""

    arguments: Mapping[str, Any]
    positional: int


@dataclass
class Collected:
    """What collection learned: which tests page, and with what options."""

    paging: dict[str, Paging] = field(default_factory=dict)
    # nodeid -> the name a title uses: the nodeid without its path, when unique
    short_names: dict[str, str] = field(default_factory=dict)
    marked: int = 0
    # Mistakes in markers and settings, each naming the test and the fix.
    problems: list[str] = field(default_factory=list)
    # Why nothing can page this run, when the component could not be loaded.
    unavailable: str | None = None
    # The component's verdict on the run: a dry run, and why (none: it sends).
    dry_run: DryRunReason | None = None


def short_names(items: Sequence[pytest.Item]) -> dict[str, str]:
    """`TestClass::test_x[1]` for each nodeid whose tail no other test shares."""
    tails = {item.nodeid: item.nodeid.partition("::")[2] for item in items}
    counts = Counter(tails.values())
    return {nodeid: tail for nodeid, tail in tails.items() if tail and counts[tail] == 1}


def _warn_or_fail(message: str, problems: list[str], item: pytest.Item) -> None:
    """A warning pointing at the test's file and line; under `-W error`, one
    of the problems that stop the run."""
    path, line, _ = item.location
    try:
        filename = str(item.config.rootpath / path)
        warnings.warn_explicit(
            PagerDutyWarning(message), PagerDutyWarning, filename, (line or 0) + 1
        )
    except PagerDutyWarning:
        problems.append(message)


def _not_unicode(text: str) -> str | None:
    """Why a string cannot cross to the component (a WIT string is Unicode
    scalar values), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        bad = text[err.start : err.end]
        return f"a lone surrogate ({ascii(bad)[1:-1]}) at position {err.start}"
    return None


def _unsendable(marker: pytest.Mark) -> str | None:
    """A marker argument (or its name) holding text that is not valid
    Unicode, such as a lone surrogate from bytes decoded with
    `surrogateescape`: the component could never be handed it."""

    def search(value: object) -> str | None:
        if isinstance(value, str):
            return _not_unicode(value)
        if isinstance(value, (list, tuple)):
            return next((p for p in map(search, value) if p), None)
        if isinstance(value, dict):
            return next((p for p in map(search, [*value, *value.values()]) if p), None)
        return None

    for name, value in marker.kwargs.items():
        problem = _not_unicode(name) if isinstance(name, str) else None
        shown = ascii(name) if problem else name
        problem = problem or search(value)
        if problem:
            return (
                f"the argument {shown} holds text that is not valid Unicode: {problem}. "
                "Fix: pass text PagerDuty can show (decode bytes with errors='replace', or "
                "write the character out)"
            )
    return None


def _secret_digest(value: str | None) -> str | None:
    """What a verdict key holds of a secret: a digest, never the value."""
    if value is None:
        return None
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def checked_view(settings: Settings) -> dict[str, Any]:
    """Everything of the settings the component's verdicts depend on: the
    `settings` record it is opened with (each secret as a digest) and the
    memory it is given."""
    view = component_fields(settings)
    for name in ("api_key", "oauth_token", "routing_key"):
        view[name] = _secret_digest(view[name])
    view["memory_limit_mib"] = settings.memory_limit_mib
    return view


def check(items: Sequence[pytest.Item], settings: Settings) -> Collected:
    """Checks every marked item; `problems` lists every mistake."""
    collected = Collected(short_names=short_names(items))
    marked = [(item, item.get_closest_marker(MARKER)) for item in items]
    marked_items = [(item, m) for item, m in marked if m is not None]
    collected.marked = len(marked_items)
    if not marked_items:
        return collected  # wasmtime is never imported

    problems: list[str] = []
    checkable: list[tuple[pytest.Item, pytest.Mark]] = []
    for item, marker in marked_items:
        unsendable = _unsendable(marker)
        if unsendable:
            problems.append(f"{item.nodeid}: @pytest.mark.{MARKER}: {unsendable}")
        else:
            checkable.append((item, marker))

    from .verdicts import Verdicts

    verdicts = Verdicts()
    # A verdict holds only for the settings it was given with: a marker the
    # component accepts with a routing key may lack what the REST API needs.
    view = checked_view(settings)
    settings_key = verdicts.key("settings", view)
    # The component's dry-run verdict is remembered with the settings, so a
    # green run can say it was a dry run without loading wasmtime.
    reasons: tuple[DryRunReason | None, ...] = ("requested", "no-credentials", None)
    dry_run_keys = {reason: verdicts.key("dry-run", [view, reason]) for reason in reasons}
    known_dry_run = [r for r, k in dry_run_keys.items() if verdicts.known(k)]
    # One verdict key per distinct marker, not per test: hashing is the cost.
    by_content: dict[str, str] = {}
    marker_keys: dict[str, str] = {}
    for item, marker in checkable:
        content = repr((marker.args, sorted(marker.kwargs.items())))
        if content not in by_content:
            by_content[content] = verdicts.key("marker", [view, marker.args, marker.kwargs])
        marker_keys[item.nodeid] = by_content[content]
    unknown = {key for key in marker_keys.values() if not verdicts.known(key)}
    if unknown or not verdicts.known(settings_key) or not known_dry_run:
        problems += _check_with_component(
            checkable, marker_keys, unknown, settings, settings_key, verdicts, collected
        )
        if collected.unavailable:
            return collected
        if verdicts.known(settings_key):  # the component accepted the settings
            verdicts.remember([dry_run_keys[collected.dry_run]])
    else:
        collected.dry_run = known_dry_run[0]
    for item, marker in checkable:
        if FIXTURE not in getattr(item, "fixturenames", ()):
            _warn_or_fail(
                f"{item.nodeid} has @pytest.mark.{MARKER} but does not use {FIXTURE}: "
                f'it will not page. Add @pytest.mark.usefixtures("{FIXTURE}").',
                problems,
                item,
            )
            continue
        collected.paging[item.nodeid] = Paging(dict(marker.kwargs), len(marker.args))
    # Shown, never obeyed: a marker's text may hold control characters.
    collected.problems = [printable(problem) for problem in problems]
    return collected


def _one_line(err: BaseException) -> str:
    """An exception in one line: the line that says most (a trap's message
    ends with its cause, after the backtrace)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return printable(lines[-1] if lines else type(err).__name__)


def _turn_off(collected: Collected, why: str) -> list[str]:
    collected.unavailable = why
    with contextlib.suppress(PagerDutyWarning):  # not even under -W error
        warnings.warn(PagerDutyWarning(f"{why}; no test will page"), stacklevel=3)
    return []


def _check_with_component(
    marked_items: list[tuple[pytest.Item, pytest.Mark]],
    marker_keys: dict[str, str],
    unknown: set[str],
    settings: Settings,
    settings_key: str,
    verdicts: Any,
    collected: Collected,
) -> list[str]:
    """Has the component check what it has not accepted before. Nothing the
    component or wasmtime does here can take the run down: at worst, paging
    is off and the summary says why."""
    try:  # importing wasmtime can fail too (no wheel for this platform)
        from .component import Pager

        pager = Pager.open(component_settings(settings), settings.memory_limit_mib)
    except Exception as err:  # never take the run down with us
        return _turn_off(collected, f"the embedded component could not be loaded: {_one_line(err)}")
    try:
        return _ask(
            pager, marked_items, marker_keys, unknown, settings, settings_key, verdicts, collected
        )
    except Exception as err:  # a trap, or a value wasmtime cannot pass
        why = f"the embedded component failed while checking the markers: {_one_line(err)}"
        return _turn_off(collected, why)


def _ask(
    pager: Any,
    marked_items: list[tuple[pytest.Item, pytest.Mark]],
    marker_keys: dict[str, str],
    unknown: set[str],
    settings: Settings,
    settings_key: str,
    verdicts: Any,
    collected: Collected,
) -> list[str]:
    from . import wit

    if isinstance(pager, wit.SettingsError):
        # Markers are checked against the settings: fix these first.
        key, source = SPELLING[pager.setting], settings.source(pager.setting)
        return [f"{key} (from {source}): {pager.problem}. Fix: {pager.fix} ({spelled(key)})"]
    problems: list[str] = []
    accepted: list[str] = [settings_key]
    dry_run = pager.dry_run()
    rejected: dict[str, Any] = {}
    for item, marker in marked_items:
        key = marker_keys[item.nodeid]
        if key not in unknown:
            continue
        if key not in rejected:
            verdict = pager.marker(marker.kwargs, len(marker.args))
            if isinstance(verdict, wit.MarkerError):
                rejected[key] = verdict
            else:
                accepted.append(key)
                unknown.discard(key)
                continue
        verdict = rejected[key]
        problems.append(
            f"{item.nodeid}: @pytest.mark.{MARKER}: {verdict.problem}. Fix: {verdict.fix}"
        )
    collected.dry_run = dry_run
    verdicts.remember(accepted)
    return problems
