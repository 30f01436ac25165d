"""Conversion between the host's dataclasses (`wit.py`) and wasmtime-py values.

wasmtime-py passes records as objects whose attributes are the kebab-case
field names, enums as `str`, options as `None` and variants as `Variant`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from wasmtime.component import Variant
from wasmtime.component._types import Record

from .wit import (
    AlertRequest,
    AlreadyOpen,
    Delivered,
    DeliveryFailure,
    Header,
    MarkerError,
    PagerdutyError,
    Rejection,
    RetryLater,
    SettingsError,
    TestFailure,
)


def _fields(record: Any) -> dict[str, Any]:
    return {name.replace("-", "_"): v for name, v in vars(record).items()}


def marker_error(record: Any) -> MarkerError:
    return MarkerError(**_fields(record))


def settings_error(record: Any) -> SettingsError:
    return SettingsError(**_fields(record))


def alert_request(record: Any) -> AlertRequest:
    fields = _fields(record)
    fields["headers"] = tuple(Header(**_fields(h)) for h in fields["headers"])
    return AlertRequest(**fields)


def delivered(record: Any) -> Delivered:
    fields = _fields(record)
    fields["found"] = tuple(fields["found"])
    return Delivered(**fields)


def _pagerduty_error(record: Any) -> PagerdutyError:
    fields = _fields(record)
    fields["errors"] = tuple(fields["errors"])
    return PagerdutyError(**fields)


def delivery_failure(variant: Variant) -> DeliveryFailure:
    if variant.tag == "already-open":
        return AlreadyOpen(_pagerduty_error(variant.payload))
    if variant.tag == "retry-later":
        return RetryLater(**_fields(variant.payload))
    fields = _fields(variant.payload)
    fields["error"] = _pagerduty_error(fields["error"])
    return Rejection(**fields)


def marker_value(value: object) -> Variant:
    """A marker argument's Python value as the component's `marker-value`."""
    if isinstance(value, str):
        return Variant("text", value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return Variant("text-list", list(value))
    return Variant("unsupported", type(value).__name__)


def record(fields: dict[str, Any]) -> Record:
    """A record from kebab-case field names."""
    value = Record()
    value.__dict__.update(fields)
    return value


def marker_argument(name: str, value: object) -> Record:
    return record({"name": name, "value": marker_value(value)})


# The hot path's flat values (wit/pagerduty.wit): JSON of the records.


def failure_json(failure: TestFailure) -> str:
    return json.dumps(dataclasses.asdict(failure))


def failures_json(failures: list[TestFailure]) -> str:
    return json.dumps([dataclasses.asdict(f) for f in failures])


def options_json(record: Any) -> str:
    """The options `check-marker` lifted, as the JSON the builds take."""
    return json.dumps(_fields(record))


def request_json(request: AlertRequest) -> str:
    return json.dumps(dataclasses.asdict(request))


def request_from_json(text: str) -> AlertRequest:
    fields = json.loads(text)
    fields["headers"] = tuple(Header(**h) for h in fields["headers"])
    return AlertRequest(**fields)
