"""Faults the plugin survives: component traps, Ctrl-C, concurrent outbox
writers; and secrets that never leave the process."""

from __future__ import annotations

import json
import multiprocessing
import sys
from pathlib import Path

import pytest

from fake_pagerduty import API_KEY, FakePagerDuty
from pagerduty_api import error_reply
from pytest_pagerduty import wit
from pytest_pagerduty.outbox import Entry, Outbox

OUTBOX = Path(".pytest_cache", "d", "pagerduty", "outbox.jsonl")


def kept(pytester: pytest.Pytester) -> list[str]:
    """The nodeids of the outbox's entries, in the order they were kept."""
    lines = (pytester.path / OUTBOX).read_text().splitlines()
    return [json.loads(line)["failure"]["nodeid"] for line in lines]


# A test module whose every test pages.
MARKED_MODULE = """
import pytest

pytestmark = [pytest.mark.usefixtures("pagerduty_fixture"),
              pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")]
"""


def overloaded_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight large CI variables (120 kB each, near what one environment
    string may hold): with them, a failure whose texts are at the
    component's limit no longer fits in 4 MiB (a small one still does), so
    the guest traps while taking its arguments."""
    names = (
        "BUILDKITE_BRANCH",
        "BUILDKITE_BUILD_URL",
        "BUILDKITE_COMMIT",
        "BUILDKITE_LABEL",
        "CIRCLE_BRANCH",
        "CIRCLE_JOB",
        "GIT_BRANCH",
        "JOB_NAME",
    )
    for name in names:
        monkeypatch.setenv(name, "v" * 120_000)


def test_a_trap_in_the_component_keeps_the_incident_and_the_run_goes_on(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    overloaded_ci(monkeypatch)
    pytester.makepyfile(
        test_suite="""
import pytest

pytestmark = [pytest.mark.usefixtures("pagerduty_fixture"),
              pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")]

def test_huge():
    assert False, "y" * (8 * 1024 * 1024)

test_huge.__doc__ = "x" * (8 * 1024 * 1024)

def test_small():
    assert False
"""
    )
    result = pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_memory_limit=4"))
    result.assert_outcomes(failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "queued: test_suite.py::test_huge: the component failed: WasmtimeError*",
            "created #1001: Test failed: test_small: assert False *",
            "PagerDuty: 1 created, 1 queued in *",
        ]
    )
    (entry,) = [json.loads(line) for line in (pytester.path / OUTBOX).read_text().splitlines()]
    assert entry["failure"]["nodeid"] == "test_suite.py::test_huge"
    assert [i["title"] for i in pagerduty.incidents()] == ["Test failed: test_small: assert False"]


def test_ctrl_c_during_the_run_keeps_what_was_not_confirmed(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(0, delay=3)
    pytester.makepyfile(
        test_suite="""
import os, signal
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_probe():
    assert False

def test_interrupt():
    os.kill(os.getpid(), signal.SIGINT)
"""
    )
    result = pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_flush_timeout=0.5"))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    result.stdout.fnmatch_lines(
        ["queued: test_suite.py::test_probe: not confirmed within pagerduty_flush_timeout (0.5 s)."]
    )
    lines = (pytester.path / OUTBOX).read_text().splitlines()
    assert [json.loads(line)["failure"]["nodeid"] for line in lines] == [
        "test_suite.py::test_probe"
    ]


def _append_many(path: str, writer: int, count: int) -> None:
    box = Outbox(Path(path))
    for n in range(count):
        failure = wit.TestFailure(
            f"test_{writer}.py::test_{n}", None, None, None, "E" * 5000, "call"
        )
        box.append(Entry.new(failure, {"service_id": "P1"}, 0, "test"))


def test_concurrent_runs_appending_to_one_outbox_never_corrupt_it(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(str(path), w, 40)) for w in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    journal = Outbox(path).read()
    assert journal.unreadable == []
    entries = list(journal.entries.values())
    assert len(entries) == 160
    assert len({e.id for e in entries}) == 160
    assert {e.failure.nodeid for e in entries} == {
        f"test_{w}.py::test_{n}" for w in range(4) for n in range(40)
    }


def test_removing_sent_entries_keeps_the_rest_and_moves_unreadable_lines_aside(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "outbox.jsonl")
    failure = wit.TestFailure("t.py::test_a", None, None, None, "tb", "call")
    first, second = (Entry.new(failure, {"service_id": "P1"}, 0, "r") for _ in range(2))
    box.append(first)
    with open(box.path, "a") as out:
        out.write("{half a line\n")
    box.append(second)
    assert box.remove({first.id}) == 1
    journal = box.read()
    assert list(journal.entries) == [second.id]
    assert journal.unreadable == []
    assert box.unreadable_path.read_bytes() == b"{half a line\n"


OAUTH = "oauth_Sekr3tT0ken_77"


def test_secrets_never_appear_in_anything_a_run_produces(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGERDUTY_OAUTH_TOKEN", OAUTH)
    for _ in range(2):
        pagerduty.reply(503, error_reply("Service Unavailable", 2000))
    pytester.makepyfile(
        test_suite="""
import logging, os
import pytest

pytestmark = [pytest.mark.usefixtures("pagerduty_fixture"),
              pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")]

def leak():
    # A failure that quotes the secrets: the incident and the outbox must not.
    secrets = os.environ["PAGERDUTY_API_KEY"][::-1], os.environ["PAGERDUTY_OAUTH_TOKEN"][::-1]
    raise AssertionError("leaked: " + " ".join(s[::-1] for s in secrets))

def test_kept():
    leak()

def test_created():
    leak()
"""
    )
    monkeypatch.setenv("PAGERDUTY_API_KEY", API_KEY)
    logged = [
        "--log-level=DEBUG",
        "--log-file=debug.log",
        "--log-file-level=DEBUG",
        "-o",
        "log_cli=true",
        "--log-cli-level=DEBUG",
        "--junitxml=junit.xml",
    ]
    sent = pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_max_attempts=2", *logged))
    sent.assert_outcomes(failed=2)
    dry = pytester.runpytest_subprocess(
        *pagerduty.options("--pagerduty_dry_run", "-p", "no:randomly")
    )
    dry.assert_outcomes(failed=2)

    # The test's own traceback shows the secrets (pytest prints it); what
    # the plugin writes must not. Cut pytest's report of that test out.
    outputs = [sent.stdout.str(), sent.stderr.str(), dry.stdout.str(), dry.stderr.str()]
    ours = [
        text.split("= FAILURES =")[0]
        + text.split("= PagerDuty =")[-1].split("short test summary info")[0]
        for text in outputs
    ]
    # Every file the runs left, but pytest's own records of the output
    # (checked above), the test file, and the two logs (checked below).
    skipped = {"junit.xml", "debug.log", "stdout", "stderr", "test_suite.py"}
    files = {
        p: p.read_text(errors="replace")
        for p in pytester.path.rglob("*")
        if p.is_file() and p.name not in skipped
    }
    assert OUTBOX.name in {p.name for p in files}
    assert "dry-run.json" in {p.name for p in files}
    for secret in (API_KEY, OAUTH):
        for text in ours:
            assert secret not in text
        for path, text in files.items():
            assert secret not in text, path
        created = [r for r in pagerduty.received if "leaked" in json.dumps(r.body)]
        assert created, "the failure quoting the secrets reached PagerDuty"
        for request in created:
            assert secret not in json.dumps(request.body)
    assert "leaked: [redacted] [redacted]" in json.dumps(created[0].body)
    for log_file in ("debug.log", "junit.xml"):
        # pytest records the test's own failure text there; nothing else may hold them.
        text = (pytester.path / log_file).read_text()
        assert text.count(API_KEY) == text.count("leaked: " + API_KEY), log_file
    (kept,) = [json.loads(line) for line in (pytester.path / OUTBOX).read_text().splitlines()]
    assert "leaked: [redacted] [redacted]" in kept["failure"]["traceback"]
    assert "pytest_pagerduty" in (pytester.path / "debug.log").read_text()


def test_ctrl_c_while_waiting_for_pagerduty_at_the_end_keeps_the_incident(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    import os
    import signal
    import subprocess
    import time

    pagerduty.reply(0, delay=8)
    pytester.makepyfile(
        test_suite="""
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_probe():
    assert False
"""
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *pagerduty.options("--pagerduty_flush_timeout=20")],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not pagerduty.received and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the run is now waiting for the held-back reply
    os.kill(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert "Traceback" not in err
    # The reason names the wait that really happened, not the flush timeout.
    assert (
        "queued: test_suite.py::test_probe: not confirmed: interrupted (Ctrl-C) after waiting "
        in out
    )
    lines = (pytester.path / OUTBOX).read_text().splitlines()
    assert [json.loads(line)["failure"]["nodeid"] for line in lines] == [
        "test_suite.py::test_probe"
    ]


def test_failures_past_the_cap_reach_the_outbox_once_each(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(429, error_reply("Rate Limit Exceeded", 2020), headers={"ratelimit-reset": "5"})
    pytester.makepyfile(
        test_suite="""
import pytest

pytestmark = [pytest.mark.usefixtures("pagerduty_fixture"),
              pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")]

@pytest.mark.parametrize("n", range(3))
def test_probe(n):
    assert False
"""
    )
    result = pytester.runpytest_subprocess(
        *pagerduty.options("--pagerduty_max_incidents=1", "--pagerduty_flush_timeout=1")
    )
    result.assert_outcomes(failed=3)
    assert sorted(kept(pytester)) == [f"test_suite.py::test_probe[{n}]" for n in range(3)]


def test_a_secret_in_a_test_id_stays_out_of_our_summary_warnings_and_outbox(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    for _ in range(2):
        pagerduty.reply(503, error_reply("Service Unavailable", 2000))
    pytester.makepyfile(
        test_suite=f"""
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
@pytest.mark.parametrize("key", ["{API_KEY}"])
def test_login(key):
    assert False
"""
    )
    result = pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_max_attempts=2"))
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    ours = output.split("= warnings summary =")[1].split("short test summary info")[0]
    assert "queued: Test failed: test_login[[redacted]]: assert False" in ours
    assert API_KEY not in ours
    assert API_KEY not in (pytester.path / OUTBOX).read_text()
    assert all(API_KEY not in json.dumps(r.body) for r in pagerduty.received)


def test_failures_in_an_aggregate_still_being_sent_at_the_flush_timeout_are_kept_once_each(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    # The first failure is created; the aggregate of the rest gets no answer
    # before the flush timeout: every one of them must be kept, once.
    pagerduty.reply(0)
    pagerduty.reply(0, delay=4)
    pytester.makepyfile(
        test_suite=MARKED_MODULE
        + """
@pytest.mark.parametrize("n", range(4))
def test_probe(n):
    assert False
"""
    )
    result = pytester.runpytest_subprocess(
        *pagerduty.options("--pagerduty_max_incidents=1", "--pagerduty_flush_timeout=1")
    )
    result.assert_outcomes(failed=4)
    assert sorted(kept(pytester)) == [f"test_suite.py::test_probe[{n}]" for n in range(1, 4)]
    result.stdout.fnmatch_lines(["PagerDuty: 1 created, 3 queued in *"])


def test_a_lone_surrogate_in_a_failure_neither_loses_it_nor_stops_the_others(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makepyfile(
        test_suite=MARKED_MODULE
        + '''
def test_odd():
    """Reads the file caf\\udce9 (a name decoded with surrogateescape)."""
    assert False

def test_plain():
    assert False
'''
    )
    result = pytester.runpytest_subprocess(*pagerduty.options())
    result.assert_outcomes(failed=2)
    incidents = {i["title"]: i["body"]["details"] for i in pagerduty.incidents()}
    assert sorted(incidents) == [
        "Test failed: test_odd: assert False",
        "Test failed: test_plain: assert False",
    ]
    odd = incidents["Test failed: test_odd: assert False"]
    assert odd.startswith("Reads the file caf\\udce9 (a name decoded with surrogateescape).")
    result.stdout.fnmatch_lines(["PagerDuty: 2 created"])


def test_after_a_trap_the_fresh_instance_keeps_the_runs_cap(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    # test_huge traps the component; the instance that replaces it must
    # still know the cap of 1 was reached.
    overloaded_ci(monkeypatch)
    pytester.makepyfile(
        test_suite=MARKED_MODULE
        + """
def test_a():
    assert False

def test_huge():
    assert False, "y" * (8 * 1024 * 1024)

test_huge.__doc__ = "x" * (8 * 1024 * 1024)

def test_b():
    assert False

def test_c():
    assert False
"""
    )
    result = pytester.runpytest_subprocess(
        *pagerduty.options("--pagerduty_memory_limit=4", "--pagerduty_max_incidents=1")
    )
    result.assert_outcomes(failed=4)
    titles = [i["title"] for i in pagerduty.incidents()]
    # Past the cap, test_b and test_c are held for the aggregate, never paged
    # one by one (as a fresh instance that forgot the count would). With this
    # much CI text the aggregate traps too: every one of them is kept.
    assert titles == ["Test failed: test_a: assert False"]
    assert kept(pytester) == [f"test_suite.py::test_{n}" for n in ("huge", "b", "c")]


def test_a_secret_in_the_markers_details_is_redacted_in_the_outbox(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pagerduty.reply(503, error_reply("Service Unavailable", 2000))
    pytester.makepyfile(
        test_suite=f"""
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(
    service_id="PWIXJZS", details="Log in with {API_KEY} and check the balance."
)
def test_balance():
    assert False
"""
    )
    result = pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_max_attempts=1"))
    result.assert_outcomes(failed=1)
    text = (pytester.path / OUTBOX).read_text()
    assert API_KEY not in text
    (entry,) = [json.loads(line) for line in text.splitlines()]
    assert entry["marker"]["details"] == "Log in with [redacted] and check the balance."
