"""Alerting as on-call teams run it: Events API v2, one alert per failing
check across runs, resolved when green, xdist, reruns, storms, CI links."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fake_pagerduty import ROUTING_KEY, FakePagerDuty

CHECK = """
import os
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident({marker})
def test_checkout():
    \"\"\"Checkout answers.\"\"\"
    assert os.environ.get("CHECKOUT_STATE") != "down", "checkout is down"
"""


def run(
    pytester: pytest.Pytester, options: list[str], *, down: bool, monkeypatch: pytest.MonkeyPatch
) -> pytest.RunResult:
    if down:
        monkeypatch.setenv("CHECKOUT_STATE", "down")
    else:
        monkeypatch.delenv("CHECKOUT_STATE", raising=False)
    result = pytester.runpytest_subprocess(*options)
    result.assert_outcomes(**({"failed": 1} if down else {"passed": 1}))
    return result


def test_an_events_v2_trigger_carries_what_on_call_needs(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker='service_id="PWIXJZS", urgency="low"'))
    result = run(pytester, pagerduty.events_options(), down=True, monkeypatch=monkeypatch)
    (event,) = pagerduty.events()
    assert pagerduty.requests() == [("POST", "/v2/enqueue")]
    assert "authorization" not in pagerduty.received[0].headers
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"].startswith("pytest-")
    payload = event["payload"]
    assert payload["summary"] == "Test failed: test_checkout: AssertionError: checkout is down"
    assert payload["severity"] == "warning"  # from urgency="low"
    assert (payload["component"], payload["group"], payload["class"]) == (
        "test_shop",
        ".",
        "pytest",
    )
    details = payload["custom_details"]
    assert details["nodeid"] == "test_shop.py::test_checkout"
    assert details["description"] == "Checkout answers."
    assert "AssertionError: checkout is down" in details["failure"]
    assert details["duration_seconds"] >= 0
    result.stdout.fnmatch_lines(["created (number unknown): Test failed: test_checkout: *"])
    assert ROUTING_KEY not in result.stdout.str()


def test_the_markers_routing_key_and_severity_win(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = 'routing_key="M4RKERKEY0123456789abcdef0123456", severity="error"'
    pytester.makepyfile(test_shop=CHECK.format(marker=marker))
    run(pytester, pagerduty.options(), down=True, monkeypatch=monkeypatch)
    (event,) = pagerduty.events()
    assert event["routing_key"] == "M4RKERKEY0123456789abcdef0123456"
    assert event["payload"]["severity"] == "error"


@pytest.mark.parametrize("api", ["rest", "events"])
def test_the_same_failure_on_two_runs_updates_one_alert_then_a_pass_resolves_it(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker='service_id="PWIXJZS"'))
    options = pagerduty.options() if api == "rest" else pagerduty.events_options()
    first = run(pytester, options, down=True, monkeypatch=monkeypatch)
    second = run(pytester, options, down=True, monkeypatch=monkeypatch)
    green = run(pytester, options, down=False, monkeypatch=monkeypatch)
    if api == "rest":
        creates = pagerduty.incidents()
        assert len(creates) == 2 and creates[0]["incident_key"] == creates[1]["incident_key"]
        first.stdout.fnmatch_lines(["created #1001: Test failed: test_checkout: *"])
        second.stdout.fnmatch_lines(["already open: Test failed: test_checkout: *"])
        # The first run remembered the incident's id: the second run's note
        # and the resolve need no lookup.
        assert pagerduty.requests()[2:] == [
            ("POST", "/incidents/PINC1001/notes"),
            ("PUT", "/incidents/PINC1001"),
        ]
        assert pagerduty.received[3].body == {
            "incident": {"type": "incident_reference", "status": "resolved"}
        }
        assert pagerduty.open_incidents == {}
    else:
        trigger_one, trigger_two, resolve = pagerduty.events()
        assert trigger_one["dedup_key"] == trigger_two["dedup_key"] == resolve["dedup_key"]
        assert resolve == {
            "routing_key": ROUTING_KEY,
            "event_action": "resolve",
            "dedup_key": trigger_one["dedup_key"],
        }
        assert pagerduty.open_events == {}
    green.stdout.fnmatch_lines(
        ["resolved: test_shop.py::test_checkout passes again", "PagerDuty: 1 resolved"]
    )
    # Resolved once: a further pass sends nothing.
    sent = len(pagerduty.received)
    run(pytester, options, down=False, monkeypatch=monkeypatch)
    assert len(pagerduty.received) == sent == (4 if api == "rest" else 3)


def test_resolve_always_finds_the_incident_on_a_machine_that_forgot_it(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker='service_id="PWIXJZS"'))
    run(
        pytester,
        [*pagerduty.options(), "-p", "no:cacheprovider"],
        down=True,
        monkeypatch=monkeypatch,
    )
    green = run(
        pytester,
        [*pagerduty.options("--pagerduty_resolve=always"), "-p", "no:cacheprovider"],
        down=False,
        monkeypatch=monkeypatch,
    )
    assert pagerduty.requests() == [
        ("POST", "/incidents"),
        ("GET", "/incidents"),
        ("PUT", "/incidents/PINC1001"),
    ]
    lookup = pagerduty.received[1]
    assert lookup.query["incident_key"] == [pagerduty.incidents()[0]["incident_key"]]
    assert lookup.query["statuses[]"] == ["triggered", "acknowledged"]
    # Every incident with the key, not only those of the last month (the default).
    assert lookup.query["date_range"] == ["all"]
    assert pagerduty.open_incidents == {}
    green.stdout.fnmatch_lines(
        ["resolve sent for 1 of 1 passing test(s) (pagerduty_resolve = always)"]
    )


def test_auto_resolve_can_be_turned_off(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_shop=CHECK.format(marker='service_id="PWIXJZS"'))
    run(pytester, pagerduty.events_options(), down=True, monkeypatch=monkeypatch)
    run(
        pytester,
        pagerduty.events_options("--pagerduty_auto_resolve=false"),
        down=False,
        monkeypatch=monkeypatch,
    )
    assert [e["event_action"] for e in pagerduty.events()] == ["trigger"]


SUITE = """
import pytest

pytestmark = [pytest.mark.usefixtures("pagerduty_fixture"),
              pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")]

@pytest.mark.parametrize("n", range({count}))
def test_check(n):
    assert n % 2 == 1
"""


@pytest.mark.parametrize(
    "xdist",
    [["-n", "2"], ["-n", "4"], ["-n", "2", "--dist", "loadfile"], ["-n", "2", "--dist", "each"]],
    ids=["n2", "n4", "loadfile", "each"],
)
def test_under_xdist_each_failing_test_pages_once_with_one_summary(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, xdist: list[str]
) -> None:
    pytester.makepyfile(test_a=SUITE.format(count=6), test_b=SUITE.format(count=4))
    result = pytester.runpytest_subprocess(*pagerduty.options("-p", "xdist", *xdist))
    failing = {f"test_a.py::test_check[{n}]" for n in (0, 2, 4)} | {
        f"test_b.py::test_check[{n}]" for n in (0, 2)
    }
    nodeids = [i["body"]["details"].rsplit("Test: ", 1)[1] for i in pagerduty.incidents()]
    assert sorted(nodeids) == sorted(failing)
    assert result.stdout.str().count("= PagerDuty =") == 1
    result.stdout.fnmatch_lines(["PagerDuty: 5 created"])


FLAKY = """
import pathlib
import pytest

pytestmark = [pytest.mark.usefixtures("pagerduty_fixture"),
              pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")]

def test_hard():
    assert False, "always down"

def test_flaky():
    tries = pathlib.Path("tries")
    tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
    assert len(tries.read_text()) > 1, "down the first time"
"""


def test_with_reruns_only_the_final_failure_pages_and_flaky_tests_are_listed(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(test_flaky=FLAKY)
    result = pytester.runpytest_subprocess(*pagerduty.options("--reruns", "2"))
    result.assert_outcomes(failed=1, passed=1)
    assert result.parseoutcomes()["rerun"] == 3
    assert [i["title"] for i in pagerduty.incidents()] == [
        "Test failed: test_hard: AssertionError: always down"
    ]
    result.stdout.fnmatch_lines(
        ["flaky: test_flaky.py::test_flaky failed, then passed on rerun (not paged)"]
    )


def test_a_flaky_test_can_send_an_info_alert(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(test_flaky=FLAKY.replace("def test_hard", "def _unused"))
    result = pytester.runpytest_subprocess(
        *pagerduty.events_options("--reruns", "1", "--pagerduty_flaky=info")
    )
    result.assert_outcomes(passed=1)
    assert result.parseoutcomes()["rerun"] == 1
    (event,) = pagerduty.events()
    assert event["payload"]["severity"] == "info"
    assert (
        event["payload"]["summary"]
        == "Test failed: test_flaky: AssertionError: down the first time"
    )
    result.stdout.fnmatch_lines(
        ["flaky: test_flaky.py::test_flaky failed, then passed on rerun (an info alert was sent)"]
    )


def test_a_storm_past_the_cap_becomes_one_aggregate(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(test_storm=SUITE.format(count=50))  # 25 failures
    result = pytester.runpytest_subprocess(*pagerduty.options())
    result.assert_outcomes(failed=25, passed=25)
    incidents = pagerduty.incidents()
    assert len(incidents) == 11
    aggregate = incidents[-1]
    suite = pytester.path.name
    assert aggregate["title"] == f"15 more tests failed in {suite}"
    listed = [line for line in aggregate["body"]["details"].splitlines() if line.startswith("- ")]
    assert len(listed) == 15
    assert listed[0].startswith("- test_storm.py::test_check[20]: Test failed: test_check[20]")
    assert aggregate["incident_key"].startswith("pytest-aggregate-")
    result.stdout.fnmatch_lines(
        [
            f"created (one for 15 failures past pagerduty_max_incidents): 15 more tests failed in {suite}",
            "PagerDuty: 11 created",
        ]
    )


def test_an_aggregate_is_resolved_once_its_tests_pass(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(test_storm=SUITE.format(count=30))  # 15 failures
    pytester.runpytest_subprocess(*pagerduty.options()).assert_outcomes(failed=15, passed=15)
    aggregate = pagerduty.incidents()[-1]
    assert aggregate["title"].startswith("5 more tests failed")
    aggregate_id = pagerduty.open_incidents[aggregate["incident_key"]]
    # Half still fail: the aggregate's tests are among them, it stays open.
    still = pytester.runpytest_subprocess(*pagerduty.options())
    still.assert_outcomes(failed=15, passed=15)
    assert aggregate["incident_key"] in pagerduty.open_incidents

    pytester.makepyfile(test_storm=SUITE.format(count=30).replace("n % 2 == 1", "True"))
    green = pytester.runpytest_subprocess(*pagerduty.options())
    green.assert_outcomes(passed=30)
    assert ("PUT", f"/incidents/{aggregate_id}") in pagerduty.requests()
    assert pagerduty.open_incidents == {}
    green.stdout.fnmatch_lines(
        [f"resolved: the aggregate alert {aggregate['incident_key']}: its tests pass again"]
    )


CI_SYSTEMS = {
    "GitHub Actions": (
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_RUN_ID": "42",
            "GITHUB_SHA": "c0ffee",
            "GITHUB_REF_NAME": "main",
            "GITHUB_JOB": "smoke",
        },
        "https://github.com/acme/shop/actions/runs/42",
        "smoke",
    ),
    "GitLab CI": (
        {
            "GITLAB_CI": "true",
            "CI_JOB_URL": "https://gitlab.com/acme/shop/-/jobs/7",
            "CI_COMMIT_SHA": "c0ffee",
            "CI_COMMIT_REF_NAME": "main",
            "CI_JOB_NAME": "smoke",
        },
        "https://gitlab.com/acme/shop/-/jobs/7",
        "smoke",
    ),
    "Jenkins": (
        {
            "JENKINS_URL": "https://ci.acme.com/",
            "BUILD_URL": "https://ci.acme.com/job/shop/9/",
            "GIT_COMMIT": "c0ffee",
            "GIT_BRANCH": "main",
            "JOB_NAME": "smoke",
        },
        "https://ci.acme.com/job/shop/9/",
        "smoke",
    ),
    "Buildkite": (
        {
            "BUILDKITE": "true",
            "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/shop/builds/3",
            "BUILDKITE_COMMIT": "c0ffee",
            "BUILDKITE_BRANCH": "main",
            "BUILDKITE_LABEL": "smoke",
        },
        "https://buildkite.com/acme/shop/builds/3",
        "smoke",
    ),
    "CircleCI": (
        {
            "CIRCLECI": "true",
            "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/shop/5",
            "CIRCLE_SHA1": "c0ffee",
            "CIRCLE_BRANCH": "main",
            "CIRCLE_JOB": "smoke",
        },
        "https://circleci.com/gh/acme/shop/5",
        "smoke",
    ),
    "Azure Pipelines": (
        {
            "TF_BUILD": "True",
            "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
            "SYSTEM_TEAMPROJECT": "shop",
            "BUILD_BUILDID": "11",
            "BUILD_SOURCEVERSION": "c0ffee",
            "BUILD_SOURCEBRANCHNAME": "main",
            "SYSTEM_JOBDISPLAYNAME": "smoke",
        },
        "https://dev.azure.com/acme/shop/_build/results?buildId=11",
        "smoke",
    ),
}


@pytest.mark.parametrize("system", list(CI_SYSTEMS))
def test_each_ci_system_becomes_a_link_and_details(
    pytester: pytest.Pytester,
    pagerduty: FakePagerDuty,
    monkeypatch: pytest.MonkeyPatch,
    system: str,
) -> None:
    variables, url, job = CI_SYSTEMS[system]
    for name in ("GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "CIRCLECI", "TF_BUILD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(test_shop=CHECK.format(marker='service_id="PWIXJZS"'))
    run(pytester, pagerduty.events_options(), down=True, monkeypatch=monkeypatch)
    (event,) = pagerduty.events()
    assert event["links"] == [{"href": url, "text": f"{system} run"}]
    assert event["client_url"] == url
    assert event["payload"]["source"] == f"{system}: {job}"
    assert event["payload"]["custom_details"]["ci"] == {
        "system": system,
        "url": url,
        "commit": "c0ffee",
        "branch": "main",
        "job": job,
    }


def test_outside_ci_the_source_is_the_host(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    for name in ("GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "CIRCLECI", "TF_BUILD"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_shop=CHECK.format(marker='service_id="PWIXJZS"'))
    run(pytester, pagerduty.events_options(), down=True, monkeypatch=monkeypatch)
    (event,) = pagerduty.events()
    assert event["payload"]["source"] == socket.gethostname()
    assert "links" not in event
    assert "ci" not in event["payload"]["custom_details"]


def test_the_open_alerts_live_in_pytests_cache(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    pytester.makepyfile(test_shop=CHECK.format(marker='service_id="PWIXJZS"'))
    run(pytester, pagerduty.options(), down=True, monkeypatch=monkeypatch)
    stored = Path(pytester.path, ".pytest_cache", "v", "pagerduty", "open-alerts")
    remembered = json.loads(stored.read_text())
    from pytest_pagerduty.open_alerts import digest

    assert remembered == {
        digest("test_shop.py::test_checkout"): {  # not the id: it may hold a secret
            "dedup_key": pagerduty.incidents()[0]["incident_key"],
            "incident_id": "PINC1001",
        }
    }


MARKER_KEY = "M4RKERKEY0123456789abcdef0123456"


def test_a_routing_key_in_the_marker_alone_sends_and_the_outbox_keeps_only_its_fingerprint(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    pytester.makepyfile(test_shop=CHECK.format(marker=f'routing_key="{MARKER_KEY}"'))
    no_settings_credentials = [f"--pagerduty_events_url={pagerduty.url}", "--pagerduty_timeout=5"]
    run(pytester, no_settings_credentials, down=True, monkeypatch=monkeypatch)
    (event,) = pagerduty.events()
    assert event["routing_key"] == MARKER_KEY
    for _ in range(2):
        pagerduty.reply(503, "")
    result = run(
        pytester,
        [*no_settings_credentials, "--pagerduty_max_attempts=2"],
        down=True,
        monkeypatch=monkeypatch,
    )
    outbox = Path(pytester.path, ".pytest_cache", "d", "pagerduty", "outbox.jsonl").read_text()
    # (pytest's own traceback shows the test's source, marker included)
    assert MARKER_KEY not in outbox + result.stdout.str().split("= PagerDuty =")[1]
    (entry,) = [json.loads(line) for line in outbox.splitlines()]
    assert entry["marker"]["routing_key"].startswith("sha256:")
    replayed = pytester.run(
        sys.executable,
        "-m",
        "pytest_pagerduty",
        "replay",
        f"--pagerduty_events_url={pagerduty.url}",
        f"--pagerduty_routing_key={MARKER_KEY}",
    )
    assert replayed.ret == 0
    assert pagerduty.events()[-1]["routing_key"] == MARKER_KEY


def test_under_dist_each_a_pass_resolves_once(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(test_ok=SUITE.format(count=4).replace("n % 2 == 1", "True"))
    result = pytester.runpytest_subprocess(
        *pagerduty.events_options(
            "-p", "xdist", "-n", "2", "--dist", "each", "--pagerduty_resolve=always"
        )
    )
    assert result.ret == 0
    resolves = [e for e in pagerduty.events() if e["event_action"] == "resolve"]
    assert len(resolves) == 4
    assert len({e["dedup_key"] for e in resolves}) == 4


def test_two_shards_of_one_ci_run_share_one_aggregate_key(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two pytest processes of one CI run, each with its own cache (two
    # shards): their storms must land on one aggregate alert, not two.
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/checks")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    pytester.makepyfile(test_storm=SUITE.format(count=8))  # 4 failures per shard
    for shard in ("one", "two"):
        result = pytester.runpytest_subprocess(
            *pagerduty.events_options("--pagerduty_max_incidents=1", "-o", f"cache_dir=.c-{shard}")
        )
        result.assert_outcomes(failed=4, passed=4)
    aggregates = [e for e in pagerduty.events() if "more tests failed" in e["payload"]["summary"]]
    assert len(aggregates) == 2
    assert aggregates[0]["dedup_key"] == aggregates[1]["dedup_key"]
