"""The conformance vectors (tests/vectors) through the Python host, wasmtime-py.

The Rust host (host-rs/tests/vectors.rs) and Node (tests/js) run the same
files, so a change of behaviour fails in all three.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conformance import CALLS, VECTORS, answer, expected, load, requests_in, vector_paths

from pagerduty_api import request_problems


def _name(path: Path) -> str:
    return str(Path(path).relative_to(VECTORS).with_suffix(""))


def test_there_are_vectors_of_every_call() -> None:
    assert {load(path)["call"] for path in vector_paths()} == CALLS


@pytest.mark.parametrize("path", vector_paths(), ids=_name)
def test_vector(path: Path) -> None:
    vector = load(path)
    assert "expect" in vector, "no expectation: record it with tests/vectors/record.py"
    assert answer(vector) == expected(vector)


def _sent_requests() -> list[Any]:
    """Every request an expectation holds that would be sent (a dry run's is
    only shown), from a trigger, a resolve, an aggregate or a follow-up."""
    found = []
    for path in vector_paths():
        vector = load(path)
        if "expect" not in vector:
            continue  # test_vector fails it
        requests = [r for r in requests_in(expected(vector)) if r["dry_run"] is None]
        for n, request in enumerate(requests):
            suffix = f"[{n}]" if len(requests) > 1 else ""
            found.append(pytest.param(request, id=f"{_name(path)}{suffix}"))
    return found


@pytest.mark.parametrize("request_", _sent_requests())
def test_each_request_names_the_authority_of_its_url(request_: dict[str, Any]) -> None:
    """Hosts allow or refuse a request by `authority`: it is where the URL goes."""
    assert request_["authority"] == urlsplit(request_["url"]).netloc.lower()


@pytest.mark.parametrize("request_", _sent_requests())
def test_expected_requests_keep_pagerdutys_contract(request_: dict[str, Any]) -> None:
    """An expectation is a specification: every request in one must be valid."""
    url = urlsplit(request_["url"])
    headers = {h["name"].lower(): h["value"] for h in request_["headers"]}
    problems = request_problems(
        request_["method"], url.path, parse_qs(url.query), headers, request_["body"]
    )
    assert problems == []
