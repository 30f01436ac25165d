"""Where the outbox may hold alerts, found without importing anything
heavy: a green run checks it at every start, and must stay cheap.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .embedded import cache_dir


def fallback_path(primary: Path) -> Path | None:
    """Where alerts are kept when the outbox's own directory cannot be
    written (an unwritable cache directory): one file per outbox, in this
    user's cache; None when this user has no home to keep it in."""
    try:
        directory = cache_dir()
    except (RuntimeError, KeyError):  # no HOME, and a uid without a passwd entry
        return None
    digest = hashlib.sha256(str(primary.absolute()).encode()).hexdigest()[:16]
    return directory / "outbox" / f"{digest}.jsonl"


def candidates(primary: Path) -> list[Path]:
    """Every outbox an alert for `primary` may have been kept in."""
    fallback = fallback_path(primary)
    return [primary] + ([fallback] if fallback else [])


def runs_of(outbox: Path) -> Path:
    """The folder of runs' own journals and locks beside an outbox."""
    return outbox.with_name(outbox.name + ".runs")


def left_in(outbox: Path) -> bool:
    """Whether this outbox may hold alerts, in its shared file or in a run's
    own journal (a stat and a listing)."""
    try:
        if outbox.stat().st_size > 0:
            return True
    except OSError:
        pass
    try:
        return any(runs_of(outbox).glob("*.jsonl"))
    except OSError:
        return False


def anything_left(primary: Path) -> bool:
    """Whether an earlier run may have left alerts, wherever it kept them."""
    return any(left_in(path) for path in candidates(primary))
