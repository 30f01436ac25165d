"""The embedded component's bytes and this user's cache directory, without
importing wasmtime.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from functools import cache
from importlib import resources
from pathlib import Path

import platformdirs


@cache
def wasm_bytes() -> bytes:
    return resources.files(__package__).joinpath("pagerduty.wasm").read_bytes()


@cache
def wasm_digest() -> str:
    return hashlib.sha256(wasm_bytes()).hexdigest()[:32]


def cache_dir() -> Path:
    """This user's cache, where the platform keeps caches (`platformdirs`):
    `~/.cache` (or `$XDG_CACHE_HOME`) on Linux, `~/Library/Caches` on macOS,
    `%LOCALAPPDATA%` on Windows."""
    return platformdirs.user_cache_path("pytest-pagerduty", appauthor=False)


# Files of other component or wasmtime versions unused this long are removed.
PRUNE_AFTER_SECONDS = 7 * 24 * 3600


def prune(current: Path, pattern: str) -> None:
    """Removes the files matching `pattern` beside `current` that belong to
    other component or wasmtime versions and went unused for a week (a
    second installed version still in use keeps its own), and marks
    `current` used. Nothing here may stop a run."""
    now = time.time()
    with contextlib.suppress(OSError):
        os.utime(current)
    with contextlib.suppress(OSError):
        for path in current.parent.glob(pattern):
            if path != current and now - path.stat().st_mtime > PRUNE_AFTER_SECONDS:
                path.unlink()
