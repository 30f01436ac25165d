"""A secret inside a test id (a key in a parametrize id) never reaches a file
the plugin writes: the open-alerts cache keeps digests of test ids, the
verdict cache keeps HMACs, the dry-run file is redacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from settings_for_tests import component_settings

from fake_pagerduty import API_KEY, ROUTING_KEY, FakePagerDuty
from pytest_pagerduty import wit
from pytest_pagerduty.open_alerts import CACHE_KEY

# Three failing checks whose ids hold the secret; with pagerduty_max_incidents=1
# two of them are listed in an aggregate alert (its `covers`).
SUITE = """
import os
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
@pytest.mark.parametrize("key", ["{secret}", "a-{secret}", "b-{secret}"])
def test_login(key):
    # LOGIN_STATE: "down" fails them all, "a-" only the one whose key starts so.
    assert os.environ.get("LOGIN_STATE") not in ("down", key[:2])
"""


def files_holding(secret: str, *roots: Path) -> list[Path]:
    """Every file under the roots whose bytes hold the secret, except
    pytest's own records of test ids (`lastfailed`, `nodeids`): those are
    pytest's, not this plugin's."""
    pytests_own = {"lastfailed", "nodeids"}
    return [
        path
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and not (path.parent.name == "cache" and path.name in pytests_own)
        and secret.encode() in path.read_bytes()
    ]


@pytest.mark.parametrize("api", ["rest", "events"])
def test_a_key_in_a_test_id_reaches_no_file_and_the_alert_is_still_resolved(
    pytester: pytest.Pytester,
    pagerduty: FakePagerDuty,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    api: str,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    secret = API_KEY if api == "rest" else ROUTING_KEY
    options = pagerduty.options if api == "rest" else pagerduty.events_options
    pytester.makepyfile(test_login=SUITE.replace("{secret}", secret))
    monkeypatch.setenv("LOGIN_STATE", "down")
    down = pytester.runpytest_subprocess(*options("--pagerduty_max_incidents=1"))
    down.assert_outcomes(failed=3)
    down.stdout.fnmatch_lines(["PagerDuty: 2 created"])
    cache = pytester.path / ".pytest_cache"
    remembered = json.loads((cache / "v" / CACHE_KEY).read_text())
    assert len(remembered) == 2
    assert any(len(entry.get("covers", ())) == 2 for entry in remembered.values())
    assert files_holding(secret, cache, tmp_path / "xdg") == []

    monkeypatch.delenv("LOGIN_STATE")
    green = pytester.runpytest_subprocess(*options("--pagerduty_max_incidents=1"))
    green.assert_outcomes(passed=3)
    green.stdout.fnmatch_lines(["PagerDuty: 2 resolved"])
    assert pagerduty.open_incidents == {} and pagerduty.open_events == {}
    assert files_holding(secret, cache, tmp_path / "xdg") == []


def test_an_open_alerts_file_with_raw_test_ids_is_still_read_then_rewritten(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_login=SUITE.replace("{secret}", API_KEY))
    monkeypatch.setenv("LOGIN_STATE", "down")
    pytester.runpytest_subprocess(*pagerduty.options()).assert_outcomes(failed=3)
    path = pytester.path / ".pytest_cache" / "v" / CACHE_KEY
    # As an older version wrote it: keyed by the test ids themselves.
    nodeids = [f"test_login.py::test_login[{p}{API_KEY}]" for p in ("", "a-", "b-")]
    entries = sorted(json.loads(path.read_text()).values(), key=lambda e: e["incident_id"])
    path.write_text(json.dumps(dict(zip(nodeids, entries))))

    monkeypatch.setenv("LOGIN_STATE", "a-")  # two pass again, one still fails
    half = pytester.runpytest_subprocess(*pagerduty.options())
    half.assert_outcomes(passed=2, failed=1)
    half.stdout.fnmatch_lines(["PagerDuty: 1 already open, 2 resolved, 1 noted on open incidents"])
    assert len(pagerduty.open_incidents) == 1
    (kept,) = json.loads(path.read_text())
    assert kept.startswith("sha256:")
    assert API_KEY not in path.read_text()


def test_the_dry_run_file_holds_none_of_the_runs_secrets(tmp_path: Path) -> None:
    from pytest_pagerduty.component import Pager
    from pytest_pagerduty.delivery import Outcome
    from pytest_pagerduty.summary import write_dry_run

    settings = component_settings(dry_run=True)
    pager = Pager.open(settings, 64)
    assert isinstance(pager, Pager)
    marker = pager.marker({"service_id": "PWIXJZS"})
    assert not isinstance(marker, wit.MarkerError)
    nodeid = f"test_login.py::test_login[{API_KEY}]"
    failure = wit.TestFailure(
        nodeid=nodeid,
        short_name=f"test_login[{API_KEY}]",
        docstring=None,
        message="assert False",
        traceback=f"key = '{API_KEY}'\nE   assert False",
        phase="call",
    )
    planned = pager.trigger(failure, marker)
    assert isinstance(planned, wit.Page)
    request = planned.payload
    outcome = Outcome(nodeid, "dry-run", request.title, request=request, dry_run="requested")

    unredacted = tmp_path / "unredacted.json"
    write_dry_run(unredacted, [outcome])
    assert API_KEY in unredacted.read_text()  # the test id carries it everywhere
    written = tmp_path / "dry-run.json"
    write_dry_run(written, [outcome], secrets=(API_KEY,))
    assert API_KEY not in written.read_text()
    (shown,) = json.loads(written.read_text())
    assert shown["nodeid"] == "test_login.py::test_login[[redacted]]"
    assert shown["request"]["method"] == request.method


def test_an_aggregate_stays_open_while_one_of_its_tests_still_fails(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_login=SUITE.replace("{secret}", API_KEY))
    monkeypatch.setenv("LOGIN_STATE", "down")
    options = pagerduty.options("--pagerduty_max_incidents=1")
    pytester.runpytest_subprocess(*options).assert_outcomes(failed=3)
    aggregate_key = pagerduty.incidents()[-1]["incident_key"]
    assert aggregate_key.startswith("pytest-aggregate-")
    monkeypatch.setenv("LOGIN_STATE", "a-")  # one of the aggregate's two tests still fails
    pytester.runpytest_subprocess(*options).assert_outcomes(passed=2, failed=1)
    assert aggregate_key in pagerduty.open_incidents
