"""Whatever PagerDuty answers, the run's outcome and exit code stay the same."""

from __future__ import annotations

import socket

import pytest

from fake_pagerduty import FakePagerDuty
from pagerduty_api import error_reply

FAILING = """
import pytest

pytestmark = [
    pytest.mark.usefixtures("pagerduty_fixture"),
    pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS", incident_key="probe"),
]

def test_one():
    assert False

def test_two():
    assert False

def test_three():
    pass
"""


def run(pytester: pytest.Pytester, *options: str) -> pytest.RunResult:
    pytester.makepyfile(FAILING)
    result = pytester.runpytest_subprocess(*options)
    result.assert_outcomes(failed=2, passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    return result


def test_a_duplicate_incident_key_is_reported_as_already_open(
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
    assert len(pagerduty.received) == 2
    result.stdout.fnmatch_lines(
        [
            "already open: Test failed: test_one: assert False (PagerDuty answered 400: "
            "Invalid Input Provided: Open incident with matching incident key already exists)",
            "created #1002: Test failed: test_two: assert False *",
        ]
    )
    assert "PagerDutyWarning" not in result.stdout.str()


def test_a_400_shows_pagerdutys_message_and_the_fix_as_a_warning(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(400, error_reply("Invalid Input Provided", 2001, "Service not found"))
    result = run(pytester, *pagerduty.options())
    result.stdout.fnmatch_lines(
        [
            "not created: Test failed: test_one: assert False: PagerDuty answered 400: "
            "Invalid Input Provided: Service not found. Fix: check the marker's ids *",
            "created #1002: *",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "test_a_400_*.py:0",
            "*PagerDutyWarning: incident for test_*.py::test_one not created: PagerDuty answered 400*",
        ]
    )


def test_a_rejected_api_key_is_one_line_and_stops_further_sends(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(401, error_reply("Authentication failed", 2006))
    result = run(pytester, *pagerduty.options())
    assert len(pagerduty.received) == 1
    result.stdout.fnmatch_lines(
        [
            "not created: Test failed: test_one: assert False: PagerDuty answered 401: "
            "Authentication failed. Fix: PagerDuty did not accept the credentials*",
            "not sent: 1 more incident(s), since PagerDuty refused the credentials above",
        ]
    )
    assert result.stdout.str().count("Authentication failed. Fix") == 1
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_rate_limits_and_server_errors_are_reported_not_raised(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(
        429,
        error_reply("Rate Limit Exceeded", 2020),
        headers={"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": "20"},
    )
    pagerduty.reply(502, "<html><body>Bad Gateway</body></html>")
    result = run(pytester, *pagerduty.options())
    result.stdout.fnmatch_lines(
        [
            "not created: Test failed: test_one: assert False: rate limited by PagerDuty "
            "(Rate Limit Exceeded).*",
            "not created: Test failed: test_two: assert False: PagerDuty answered 502 "
            "(HTTP 502: <html><body>Bad Gateway</body></html>).*",
        ]
    )


def test_a_201_with_a_malformed_body_counts_as_created(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(201, "{not json")
    result = run(pytester, *pagerduty.options())
    result.stdout.fnmatch_lines(["created (number unknown): Test failed: test_one: assert False"])


def test_a_server_slower_than_the_timeout_does_not_hang_the_run(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(201, {}, delay=3)
    result = run(pytester, *pagerduty.options(), "--pagerduty_timeout=0.5")
    result.stdout.fnmatch_lines(
        [
            "not created: Test failed: test_one: assert False: timed out waiting for the reply.*",
            "created #1002: *",
        ]
    )


def test_no_server_listening_is_a_summary_line(pytester: pytest.Pytester) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(
        pytester,
        f"--pagerduty_api_url=http://127.0.0.1:{port}",
        "--pagerduty_api_key=key",
        "--pagerduty_default_from=a@example.com",
    )
    result.stdout.fnmatch_lines(
        ["not created: Test failed: test_one: assert False: connection refused.*"]
    )


def test_warnings_as_errors_do_not_change_the_exit_code(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(400, error_reply("Invalid Input Provided", 2001, "Service not found"))
    pagerduty.reply(400, error_reply("Invalid Input Provided", 2001, "Service not found"))
    result = run(pytester, *pagerduty.options(), "-W", "error")
    result.stdout.fnmatch_lines(["not created: *Service not found*"])
