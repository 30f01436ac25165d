"""Sends incidents from a background thread, so a failing test never waits
on the network, and records what became of each one."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Literal, Union

from . import wit
from .settings import Settings

log = logging.getLogger("pytest_pagerduty")

Status = Literal["created", "already-open", "dry-run", "not-created", "not-sent"]


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
    # Set when every further request would fail the same way (bad credentials).
    fatal: bool = False


@dataclass(frozen=True)
class _Job:
    failure: wit.TestFailure
    options: Any


_Stop = object()
_Item = Union[_Job, object]


def _describe(error: wit.PagerdutyError) -> str:
    parts = [f"PagerDuty answered {error.status}" if error.status else error.message]
    if error.status:
        parts.append(error.message)
    parts.extend(error.errors)
    return ": ".join(parts)


class Delivery:
    """A queue of failures and one worker thread with its own component Store.

    One request is in flight at a time: PagerDuty asks REST clients to send
    serially per token, and a storm of failures then queues instead of
    opening many connections.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._outcomes: list[Outcome] = []
        self._pending: dict[int, _Job] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._fatal: Outcome | None = None

    def submit(self, failure: wit.TestFailure, options: Any) -> None:
        job = _Job(failure, options)
        with self._lock:
            self._pending[id(job)] = job
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pagerduty-delivery", daemon=True
                )
                self._thread.start()
        self._queue.put(job)

    def finish(self) -> list[Outcome]:
        """Waits up to the flush timeout; unfinished jobs are reported as such."""
        if self._thread is not None:
            self._queue.put(_Stop)
            self._thread.join(self._settings.flush_timeout)
        with self._lock:
            for job in self._pending.values():
                self._outcomes.append(
                    Outcome(
                        job.failure.nodeid,
                        "not-sent",
                        "",
                        reason=f"still sending after pagerduty_flush_timeout "
                        f"({self._settings.flush_timeout:g} s)",
                        fix="raise pagerduty_flush_timeout, or check that PagerDuty is reachable",
                    )
                )
            self._pending.clear()
            return list(self._outcomes)

    def _run(self) -> None:
        alerts = None
        while (item := self._queue.get()) is not _Stop:
            assert isinstance(item, _Job)
            try:
                if alerts is None:
                    from .component import Alerts

                    alerts = Alerts()
                outcome = self._deliver(alerts, item)
            except Exception as err:  # a trap or a host bug must not end the run
                log.debug("delivery of %s failed", item.failure.nodeid, exc_info=True)
                outcome = Outcome(
                    item.failure.nodeid,
                    "not-created",
                    "",
                    reason=f"the component failed: {type(err).__name__}: {err}",
                )
            with self._lock:
                self._pending.pop(id(item), None)
                self._outcomes.append(outcome)

    def _deliver(self, alerts: Any, job: _Job) -> Outcome:
        nodeid = job.failure.nodeid
        built = alerts.build_request(job.failure, job.options, self._settings)
        if isinstance(built, wit.SettingsError):
            return Outcome(nodeid, "not-created", "", reason=built.problem, fix=built.fix)
        if self._settings.dry_run:
            return Outcome(nodeid, "dry-run", built.title, request=built)
        if self._fatal is not None:
            return Outcome(nodeid, "not-sent", built.title, reason=self._fatal.reason)
        result = alerts.send(built)
        if isinstance(result, wit.CreatedIncident):
            return Outcome(nodeid, "created", built.title, incident=result)
        if isinstance(result, wit.AlreadyOpen):
            return Outcome(nodeid, "already-open", built.title, reason=_describe(result.error))
        if isinstance(result, wit.RetryLater):
            return Outcome(
                nodeid,
                "not-created",
                built.title,
                reason=result.reason,
                fix="PagerDuty may be unreachable or busy; run again later",
            )
        outcome = Outcome(
            nodeid,
            "not-created",
            built.title,
            reason=_describe(result.error),
            fix=result.fix,
            fatal=result.applies_to_all,
        )
        if result.applies_to_all:
            self._fatal = outcome
        return outcome
