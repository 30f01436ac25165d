"""`pagerduty_memory_limit` has a floor: below it the component could not
build a large failure's incident, so such a value is refused at the start."""

from __future__ import annotations

import pytest
from settings_for_tests import component_settings

from fake_pagerduty import FakePagerDuty
from pytest_pagerduty import wit
from pytest_pagerduty.settings import MIN_MEMORY_LIMIT_MIB

MARKED = """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_probe():
    assert False
"""

# A failure as large as the incidents PagerDuty accepts (512 KB).
LARGE_TRACEBACK = "E       assert 'x' == 'y'\n" * (512 * 1024 // 26 + 1)


def test_at_the_floor_the_component_builds_and_sends_a_large_failures_incident(
    pagerduty: FakePagerDuty,
) -> None:
    from pytest_pagerduty.component import Pager

    settings = component_settings(api_url=pagerduty.url, max_attempts=1)
    pager = Pager.open(settings, MIN_MEMORY_LIMIT_MIB)
    assert isinstance(pager, Pager)
    marker = pager.marker({"service_id": "PWIXJZS"})
    assert not isinstance(marker, wit.MarkerError)
    assert len(LARGE_TRACEBACK) >= 512 * 1024
    failure = wit.TestFailure(
        nodeid="test_big.py::test_big",
        short_name="test_big",
        docstring="A large failure.",
        message="assert 'x' == 'y'",
        traceback=LARGE_TRACEBACK,
        phase="call",
    )
    planned = pager.trigger(failure, marker)
    assert isinstance(planned, wit.Page), planned
    step = pager.send(planned.payload, None)
    assert isinstance(step, wit.DeliveredStep), step
    (incident,) = pagerduty.incidents()
    assert incident["title"] == "Test failed: test_big: assert 'x' == 'y'"


@pytest.mark.parametrize("where", ["option", "ini", "environment"])
def test_a_memory_limit_below_the_floor_stops_the_run_with_the_fix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    pytester.makepyfile(MARKED)
    below = str(MIN_MEMORY_LIMIT_MIB - 1)
    args: list[str] = []
    if where == "option":
        args.append(f"--pagerduty_memory_limit={below}")
        source = "--pagerduty_memory_limit"
    elif where == "ini":
        pytester.makeini(f"[pytest]\npagerduty_memory_limit = {below}\n")
        source = "ini pagerduty_memory_limit"
    else:
        monkeypatch.setenv("PAGERDUTY_MEMORY_LIMIT", below)
        source = "environment PAGERDUTY_MEMORY_LIMIT"
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: pagerduty: {source} is {below} MiB, less than the component needs "
            f"({MIN_MEMORY_LIMIT_MIB} MiB *)*. Fix: set it to at least {MIN_MEMORY_LIMIT_MIB}*"
        ]
    )
    assert "test_probe" not in result.stdout.str()


def test_the_help_names_the_floor(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    help_text = " ".join(result.stdout.str().split())
    assert f"At least {MIN_MEMORY_LIMIT_MIB}: the component needs" in help_text
