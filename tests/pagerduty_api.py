"""PagerDuty's published contract (shared/pagerduty-api), as validators."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator

# `POST /incidents` and all it references, extracted unchanged from PagerDuty's
# published REST contract by contract/extract.py.
EXTRACT = Path(__file__).parent / "contract" / "rest-create-incident.json"
CREATE_INCIDENT = "#/paths/~1incidents/post/requestBody/content/application~1json/schema"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@cache
def rest_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(EXTRACT.read_text("utf-8"))
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
    spec = rest_spec()
    for parameter_ref in spec["paths"]["/incidents"]["post"]["parameters"]:
        parameter = spec["components"]["parameters"][parameter_ref["$ref"].rsplit("/", 1)[1]]
        name, schema = parameter["name"], parameter["schema"]
        value = headers.get(name.lower())
        if value is None:
            if parameter.get("required"):
                problems.append(f"header {name} is required")
            continue
        allowed = schema.get("enum", [schema.get("default", value)])
        if value not in allowed:
            problems.append(f"header {name}: {value!r} is not one of {allowed}")
        if schema.get("format") == "email" and not EMAIL.match(value):
            problems.append(f"header {name}: {value!r} is not an email address")
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
