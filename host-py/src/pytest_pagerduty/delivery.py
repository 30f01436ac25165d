"""Sends incidents from a background thread, so a failing test never waits
on the network; retries what the component calls transient; keeps in the
outbox what PagerDuty did not confirm; records what became of each one."""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol, Union

from . import wit
from .outbox import Entry, Outbox, redacted
from .settings import Settings

log = logging.getLogger("pytest_pagerduty")

Status = Literal["created", "already-open", "dry-run", "queued", "failed", "lost"]


@dataclass(frozen=True)
class Outcome:
    """What became of one failure's incident."""

    nodeid: str
    status: Status
    title: str
    incident: wit.CreatedIncident | None = None
    request: wit.AlertRequest | None = None
    # Why it was not created, and what to do about it.
    reason: str = ""
    fix: str = ""
    attempts: int = 0
    # Set when every further request would fail the same way (bad credentials).
    fatal: bool = False
    # Where the incident was kept for `replay`, when it was.
    outbox: Path | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts; waits as PagerDuty asks, else exponential backoff
    with jitter, never longer than `max_delay` at a time."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 60.0

    def delay(self, attempt: int, asked: int | None) -> float:
        if asked is not None:
            return min(float(asked), self.max_delay)
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return float(backoff * random.uniform(0.5, 1.5))


class Sender(Protocol):
    def send(self, request: wit.AlertRequest) -> wit.CreatedIncident | wit.DeliveryFailure: ...


def send_with_retries(
    alerts: Sender, request: wit.AlertRequest, policy: RetryPolicy, stop: threading.Event
) -> tuple[wit.CreatedIncident | wit.DeliveryFailure, int]:
    """Sends until PagerDuty gives a final answer, attempts run out, or
    `stop` is set; returns the last answer and the number of attempts."""
    attempt = 1
    while True:
        result = alerts.send(request)
        if not isinstance(result, wit.RetryLater) or attempt >= policy.max_attempts:
            return result, attempt
        if stop.wait(policy.delay(attempt, result.after_seconds)):
            return result, attempt
        attempt += 1


def describe(error: wit.PagerdutyError) -> str:
    parts = [f"PagerDuty answered {error.status}" if error.status else error.message]
    if error.status:
        parts.append(error.message)
    parts.extend(error.errors)
    return ": ".join(parts)


@dataclass(frozen=True)
class Job:
    failure: wit.TestFailure
    # The marker's arguments; the component checks them again to build.
    marker: Mapping[str, Any]
    positional: int


_Stop = object()
_Item = Union[Job, object]


class Delivery:
    """A queue of failures and one worker thread with its own component Store.

    One request is in flight at a time: PagerDuty asks REST clients to send
    serially per token, and a storm of failures then queues instead of
    opening many connections.
    """

    def __init__(
        self, settings: Settings, outbox_path: Callable[[], Path], policy: RetryPolicy | None = None
    ) -> None:
        self._settings = settings
        self._outbox_path = outbox_path
        self._policy = policy or RetryPolicy(max_attempts=settings.max_attempts)
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._outcomes: list[Outcome] = []
        self._pending: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._fatal: Outcome | None = None

    def submit(self, job: Job) -> None:
        with self._lock:
            self._pending[id(job)] = job
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pagerduty-delivery", daemon=True
                )
                self._thread.start()
        self._queue.put(job)

    def finish(self) -> list[Outcome]:
        """Waits up to the flush timeout; what is still unsent goes to the outbox."""
        if self._thread is not None:
            self._queue.put(_Stop)
            self._thread.join(self._settings.flush_timeout)
        self._stop.set()
        with self._lock:
            self._closed = True
            unsent = list(self._pending.values())
            self._pending.clear()
        reason = (
            f"not confirmed within pagerduty_flush_timeout ({self._settings.flush_timeout:g} s)"
        )
        with self._lock:
            for job in unsent:
                queued = Outcome(job.failure.nodeid, "queued", "", reason=reason)
                self._outcomes.append(self._keep(job, queued))
            return list(self._outcomes)

    def _run(self) -> None:
        alerts = None
        while (item := self._queue.get()) is not _Stop:
            assert isinstance(item, Job)
            try:
                if alerts is None:
                    from .component import Alerts

                    alerts = Alerts(self._settings.memory_limit_mib)
                outcome = self._deliver(alerts, item)
            except Exception as err:  # a trap or a host bug must not end the run
                log.debug("delivery of %s failed", item.failure.nodeid, exc_info=True)
                alerts = None  # the next job gets a fresh instance
                reason = f"the component failed: {type(err).__name__}: {err}"
                outcome = Outcome(item.failure.nodeid, "queued", "", reason=reason.splitlines()[0])
            with self._lock:
                if self._closed:
                    return  # finish() has put this job in the outbox
                self._pending.pop(id(item), None)
                self._outcomes.append(self._keep(item, outcome))

    def _keep(self, job: Job, outcome: Outcome) -> Outcome:
        """Writes a queued incident (and, without credentials, a dry-run one)
        to the outbox for `replay`."""
        if outcome.status != "queued" and not (
            outcome.status == "dry-run" and self._settings.no_credentials
        ):
            return outcome
        entry = redacted(
            Entry.new(
                job.failure,
                job.marker,
                job.positional,
                outcome.reason or "no credentials configured",
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

    def _deliver(self, alerts: Any, job: Job) -> Outcome:
        nodeid = job.failure.nodeid
        options = alerts.check_marker(job.marker, job.positional)
        if isinstance(options, wit.MarkerError):  # checked at collection; kept for safety
            return Outcome(nodeid, "failed", "", reason=options.problem, fix=options.fix)
        built = alerts.build_request(job.failure, options, self._settings)
        if isinstance(built, wit.SettingsError):
            return Outcome(nodeid, "failed", "", reason=built.problem, fix=built.fix)
        if self._settings.dry_run:
            return Outcome(nodeid, "dry-run", built.title, request=built)
        if self._fatal is not None:
            return Outcome(nodeid, "queued", built.title, reason=f"not sent: {self._fatal.reason}")
        result, attempts = send_with_retries(alerts, built, self._policy, self._stop)
        if isinstance(result, wit.CreatedIncident):
            return Outcome(nodeid, "created", built.title, incident=result, attempts=attempts)
        if isinstance(result, wit.AlreadyOpen):
            return Outcome(
                nodeid,
                "already-open",
                built.title,
                reason=describe(result.error),
                attempts=attempts,
            )
        if isinstance(result, wit.RetryLater):
            return Outcome(
                nodeid,
                "queued",
                built.title,
                attempts=attempts,
                reason=f"{result.reason}, after {attempts} attempt(s)",
            )
        if result.applies_to_all:
            # Bad credentials: keep this and every later incident for replay.
            self._fatal = Outcome(
                nodeid,
                "queued",
                built.title,
                reason=describe(result.error),
                fix=result.fix,
                attempts=attempts,
                fatal=True,
            )
            return self._fatal
        return Outcome(
            nodeid,
            "failed",
            built.title,
            reason=describe(result.error),
            fix=result.fix,
            attempts=attempts,
        )
