"""Settings from options, ini files and the environment, in that order."""

from __future__ import annotations

import pytest

from fake_pagerduty import FakePagerDuty
from pytest_pagerduty.settings import SETTINGS

FAILING = """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_probe():
    assert False
"""


def sent_key(pagerduty: FakePagerDuty) -> str:
    """The credential the run's one create carried (a run after the first
    also notes the incident still open: the same credential)."""
    creates = [r for r in pagerduty.received if r.path == "/incidents" and r.method == "POST"]
    (request,) = creates
    assert {r.headers["authorization"] for r in pagerduty.received} == {
        request.headers["authorization"]
    }
    pagerduty.received.clear()
    return request.headers["authorization"]


def test_options_beat_ini_which_beats_the_environment(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(FAILING)
    monkeypatch.setenv("PAGERDUTY_API_KEY", "from-env")
    monkeypatch.setenv("PAGERDUTY_DEFAULT_FROM", "env@example.com")
    monkeypatch.setenv("PAGERDUTY_API_URL", pagerduty.url)
    pytester.runpytest_subprocess().assert_outcomes(failed=1)
    assert sent_key(pagerduty) == "Token token=from-env"

    pytester.makeini("[pytest]\npagerduty_api_key = from-ini\n")
    pytester.runpytest_subprocess().assert_outcomes(failed=1)
    assert sent_key(pagerduty) == "Token token=from-ini"

    pytester.runpytest_subprocess("--pagerduty_api_key=from-option").assert_outcomes(failed=1)
    assert sent_key(pagerduty) == "Token token=from-option"

    pytester.runpytest_subprocess("--pagerduty-api-key=dashed").assert_outcomes(failed=1)
    assert sent_key(pagerduty) == "Token token=dashed"


@pytest.mark.parametrize(
    ("filename", "section"),
    [
        ("pytest.ini", "[pytest]"),
        ("pyproject.toml", "[tool.pytest.ini_options]"),
        ("tox.ini", "[pytest]"),
        ("setup.cfg", "[tool:pytest]"),
    ],
)
def test_every_pytest_config_file_can_hold_the_settings(
    pytester: pytest.Pytester,
    pagerduty: FakePagerDuty,
    filename: str,
    section: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An ini file alone may not add a destination: the environment allows this one.
    monkeypatch.setenv("PAGERDUTY_ALLOW_HOSTS", pagerduty.url.removeprefix("http://"))
    quote = '"' if filename == "pyproject.toml" else ""
    settings = {
        "pagerduty_api_url": pagerduty.url,
        "pagerduty_api_key": "file-key",
        "pagerduty_default_from": "file@example.com",
    }
    lines = [section] + [f"{k} = {quote}{v}{quote}" for k, v in settings.items()]
    (pytester.path / filename).write_text("\n".join(lines) + "\n")
    pytester.makepyfile(FAILING)
    pytester.runpytest_subprocess().assert_outcomes(failed=1)
    (request,) = pagerduty.received
    assert request.headers["authorization"] == "Token token=file-key"
    assert request.headers["from"] == "file@example.com"


def test_the_seed_environment_variables_work(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGERDUTY_API_KEY", "your_api_key")
    monkeypatch.setenv("PAGERDUTY_OAUTH_TOKEN", "your_oauth_token")
    monkeypatch.setenv("PAGERDUTY_DEFAULT_FROM", "your_business_email@example.com")
    pytester.makepyfile(FAILING)
    pytester.runpytest_subprocess(f"--pagerduty_api_url={pagerduty.url}").assert_outcomes(failed=1)
    (request,) = pagerduty.received
    # With both set, the API key is used (it is the one the From header goes with).
    assert request.headers["authorization"] == "Token token=your_api_key"
    assert request.headers["from"] == "your_business_email@example.com"


def test_help_lists_every_option_in_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    lines = result.stdout.lines
    start = lines.index("PagerDuty incidents for failing marked tests:")
    group = []
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break  # the next group
        group.append(line)
    options = [line.split()[0].rstrip(",") for line in group if line.startswith("  --")]
    assert options == [
        "--pagerduty_api_key=STRING",
        "--pagerduty_oauth_token=STRING",
        "--pagerduty_default_from=STRING",
        "--pagerduty_api_url=STRING",
        "--pagerduty_routing_key=STRING",
        "--pagerduty_fallback_routing_key=STRING",
        "--pagerduty_events_url=STRING",
        "--pagerduty_auto_resolve=[BOOL]",
        "--pagerduty_resolve=opened|always",
        "--pagerduty_flaky=ignore|info",
        "--pagerduty_max_incidents=COUNT",
        "--pagerduty_page_after_failures=COUNT",
        "--pagerduty_dry_run=[BOOL]",
        "--pagerduty_dry_run_file=PATH",
        "--pagerduty_page_on_error=[BOOL]",
        "--pagerduty_timeout=SECONDS",
        "--pagerduty_flush_timeout=SECONDS",
        "--pagerduty_max_attempts=COUNT",
        "--pagerduty_memory_limit=COUNT",
        "--pagerduty_outbox=PATH",
        "--pagerduty_auto_replay=[BOOL]",
        "--no-pagerduty",
        "--pagerduty_allow_host=HOST[:PORT]|URL",
        "--pagerduty_replay",
        "--pagerduty_drop_dead",
    ]
    assert "Environment: PAGERDUTY_API_KEY." in " ".join(" ".join(group).split())


def test_a_flag_given_false_on_the_command_line_overrides_the_ini_file(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty
) -> None:
    pytester.makeini("[pytest]\npagerduty_dry_run = true\n")
    pytester.makepyfile(FAILING)
    pytester.runpytest_subprocess(*pagerduty.options()).assert_outcomes(failed=1)
    assert pagerduty.received == []
    pytester.runpytest_subprocess(*pagerduty.options("--pagerduty_dry_run=false"))
    assert len(pagerduty.received) == 1


def test_help_shows_one_spelling_and_the_default_of_each_setting(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest_subprocess("--help")
    text = " ".join(result.stdout.str().split())  # argparse wraps lines
    for setting in SETTINGS:
        assert setting.option in text
        assert setting.dashed_option not in text  # it still works, unlisted
    assert text.count("Default: ") >= len(SETTINGS)
    assert "Default: 10." in text  # the timeout, and the cap
    assert "a dry run happens by itself when no API key, OAuth token or routing key is set" in text


def test_the_dashed_spelling_still_works(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest_subprocess("--pagerduty-timeout=nonsense")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pagerduty_timeout must be a number of seconds*"])


def test_ini_keys_have_their_real_types(pytester: pytest.Pytester) -> None:
    help_text = pytester.runpytest_subprocess("--help").stdout.str()
    assert "pagerduty_dry_run (bool):" in help_text
    # int and float exist since pytest 8.4; before, these stay strings.
    if tuple(int(p) for p in pytest.__version__.split(".")[:2]) >= (8, 4):
        assert "pagerduty_max_incidents (int):" in help_text
        assert "pagerduty_timeout (float):" in help_text
    pytester.makeini("[pytest]\npagerduty_max_incidents = many\n")
    pytester.makepyfile(FAILING)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*pagerduty: ini pagerduty_max_incidents must be a whole number: *many*"]
    )
