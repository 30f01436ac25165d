"""`pagerduty-junit`, the Rust host's command for any test runner's JUnit XML,
against the loopback PagerDuty: what it sends for each runner's report, where
routes send it, what it refuses, and how it resolves."""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path

import pytest
from settings_for_tests import component_settings

from fake_pagerduty import API_KEY, FROM, ROUTING_KEY, FakePagerDuty
from pagerduty_api import error_reply
from pytest_pagerduty import wit
from pytest_pagerduty.component import Marker, Pager
from pytest_pagerduty.open_alerts import digest

ROOT = Path(__file__).parents[1]
SAMPLES = ROOT / "host-rs" / "tests" / "junit"

# Each sample's failed and errored cases, as their titles name them (README there).
FAILING = {
    "pytest.xml": ["test_refund_is_issued", "test_warehouse_sync", "test_sku_names_are_unicode"],
    "pytest-xunit1.xml": [
        "test_refund_is_issued",
        "test_warehouse_sync",
        "test_sku_names_are_unicode",
    ],
    "nextest.xml": ["refund_is_issued", "warehouse_sync", "sku_names_are_unicode"],
    "go-junit-report.xml": ["TestRefundIsIssued", "TestWarehouseSync", "TestSkuNamesAreUnicode"],
    "jest-junit.xml": [
        "checkout refund is issued",
        "inventory warehouse sync",
        "inventory sku names are unicode",
    ],
    "surefire.xml": ["refundIsIssued", "warehouseSync", "skuNamesAreUnicode"],
}


@cache
def binary() -> Path:
    """The command, built once (a no-op when cargo has it up to date); cargo
    names the executable, wherever the target folder is."""
    build = ["build", "--quiet", "--locked", "-p", "pagerduty-host", "--bin", "pagerduty-junit"]
    built = subprocess.run(
        ["cargo", *build, "--message-format=json"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    messages = [json.loads(line) for line in built.stdout.splitlines() if line.startswith("{")]
    return Path(next(m["executable"] for m in messages if m.get("executable")))


def run(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PAGERDUTY_", "GITHUB_"))}
    return subprocess.run(
        [str(binary()), *map(str, args)],
        env={**clean, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def authority(pagerduty: FakePagerDuty) -> str:
    return pagerduty.url.removeprefix("http://")


def rest(pagerduty: FakePagerDuty, *extra: str | Path) -> list[str | Path]:
    return ["--api-url", pagerduty.url, "--allow-host", authority(pagerduty), *extra]


@pytest.fixture(autouse=True)
def in_a_scratch_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command keeps its state in the working folder: never the repository's."""
    monkeypatch.chdir(tmp_path)


REST_ENV = {"PAGERDUTY_API_KEY": API_KEY, "PAGERDUTY_DEFAULT_FROM": FROM}


@pytest.mark.parametrize("sample", sorted(FAILING))
def test_each_runners_failed_cases_open_one_incident_each(
    pagerduty: FakePagerDuty, sample: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    args = rest(pagerduty, SAMPLES / sample, "--service-id", "PWIXJZS", "--state", state)
    result = run(*args, env=REST_ENV)
    assert result.returncode == 0, result.stderr
    incidents = pagerduty.incidents()
    titles = [i["title"] for i in incidents]
    assert len(titles) == len(FAILING[sample]), titles
    # Runners list cases in the order they finished.
    for name in FAILING[sample]:
        assert any(f": {name}" in title for title in titles), (name, titles)
    assert all(i["service"]["id"] == "PWIXJZS" for i in incidents)
    # The body carries the runner's failure text; passing and skipped cases page nothing.
    assert all("Failure:" in i["body"]["details"] for i in incidents)
    assert not any("payment" in t.lower() or "tax" in t.lower() for t in titles)
    assert "3 failed; 3 paged" in result.stdout
    assert API_KEY not in result.stdout + result.stderr + state.read_text()


INVENTORY_KEY = "1NVENT0RYKEY0000000000000000000a"


def test_a_config_file_routes_by_pattern_and_keys_stay_in_the_environment(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    (tmp_path / "pagerduty-junit.toml").write_text(
        f"""
        [settings]
        events_url = "{pagerduty.url}"

        [[route]]
        suite = "shop::checkout"
        routing_key_env = "CHECKOUT_ROUTING_KEY"
        severity = "critical"

        [[route]]
        name = "warehouse_*"
        ignore = true

        [[route]]
        suite = "shop::inventory"
        routing_key_env = "INVENTORY_ROUTING_KEY"
        severity = "warning"
        """
    )
    env = {"CHECKOUT_ROUTING_KEY": ROUTING_KEY, "INVENTORY_ROUTING_KEY": INVENTORY_KEY}
    allow = ["--allow-host", authority(pagerduty)]
    result = run(SAMPLES / "nextest.xml", *allow, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = pagerduty.events()
    summaries = {e["payload"]["summary"].split(":")[1].strip(): e for e in events}
    assert sorted(summaries) == ["refund_is_issued", "sku_names_are_unicode"]
    assert summaries["refund_is_issued"]["payload"]["severity"] == "critical"
    assert summaries["refund_is_issued"]["routing_key"] == ROUTING_KEY
    assert summaries["sku_names_are_unicode"]["payload"]["severity"] == "warning"
    assert summaries["sku_names_are_unicode"]["routing_key"] == INVENTORY_KEY
    for key in (ROUTING_KEY, INVENTORY_KEY):
        assert key not in result.stdout + result.stderr


def test_a_config_file_cannot_widen_the_allow_list(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """A config file in a branch must not send the environment's key elsewhere."""
    (tmp_path / "pagerduty-junit.toml").write_text(
        f'[settings]\napi_url = "{pagerduty.url}"\nallow_hosts = ["{authority(pagerduty)}"]\n'
    )
    result = run(SAMPLES / "pytest.xml", "--service-id", "PWIXJZS", env=REST_ENV, cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown field `allow_hosts`" in result.stderr
    (tmp_path / "pagerduty-junit.toml").write_text(f'[settings]\napi_url = "{pagerduty.url}"\n')
    result = run(SAMPLES / "pytest.xml", "--service-id", "PWIXJZS", env=REST_ENV, cwd=tmp_path)
    assert result.returncode == 1
    assert f"--allow-host {authority(pagerduty)}" in result.stderr
    assert pagerduty.received == []


def test_another_routes_key_in_a_failure_is_redacted(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """A key the component does not use for this alert is still kept out of it."""
    report = tmp_path / "leak.xml"
    report.write_text(
        f"""<testsuites><testsuite name="shop">
        <testcase classname="shop.api" name="test_login"><failure message="boom">
        env: INVENTORY_ROUTING_KEY={INVENTORY_KEY}</failure></testcase>
        <testcase classname="shop.stock" name="test_sync"><failure message="boom"/></testcase>
        </testsuite></testsuites>"""
    )
    (tmp_path / "pagerduty-junit.toml").write_text(
        """
        [[route]]
        class = "shop.stock"
        routing_key_env = "INVENTORY_ROUTING_KEY"
        [[route]]
        service_id = "PWIXJZS"
        """
    )
    env = {**REST_ENV, "INVENTORY_ROUTING_KEY": INVENTORY_KEY}
    args = rest(pagerduty, report, "--events-url", pagerduty.url)
    result = run(*args, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (incident,) = pagerduty.incidents()
    assert INVENTORY_KEY not in json.dumps(incident)
    assert "INVENTORY_ROUTING_KEY=[redacted]" in incident["body"]["details"]
    dry = run(*args, "--dry-run", env=env, cwd=tmp_path)
    assert "INVENTORY_ROUTING_KEY=[redacted]" in dry.stdout
    assert INVENTORY_KEY not in dry.stdout + dry.stderr


def test_pytest_xunit1_cases_get_the_plugins_keys(pagerduty: FakePagerDuty, tmp_path: Path) -> None:
    """xunit1 reports carry the file, so the command rebuilds pytest's nodeid:
    an incident it opens is the one the plugin would have opened."""
    args = rest(pagerduty, SAMPLES / "pytest-xunit1.xml", "--service-id", "PWIXJZS")
    result = run(*args, "--state", tmp_path / "s.json", env=REST_ENV)
    assert result.returncode == 0, result.stderr
    sent = {i["incident_key"] for i in pagerduty.incidents()}
    settings = component_settings(timeout_ms=1000, max_incidents=None)
    pager = Pager.open(settings, memory_limit_mib=64)
    assert isinstance(pager, Pager), pager
    marker = pager.marker({"service_id": "PWIXJZS"})
    assert isinstance(marker, Marker), marker
    plugin_keys = set()
    for nodeid in (
        "tests/test_checkout.py::test_refund_is_issued",
        "tests/test_inventory.py::test_warehouse_sync",
        "tests/test_inventory.py::test_sku_names_are_unicode",
    ):
        request = pager.resolve(nodeid, marker)
        assert isinstance(request, wit.AlertRequest), request
        plugin_keys.add(request.dedup_key)
    assert sent == plugin_keys


def _passing_report(tmp_path: Path) -> Path:
    """The pytest report of a later run in which every case passed."""
    text = (SAMPLES / "pytest.xml").read_text()
    for tag in ("failure", "error"):
        while f"<{tag} " in text:
            start = text.index(f"<{tag} ")
            text = text[:start] + text[text.index(f"</{tag}>", start) + len(f"</{tag}>") :]
    report = tmp_path / "green.xml"
    report.write_text(text)
    return report


def test_a_rerun_pages_nothing_new_and_a_pass_resolves(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    args = rest(pagerduty, "--service-id", "PWIXJZS", "--state", tmp_path / "state.json")
    assert run(SAMPLES / "pytest.xml", *args, env=REST_ENV).returncode == 0
    again = run(SAMPLES / "pytest.xml", *args, env=REST_ENV)
    assert again.returncode == 0, again.stderr
    assert "0 paged, 3 already open" in again.stdout
    assert len(pagerduty.open_incidents) == 3

    # A dry run shows the resolves it would send, and sends and forgets nothing.
    before = len(pagerduty.received)
    dry = run(_passing_report(tmp_path), *args, "--dry-run", env=REST_ENV)
    assert dry.returncode == 0, dry.stderr
    assert "3 would resolve" in dry.stdout
    assert len(pagerduty.received) == before

    green = run(_passing_report(tmp_path), *args, env=REST_ENV)
    assert green.returncode == 0, green.stderr
    assert "3 resolved" in green.stdout
    assert pagerduty.open_incidents == {}
    puts = [r for r in pagerduty.received if r.method == "PUT"]
    assert [p.body["incident"]["status"] for p in puts] == ["resolved"] * 3
    assert json.loads((tmp_path / "state.json").read_text())["open"] == {}


def test_events_resolve_with_the_triggers_key(pagerduty: FakePagerDuty, tmp_path: Path) -> None:
    args: list[str | Path] = [
        "--events-url",
        pagerduty.url,
        "--allow-host",
        authority(pagerduty),
        "--state",
        tmp_path / "state.json",
    ]
    env = {"PAGERDUTY_ROUTING_KEY": ROUTING_KEY}
    assert run(SAMPLES / "pytest.xml", *args, env=env).returncode == 0
    assert len(pagerduty.open_events) == 3
    green = run(_passing_report(tmp_path), *args, env=env)
    assert green.returncode == 0, green.stderr
    assert pagerduty.open_events == {}
    actions = [e["event_action"] for e in pagerduty.events()]
    assert actions == ["trigger"] * 3 + ["resolve"] * 3


def test_without_credentials_it_is_a_dry_run(pagerduty: FakePagerDuty) -> None:
    result = run(SAMPLES / "go-junit-report.xml", *rest(pagerduty, "--service-id", "PWIXJZS"))
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout
    assert result.stdout.count("would page: ") == 3
    assert pagerduty.received == []


def test_a_forced_dry_run_shows_requests_without_secrets(pagerduty: FakePagerDuty) -> None:
    args = rest(pagerduty, SAMPLES / "pytest.xml", "--service-id", "PWIXJZS", "--dry-run")
    result = run(*args, env=REST_ENV)
    assert result.returncode == 0, result.stderr
    assert '"Authorization":"[redacted]"' in result.stdout
    assert API_KEY not in result.stdout + result.stderr
    assert pagerduty.received == []
    # Each reads as the plugin's preview does: title, where it goes, key, then the request.
    lines = result.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("would page: "))
    assert lines[first + 1] == f"  POST {pagerduty.url}/incidents"
    assert lines[first + 2].startswith("  key: pytest-")
    assert lines[first + 3].startswith("  request: {")


def test_a_destination_off_the_allow_list_is_refused(pagerduty: FakePagerDuty) -> None:
    args: list[str | Path] = ["--api-url", pagerduty.url, SAMPLES / "pytest.xml"]
    result = run(*args, "--service-id", "PWIXJZS", env=REST_ENV)
    assert result.returncode == 1
    assert f"--allow-host {authority(pagerduty)}" in result.stderr
    assert pagerduty.received == []


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (
            ["--service-id", "PWIXJZS", "--urgency", "critical"],
            REST_ENV,
            'urgency="critical" is not a PagerDuty urgency',
        ),
        (["--service-id", "PWIXJZS", "--send"], {}, "--send, but no credentials are set"),
        ([], REST_ENV, "nothing says where to page"),
        (["--routing-key-env", "MISSING_KEY"], REST_ENV, "MISSING_KEY, which is not set"),
        (["--service-id", "PWIXJZS"], {"PAGERDUTY_API_KEY": API_KEY}, "PAGERDUTY_DEFAULT_FROM"),
        (
            ["--service-id", "PWIXJZS", "--page-after-failures", "0"],
            REST_ENV,
            "--page-after-failures (or PAGERDUTY_PAGE_AFTER_FAILURES",
        ),
        (
            ["--service-id", "PWIXJZS"],
            {**REST_ENV, "PAGERDUTY_PAGE_AFTER_FAILURES": "two"},
            'PAGERDUTY_PAGE_AFTER_FAILURES="two" is not a whole number',
        ),
    ],
    ids=[
        "unknown-urgency",
        "send-without-credentials",
        "no-destination",
        "unset-key",
        "no-from",
        "page-after-zero",
        "page-after-not-a-number",
    ],
)
def test_bad_input_exits_2_naming_the_fix(
    pagerduty: FakePagerDuty, args: list[str], env: dict[str, str], says: str
) -> None:
    result = run(SAMPLES / "pytest.xml", *rest(pagerduty, *args), env=env)
    assert result.returncode == 2
    assert says in result.stderr
    assert pagerduty.received == []


def test_a_report_that_is_not_junit_exits_2(tmp_path: Path) -> None:
    (tmp_path / "r.xml").write_text("<html><body/></html>")
    result = run(tmp_path / "r.xml", "--service-id", "PWIXJZS")
    assert result.returncode == 2
    assert "not a JUnit report" in result.stderr


def test_bad_credentials_stop_after_the_first_refusal(pagerduty: FakePagerDuty) -> None:
    pagerduty.reply(401, {"error": {"message": "Invalid Credentials", "code": 2006}})
    result = run(*rest(pagerduty, SAMPLES / "pytest.xml", "--service-id", "PWIXJZS"), env=REST_ENV)
    assert result.returncode == 1
    assert len(pagerduty.received) == 1
    assert result.stderr.count("not delivered") == 3
    assert "Invalid Credentials" in result.stderr
    assert API_KEY not in result.stdout + result.stderr


def test_a_rate_limit_is_waited_out(pagerduty: FakePagerDuty, tmp_path: Path) -> None:
    pagerduty.reply(
        429,
        {"error": {"message": "Rate Limit Exceeded", "code": 2020}},
        headers={"ratelimit-reset": "1"},
    )
    args = rest(
        pagerduty,
        SAMPLES / "jest-junit.xml",
        "--service-id",
        "PWIXJZS",
        "--state",
        tmp_path / "s.json",
    )
    result = run(*args, env=REST_ENV)
    assert result.returncode == 0, result.stderr
    assert "retrying in 1.0 s" in result.stderr
    assert "3 paged" in result.stdout
    assert len(pagerduty.open_incidents) == 3
    assert len(pagerduty.received) == 4


def test_past_the_cap_failures_are_grouped(pagerduty: FakePagerDuty, tmp_path: Path) -> None:
    args = rest(
        pagerduty,
        SAMPLES / "surefire.xml",
        "--service-id",
        "PWIXJZS",
        "--max-incidents",
        "1",
        "--state",
        tmp_path / "s.json",
    )
    result = run(*args, env=REST_ENV)
    assert result.returncode == 0, result.stderr
    incidents = pagerduty.incidents()
    assert len(incidents) == 2
    assert "refundIsIssued" in incidents[0]["title"] or "warehouseSync" in incidents[0]["title"]
    aggregate = incidents[1]["body"]["details"]
    assert aggregate.count("ShopTest") >= 2


MIXED = """
[[route]]
class = "tests.test_checkout"
service_id = "PWIXJZS"
[[route]]
class = "tests.test_inventory"
routing_key_env = "INVENTORY_ROUTING_KEY"
"""


def test_a_route_that_cannot_send_is_found_before_anything_is_sent(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """Only the Events route has its key: the REST route's missing API key is
    an exit 2 before the Events alerts go out, not after."""
    (tmp_path / "pagerduty-junit.toml").write_text(MIXED)
    env = {"INVENTORY_ROUTING_KEY": INVENTORY_KEY}
    args = rest(pagerduty, SAMPLES / "pytest.xml", "--events-url", pagerduty.url)
    result = run(*args, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert 'route 1 (class="tests.test_checkout")' in result.stderr
    assert "set PAGERDUTY_API_KEY" in result.stderr
    assert "--pagerduty_api_key" not in result.stderr  # the plugin's words, not this command's
    assert pagerduty.received == []


def test_an_unwritable_state_file_is_found_before_anything_is_sent(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    args = rest(pagerduty, SAMPLES / "pytest.xml", "--service-id", "PWIXJZS")
    result = run(*args, "--state", tmp_path / "missing" / "state.json", env=REST_ENV)
    assert result.returncode == 2
    assert "writing" in result.stderr
    assert pagerduty.received == []


def test_bad_rest_credentials_do_not_stop_events_alerts(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    (tmp_path / "pagerduty-junit.toml").write_text(MIXED)
    pagerduty.reply(401, {"error": {"message": "Invalid Credentials", "code": 2006}})
    env = {**REST_ENV, "INVENTORY_ROUTING_KEY": INVENTORY_KEY}
    args = rest(pagerduty, SAMPLES / "pytest.xml", "--events-url", pagerduty.url)
    result = run(*args, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert [r.path for r in pagerduty.received] == ["/incidents", "/v2/enqueue", "/v2/enqueue"]
    assert "1 not delivered" in result.stdout


def test_a_case_that_fails_in_one_report_and_passes_in_another_stays_open(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """Two matrix legs: one failed, one passed. The failure's incident stays open."""
    state = tmp_path / "state.json"
    args = rest(pagerduty, "--service-id", "PWIXJZS", "--state", state)
    result = run(SAMPLES / "pytest.xml", _passing_report(tmp_path), *args, env=REST_ENV)
    assert result.returncode == 0, result.stderr
    assert "3 paged, 0 already open, 0 resolved" in result.stdout
    assert len(pagerduty.open_incidents) == 3
    assert not [r for r in pagerduty.received if r.method == "PUT"]


def test_already_open_keeps_the_incident_id(pagerduty: FakePagerDuty, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    args = rest(pagerduty, SAMPLES / "pytest.xml", "--service-id", "PWIXJZS", "--state", state)
    assert run(*args, env=REST_ENV).returncode == 0
    first = json.loads(state.read_text())["open"]
    assert run(*args, env=REST_ENV).returncode == 0
    again = json.loads(state.read_text())["open"]
    # The same incidents, each with the one note the second run added.
    assert again == {case: {**alert, "notes": 1} for case, alert in first.items()}
    assert all(alert["incident_id"] for alert in first.values())


def test_a_grouped_alert_is_resolved_when_its_cases_pass(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    args = rest(pagerduty, "--service-id", "PWIXJZS", "--max-incidents", "1", "--state", state)
    assert run(SAMPLES / "pytest.xml", *args, env=REST_ENV).returncode == 0
    titles = [i["title"] for i in pagerduty.incidents()]
    assert titles[1] == "2 more tests failed in the JUnit reports"
    assert len(pagerduty.open_incidents) == 2

    green = run(_passing_report(tmp_path), *args, env=REST_ENV)
    assert green.returncode == 0, green.stderr
    assert "2 resolved" in green.stdout
    assert pagerduty.open_incidents == {}
    assert json.loads(state.read_text())["open"] == {}


def test_a_nonsense_duration_counts_as_zero(pagerduty: FakePagerDuty, tmp_path: Path) -> None:
    report = tmp_path / "odd.xml"
    report.write_text(
        '<testsuite name="s"><testcase classname="c" name="t" time="NaN">'
        '<failure message="boom"/></testcase></testsuite>'
    )
    result = run(*rest(pagerduty, report, "--service-id", "PWIXJZS"), env=REST_ENV)
    assert result.returncode == 0, result.stderr
    assert len(pagerduty.incidents()) == 1


def test_resolve_always_needs_no_state_and_never_sends_none(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    env = {"PAGERDUTY_ROUTING_KEY": ROUTING_KEY}
    args = ["--events-url", pagerduty.url, "--allow-host", authority(pagerduty)]
    assert (
        run(SAMPLES / "pytest.xml", *args, "--state", tmp_path / "a.json", env=env).returncode == 0
    )
    green = _passing_report(tmp_path)
    never = run(green, *args, "--resolve", "never", "--state", tmp_path / "a.json", env=env)
    assert never.returncode == 0, never.stderr
    assert len(pagerduty.open_events) == 3
    # A workspace without the state file: every passing case's key is resolved.
    always = run(green, *args, "--resolve", "always", "--state", tmp_path / "b.json", env=env)
    assert always.returncode == 0, always.stderr
    assert "6 resolved" in always.stdout
    assert pagerduty.open_events == {}


def test_a_page_refused_for_good_reaches_the_fallback_routing_key(
    pagerduty: FakePagerDuty,
) -> None:
    fallback = "F4LLBACKe93facc04764012d7bfb0199"
    pagerduty.reply(400, error_reply("Invalid Input Provided", 2001, "Service not found"))
    env = {**REST_ENV, "PAGERDUTY_FALLBACK_ROUTING_KEY": fallback}
    args = rest(pagerduty, SAMPLES / "pytest.xml", "--service-id", "PWIXJZS")
    result = run(*args, "--events-url", pagerduty.url, env=env)
    assert result.returncode == 1  # the refused page is still not delivered
    (event,) = pagerduty.events()
    assert event["routing_key"] == fallback
    assert "Service not found" in json.dumps(event["payload"])
    assert "fallback alert sent: " in result.stdout
    assert "1 fallback alert(s) sent" in result.stdout
    assert fallback not in result.stdout + result.stderr


def _report_written_at(tmp_path: Path, text: str, at_ms: int, name: str = "report.xml") -> Path:
    """A report file whose modification time (when it failed) is `at_ms`."""
    report = tmp_path / name
    report.write_text(text)
    os.utime(report, ns=(at_ms * 1_000_000, at_ms * 1_000_000))
    return report


# 2026-11-29T10:40:12Z and a minute later, in milliseconds since the epoch.
FIRST_RUN_MS = 1_795_948_812_000
SECOND_RUN_MS = FIRST_RUN_MS + 60_000


def test_a_second_failing_run_adds_one_note_to_each_open_incident(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """A case still failing gets a note on its open incident, saying when and
    how it failed this time; one per incident per run, however many reports
    name the case (it is triggered once)."""
    state = tmp_path / "state.json"
    args = rest(pagerduty, "--service-id", "PWIXJZS", "--state", state)
    sample = (SAMPLES / "pytest.xml").read_text()
    first = _report_written_at(tmp_path, sample, FIRST_RUN_MS, "first.xml")
    assert run(first, *args, env=REST_ENV).returncode == 0
    assert pagerduty.all_notes() == {}
    refund = pagerduty.open_incidents[
        next(i["incident_key"] for i in pagerduty.incidents() if "refund" in i["title"])
    ]

    # The refund now fails with another status; both legs of the run report it.
    second = _report_written_at(tmp_path, sample.replace("502", "503"), SECOND_RUN_MS, "second.xml")
    leg = _report_written_at(tmp_path, sample.replace("502", "503"), SECOND_RUN_MS, "leg.xml")
    again = run(second, leg, *args, env=REST_ENV)
    assert again.returncode == 0, again.stderr
    assert len(pagerduty.open_incidents) == 3
    notes = pagerduty.all_notes()
    assert sorted(notes) == sorted(pagerduty.open_incidents.values())
    assert all(len(added) == 1 for added in notes.values()), notes
    (note,) = notes[refund]
    assert note.startswith("Failed again at 2026-11-29T10:41:12Z: ")
    assert "assert 503 == 201" in note
    assert "502" not in note
    assert (
        f"Noted: tests.test_checkout::test_refund_is_issued failed again (incident {refund})"
        in again.stdout
    )
    assert "0 paged, 3 already open" in again.stdout
    assert "not noted" not in again.stdout
    assert "3 noted" in again.stdout
    creates = [r for r in pagerduty.received if r.method == "POST" and r.path == "/incidents"]
    assert len(creates) == 6  # three in each run
    alerts = json.loads(state.read_text())["open"]
    assert {alert["notes"] for alert in alerts.values()} == {1}
    posts = [r for r in pagerduty.received if r.path.endswith("/notes")]
    assert len(posts) == 3
    assert all(r.headers.get("from") == FROM for r in posts)


def test_a_note_after_a_lost_state_file_finds_its_incident_by_key(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """Without the incident's id (a fresh CI workspace) the note starts with a
    lookup by the case's key, then goes to the incident it finds."""
    args = rest(pagerduty, SAMPLES / "pytest.xml", "--service-id", "PWIXJZS")
    assert run(*args, "--state", tmp_path / "a.json", env=REST_ENV).returncode == 0
    again = run(*args, "--state", tmp_path / "b.json", env=REST_ENV)
    assert again.returncode == 0, again.stderr
    notes = pagerduty.all_notes()
    assert sorted(notes) == sorted(pagerduty.open_incidents.values())
    assert all(len(added) == 1 for added in notes.values())
    lookups = [r for r in pagerduty.received if r.method == "GET"]
    assert len(lookups) == 3
    remembered = json.loads((tmp_path / "b.json").read_text())["open"]
    assert {a["incident_id"] for a in remembered.values()} == set(notes)


GITHUB_ACTIONS = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/shop",
    "GITHUB_SHA": "4f2a9c1d0e5b7a8c9d0e1f2a3b4c5d6e7f8a9b0c",
    "GITHUB_RUN_ID": "9912345",
    "GITHUB_WORKSPACE": "/home/runner/work/shop/shop",
}


def test_a_cases_file_and_line_link_to_its_source_at_the_commit(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    report = tmp_path / "go.xml"
    report.write_text(
        """<testsuites><testsuite name="shop/checkout">
        <testcase classname="shop/checkout" name="TestRefund" file="checkout/refund_test.go"
                  line="42"><failure message="Failed">refund_test.go:44: got 502</failure></testcase>
        <testcase classname="shop/checkout" name="TestTax"><failure message="boom"/></testcase>
        </testsuite></testsuites>"""
    )
    env = {"PAGERDUTY_ROUTING_KEY": ROUTING_KEY, **GITHUB_ACTIONS}
    args = ["--events-url", pagerduty.url, "--allow-host", authority(pagerduty)]
    result = run(report, *args, "--state", tmp_path / "s.json", env=env)
    assert result.returncode == 0, result.stderr
    events = {e["payload"]["summary"].split(": ")[1]: e for e in pagerduty.events()}
    sha, run_url = GITHUB_ACTIONS["GITHUB_SHA"], "https://github.com/acme/shop/actions/runs/9912345"
    source = {
        "href": f"https://github.com/acme/shop/blob/{sha}/checkout/refund_test.go#L42",
        "text": "Test source: checkout/refund_test.go line 42",
    }
    assert events["TestRefund"]["links"][0] == source
    assert run_url in [link["href"] for link in events["TestRefund"]["links"]]
    # Without a file attribute there is no source to link, only the run.
    assert [link["href"] for link in events["TestTax"]["links"]] == [run_url]


def test_a_pytest_xunit1_line_is_0_based_so_the_link_is_one_below_it(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """pytest's xunit1 writes item.location's 0-based line of the `def`: the
    link names the 1-based line, as the plugin's does."""
    env = {"PAGERDUTY_ROUTING_KEY": ROUTING_KEY, **GITHUB_ACTIONS}
    args = ["--events-url", pagerduty.url, "--allow-host", authority(pagerduty)]
    result = run(SAMPLES / "pytest-xunit1.xml", *args, "--state", tmp_path / "s.json", env=env)
    assert result.returncode == 0, result.stderr
    sources = {
        e["payload"]["summary"].split(": ")[1]: e["links"][0]["href"] for e in pagerduty.events()
    }
    blob = f"https://github.com/acme/shop/blob/{GITHUB_ACTIONS['GITHUB_SHA']}"
    # The sample's lines: 16, 4 and 8 (README there).
    assert sources == {
        "test_refund_is_issued": f"{blob}/tests/test_checkout.py#L17",
        "test_warehouse_sync": f"{blob}/tests/test_inventory.py#L5",
        "test_sku_names_are_unicode": f"{blob}/tests/test_inventory.py#L9",
    }
    refund = next(e for e in pagerduty.events() if "refund" in e["payload"]["summary"])
    assert refund["links"][0]["text"] == "Test source: tests/test_checkout.py line 17"


def _counting_config(tmp_path: Path) -> None:
    (tmp_path / "pagerduty-junit.toml").write_text(
        """
        [[route]]
        service_id = "PWIXJZS"
        page_after_failures = 2
        """
    )


def test_page_after_failures_on_a_route_pages_on_the_second_failing_run(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    _counting_config(tmp_path)
    args = rest(pagerduty, "--state", tmp_path / "state.json")
    first = run(SAMPLES / "pytest.xml", *args, env=REST_ENV, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "failing 1 of 2 before paging: tests.test_checkout::test_refund_is_issued" in (
        first.stdout
    )
    assert first.stdout.count("failing 1 of 2 before paging: ") == 3
    assert "0 paged" in first.stdout and "3 counting" in first.stdout
    assert pagerduty.received == []

    second = run(SAMPLES / "pytest.xml", *args, env=REST_ENV, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "3 paged" in second.stdout
    assert "before paging" not in second.stdout
    assert len(pagerduty.incidents()) == 3

    # A pass resolves and starts the count over: the next failure waits again.
    green = run(_passing_report(tmp_path), *args, env=REST_ENV, cwd=tmp_path)
    assert "3 resolved" in green.stdout, green.stdout + green.stderr
    before = len(pagerduty.received)
    third = run(SAMPLES / "pytest.xml", *args, env=REST_ENV, cwd=tmp_path)
    assert third.stdout.count("failing 1 of 2 before paging: ") == 3
    assert len(pagerduty.received) == before


def _skipping_report(tmp_path: Path) -> Path:
    """The pytest report of a later run that skipped every failing case."""
    text = (SAMPLES / "pytest.xml").read_text()
    for tag in ("failure", "error"):
        while f"<{tag} " in text:
            start = text.index(f"<{tag} ")
            end = text.index(f"</{tag}>", start) + len(f"</{tag}>")
            text = text[:start] + '<skipped type="pytest.skip" message="later" />' + text[end:]
    report = tmp_path / "skipped.xml"
    report.write_text(text)
    return report


def test_a_missing_or_skipped_case_keeps_its_count_and_a_pass_starts_it_over(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """As the issue says, and the Python host does: only a pass resets."""
    _counting_config(tmp_path)
    args = rest(pagerduty, "--state", tmp_path / "state.json")
    assert run(SAMPLES / "pytest.xml", *args, env=REST_ENV, cwd=tmp_path).returncode == 0
    # A run whose reports do not have the cases (another job's), then one
    # that skips them: the count is kept.
    assert run(SAMPLES / "nextest.xml", *args, env=REST_ENV, cwd=tmp_path).returncode == 0
    skipped = run(_skipping_report(tmp_path), *args, env=REST_ENV, cwd=tmp_path)
    assert "7 cases, 0 failed" in skipped.stdout, skipped.stdout + skipped.stderr
    assert not [r for r in pagerduty.received if "test_" in json.dumps(r.body)]
    again = run(SAMPLES / "pytest.xml", *args, env=REST_ENV, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "before paging" not in again.stdout
    assert "3 paged" in again.stdout
    assert len(pagerduty.incidents()) == 3  # nextest's cases count toward 2 too

    # A pass before the count is reached starts it over too.
    other = tmp_path / "other-state.json"
    args = rest(pagerduty, "--state", other)
    assert run(SAMPLES / "pytest.xml", *args, env=REST_ENV, cwd=tmp_path).returncode == 0
    assert run(_passing_report(tmp_path), *args, env=REST_ENV, cwd=tmp_path).returncode == 0
    third = run(SAMPLES / "pytest.xml", *args, env=REST_ENV, cwd=tmp_path)
    assert third.stdout.count("failing 1 of 2 before paging: tests.") == 3


REFUND = "tests.test_checkout::test_refund_is_issued"
WAREHOUSE = "tests.test_inventory::test_warehouse_sync"
UNICODE = "tests.test_inventory::test_sku_names_are_unicode"


def test_a_corrupt_count_in_the_state_file_is_no_count_and_the_others_page(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {"open": {}, "failing": {REFUND: -1, digest(WAREHOUSE): "two", digest(UNICODE): 1}}
        )
    )
    args = rest(pagerduty, SAMPLES / "pytest.xml", "--service-id", "PWIXJZS", "--state", state)
    result = run(*args, "--page-after-failures", "2", env=REST_ENV)
    assert result.returncode == 0, result.stderr
    assert f"failing 1 of 2 before paging: {REFUND}" in result.stdout
    assert f"failing 1 of 2 before paging: {WAREHOUSE}" in result.stdout
    (incident,) = pagerduty.incidents()
    assert "test_sku_names_are_unicode" in incident["title"]
    counts = json.loads(state.read_text())["failing"]
    assert counts == {digest(REFUND): 1, digest(WAREHOUSE): 1, digest(UNICODE): 2}


def test_an_old_state_files_raw_case_ids_are_read_and_kept_as_digests(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """The count is kept by a digest of the case id, as the Python host keeps
    it (an id may hold a secret); a file that holds raw ids is still read."""
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"open": {}, "failing": {REFUND: 1}}))
    args = rest(pagerduty, SAMPLES / "pytest.xml", "--service-id", "PWIXJZS", "--state", state)
    result = run(*args, "--page-after-failures", "2", env=REST_ENV)
    assert result.returncode == 0, result.stderr
    (incident,) = pagerduty.incidents()
    assert "test_refund_is_issued" in incident["title"]
    counts = json.loads(state.read_text())["failing"]
    assert counts == {digest(REFUND): 2, digest(WAREHOUSE): 1, digest(UNICODE): 1}
    assert "tests." not in json.dumps(counts)


def test_page_after_failures_that_is_not_a_number_says_so_in_one_line(
    pagerduty: FakePagerDuty,
) -> None:
    env = {**REST_ENV, "PAGERDUTY_PAGE_AFTER_FAILURES": "two"}
    result = run(SAMPLES / "pytest.xml", *rest(pagerduty, "--service-id", "PWIXJZS"), env=env)
    assert result.returncode == 2
    assert result.stderr == (
        'pagerduty-junit: PAGERDUTY_PAGE_AFTER_FAILURES="two" is not a whole number of runs; '
        "set it to 2 to page once a case has failed in 2 runs in a row\n"
    )
    assert pagerduty.received == []


@pytest.mark.parametrize("spelled", ["flag", "env"])
def test_page_after_failures_as_a_setting(
    pagerduty: FakePagerDuty, tmp_path: Path, spelled: str
) -> None:
    args = rest(pagerduty, SAMPLES / "pytest.xml", "--service-id", "PWIXJZS")
    args += ["--state", tmp_path / "state.json"]
    env = dict(REST_ENV)
    if spelled == "flag":
        args += ["--page-after-failures", "3"]
    else:
        env["PAGERDUTY_PAGE_AFTER_FAILURES"] = "3"
    for n in (1, 2):
        result = run(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count(f"failing {n} of 3 before paging: ") == 3
    assert pagerduty.received == []
    assert "3 paged" in run(*args, env=env).stdout
    assert len(pagerduty.incidents()) == 3


def test_a_routes_runbook_url_is_a_link_on_its_alerts(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    runbook = "https://wiki.example.com/runbooks/checkout"
    (tmp_path / "pagerduty-junit.toml").write_text(
        f"""
        [[route]]
        routing_key_env = "CHECKOUT_ROUTING_KEY"
        runbook_url = "{runbook}"
        """
    )
    env = {"CHECKOUT_ROUTING_KEY": ROUTING_KEY}
    args = ["--events-url", pagerduty.url, "--allow-host", authority(pagerduty)]
    result = run(SAMPLES / "jest-junit.xml", *args, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = pagerduty.events()
    assert len(events) == 3
    assert all({"href": runbook, "text": "Runbook"} in e["links"] for e in events)


@pytest.mark.parametrize(
    ("route", "says"),
    [
        ('runbook_url = "http://wiki.example.com/r"', "runbook_url must be an https:// URL"),
        ("page_after_failures = 0", "page_after_failures=0 is out of range"),
        ('page_after_failures = "2"', "page_after_failures must be a whole number, got str"),
    ],
    ids=["runbook-not-https", "page-after-zero", "page-after-text"],
)
def test_a_routes_new_keys_are_checked_as_a_markers(
    pagerduty: FakePagerDuty, tmp_path: Path, route: str, says: str
) -> None:
    (tmp_path / "pagerduty-junit.toml").write_text(f'[[route]]\nservice_id = "PWIXJZS"\n{route}\n')
    result = run(SAMPLES / "pytest.xml", *rest(pagerduty), env=REST_ENV, cwd=tmp_path)
    assert result.returncode == 2
    assert "route 1 (every case)" in result.stderr
    assert says in result.stderr
    assert pagerduty.received == []


def test_a_case_named_twice_in_a_run_is_triggered_once(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """Two reports naming the same cases (or one naming a case twice): each
    case is decided once, a failure anywhere winning; it pages once, takes one
    slot of the cap, and gets no note on the incident it just opened."""
    state = tmp_path / "state.json"
    leg = tmp_path / "leg.xml"
    leg.write_text((SAMPLES / "pytest.xml").read_text())
    args = rest(pagerduty, "--service-id", "PWIXJZS", "--max-incidents", "3", "--state", state)
    result = run(SAMPLES / "pytest.xml", leg, *args, env=REST_ENV)
    assert result.returncode == 0, result.stderr
    assert "7 cases, 3 failed; 3 paged, 0 already open" in result.stdout
    assert [r.path for r in pagerduty.received] == ["/incidents"] * 3
    assert not any("more tests failed" in i["title"] for i in pagerduty.incidents())
    assert pagerduty.all_notes() == {}

    # Twice in one report: a pass then a failure, and a failure twice.
    twice = tmp_path / "twice.xml"
    twice.write_text(
        """<testsuite name="s">
        <testcase classname="shop.cart" name="test_total"/>
        <testcase classname="shop.cart" name="test_total"><failure message="second"/></testcase>
        <testcase classname="shop.cart" name="test_tax"><failure message="once"/></testcase>
        <testcase classname="shop.cart" name="test_tax"><failure message="again"/></testcase>
        </testsuite>"""
    )
    before = len(pagerduty.received)
    result = run(twice, *args, "--resolve", "always", env=REST_ENV)
    assert result.returncode == 0, result.stderr
    assert "2 cases, 2 failed; 2 paged, 0 already open, 0 resolved" in result.stdout
    sent = pagerduty.received[before:]
    assert [(r.method, r.path) for r in sent] == [("POST", "/incidents")] * 2
    # Each with its first failure's text.
    titles = sorted(r.body["incident"]["title"].split(": ", 1)[1] for r in sent)
    assert titles == ["test_tax: once", "test_total: second"]


def test_a_secret_in_a_case_id_is_redacted_in_every_line_and_never_kept_raw(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    case_id = f"shop.api::test_login[{API_KEY}]"
    shown = "shop.api::test_login[[redacted]]"
    report = tmp_path / "login.xml"
    report.write_text(
        f"""<testsuite name="shop"><testcase classname="shop.api" name="test_login[{API_KEY}]">
        <failure message="boom"/></testcase></testsuite>"""
    )
    args = rest(pagerduty, report, "--service-id", "PWIXJZS", "--state", state)
    args += ["--page-after-failures", "2"]
    outputs = []

    def again() -> str:
        result = run(*args, env=REST_ENV)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
        return result.stdout

    assert f"failing 1 of 2 before paging: {shown}\n" in again()
    assert API_KEY not in state.read_text()
    assert json.loads(state.read_text())["failing"] == {digest(case_id): 1}
    assert "1 paged" in again()
    (incident_id,) = pagerduty.open_incidents.values()
    assert f"Noted: {shown} failed again (incident {incident_id})" in again()

    # The incident holds as many notes as this command adds: a line says why none.
    remembered = json.loads(state.read_text())
    (alert,) = remembered["open"].values()
    alert["notes"] = 1000
    state.write_text(json.dumps(remembered))
    skipped = [line for line in again().splitlines() if line.startswith("not noted: ")]
    assert len(skipped) == 1 and skipped[0].endswith(f": {shown}"), skipped

    # A note PagerDuty refuses (the remembered incident is gone) is a line too.
    alert.update(notes=0, incident_id="QGONE00")
    state.write_text(json.dumps(remembered))
    refused = [line for line in again().splitlines() if line.startswith("not noted: ")]
    assert len(refused) == 1 and refused[0].startswith(f"not noted: {shown}: "), refused
    assert not any(API_KEY in output for output in outputs)


def test_an_incident_remembered_under_another_key_is_not_noted(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """The state remembers an incident opened with another key (the route
    changed since): a repeat failure under this key notes its own incident,
    found by key, and the other keeps no note and no count."""
    state = tmp_path / "state.json"
    args = rest(pagerduty, SAMPLES / "pytest.xml", "--service-id", "PWIXJZS", "--state", state)
    assert run(*args, env=REST_ENV).returncode == 0
    remembered = json.loads(state.read_text())
    refund = remembered["open"][REFUND]
    own_key, own_incident = refund["dedup_key"], refund["incident_id"]
    other_incident = pagerduty.open_incident("PWIXJZS", "pytest-another-route")
    refund.update(dedup_key="pytest-another-route", incident_id=other_incident, notes=7)
    state.write_text(json.dumps(remembered))

    result = run(*args, env=REST_ENV)
    assert result.returncode == 0, result.stderr
    notes = pagerduty.all_notes()
    assert other_incident not in notes
    assert len(notes[own_incident]) == 1
    lookups = [r for r in pagerduty.received if r.method == "GET"]
    assert len(lookups) == 1 and lookups[0].query["incident_key"] == [own_key]
    now = json.loads(state.read_text())["open"][REFUND]
    assert now == {"dedup_key": own_key, "incident_id": own_incident, "notes": 1}


def test_an_alert_sent_again_keeps_no_old_incident_or_notes(
    pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    """PagerDuty accepting a trigger (an Events alert, or a REST incident
    created) is a new alert: no incident id or notes count of the one before."""
    state = tmp_path / "state.json"
    args: list[str | Path] = ["--events-url", pagerduty.url, "--allow-host", authority(pagerduty)]
    args += ["--state", state]
    env = {"PAGERDUTY_ROUTING_KEY": ROUTING_KEY}
    assert run(SAMPLES / "pytest.xml", *args, env=env).returncode == 0
    remembered = json.loads(state.read_text())
    for alert in remembered["open"].values():
        alert.update(incident_id="Q0LD000", notes=5)
    state.write_text(json.dumps(remembered))
    result = run(SAMPLES / "pytest.xml", *args, env=env)
    assert result.returncode == 0, result.stderr
    alerts = json.loads(state.read_text())["open"]
    assert len(alerts) == 3
    assert all((a["incident_id"], a["notes"]) == (None, 0) for a in alerts.values()), alerts
