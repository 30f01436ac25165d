"""Text the plugin does not control (marker arguments, test ids, assertion
messages, PagerDuty's answers) can neither crash the run nor drive the
terminal."""

from __future__ import annotations

import pytest

from fake_pagerduty import FakePagerDuty

RAW_IDS = "[pytest]\ndisable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n"


def pagerduty_section(result: pytest.RunResult) -> str:
    """The plugin's own section (pytest's own lines show raw ids, as asked)."""
    section = result.stdout.str().partition("= PagerDuty =")[2]
    assert section
    return section.partition("short test summary info")[0]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ('service_id="P\\ud800"', "service_id"),
        ('service_id="PWIXJZS", details="disk \\udcff full"', "details"),
        ('service_id="PWIXJZS", details=["ok", "\\ud800"]', "details"),
    ],
    ids=["service_id", "details", "details list"],
)
def test_a_lone_surrogate_in_a_marker_is_a_usage_error_naming_the_test_and_argument(
    pytester: pytest.Pytester, arguments: str, named: str
) -> None:
    pytester.makepyfile(
        test_shop=f"""
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident({arguments})
def test_checkout():
    assert False
"""
    )
    result = pytester.runpytest_subprocess("-W", "error")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    result.stderr.fnmatch_lines(
        [
            "ERROR: pagerduty: fix these before the run can page anyone:",
            f"  test_shop.py::test_checkout: @pytest.mark.pagerduty_trigger_incident: the "
            f"argument {named} holds text that is not valid Unicode: a lone surrogate (\\u*"
            " Fix: *",
        ]
    )
    assert "test_checkout FAILED" not in output


def test_a_usage_error_shows_control_characters_as_escapes(pytester: pytest.Pytester) -> None:
    pytester.makeini(RAW_IDS)
    pytester.makepyfile(
        test_shop="""
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="P\\x1b[2J")
@pytest.mark.parametrize("colour", ["\\x1b[31mred\\x00"])
def test_checkout(colour):
    pass
"""
    )
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    error = result.stderr.str()
    assert "\x1b" not in error and "\x00" not in error
    assert "test_shop.py::test_checkout[\\x1b[31mred\\x00]: " in error


def test_a_lone_surrogate_under_xdist_stops_the_run_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_shop="""
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="P\\ud800")
def test_checkout():
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*test_checkout*service_id holds text that is not valid Unicode*"])
    result.assert_outcomes(errors=1)


ESCAPES = """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
@pytest.mark.parametrize("colour", ["\\x1b[31mred\\x00"])
def test_paint(colour):
    assert False, "painted \\x1b[2J\\x07 over"
"""


def test_the_summary_shows_control_characters_as_escapes(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makeini(RAW_IDS)
    pytester.makepyfile(test_paint=ESCAPES)
    result = pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_resolve=always"))
    result.assert_outcomes(failed=1)
    section = pagerduty_section(result)
    assert "\x1b" not in section and "\x00" not in section and "\x07" not in section
    # The component takes escapes out of titles; the summary escapes the rest.
    assert "created #1001: Test failed: test_paint[red]:" in section


def test_pagerdutys_answer_is_shown_escaped(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makeini(RAW_IDS)
    pytester.makepyfile(test_paint=ESCAPES)
    pagerduty.reply(
        400,
        {
            "error": {
                "message": "Bad \x1b[31mInput\x1b[0m\x00",
                "code": 2001,
                "errors": ["\x1b]0;x"],
            }
        },
    )
    result = pytester.runpytest_subprocess(*pagerduty.options())
    result.assert_outcomes(failed=1)
    section = pagerduty_section(result)
    assert "failed: " in section
    assert "\x1b" not in section and "\x00" not in section
    # The component takes the escapes out of PagerDuty's words; none reach the terminal.
    assert "PagerDuty answered 400: Bad Input. Fix: " in section
