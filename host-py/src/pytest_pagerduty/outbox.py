"""The outbox: a write-ahead journal of alerts PagerDuty has not confirmed.

Every alert is appended (flushed, fsynced) before its first send, so a run
killed at any moment leaves each unconfirmed alert here; when PagerDuty
confirms it, a `settled` line says so. Re-sending an alert PagerDuty already
received is harmless: its dedup key is stable, so PagerDuty answers "already
open" (REST) or adds to the same alert (Events) instead of opening another.

A JSON-lines file of three kinds of line, folded in order when read:
- an entry: what is needed to build the alert again (the failure and the
  marker's arguments), never a secret (credentials are read again when the
  outbox is replayed), and the run that owns it;
- `{"settled": id, "as": "done" | "dead" | "kept", ...}`: confirmed; refused
  for good (a dead letter, with PagerDuty's reason, never retried blindly);
  or not yet sent, with the latest reason;
- `{"claimed": [ids], "owner": run}`: a replay took the entries over.

A run writes ahead to a journal of its own (`<outbox>.runs/<id>.jsonl`),
with no lock per alert, and holds a lock of its own (`<id>.lock`) while it
lives. When it ends it merges what it did not settle into the shared file;
when it dies (the OS releases its lock) the next run or replay adopts its
journal. Every change to the shared file happens under a cross-platform
lock (`filelock`) on a sibling `.lock` file.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout

from . import wit
from .locations import left_in, runs_of
from .redaction import scrubbed

Settled = Literal["done", "dead", "kept"]


@dataclass(frozen=True)
class Entry:
    id: str
    queued_at: str
    reason: str
    failure: wit.TestFailure
    marker: Mapping[str, Any]
    positional: int
    # `info` for a flaky test reported as such.
    severity: wit.Severity | None = None
    # The run that wrote it, or the replay that claimed it.
    owner: str | None = None
    # Refused for good: a dead letter, with PagerDuty's reason and the fix.
    dead: bool = False
    fix: str = ""

    @classmethod
    def new(
        cls,
        failure: wit.TestFailure,
        marker: Mapping[str, Any],
        positional: int,
        reason: str,
        severity: wit.Severity | None = None,
        owner: str | None = None,
    ) -> Entry:
        return cls(
            id=uuid.uuid4().hex,
            queued_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            reason=reason,
            failure=failure,
            marker=dict(marker),
            positional=positional,
            severity=severity,
            owner=owner,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        from .failure import to_wit

        return cls(**{**data, "failure": to_wit(data["failure"])})


def fingerprint(secret: str) -> str:
    """Names a marker's routing key in the outbox without holding it."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def redacted(entry: Entry, secrets: Iterable[str], secret_arguments: Iterable[str] | None) -> Entry:
    """The entry with every secret removed from the failure's text (a test
    that printed its environment must not leave the key on disk) and from
    the marker's arguments (`details` may quote one), and the marker's
    secret arguments (as the component names them; every text argument when
    it could not say) replaced by their fingerprints."""
    marker = dict(entry.marker)
    names = set(marker) if secret_arguments is None else set(secret_arguments)
    secrets = [s for s in secrets if s]
    for name in sorted(names & set(marker)):
        value = marker[name]
        if isinstance(value, str) and not value.startswith("sha256:"):
            secrets.append(value)
            marker[name] = fingerprint(value)
    marker = {
        name: value if name in names else scrubbed(value, secrets) for name, value in marker.items()
    }

    def clean(text: str | None) -> str | None:
        return None if text is None else str(scrubbed(text, secrets))

    f = entry.failure
    failure = replace(
        f,
        nodeid=clean(f.nodeid) or "",
        short_name=clean(f.short_name),
        docstring=clean(f.docstring),
        message=clean(f.message),
        traceback=clean(f.traceback) or "",
        # Context is gathered again when the alert is sent.
        ci=(),
    )
    return replace(entry, failure=failure, marker=marker, reason=clean(entry.reason) or "")


@dataclass
class Journal:
    """The outbox as read: entries not yet confirmed, in order, and the lines
    that are not journal lines (kept, never dropped)."""

    entries: dict[str, Entry] = field(default_factory=dict)
    unreadable: list[bytes] = field(default_factory=list)
    # Lines that no longer say anything (confirmed entries and their marks).
    obsolete: int = 0


def _fold(lines: Iterable[bytes]) -> Journal:
    journal = Journal()
    for raw in lines:
        if not raw.strip():
            continue
        try:
            data = json.loads(raw.decode("utf-8"))
            if "settled" in data:
                _settle(journal, data)
            elif "claimed" in data:
                for entry_id in data["claimed"]:
                    if entry_id in journal.entries:
                        journal.entries[entry_id] = replace(
                            journal.entries[entry_id], owner=data["owner"]
                        )
                journal.obsolete += 1
            else:
                entry = Entry.from_json(data)
                journal.entries[entry.id] = entry
        except (ValueError, TypeError, KeyError, AttributeError):
            journal.unreadable.append(raw)
    return journal


def _settle(journal: Journal, data: dict[str, Any]) -> None:
    journal.obsolete += 1
    entry = journal.entries.get(data["settled"])
    if entry is None:
        return
    if data["as"] == "done":
        del journal.entries[entry.id]
        journal.obsolete += 1
    else:
        journal.entries[entry.id] = replace(
            entry,
            reason=str(data.get("reason", entry.reason)),
            fix=str(data.get("fix", "")),
            dead=data["as"] == "dead",
        )


def settle_lines(entry_ids: Iterable[str], how: Settled, reason: str, fix: str) -> list[str]:
    """The journal lines saying what became of these entries."""
    return [
        json.dumps({"settled": i, "as": how, "reason": reason, "fix": fix}, ensure_ascii=False)
        for i in entry_ids
    ]


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        # One lock object for this outbox's life: making one costs more than
        # taking it (a run takes it once per alert).
        self._lock = FileLock(self.path.with_name(self.path.name + ".lock"))
        self._made = False

    @property
    def runs(self) -> Path:
        """Where runs keep their own journals and hold their locks."""
        return runs_of(self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if not self._made:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._made = True
        with self._lock:
            yield

    def _append(self, lines: Iterable[str], sync: bool = True) -> None:
        """Appends lines under the lock. Without `sync` the lines reach the
        OS (they survive the process being killed) and `sync` makes them
        durable later, in one go."""
        with self._locked():
            self._append_unlocked(lines, sync)

    def _append_unlocked(self, lines: Iterable[str], sync: bool) -> None:
        """Appends after mending a torn last line (a run killed mid-write),
        so the first new line stands on its own."""
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        with open(self.path, "ab+") as out:
            if out.seek(0, os.SEEK_END) > 0:
                out.seek(-1, os.SEEK_END)
                if out.read(1) != b"\n":
                    data = b"\n" + data
            out.write(data)
            out.flush()
            if sync:
                os.fsync(out.fileno())

    def append(self, entry: Entry, sync: bool = True) -> None:
        self._append([entry.to_json()], sync)

    def settle(
        self, entry_ids: Iterable[str], how: Settled, reason: str = "", fix: str = ""
    ) -> None:
        marks = settle_lines(entry_ids, how, reason, fix)
        if marks:
            # Not fsynced: a mark lost to a power cut only means the alert is
            # sent once more, which its stable key makes harmless.
            self._append(marks, sync=False)

    def _read_unlocked(self) -> Journal:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Journal()
        return _fold(raw.split(b"\n"))

    def read(self) -> Journal:
        with self._locked():
            return self._read_unlocked()

    def pending(self) -> bool:
        """Whether the outbox may hold anything, in the shared file or in a
        run's own journal (cheap: a stat and a directory listing)."""
        return left_in(self.path)

    def unconfirmed(self) -> list[Entry]:
        """Every entry not confirmed: in the shared file and in runs'
        journals (a live run's, or one that died), read without a lock."""
        entries = list(self._read_unlocked().entries.values())
        with contextlib.suppress(OSError):
            for journal_path in sorted(self.runs.glob("*.jsonl")):
                entries += _fold(journal_path.read_bytes().split(b"\n")).entries.values()
        return entries

    def run_journal(self, owner: str) -> Path:
        """Where a run writes ahead, alone: no lock is taken per alert."""
        return self.runs / f"{owner}.jsonl"

    def merge_run(self, owner: str) -> None:
        """Moves a run's journal into the shared outbox (what it did not
        settle as done), then removes it: the run ends, or it died."""
        with self._locked():
            self._merge_unlocked(self.run_journal(owner))

    def _merge_unlocked(self, journal_path: Path) -> None:
        try:
            raw = journal_path.read_bytes()
        except FileNotFoundError:
            return
        journal = _fold(raw.split(b"\n"))
        lines = [e.to_json() for e in journal.entries.values()]
        if lines:
            self._append_unlocked(lines, sync=True)
        if journal.unreadable:
            with open(self.unreadable_path, "ab") as aside:
                aside.write(b"".join(line + b"\n" for line in journal.unreadable))
        journal_path.unlink(missing_ok=True)

    def _adopt_unlocked(self, owner: str) -> None:
        """Merges the journals of runs that died (their lock is free)."""
        with contextlib.suppress(FileNotFoundError):
            for journal_path in sorted(self.runs.glob("*.jsonl")):
                if (
                    journal_path.stem != owner
                    and not RunLock(self, journal_path.stem).held_elsewhere()
                ):
                    self._merge_unlocked(journal_path)

    def claim(self, owner: str, include_dead: bool = False) -> tuple[list[Entry], Journal]:
        """Takes over the entries no live run owns (not dead letters, unless
        asked), for `owner` to send; returns them and the whole journal."""
        with self._locked():
            self._adopt_unlocked(owner)
            journal = self._read_unlocked()
            alive: dict[str, bool] = {}
            taken = []
            for entry in journal.entries.values():
                if entry.owner == owner or (entry.dead and not include_dead):
                    continue  # its own are being sent already
                if entry.owner:
                    if entry.owner not in alive:
                        alive[entry.owner] = RunLock(self, entry.owner).held_elsewhere()
                    if alive[entry.owner]:
                        continue
                taken.append(replace(entry, owner=owner))
            if taken:
                claim = {"claimed": [e.id for e in taken], "owner": owner}
                self._append_unlocked([json.dumps(claim)], sync=True)
            return taken, journal

    @property
    def unreadable_path(self) -> Path:
        """Where lines that are not journal lines are moved, kept for a human."""
        return self.path.with_name(self.path.name + ".unreadable")

    def compact(self) -> int:
        """Rewrites the journal without what no longer says anything, when
        there is any, moving lines that are not journal lines (a torn line,
        a corrupted byte) aside to `unreadable_path`; returns how many
        entries remain. A failed rewrite leaves the journal as it was, and
        no temporary file."""
        with self._locked():
            journal = self._read_unlocked()
            remaining = len(journal.entries)
            if not journal.obsolete and not journal.unreadable:
                return remaining
            if journal.unreadable:
                with open(self.unreadable_path, "ab") as aside:
                    aside.write(b"".join(line + b"\n" for line in journal.unreadable))
                    aside.flush()
                    os.fsync(aside.fileno())
            if not remaining:
                self.path.unlink(missing_ok=True)
                return 0
            lines = [e.to_json().encode("utf-8") for e in journal.entries.values()]
            tmp = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.tmp")
            try:
                with open(tmp, "wb") as out:
                    out.write(b"".join(line + b"\n" for line in lines))
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)
            return remaining

    def prune_runs(self) -> None:
        """Removes the lock files runs that died left behind (a SIGKILL),
        unless their journal still waits to be adopted."""
        with contextlib.suppress(OSError):
            for path in self.runs.glob("*.lock"):
                if not self.run_journal(path.stem).exists():
                    RunLock(self, path.stem).held_elsewhere()

    def remove(self, ids: set[str]) -> int:
        """Drops the given entries for good (dead letters someone handled);
        returns how many entries remain."""
        self.settle(sorted(ids), "done")
        return self.compact()


class RunLock:
    """A run's claim on its own entries, held while it lives."""

    def __init__(self, outbox: Outbox, owner: str) -> None:
        self.path = outbox.runs / f"{owner}.lock"
        self._lock = FileLock(self.path)

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()

    def release(self) -> None:
        self._lock.release()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def held_elsewhere(self) -> bool:
        """Whether the run that owns this lock is alive: its lock is held."""
        if not self.path.exists():
            return False
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return True
        except OSError:  # cannot tell: treat the owner as alive, never send twice
            return True
        self.release()
        return False
