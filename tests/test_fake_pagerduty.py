"""The fake PagerDuty answers as PagerDuty's published contract describes,
over real HTTP: notes on incidents (`POST /incidents/{id}/notes`) and the
lookup by key (`GET /incidents`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from fake_pagerduty import (
    API_KEY,
    FROM,
    NOTE_CREATED,
    NOTES_PER_INCIDENT,
    FakePagerDuty,
    Received,
)
from pagerduty_api import reply_problems

HEADERS = {
    "Accept": "application/vnd.pagerduty+json;version=2",
    "Content-Type": "application/json",
    "Authorization": f"Token token={API_KEY}",
    "From": FROM,
}


def call(
    fake: FakePagerDuty,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    without: tuple[str, ...] = (),
) -> tuple[int, Any]:
    """Sends one request as the plugin would; PagerDuty's status and JSON reply."""
    url = fake.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = json.dumps(body).encode() if body is not None else None
    sent = {k: v for k, v in {**HEADERS, **(headers or {})}.items() if k not in without}
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def note(fake: FakePagerDuty, incident_id: str, content: str) -> tuple[int, Any]:
    return call(fake, "POST", f"/incidents/{incident_id}/notes", {"note": {"content": content}})


def forget(fake: FakePagerDuty, received: Received) -> Received:
    """Drops a request that breaks the contract on purpose, once checked, so
    the fixture's closing check (every request meets the contract) holds."""
    fake.received.remove(received)
    return received


def test_a_note_on_an_open_incident_is_the_note_the_contract_describes(
    pagerduty: FakePagerDuty,
) -> None:
    incident = pagerduty.open_incident("PSVC001", "checkout-probe")

    status, body = note(pagerduty, incident, "Failed again in run 42.")

    assert pagerduty.received[-1].problems == []
    # The contract's createIncidentNote lists 200 ("The new note."), not 201.
    assert status == NOTE_CREATED == 200
    assert reply_problems("POST", f"/incidents/{incident}/notes", status, body) == []
    assert reply_problems("POST", f"/incidents/{incident}/notes", 201, body) == [
        "status 201 is not one the contract lists (200, 400, 401, 403, 404, 429)"
    ]
    created = body["note"]
    assert created["content"] == "Failed again in run 42."
    assert created["user"]["type"] == "user_reference"
    assert created["user"]["summary"] == FROM
    assert created["channel"] == {"summary": "The PagerDuty website or APIs"}
    assert created["id"] and created["created_at"].endswith("Z")
    assert pagerduty.notes_of(incident) == ["Failed again in run 42."]
    assert pagerduty.all_notes() == {incident: ["Failed again in run 42."]}


def test_notes_land_on_created_and_resolved_incidents_in_order(
    pagerduty: FakePagerDuty,
) -> None:
    created = {
        "incident": {
            "type": "incident",
            "title": "Test failed: test_login",
            "service": {"id": "PSVC001", "type": "service_reference"},
            "incident_key": "pytest-login",
        }
    }
    status, body = call(pagerduty, "POST", "/incidents", created)
    assert status == 201
    incident = body["incident"]["id"]
    resolve = {"incident": {"type": "incident_reference", "status": "resolved"}}
    assert call(pagerduty, "PUT", f"/incidents/{incident}", resolve)[0] == 200

    assert note(pagerduty, incident, "first")[0] == 200
    assert note(pagerduty, incident, "second")[0] == 200

    assert pagerduty.notes_of(incident) == ["first", "second"]
    assert pagerduty.note_count(incident) == 2
    assert pagerduty.resolved == {incident: ("PSVC001", "pytest-login")}


def test_a_note_on_an_unknown_incident_is_not_found(pagerduty: FakePagerDuty) -> None:
    status, body = note(pagerduty, "PNOSUCH", "anyone there?")

    assert pagerduty.received[-1].problems == []
    assert status == 404
    assert body == {"error": {"message": "Not Found", "code": 2100}}
    assert reply_problems("POST", "/incidents/PNOSUCH/notes", status, body) == []
    assert pagerduty.all_notes() == {}


def test_the_2001st_note_on_an_incident_is_refused(pagerduty: FakePagerDuty) -> None:
    incident = pagerduty.open_incident("PSVC001", "checkout-probe")
    pagerduty.preset_notes(incident, NOTES_PER_INCIDENT - 1)

    assert note(pagerduty, incident, "the 2000th")[0] == 200
    status, body = note(pagerduty, incident, "the 2001st")

    assert status == 400
    assert body["error"]["message"] == "Invalid Input Provided"
    assert body["error"]["code"] == 2001
    assert any("2000" in error for error in body["error"]["errors"])
    assert reply_problems("POST", f"/incidents/{incident}/notes", status, body) == []
    assert pagerduty.note_count(incident) == NOTES_PER_INCIDENT
    assert pagerduty.notes_of(incident) == ["the 2000th"]


def test_notes_can_only_be_preset_on_an_incident_of_the_fake(pagerduty: FakePagerDuty) -> None:
    with pytest.raises(KeyError, match="PNOSUCH"):
        pagerduty.preset_notes("PNOSUCH", 5)


def test_a_note_without_content_breaks_the_contract(pagerduty: FakePagerDuty) -> None:
    incident = pagerduty.open_incident("PSVC001", "checkout-probe")

    status, body = call(pagerduty, "POST", f"/incidents/{incident}/notes", {"note": {}})

    sent = forget(pagerduty, pagerduty.received[-1])
    assert sent.problems == ["body: 'content' is a required property at ['note']"]
    assert status == 400
    assert body["error"]["code"] == 2001
    assert pagerduty.notes_of(incident) == []


def test_a_note_without_from_breaks_the_contract(pagerduty: FakePagerDuty) -> None:
    incident = pagerduty.open_incident("PSVC001", "checkout-probe")

    call(
        pagerduty,
        "POST",
        f"/incidents/{incident}/notes",
        {"note": {"content": "x"}},
        without=("From",),
    )

    assert forget(pagerduty, pagerduty.received[-1]).problems == ["header From is required"]


def test_a_note_from_a_malformed_address_breaks_the_contract(pagerduty: FakePagerDuty) -> None:
    incident = pagerduty.open_incident("PSVC001", "checkout-probe")
    call(
        pagerduty,
        "POST",
        f"/incidents/{incident}/notes",
        {"note": {"content": "x"}},
        headers={"From": "oncall"},
    )

    assert forget(pagerduty, pagerduty.received[-1]).problems == [
        "header From: 'oncall' is not an email address"
    ]


def test_a_lookup_by_key_lists_open_incidents_and_resolved_ones_only_when_asked(
    pagerduty: FakePagerDuty,
) -> None:
    mine = pagerduty.open_incident("PSVC001", "checkout-probe")
    theirs = pagerduty.open_incident("PSVC002", "checkout-probe")
    pagerduty.open_incident("PSVC001", "another-key")
    resolve = {"incident": {"type": "incident_reference", "status": "resolved"}}
    assert call(pagerduty, "PUT", f"/incidents/{theirs}", resolve)[0] == 200

    def lookup(*query: tuple[str, str]) -> list[tuple[str, str]]:
        status, body = call(
            pagerduty, "GET", "/incidents", query=[("incident_key", "checkout-probe"), *query]
        )
        assert status == 200
        assert reply_problems("GET", "/incidents", status, body) == []
        assert (body["limit"], body["offset"], body["more"]) == (25, 0, False)
        return [(found["id"], found["status"]) for found in body["incidents"]]

    # As the component asks: open ones only.
    open_only = (("statuses[]", "triggered"), ("statuses[]", "acknowledged"))
    assert lookup(*open_only) == [(mine, "triggered")]
    assert lookup(("statuses[]", "resolved")) == [(theirs, "resolved")]
    assert lookup() == [(mine, "triggered"), (theirs, "resolved")]
    assert lookup(("service_ids[]", "PSVC002"), *open_only) == []
    assert lookup(("service_ids[]", "PSVC002")) == [(theirs, "resolved")]
    for received in pagerduty.received:
        assert received.problems == []


def test_a_lookup_pages_as_asked(pagerduty: FakePagerDuty) -> None:
    opened = [pagerduty.open_incident(f"PSVC{n:03d}", "shared-key") for n in range(3)]

    status, body = call(
        pagerduty,
        "GET",
        "/incidents",
        query=[("incident_key", "shared-key"), ("limit", "2"), ("offset", "1")],
    )

    assert status == 200
    assert [found["id"] for found in body["incidents"]] == opened[1:]
    assert (body["limit"], body["offset"], body["more"]) == (2, 1, False)


def test_a_status_the_contract_does_not_list_is_a_problem(pagerduty: FakePagerDuty) -> None:
    call(
        pagerduty,
        "GET",
        "/incidents",
        query=[("incident_key", "k"), ("statuses[]", "open")],
    )

    assert forget(pagerduty, pagerduty.received[-1]).problems == [
        "query parameter statuses[]: 'open' is not one of ['triggered', 'acknowledged', 'resolved']"
    ]
