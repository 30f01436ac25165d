"""At collection: find marked tests, have the component check each marker,
and stop the run before any test when one is wrong."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from .settings import Settings

MARKER = "pagerduty_trigger_incident"
FIXTURE = "pagerduty_fixture"


class PagerDutyWarning(pytest.PytestWarning):
    """A marked test that will not page, or an incident that was not created."""


@dataclass(frozen=True)
class Paging:
    """A test that pages: the marker's arguments and the component's verdict."""

    # The component's accepted options (an opaque record).
    options: Any
    # The marker's arguments as written, kept to rebuild the incident on replay.
    arguments: Mapping[str, Any]
    positional: int


@dataclass
class Collected:
    """What collection learned: which tests page, and with what options."""

    paging: dict[str, Paging] = field(default_factory=dict)
    # nodeid -> the name a title uses: the nodeid without its path, when unique
    short_names: dict[str, str] = field(default_factory=dict)
    marked: int = 0
    # Why nothing can page this run, when the component could not be loaded.
    unavailable: str | None = None


def short_names(items: Sequence[pytest.Item]) -> dict[str, str]:
    """`TestClass::test_x[1]` for each nodeid whose tail no other test shares."""
    tails = {item.nodeid: item.nodeid.partition("::")[2] for item in items}
    counts = Counter(tails.values())
    return {nodeid: tail for nodeid, tail in tails.items() if tail and counts[tail] == 1}


def _arguments_key(marker: pytest.Mark) -> str:
    return repr((marker.args, sorted(marker.kwargs.items())))


def check(items: Sequence[pytest.Item], settings: Settings) -> Collected:
    """Checks every marked item; raises `pytest.UsageError` listing all mistakes."""
    collected = Collected(short_names=short_names(items))
    marked = [(item, item.get_closest_marker(MARKER)) for item in items]
    marked_items = [(item, m) for item, m in marked if m is not None]
    collected.marked = len(marked_items)
    if not marked_items:
        return collected  # wasmtime is never imported

    from .component import Alerts

    try:
        alerts = Alerts(settings.memory_limit_mib)
    except Exception as err:  # never take the run down with us
        collected.unavailable = f"the embedded component could not be loaded: {err}"
        warnings.warn(PagerDutyWarning(f"{collected.unavailable}; no test will page"), stacklevel=1)
        return collected
    problems: list[str] = []
    settings_error = alerts.check_settings(settings)
    if settings_error is not None:
        source = settings.source(settings_error.setting)
        problems.append(
            f"{settings_error.setting} (from {source}): {settings_error.problem}. "
            f"Fix: {settings_error.fix}"
        )
    verdicts: dict[str, Any] = {}  # identical markers are checked once
    for item, marker in marked_items:
        key = _arguments_key(marker)
        if key not in verdicts:
            verdicts[key] = alerts.check_marker(marker.kwargs, len(marker.args))
        verdict = verdicts[key]
        if hasattr(verdict, "problem"):
            problems.append(
                f"{item.nodeid}: @pytest.mark.{MARKER}: {verdict.problem}. Fix: {verdict.fix}"
            )
            continue
        if FIXTURE not in getattr(item, "fixturenames", ()):
            warnings.warn(
                PagerDutyWarning(
                    f"{item.nodeid} has @pytest.mark.{MARKER} but does not use {FIXTURE}: "
                    f'it will not page. Add @pytest.mark.usefixtures("{FIXTURE}").'
                ),
                stacklevel=1,
            )
            continue
        collected.paging[item.nodeid] = Paging(verdict, dict(marker.kwargs), len(marker.args))
    if problems:
        raise pytest.UsageError(
            "pagerduty: fix these before the run can page anyone:\n  " + "\n  ".join(problems)
        )
    return collected
