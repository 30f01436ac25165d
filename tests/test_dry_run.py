"""A dry run builds every incident through the component and sends nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_pagerduty import API_KEY, FakePagerDuty

SEED_EXAMPLES = (
    Path(__file__).parents[1] / "examples" / "demo" / "test_seed_readme.py"
).read_text()


def test_without_credentials_the_run_is_a_dry_run_that_says_so(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(test_seed_readme=SEED_EXAMPLES)
    result = pytester.runpytest_subprocess(f"--pagerduty_api_url={pagerduty.url}")

    result.assert_outcomes(failed=3, passed=1)
    assert pagerduty.received == []
    dry_run_file = pytester.path / ".pytest_cache" / "d" / "pagerduty" / "dry-run.json"
    result.stdout.fnmatch_lines(
        [
            "*= PagerDuty =*",
            # A short readable block per incident: the full requests are in the file.
            "would open: Test failed: test_critical_feature: assert False",
            f"    POST {pagerduty.url}/incidents",
            "    service.id: XIXOOXZ · urgency: high · assignments?0?.assignee.id: SE169QA",
            "    key: pytest-*",
            "    | Verifies the critical feature behavior.",
            "would open: Test failed: test_service_failure: assert False",
            "would open: Test failed: test_critical_flow: assert 201 == 502",
            "dry run (no API key, OAuth token or routing key is configured): 3 incident(s) built, nothing sent; "
            f"requests written to {dry_run_file}",
        ]
    )
    written = json.loads(dry_run_file.read_text())
    assert [w["nodeid"] for w in written] == [
        "test_seed_readme.py::test_critical_feature",
        "test_seed_readme.py::test_service_failure",
        "test_seed_readme.py::test_critical_flow",
    ]
    first = written[0]["request"]
    assert first["method"] == "POST"
    assert first["url"] == f"{pagerduty.url}/incidents"
    assert first["headers"] == {
        "Accept": "application/vnd.pagerduty+json;version=2",
        "Content-Type": "application/json",
    }
    body = json.loads(first["body"])
    assert body["incident"]["assignments"] == [
        {"assignee": {"id": "SE169QA", "type": "user_reference"}}
    ]


def test_an_explicit_dry_run_redacts_the_key_and_writes_where_asked(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(test_seed_readme=SEED_EXAMPLES)
    target = pytester.path / "out" / "incidents.json"
    result = pytester.runpytest_subprocess(
        *pagerduty.options("--pagerduty_dry_run", f"--pagerduty_dry_run_file={target}")
    )
    result.assert_outcomes(failed=3, passed=1)
    assert pagerduty.received == []
    result.stdout.fnmatch_lines(
        [
            f"dry run (--pagerduty_dry_run): 3 incident(s) built, nothing sent; "
            f"requests written to {target}"
        ]
    )
    assert API_KEY not in result.stdout.str()
    assert "Authorization" not in result.stdout.str()  # headers are in the file, not the summary
    text = target.read_text()
    request = json.loads(text)[0]["request"]
    assert request["headers"]["Authorization"] == "[redacted]"
    assert request["headers"]["From"] == "oncall@example.com"
    assert API_KEY not in text
    headers = json.loads(text)[0]["request"]["headers"]
    assert headers["Authorization"] == "[redacted]"
    assert headers["From"] == "oncall@example.com"


def test_an_explicit_dry_run_keeps_nothing_for_replay(pytester: pytest.Pytester) -> None:
    """A preview must not page later: only a dry run caused by missing
    credentials keeps its incidents in the outbox."""
    pytester.makepyfile(test_seed_readme=SEED_EXAMPLES)
    outbox = pytester.path / ".pytest_cache" / "d" / "pagerduty" / "outbox.jsonl"
    pytester.runpytest_subprocess("--pagerduty_dry_run").assert_outcomes(failed=3, passed=1)
    assert not outbox.exists()
    pytester.runpytest_subprocess().assert_outcomes(failed=3, passed=1)
    assert len(outbox.read_text().splitlines()) == 3


def test_a_green_dry_run_writes_no_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
        def test_ok():
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= PagerDuty =*",
            "dry run (no API key, OAuth token or routing key is configured): 0 incident(s) built, nothing sent",
        ]
    )
    assert not (pytester.path / ".pytest_cache" / "d" / "pagerduty" / "dry-run.json").exists()
