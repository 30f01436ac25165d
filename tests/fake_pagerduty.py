"""PagerDuty on 127.0.0.1 (pytest-httpserver): the REST incidents API and
Events API v2, checking every request against the published contracts and
answering as PagerDuty does, with state: an open incident's key refuses a
second create on its service, a lookup finds it (on the services named by
`service_ids[]`, else on every service; a resolved one only when
`statuses[]` is absent or names `resolved`), a resolve closes it, and a note
lands on any incident it issued, open or resolved, up to PagerDuty's 2,000 per
incident."""

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

from pagerduty_api import (
    error_reply,
    incident_reply,
    not_found_reply,
    note_reply,
    request_problems,
)

API_KEY = "u+PDtestkey_9f8e7d6c5b4a"
FROM = "oncall@example.com"
ROUTING_KEY = "R0UT1NGKEYe93facc04764012d7bfb01"
# "A maximum of 2000 notes can be added to an incident." (createIncidentNote)
NOTES_PER_INCIDENT = 2000
# The contract lists 200 ("The new note.") as createIncidentNote's success,
# not 201 as for `POST /incidents`; the component counts any 2xx.
NOTE_CREATED = 200
NOTES_PATH = re.compile(r"^/incidents/([^/]+)/notes$")


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
        # incident id -> (service id, incident_key), for the REST incidents
        # it resolved: still there to note, listed for `statuses[]=resolved`.
        self.resolved: dict[str, tuple[str, str]] = {}
        # Every REST incident id it issued (with or without a key).
        self._issued: set[str] = set()
        # incident id -> the content of each note created on it, in order.
        self.notes: dict[str, list[str]] = {}
        # incident id -> notes it holds from before (preset_notes).
        self._preset_notes: dict[str, int] = {}
        self._next_note = 0
        # dedup_key -> summary, for triggered (unresolved) events
        self.open_events: dict[str, str] = {}
        for path, method in (
            ("/incidents", "POST"),
            ("/incidents", "GET"),
            (re.compile(r"^/incidents/[^/]+$"), "PUT"),
            (NOTES_PATH, "POST"),
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
            self._issued.add(incident_id)
            return incident_id

    def knows(self, incident_id: str) -> bool:
        """Whether the incident exists here: open, resolved, or issued."""
        return (
            incident_id in self._issued
            or incident_id in self.resolved
            or incident_id in self.open_by_service.values()
        )

    def preset_notes(self, incident_id: str, count: int) -> None:
        """Gives an incident `count` notes from before (another run's),
        without sending them; they count toward the 2,000 limit only."""
        with self._lock:
            if not self.knows(incident_id):
                raise KeyError(f"{incident_id} is not an incident of this fake")
            self._preset_notes[incident_id] = count

    def note_count(self, incident_id: str) -> int:
        """How many notes the incident holds: preset ones and created ones."""
        with self._lock:
            return self._preset_notes.get(incident_id, 0) + len(self.notes.get(incident_id, []))

    def notes_of(self, incident_id: str) -> list[str]:
        """The content of each note created on the incident here, in order."""
        with self._lock:
            return list(self.notes.get(incident_id, []))

    def all_notes(self) -> dict[str, list[str]]:
        """incident id -> the content of each note created on it here."""
        with self._lock:
            return {incident_id: list(notes) for incident_id, notes in self.notes.items()}

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
            return self._list(request.query)
        if request.method == "PUT":
            incident_id = request.path.rsplit("/", 1)[1]
            for opened, open_id in list(self.open_by_service.items()):
                if open_id == incident_id:
                    del self.open_by_service[opened]
                    self.resolved[incident_id] = opened
                    return Scripted(200, {"incident": {"id": incident_id, "status": "resolved"}})
            return Scripted(400, error_reply("Incident Already Resolved", 1001))
        noted = NOTES_PATH.match(request.path)
        if noted:
            return self._note(noted.group(1), body, request.headers.get("from", ""))
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
        self._issued.add(reply["incident"]["id"])
        return Scripted(201, reply)

    def _list(self, query: dict[str, list[str]]) -> Scripted:
        """`GET /incidents`: `incident_key` (one key), `service_ids[]` ("returns
        only the incidents associated with the passed service(s)"; without it,
        every service's) and `statuses[]` (without it, every status). Open
        incidents here are `triggered`; none is ever `acknowledged`."""
        keys = query.get("incident_key")
        services = query.get("service_ids[]")
        statuses = query.get("statuses[]")
        every = [
            *(
                (incident_id, service, key, "triggered")
                for (service, key), incident_id in self.open_by_service.items()
            ),
            *(
                (incident_id, service, key, "resolved")
                for incident_id, (service, key) in self.resolved.items()
            ),
        ]
        found = [
            {
                "id": incident_id,
                "type": "incident",
                "status": status,
                "incident_key": key,
                "service": {"id": service, "type": "service_reference"},
            }
            for incident_id, service, key, status in every
            if (keys is None or key in keys)
            and (services is None or service in services)
            and (statuses is None or status in statuses)
        ]
        # "The number of results per page. Maximum of 100." (default 25)
        limit = min(_whole(query.get("limit"), 25), 100)
        offset = _whole(query.get("offset"), 0)
        return Scripted(
            200,
            {
                "incidents": found[offset : offset + limit],
                "limit": limit,
                "offset": offset,
                "more": offset + limit < len(found),
            },
        )

    def _note(self, incident_id: str, body: dict[str, Any], requester: str) -> Scripted:
        """`POST /incidents/{id}/notes` on an incident it knows, open or resolved."""
        if not self.knows(incident_id):
            return Scripted(404, not_found_reply())
        note = body.get("note")
        content = note.get("content") if isinstance(note, dict) else None
        if not isinstance(content, str):
            return Scripted(
                400, error_reply("Invalid Input Provided", 2001, "Note content must be a string")
            )
        held = self._preset_notes.get(incident_id, 0) + len(self.notes.get(incident_id, []))
        if held >= NOTES_PER_INCIDENT:
            return Scripted(
                400,
                error_reply(
                    "Invalid Input Provided",
                    2001,
                    f"A maximum of {NOTES_PER_INCIDENT} notes can be added to an incident",
                ),
            )
        self.notes.setdefault(incident_id, []).append(content)
        self._next_note += 1
        return Scripted(NOTE_CREATED, note_reply(self._next_note, content, requester, time.time()))

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


def _whole(values: list[str] | None, default: int) -> int:
    """A whole-number query parameter's value, or `default`."""
    return int(values[0]) if values and values[0].isdigit() else default
