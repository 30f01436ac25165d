"""Which test outcomes page: only a real failure of the test itself."""

from __future__ import annotations

import pytest

from fake_pagerduty import FakePagerDuty

HEADER = """
import pytest

pagerduty = [
    pytest.mark.usefixtures("pagerduty_fixture"),
    pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS"),
]

@pytest.fixture
def broken():
    raise RuntimeError("fixture is broken")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown is broken")
"""

# name -> (test body, the outcome pytest reports, whether it pages)
OUTCOMES = {
    "failed": ("def test_it(): assert False", {"failed": 1}, True),
    "raised": ("def test_it(): raise ValueError('boom')", {"failed": 1}, True),
    "passed": ("def test_it(): assert True", {"passed": 1}, False),
    "skipped": ("def test_it(): pytest.skip('not today')", {"skipped": 1}, False),
    "skipif": (
        "@pytest.mark.skipif(True, reason='no')\ndef test_it(): assert False",
        {"skipped": 1},
        False,
    ),
    "xfailed": ("@pytest.mark.xfail\ndef test_it(): assert False", {"xfailed": 1}, False),
    "xpassed": ("@pytest.mark.xfail\ndef test_it(): assert True", {"xpassed": 1}, False),
    "xpassed strict": (
        "@pytest.mark.xfail(strict=True)\ndef test_it(): assert True",
        {"failed": 1},
        False,
    ),
    "xfail with another exception": (
        "@pytest.mark.xfail(raises=KeyError)\ndef test_it(): raise ValueError('other')",
        {"failed": 1},
        True,
    ),
    "pytest.raises passing": (
        "def test_it():\n    with pytest.raises(ZeroDivisionError):\n        1 / 0",
        {"passed": 1},
        False,
    ),
    "parametrized passing": (
        "@pytest.mark.parametrize('n', [1, 2, 3])\ndef test_it(n): assert n > 0",
        {"passed": 3},
        False,
    ),
    "setup error": ("def test_it(broken): pass", {"errors": 1}, False),
    "teardown error": ("def test_it(broken_teardown): pass", {"passed": 1, "errors": 1}, False),
}


@pytest.mark.parametrize("name", list(OUTCOMES))
def test_only_failures_of_the_test_itself_page(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, name: str
) -> None:
    body, outcome, pages = OUTCOMES[name]
    pytester.makepyfile(HEADER + "\npytestmark = pagerduty\n\n" + body + "\n")
    result = pytester.runpytest_subprocess(*pagerduty.options())
    result.assert_outcomes(**outcome)
    assert len(pagerduty.received) == (1 if pages else 0)


def test_a_parametrized_test_pages_once_per_failing_case(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(
        HEADER
        + """
pytestmark = pagerduty

@pytest.mark.parametrize("region", ["eu", "us", "ap"])
def test_region(region):
    assert region != "us"
"""
    )
    pytester.runpytest_subprocess(*pagerduty.options()).assert_outcomes(passed=2, failed=1)
    (incident,) = pagerduty.incidents()
    assert incident["title"].startswith("Test failed: test_region[us]: ")


@pytest.mark.parametrize("name", ["setup error", "teardown error"])
def test_errors_in_setup_or_teardown_page_when_switched_on(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, name: str
) -> None:
    body, outcome, _ = OUTCOMES[name]
    pytester.makepyfile(HEADER + "\npytestmark = pagerduty\n\n" + body + "\n")
    result = pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_page_on_error"))
    result.assert_outcomes(**outcome)
    (incident,) = pagerduty.incidents()
    phase = name.split()[0]
    assert incident["title"].startswith(f"Test errored in {phase}: test_it: RuntimeError: ")


def test_a_failing_test_without_the_marker_or_the_fixture_does_not_page(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.usefixtures("pagerduty_fixture")
def test_fixture_only():
    assert False

@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_marker_only():
    assert False
"""
    )
    result = pytester.runpytest_subprocess(*pagerduty.options())
    result.assert_outcomes(failed=2)
    assert pagerduty.received == []
    result.stdout.fnmatch_lines(
        [
            # The warning points at the test itself, not at the plugin.
            f"*{pytester.path / 'test_a_failing_test_without_the_marker_or_the_fixture_does_not_page.py'}"
            ":*: PagerDutyWarning: *test_marker_only has @pytest.mark.pagerduty_trigger_incident "
            "but does not use pagerduty_fixture: it will not page. "
            'Add @pytest.mark.usefixtures("pagerduty_fixture").',
        ]
    )
    assert "collection.py" not in result.stdout.str()


def test_a_class_level_marker_applies_to_its_methods(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS", urgency="low")
class TestCheckout:
    def test_pay(self):
        assert False

    def test_refund(self):
        pass
"""
    )
    pytester.runpytest_subprocess(*pagerduty.options()).assert_outcomes(failed=1, passed=1)
    (incident,) = pagerduty.incidents()
    assert incident["title"] == "Test failed: TestCheckout::test_pay: assert False"
    assert incident["urgency"] == "low"
