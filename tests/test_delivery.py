"""Delivery: whatever PagerDuty does, every incident is confirmed or kept in
the outbox, and the run's outcome and exit code stay the same."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from fake_pagerduty import API_KEY, FakePagerDuty
from pagerduty_api import error_reply

ONE_FAILURE = """
import pytest

pytestmark = [
    pytest.mark.usefixtures("pagerduty_fixture"),
    pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS"),
]

def test_probe():
    assert False

def test_green():
    pass
"""

TWO_FAILURES = (
    ONE_FAILURE
    + """
def test_second():
    assert 1 == 2
"""
)


def outbox(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    path = pytester.path / ".pytest_cache" / "d" / "pagerduty" / "outbox.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(pytester: pytest.Pytester, *options: str, suite: str = ONE_FAILURE) -> pytest.RunResult:
    pytester.makepyfile(test_suite=suite)
    result = pytester.runpytest_subprocess(*options)
    failed = suite.count("assert False") + suite.count("assert 1 == 2")
    result.assert_outcomes(failed=failed, passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "Traceback" not in result.stderr.str()
    return result


RATE_LIMITED = error_reply("Rate Limit Exceeded", 2020)

# name -> (replies before the usual 201, options, attempts the server sees)
Reply = tuple[int, Any, dict[str, str]]
RETRIED: dict[str, tuple[list[Reply], list[str], int]] = {
    "429 with ratelimit-reset": (
        [
            (
                429,
                RATE_LIMITED,
                {"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": "1"},
            )
        ],
        [],
        2,
    ),
    "429 without ratelimit-reset": ([(429, RATE_LIMITED, {})], [], 2),
    "500, 502, 503": (
        [
            (500, error_reply("Internal Server Error", 2000), {}),
            (502, "<html>Bad Gateway</html>", {}),
            (503, "", {}),
        ],
        [],
        4,
    ),
    "a server slower than the timeout": (
        [(0, None, {"delay": "2"})],
        ["--pagerduty_timeout=0.5"],
        2,
    ),
}


@pytest.mark.parametrize("case", list(RETRIED))
def test_transient_failures_are_retried_until_created(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, case: str
) -> None:
    replies, options, attempts = RETRIED[case]
    for status, body, headers in replies:
        delay = float(headers.pop("delay", 0))
        pagerduty.reply(status, body, headers=headers, delay=delay)
    result = run(pytester, *pagerduty.options(*options))
    assert len(pagerduty.received) == attempts
    assert all(r.body == pagerduty.received[0].body for r in pagerduty.received)
    result.stdout.fnmatch_lines(
        ["created #1001: Test failed: test_probe: assert False *", "PagerDuty: 1 created"]
    )
    assert outbox(pytester) == []


def test_retries_are_bounded_and_what_is_left_goes_to_the_outbox(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    for _ in range(3):
        pagerduty.reply(503, error_reply("Service Unavailable", 2000))
    result = run(pytester, *pagerduty.options("--pagerduty_max_attempts=3"))
    assert len(pagerduty.received) == 3
    result.stdout.fnmatch_lines(
        [
            "queued: Test failed: test_probe: assert False: PagerDuty answered 503 "
            "(Service Unavailable), after 3 attempt(s).",
            "PagerDuty: 1 queued in */outbox.jsonl (the next run here sends them, or "
            "python -m pytest_pagerduty replay --outbox */outbox.jsonl)",
        ]
    )
    (entry,) = outbox(pytester)
    assert entry["failure"]["nodeid"] == "test_suite.py::test_probe"
    assert entry["marker"] == {"service_id": "PWIXJZS"}
    assert entry["reason"].startswith("PagerDuty answered 503")


def test_no_server_listening_keeps_the_incident(pytester: pytest.Pytester) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(
        pytester,
        f"--pagerduty_api_url=http://127.0.0.1:{port}",
        f"--pagerduty_api_key={API_KEY}",
        "--pagerduty_default_from=a@example.com",
        "--pagerduty_max_attempts=2",
    )
    result.stdout.fnmatch_lines(
        ["queued: Test failed: test_probe: assert False: connection refused, after 2 attempt(s)."]
    )
    assert [e["failure"]["nodeid"] for e in outbox(pytester)] == ["test_suite.py::test_probe"]


def test_a_201_with_malformed_json_counts_as_created_and_is_not_resent(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(201, "{not json")
    result = run(pytester, *pagerduty.options())
    assert len(pagerduty.received) == 1
    result.stdout.fnmatch_lines(
        ["created (number unknown): Test failed: test_probe: assert False", "PagerDuty: 1 created"]
    )
    assert outbox(pytester) == []


@pytest.mark.parametrize(
    ("status", "message", "fix"),
    [
        (401, "Authentication failed", "PagerDuty did not accept the credentials*"),
        (403, "Access Denied", "the key or the From user may not create incidents*"),
    ],
)
def test_refused_credentials_are_one_line_stop_sending_and_keep_every_incident(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, status: int, message: str, fix: str
) -> None:
    pagerduty.reply(status, error_reply(message, 2006))
    result = run(pytester, *pagerduty.options(), suite=TWO_FAILURES)
    assert len(pagerduty.received) == 1
    result.stdout.fnmatch_lines(
        [
            f"queued: Test failed: test_probe: assert False: PagerDuty answered {status}: "
            f"{message}. Fix: {fix}",
            "queued: 1 more incident(s) not sent, since every request with these settings would "
            "be refused as above",
            "PagerDuty: 2 queued in *",
        ]
    )
    assert result.stdout.str().count(f"{message}. Fix") == 1
    assert len(outbox(pytester)) == 2


def test_a_400_for_invalid_input_fails_permanently_with_pagerdutys_message(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(400, error_reply("Invalid Input Provided", 2001, "Service not found"))
    result = run(pytester, *pagerduty.options())
    assert len(pagerduty.received) == 1
    result.stdout.fnmatch_lines(
        [
            "failed: Test failed: test_probe: assert False: PagerDuty answered 400: "
            "Invalid Input Provided: Service not found. Fix: check the test's ids *",
            "PagerDuty: 1 failed permanently (kept as dead letters in */outbox.jsonl: see replay)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "test_suite.py:0",
            "*PagerDutyWarning: incident for test_suite.py::test_probe not created: "
            "PagerDuty answered 400*",
        ]
    )
    # Kept as a dead letter with PagerDuty's reason, never re-sent blindly.
    (letter,) = outbox(pytester)
    assert letter["dead"] is True
    assert "Service not found" in letter["reason"]


def test_a_400_for_an_open_incident_key_is_already_open_not_a_failure(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(
        400,
        error_reply(
            "Invalid Input Provided",
            2001,
            "Open incident with matching incident key already exists",
        ),
    )
    result = run(pytester, *pagerduty.options())
    # Then the note's lookup by key (which this scripted PagerDuty answers empty).
    assert pagerduty.requests() == [("POST", "/incidents"), ("GET", "/incidents")]
    result.stdout.fnmatch_lines(
        [
            "already open: Test failed: test_probe: assert False (PagerDuty answered 400: "
            "Invalid Input Provided: Open incident with matching incident key already exists)",
            "test_suite.py::test_probe: not noted: PagerDuty lists no open incident with the key. "
            "Fix: none needed: *",
            "PagerDuty: 1 already open",
        ]
    )
    assert "PagerDutyWarning" not in result.stdout.str()
    assert outbox(pytester) == []


def test_a_flush_timeout_shorter_than_the_retries_ends_the_wait_and_keeps_the_rest(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(429, RATE_LIMITED, headers={"ratelimit-reset": "30"})
    result = run(pytester, *pagerduty.options("--pagerduty_flush_timeout=1"), suite=TWO_FAILURES)
    assert len(pagerduty.received) == 1
    result.stdout.fnmatch_lines(
        [
            "queued: test_suite.py::test_probe: not confirmed within pagerduty_flush_timeout (1 s).",
            "queued: test_suite.py::test_second: not confirmed within pagerduty_flush_timeout (1 s).",
            "PagerDuty: 2 queued in *",
        ]
    )
    assert len(outbox(pytester)) == 2


def test_warnings_as_errors_do_not_change_the_exit_code(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(400, error_reply("Invalid Input Provided", 2001, "Service not found"))
    result = run(pytester, *pagerduty.options("-W", "error"))
    result.stdout.fnmatch_lines(["failed: *Service not found*"])


def test_a_failing_test_does_not_wait_for_its_incident(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    # The reply to the first failure is held back 2 s; by the time it is
    # sent, the tests after it must already have run.
    ran_after = pytester.path / "later-test-ran"
    seen: list[bool] = []
    pagerduty.on_reply.append(lambda: seen.append(ran_after.exists()))
    pagerduty.reply(0, delay=2)
    run(
        pytester,
        *pagerduty.options(),
        suite=ONE_FAILURE.replace(
            "def test_green():\n    pass",
            f"def test_green():\n    open({str(ran_after)!r}, 'w').close()",
        ),
    )
    assert seen == [True]


def test_a_storm_of_failures_sends_one_request_at_a_time(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    for _ in range(8):
        pagerduty.reply(0, delay=0.1)
    pytester.makepyfile(
        test_storm="""
import pytest

pytestmark = [pytest.mark.usefixtures("pagerduty_fixture"),
              pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")]

@pytest.mark.parametrize("n", range(8))
def test_storm(n):
    assert False
"""
    )
    result = pytester.runpytest_subprocess(*pagerduty.options())
    result.assert_outcomes(failed=8)
    assert len(pagerduty.incidents()) == 8
    assert pagerduty.max_in_flight == 1
    result.stdout.fnmatch_lines(["PagerDuty: 8 created"])


def test_replay_sends_the_outbox_once_the_server_is_back(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    for _ in range(4):
        pagerduty.reply(503, error_reply("Service Unavailable", 2000))
    run(pytester, *pagerduty.options("--pagerduty_max_attempts=2"), suite=TWO_FAILURES)
    assert len(outbox(pytester)) == 2
    assert len(pagerduty.received) == 4
    pagerduty.received.clear()
    pagerduty.reply(503, error_reply("Service Unavailable", 2000))

    replay = [sys.executable, "-m", "pytest_pagerduty", "replay"]
    still_down = pytester.run(*replay, *pagerduty.options("--pagerduty_max_attempts=1"))
    assert still_down.ret == 1
    still_down.stdout.fnmatch_lines(
        [
            "pagerduty replay: 2 alert(s) to send from */outbox.jsonl",
            "  kept test_suite.py::test_probe: PagerDuty answered 503 (Service Unavailable), "
            "after 1 attempt(s)",
            "  created #1001: Test failed: test_second: assert 1 == 2 *",
            "pagerduty replay: 1 sent, 1 left in *",
        ]
    )
    assert [e["failure"]["nodeid"] for e in outbox(pytester)] == ["test_suite.py::test_probe"]

    back = pytester.run(*replay, *pagerduty.options())
    assert back.ret == 0
    back.stdout.fnmatch_lines(
        [
            "  created #1002: Test failed: test_probe: assert False *",
            "pagerduty replay: 1 sent, 0 left in *",
        ]
    )
    assert outbox(pytester) == []
    titles = [i["title"] for i in pagerduty.incidents()]
    assert titles == [
        "Test failed: test_probe: assert False",
        "Test failed: test_second: assert 1 == 2",
        "Test failed: test_probe: assert False",
    ]
    # What replay opened is remembered: once the tests pass, it is resolved.
    pytester.makepyfile(
        test_suite=TWO_FAILURES.replace("assert False", "pass").replace("1 == 2", "2 == 2")
    )
    green = pytester.runpytest_subprocess(*pagerduty.options())
    green.assert_outcomes(passed=3)
    puts = sorted(path for method, path in pagerduty.requests() if method == "PUT")
    assert puts == ["/incidents/PINC1001", "/incidents/PINC1002"]
    assert pagerduty.open_incidents == {}


def test_replay_dry_run_sends_nothing_and_keeps_everything(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    box = tmp_path / "box.jsonl"
    run(pytester, f"--pagerduty_outbox={box}", suite=TWO_FAILURES)  # no credentials
    assert len(box.read_text().splitlines()) == 2
    result = pytester.run(
        sys.executable,
        "-m",
        "pytest_pagerduty",
        "replay",
        "--outbox",
        str(box),
        "--dry-run",
        *pagerduty.options(),
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["  dry run: nothing is sent", "  would open: Test failed: test_probe: assert False *"]
    )
    assert pagerduty.received == []
    assert len(box.read_text().splitlines()) == 2


def test_an_events_refusal_keeps_this_and_every_later_event_for_replay(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    # A lapsed plan or a disabled integration: 403 from Events API v2.
    for _ in range(2):
        pagerduty.reply(403, {"status": "forbidden", "message": "Forbidden", "errors": []})
    result = run(pytester, *pagerduty.events_options(), suite=TWO_FAILURES)
    assert len(pagerduty.received) == 1  # the second is held back, not sent
    assert len(outbox(pytester)) == 2
    result.stdout.fnmatch_lines(["PagerDuty: 2 queued in *"])


# Every reply class, end to end: what the server answered, what it
# received, and where each alert ended (confirmed, kept, or a dead letter).
@pytest.mark.parametrize(
    ("replies", "requests", "line", "kept", "dead", "opened"),
    [
        pytest.param(
            [(402, error_reply("Payment Required", 2012))],
            1,  # the second alert is held back: the API is stopped
            "queued: Test failed: test_probe: assert False: PagerDuty answered 402: "
            "Payment Required. Fix: *",
            2,
            False,
            0,
            id="402",
        ),
        pytest.param(
            [(404, error_reply("Not Found", 2100))],
            2,
            "failed: Test failed: test_probe: assert False: PagerDuty answered 404: Not Found. "
            "Fix: check the REST API URL *",
            1,
            True,
            1,
            id="404",
        ),
        pytest.param(
            [(408, error_reply("Request Timeout", 2000))],
            3,  # retried once, then created; the second created at once
            "created #1001: Test failed: test_probe: assert False *",
            0,
            False,
            2,
            id="408",
        ),
        pytest.param(
            [(409, error_reply("Conflict", 2001))],
            2,
            "failed: Test failed: test_probe: assert False: PagerDuty answered 409: Conflict. "
            "Fix: unexpected answer from PagerDuty*",
            1,
            True,
            1,
            id="409",
        ),
        pytest.param(
            [
                (
                    400,
                    error_reply(
                        "Invalid Input Provided",
                        2001,
                        "Open incident with matching dedup key already exists on this service",
                    ),
                )
            ],
            3,  # the create, the note's lookup by key (none listed), the second create
            "already open: Test failed: test_probe: assert False (PagerDuty answered 400: *dedup "
            "key*)",
            0,
            False,
            1,
            id="dedup-key-wording",
        ),
    ],
)
def test_every_reply_class_ends_confirmed_kept_or_a_dead_letter(
    pytester: pytest.Pytester,
    pagerduty: FakePagerDuty,
    replies: list[tuple[int, Any]],
    requests: int,
    line: str,
    kept: int,
    dead: bool,
    opened: int,
) -> None:
    for status, body in replies:
        pagerduty.reply(status, body)
    result = run(pytester, *pagerduty.options(), suite=TWO_FAILURES)
    assert len(pagerduty.received) == requests
    result.stdout.fnmatch_lines([line])
    entries = outbox(pytester)
    assert len(entries) == kept
    assert all(e["dead"] is dead for e in entries)
    assert all(e["reason"] for e in entries)
    # What is not kept was confirmed (opened, or found already open).
    assert len(pagerduty.open_incidents) == opened
