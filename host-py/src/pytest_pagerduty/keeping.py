"""What a run (or a replay) writes to the outbox: each alert before its
first send, then what became of it.

The rules of delivery are the component's; this file only turns each
outcome into the journal line that keeps it: confirmed (done), refused for
good (a dead letter), or still to send (kept, with the latest reason).

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from .delivery import Outcome, Trigger, reason_of
from .locations import candidates, fallback_path
from .outbox import Entry, Outbox, RunLock, Settled, fingerprint, redacted, settle_lines
from .redaction import scrubbed
from .settings import Settings

log = logging.getLogger("pytest_pagerduty")

# The reason an entry carries until its outcome is known: what replay shows
# when the run that wrote it never learnt more.
NOT_CONFIRMED = "not confirmed: the run ended before PagerDuty answered"


def outboxes(primary: Path) -> list[Outbox]:
    """Every place an alert for this outbox may have been kept."""
    return [Outbox(path) for path in candidates(primary)]


def how_settled(outcome: Outcome) -> Settled | None:
    """The journal's word for an outcome; None while it says nothing yet."""
    # Counting toward page_after_failures: nothing to page, nothing to keep.
    if outcome.status in ("created", "already-open", "counting"):
        return "done"
    if outcome.status == "dry-run":
        # Only missing credentials caused it: send it once they are there.
        # An asked-for dry run (a preview, a replay's rehearsal) changes nothing.
        return "kept" if outcome.dry_run == "no-credentials" else None
    if outcome.status == "queued":
        return "kept"
    if outcome.status == "failed":
        return "dead"
    return None


def trigger_of(entry: Entry, settings: Settings) -> tuple[Trigger, str | None]:
    """The entry as a run would have submitted it, its marker's secrets
    found again (the outbox holds only their fingerprints: a setting must
    hold the same value); and why it cannot be sent, when it cannot."""
    marker = dict(entry.marker)
    problem = None
    for name, value in entry.marker.items():
        if isinstance(value, str) and value.startswith("sha256:"):
            known = [s for s in settings.secrets if fingerprint(s) == value]
            if known:
                marker[name] = known[0]
            else:
                problem = (
                    f"this alert went to a {name} given in its marker, which the outbox "
                    f"does not keep. Fix: set the {name} setting (PAGERDUTY_{name.upper()}) "
                    "to that value to replay it"
                )
    trigger = Trigger(
        entry.failure,
        marker,
        entry.positional,
        entry.severity,
        entry.id,
        True,
        # Kept to be delivered: the component never counts it again.
        failed_runs=0,
    )
    return trigger, problem


@dataclass(frozen=True)
class ComponentFacts:
    """What the component says of itself that the host needs before any
    alert is sent: which marker arguments are secret (kept in the outbox
    only as fingerprints; None: every text argument) and how much text a
    failure may carry (None: no cut)."""

    secret_arguments: list[str] | None = None
    text_limit: int | None = None


def component_facts(memory_limit_mib: int) -> ComponentFacts:
    try:
        from .component import Instance

        instance = Instance(memory_limit_mib)
        return ComponentFacts(instance.secret_arguments(), instance.failure_text_limit())
    except Exception:
        log.debug("the component cannot say what it keeps secret", exc_info=True)
        return ComponentFacts()


class Keeper:
    """One run's writer of the outbox. It owns the entries it writes (and
    those it claims) while it lives; `close` hands them on. The main thread
    writes ahead while the delivery thread settles: one mutex orders them."""

    def __init__(self, settings: Settings, path: Path, secret_arguments: Sequence[str] | None):
        self._settings = settings
        self._secret_arguments = secret_arguments
        self.owner = uuid.uuid4().hex
        self.primary = path
        fallback = fallback_path(path)
        self._fallback = Outbox(fallback) if fallback is not None else None
        # Every place this run's alerts may be: the outbox, then the fallback.
        self._boxes = [Outbox(path)] + ([self._fallback] if self._fallback else [])
        self.outbox = self._boxes[0]
        self._mutex = threading.RLock()
        self._closed = False
        self._locks: dict[Path, RunLock] = {}
        # This run's own journal in each outbox it writes to, kept open.
        self._journals: dict[Path, BinaryIO] = {}
        # Journals written since their last fsync.
        self._unsynced: set[Path] = set()
        # Entry id -> the outbox it lives in.
        self._where: dict[str, Outbox] = {}
        # The entries this run wrote (in its journal), not claimed (shared).
        self._own: set[str] = set()
        # Why the outbox could not be written, when it could not.
        self.trouble: str | None = None
        # Alerts written ahead and not yet settled: what a kill would leave.
        self.unsettled = 0
        # Entries a live run owns, found when claiming: left to it.
        self.busy = 0

    def _use(self, outbox: Outbox) -> None:
        if self._closed:
            raise OSError("the run's outbox is closed")
        if outbox.path not in self._locks:
            lock = RunLock(outbox, self.owner)
            lock.acquire()  # before the journal: a journal without a live lock is adopted
            self._locks[outbox.path] = lock

    def _journal(self, outbox: Outbox) -> BinaryIO:
        self._use(outbox)
        if outbox.path not in self._journals:
            self._journals[outbox.path] = open(outbox.run_journal(self.owner), "ab")  # noqa: SIM115
        return self._journals[outbox.path]

    def _append(self, outbox: Outbox, lines: Sequence[str]) -> None:
        """To this run's own journal: in the OS at once (a kill cannot lose
        it), on disk at the next `durable`."""
        journal = self._journal(outbox)
        journal.write("".join(line + "\n" for line in lines).encode("utf-8"))
        journal.flush()
        self._unsynced.add(outbox.path)

    def _write(self, entry: Entry) -> Path:
        """Appends the entry where it can; falls back to this user's cache
        when the outbox's directory cannot be written."""
        entry = redacted(entry, self._settings.secrets, self._secret_arguments)
        candidates = [self.outbox]
        if self._fallback is not None and self._fallback is not self.outbox:
            candidates.append(self._fallback)
        for outbox in candidates:
            try:
                # Durable before the first send (`durable`), in one fsync for
                # every alert queued meanwhile; the process being killed
                # cannot lose what reached the OS.
                self._append(outbox, [entry.to_json()])
            except OSError as err:
                log.debug("cannot write the outbox %s", outbox.path, exc_info=True)
                self.trouble = f"cannot write the outbox {outbox.path}: {reason_of(err)}"
                continue
            self._where[entry.id] = outbox
            self._own.add(entry.id)
            self.outbox = outbox  # after a fallback, the rest of the run goes there too
            return outbox.path
        raise OSError(self.trouble)

    def write_ahead(self, trigger: Trigger) -> Trigger:
        """Keeps the alert before its first send; when nothing can be
        written, it is still sent (and listed as lost if that fails)."""
        entry = Entry.new(
            trigger.failure,
            trigger.marker,
            trigger.positional,
            NOT_CONFIRMED,
            trigger.severity,
            self.owner,
        )
        try:
            with self._mutex:
                self._write(entry)
                self.unsettled += 1
        except Exception:  # never let keeping an alert stop the run
            log.debug("cannot write an alert ahead", exc_info=True)
            return trigger
        return replace(trigger, entry_id=entry.id)

    def durable(self) -> None:
        """Called before a send: every alert written ahead is on disk."""
        with self._mutex:
            unsynced, self._unsynced = self._unsynced, set()
            for path in unsynced:
                try:
                    os.fsync(self._journals[path].fileno())
                except (OSError, KeyError, ValueError):
                    log.debug("cannot fsync the journal in %s", path, exc_info=True)

    def settle(self, triggers: Sequence[Trigger], outcome: Outcome) -> Outcome:
        """Records what became of the triggers' alert; returns the outcome
        saying where it is kept (or that it was lost)."""
        how = how_settled(outcome)
        if how is None:
            return outcome
        reason = outcome.reason or (
            "no credentials configured" if outcome.status == "dry-run" else ""
        )
        # PagerDuty's answer may quote a secret back: never onto the disk.
        reason, fix = (str(scrubbed(t, self._settings.secrets)) for t in (reason, outcome.fix))
        ids = [t.entry_id for t in triggers if t.entry_id]
        unwritten = [t for t in triggers if not t.entry_id]
        with self._mutex:
            try:
                by_outbox: dict[Path, tuple[Outbox, list[str]]] = {}
                for i in ids:
                    outbox = self._where.get(i, self.outbox)
                    by_outbox.setdefault(outbox.path, (outbox, []))[1].append(i)
                for outbox, here in by_outbox.values():
                    mine = [i for i in here if i in self._own]
                    if mine:  # in this run's journal: no lock
                        self._append(outbox, settle_lines(mine, how, reason, fix))
                    if len(mine) < len(here):  # claimed from the shared file
                        outbox.settle([i for i in here if i not in self._own], how, reason, fix)
                if how != "done":
                    for t in unwritten:
                        entry = Entry.new(
                            t.failure, t.marker, t.positional, reason, t.severity, self.owner
                        )
                        self._write(replace(entry, dead=how == "dead", fix=fix))
            except OSError as err:
                if how == "done":
                    # Confirmed, and its entry stays: a replay re-sends it with
                    # the same key, which PagerDuty takes as the same alert.
                    log.debug("could not mark an alert confirmed", exc_info=True)
                    return outcome
                why = self.trouble or reason_of(err)
                return replace(
                    outcome,
                    status="lost",
                    reason=f"{outcome.reason}; and it could not be kept: {why}",
                )
            finally:
                if how == "done":
                    self.unsettled = max(0, self.unsettled - len(ids))
            where = self._where.get(ids[0], self.outbox) if ids else self.outbox
        return outcome if how == "done" else replace(outcome, outbox=where.path)

    def claim(self, include_dead: bool = False) -> tuple[list[Entry], list[Entry]]:
        """Takes over what earlier runs left (in every place they may have
        kept it): (entries to send, dead letters)."""
        taken: list[Entry] = []
        dead: list[Entry] = []
        for outbox in self._boxes:
            if not outbox.pending():
                continue
            try:
                with self._mutex:
                    self._use(outbox)
                    entries, journal = outbox.claim(self.owner, include_dead)
                    for entry in entries:  # settled where it was written
                        self._where[entry.id] = outbox
                    self.unsettled += len(entries)
            except OSError:
                log.debug("cannot read the outbox %s", outbox.path, exc_info=True)
                continue
            taken += entries
            ids = {e.id for e in entries}
            for entry in journal.entries.values():
                if entry.dead and not include_dead:
                    dead.append(entry)
                    self._where[entry.id] = outbox
                elif entry.id not in ids and entry.owner != self.owner:
                    self.busy += 1
        return taken, dead

    def forget(self, entries: Sequence[Entry]) -> None:
        """Drops dead letters for good, once someone handled them."""
        with self._mutex:
            by_outbox: dict[Path, tuple[Outbox, list[str]]] = {}
            for entry in entries:
                outbox = self._where.get(entry.id, self.outbox)
                by_outbox.setdefault(outbox.path, (outbox, []))[1].append(entry.id)
            for outbox, ids in by_outbox.values():
                outbox.settle(ids, "done")

    def trigger_of(self, entry: Entry) -> tuple[Trigger, str | None]:
        return trigger_of(entry, self._settings)

    def close(self) -> int:
        """Drops confirmed entries, moves unreadable lines aside, and hands
        this run's entries on to the next; returns how many remain."""
        remaining = 0
        with self._mutex:
            self._closed = True
            for journal in self._journals.values():
                with contextlib.suppress(OSError):
                    journal.close()
            for path, lock in self._locks.items():
                outbox = Outbox(path)
                try:
                    outbox.merge_run(self.owner)
                    remaining += outbox.compact()
                except OSError:  # the journal stays, and the next run adopts it
                    log.debug("cannot merge into the outbox %s", path, exc_info=True)
                lock.release()
                outbox.prune_runs()
            self._locks.clear()
            self._journals.clear()
        return remaining
