"""Bad markers and settings stop the run at collection, naming test and fix."""

from __future__ import annotations

import pytest

from fake_pagerduty import FakePagerDuty

TEMPLATE = """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident({arguments})
def test_probe():
    assert False
"""

# marker arguments -> the line the error must print
BAD_MARKERS = {
    'urgency="high"': "*test_probe: @pytest.mark.pagerduty_trigger_incident: service_id is "
    'required. Fix: add service_id="PWIXJZS"*',
    'service_id="P1", urgency="critical"': '*urgency="critical" is not a PagerDuty urgency. '
    'Fix: use urgency="high" or urgency="low"',
    'service_id="P1", urgancy="high"': "*unknown argument urgancy=. Fix: did you mean urgency=?*",
    'service_id="P1", assignee_id="U1", escalation_policy_id="E1"': "*an assignee and an escalation policy cannot be sent together. "
    "Fix: give either assignee_id or escalation_policy_id, not both",
    'service_id="P1", assignee_ids=["U1", "U2"]': "*2 assignees given; PagerDuty takes one assignee per incident*",
    "service_id=1234567": '*service_id must be a string, got int. Fix: write service_id="..."*',
    'service_id="P1", priority_id=None': "*priority_id must be a string, got NoneType*",
    '"PWIXJZS"': "*the marker takes keyword arguments only, got a positional argument*",
    'service_id="P1", incident_key=""': "*incident_key must be 1 to 255 characters*",
    'service_id="P" * 10_000': "*service_id=a value of 10000 characters is not a PagerDuty id. "
    "Fix: PagerDuty ids are 1 to 64 letters and digits*",
    'service_id="P1", assignee_ids=[]': "*assignee_ids=[] names no one to assign. Fix: give one id*",
    'routing_key="Sekr3tKey"': "*routing_key is not an Events API v2 integration key: the routing "
    "key has 9 characters; integration keys have 32. Fix: copy the 32-character Integration Key*",
}


@pytest.mark.parametrize("arguments", list(BAD_MARKERS))
def test_a_bad_marker_stops_the_run_before_any_test(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, arguments: str
) -> None:
    pytester.makepyfile(TEMPLATE.format(arguments=arguments))
    result = pytester.runpytest_subprocess(*pagerduty.options())
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*pagerduty: fix these before the run can page anyone:*", BAD_MARKERS[arguments]]
    )
    assert "test_probe PASSED" not in result.stdout.str()
    assert "1 failed" not in result.stdout.str()
    assert "Traceback" not in result.stderr.str()
    assert "= PagerDuty =" not in result.stdout.str()  # no empty section before the error
    assert pagerduty.received == []


def test_every_bad_marker_is_listed_at_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a=TEMPLATE.format(arguments='urgency="high"'),
        test_b=TEMPLATE.format(arguments='service_id="P1", urgency="HIGH"'),
    )
    result = pytester.runpytest_subprocess("--pagerduty_dry_run")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*test_a.py::test_probe: *service_id is required*",
            '*test_b.py::test_probe: *urgency="HIGH" is not a PagerDuty urgency*',
        ]
    )


# settings -> the line the error must print
BAD_SETTINGS = {
    (
        "--pagerduty_api_url=http://api.pagerduty.com",
    ): "*pagerduty_api_url (from --pagerduty_api_url): plain http is allowed only for loopback "
    "hosts, not api.pagerduty.com. Fix: use https://api.pagerduty.com*",
    (
        "--pagerduty_api_key=Token token=Sekr3tKey",
        "--pagerduty_default_from=a@example.com",
    ): "*pagerduty_api_key (from --pagerduty_api_key): the value starts with an authorization "
    "scheme. Fix: set the API key to the bare key; the scheme is added for you "
    "(--pagerduty_api_key, ini pagerduty_api_key or environment PAGERDUTY_API_KEY)",
    (
        "--pagerduty_api_key=Sekr3tKey",
    ): "*pagerduty_default_from (from default): PagerDuty creates incidents as a user, named "
    "by a From address, and none is set*",
    (
        "--pagerduty_oauth_token=Sekr3tKey",
        "--pagerduty_default_from=nobody",
    ): '*pagerduty_default_from (from --pagerduty_default_from): "nobody" is not an email*',
    (
        "--pagerduty_routing_key=Sekr3tKey0123456789abcdef012345",
    ): "*pagerduty_routing_key (from --pagerduty_routing_key): the routing key has 31 characters; "
    "integration keys have 32. Fix: copy the 32-character Integration Key*",
}


@pytest.mark.parametrize("options", list(BAD_SETTINGS))
def test_bad_settings_stop_the_run_before_any_test(
    pytester: pytest.Pytester, options: tuple[str, ...]
) -> None:
    pytester.makepyfile(TEMPLATE.format(arguments='service_id="P1"'))
    result = pytester.runpytest_subprocess(*options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([BAD_SETTINGS[options]])
    output = result.stdout.str() + result.stderr.str()
    assert "Sekr3tKey" not in output


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "--pagerduty_timeout=soon",
            "*--pagerduty_timeout must be a number of seconds, got 'soon'",
        ),
        (
            "--pagerduty_timeout=inf",
            "*--pagerduty_timeout must be a number of seconds above 0, got 'inf'",
        ),
        (
            "--pagerduty_timeout=0",
            "*--pagerduty_timeout must be a number of seconds above 0, got '0'",
        ),
    ],
)
def test_a_setting_that_is_not_a_number_is_rejected_at_start(
    pytester: pytest.Pytester, option: str, message: str
) -> None:
    result = pytester.runpytest_subprocess(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_boolean_setting_from_the_environment_is_checked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGERDUTY_DRY_RUN", "perhaps")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*environment PAGERDUTY_DRY_RUN must be true or false, got 'perhaps'"]
    )


def test_under_xdist_a_bad_marker_stops_the_run_before_any_test(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(TEMPLATE.format(arguments='service_id="P1", urgancy="high"'))
    result = pytester.runpytest_subprocess(*pagerduty.options("-p", "xdist", "-n", "2"))
    assert result.ret not in (pytest.ExitCode.OK, pytest.ExitCode.INTERNAL_ERROR)
    result.stdout.fnmatch_lines(
        ["*test_probe: @pytest.mark.pagerduty_trigger_incident: unknown argument urgancy=*"]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert "1 failed" not in result.stdout.str()
    assert pagerduty.received == []


def test_a_bad_marker_on_a_deselected_test_only_warns(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS", urgency="urgent")
def test_broken():
    pass

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_fine():
    pass
"""
    )
    # -k leaves the broken marker out of this run: the run goes on.
    selected = pytester.runpytest_subprocess("-k", "fine", "--pagerduty_dry_run")
    selected.assert_outcomes(passed=1, deselected=1)
    selected.stdout.fnmatch_lines(
        ["*PagerDutyWarning: *test_broken*urgency*(deselected in this run*"]
    )
    # Selected, it stops the run as before.
    stopped = pytester.runpytest_subprocess("--pagerduty_dry_run")
    assert stopped.ret == pytest.ExitCode.USAGE_ERROR
    stopped.stderr.fnmatch_lines(["*test_broken*urgency*"])
