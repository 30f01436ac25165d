"""The conformance vectors (tests/vectors/README.md) through the Python host.

`answer` makes the call a vector names through the host's own wrapper
(`component.Pager`, the mirrors in `wit.py`, `lowering`) and turns the result
into the vectors' canonical JSON, so it compares with `expected`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_pagerduty import wit
from pytest_pagerduty.component import Instance, Marker, Pager

VECTORS = Path(__file__).parent / "vectors"
MEMORY_LIMIT_MIB = 64

# Every call of the README's table.
CALLS = frozenset(
    {
        "open",
        "check-marker",
        "preflight",
        "trigger",
        "repeat",
        "resolve",
        "aggregate",
        "fallback",
        "classify-reply",
        "deliver",
    }
)

_PLACEHOLDER = re.compile(r"\$\{(settings|options)\.([a-z_]+)\}")
_SECRETS = ("api_key", "oauth_token", "routing_key", "fallback_routing_key")


def vector_paths() -> list[Path]:
    return sorted(VECTORS.rglob("*.json"))


def load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return vector


# --- the vectors' JSON -> the host's mirrors ----------------------------------

_MARKER_VALUES: dict[str, Any] = {
    "text": wit.Text,
    "text-list": lambda items: wit.TextList(tuple(items)),
    "number": wit.Number,
    "unsupported": wit.Unsupported,
}


def _settings(given: dict[str, Any]) -> wit.Settings:
    return wit.Settings(**given)


def _arguments(given: list[dict[str, Any]]) -> list[wit.MarkerArgument]:
    arguments = []
    for argument in given:
        ((case, payload),) = argument["value"].items()
        arguments.append(wit.MarkerArgument(argument["name"], _MARKER_VALUES[case](payload)))
    return arguments


def _failure(given: dict[str, Any]) -> wit.TestFailure:
    ci = tuple(wit.Variable(**variable) for variable in given["ci"])
    source = given["source"] and wit.SourceLocation(**given["source"])
    return wit.TestFailure(**{**given, "ci": ci, "source": source})


def _headers(given: list[dict[str, Any]]) -> list[wit.ReplyHeader]:
    return [wit.ReplyHeader(**header) for header in given]


# --- the host's mirrors -> the vectors' JSON ----------------------------------


def canonical(value: Any) -> Any:
    """A mirror as the vectors write it: snake_case fields, `{"case": payload}`,
    an `alert-request` with its bodies parsed (null when empty)."""
    if isinstance(value, wit.Handle):
        raise TypeError("a resource has no canonical JSON")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        tag = getattr(type(value), "TAG", None)
        if tag is not None:
            return {tag: canonical(getattr(value, "payload", None))}
        fields = {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, wit.AlertRequest):
            for name in ("body", "display_body"):
                fields[name] = json.loads(fields[name]) if fields[name] else None
        return fields
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


_BUILD_ERRORS = (wit.SettingProblem, wit.MarkerProblem)
_DELIVERY_FAILURES = (wit.AlreadyOpenFailure, wit.RetryLater, wit.RejectedFailure)


def _tagged(value: Any, *errors: type) -> dict[str, Any]:
    """A lifted `result` (the arms' classes differ) as `{"ok"}` or `{"err"}`."""
    return {"err" if isinstance(value, errors) else "ok": canonical(value)}


# --- the calls -------------------------------------------------------------------


class Refused(AssertionError):
    """A call the vector does not test (opening the pager, checking the
    marker, the triggers before the one tested) was refused: the vector fails."""


def _open(given: dict[str, Any]) -> Pager:
    pager = Pager.open(_settings(given["settings"]), MEMORY_LIMIT_MIB)
    if not isinstance(pager, Pager):
        raise Refused(f"pager.open refused the settings: {canonical(pager)}")
    return pager


def _marker(pager: Pager, arguments: list[dict[str, Any]]) -> Marker:
    marker = pager.check_marker(_arguments(arguments))
    if not isinstance(marker, Marker):
        raise Refused(f"pager.check-marker refused the arguments: {canonical(marker)}")
    return marker


def _page(planned: wit.Planned | wit.BuildError) -> wit.AlertRequest:
    if not isinstance(planned, wit.Page):
        raise Refused(f"the trigger planned {canonical(planned)}, not a page")
    return planned.payload


def _repeat(pager: Pager, marker: Marker, given: dict[str, Any]) -> wit.Repeat | wit.BuildError:
    args = (given["incident_id"], given["dedup_key"], given["notes"])
    return pager.repeat(_failure(given["failure"]), marker, *args)


def _request(pager: Pager, marker: Marker, build: dict[str, Any]) -> wit.AlertRequest:
    """The request a `deliver` vector starts from."""
    if "trigger" in build:
        given = build["trigger"]
        failed_runs = given.get("failed_runs", 1)
        planned = pager.trigger(_failure(given["failure"]), marker, given["severity"], failed_runs)
        return _page(planned)
    if "repeat" in build:
        repeat = _repeat(pager, marker, build["repeat"])
        if not isinstance(repeat, wit.Note):
            raise Refused(f"pager.repeat gave {canonical(repeat)}, not a note")
        return repeat.payload
    given = build["resolve"]
    request = pager.resolve(given["nodeid"], marker, given["incident_id"], given["dedup_key"])
    if not isinstance(request, wit.AlertRequest):
        raise Refused(f"pager.resolve refused: {canonical(request)}")
    return request


def _deliver(pager: Pager, request: wit.AlertRequest, replies: list[Any]) -> list[wit.Step]:
    """README, `deliver`: each reply to `decide`, with the progress and the
    follow-up requests the component's steps give."""
    steps: list[wit.Step] = []
    progress: wit.Progress | None = None
    pending: list[wit.AlertRequest] = []
    for reply in replies:
        step = pager.decide(
            request, progress, reply["status"], _headers(reply["headers"]), reply["body"]
        )
        steps.append(step)
        progress = None
        if isinstance(step, wit.RetryStep):
            progress = step.payload.next
        elif isinstance(step, wit.FollowUp):
            pending = list(step.payload)
            if pending:
                request = pending.pop(0)
        elif pending:
            request = pending.pop(0)
    return steps


def answer(vector: dict[str, Any]) -> Any:
    """The component's answer to the vector's call, in the vectors' JSON."""
    call, given = vector["call"], vector["input"]
    if call == "classify-reply":
        instance = Instance(MEMORY_LIMIT_MIB)
        reply = instance.classify_reply(
            given["kind"], given["status"], _headers(given["headers"]), given["body"]
        )
        return _tagged(reply, *_DELIVERY_FAILURES)
    if call == "open":
        opened = Pager.open(_settings(given["settings"]), MEMORY_LIMIT_MIB)
        return {"ok": None} if isinstance(opened, Pager) else {"err": canonical(opened)}
    if call not in CALLS:
        raise ValueError(f"unknown call {call!r}")
    pager = _open(given)
    if call == "check-marker":
        marker = pager.check_marker(_arguments(given["arguments"]))
        if not isinstance(marker, Marker):
            return {"err": canonical(marker)}
        return {"ok": canonical(pager.options(marker))}
    if call == "aggregate":
        held = [
            wit.Held(_failure(h["failure"]), _marker(pager, h["arguments"])) for h in given["held"]
        ]
        return [
            {"members": list(a.members), "request": _tagged(a.request, *_BUILD_ERRORS)}
            for a in pager.aggregate(held, given["suite"])
        ]
    if call == "fallback":
        request = pager.fallback(_failure(given["failure"]), given["reason"], given["fix"])
        return _tagged(request, *_BUILD_ERRORS)
    marker = _marker(pager, given["arguments"])
    if call == "preflight":
        answer = pager.preflight(marker)
        if answer is None or isinstance(answer, str):  # sent, or why only shown
            return {"ok": answer}
        return {"err": canonical(answer)}
    if call == "trigger":
        failure = _failure(given["failure"])
        for n in range(given.get("paged_before", 0)):
            before = pager.trigger(failure, marker, None)
            if isinstance(before, _BUILD_ERRORS):
                raise Refused(f"trigger {n + 1} of paged_before refused: {canonical(before)}")
        failed_runs = given.get("failed_runs", 1)
        planned = pager.trigger(failure, marker, given["severity"], failed_runs)
        return _tagged(planned, *_BUILD_ERRORS)
    if call == "repeat":
        for n in range(given.get("noted_before", 0)):
            earlier = _repeat(pager, marker, given)
            if isinstance(earlier, _BUILD_ERRORS):
                raise Refused(f"repeat {n + 1} of noted_before refused: {canonical(earlier)}")
        return _tagged(_repeat(pager, marker, given), *_BUILD_ERRORS)
    if call == "resolve":
        request = pager.resolve(given["nodeid"], marker, given["incident_id"], given["dedup_key"])
        return _tagged(request, *_BUILD_ERRORS)
    # deliver
    request = _request(pager, marker, given["build"])
    return canonical(_deliver(pager, request, given["replies"]))


# --- secrets -----------------------------------------------------------------------


def _argument_lists(given: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    yield given.get("arguments") or []
    for held in given.get("held") or []:
        yield held["arguments"]


def _secret(given: dict[str, Any], group: str, name: str) -> str | None:
    """`${settings.<name>}` is the setting; `${options.<name>}` the marker's argument."""
    if group == "settings":
        value = (given.get("settings") or {}).get(name)
        return value if isinstance(value, str) else None
    for arguments in _argument_lists(given):
        for argument in arguments:
            if argument["name"] == name and isinstance(argument["value"].get("text"), str):
                text: str = argument["value"]["text"]
                return text
    return None


def _walk(value: Any, on_text: Any) -> Any:
    if isinstance(value, str):
        return on_text(value)
    if isinstance(value, list):
        return [_walk(v, on_text) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, on_text) for k, v in value.items()}
    return value


def expected(vector: dict[str, Any]) -> Any:
    """The vector's expectation with its secret placeholders filled from its input."""
    given = vector["input"]

    def fill(match: re.Match[str]) -> str:
        value = _secret(given, match.group(1), match.group(2))
        if value is None:
            raise ValueError(f"placeholder {match.group(0)} names no string in the input")
        return value

    return _walk(vector["expect"], lambda text: _PLACEHOLDER.sub(fill, text))


def with_placeholders(vector: dict[str, Any], answer: Any) -> Any:
    """The inverse of `expected`: an answer with the input's secrets named, for recording."""
    given = vector["input"]
    secrets = [
        (value, f"${{{group}.{name}}}")
        for group in ("settings", "options")
        for name in _SECRETS
        if (value := _secret(given, group, name))
    ]

    def name(text: str) -> str:
        for secret, placeholder in secrets:
            text = text.replace(secret, placeholder)
        return text

    return _walk(answer, name)


def requests_in(value: Any) -> Iterator[dict[str, Any]]:
    """Every `alert-request` (canonical) inside an expectation."""
    if isinstance(value, dict):
        if "display_body" in value and "kind" in value:
            yield value
            return
        for v in value.values():
            yield from requests_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from requests_in(v)
