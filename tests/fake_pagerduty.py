"""A PagerDuty REST API on 127.0.0.1 (pytest-httpserver) that checks every
request against the published contract and answers as PagerDuty does."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pagerduty_api import create_incident_problems, incident_reply

API_KEY = "u+PDtestkey_9f8e7d6c5b4a"
FROM = "oncall@example.com"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    problems: list[str]


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakePagerDuty:
    """Answers `POST /incidents`: scripted replies first, then 201s."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.received: list[Received] = []
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._next_number = 1000
        self._in_flight = 0
        # The most requests it was ever handling at once.
        self.max_in_flight = 0
        # Called as each reply is sent, to record what had happened by then.
        self.on_reply: list[Callable[[], None]] = []
        server.expect_request("/incidents", method="POST").respond_with_handler(self._handle)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def options(self, *extra: str) -> list[str]:
        """Command-line options that point the plugin here with an API key."""
        return [
            f"--pagerduty_api_url={self.url}",
            f"--pagerduty_api_key={API_KEY}",
            f"--pagerduty_default_from={FROM}",
            "--pagerduty_timeout=5",
            *extra,
        ]

    def reply(
        self,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Queues one reply; `body` is JSON unless it is a str. Status 0 means
        the usual 201, sent after `delay`."""
        self._script.append(Scripted(status, body, headers or {}, delay))

    def _handle(self, request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body = json.loads(request.get_data(as_text=True))
            problems = create_incident_problems(headers, body)
        except ValueError as err:
            body, problems = request.get_data(as_text=True), [f"body is not JSON: {err}"]
        with self._lock:
            self.received.append(Received(request.method, request.path, headers, body, problems))
            scripted = self._script.popleft() if self._script else None
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if scripted is not None and scripted.delay:
                time.sleep(scripted.delay)
            if scripted is None or scripted.status == 0:  # 0: a 201 after the delay
                with self._lock:
                    self._next_number += 1
                    number = self._next_number
                title = body["incident"]["title"] if isinstance(body, dict) else ""
                scripted = Scripted(201, incident_reply(number, title))
            for callback in self.on_reply:
                callback()
        finally:
            with self._lock:
                self._in_flight -= 1
        payload = scripted.body if isinstance(scripted.body, str) else json.dumps(scripted.body)
        return Response(
            payload,
            status=scripted.status,
            headers=scripted.headers,
            content_type="application/json",
        )

    def incidents(self) -> list[dict[str, Any]]:
        """The `incident` objects received, each checked against the contract."""
        for received in self.received:
            assert not received.problems, received.problems
        return [r.body["incident"] for r in self.received]
