"""pytest-pagerduty: open a PagerDuty incident when a marked test fails.

Registered through the `pytest11` entry point `pytest_pagerduty.plugin`;
`pytest_plugins = ["pytest_pagerduty.plugin"]` in a conftest names the same
plugin, and `-p no:pytest_pagerduty.plugin` turns it off.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from . import collection, failure, settings, summary
from .collection import FIXTURE, MARKER, PagerDutyWarning
from .delivery import Delivery, Job, Outcome

reporter_key = pytest.StashKey["PagerDutyReporter"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(service_id, urgency=None, priority_id=None, escalation_policy_id=None, "
        "incident_key=None, details=None, assignee_id=None): open a PagerDuty incident when "
        f"this test fails (the test must also use the {FIXTURE} fixture)",
    )
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


def state_path(config: pytest.Config, name: str) -> Path:
    """A file in pytest's cache directory (`.pytest_cache/d/pagerduty`), or
    in the rootdir when the cache plugin is off."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("pagerduty")) / name
    try:  # before pytest_configure (replay), find the directory as the cache would
        cache_dir = os.path.expanduser(os.path.expandvars(config.getini("cache_dir")))
    except ValueError:  # -p no:cacheprovider
        return Path(config.rootpath, f".pagerduty-{name}")
    return Path(config.rootpath, cache_dir, "d", "pagerduty", name)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """`--pagerduty_replay`: send the outbox with this run's settings, then exit."""
    if not config.getoption("pagerduty_replay", False):
        return None
    from .replay import replay

    resolved = settings.resolve(config)
    return replay(resolved, resolved.outbox or state_path(config, "outbox.jsonl"))


class PagerDutyReporter:
    """Run state: checked markers, the delivery worker, the summary."""

    def __init__(self, config: pytest.Config, resolved: settings.Settings) -> None:
        self.config = config
        self.settings = resolved
        self.collected = collection.Collected()
        self.delivery = Delivery(resolved, self.outbox_path)
        self.outcomes: list[Outcome] = []
        self.dry_run_file: Path | None = None

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.collected = collection.check(items, self.settings)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        paging = self.collected.paging.get(item.nodeid)
        if paging is not None and failure.pages(report, self.settings.page_on_error):
            short_name = self.collected.short_names.get(item.nodeid)
            described = failure.describe(item, report, call, short_name)
            self.delivery.submit(Job(described, paging.arguments, paging.positional))

    def pytest_sessionfinish(self) -> None:
        self.outcomes = self.delivery.finish()
        if self.settings.dry_run and self.outcomes:
            self.dry_run_file = self._dry_run_path()
            try:
                summary.write_dry_run(self.dry_run_file, self.outcomes)
            except OSError as err:
                self._warn(f"could not write the dry-run file {self.dry_run_file}: {err}")
                self.dry_run_file = None
        for outcome in self.outcomes:
            if outcome.status in ("queued", "failed", "lost") and not outcome.request:
                verb = {"queued": "kept in the outbox", "failed": "not created", "lost": "LOST"}
                self._warn(
                    f"incident for {outcome.nodeid} {verb[outcome.status]}: {outcome.reason}",
                    where=outcome.nodeid.partition("::")[0],
                )

    def _dry_run_path(self) -> Path:
        return self.settings.dry_run_file or state_path(self.config, "dry-run.json")

    def outbox_path(self) -> Path:
        return self.settings.outbox or state_path(self.config, "outbox.jsonl")

    def _warn(self, message: str, where: str = "pytest_pagerduty") -> None:
        # A delivery problem is a warning, never a failure: even with warnings
        # turned into errors it must not change the run's exit status.
        with contextlib.suppress(PagerDutyWarning):
            warnings.warn_explicit(PagerDutyWarning(message), PagerDutyWarning, where, 0)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.collected.marked:
            return
        terminalreporter.write_sep("=", "PagerDuty")
        lines = summary.lines(self.outcomes, self.settings, self.dry_run_file)
        if self.collected.unavailable:
            lines.insert(0, f"paging is off: {self.collected.unavailable}")
        if not lines:
            lines = [f"no incidents: none of the {self.collected.marked} marked test(s) failed"]
        for line in lines:
            terminalreporter.write_line(line)
