"""One engine: the pytest plugin and `pagerduty-junit` run the component's
delivery rules, so against the same PagerDuty they make the same attempts on
the same schedule."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_junit_cli import SAMPLES, binary, rest, run

from fake_pagerduty import API_KEY, FROM, FakePagerDuty
from pagerduty_api import error_reply

ONE_FAILURE = """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_probe():
    assert False
"""

# The component's floor for a wait PagerDuty names (guest/src/delivery.rs).
FLOOR = 1.0


def rate_limited_forever(pagerduty: FakePagerDuty) -> None:
    """`ratelimit-reset: 0` on every request: "try again now", which must not
    turn into a burst."""
    for _ in range(10):
        pagerduty.reply(
            429, error_reply("Rate Limit Exceeded", 2020), headers={"ratelimit-reset": "0"}
        )


@pytest.fixture(scope="module")
def built() -> Path:
    """The command, built before pytester points HOME (and so cargo) elsewhere."""
    return binary()


def gaps(pagerduty: FakePagerDuty) -> list[float]:
    times = [r.at for r in pagerduty.received]
    return [later - earlier for earlier, later in zip(times, times[1:])]


def test_a_reset_of_zero_is_waited_out_alike_by_the_plugin_and_the_junit_command(
    built: Path, pytester: pytest.Pytester, pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    rate_limited_forever(pagerduty)
    pytester.makepyfile(test_probe=ONE_FAILURE)
    result = pytester.runpytest_subprocess(*pagerduty.options())
    result.assert_outcomes(failed=1)
    plugin = gaps(pagerduty)
    result.stdout.fnmatch_lines(["queued: *rate limited by PagerDuty*, after 4 attempt(s)*"])

    pagerduty.received.clear()
    rate_limited_forever(pagerduty)
    report = SAMPLES / "pytest.xml"
    cli = run(
        *rest(pagerduty, report, "--service-id", "PWIXJZS", "--max-incidents", "1"),
        "--state",
        tmp_path / "state.json",
        env={"PAGERDUTY_API_KEY": API_KEY, "PAGERDUTY_DEFAULT_FROM": FROM},
    )
    assert cli.returncode == 1, cli.stderr  # not delivered: PagerDuty never let it through
    junit = gaps(pagerduty)[:3]  # the first alert's attempts; the aggregate follows

    # Four attempts each (the component's default), a floor's wait apart: no burst.
    assert len(plugin) == 3, plugin
    assert len(junit) == 3, junit
    for plugin_gap, junit_gap in zip(plugin, junit):
        assert FLOOR <= plugin_gap < FLOOR + 0.5
        assert FLOOR <= junit_gap < FLOOR + 0.5
        assert abs(plugin_gap - junit_gap) < 0.25
