"""The conformance vectors (tests/vectors/README.md) through the Python host.

`answer` makes the call a vector names with wasmtime-py values and turns the
result into the vectors' canonical JSON, so it compares with `expected`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from wasmtime.component import Variant
from wasmtime.component._types import Record

from pytest_pagerduty.component import Alerts

VECTORS = Path(__file__).parent / "vectors"

_PLACEHOLDER = re.compile(r"\$\{(settings|options)\.([a-z_]+)\}")


def vector_paths() -> list[Path]:
    return sorted(VECTORS.rglob("*.json"))


def load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vector


def _record(fields: dict[str, Any]) -> Record:
    value = Record()
    value.__dict__.update({name.replace("_", "-"): v for name, v in fields.items()})
    return value


def _marker_argument(argument: dict[str, Any]) -> Record:
    ((case, payload),) = argument["value"].items()
    return _record({"name": argument["name"], "value": Variant(case, payload)})


def _canonical(value: Any) -> Any:
    """A wasmtime-py value as the vectors write it: snake_case fields, tagged cases."""
    if isinstance(value, Record):
        return {name.replace("-", "_"): _canonical(v) for name, v in vars(value).items()}
    if isinstance(value, Variant):
        return {value.tag: _canonical(value.payload)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def canonical_request(text: str) -> dict[str, Any]:
    request: dict[str, Any] = json.loads(text)
    # A GET has no body: null.
    for field in ("body", "display_body"):
        request[field] = json.loads(request[field]) if request[field] else None
    return request


def answer(alerts: Alerts, vector: dict[str, Any]) -> dict[str, Any]:
    """The component's answer to the vector's call, as `{"ok": ...}` or `{"err": ...}`."""
    call, given = vector["call"], vector["input"]
    flat = {k: json.dumps(v) for k, v in given.items() if k in ("options", "settings")}
    if call == "check-marker":
        arguments = [_marker_argument(a) for a in given["arguments"]]
        result = alerts.call(call, arguments, _record(given["settings"]))
        return {result.tag: _canonical(result.payload)}
    if call == "check-settings":
        error = alerts.call(call, _record(given["settings"]))
        return {"ok": None} if error is None else {"err": _canonical(error)}
    if call == "classify-reply":
        headers = [_record(h) for h in given["headers"]]
        result = alerts.call(call, given["kind"], given["status"], headers, given["body"])
        # Ok is a record, err a variant: wasmtime-py returns them untagged.
        return {"err" if isinstance(result, Variant) else "ok": _canonical(result)}
    if call == "build-trigger":
        args: tuple[Any, ...] = (
            json.dumps(given["failure"]),
            flat["options"],
            flat["settings"],
            given["severity"],
        )
    elif call == "build-resolve":
        args = (given["nodeid"], flat["options"], flat["settings"], given["incident_id"])
    elif call == "build-aggregate":
        failures = json.dumps(given["failures"])
        args = (failures, given["suite"], flat["options"], flat["settings"])
    elif call == "aggregate-key":
        args = (flat["options"], flat["settings"], given["suite"])
    else:
        raise ValueError(f"unknown call {call!r}")
    result = alerts.call(call, *args)
    # Ok is a string, err a record: wasmtime-py returns them untagged.
    if not isinstance(result, str):
        return {"err": _canonical(result)}
    return {"ok": result if call == "aggregate-key" else canonical_request(result)}


def expected(vector: dict[str, Any]) -> Any:
    """The vector's expectation with its secret placeholders filled from its input."""
    given = vector["input"]

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return _PLACEHOLDER.sub(lambda m: str(given[m.group(1)][m.group(2)]), value)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    return fill(vector["expect"])


def with_placeholders(vector: dict[str, Any], answer: Any) -> Any:
    """The inverse of `expected`: an answer with the input's secrets named, for recording."""
    secrets = [
        (str(vector["input"][group][name]), f"${{{group}.{name}}}")
        for group in ("settings", "options")
        for name in ("api_key", "oauth_token", "routing_key")
        if isinstance(vector["input"].get(group), dict) and vector["input"][group].get(name)
    ]

    def name(value: Any) -> Any:
        if isinstance(value, str):
            for secret, placeholder in secrets:
                value = value.replace(secret, placeholder)
            return value
        if isinstance(value, list):
            return [name(v) for v in value]
        if isinstance(value, dict):
            return {k: name(v) for k, v in value.items()}
        return value

    return name(answer)
