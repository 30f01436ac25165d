"""Values kept in pytest's cache (`.pytest_cache/v/pagerduty/...`), read
and written through the cache plugin when it runs, and through its file
otherwise: `replay` reads them before the cache plugin is configured.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest


def _file(config: pytest.Config, key: str, fallback: Path | None) -> Path | None:
    """Where pytest's cache keeps the value; with the cache plugin off, the
    fallback (None: the value is not kept)."""
    try:
        cache_dir = os.path.expanduser(os.path.expandvars(config.getini("cache_dir")))
    except ValueError:  # -p no:cacheprovider
        return fallback
    return Path(config.rootpath, cache_dir, "v", key)


def _cache(config: pytest.Config) -> Any:
    """The cache plugin's object, once it is configured and when it runs."""
    return getattr(config, "cache", None)


def read(config: pytest.Config, key: str, fallback: Path | None = None) -> dict[str, Any]:
    """The value, or an empty dict when there is none or it is not a dict."""
    cache = _cache(config)
    try:
        if cache is not None:
            value = cache.get(key, {})
        else:
            path = _file(config, key, fallback)
            value = json.loads(path.read_text("utf-8")) if path else {}
    except (OSError, ValueError, RecursionError):  # unreadable, not JSON, nested too deep
        value = {}
    return value if isinstance(value, dict) else {}


def write(
    config: pytest.Config, key: str, value: dict[str, Any], fallback: Path | None = None
) -> None:
    """Stores the value; a cache that cannot be written is left as it is."""
    cache = _cache(config)
    if cache is not None:
        cache.set(key, value)
        return
    path = _file(config, key, fallback)
    if path is not None:
        # As pytest's cache writes it, so the next run's cache.get reads it.
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)
            path.write_text(text, "utf-8")
