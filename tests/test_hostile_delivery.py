"""Delivery facing a hostile configuration or hostile text: destinations
this host does not allow, a page PagerDuty refuses for good, and failures
far past what an alert can carry. Every case against the loopback
PagerDuty, asserting what it received."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer

from fake_pagerduty import API_KEY, FROM, FakePagerDuty
from pagerduty_api import error_reply

FAILING = """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_checkout():
    assert False
"""

FALLBACK_KEY = "F4LLBACKe93facc04764012d7bfb0199"


def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGERDUTY_API_KEY", API_KEY)
    monkeypatch.setenv("PAGERDUTY_DEFAULT_FROM", FROM)


def test_an_api_url_from_an_ini_file_alone_is_not_allowed(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A branch's pytest.ini must not send this machine's credentials elsewhere.
    credentials(monkeypatch)
    pytester.makeini(f"[pytest]\npagerduty_api_url = {pagerduty.url}\n")
    pytester.makepyfile(FAILING)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    assert pagerduty.received == []
    port = pagerduty.url.rsplit(":", 1)[1]
    result.stdout.fnmatch_lines(
        [
            f"queued: Test failed: test_checkout: assert False: 127.0.0.1:{port} is not an "
            f"allowed destination; allow it with the environment (PAGERDUTY_ALLOW_HOSTS="
            f"127.0.0.1:{port}) or the command line (--pagerduty_allow_host=127.0.0.1:{port}), "
            "never an ini file alone. Fix: the host does not allow this destination*",
            "PagerDuty: 1 queued in *",
        ]
    )

    # The environment allows it: the kept alert and the new one are one.
    monkeypatch.setenv("PAGERDUTY_ALLOW_HOSTS", f"127.0.0.1:{port}")
    allowed = pytester.runpytest_subprocess()
    allowed.assert_outcomes(failed=1)
    assert len(pagerduty.open_incidents) == 1


def test_a_second_port_from_the_ini_file_is_refused_while_the_allowed_api_pages(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = HTTPServer(host="127.0.0.1", port=0)
    other.start()
    try:
        credentials(monkeypatch)
        monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "R0UT1NGKEYe93facc04764012d7bfb01")
        # REST from the command line (allowed); Events from the ini only (not).
        pytester.makeini(f"[pytest]\npagerduty_events_url = {other.url_for('').rstrip('/')}\n")
        pytester.makepyfile(
            FAILING
            + """
@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(routing_key="R0UT1NGKEYe93facc04764012d7bfb01")
def test_event():
    assert False
"""
        )
        monkeypatch.delenv("PAGERDUTY_ROUTING_KEY")
        result = pytester.runpytest_subprocess(f"--pagerduty_api_url={pagerduty.url}")
        result.assert_outcomes(failed=2)
        assert other.log == []  # nothing reached the second port
        assert [i["title"] for i in pagerduty.incidents()] == [
            "Test failed: test_checkout: assert False"
        ]
        result.stdout.fnmatch_lines(["queued: *test_event*is not an allowed destination*"])
    finally:
        other.stop()


def test_the_command_line_can_allow_a_host(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials(monkeypatch)
    pytester.makeini(f"[pytest]\npagerduty_api_url = {pagerduty.url}\n")
    pytester.makepyfile(FAILING)
    port = pagerduty.url.rsplit(":", 1)[1]
    result = pytester.runpytest_subprocess(f"--pagerduty_allow_host=127.0.0.1:{port}")
    result.assert_outcomes(failed=1)
    assert len(pagerduty.incidents()) == 1


def test_a_page_refused_for_good_reaches_the_fallback_routing_key(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A mistyped service id: PagerDuty refuses the incident for good.
    pagerduty.reply(400, error_reply("Invalid Input Provided", 2001, "Service not found"))
    monkeypatch.setenv("PAGERDUTY_FALLBACK_ROUTING_KEY", FALLBACK_KEY)
    pytester.makepyfile(FAILING)
    result = pytester.runpytest_subprocess(*pagerduty.options())
    result.assert_outcomes(failed=1)
    (event,) = pagerduty.events()
    assert event["routing_key"] == FALLBACK_KEY
    assert event["event_action"] == "trigger"
    assert "test_checkout" in event["payload"]["summary"]
    assert "Service not found" in json.dumps(event["payload"])
    result.stdout.fnmatch_lines(
        [
            "fallback alert sent: *::test_checkout could not page",
            "PagerDuty: 1 failed permanently (kept as dead letters in *: see replay), "
            "1 fallback alert(s) sent",
        ]
    )
    # The fallback key is a secret: never shown, never on disk.
    assert FALLBACK_KEY not in result.stdout.str()
    for path in pytester.path.rglob("*"):
        if path.is_file() and path.suffix in (".jsonl", ".json"):
            assert FALLBACK_KEY not in path.read_text(errors="replace"), path


def test_a_20_mb_assertion_message_pages_and_the_outbox_keeps_what_can_be_sent(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(503, error_reply("Service Unavailable", 2000))
    pytester.makepyfile(
        """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_huge():
    assert False, "x" * (20 * 1024 * 1024) + " END"
"""
    )
    kept = pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_max_attempts=1"))
    kept.assert_outcomes(failed=1)
    kept.stdout.fnmatch_lines(["queued: *Service Unavailable*"])
    outbox = pytester.path / ".pytest_cache" / "d" / "pagerduty" / "outbox.jsonl"
    assert outbox.stat().st_size < 2 * 1024 * 1024  # cut to what the component takes
    # The next run sends it (no trap), and the body stays within PagerDuty's limit.
    pytester.makepyfile("def test_green():\n    pass\n")
    sent = pytester.runpytest_subprocess(*pagerduty.options())
    sent.assert_outcomes(passed=1)
    (incident,) = [i for i in pagerduty.incidents()][-1:]
    assert len(json.dumps(incident).encode()) < 40 * 1024
    assert len(pagerduty.open_incidents) == 1


def test_a_100000_character_test_id_pages_within_the_body_limit(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
@pytest.mark.parametrize("case", ["é" * 100_000])
def test_long(case):
    assert False
"""
    )
    result = pytester.runpytest_subprocess(*pagerduty.options())
    result.assert_outcomes(failed=1)
    (incident,) = pagerduty.incidents()
    assert len(incident["body"]["details"].encode()) <= 32 * 1024
    assert len(pagerduty.open_incidents) == 1
