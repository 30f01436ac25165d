"""The one delivery pipeline, for a test run and for `replay` alike.

A background thread asks the component what to send (`pager.trigger`,
`resolve`, `aggregate`), sends it through the component (`pager.send`), and
does what the answer's `step` says: sleep and send again, follow a lookup
with resolves, or stop. Every rule (waits, attempts, what a refusal stops,
the cap and its grouping, the dry run) is the component's; this file does
the waiting, the threading and the bookkeeping of what became of each job.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, Union

from . import wit
from .destinations import refusal
from .failure import within_limit
from .settings import Settings, component_settings, spelled

log = logging.getLogger("pytest_pagerduty")

Status = Literal[
    "created",
    "already-open",
    "resolved",
    "noted",
    "counting",
    "dry-run",
    "queued",
    "failed",
    "lost",
]
What = Literal["trigger", "resolve", "aggregate", "fallback", "note"]


@dataclass(frozen=True)
class Trigger:
    """A failure to page for (or, with severity `info`, a flaky test)."""

    failure: wit.TestFailure
    # The marker's arguments; the component checks them again to build.
    marker: Mapping[str, Any]
    positional: int
    severity: wit.Severity | None = None
    # Its outbox entry (written ahead of the first send), when it has one.
    entry_id: str | None = None
    # Kept by an earlier run, and sent by this one.
    replayed: bool = False
    # Runs in a row the test has failed in on this machine, this one included
    # (0 for a replay: kept to be delivered, never counted again).
    failed_runs: int = 1
    # What this machine remembers of the test's open incident, for a note
    # when it is still open: its id, the key it was opened with, the notes
    # added to it so far.
    incident_id: str | None = None
    incident_key: str | None = None
    notes: int = 0


@dataclass(frozen=True)
class Resolve:
    """A test that passes again: resolve its alert."""

    nodeid: str
    marker: Mapping[str, Any]
    positional: int
    incident_id: str | None = None
    # Whether this machine remembers opening the alert (else: resolve=always).
    remembered: bool = True
    # The key the alert was opened with, when remembered.
    dedup_key: str | None = None


@dataclass(frozen=True)
class Note:
    """A test failed again while its REST incident is open: note it. Sent
    after the run's pages, as resolves are: a slow note never holds one up."""

    trigger: Trigger
    # The key the trigger was answered "already open" for.
    dedup_key: str


Job = Union[Trigger, Resolve, Note]


@dataclass(frozen=True)
class Outcome:
    """What became of one job."""

    nodeid: str
    status: Status
    title: str
    what: What = "trigger"
    incident: wit.Delivered | None = None
    request: wit.AlertRequest | None = None
    # Why it was only shown, for a dry run.
    dry_run: wit.DryRunReason | None = None
    # Why it was not delivered, and what to do about it.
    reason: str = ""
    fix: str = ""
    attempts: int = 0
    # The refusal that stopped its API (bad credentials): the first one.
    fatal: bool = False
    # Not sent, because that refusal stopped its API.
    held_back: bool = False
    # Where the alert was kept for `replay`, when it was.
    outbox: Any | None = None
    # The alert's key, to resolve it later.
    dedup_key: str | None = None
    # For an aggregate: the nodeids it stands for.
    covers: tuple[str, ...] = field(default=())
    # Counted in the summary rather than listed (resolves of every pass).
    quiet: bool = False
    # An alert an earlier run kept.
    replayed: bool = False


def describe(error: wit.PagerdutyError) -> str:
    parts = [f"PagerDuty answered {error.status}" if error.status else error.message]
    if error.status:
        parts.append(error.message)
    parts.extend(e for e in error.errors if e.strip())
    return ": ".join(parts)


def fix_of(rejection: wit.Rejection) -> str:
    """The component's fix, with the setting named as this plugin spells it."""
    if rejection.setting is None:
        return rejection.fix
    return f"{rejection.fix} ({spelled(rejection.setting)})"


def build_problem(error: wit.BuildError) -> tuple[str, str]:
    """(reason, fix) of a request the component could not build."""
    problem = error.payload
    if isinstance(problem, wit.SettingsError):
        return problem.problem, f"{problem.fix} ({spelled(problem.setting)})"
    return problem.problem, problem.fix


class Keeper(Protocol):
    """Records what became of each alert in the outbox (`keeping.Keeper`)."""

    def settle(self, triggers: Sequence[Trigger], outcome: Outcome) -> Outcome: ...

    def durable(self) -> None: ...

    def claim(self, include_dead: bool = False) -> tuple[list[Any], list[Any]]: ...

    def trigger_of(self, entry: Any) -> tuple[Trigger, str | None]: ...


# The largest u32: wasmtime-py would wrap a larger count silently.
U32_MAX = 2**32 - 1

_AGGREGATE = object()
_REPLAY = object()
_STOP = object()

# What one piece of work became: the triggers it stands for, and the outcome.
Result = tuple[tuple[Trigger, ...], Outcome]


def reason_of(err: BaseException) -> str:
    """An exception in one line: its type and the line that says most (a
    trap's message ends with the cause, after the backtrace)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


class Delivery:
    """A queue of jobs and one worker thread with its own component Store.

    One request is in flight at a time: PagerDuty asks REST clients to send
    serially per token, and a storm of failures then queues instead of
    opening many connections. Triggers go first, then the aggregate of those
    past the cap, then resolves: a late failure's page must not wait behind
    a run's worth of resolves.
    """

    def __init__(self, settings: Settings, suite: str, keeper: Keeper | None) -> None:
        self._settings = settings
        self._suite = suite
        self._keeper = keeper
        self._queue: queue.PriorityQueue[tuple[int, int, object]] = queue.PriorityQueue()
        self._sequence = 0
        self._outcomes: list[Outcome] = []
        self._pending: dict[int, Job] = {}
        # Triggers the component held past the cap, for the aggregate.
        self._held: list[Trigger] = []
        self._held_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._ci: tuple[wit.Variable, ...] | None = None
        # What the component's pager learnt (the cap's count, stopped APIs),
        # to carry over to a fresh instance after a trap.
        self._pager_state: wit.PagerState | None = None
        self._host = ""
        self._text_limit = 2**32 - 1
        # Dead letters an earlier run left, found when replaying.
        self.dead_letters: list[Any] = []

    def _put(self, priority: int, item: object) -> None:
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pagerduty-delivery", daemon=True
                )
                self._thread.start()
        self._queue.put((priority, sequence, item))

    def submit(self, job: Job) -> None:
        with self._lock:
            self._pending[id(job)] = job
        self._put(0 if isinstance(job, Trigger) else 2, job)

    def _submit_later(self, job: Job) -> None:
        """From the delivery thread itself: queued unless the run is over."""
        with self._lock:
            if self._closed:
                return
            self._pending[id(job)] = job
        self._put(2, job)

    def replay_leftovers(self) -> None:
        """Sends, before anything else, what earlier runs kept in the outbox
        (unless this run cannot send: without credentials they stay)."""
        self._put(-1, _REPLAY)

    def finish(self, flush: bool = True) -> list[Outcome]:
        """Sends the aggregate of the failures past the cap, waits up to the
        flush timeout (with `flush`; else until done); what is still unsent
        is kept."""
        reason = ""
        if self._thread is not None:
            self._put(1, _AGGREGATE)
            self._queue.put((9, 0, _STOP))
            timeout = self._settings.flush_timeout if flush else None
            started = time.monotonic()
            try:
                self._thread.join(timeout)
            except KeyboardInterrupt:  # Ctrl-C while waiting: stop waiting, keep the rest
                waited = time.monotonic() - started
                reason = f"not confirmed: interrupted (Ctrl-C) after waiting {waited:.1f} s"
        self._stop.set()
        with self._lock:
            self._closed = True
            # Held past the cap or in flight: every job not yet accounted for
            # is still in `_pending`, once.
            unsent: list[Job] = list(self._pending.values())
            self._pending.clear()
            self._held.clear()
            reason = reason or (
                f"not confirmed within pagerduty_flush_timeout ({self._settings.flush_timeout:g} s)"
            )
            for job in unsent:
                self._record(self._unsent(job, reason))
            return list(self._outcomes)

    def _unsent(self, job: Job, reason: str) -> list[Result]:
        if isinstance(job, Resolve):
            return [((), Outcome(job.nodeid, "failed", "", what="resolve", reason=reason))]
        if isinstance(job, Note):
            nodeid = job.trigger.failure.nodeid
            return [((), Outcome(nodeid, "failed", "", what="note", reason=f"not noted: {reason}"))]
        outcome = Outcome(job.failure.nodeid, "queued", "", reason=reason, replayed=job.replayed)
        return [((job,), outcome)]

    def _record(self, results: list[Result]) -> None:
        # With the lock held, and only while not closed: one outcome per alert.
        for triggers, outcome in results:
            if triggers and self._keeper is not None:
                try:
                    outcome = self._keeper.settle(triggers, outcome)
                except Exception as err:  # never let one alert end the delivery thread
                    log.debug("keeping an alert failed", exc_info=True)
                    reason = f"{outcome.reason}; and it could not be kept: {reason_of(err)}"
                    outcome = replace(outcome, status="lost", reason=reason)
            self._outcomes.append(outcome)

    @staticmethod
    def kept(outcome: Outcome) -> bool:
        """Not delivered and worth sending later: queued, or built in a dry
        run only missing credentials caused (an asked-for one is a preview)."""
        return outcome.status == "queued" or (
            outcome.status == "dry-run" and outcome.dry_run == "no-credentials"
        )

    def _replay(self, pager: Any) -> None:
        """Queues what earlier runs kept, unless this run cannot send."""
        if self._keeper is None or pager.dry_run() is not None:
            return
        entries, self.dead_letters = self._keeper.claim()
        for entry in entries:
            trigger, problem = self._keeper.trigger_of(entry)
            if problem is None:
                self.submit(trigger)
                continue
            outcome = Outcome(entry.failure.nodeid, "queued", "", reason=problem, replayed=True)
            with self._lock:
                if not self._closed:
                    self._record([((trigger,), outcome)])

    def _run(self) -> None:
        pager = None
        while (item := self._queue.get()[2]) is not _STOP:
            if item is _AGGREGATE:
                with self._lock:
                    held, self._held = self._held, []
                    self._held_ids.clear()
                jobs: list[Job] = list(held)
            elif item is _REPLAY:
                jobs = []
            else:
                assert isinstance(item, (Trigger, Resolve, Note))
                jobs = [item]
            if not jobs and item is not _REPLAY:
                continue
            try:
                if pager is None or pager.dead:
                    pager = self._open()
                if item is _REPLAY:
                    self._replay(pager)
                    continue
                if item is _AGGREGATE:
                    results = self._aggregate(pager, held)
                else:
                    results = self._deliver(pager, jobs[0])
                if results:  # a held failure changed nothing the pager keeps
                    self._keep_state(pager)
            except Exception as err:  # a trap or a host bug must not end the run
                log.debug("delivery failed", exc_info=True)
                pager = None  # the next job gets a fresh instance
                reason = f"the component failed: {reason_of(err)}"
                results = [r for job in jobs for r in self._unsent(job, reason)]
            with self._lock:
                if self._closed:
                    return  # finish() has accounted for these jobs
                for job in jobs:
                    # A job held past the cap stays pending until its aggregate is done.
                    if id(job) not in self._held_ids:
                        self._pending.pop(id(job), None)
                self._record(results)

    def _keep_state(self, pager: Any) -> None:
        """What the pager learnt, for its successor after a trap; failing to
        read it must not undo a delivery that happened."""
        try:
            self._pager_state = pager.state()
        except Exception:
            log.debug("could not read the pager's state", exc_info=True)

    def _open(self) -> Any:
        from .component import Pager

        opened = Pager.open(
            component_settings(self._settings), self._settings.memory_limit_mib, self._pager_state
        )
        if isinstance(opened, wit.SettingsError):  # checked at collection; kept for safety
            raise RuntimeError(f"{opened.problem}. Fix: {opened.fix}")
        if self._ci is None:  # the same for the whole run
            names = opened.instance.ci_variables()
            self._ci = tuple(wit.Variable(n, os.environ[n]) for n in names if os.environ.get(n))
            self._host = socket.gethostname()
            self._text_limit = opened.instance.failure_text_limit()
        return opened

    def _context(self, failure: wit.TestFailure) -> wit.TestFailure:
        """The failure with the CI variables the component asked for, and the
        host, each text within the component's limit."""
        return within_limit(replace(failure, ci=self._ci or (), host=self._host), self._text_limit)

    def _deliver(self, pager: Any, job: Job) -> list[Result]:
        if isinstance(job, Resolve):
            return [((), self._resolve(pager, job))]
        if isinstance(job, Note):
            return self._note(pager, job)
        failed = Outcome(job.failure.nodeid, "failed", "", replayed=job.replayed)
        marker = pager.marker(job.marker, job.positional)
        if isinstance(marker, wit.MarkerError):  # checked at collection; kept for safety
            return [((job,), replace(failed, reason=marker.problem, fix=marker.fix))]
        failed_runs = min(max(job.failed_runs, 0), U32_MAX)
        planned = pager.trigger(self._context(job.failure), marker, job.severity, failed_runs)
        if isinstance(planned, wit.CountingPlan):
            runs = planned.payload
            reason = f"failing {runs.failed} of {runs.needed} before paging"
            return [((job,), replace(failed, status="counting", reason=reason))]
        if isinstance(planned, wit.PastCap):
            with self._lock:
                self._held.append(job)
                self._held_ids.add(id(job))
            return []
        if not isinstance(planned, wit.Page):
            reason, fix = build_problem(planned)
            return [((job,), replace(failed, reason=reason, fix=fix))]
        if self._keeper is not None:
            self._keeper.durable()
        outcome = self._send(pager, planned.payload, "trigger")
        outcome = replace(outcome, nodeid=failed.nodeid, replayed=job.replayed)
        if outcome.status == "already-open" and outcome.dedup_key:
            self._submit_later(Note(job, outcome.dedup_key))
        return [((job,), outcome), *self._fallback(pager, job.failure, outcome)]

    def _note(self, pager: Any, job: Note) -> list[Result]:
        """The test failed again while its incident is open: the component's
        note on it (once per run, up to its share of PagerDuty's limit), or
        why there is none."""
        trigger = job.trigger
        nodeid = trigger.failure.nodeid
        note = Outcome(nodeid, "failed", "", "note", dedup_key=job.dedup_key)
        marker = pager.marker(trigger.marker, trigger.positional)
        if isinstance(marker, wit.MarkerError):  # checked at collection; kept for safety
            return [((), replace(note, reason=marker.problem, fix=marker.fix))]
        # What this machine remembers of the test's alert; the component uses
        # it only if it is of the incident the trigger hit.
        notes = min(max(trigger.notes, 0), U32_MAX)
        remembered = (trigger.incident_id, trigger.incident_key, notes)
        repeat = pager.repeat(self._context(trigger.failure), marker, *remembered)
        if isinstance(repeat, wit.Skip):
            return [((), replace(note, reason=repeat.payload))]
        if not isinstance(repeat, wit.Note):
            reason, fix = build_problem(repeat)
            return [((), replace(note, reason=reason, fix=fix))]
        outcome = replace(self._send(pager, repeat.payload, "note"), nodeid=nodeid)
        if outcome.status == "queued":  # a note is not kept: the next failure notes
            return [((), replace(outcome, status="failed"))]
        return [((), outcome)]

    def _fallback(self, pager: Any, failure: wit.TestFailure, outcome: Outcome) -> list[Result]:
        """A page refused for good still reaches a human: one alert to the
        fallback routing key, when one is set, saying which check could not
        page and why. (The alert itself stays a dead letter.)"""
        if outcome.status != "failed" or not self._settings.fallback_routing_key:
            return []
        built = pager.fallback(self._context(failure), outcome.reason, outcome.fix)
        if not isinstance(built, wit.AlertRequest):
            reason, fix = build_problem(built)
            return [((), Outcome(failure.nodeid, "failed", "", "fallback", reason=reason, fix=fix))]
        return [((), replace(self._send(pager, built, "fallback"), nodeid=failure.nodeid))]

    def _aggregate(self, pager: Any, held: list[Trigger]) -> list[Result]:
        """The failures past the cap, as the component groups them."""
        results: list[Result] = []
        checked: list[tuple[Trigger, Any]] = []
        for trigger in held:
            marker = pager.marker(trigger.marker, trigger.positional)
            if isinstance(marker, wit.MarkerError):
                outcome = Outcome(trigger.failure.nodeid, "failed", "", reason=marker.problem)
                results.append(((trigger,), outcome))
            else:
                checked.append((trigger, marker))
        items = [wit.Held(self._context(t.failure), m) for t, m in checked]
        for aggregate in pager.aggregate(items, self._suite):
            members = tuple(checked[i][0] for i in aggregate.members)
            covers = tuple(t.failure.nodeid for t in members)
            if not isinstance(aggregate.request, wit.AlertRequest):
                reason, fix = build_problem(aggregate.request)
                failed = Outcome("", "failed", "", "aggregate", reason=reason, fix=fix)
                results += [((t,), replace(failed, nodeid=t.failure.nodeid)) for t in members]
                continue
            if self._keeper is not None:
                self._keeper.durable()
            outcome = self._send(pager, aggregate.request, "aggregate")
            outcome = replace(outcome, nodeid=covers[0], covers=covers)
            results += self._fallback(pager, members[0].failure, outcome)
            if self.kept(outcome) or outcome.status == "failed":  # kept one by one, for replay
                # Each listed under its own name; the request shown once.
                results += [
                    (
                        (t,),
                        replace(
                            outcome,
                            nodeid=t.failure.nodeid,
                            title=outcome.title if i == 0 else "",
                            what="trigger",
                            request=outcome.request if i == 0 else None,
                        ),
                    )
                    for i, t in enumerate(members)
                ]
            else:
                results.append((members, outcome))
        return results

    def _resolve(self, pager: Any, job: Resolve) -> Outcome:
        failed = Outcome(job.nodeid, "failed", "", "resolve", quiet=not job.remembered)
        marker = pager.marker(job.marker, job.positional)
        if isinstance(marker, wit.MarkerError):
            return replace(failed, reason=marker.problem)
        built = pager.resolve(job.nodeid, marker, job.incident_id, job.dedup_key)
        if not isinstance(built, wit.AlertRequest):
            reason, fix = build_problem(built)
            return replace(failed, reason=reason, fix=fix)
        outcome = replace(self._send(pager, built, "resolve"), quiet=not job.remembered)
        if outcome.status == "queued":  # a resolve is not kept: the next pass retries
            return replace(outcome, status="failed")
        return outcome

    def _send(self, pager: Any, request: wit.AlertRequest, what: What) -> Outcome:
        """Sends one request as the component's steps say; follows a lookup's
        resolves. Only the waiting is ours (and stops at the flush timeout)."""
        base = Outcome(request.subject, "failed", request.title, what, dedup_key=request.dedup_key)
        # Never longer than this host's own timeout, whatever the request asks.
        cap = max(1, round(self._settings.timeout * 1000))
        request = replace(request, timeout_ms=min(request.timeout_ms, cap))
        refused = refusal(request.url, request.authority, self._settings.allowed_hosts)
        step = pager.deny(request, refused) if refused else pager.send(request, None)
        attempts = 1
        while isinstance(step, wit.RetryStep):
            wait = step.payload
            if self._stop.wait(wait.wait_ms / 1000):
                reason = f"{wait.reason}; stopped waiting after {attempts} attempt(s)"
                return replace(base, status="queued", reason=reason, attempts=attempts)
            attempts = wait.next.attempt
            step = pager.send(request, wait.next)
        base = replace(base, attempts=attempts)
        if isinstance(step, wit.NotSent):
            return replace(base, status="dry-run", request=request, dry_run=step.payload)
        if isinstance(step, wit.DeliveredStep):
            status: Status = (
                "resolved" if what == "resolve" else "noted" if what == "note" else "created"
            )
            return replace(base, status=status, incident=step.payload)
        if isinstance(step, wit.AlreadyOpen):
            return replace(base, status="already-open", reason=describe(step.payload))
        if isinstance(step, wit.GaveUpStep):
            reason = f"{step.payload.reason}, after {step.payload.attempts} attempt(s)"
            return replace(base, status="queued", reason=reason, attempts=step.payload.attempts)
        if isinstance(step, wit.HeldBack):
            reason = f"not sent: {describe(step.payload.error)}"
            return replace(base, status="queued", reason=reason, held_back=True)
        if isinstance(step, wit.FollowUp):
            done = [self._send(pager, r, what) for r in step.payload]
            unresolved = [o for o in done if o.status != "resolved"]
            return unresolved[0] if unresolved else done[-1]
        assert isinstance(step, wit.Rejected)
        rejection = step.payload
        reason, fix = describe(rejection.error), fix_of(rejection)
        if rejection.stops == "this-api":
            # Bad credentials: keep this and every later alert to this API.
            return replace(base, status="queued", reason=reason, fix=fix, fatal=True)
        return replace(base, status="failed", reason=reason, fix=fix)
