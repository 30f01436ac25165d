"""The outbox: incidents PagerDuty has not confirmed, kept to send later.

A JSON-lines file; each entry is appended, flushed and fsynced on its own,
under an exclusive lock on a sibling `.lock` file, so concurrent runs never
interleave or lose entries. Entries hold what is needed to build the
incident again (the failure and the marker's arguments), never a secret:
credentials are read again when the outbox is replayed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import wit

try:
    import fcntl
except ImportError:  # Windows: appends stay atomic per line, without a lock
    fcntl = None  # type: ignore[assignment]


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

    @classmethod
    def new(
        cls,
        failure: wit.TestFailure,
        marker: Mapping[str, Any],
        positional: int,
        reason: str,
        severity: wit.Severity | None = None,
    ) -> Entry:
        return cls(
            id=uuid.uuid4().hex,
            queued_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            reason=reason,
            failure=failure,
            marker=dict(marker),
            positional=positional,
            severity=severity,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Entry:
        data = json.loads(line)
        failure = data["failure"]
        failure["ci"] = tuple(wit.Variable(**v) for v in failure.get("ci", ()))
        data["failure"] = wit.TestFailure(**failure)
        return cls(**data)


def fingerprint(secret: str) -> str:
    """Names a marker's routing key in the outbox without holding it."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def redacted(entry: Entry, secrets: Iterable[str], secret_arguments: Iterable[str] | None) -> Entry:
    """The entry with every secret removed from the failure's text (a test
    that printed its environment must not leave the key on disk), and the
    marker's secret arguments (as the component names them; every text
    argument when it could not say) replaced by their fingerprints."""
    marker = dict(entry.marker)
    names = set(marker) if secret_arguments is None else set(secret_arguments)
    secrets = list(secrets)
    for name in sorted(names & set(marker)):
        value = marker[name]
        if isinstance(value, str) and not value.startswith("sha256:"):
            secrets.append(value)
            marker[name] = fingerprint(value)

    def clean(text: str | None) -> str | None:
        if text is None:
            return None
        for secret in secrets:
            text = text.replace(secret, "[redacted]")
        return text

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
    return replace(entry, failure=failure, marker=marker)


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, entry: Entry) -> None:
        with self._locked(), open(self.path, "a", encoding="utf-8") as out:
            out.write(entry.to_json() + "\n")
            out.flush()
            os.fsync(out.fileno())

    def _read_unlocked(self) -> tuple[list[Entry], list[str]]:
        """Entries, and lines that are not entries (kept, never dropped)."""
        entries: list[Entry] = []
        unreadable: list[str] = []
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return entries, unreadable
        for line in lines:
            if not line.strip():
                continue
            try:
                entries.append(Entry.from_json(line))
            except (ValueError, TypeError, KeyError):
                unreadable.append(line)
        return entries, unreadable

    def read(self) -> tuple[list[Entry], list[str]]:
        with self._locked():
            return self._read_unlocked()

    def remove(self, ids: set[str]) -> int:
        """Drops the given entries, keeping everything appended meanwhile;
        returns how many entries remain."""
        with self._locked():
            entries, unreadable = self._read_unlocked()
            kept = [e.to_json() for e in entries if e.id not in ids] + unreadable
            with tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", dir=self.path.parent, delete=False
            ) as tmp:
                tmp.write("".join(line + "\n" for line in kept))
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp.name, self.path)
            return len(kept)
