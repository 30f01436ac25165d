"""The conformance vectors (tests/vectors) through the Python host, wasmtime-py.

The Rust host (host-rs/tests/vectors.rs) and Node (tests/js) run the same
files, so a change of behaviour fails in all three.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conformance import VECTORS, answer, expected, load, vector_paths

from pagerduty_api import request_problems
from pytest_pagerduty.component import Alerts


@pytest.fixture(scope="module")
def alerts() -> Alerts:
    return Alerts(memory_limit_mib=64)


def test_there_are_vectors_of_every_call() -> None:
    calls = {load(path)["call"] for path in vector_paths()}
    assert calls == {
        "check-marker",
        "check-settings",
        "build-trigger",
        "build-resolve",
        "build-aggregate",
        "aggregate-key",
        "classify-reply",
    }


@pytest.mark.parametrize(
    "path", vector_paths(), ids=lambda p: str(Path(p).relative_to(VECTORS).with_suffix(""))
)
def test_vector(alerts: Alerts, path: Path) -> None:
    vector = load(path)
    assert answer(alerts, vector) == expected(vector)


def _sent_requests() -> list[Path]:
    """Vectors expecting a request that is sent (a dry run's is only shown)."""
    return [
        path
        for path in vector_paths()
        if load(path)["call"].startswith("build-")
        and "ok" in load(path)["expect"]
        and not load(path)["input"]["settings"]["dry_run"]
    ]


@pytest.mark.parametrize(
    "path", _sent_requests(), ids=lambda p: str(Path(p).relative_to(VECTORS).with_suffix(""))
)
def test_expected_requests_keep_pagerdutys_contract(path: Path) -> None:
    """An expectation is a specification: every request in one must be valid."""
    request: dict[str, Any] = expected(load(path))["ok"]
    url = urlsplit(request["url"])
    headers = {h["name"].lower(): h["value"] for h in request["headers"]}
    problems = request_problems(
        request["method"], url.path, parse_qs(url.query), headers, request["body"]
    )
    assert problems == []
