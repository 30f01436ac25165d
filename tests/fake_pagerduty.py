"""PagerDuty on 127.0.0.1 (pytest-httpserver): the REST incidents API and
Events API v2, checking every request against the published contracts and
answering as PagerDuty does, with state: an open incident's key refuses a
second create on its service, a lookup finds it (on the services named by
`service_ids[]`, else on every service), a resolve closes it."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pagerduty_api import error_reply, incident_reply, request_problems

API_KEY = "u+PDtestkey_9f8e7d6c5b4a"
FROM = "oncall@example.com"
ROUTING_KEY = "R0UT1NGKEYe93facc04764012d7bfb01"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    problems: list[str]
    # When it arrived (time.monotonic()), to check how far apart retries are.
    at: float = 0.0


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakePagerDuty:
    """Scripted replies first (any route), then PagerDuty's own answers."""

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
        # (service id, incident_key) -> incident id, for open REST incidents:
        # PagerDuty's incident keys are unique per service only.
        self.open_by_service: dict[tuple[str, str], str] = {}
        # dedup_key -> summary, for triggered (unresolved) events
        self.open_events: dict[str, str] = {}
        for path, method in (
            ("/incidents", "POST"),
            ("/incidents", "GET"),
            (re.compile(r"^/incidents/[^/]+$"), "PUT"),
            ("/v2/enqueue", "POST"),
        ):
            server.expect_request(path, method=method).respond_with_handler(self._handle)

    @property
    def open_incidents(self) -> dict[str, str]:
        """incident_key -> id of the open REST incidents (keys of one service)."""
        return {key: incident_id for (_, key), incident_id in self.open_by_service.items()}

    def open_incident(self, service_id: str, key: str) -> str:
        """Opens an incident as if created earlier (by another run); its id."""
        with self._lock:
            self._next_number += 1
            reply = incident_reply(self._next_number, "opened earlier", key)
            incident_id: str = reply["incident"]["id"]
            self.open_by_service[(service_id, key)] = incident_id
            return incident_id

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def options(self, *extra: str) -> list[str]:
        """Command-line options that point the plugin here with an API key."""
        return [
            f"--pagerduty_api_url={self.url}",
            f"--pagerduty_events_url={self.url}",
            f"--pagerduty_api_key={API_KEY}",
            f"--pagerduty_default_from={FROM}",
            "--pagerduty_timeout=5",
            *extra,
        ]

    def events_options(self, *extra: str) -> list[str]:
        """Command-line options for Events API v2 here, with a routing key only."""
        return [
            f"--pagerduty_events_url={self.url}",
            f"--pagerduty_api_url={self.url}",
            f"--pagerduty_routing_key={ROUTING_KEY}",
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
        PagerDuty's usual answer, sent after `delay`."""
        self._script.append(Scripted(status, body, headers or {}, delay))

    def _handle(self, request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = {k: request.args.getlist(k) for k in request.args}
        text = request.get_data(as_text=True)
        try:
            body = json.loads(text) if text else None
            problems = request_problems(request.method, request.path, query, headers, body)
        except ValueError as err:
            body, problems = text, [f"body is not JSON: {err}"]
        received = Received(
            request.method, request.path, query, headers, body, problems, time.monotonic()
        )
        with self._lock:
            self.received.append(received)
            scripted = self._script.popleft() if self._script else None
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if scripted is not None and scripted.delay:
                time.sleep(scripted.delay)
            if scripted is None or scripted.status == 0:
                with self._lock:
                    scripted = self._answer(received)
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

    def _answer(self, request: Received) -> Scripted:
        """What PagerDuty answers, given what is open."""
        body = request.body if isinstance(request.body, dict) else {}
        if request.path == "/v2/enqueue":
            key = body.get("dedup_key") or f"generated-{len(self.received)}"
            if body.get("event_action") == "trigger":
                self.open_events[key] = body.get("payload", {}).get("summary", "")
            elif body.get("event_action") == "resolve":
                self.open_events.pop(key, None)
            return Scripted(
                202, {"status": "success", "message": "Event processed", "dedup_key": key}
            )
        if request.method == "GET":
            # PagerDuty: `service_ids[]` "returns only the incidents associated
            # with the passed service(s)"; without it, every service's.
            keys = request.query.get("incident_key", [])
            services = request.query.get("service_ids[]")
            found = [
                {
                    "id": incident_id,
                    "type": "incident",
                    "status": "triggered",
                    "incident_key": key,
                    "service": {"id": service, "type": "service_reference"},
                }
                for (service, key), incident_id in self.open_by_service.items()
                if key in keys and (services is None or service in services)
            ]
            return Scripted(200, {"incidents": found, "limit": 25, "offset": 0, "more": False})
        if request.method == "PUT":
            incident_id = request.path.rsplit("/", 1)[1]
            for opened, open_id in list(self.open_by_service.items()):
                if open_id == incident_id:
                    del self.open_by_service[opened]
                    return Scripted(200, {"incident": {"id": incident_id, "status": "resolved"}})
            return Scripted(400, error_reply("Incident Already Resolved", 1001))
        incident = body.get("incident", {})
        key = incident.get("incident_key")
        service = incident.get("service", {}).get("id", "")
        if (service, key) in self.open_by_service:
            return Scripted(
                400,
                error_reply(
                    "Invalid Input Provided",
                    2001,
                    "Open incident with matching incident key already exists on this service",
                ),
            )
        self._next_number += 1
        reply = incident_reply(self._next_number, incident.get("title", ""), key)
        if key:
            self.open_by_service[(service, key)] = reply["incident"]["id"]
        return Scripted(201, reply)

    def _bodies(self, method: str, path: str) -> list[Any]:
        for received in self.received:
            assert not received.problems, received.problems
        return [r.body for r in self.received if r.method == method and r.path == path]

    def incidents(self) -> list[dict[str, Any]]:
        """The `incident` objects of the creates received."""
        return [body["incident"] for body in self._bodies("POST", "/incidents")]

    def events(self) -> list[dict[str, Any]]:
        """The Events API v2 events received."""
        return self._bodies("POST", "/v2/enqueue")

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of everything received, in order."""
        return [(r.method, r.path) for r in self.received]
