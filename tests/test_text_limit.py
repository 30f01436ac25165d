"""The component's `failure-text-limit` through wasmtime-py: a failure with
every text at the limit builds at the default memory limit, never traps."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_pagerduty import wit
from pytest_pagerduty.component import Instance, Marker, Pager
from pytest_pagerduty.settings import DEFAULT_MEMORY_LIMIT_MIB

ROUTING_KEY = "R0UT1NGKEYe93facc04764012d7bfb01"
FALLBACK_KEY = "FALLBACKR0UTINGKEY0000000000abcd"


def settings(**changes: object) -> wit.Settings:
    given = wit.Settings(
        api_url="http://127.0.0.1:9",
        api_key="u+PDtestkey_9f8e7d6c5b4a",
        oauth_token=None,
        default_from="oncall@example.com",
        routing_key=None,
        events_url="http://127.0.0.1:9",
        timeout_ms=1000,
        dry_run=True,
        max_attempts=None,
        max_incidents=None,
        fallback_routing_key=FALLBACK_KEY,
    )
    return dataclasses.replace(given, **changes)  # type: ignore[arg-type]


def fill(unit: str, size: int) -> str:
    """`size` UTF-8 bytes of `unit` repeated, topped up with "x"."""
    text = unit * (size // len(unit.encode()))
    return text + "x" * (size - len(text.encode()))


def failure_at(limit: int, ci_names: list[str]) -> wit.TestFailure:
    """Every text at `limit` bytes, made of what costs the component most:
    tabs (a docstring's become spaces), escapes, multi-byte characters."""
    return wit.TestFailure(
        nodeid=fill("t.py::é", limit),
        short_name=fill("name", limit),
        docstring=fill("\t\n", limit),
        message=fill("\x1b[31m€", limit),
        traceback=fill("E\x00\x01€", limit),
        phase="call",
        duration_seconds=1.0,
        ci=tuple(wit.Variable(name, fill("v", limit)) for name in ci_names),
        host=fill("h", limit),
    )


def test_the_limit_is_far_above_a_body_and_far_below_the_memory_limit() -> None:
    limit = Instance(DEFAULT_MEMORY_LIMIT_MIB).failure_text_limit()
    # Far above the most of one text any alert carries (a 32 KiB body).
    assert 8 * 32 * 1024 <= limit <= DEFAULT_MEMORY_LIMIT_MIB * 1024 * 1024 // 128


@pytest.mark.parametrize("api", ["rest", "events"])
def test_a_failure_at_the_limit_in_every_field_never_traps(api: str) -> None:
    given = settings(routing_key=ROUTING_KEY) if api == "events" else settings()
    pager = Pager.open(given, DEFAULT_MEMORY_LIMIT_MIB)
    assert isinstance(pager, Pager), pager
    limit = pager.instance.failure_text_limit()
    failure = failure_at(limit, pager.instance.ci_variables())
    marker = pager.marker({"service_id": "PWIXJZS"})
    assert isinstance(marker, Marker), marker
    # Several in one instance: nothing the first left behind may tip the next.
    for _ in range(3):
        planned = pager.trigger(failure, marker)
        assert isinstance(planned, wit.Page), planned
        assert len(planned.payload.body.encode()) <= 512_000
        assert len(planned.payload.title) <= 1024
    fallback = pager.fallback(failure, fill("r", limit), fill("f", limit))
    assert isinstance(fallback, wit.AlertRequest), fallback
    (aggregate,) = pager.aggregate([wit.Held(failure, marker)] * 2, "suite")
    assert isinstance(aggregate.request, wit.AlertRequest), aggregate.request
    assert not pager.dead
