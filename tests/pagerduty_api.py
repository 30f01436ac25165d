"""PagerDuty's published contracts (tests/contract), as request validators."""

from __future__ import annotations

import json
import re
import time
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30ReadValidator, OAS30Validator

CONTRACT = Path(__file__).parent / "contract"
# The REST operations the plugin uses, extracted unchanged from PagerDuty's
# published REST contract by contract/extract.py; Events API v2 copied whole.
REST = CONTRACT / "rest-incidents.json"
EVENTS = CONTRACT / "events-v2-openapiv3.json"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# (method, path pattern) -> (contract, path in the contract)
OPERATIONS = {
    ("POST", re.compile(r"^/incidents$")): ("rest", "/incidents", "post"),
    ("GET", re.compile(r"^/incidents$")): ("rest", "/incidents", "get"),
    ("PUT", re.compile(r"^/incidents/[A-Za-z0-9]+$")): ("rest", "/incidents/{id}", "put"),
    ("POST", re.compile(r"^/incidents/[A-Za-z0-9]+/notes$")): (
        "rest",
        "/incidents/{id}/notes",
        "post",
    ),
    ("POST", re.compile(r"^/v2/enqueue$")): ("events", "/enqueue", "post"),
}


@cache
def spec(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REST if name == "rest" else EVENTS).read_text("utf-8"))
    if name == "rest":
        # Known quirk (shared/pagerduty-api/README.md): the spec types
        # IncidentBody.details as an object, but the API accepts only a string.
        data["components"]["schemas"]["IncidentBody"]["properties"]["details"] = {"type": "string"}
    return data


@cache
def body_validator(name: str, path: str, method: str) -> OAS30Validator:
    pointer = path.replace("~", "~0").replace("/", "~1")
    ref = f"#/paths/{pointer}/{method}/requestBody/content/application~1json/schema"
    # The whole spec is the root, so the body schema's internal $refs resolve.
    return OAS30Validator({**spec(name), "$ref": ref})


@cache
def reply_validator(name: str, pointer: str) -> OAS30ReadValidator:
    # A reply may carry readOnly properties (ids, timestamps): the read validator.
    return OAS30ReadValidator({**spec(name), "$ref": pointer})


def _operation(method: str, path: str) -> tuple[str, str, str] | None:
    return next(
        (op for (m, pattern), op in OPERATIONS.items() if m == method and pattern.match(path)),
        None,
    )


def _parameters(name: str, operation: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = spec(name)["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        found.append(parameter)
    return found


def request_problems(
    method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: Any
) -> list[str]:
    """Everything about a request that PagerDuty's contract rejects."""
    match = _operation(method, path)
    if match is None:
        return [f"{method} {path} is not an operation the plugin may use"]
    name, spec_path, spec_method = match
    operation = spec(name)["paths"][spec_path][spec_method]
    problems: list[str] = []
    declared_query = set()
    for parameter in _parameters(name, operation):
        where, pname, schema = parameter["in"], parameter["name"], parameter.get("schema", {})
        if where == "query":
            declared_query.add(pname)
            # `statuses[]` lists its values in `enum`; `service_ids[]` in `items`.
            allowed = schema.get("enum", schema.get("items", {}).get("enum"))
            problems += [
                f"query parameter {pname}: {value!r} is not one of {allowed}"
                for value in query.get(pname, [])
                if allowed is not None and value not in allowed
            ]
            continue
        if where != "header":
            continue
        value = headers.get(pname.lower())
        if value is None:
            if parameter.get("required"):
                problems.append(f"header {pname} is required")
            continue
        allowed = schema.get("enum", [schema.get("default", value)])
        if value not in allowed:
            problems.append(f"header {pname}: {value!r} is not one of {allowed}")
        if schema.get("format") == "email" and not EMAIL.match(value):
            problems.append(f"header {pname}: {value!r} is not an email address")
    problems += [f"query parameter {q} is not declared" for q in query if q not in declared_query]
    if "requestBody" in operation:
        problems += [
            f"body: {e.message} at {list(e.absolute_path)}"
            for e in body_validator(name, spec_path, spec_method).iter_errors(body)
        ]
    return problems


def reply_problems(method: str, path: str, status: int, body: Any) -> list[str]:
    """Everything about a reply to a request that PagerDuty's contract does
    not describe: a status it does not list, a body its schema rejects."""
    match = _operation(method, path)
    if match is None:
        return [f"{method} {path} is not an operation the plugin may use"]
    name, spec_path, spec_method = match
    responses = spec(name)["paths"][spec_path][spec_method]["responses"]
    response = responses.get(str(status))
    if response is None:
        return [f"status {status} is not one the contract lists ({', '.join(responses)})"]
    if "$ref" in response:
        pointer = response["$ref"]
    else:
        escaped = spec_path.replace("~", "~0").replace("/", "~1")
        pointer = f"#/paths/{escaped}/{spec_method}/responses/{status}"
    return [
        f"reply: {e.message} at {list(e.absolute_path)}"
        for e in reply_validator(name, f"{pointer}/content/application~1json/schema").iter_errors(
            body
        )
    ]


def incident_reply(number: int, title: str, key: str | None = None) -> dict[str, Any]:
    """A 201 body shaped like the spec's example."""
    incident_id = f"PINC{number:03d}"
    return {
        "incident": {
            "id": incident_id,
            "type": "incident",
            "title": title,
            "summary": f"[#{number}] {title}",
            "self": f"https://api.pagerduty.com/incidents/{incident_id}",
            "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
            "incident_number": number,
            "incident_key": key,
            "status": "triggered",
        }
    }


def note_reply(number: int, content: str, requester: str, at: float) -> dict[str, Any]:
    """A `POST /incidents/{id}/notes` reply body shaped like the spec's
    example: the note, by the user the `From` header names, at `at` (epoch s)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    return {
        "note": {
            "id": f"PNOTE{number:02d}",
            "user": {
                "id": "PUSER01",
                "type": "user_reference",
                "summary": requester,
                "self": "https://api.pagerduty.com/users/PUSER01",
                "html_url": "https://acme.pagerduty.com/users/PUSER01",
            },
            "channel": {"summary": "The PagerDuty website or APIs"},
            "content": content,
            "created_at": stamp,
            "updated_at": stamp,
        }
    }


def error_reply(message: str, code: int, *errors: str) -> dict[str, Any]:
    """PagerDuty's error body (REST-API-14-Errors.md)."""
    return {"error": {"message": message, "code": code, "errors": list(errors)}}


def not_found_reply() -> dict[str, Any]:
    """PagerDuty's 404 body: the contract's error example, without `errors`."""
    return {"error": {"message": "Not Found", "code": 2100}}
