"""Run state: what collection checked, what each report means, the delivery
worker, and the summary. On an xdist worker it only annotates reports; the
controller (or a plain run) decides and sends.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Generator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import collection, failure, failure_history, locations, open_alerts, settings
from .collection import PagerDutyWarning
from .redaction import scrubbed

if TYPE_CHECKING:  # imported when first needed: a green run never sends
    from .delivery import Delivery, Outcome, Trigger
    from .keeping import Keeper
    from .termination import SigtermNotice

log = logging.getLogger("pytest_pagerduty")

# The attribute that carries a marked test's data from makereport (where the
# item is) to logreport (where xdist delivers reports to the controller).
REPORT_ATTRIBUTE = "pagerduty"
# What a worker tells the controller when paging is off there.
UNAVAILABLE = "pagerduty_unavailable"


def state_path(config: pytest.Config, name: str) -> Path:
    """A file in pytest's cache directory (`.pytest_cache/d/pagerduty`), or
    in the rootdir when the cache plugin is off."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        # An unwritable cache directory: name the path anyway; writing it
        # fails later, and the outbox falls back to the user's cache.
        with contextlib.suppress(OSError):
            return Path(cache.mkdir("pagerduty")) / name
    try:  # before pytest_configure (replay), find the directory as the cache would
        cache_dir = os.path.expanduser(os.path.expandvars(config.getini("cache_dir")))
    except ValueError:  # -p no:cacheprovider
        return Path(config.rootpath, f".pagerduty-{name}")
    return Path(config.rootpath, cache_dir, "d", "pagerduty", name)


class PagerDutyReporter:
    def __init__(self, config: pytest.Config, resolved: settings.Settings) -> None:
        self.config = config
        self.settings = resolved
        self.is_worker = hasattr(config, "workerinput")
        self.collected = collection.Collected()
        # Tests `-k` or `-m` deselected: their marker problems only warn.
        self.deselected: list[pytest.Item] = []
        self._delivery: Delivery | None = None
        self._keeper: Keeper | None = None
        self._text_limit: int | None = None
        self._sigterm: SigtermNotice | None = None
        # Dead letters earlier runs left in the outbox, found when replaying.
        self.dead_letters = 0
        # nodeid -> a marked test's data from its setup report, for a worker
        # that dies while running it (xdist reports a crash, without data).
        self.started: dict[str, dict[str, Any]] = {}
        self.outcomes: list[Outcome] = []
        self.dry_run_file: Path | None = None
        self.open_alerts = {} if self.is_worker else open_alerts.load(config)
        # Failed runs in a row per marked test (`page_after_failures`).
        self.history = (
            failure_history.History({}) if self.is_worker else failure_history.load(config)
        )
        # nodeid -> remembered aggregate alerts listing it; a listed test that
        # passes (marker, positional) lets its aggregate be resolved at the end.
        self.covering = open_alerts.aggregates_covering(self.open_alerts)
        self.aggregate_passes: dict[str, tuple[dict[str, Any], int]] = {}
        self.marked_reports = 0
        # nodeid -> the failure of its last rerun (pytest-rerunfailures)
        self.reruns: dict[str, dict[str, Any]] = {}
        self.flaky: list[str] = []
        self.triggered: set[str] = set()
        # Marked tests that passed (with --dist each, perhaps failing elsewhere).
        self.passed: set[str] = set()
        self.resolving: set[str] = set()
        self.described: set[str] = set()

    @property
    def keeper(self) -> Keeper:
        if self._keeper is None:
            from .keeping import Keeper, component_facts

            facts = component_facts(self.settings.memory_limit_mib)
            self._text_limit = facts.text_limit
            self._keeper = Keeper(self.settings, self.outbox_path(), facts.secret_arguments)
        return self._keeper

    @property
    def delivery(self) -> Delivery:
        if self._delivery is None:
            from .delivery import Delivery

            self._delivery = Delivery(self.settings, self.config.rootpath.name, self.keeper)
        return self._delivery

    def _page(self, trigger: Trigger) -> None:
        """Keeps the alert in the outbox, then hands it to the delivery thread."""
        keeper = self.keeper  # learns the component's text limit
        if self._text_limit is not None:
            trigger = replace(
                trigger, failure=failure.within_limit(trigger.failure, self._text_limit)
            )
        if not self.settings.dry_run_requested:
            trigger = keeper.write_ahead(trigger)
        self.delivery.submit(trigger)

    def pytest_sessionstart(self) -> None:
        if self.is_worker:
            return
        from .termination import SigtermNotice

        self._sigterm = SigtermNotice(self.config, self._sigterm_notice)
        self._sigterm.install()
        if (
            self.settings.auto_replay
            and not self.settings.dry_run_requested
            and not self.config.option.collectonly  # a look at the tests sends nothing
        ):
            try:
                # A stat and a listing: delivery (and wasmtime) load only for work.
                if locations.anything_left(self.outbox_path()):
                    self.delivery.replay_leftovers()
            except Exception:  # the run goes on; the outbox waits for `replay`
                log.debug("cannot look at the outbox", exc_info=True)

    def _sigterm_notice(self) -> str | None:
        """What SIGTERM leaves (read without a lock: the handler runs on
        the main thread, which may hold any of them)."""
        keeper = self._keeper
        if keeper is None or not keeper.unsettled:
            return None
        kept = f"{keeper.unsettled} alert(s) not yet confirmed are kept in {keeper.outbox.path}"
        if self.settings.auto_replay:
            return f"pagerduty: terminated; {kept} and sent by the next run here"
        return f"pagerduty: terminated; {kept}: send them with python -m pytest_pagerduty replay"

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        self.deselected.extend(items)

    # After `-k` and `-m` have deselected (trylast): only the tests that run
    # can stop the run; a deselected test's marker problem is a warning.
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.collected = collection.check(items, self.settings)
        if self.deselected:
            for problem in collection.check(self.deselected, self.settings).problems:
                self._warn(f"{problem} (deselected in this run; it would stop one that selects it)")
        if not self.collected.problems:
            return
        message = "pagerduty: fix these before the run can page anyone:\n  " + "\n  ".join(
            self.collected.problems
        )
        if not self.is_worker:
            raise pytest.UsageError(message)
        # An xdist worker cannot stop the run with a usage error; a collection
        # error reaches the controller, which stops before any test runs.
        report = pytest.CollectReport("pagerduty", "failed", message, [])
        self.config.hook.pytest_collectreport(report=report)
        items.clear()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if report.when == "teardown" and not report.failed:
            return  # only a setup, a call, or a failed teardown, can page or resolve
        paging = self.collected.paging.get(item.nodeid)
        if paging is None:
            return
        data: dict[str, Any] = {"marker": dict(paging.arguments), "positional": paging.positional}
        if failure.pages(report, self.settings.page_on_error):
            short_name = self.collected.short_names.get(item.nodeid)
            # Past the cap a failure is only listed in the aggregate: skip
            # rendering its traceback (the costly part of describing it).
            # (Counted per test: its reruns are one failure.)
            self.described.add(item.nodeid)
            full = len(self.described) <= self.settings.max_incidents
            data["failure"] = failure.describe(item, report, call, short_name, full)
        setattr(report, REPORT_ATTRIBUTE, data)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        data = getattr(report, REPORT_ATTRIBUTE, None)
        if report.when not in ("setup", "call", "teardown") and report.nodeid in self.started:
            data = self._crashed(report)  # xdist's report of a worker that died
        elif report.when == "teardown":
            self.started.pop(report.nodeid, None)
        if not isinstance(data, dict):
            return
        nodeid = report.nodeid
        if report.when == "setup" and report.passed:
            # The test runs now: should its worker die, the crash report
            # carries no data, and this is what pages for it.
            self.started[nodeid] = {**data, "phase": "call"}
            return
        if report.when == "call" and nodeid in self.started:
            self.started[nodeid]["phase"] = "teardown"  # a crash now is an error
        self.marked_reports += 1
        marker, positional = data["marker"], data["positional"]
        if str(report.outcome) == "rerun":  # pytest-rerunfailures: only the last try counts
            if "failure" in data:
                self.reruns[nodeid] = data["failure"]
            return
        if "failure" in data:
            if nodeid not in self.triggered:  # --dist each runs a test on every worker
                self.triggered.add(nodeid)
                self._page_failure(nodeid, data)
            return
        if report.when != "call" or not report.passed or hasattr(report, "wasxfail"):
            return
        if nodeid in self.reruns:
            self.flaky.append(nodeid)
            if self.settings.flaky_info and nodeid not in self.triggered:
                from .delivery import Trigger

                self.triggered.add(nodeid)
                flaky = failure.to_wit(self.reruns[nodeid])
                self._page(Trigger(flaky, marker, positional, "info"))
        self.passed.add(nodeid)  # counted at the end: a failure anywhere in the run wins
        for name in self.covering.get(nodeid, ()):
            self.aggregate_passes.setdefault(name, (marker, positional))
        remembered = self.open_alerts.get(nodeid)
        if (
            self.settings.auto_resolve
            and nodeid not in self.triggered
            and nodeid not in self.resolving  # --dist each: once, not once per worker
            and (remembered is not None or self.settings.resolve_always)
        ):
            self.resolving.add(nodeid)
            from .delivery import Resolve

            incident_id = remembered.get("incident_id") if remembered else None
            key = remembered.get("dedup_key") if remembered else None
            self.delivery.submit(
                Resolve(nodeid, marker, positional, incident_id, remembered is not None, key)
            )

    def _page_failure(self, nodeid: str, data: dict[str, Any]) -> None:
        """Pages for a marked test's failure, with the runs in a row it has
        failed in and what this machine remembers of its open incident."""
        from .delivery import Trigger

        remembered = self.open_alerts.get(nodeid) or {}
        notes = remembered.get("notes")
        trigger = Trigger(
            failure.to_wit(data["failure"]),
            data["marker"],
            data["positional"],
            failed_runs=self.history.failed(nodeid),
            incident_id=remembered.get("incident_id"),
            incident_key=remembered.get("dedup_key"),
            notes=notes if isinstance(notes, int) else 0,
        )
        self._page(trigger)

    def _crashed(self, report: pytest.TestReport) -> dict[str, Any] | None:
        """A marked test whose xdist worker died running it (`os._exit`, a
        segfault, the OOM killer): the controller's crash report is its
        failure."""
        data = self.started.pop(report.nodeid)
        phase = data.pop("phase")
        if phase != "call" and not self.settings.page_on_error:
            return None  # it passed; dying in teardown is an error, paged only when asked
        short_name = self.collected.short_names.get(report.nodeid)
        data["failure"] = failure.crashed(report, short_name, phase, self.config.rootpath)
        return data

    def _resolve_aggregates(self) -> None:
        """An aggregate alert is resolved once none of its tests failed in
        this run and one of them passed."""
        if not self.settings.auto_resolve or not self.aggregate_passes:
            return  # a green run never imports delivery
        from .delivery import Resolve

        for name, (marker, positional) in self.aggregate_passes.items():
            entry = self.open_alerts[name]
            if any(nodeid in self.triggered for nodeid in entry.get("covers", ())):
                continue
            incident_id, key = entry.get("incident_id"), entry.get("dedup_key")
            self.delivery.submit(Resolve(name, marker, positional, incident_id, True, key))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist: a worker found paging off (wasmtime cannot load): say so once."""
        why = getattr(node, "workeroutput", {}).get(UNAVAILABLE)
        if why and not self.collected.unavailable:
            self.collected.unavailable = why

    def pytest_sessionfinish(self) -> None:
        if self.is_worker and self.collected.unavailable:
            self.config.workeroutput[UNAVAILABLE] = self.collected.unavailable  # type: ignore[attr-defined]
        if not self.is_worker:
            self._resolve_aggregates()
        try:
            if not self.is_worker and self._delivery is not None:
                self.outcomes = self._delivery.finish()
                self.dead_letters = len(self._delivery.dead_letters)
        finally:
            if self._sigterm is not None:
                self._sigterm.restore()
            if self._keeper is not None:
                self._keeper.close()
        if self.is_worker:
            return
        # After the pages are out: keeping state must never hold them up.
        # A preview changes nothing; any other run counts failures in a row.
        if not self.settings.dry_run_requested:
            for nodeid in self.passed:
                self.history.passed(nodeid)
            self._keep("the failures in a row", failure_history.save, self.history)
        if self._delivery is None:
            return  # nothing was sent: nothing else to keep
        from . import summary

        # Only what PagerDuty confirmed is remembered: a dry run changes nothing.
        if any(o.status != "dry-run" for o in self.outcomes):
            open_alerts.update(self.open_alerts, self.outcomes)
            self._keep("the open alerts", open_alerts.save, self.open_alerts)
        if any(o.status == "dry-run" for o in self.outcomes):
            self.dry_run_file = self._dry_run_path()
            try:
                summary.write_dry_run(self.dry_run_file, self.outcomes, self.settings.secrets)
            except OSError as err:
                self._warn(f"could not write the dry-run file {self.dry_run_file}: {err}")
                self.dry_run_file = None
        for outcome in self.outcomes:
            if outcome.status in ("queued", "failed", "lost") and outcome.what in (
                "trigger",
                "aggregate",
            ):
                verb = {"queued": "kept in the outbox", "failed": "not created", "lost": "LOST"}
                self._warn(
                    f"incident for {outcome.nodeid} {verb[outcome.status]}: {outcome.reason}",
                    where=outcome.nodeid.partition("::")[0],
                )

    def _keep(self, what: str, save: Any, value: Any) -> None:
        """Saves run state; a cache that cannot take it (read-only, a
        directory in the way, its warning made an error) is a warning."""
        try:
            # pytest's cache warns, then gives up: said as our own warning.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                save(self.config, value)
            problems = [str(w.message) for w in caught]
        except Exception as err:
            problems = [str(err)]
        for problem in problems:
            self._warn(f"could not keep {what} in pytest's cache: {problem}")

    def _dry_run_path(self) -> Path:
        return self.settings.dry_run_file or state_path(self.config, "dry-run.json")

    def outbox_path(self) -> Path:
        return self.settings.outbox or state_path(self.config, "outbox.jsonl")

    def _scrub(self, text: str) -> str:
        """Our own output never shows a secret, even one inside a test's id."""
        return str(scrubbed(text, self.settings.secrets))

    def _warn(self, message: str, where: str = "pytest_pagerduty") -> None:
        # A delivery problem is a warning, never a failure: even with warnings
        # turned into errors it must not change the run's exit status.
        from .summary import printable  # a warning is printed too: no raw control characters

        message, where = printable(self._scrub(message)), printable(self._scrub(where))
        with contextlib.suppress(PagerDutyWarning):
            warnings.warn_explicit(PagerDutyWarning(message), PagerDutyWarning, where, 0)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        shown = self.collected.marked or self.marked_reports or self.outcomes or self.dead_letters
        if self.is_worker or not (shown or self.collected.unavailable):
            return
        if self.collected.problems:
            return  # the usage error says it all; an empty section would precede it
        from . import summary

        terminalreporter.write_sep("=", "PagerDuty")
        lines = summary.lines(
            self.outcomes, self.settings, self.dry_run_file, self.flaky, self.collected.dry_run
        )
        if self.collected.unavailable:
            lines.insert(0, f"paging is off: {self.collected.unavailable}")
        if not lines:
            marked = self.collected.marked or self.marked_reports
            lines = [f"no incidents: none of the {marked} marked test(s) failed"]
        if self.dead_letters:
            lines.append(
                f"{self.dead_letters} dead letter(s) an earlier run left wait in the outbox: "
                "PagerDuty refused them for good; python -m pytest_pagerduty replay lists them"
            )
        for line in lines:
            terminalreporter.write_line(self._scrub(line))
