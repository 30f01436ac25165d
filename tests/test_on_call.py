"""What the responder at 3 a.m. sees (issue 13), end to end against the
loopback PagerDuty: notes when an open incident's check fails again, links
to the test's source and the runbook, and paging only once a failure
persists (`page_after_failures`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fake_pagerduty import FakePagerDuty

CHECK = """
import os
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident({marker})
def test_checkout():
    assert os.environ.get("CHECKOUT_STATE", "up") == "up", "checkout is " + os.environ.get("CHECKOUT_STATE", "up")
"""

SERVICE = 'service_id="PWIXJZS"'


def run(
    pytester: pytest.Pytester,
    options: list[str],
    monkeypatch: pytest.MonkeyPatch,
    state: str = "up",
    **outcomes: int,
) -> pytest.RunResult:
    monkeypatch.setenv("CHECKOUT_STATE", state)
    result = pytester.runpytest_subprocess(*options)
    expected = outcomes or ({"passed": 1} if state == "up" else {"failed": 1})
    result.assert_outcomes(**expected)
    return result


def notes_requests(pagerduty: FakePagerDuty) -> list[tuple[str, Any]]:
    return [(r.path, r.body) for r in pagerduty.received if r.path.endswith("/notes")]


def open_alerts_file(pytester: pytest.Pytester) -> Path:
    return pytester.path / ".pytest_cache" / "v" / "pagerduty" / "open-alerts"


def test_a_check_failing_again_adds_one_note_to_its_open_incident(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=SERVICE))
    run(pytester, pagerduty.options(), monkeypatch, "down")
    ((incident_id),) = pagerduty.open_incidents.values()
    second = run(pytester, pagerduty.options(), monkeypatch, "timing out")
    # The id remembered from the run that opened it: no lookup.
    assert pagerduty.requests()[1:] == [
        ("POST", "/incidents"),
        ("POST", f"/incidents/{incident_id}/notes"),
    ]
    (note,) = pagerduty.notes_of(incident_id)
    assert note.startswith("Failed again at 20")
    assert "Test failed: test_checkout: AssertionError: checkout is timing out" in note
    assert "def test_checkout" in note  # the failure's first lines
    second.stdout.fnmatch_lines(
        [
            "already open: Test failed: test_checkout: *",
            "noted on its open incident: test_shop.py::test_checkout failed again",
            "PagerDuty: 1 already open, 1 noted on open incidents",
        ]
    )
    remembered = json.loads(open_alerts_file(pytester).read_text())
    (entry,) = remembered.values()
    assert entry["notes"] == 1 and entry["incident_id"] == incident_id


def test_a_note_under_xdist_is_added_once_per_run_for_tests_sharing_an_incident(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f'{SERVICE}, incident_key="checkout-flow"'
    pytester.makepyfile(
        test_shop=CHECK.format(marker=marker)
        + CHECK.format(marker=marker).replace("test_checkout", "test_checkout_eu")
    )
    options = [*pagerduty.options(), "-n", "2"]
    run(pytester, options, monkeypatch, "down", failed=2)
    run(pytester, options, monkeypatch, "down", failed=2)
    (incident_id,) = pagerduty.open_incidents.values()
    # One incident for the key; the first run's second test noted it once,
    # the second run's two failures noted it once more.
    assert len(pagerduty.notes_of(incident_id)) == 2
    assert len(pagerduty.incidents()) == 4


def test_an_incident_another_machine_opened_is_found_by_key_and_noted(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=f'{SERVICE}, incident_key="checkout"'))
    incident_id = pagerduty.open_incident("PWIXJZS", "checkout")
    run(pytester, pagerduty.options(), monkeypatch, "down")
    methods = pagerduty.requests()
    assert methods == [
        ("POST", "/incidents"),
        ("GET", "/incidents"),
        ("POST", f"/incidents/{incident_id}/notes"),
    ]
    lookup = pagerduty.received[1].query
    assert lookup["incident_key"] == ["checkout"] and lookup["service_ids[]"] == ["PWIXJZS"]
    assert len(pagerduty.notes_of(incident_id)) == 1
    # Learnt by the lookup: the next run notes it directly.
    run(pytester, pagerduty.options(), monkeypatch, "down")
    assert pagerduty.requests()[3:] == [
        ("POST", "/incidents"),
        ("POST", f"/incidents/{incident_id}/notes"),
    ]


def test_notes_stop_at_this_tools_share_and_say_so(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=SERVICE))
    run(pytester, pagerduty.options(), monkeypatch, "down")
    (incident_id,) = pagerduty.open_incidents.values()
    path = open_alerts_file(pytester)
    remembered = json.loads(path.read_text())
    for entry in remembered.values():
        entry["notes"] = 999  # as if it had failed 999 runs since
    path.write_text(json.dumps(remembered))
    run(pytester, pagerduty.options(), monkeypatch, "down")
    (last,) = pagerduty.notes_of(incident_id)
    assert "This is the last note pytest-pagerduty adds to this incident" in last
    third = run(pytester, pagerduty.options(), monkeypatch, "down")
    assert len(pagerduty.notes_of(incident_id)) == 1
    third.stdout.fnmatch_lines(
        ["test_shop.py::test_checkout: not noted: the incident already has the 1000 notes *"]
    )


def test_an_events_re_trigger_carries_the_new_failure_and_adds_no_note(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=SERVICE))
    run(pytester, pagerduty.events_options(), monkeypatch, "down")
    run(pytester, pagerduty.events_options(), monkeypatch, "timing out")
    first, second = pagerduty.events()
    assert first["dedup_key"] == second["dedup_key"]
    assert "checkout is down" in first["payload"]["custom_details"]["failure"]
    assert "checkout is timing out" in second["payload"]["custom_details"]["failure"]
    assert notes_requests(pagerduty) == []


GITHUB = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/shop",
    "GITHUB_RUN_ID": "42",
    "GITHUB_SHA": "c0ffee",
    "GITHUB_JOB": "smoke",
}


@pytest.mark.parametrize("api", ["events", "rest"])
def test_the_alert_links_the_tests_source_at_the_commit_the_run_and_the_runbook(
    pytester: pytest.Pytester,
    pagerduty: FakePagerDuty,
    monkeypatch: pytest.MonkeyPatch,
    api: str,
) -> None:
    # The repository root is the CI workspace; pytest's rootdir is a subfolder.
    checks = pytester.mkdir("checks")
    runbook = "https://wiki.example.com/runbooks/checkout"
    (checks / "test_shop.py").write_text(CHECK.format(marker=f'{SERVICE}, runbook_url="{runbook}"'))
    (checks / "pytest.ini").write_text("[pytest]\n")
    for name, value in GITHUB.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    monkeypatch.chdir(checks)
    options = pagerduty.events_options() if api == "events" else pagerduty.options()
    run(pytester, [*options, str(checks)], monkeypatch, "down")
    source = "https://github.com/acme/shop/blob/c0ffee/checks/test_shop.py#L5"
    if api == "events":
        (event,) = pagerduty.events()
        assert event["links"] == [
            {"href": source, "text": "Test source: checks/test_shop.py line 5"},
            {"href": "https://github.com/acme/shop/actions/runs/42", "text": "GitHub Actions run"},
            {"href": runbook, "text": "Runbook"},
        ]
    else:
        (incident,) = pagerduty.incidents()
        body = incident["body"]["details"]
        assert f"Test source: checks/test_shop.py line 5: {source}" in body
        assert f"Runbook: {runbook}" in body
        assert "CI: GitHub Actions https://github.com/acme/shop/actions/runs/42" in body


@pytest.mark.parametrize(
    ("argument", "problem"),
    [
        ('runbook_url="http://wiki.example.com/rb"', "runbook_url must be an https:// URL"),
        ("runbook_url=3", "runbook_url must be a string, got int"),
        ("page_after_failures=0", "page_after_failures=0 is out of range"),
        ("page_after_failures=True", "page_after_failures must be a whole number, got bool"),
        ('page_after_failures="2"', "page_after_failures must be a whole number, got str"),
    ],
)
def test_a_bad_runbook_or_count_stops_the_run_at_collection_naming_the_test(
    pytester: pytest.Pytester, argument: str, problem: str
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=f"{SERVICE}, {argument}"))
    result = pytester.runpytest_subprocess("--pagerduty_dry_run")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*test_shop.py::test_checkout*{problem}*"])


def test_a_check_that_blips_once_pages_no_one_and_one_that_persists_pages(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=f"{SERVICE}, page_after_failures=2"))
    blip = run(pytester, pagerduty.options(), monkeypatch, "down")
    blip.stdout.fnmatch_lines(
        [
            "failing 1 of 2 before paging: test_shop.py::test_checkout",
            "PagerDuty: 1 counting toward page_after_failures",
        ]
    )
    run(pytester, pagerduty.options(), monkeypatch, "up")  # a pass resets the count
    run(pytester, pagerduty.options(), monkeypatch, "down")
    assert pagerduty.received == []
    persists = run(pytester, pagerduty.options(), monkeypatch, "down")
    (incident,) = pagerduty.incidents()
    assert "checkout is down" in incident["title"]
    persists.stdout.fnmatch_lines(["created #*: Test failed: test_checkout: *"])
    # Once paged it lives its normal life: a note, then a resolve.
    run(pytester, pagerduty.options(), monkeypatch, "down")
    run(pytester, pagerduty.options(), monkeypatch, "up")
    assert [m for m, _ in pagerduty.requests()] == ["POST", "POST", "POST", "PUT"]
    assert pagerduty.open_incidents == {}
    history = pytester.path / ".pytest_cache" / "v" / "pagerduty" / "failing"
    assert json.loads(history.read_text()) == {}


def test_the_setting_is_the_default_and_a_marker_overrides_it(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\npagerduty_page_after_failures = 3\n")
    pytester.makepyfile(
        test_shop=CHECK.format(marker=SERVICE)
        + CHECK.format(marker=f"{SERVICE}, page_after_failures=1").replace(
            "test_checkout", "test_checkout_now"
        )
    )
    first = run(pytester, pagerduty.options(), monkeypatch, "down", failed=2)
    first.stdout.fnmatch_lines(["failing 1 of 3 before paging: test_shop.py::test_checkout"])
    (incident,) = pagerduty.incidents()
    assert "test_checkout_now" in incident["title"]
    history = pytester.path / ".pytest_cache" / "v" / "pagerduty" / "failing"
    counts = json.loads(history.read_text())
    # Kept by digests of the test ids, never the ids.
    assert sorted(counts.values()) == [1, 1]
    assert all(name.startswith("sha256:") for name in counts)
    assert "test_checkout" not in history.read_text()


def test_a_dry_run_preview_does_not_count_toward_paging(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=f"{SERVICE}, page_after_failures=2"))
    for _ in range(2):
        preview = run(pytester, ["--pagerduty_dry_run"], monkeypatch, "down")
        preview.stdout.fnmatch_lines(["failing 1 of 2 before paging: test_shop.py::test_checkout"])


TWO_CHECKS = """
import os
import pytest

pytestmark = [
    pytest.mark.usefixtures("pagerduty_fixture"),
    pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS"),
]

def test_a():
    assert os.environ.get("A_STATE", "up") == "up", "a is " + os.environ.get("A_STATE", "up")

def test_b():
    assert os.environ.get("B_STATE", "up") == "up", "b is down"
"""


def test_a_note_that_hangs_never_holds_up_a_new_page_and_is_not_sent_twice(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_two=TWO_CHECKS)
    options = pagerduty.options("--pagerduty_timeout=1")
    monkeypatch.setenv("A_STATE", "down")
    pytester.runpytest_subprocess(*options).assert_outcomes(failed=1, passed=1)
    (incident_a,) = pagerduty.open_incidents.values()
    # Next run: a fails again (its note hangs past the timeout), b fails anew.
    monkeypatch.setenv("B_STATE", "down")
    pagerduty.reply(0)  # a's create: already open
    pagerduty.reply(0)  # b's create
    pagerduty.reply(0, delay=3)  # a's note: no answer within 1 s
    result = pytester.runpytest_subprocess(*options)
    result.assert_outcomes(failed=2)
    assert pagerduty.requests()[1:] == [
        ("POST", "/incidents"),
        ("POST", "/incidents"),  # b's page went out first
        ("POST", f"/incidents/{incident_a}/notes"),  # once: it may have been added
    ]
    result.stdout.fnmatch_lines(
        [
            "test_two.py::test_a: not noted: timed out waiting for the reply. Fix: PagerDuty "
            "did not confirm the note, which is not sent again*",
            "PagerDuty: 1 created, 1 already open",
        ]
    )
    assert "PagerDutyWarning" not in result.stdout.str()
    assert not list(pytester.path.rglob("outbox.jsonl"))  # nothing left to replay


def test_an_incident_opened_anew_starts_its_notes_from_none(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=SERVICE))
    run(pytester, pagerduty.options(), monkeypatch, "down")
    path = open_alerts_file(pytester)
    remembered = json.loads(path.read_text())
    for entry in remembered.values():
        entry["notes"] = 1000  # this tool's share, used up on the first incident
    path.write_text(json.dumps(remembered))
    pagerduty.open_by_service.clear()  # on-call resolved it in PagerDuty
    run(pytester, pagerduty.options(), monkeypatch, "down")  # a new incident
    run(pytester, pagerduty.options(), monkeypatch, "down")
    (second,) = pagerduty.open_incidents.values()
    assert len(pagerduty.notes_of(second)) == 1


def test_an_inherited_test_links_the_file_that_defines_it(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        base_checks="""
        import os
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
        class Checks:
            def test_checkout(self):
                assert os.environ.get("CHECKOUT_STATE") != "down"
        """,
        test_eu="from base_checks import Checks\n\nclass TestEU(Checks):\n    pass\n",
    )
    for name, value in GITHUB.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    run(pytester, [*pagerduty.events_options(), "test_eu.py"], monkeypatch, "down")
    (event,) = pagerduty.events()
    source = event["links"][0]
    assert source["href"] == "https://github.com/acme/shop/blob/c0ffee/base_checks.py#L7"
    assert source["text"] == "Test source: base_checks.py line 7"


def test_dist_each_counts_a_failure_on_one_worker_as_a_failing_run(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_shop="""
        import os
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS", page_after_failures=2)
        def test_checkout():
            assert os.environ.get("PYTEST_XDIST_WORKER") != "gw1"
        """
    )
    options = [*pagerduty.options(), "-n", "2", "--dist", "each"]
    for _ in range(2):
        pytester.runpytest_subprocess(*options).assert_outcomes(passed=1, failed=1)
    assert len(pagerduty.incidents()) == 1


def test_without_the_cache_plugin_failures_in_a_row_are_still_counted(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=f"{SERVICE}, page_after_failures=2"))
    options = [*pagerduty.options(), "-p", "no:cacheprovider"]
    run(pytester, options, monkeypatch, "down")
    assert pagerduty.received == []
    run(pytester, options, monkeypatch, "down")
    assert len(pagerduty.incidents()) == 1
    assert (pytester.path / ".pagerduty-failing.json").is_file()


def test_a_history_pytest_cannot_write_is_a_warning_and_the_run_keeps_its_exit_code(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=SERVICE))
    run(pytester, pagerduty.options("-W", "error"), monkeypatch, "down")
    history = pytester.path / ".pytest_cache" / "v" / "pagerduty" / "failing"
    history.unlink()
    history.mkdir()  # a directory in the way: pytest's cache can neither read nor write it
    again = run(pytester, pagerduty.options("-W", "error"), monkeypatch, "down")
    assert again.ret == pytest.ExitCode.TESTS_FAILED  # not an internal error
    again.stdout.fnmatch_lines(["already open: Test failed: test_checkout: *"])
    told = run(pytester, pagerduty.options(), monkeypatch, "down")
    assert "could not keep the failures in a row in pytest's cache" in told.stdout.str()
    green = run(pytester, pagerduty.options("-W", "error"), monkeypatch, "up")
    assert green.ret == pytest.ExitCode.OK
    green.stdout.fnmatch_lines(["resolved: test_shop.py::test_checkout passes again"])


def test_a_kept_page_is_sent_by_the_next_run_whatever_the_count_asks_then(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=SERVICE))
    pagerduty.reply(503, {"error": {"message": "Service Unavailable"}})
    run(pytester, pagerduty.options("--pagerduty_max_attempts=1"), monkeypatch, "down")
    assert pagerduty.incidents() == [] or len(pagerduty.received) == 1
    # Since then page_after_failures went up, and the test passes: the page
    # the component already planned is still owed to on-call.
    later = pagerduty.options("--pagerduty_page_after_failures=2")
    replayed = run(pytester, later, monkeypatch, "up")
    replayed.stdout.fnmatch_lines(
        ["replayed 1 alert(s) an earlier run kept in the outbox: 1 sent*"]
    )
    assert pagerduty.requests()[1] == ("POST", "/incidents")
    assert len(pagerduty.open_incidents) == 1


def test_an_events_summary_stops_at_1024_characters_and_the_event_at_512_kb(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker=SERVICE))
    run(pytester, pagerduty.events_options(), monkeypatch, "down " + "é" * 20_000)
    (event,) = pagerduty.events()
    summary = event["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("…")
    assert summary.startswith("Test failed: test_checkout: AssertionError: checkout is down é")
    assert len(json.dumps(event).encode()) <= 512_000


def test_an_aggregate_says_which_job_and_shard_it_came_from(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    gitlab = {"GITLAB_CI": "true", "CI_JOB_NAME": "e2e", "CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "4"}
    for name, value in gitlab.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(
        test_shop="".join(
            CHECK.format(marker=SERVICE).replace("test_checkout", f"test_checkout_{n}")
            for n in range(3)
        )
    )
    options = pagerduty.events_options("--pagerduty_max_incidents=1")
    run(pytester, options, monkeypatch, "down", failed=3)
    (aggregate,) = [e for e in pagerduty.events() if "more tests failed" in e["payload"]["summary"]]
    assert aggregate["payload"]["summary"].endswith(", from GitLab CI job e2e, shard 2 of 4")
