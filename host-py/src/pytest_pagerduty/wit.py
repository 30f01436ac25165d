"""Python mirrors of the WIT types in `wit/pagerduty.wit`.

Records are frozen dataclasses whose fields are the record's, in snake_case;
enums are `Literal`s of their case names; a variant is a `Union` of one class
per case (its `TAG`). They carry data only: every rule about them lives in the
component. `tests/test_wit_mirrors.py` holds them against the component's own
types, so a renamed field fails a test rather than a run. No wasmtime import
here, so a run that never needs the component never loads wasmtime.

Annotations are evaluated at run time (`lowering` lifts values by them), so
they use `Optional`/`Union`, which Python 3.9 can evaluate.

PYTEST_DONT_REWRITE
"""

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Optional, Union


@dataclass(frozen=True)
class ResultOf:
    """Marks a `Union` as the WIT `result<ok, err>` it mirrors."""

    ok: Any
    err: Any


Phase = Literal["setup", "call", "teardown"]
Severity = Literal["critical", "error", "warning", "info"]
Urgency = Literal["high", "low"]
Api = Literal["rest", "events"]
RequestKind = Literal[
    "rest-create", "rest-find", "rest-resolve", "events-trigger", "events-resolve", "rest-note"
]
DryRunReason = Literal["requested", "no-credentials"]
StopScope = Literal["this-request", "this-api"]
RejectionKind = Literal[
    "invalid-request", "unauthorized", "forbidden", "not-found", "denied", "other"
]
# A setting, named neutrally; each host spells it its own way (settings.py).
SettingKey = Literal[
    "api-url",
    "api-key",
    "oauth-token",
    "default-from",
    "routing-key",
    "events-url",
    "timeout",
    "max-attempts",
    "max-incidents",
    "fallback-routing-key",
    "page-after-failures",
]


# --- marker-value -----------------------------------------------------------


@dataclass(frozen=True)
class Text:
    TAG: ClassVar[str] = "text"
    payload: str


@dataclass(frozen=True)
class TextList:
    TAG: ClassVar[str] = "text-list"
    payload: tuple[str, ...]


@dataclass(frozen=True)
class Unsupported:
    TAG: ClassVar[str] = "unsupported"
    # The Python type's name, for the error.
    payload: str


@dataclass(frozen=True)
class Number:
    TAG: ClassVar[str] = "number"
    payload: int


MarkerValue = Union[Text, TextList, Number, Unsupported]


@dataclass(frozen=True)
class MarkerArgument:
    name: str
    value: MarkerValue


@dataclass(frozen=True)
class IncidentOptions:
    service_id: Optional[str]
    routing_key: Optional[str]
    urgency: Optional[Urgency]
    severity: Optional[Severity]
    priority_id: Optional[str]
    escalation_policy_id: Optional[str]
    assignee_id: Optional[str]
    dedup_key: Optional[str]
    details: Optional[str]
    runbook_url: Optional[str] = None
    page_after_failures: Optional[int] = None


@dataclass(frozen=True)
class MarkerError:
    argument: Optional[str]
    problem: str
    fix: str


@dataclass(frozen=True)
class SettingsError:
    setting: SettingKey
    problem: str
    fix: str


# --- build-error ------------------------------------------------------------


@dataclass(frozen=True)
class SettingProblem:
    TAG: ClassVar[str] = "setting"
    payload: SettingsError


@dataclass(frozen=True)
class MarkerProblem:
    TAG: ClassVar[str] = "marker"
    payload: MarkerError


BuildError = Union[SettingProblem, MarkerProblem]


@dataclass(frozen=True)
class Variable:
    name: str
    value: str


@dataclass(frozen=True)
class SourceLocation:
    # Absolute, or relative to the repository root.
    path: str
    # The test function's line, from 1.
    line: Optional[int]


@dataclass(frozen=True)
class TestFailure:
    nodeid: str
    short_name: Optional[str]
    docstring: Optional[str]
    message: Optional[str]
    traceback: str
    phase: Phase
    duration_seconds: float = 0.0
    # The CI variables the component asked for (`ci-variables`).
    ci: tuple[Variable, ...] = ()
    host: str = ""
    # The test's source, for a link to it at the commit that failed.
    source: Optional[SourceLocation] = None
    # When it failed, in ms since the Unix epoch.
    failed_at_ms: Optional[int] = None


@dataclass(frozen=True)
class Settings:
    """The `settings` record: what the component is told (not the plugin's
    own settings object, which holds more; see settings.py)."""

    api_url: Optional[str]
    api_key: Optional[str]
    oauth_token: Optional[str]
    default_from: Optional[str]
    routing_key: Optional[str]
    events_url: Optional[str]
    timeout_ms: int
    # The user asked for a dry run.
    dry_run: bool
    max_attempts: Optional[int]
    max_incidents: Optional[int]
    # Receives one alert when a marker's page is refused for good (a secret).
    fallback_routing_key: Optional[str] = None
    # Runs in a row a test must fail in to page, unless its marker says.
    page_after_failures: Optional[int] = None

    def __repr__(self) -> str:  # never print a secret
        return f"Settings(api_url={self.api_url!r}, dry_run={self.dry_run!r}, ...)"


@dataclass(frozen=True)
class Header:
    name: str
    value: str
    sensitive: bool


@dataclass(frozen=True)
class AlertRequest:
    kind: RequestKind
    api: Api
    method: str
    url: str
    # The host[:port] the component sends to: hosts check it before `send`.
    authority: str
    headers: tuple[Header, ...]
    body: str
    display_body: str
    title: str
    subject: str
    dedup_key: str
    timeout_ms: int
    dry_run: Optional[DryRunReason]
    # For a lookup made to add a note: the note, which `send` follows with.
    then_note: Optional[str] = None


@dataclass(frozen=True)
class Delivered:
    id: Optional[str]
    number: Optional[int]
    html_url: Optional[str]
    dedup_key: Optional[str]
    # For a REST lookup: the ids of the open incidents of its service with its key.
    found: tuple[str, ...]


@dataclass(frozen=True)
class PagerdutyError:
    status: int
    code: Optional[int]
    message: str
    errors: tuple[str, ...]


@dataclass(frozen=True)
class Rejection:
    kind: RejectionKind
    error: PagerdutyError
    stops: StopScope
    fix: str
    setting: Optional[SettingKey]


@dataclass(frozen=True)
class Retry:
    after_seconds: Optional[int]
    reason: str


# --- delivery-failure (classify-reply) ----------------------------------------


@dataclass(frozen=True)
class AlreadyOpenFailure:
    TAG: ClassVar[str] = "already-open"
    payload: PagerdutyError


@dataclass(frozen=True)
class RetryLater:
    TAG: ClassVar[str] = "retry-later"
    payload: Retry


@dataclass(frozen=True)
class RejectedFailure:
    TAG: ClassVar[str] = "rejected"
    payload: Rejection


DeliveryFailure = Union[AlreadyOpenFailure, RetryLater, RejectedFailure]


@dataclass(frozen=True)
class ReplyHeader:
    name: str
    value: str


@dataclass(frozen=True)
class Progress:
    attempt: int
    waited_ms: int


@dataclass(frozen=True)
class Wait:
    wait_ms: int
    next: Progress
    reason: str


@dataclass(frozen=True)
class GaveUp:
    attempts: int
    reason: str


# --- step: what the host does next -----------------------------------------


@dataclass(frozen=True)
class DeliveredStep:
    TAG: ClassVar[str] = "delivered"
    payload: Delivered


@dataclass(frozen=True)
class AlreadyOpen:
    TAG: ClassVar[str] = "already-open"
    payload: PagerdutyError


@dataclass(frozen=True)
class RetryStep:
    TAG: ClassVar[str] = "retry"
    payload: Wait


@dataclass(frozen=True)
class GaveUpStep:
    TAG: ClassVar[str] = "gave-up"
    payload: GaveUp


@dataclass(frozen=True)
class Rejected:
    TAG: ClassVar[str] = "rejected"
    payload: Rejection


@dataclass(frozen=True)
class HeldBack:
    TAG: ClassVar[str] = "held-back"
    payload: Rejection


@dataclass(frozen=True)
class NotSent:
    TAG: ClassVar[str] = "not-sent"
    payload: DryRunReason


@dataclass(frozen=True)
class FollowUp:
    TAG: ClassVar[str] = "follow-up"
    payload: tuple[AlertRequest, ...]


Step = Union[
    DeliveredStep, AlreadyOpen, RetryStep, GaveUpStep, Rejected, HeldBack, NotSent, FollowUp
]


# --- planned ------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    TAG: ClassVar[str] = "page"
    payload: AlertRequest


@dataclass(frozen=True)
class PastCap:
    TAG: ClassVar[str] = "past-cap"


@dataclass(frozen=True)
class Counting:
    """Not yet paged: failed in `failed` runs in a row of the `needed`."""

    failed: int
    needed: int


@dataclass(frozen=True)
class CountingPlan:
    TAG: ClassVar[str] = "counting"
    payload: Counting


Planned = Union[Page, PastCap, CountingPlan]


# --- repeat: a failure on an already open REST incident ------------------------
@dataclass(frozen=True)
class Note:
    TAG: ClassVar[str] = "note"
    payload: AlertRequest


@dataclass(frozen=True)
class Skip:
    TAG: ClassVar[str] = "skip"
    # Why no note is added.
    payload: str


Repeat = Union[Note, Skip]


@dataclass(frozen=True)
class StoppedApi:
    api: Api
    rejection: Rejection


@dataclass(frozen=True)
class PagerState:
    """What a pager learnt in a run (alerts paged, APIs stopped): carried
    over to a fresh instance after a trap."""

    paged: int
    stopped: tuple[StoppedApi, ...]
    # The incidents noted in this run.
    noted: tuple[str, ...] = ()


@dataclass(frozen=True)
class Aggregate:
    # Indices into the failures given to `aggregate`.
    members: tuple[int, ...]
    # The request, or why it could not be built.
    request: Annotated[Union[AlertRequest, BuildError], ResultOf(AlertRequest, BuildError)]


class Handle:
    """A resource the component made (a `pager` or a `marker`): opaque to
    the host, valid only in the store that made it."""

    def __init__(self, resource: object) -> None:
        self.resource = resource


@dataclass(frozen=True)
class Held:
    """A failure past the cap and the marker it pages with (`incidents.held`)."""

    failure: TestFailure
    marker: Handle


def redacted(request: AlertRequest) -> dict[str, Any]:
    """The request as a dry run shows it: secret header values replaced, and
    the body as the component says it may be shown."""
    return {
        "method": request.method,
        "url": request.url,
        "headers": {h.name: "[redacted]" if h.sensitive else h.value for h in request.headers},
        "body": request.display_body,
    }
