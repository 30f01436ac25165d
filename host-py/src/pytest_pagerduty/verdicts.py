"""Markers and settings the component already accepted, remembered per user,
so a later run with the same ones need not load wasmtime at collection.

Keys are HMACs under a random per-user salt (`~/.cache/pytest-pagerduty/salt`,
readable only by the user) of what a verdict depends on: the component's
digest, the wasmtime that runs it, and the checked values (secrets only as
digests): the file never holds a secret, nor anything to test a guess of one
against without the salt.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import logging
import os
from functools import cache
from pathlib import Path
from typing import Any

from .embedded import cache_dir, prune, wasm_digest

log = logging.getLogger("pytest_pagerduty")

# A file past this many keys starts afresh; it only costs a recheck.
MAX_KEYS = 20_000


def _salt(directory: Path) -> bytes:
    path = directory / "salt"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    directory.mkdir(parents=True, exist_ok=True)
    salt = os.urandom(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another run made it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(salt)
    return salt


@cache
def runtime() -> list[object]:
    """Which wasmtime would run the component, found without importing it:
    where its package and native library are, and their size and age. A
    verdict given under one wasmtime says nothing of another (or of a broken
    one: a run whose wasmtime cannot load must find out at collection)."""
    try:
        spec = importlib.util.find_spec("wasmtime")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return [None]
    files = [Path(spec.origin)]
    for location in spec.submodule_search_locations or ():
        files += sorted(Path(location).glob("*/_libwasmtime.*"))
    identity: list[object] = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            identity.append([str(path), None])
        else:
            identity.append([str(path), stat.st_size, stat.st_mtime_ns])
    return identity


class Verdicts:
    def __init__(self) -> None:
        directory = cache_dir()
        self._path = directory / f"accepted-{wasm_digest()}.txt"
        prune(self._path, "accepted-*.txt")
        try:
            self._salt = _salt(directory)
            self._known = set(self._path.read_text().split()) if self._path.exists() else set()
        except OSError as err:
            log.debug("verdict cache unavailable: %s", err)
            self._salt, self._known = os.urandom(32), set()

    def key(self, kind: str, value: Any) -> str:
        text = json.dumps([kind, wasm_digest(), runtime(), value], sort_keys=True, default=repr)
        return hmac.new(self._salt, text.encode(), hashlib.sha256).hexdigest()

    def known(self, key: str) -> bool:
        return key in self._known

    def remember(self, keys: list[str]) -> None:
        new = [k for k in keys if k not in self._known]
        if not new:
            return
        try:
            mode = "w" if len(self._known) + len(new) > MAX_KEYS else "a"
            with open(self._path, mode) as out:
                out.write("".join(k + "\n" for k in new))
        except OSError as err:
            log.debug("could not remember accepted verdicts: %s", err)
        self._known.update(new)
