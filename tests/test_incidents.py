"""A failing marked test opens the incident PagerDuty's contract describes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fake_pagerduty import API_KEY, FROM, FakePagerDuty

SEED_EXAMPLES = (
    Path(__file__).parents[1] / "examples" / "demo" / "test_seed_readme.py"
).read_text()
REPO = Path(__file__).parents[1]


def test_the_seed_readme_examples_open_the_incidents_it_describes(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makeconftest('pytest_plugins = ["pytest_pagerduty.plugin"]')
    pytester.makepyfile(test_seed_readme=SEED_EXAMPLES)
    result = pytester.runpytest_subprocess(*pagerduty.options())

    result.assert_outcomes(failed=3, passed=1)
    assert [r.headers["authorization"] for r in pagerduty.received] == [
        f"Token token={API_KEY}"
    ] * 3
    assert {r.headers["from"] for r in pagerduty.received} == {FROM}
    assert {(r.method, r.path) for r in pagerduty.received} == {("POST", "/incidents")}
    feature, service, flow = pagerduty.incidents()

    assert feature["title"] == "Test failed: test_critical_feature: assert False"
    assert feature["service"] == {"id": "XIXOOXZ", "type": "service_reference"}
    assert feature["urgency"] == "high"
    assert feature["assignments"] == [{"assignee": {"id": "SE169QA", "type": "user_reference"}}]
    assert feature["body"]["details"].startswith(
        "Verifies the critical feature behavior.\n\nFailure:\n"
    )
    assert "escalation_policy" not in feature
    # A stable key per test and service, so a repeated failure updates one incident.
    assert feature["incident_key"].startswith("pytest-")
    assert len({feature["incident_key"], service["incident_key"], flow["incident_key"]}) == 3

    assert service["title"] == "Test failed: test_service_failure: assert False"
    assert service["urgency"] == "low"
    assert "assignments" not in service

    assert flow["title"] == "Test failed: test_critical_flow: assert 201 == 502"
    assert flow["service"]["id"] == "IIXOOXZ"
    details = flow["body"]["details"]
    assert details.startswith(
        "Validates the critical flow.\n\nCritical test case which verifies next behavior:\n"
        "- Authentication to the production environment\n"
    )
    assert "- Sending a notification to the Billing team\n\nFailure:\n" in details
    assert "E       assert 201 == 502" in details
    assert details.endswith("\n\nTest: test_seed_readme.py::test_critical_flow")

    result.stdout.fnmatch_lines(
        [
            "*= PagerDuty =*",
            "created #1001: Test failed: test_critical_feature: assert False "
            "https://acme.pagerduty.com/incidents/PINC1001",
            "created #1002: Test failed: test_service_failure: assert False *",
            "created #1003: Test failed: test_critical_flow: assert 201 == 502 *",
        ]
    )


def test_every_marker_option_reaches_pagerduty(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(
            service_id="PWIXJZS", urgency="low", priority_id="P53ZZH5",
            escalation_policy_id="PT20YPA", incident_key="checkout-probe",
            details="Checkout is failing for EU customers.",
        )
        def test_checkout():
            assert 1 == 2, "checkout returned 500"
        """
    )
    result = pytester.runpytest_subprocess(*pagerduty.options())

    result.assert_outcomes(failed=1)
    (incident,) = pagerduty.incidents()
    assert incident["type"] == "incident"
    assert incident["priority"] == {"id": "P53ZZH5", "type": "priority_reference"}
    assert incident["escalation_policy"] == {"id": "PT20YPA", "type": "escalation_policy_reference"}
    assert incident["incident_key"] == "checkout-probe"
    assert incident["urgency"] == "low"
    assert incident["title"] == "Test failed: test_checkout: AssertionError: checkout returned 500"
    assert incident["body"]["details"].startswith(
        "Checkout is failing for EU customers.\n\nFailure:"
    )


def test_a_pass_resolves_only_its_own_services_incident_when_two_services_share_a_key(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    """An incident key is unique per service only: with resolve=always and a
    custom incident_key another service also uses, only the incident of the
    marker's service is resolved."""
    mine = pagerduty.open_incident("PWIXJZS", "checkout-probe")
    theirs = pagerduty.open_incident("PZZOTHR", "checkout-probe")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS", incident_key="checkout-probe")
        def test_checkout():
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        *pagerduty.options("--pagerduty_resolve=always"), "-p", "no:cacheprovider"
    )

    result.assert_outcomes(passed=1)
    assert pagerduty.requests() == [("GET", "/incidents"), ("PUT", f"/incidents/{mine}")]
    lookup = pagerduty.received[0]
    assert lookup.query["service_ids[]"] == ["PWIXJZS"]
    assert lookup.query["incident_key"] == ["checkout-probe"]
    assert pagerduty.open_by_service == {("PZZOTHR", "checkout-probe"): theirs}


def test_assignee_ids_as_a_one_element_list_assigns_that_user(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS", assignee_ids=["PZUVZZZ"])
        def test_x():
            assert False
        """
    )
    pytester.runpytest_subprocess(*pagerduty.options()).assert_outcomes(failed=1)
    (incident,) = pagerduty.incidents()
    assert incident["assignments"] == [{"assignee": {"id": "PZUVZZZ", "type": "user_reference"}}]


def test_an_oauth_token_is_sent_as_a_bearer_token(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
        def test_x():
            assert False
        """
    )
    result = pytester.runpytest_subprocess(
        f"--pagerduty_api_url={pagerduty.url}",
        "--pagerduty_oauth_token=oauth_tok_42",
        "--pagerduty_default_from=oncall@example.com",
    )
    result.assert_outcomes(failed=1)
    (request,) = pagerduty.received
    assert request.headers["authorization"] == "Bearer oauth_tok_42"
    assert request.headers["from"] == "oncall@example.com"
    assert request.headers["accept"] == "application/vnd.pagerduty+json;version=2"
    assert request.headers["content-type"] == "application/json"


def test_a_test_name_shared_by_two_files_is_titled_with_its_full_nodeid(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    body = """
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
        def test_health():
            assert False
        """
    pytester.makepyfile(test_eu=body, test_us=body)
    pytester.runpytest_subprocess(*pagerduty.options()).assert_outcomes(failed=2)
    titles = sorted(i["title"] for i in pagerduty.incidents())
    assert titles == [
        "Test failed: test_eu.py::test_health: assert False",
        "Test failed: test_us.py::test_health: assert False",
    ]


def test_the_api_url_base_path_is_kept(pytester: pytest.Pytester, pagerduty: FakePagerDuty) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
        def test_x():
            assert False
        """
    )
    result = pytester.runpytest_subprocess(
        *pagerduty.options(), f"--pagerduty_api_url={pagerduty.url}/"
    )
    result.assert_outcomes(failed=1)
    assert [r.path for r in pagerduty.received] == ["/incidents"]


def test_the_contract_extract_is_pagerdutys_published_one() -> None:
    shared = Path(__file__).parents[2] / "shared" / "pagerduty-api" / "rest-openapiv3.json"
    if not shared.exists():
        pytest.skip("PagerDuty's full contract (../shared/pagerduty-api) is not beside the clone")
    sys.path.insert(0, str(Path(__file__).parent / "contract"))
    from extract import EXTRACT, extract

    assert json.loads(EXTRACT.read_text()) == extract(json.loads(shared.read_text()))
