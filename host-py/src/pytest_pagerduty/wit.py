"""Python mirrors of the WIT types in `wit/pagerduty.wit`.

They give the host typed values to hold; they carry data only: every rule
about them lives in the component. No wasmtime import here, so a run that
never needs the component never loads wasmtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

Phase = Literal["setup", "call", "teardown"]
Severity = Literal["critical", "error", "warning", "info"]
RequestKind = Literal[
    "rest-create", "rest-find", "rest-resolve", "events-trigger", "events-resolve"
]


@dataclass(frozen=True)
class MarkerError:
    argument: str | None
    problem: str
    fix: str


@dataclass(frozen=True)
class SettingsError:
    setting: str
    problem: str
    fix: str


@dataclass(frozen=True)
class Variable:
    name: str
    value: str


@dataclass(frozen=True)
class TestFailure:
    nodeid: str
    short_name: str | None
    docstring: str | None
    message: str | None
    traceback: str
    phase: Phase
    duration_seconds: float = 0.0
    # (name, value) of the CI variables the component asked for.
    ci: tuple[Variable, ...] = ()
    host: str = ""


@dataclass(frozen=True)
class Header:
    name: str
    value: str
    sensitive: bool


@dataclass(frozen=True)
class AlertRequest:
    kind: RequestKind
    method: str
    url: str
    headers: tuple[Header, ...]
    body: str
    display_body: str
    title: str
    dedup_key: str
    timeout_ms: int

    def redacted(self) -> dict[str, Any]:
        """The request as a dry run shows it: secret header values replaced."""
        return {
            "method": self.method,
            "url": self.url,
            "headers": {h.name: "[redacted]" if h.sensitive else h.value for h in self.headers},
            "body": self.display_body,
        }


@dataclass(frozen=True)
class Delivered:
    id: str | None
    number: int | None
    html_url: str | None
    dedup_key: str | None
    # For a REST lookup: the ids of the open incidents with the key.
    found: tuple[str, ...]


@dataclass(frozen=True)
class PagerdutyError:
    status: int
    code: int | None
    message: str
    errors: tuple[str, ...]


@dataclass(frozen=True)
class Rejection:
    kind: str
    error: PagerdutyError
    applies_to_all: bool
    fix: str


@dataclass(frozen=True)
class AlreadyOpen:
    error: PagerdutyError


@dataclass(frozen=True)
class RetryLater:
    after_seconds: int | None
    reason: str


DeliveryFailure = Union[AlreadyOpen, RetryLater, Rejection]
