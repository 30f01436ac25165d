"""How many runs in a row each marked test has failed on this machine, for
`page_after_failures`: kept beside the open alerts in pytest's cache, by
digests of test ids (an id may hold a secret). A failure adds one, a pass
forgets the test; the component decides whether the count pages."""

from __future__ import annotations

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

    def failed(self, nodeid: str) -> int:
        """Records a failure in this run; the runs in a row it makes."""
        runs = self._counts.get(digest(nodeid), 0) + 1
        self._counts[digest(nodeid)] = runs
        self.changed = True
        return runs

    def passed(self, nodeid: str) -> None:
        if self._counts.pop(digest(nodeid), None) is not None:
            self.changed = True

    def counts(self) -> dict[str, int]:
        return dict(self._counts)


def load(config: pytest.Config) -> History:
    return History(cached.read(config, CACHE_KEY))


def save(config: pytest.Config, history: History) -> None:
    if history.changed:
        cached.write(config, CACHE_KEY, history.counts())
