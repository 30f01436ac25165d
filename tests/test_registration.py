"""The plugin registers once whether autoloaded, named in a conftest, or -p."""

from __future__ import annotations

import pytest

from fake_pagerduty import FakePagerDuty

FAILING = """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_probe():
    assert False
"""


@pytest.mark.parametrize("how", ["entry point", "conftest", "-p", "conftest and -p"])
def test_every_way_of_loading_the_plugin_pages_once(
    pytester: pytest.Pytester, pagerduty: FakePagerDuty, how: str
) -> None:
    if "conftest" in how:
        pytester.makeconftest('pytest_plugins = ["pytest_pagerduty.plugin"]')
    extra = ["-p", "pytest_pagerduty.plugin"] if "-p" in how else []
    pytester.makepyfile(FAILING)
    result = pytester.runpytest_subprocess(*pagerduty.options(*extra))
    result.assert_outcomes(failed=1)
    assert "already registered" not in result.stderr.str()
    assert len(pagerduty.received) == 1


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester, pagerduty: FakePagerDuty) -> None:
    pytester.makepyfile(FAILING)
    pytester.runpytest_subprocess(*pagerduty.options()).assert_outcomes(failed=1)
    assert len(pagerduty.received) == 1  # on: it pages

    result = pytester.runpytest_subprocess(
        *pagerduty.options(),
        "-p",
        "no:pytest_pagerduty.plugin",
        "-W",
        "ignore::pytest.PytestUnknownMarkWarning",
    )
    # Off: its options are unknown, so pytest stops at the command line.
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = pytester.runpytest_subprocess(
        "-p", "no:pytest_pagerduty.plugin", "-W", "ignore::pytest.PytestUnknownMarkWarning"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'pagerduty_fixture' not found*"])
    assert "PagerDuty" not in result.stdout.str()
    assert len(pagerduty.received) == 1


def test_the_marker_is_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAILING)
    result = pytester.runpytest_subprocess("--strict-markers", "--pagerduty_dry_run")
    result.assert_outcomes(failed=1)
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.pagerduty_trigger_incident(service_id, *"])


SWITCHED_OFF = """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="not an id", urgancy="high")
def test_check():
    assert False
"""


@pytest.mark.parametrize(
    "how",
    [("--no-pagerduty",), ("-o", "pagerduty_enabled=false"), ("PAGERDUTY_ENABLED=false",)],
)
def test_switched_off_the_marker_and_fixture_stay_and_nothing_happens(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: tuple[str, ...]
) -> None:
    if how[0].startswith("PAGERDUTY_"):
        name, value = how[0].split("=")
        monkeypatch.setenv(name, value)
        how = ()
    monkeypatch.setenv("XDG_CACHE_HOME", str(pytester.path / "cache"))
    pytester.makepyfile(SWITCHED_OFF)
    # A bad marker would stop the run; switched off, it is not even checked.
    result = pytester.runpytest_subprocess("-W", "error", *how)
    result.assert_outcomes(failed=1)
    assert "PagerDuty" not in result.stdout.str()
    assert "Unknown pytest.mark" not in result.stdout.str()
    assert not (pytester.path / ".pytest_cache" / "d" / "pagerduty").exists()
    assert not (pytester.path / "cache").exists()  # no component loaded or checked


def test_the_command_names_its_version_and_says_pytest_options_may_follow() -> None:
    import subprocess
    import sys

    from pytest_pagerduty import __version__

    command = [sys.executable, "-m", "pytest_pagerduty"]
    shown = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == f"pytest-pagerduty {__version__}"
    assert __version__ == "2.0.0"
    helped = subprocess.run(
        [*command, "replay", "--help"], capture_output=True, text=True, check=True
    )
    assert "Any pytest option may follow" in helped.stdout
