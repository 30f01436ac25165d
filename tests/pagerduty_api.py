"""PagerDuty's published contract (shared/pagerduty-api), as validators."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "pagerduty-api"
CREATE_INCIDENT = "#/paths/~1incidents/post/requestBody/content/application~1json/schema"


@cache
def rest_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((CONTRACT / "rest-openapiv3.json").read_text("utf-8"))
    # Known quirk (shared/pagerduty-api/README.md): the spec types
    # IncidentBody.details as an object, but the API accepts only a string.
    spec["components"]["schemas"]["IncidentBody"]["properties"]["details"] = {"type": "string"}
    return spec


@cache
def create_incident_validator() -> OAS30Validator:
    # The whole spec is the root, so the body schema's internal $refs resolve.
    return OAS30Validator({**rest_spec(), "$ref": CREATE_INCIDENT})


def create_incident_problems(headers: dict[str, str], body: Any) -> list[str]:
    """Everything about a `POST /incidents` request the contract rejects."""
    problems = [
        f"body: {e.message} at {list(e.absolute_path)}"
        for e in create_incident_validator().iter_errors(body)
    ]
    parameters = rest_spec()["components"]["parameters"]
    for ref in ("header_Accept", "header_Content-Type"):
        parameter = parameters[ref]
        name, schema = parameter["name"], parameter["schema"]
        value = headers.get(name.lower())
        allowed = schema.get("enum", [schema.get("default")])
        if value not in allowed:
            problems.append(f"header {name}: {value!r} is not one of {allowed}")
    return problems


def incident_reply(number: int, title: str) -> dict[str, Any]:
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
            "status": "triggered",
        }
    }


def error_reply(message: str, code: int, *errors: str) -> dict[str, Any]:
    """PagerDuty's error body (REST-API-14-Errors.md)."""
    return {"error": {"message": message, "code": code, "errors": list(errors)}}
