"""At collection: find marked tests, have the component check each marker
and the settings, and stop the run before any test when one is wrong.

Verdicts the component gave before (same component, same values) are
remembered, so a repeat run checks nothing and never imports wasmtime.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from .settings import Settings, component_fields

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


def short_names(items: Sequence[pytest.Item]) -> dict[str, str]:
    """`TestClass::test_x[1]` for each nodeid whose tail no other test shares."""
    tails = {item.nodeid: item.nodeid.partition("::")[2] for item in items}
    counts = Counter(tails.values())
    return {nodeid: tail for nodeid, tail in tails.items() if tail and counts[tail] == 1}


def _warn_or_fail(message: str, problems: list[str]) -> None:
    """A warning; under `-W error`, one of the problems that stop the run."""
    try:
        warnings.warn(PagerDutyWarning(message), stacklevel=2)
    except PagerDutyWarning:
        problems.append(message)


def check(items: Sequence[pytest.Item], settings: Settings) -> Collected:
    """Checks every marked item; `problems` lists every mistake."""
    collected = Collected(short_names=short_names(items))
    marked = [(item, item.get_closest_marker(MARKER)) for item in items]
    marked_items = [(item, m) for item, m in marked if m is not None]
    collected.marked = len(marked_items)
    if not marked_items:
        return collected  # wasmtime is never imported

    from .verdicts import Verdicts

    verdicts = Verdicts()
    settings_key = verdicts.key("settings", component_fields(settings))
    marker_keys = {
        item.nodeid: verdicts.key("marker", [marker.args, marker.kwargs])
        for item, marker in marked_items
    }
    unknown = {key for key in marker_keys.values() if not verdicts.known(key)}
    problems: list[str] = []
    if unknown or not verdicts.known(settings_key):
        problems += _check_with_component(
            marked_items, marker_keys, unknown, settings, settings_key, verdicts, collected
        )
        if collected.unavailable:
            return collected
    for item, marker in marked_items:
        if FIXTURE not in getattr(item, "fixturenames", ()):
            _warn_or_fail(
                f"{item.nodeid} has @pytest.mark.{MARKER} but does not use {FIXTURE}: "
                f'it will not page. Add @pytest.mark.usefixtures("{FIXTURE}").',
                problems,
            )
            continue
        collected.paging[item.nodeid] = Paging(dict(marker.kwargs), len(marker.args))
    collected.problems = problems
    return collected


def _check_with_component(
    marked_items: list[tuple[pytest.Item, pytest.Mark]],
    marker_keys: dict[str, str],
    unknown: set[str],
    settings: Settings,
    settings_key: str,
    verdicts: Any,
    collected: Collected,
) -> list[str]:
    """Has the component check what it has not accepted before."""
    from .component import Alerts

    try:
        alerts = Alerts(settings.memory_limit_mib)
    except Exception as err:  # never take the run down with us
        collected.unavailable = f"the embedded component could not be loaded: {err}"
        with contextlib.suppress(PagerDutyWarning):  # not even under -W error
            warnings.warn(
                PagerDutyWarning(f"{collected.unavailable}; no test will page"), stacklevel=2
            )
        return []
    problems: list[str] = []
    accepted: list[str] = []
    settings_error = alerts.check_settings(settings)
    if settings_error is None:
        accepted.append(settings_key)
    else:
        source = settings.source(settings_error.setting)
        problems.append(
            f"{settings_error.setting} (from {source}): {settings_error.problem}. "
            f"Fix: {settings_error.fix}"
        )
    rejected: dict[str, Any] = {}
    for item, marker in marked_items:
        key = marker_keys[item.nodeid]
        if key not in unknown:
            continue
        if key not in rejected:
            verdict = alerts.check_marker(marker.kwargs, len(marker.args), settings)
            if hasattr(verdict, "problem"):
                rejected[key] = verdict
            else:
                accepted.append(key)
                unknown.discard(key)
                continue
        verdict = rejected[key]
        problems.append(
            f"{item.nodeid}: @pytest.mark.{MARKER}: {verdict.problem}. Fix: {verdict.fix}"
        )
    verdicts.remember(accepted)
    return problems
