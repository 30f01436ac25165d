from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

sys.path.insert(0, str(Path(__file__).parent))

from fake_pagerduty import FakePagerDuty

pytest_plugins = ["pytester"]


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    """A fake PagerDuty on 127.0.0.1; threaded, so a slow reply delays only itself."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    fake = FakePagerDuty(server)
    try:
        yield fake
    finally:
        server.clear()
        server.stop()
    # Every request the plugin sent must meet PagerDuty's published contract.
    for received in fake.received:
        assert not received.problems, (received.body, received.problems)


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, compile_cache: Path) -> None:
    """No PagerDuty settings leak in from the machine; one private compile cache."""
    for name in list(os.environ):
        if name.startswith("PAGERDUTY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(compile_cache))
