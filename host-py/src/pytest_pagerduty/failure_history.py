"""How many runs in a row each marked test has failed on this machine, for
`page_after_failures`: kept beside the open alerts in pytest's cache, by
digests of test ids (an id may hold a secret). A failure adds one, a pass
forgets the test; the component decides whether the count pages.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import cached
from .open_alerts import DIGEST, digest

CACHE_KEY = "pagerduty/failing"


class History:
    """Failed runs in a row, by test id, as this run leaves them."""

    def __init__(self, counts: dict[str, Any]) -> None:
        # A count a person or an older version wrote wrong counts as none.
        self._counts = {
            name: value
            for name, value in counts.items()
            if name.startswith(DIGEST) and isinstance(value, int) and value > 0
        }
        self.changed = False
        # Tests that failed in this run: a pass elsewhere in it (--dist each
        # runs a test on every worker) does not undo that.
        self._failed_now: set[str] = set()

    def failed(self, nodeid: str) -> int:
        """Records a failure in this run; the runs in a row it makes."""
        name = digest(nodeid)
        runs = self._counts.get(name, 0) + 1
        self._counts[name] = runs
        self._failed_now.add(name)
        self.changed = True
        return runs

    def passed(self, nodeid: str) -> None:
        """Records a pass: the test starts over, unless it failed in this run
        (call it once the run's failures are recorded)."""
        name = digest(nodeid)
        if name not in self._failed_now and self._counts.pop(name, None) is not None:
            self.changed = True

    def counts(self) -> dict[str, int]:
        return dict(self._counts)


def _without_cache(config: pytest.Config) -> Path:
    """With the cache plugin off (`-p no:cacheprovider`), the count is kept
    in the rootdir, as the outbox is: else a test with page_after_failures
    of 2 or more would never page."""
    return Path(config.rootpath, ".pagerduty-failing.json")


def load(config: pytest.Config) -> History:
    return History(cached.read(config, CACHE_KEY, _without_cache(config)))


def save(config: pytest.Config, history: History) -> None:
    if history.changed:
        cached.write(config, CACHE_KEY, history.counts(), _without_cache(config))
