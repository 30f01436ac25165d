"""Sends alerts from a background thread, so a failing test never waits on
the network; retries what the component calls transient; keeps in the
outbox what PagerDuty did not confirm; records what became of each one."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import random
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, Union

from . import wit
from .outbox import Entry, Outbox, redacted
from .settings import Settings

log = logging.getLogger("pytest_pagerduty")

Status = Literal["created", "already-open", "resolved", "dry-run", "queued", "failed", "lost"]
What = Literal["trigger", "resolve", "aggregate"]


@dataclass(frozen=True)
class Trigger:
    """A failure to page for (or, with severity `info`, a flaky test)."""

    failure: wit.TestFailure
    # The marker's arguments; the component checks them again to build.
    marker: Mapping[str, Any]
    positional: int
    severity: wit.Severity | None = None


@dataclass(frozen=True)
class Resolve:
    """A test that passes again: resolve its alert."""

    nodeid: str
    marker: Mapping[str, Any]
    positional: int
    incident_id: str | None = None
    # Whether this machine remembers opening the alert (else: resolve=always).
    remembered: bool = True
    # The key the alert was opened with, when remembered: resolving by it
    # reaches the alert even if the marker's destination changed since.
    dedup_key: str | None = None


@dataclass(frozen=True)
class Aggregate:
    """Failures past the run's cap, sent as one alert."""

    failures: tuple[Trigger, ...]
    suite: str


Job = Union[Trigger, Resolve, Aggregate]


@dataclass(frozen=True)
class Outcome:
    """What became of one job."""

    nodeid: str
    status: Status
    title: str
    what: What = "trigger"
    incident: wit.Delivered | None = None
    request: wit.AlertRequest | None = None
    # Why it was not delivered, and what to do about it.
    reason: str = ""
    fix: str = ""
    attempts: int = 0
    # Set when every further request would fail the same way (bad credentials).
    fatal: bool = False
    # Where the alert was kept for `replay`, when it was.
    outbox: Path | None = None
    # The alert's key and REST incident id, to resolve it later.
    dedup_key: str | None = None
    # For an aggregate: the nodeids it stands for.
    covers: tuple[str, ...] = field(default=())
    # Counted in the summary rather than listed (resolves of every pass).
    quiet: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts; waits as PagerDuty asks, else exponential backoff
    with jitter, never longer than `max_delay` at a time."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 60.0
    # Most seconds one alert may spend waiting between attempts in all.
    budget: float = 120.0

    def delay(self, attempt: int, asked: int | None) -> float:
        if asked is not None:
            return min(float(asked), self.max_delay)
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return float(backoff * random.uniform(0.5, 1.5))


class Sender(Protocol):
    def send(self, request: wit.AlertRequest) -> wit.Delivered | wit.DeliveryFailure: ...


def send_with_retries(
    alerts: Sender, request: wit.AlertRequest, policy: RetryPolicy, stop: threading.Event
) -> tuple[wit.Delivered | wit.DeliveryFailure, int]:
    """Sends until PagerDuty gives a final answer, attempts run out, or
    `stop` is set; returns the last answer and the number of attempts."""
    attempt, waited = 1, 0.0
    while True:
        result = alerts.send(request)
        if not isinstance(result, wit.RetryLater) or attempt >= policy.max_attempts:
            return result, attempt
        delay = policy.delay(attempt, result.after_seconds)
        if waited + delay > policy.budget or stop.wait(delay):
            return result, attempt
        waited += delay
        attempt += 1


def describe(error: wit.PagerdutyError) -> str:
    parts = [f"PagerDuty answered {error.status}" if error.status else error.message]
    if error.status:
        parts.append(error.message)
    parts.extend(error.errors)
    return ": ".join(parts)


_Stop = object()


class Delivery:
    """A queue of jobs and one worker thread with its own component Store.

    One request is in flight at a time: PagerDuty asks REST clients to send
    serially per token, and a storm of failures then queues instead of
    opening many connections.
    """

    def __init__(
        self,
        settings: Settings,
        outbox_path: Callable[[], Path],
        suite: str,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._outbox_path = outbox_path
        self._suite = suite
        self._policy = policy or RetryPolicy(max_attempts=settings.max_attempts)
        # Triggers first, then aggregates, then resolves: a late failure's page
        # must not wait behind a run's worth of resolves.
        self._queue: queue.PriorityQueue[tuple[int, int, object]] = queue.PriorityQueue()
        self._sequence = 0
        self._outcomes: list[Outcome] = []
        self._pending: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._fatal: Outcome | None = None
        self._paged = 0
        self._overflow: list[Trigger] = []
        self._ci: tuple[wit.Variable, ...] | None = None
        self._host = ""
        self._checked_markers: dict[str, tuple[Any, str | None]] = {}

    def submit(self, job: Job) -> None:
        if isinstance(job, Trigger) and job.severity != "info":
            self._paged += 1
            if self._paged > self._settings.max_incidents:
                self._overflow.append(job)  # sent as one aggregate at the end
                return
        with self._lock:
            self._pending[id(job)] = job
            self._sequence += 1
            sequence = self._sequence
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pagerduty-delivery", daemon=True
                )
                self._thread.start()
        priority = {Trigger: 0, Aggregate: 1, Resolve: 2}[type(job)]
        self._queue.put((priority, sequence, job))

    def finish(self) -> list[Outcome]:
        """Sends the aggregate of failures past the cap, waits up to the flush
        timeout; what is still unsent goes to the outbox."""
        if self._overflow:  # the worker groups them as the component says
            self.submit(Aggregate(tuple(self._overflow), self._suite))
        if self._thread is not None:
            self._queue.put((9, 0, _Stop))
            # Ctrl-C while waiting: stop waiting, keep the rest.
            with contextlib.suppress(KeyboardInterrupt):
                self._thread.join(self._settings.flush_timeout)
        self._stop.set()
        with self._lock:
            self._closed = True
            unsent = list(self._pending.values())
            self._pending.clear()
            reason = (
                f"not confirmed within pagerduty_flush_timeout ({self._settings.flush_timeout:g} s)"
            )
            for unsent_job in unsent:
                for trigger, outcome in self._unsent(unsent_job, reason):
                    self._outcomes.append(self._keep(trigger, outcome) if trigger else outcome)
            return list(self._outcomes)

    def _unsent(self, job: Job, reason: str) -> list[tuple[Trigger | None, Outcome]]:
        if isinstance(job, Resolve):
            return [(None, Outcome(job.nodeid, "failed", "", what="resolve", reason=reason))]
        triggers = job.failures if isinstance(job, Aggregate) else (job,)
        return [(t, Outcome(t.failure.nodeid, "queued", "", reason=reason)) for t in triggers]

    def _run(self) -> None:
        alerts = None
        while (job := self._queue.get()[2]) is not _Stop:
            assert isinstance(job, (Trigger, Resolve, Aggregate))
            try:
                if alerts is None:
                    from .component import Alerts

                    alerts = Alerts(self._settings.memory_limit_mib)
                outcomes = self._deliver(alerts, job)
            except Exception as err:  # a trap or a host bug must not end the run
                log.debug("delivery failed", exc_info=True)
                alerts = None  # the next job gets a fresh instance
                reason = f"the component failed: {type(err).__name__}: {err}".splitlines()[0]
                outcomes = self._unsent(job, reason)
            with self._lock:
                if self._closed:
                    return  # finish() has accounted for this job
                self._pending.pop(id(job), None)
                for trigger, outcome in outcomes:
                    self._outcomes.append(self._keep(trigger, outcome) if trigger else outcome)

    def _keep(self, job: Trigger, outcome: Outcome) -> Outcome:
        # Called with the lock held, and only while not closed: one entry per alert.
        """Writes a queued alert (and, in a dry run that only missing
        credentials caused, a dry-run one) to the outbox for `replay`. An
        explicit dry run is a preview: replaying it later would page for it."""
        unsent = self._settings.no_credentials and not self._settings.dry_run_requested
        if outcome.outbox is not None or not (
            outcome.status == "queued" or (outcome.status == "dry-run" and unsent)
        ):
            return outcome
        entry = redacted(
            Entry.new(
                job.failure,
                job.marker,
                job.positional,
                outcome.reason or "no credentials configured",
                job.severity,
            ),
            self._settings.secrets,
        )
        path = self._outbox_path()
        try:
            Outbox(path).append(entry)
        except OSError as err:
            return replace(
                outcome,
                status="lost",
                reason=f"{outcome.reason}; and it could not be written to the outbox {path}: {err}",
            )
        return replace(outcome, outbox=path)

    def _context(self, alerts: Any, failure: wit.TestFailure) -> wit.TestFailure:
        """The failure with the CI variables the component asks for, and the host."""
        if self._ci is None:  # the same for the whole run
            names = alerts.ci_variables()
            self._ci = tuple(wit.Variable(n, os.environ[n]) for n in names if os.environ.get(n))
            self._host = socket.gethostname()
        return replace(failure, ci=self._ci, host=self._host)

    def _checked(self, alerts: Any, trigger: Trigger, suite: str) -> tuple[Any, str | None]:
        """The marker's options and aggregate key; identical markers are asked once."""
        cache_key = repr((sorted(trigger.marker.items()), trigger.positional))
        if cache_key not in self._checked_markers:
            settings = self._settings_for(trigger.marker)
            options = alerts.check_marker(trigger.marker, trigger.positional, settings)
            key = None
            if not isinstance(options, wit.MarkerError):
                key = alerts.aggregate_key(options, settings, suite)
            self._checked_markers[cache_key] = (options, key)
        return self._checked_markers[cache_key]

    def _settings_for(self, marker: Mapping[str, Any]) -> Settings:
        """A marker with its own routing key can send even when the settings
        hold no credentials (which alone would make the run a dry run)."""
        if (
            marker.get("routing_key")
            and self._settings.no_credentials
            and not self._settings.dry_run_requested
        ):
            return replace(self._settings, dry_run=False)
        return self._settings

    def _deliver(self, alerts: Any, job: Job) -> list[tuple[Trigger | None, Outcome]]:
        if isinstance(job, Resolve):
            return [(None, self._resolve(alerts, job))]
        if isinstance(job, Aggregate):
            return self._aggregate(alerts, job)
        settings = self._settings_for(job.marker)
        nodeid = job.failure.nodeid
        options = alerts.check_marker(job.marker, job.positional, settings)
        if isinstance(options, wit.MarkerError):  # checked at collection; kept for safety
            return [(job, Outcome(nodeid, "failed", "", reason=options.problem, fix=options.fix))]
        built = alerts.build_trigger(
            self._context(alerts, job.failure), options, settings, job.severity
        )
        if isinstance(built, wit.SettingsError):
            return [(job, Outcome(nodeid, "failed", "", reason=built.problem, fix=built.fix))]
        return [(job, self._send(alerts, built, nodeid, "trigger", settings))]

    def _aggregate(self, alerts: Any, job: Aggregate) -> list[tuple[Trigger | None, Outcome]]:
        """One alert per destination for the failures past the cap."""
        groups: dict[str, list[tuple[Trigger, Any]]] = {}
        results: list[tuple[Trigger | None, Outcome]] = []
        for trigger in job.failures:
            options, key = self._checked(alerts, trigger, job.suite)
            if key is None:
                reason = "no destination for the aggregate alert"
                results.append(
                    (trigger, Outcome(trigger.failure.nodeid, "failed", "", reason=reason))
                )
                continue
            groups.setdefault(key, []).append((trigger, options))
        for members in groups.values():
            first, options = members[0]
            settings = self._settings_for(first.marker)
            failures = [self._context(alerts, t.failure) for t, _ in members]
            built = alerts.build_aggregate(failures, job.suite, options, settings)
            nodeid = first.failure.nodeid
            covers = tuple(t.failure.nodeid for t, _ in members)
            if isinstance(built, wit.SettingsError):
                outcome = Outcome(nodeid, "failed", "", "aggregate", reason=built.problem)
            else:
                outcome = self._send(alerts, built, nodeid, "aggregate", settings)
            outcome = replace(outcome, covers=covers)
            if outcome.status == "queued":
                # Kept one by one in the outbox, for replay.
                results += [
                    (t, replace(outcome, nodeid=t.failure.nodeid, what="trigger"))
                    for t, _ in members
                ]
            else:
                results.append((None, outcome))
        return results

    def _send(
        self, alerts: Any, built: wit.AlertRequest, nodeid: str, what: What, settings: Settings
    ) -> Outcome:
        base = Outcome(
            nodeid, "dry-run", built.title, what, request=built, dedup_key=built.dedup_key
        )
        if settings.dry_run:
            return base
        if self._fatal is not None:
            return replace(
                base, status="queued", request=None, reason=f"not sent: {self._fatal.reason}"
            )
        result, attempts = send_with_retries(alerts, built, self._policy, self._stop)
        base = replace(base, request=None, attempts=attempts)
        if isinstance(result, wit.Delivered):
            status: Status = "resolved" if what == "resolve" else "created"
            return replace(base, status=status, incident=result)
        if isinstance(result, wit.AlreadyOpen):
            return replace(base, status="already-open", reason=describe(result.error))
        if isinstance(result, wit.RetryLater):
            return replace(
                base, status="queued", reason=f"{result.reason}, after {attempts} attempt(s)"
            )
        if result.applies_to_all:
            # Bad credentials: keep this and every later alert for replay.
            self._fatal = replace(
                base, status="queued", reason=describe(result.error), fix=result.fix, fatal=True
            )
            return self._fatal
        return replace(base, status="failed", reason=describe(result.error), fix=result.fix)

    def _resolve(self, alerts: Any, job: Resolve) -> Outcome:
        settings = self._settings_for(job.marker)
        options = alerts.check_marker(job.marker, job.positional, settings)
        if isinstance(options, wit.MarkerError):
            return Outcome(job.nodeid, "failed", "", "resolve", reason=options.problem)
        if job.dedup_key is not None:
            options = json.dumps({**json.loads(options), "dedup_key": job.dedup_key})
        ids: list[str | None] = [job.incident_id]
        outcome = Outcome(job.nodeid, "failed", "", "resolve", reason="nothing to resolve")
        while ids:
            built = alerts.build_resolve(job.nodeid, options, settings, ids.pop(0))
            if isinstance(built, wit.SettingsError):
                return replace(outcome, reason=built.problem, fix=built.fix)
            outcome = self._send(alerts, built, job.nodeid, "resolve", settings)
            if outcome.status == "queued":  # a resolve is not kept: the next pass retries
                return replace(outcome, status="failed")
            if built.kind == "rest-find" and outcome.incident is not None:
                # The lookup found which incidents to resolve; none: nothing open.
                ids = list(outcome.incident.found)
                outcome = replace(outcome, title=f"Resolved: {job.nodeid} passes again")
        return replace(outcome, quiet=not job.remembered)
