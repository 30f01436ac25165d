"""pytest-pagerduty: open a PagerDuty incident when a marked test fails.

Registered through the `pytest11` entry point `pytest_pagerduty.plugin`;
`pytest_plugins = ["pytest_pagerduty.plugin"]` in a conftest names the same
plugin, and `-p no:pytest_pagerduty.plugin` turns it off.

PYTEST_DONT_REWRITE: pytest rewrites the asserts of a plugin's modules on every
run where bytecode is not cached (PYTHONDONTWRITEBYTECODE, common in CI
images); nothing here needs it, and skipping it saves ~80 ms at start-up.
"""

from __future__ import annotations

import pytest

from . import open_alerts, settings
from .collection import FIXTURE, MARKER
from .reporter import PagerDutyReporter, state_path

reporter_key = pytest.StashKey["PagerDutyReporter"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(service_id, urgency=None, priority_id=None, escalation_policy_id=None, "
        "incident_key=None, details=None, assignee_id=None, routing_key=None, severity=None, "
        "dedup_key=None): open a PagerDuty incident (or Events API v2 alert) when this test "
        f"fails, resolve it when it passes again (the test must also use the {FIXTURE} "
        "fixture)",
    )
    if not settings.enabled(config):
        return  # the marker and fixture stay known; nothing else happens
    reporter = PagerDutyReporter(config, settings.resolve(config))
    config.stash[reporter_key] = reporter
    config.pluginmanager.register(reporter, "pagerduty-reporter")


def pytest_unconfigure(config: pytest.Config) -> None:
    reporter = config.stash.get(reporter_key, None)
    if reporter is not None:
        del config.stash[reporter_key]
        config.pluginmanager.unregister(reporter)


@pytest.fixture
def pagerduty_fixture() -> None:
    """Opts a test in to paging: with the marker, a failure opens an incident.

    The fixture does no work itself; incidents are sent in the background
    after the test's report, so a failing test never waits on PagerDuty.
    """


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """`--pagerduty_replay`: send the outbox with this run's settings, then exit."""
    if not config.getoption("pagerduty_replay", False):
        return None
    from .replay import replay

    resolved = settings.resolve(config)
    # What replay opens is remembered like a run's alerts, so a pass resolves it.
    remembered = open_alerts.load(config)
    try:
        outbox = resolved.outbox or state_path(config, "outbox.jsonl")
        drop_dead = bool(config.getoption("pagerduty_drop_dead", False))
        return replay(resolved, outbox, config.rootpath.name, remembered, drop_dead)
    finally:
        open_alerts.save(config, remembered)
