"""The embedded component's bytes and this user's cache directory, without
importing wasmtime."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from importlib import resources
from pathlib import Path


@cache
def wasm_bytes() -> bytes:
    return resources.files(__package__).joinpath("pagerduty.wasm").read_bytes()


@cache
def wasm_digest() -> str:
    return hashlib.sha256(wasm_bytes()).hexdigest()[:32]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base, "pytest-pagerduty")
