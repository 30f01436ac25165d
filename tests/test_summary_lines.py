"""The PagerDuty section says what happened and why: nothing after a usage
error, and PagerDuty's answer for every resolve it refused."""

from __future__ import annotations

import pytest

from fake_pagerduty import FakePagerDuty
from pagerduty_api import error_reply

TWO_MARKED = """
import pytest

pytestmark = [pytest.mark.usefixtures("pagerduty_fixture")]

@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_cart():
    pass

@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_pay():
    pass
"""


@pytest.mark.parametrize("xdist", [[], ["-p", "xdist", "-n", "2"]], ids=["plain", "xdist"])
def test_after_a_usage_error_the_section_does_not_say_no_test_failed(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    pytester.makepyfile(
        test_shop=TWO_MARKED.replace('"PWIXJZS")\ndef test_pay', '"P X")\ndef test_pay')
    )
    result = pytester.runpytest_subprocess(*xdist)
    assert result.ret in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.TESTS_FAILED)
    output = result.stdout.str() + result.stderr.str()
    assert "test_shop.py::test_pay: @pytest.mark.pagerduty_trigger_incident" in output
    assert "none of the" not in output
    assert "= PagerDuty =" not in output
    assert "passed" not in result.parseoutcomes()


def test_a_refused_resolve_lookup_says_pagerdutys_answer(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(test_shop=TWO_MARKED)
    for _ in range(2):
        pagerduty.reply(403, error_reply("Access Denied", 2010, "The key may not read incidents"))
    result = pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_resolve=always"))
    result.assert_outcomes(passed=2)
    assert pagerduty.requests()[0] == ("GET", "/incidents")
    result.stdout.fnmatch_lines(
        [
            "resolve sent for 0 of 2 passing test(s) (pagerduty_resolve = always)",
            "  not resolved (*): *PagerDuty answered 403: Access Denied: "
            "The key may not read incidents*Fix: *",
        ]
    )
