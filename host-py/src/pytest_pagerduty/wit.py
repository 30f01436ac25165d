"""Python mirrors of the WIT types in `wit/pagerduty.wit`.

They give the host typed values to hold; they carry data only: every rule
about them lives in the component. No wasmtime import here, so a run that
never needs the component never loads wasmtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

Phase = Literal["setup", "call", "teardown"]


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
class TestFailure:
    nodeid: str
    short_name: str | None
    docstring: str | None
    message: str | None
    traceback: str
    phase: Phase


@dataclass(frozen=True)
class Header:
    name: str
    value: str
    sensitive: bool


@dataclass(frozen=True)
class AlertRequest:
    method: str
    url: str
    headers: tuple[Header, ...]
    body: str
    title: str
    timeout_ms: int

    def redacted(self) -> dict[str, Any]:
        """The request as a dry run shows it: secret header values replaced."""
        return {
            "method": self.method,
            "url": self.url,
            "headers": {h.name: "[redacted]" if h.sensitive else h.value for h in self.headers},
            "body": self.body,
        }


@dataclass(frozen=True)
class CreatedIncident:
    id: str | None
    number: int | None
    html_url: str | None


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
