"""The component costs nothing until needed, and compiles once per machine."""

from __future__ import annotations

from pathlib import Path

import pytest

REPORT_WASMTIME = """
import sys

def pytest_sessionfinish(session):
    with open("wasmtime-imported.txt", "w") as out:
        out.write(str("wasmtime" in sys.modules))
"""


def test_a_run_without_marked_tests_never_imports_wasmtime(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(REPORT_WASMTIME)
    pytester.makepyfile("def test_a(): assert False\ndef test_b(): pass\n")
    pytester.runpytest_subprocess().assert_outcomes(failed=1, passed=1)
    assert (pytester.path / "wasmtime-imported.txt").read_text() == "False"


def test_a_run_with_marked_tests_loads_it_to_check_them(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(REPORT_WASMTIME)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
        def test_ok():
            pass
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    assert (pytester.path / "wasmtime-imported.txt").read_text() == "True"


def test_the_compiled_component_is_cached_for_later_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh-cache"))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
        def test_ok():
            pass
        """
    )
    live_debug_log = ("-o", "log_cli=true", "--log-cli-level=DEBUG")
    first = pytester.runpytest_subprocess(*live_debug_log)
    first.stdout.fnmatch_lines(["*component loaded (compiled)*"])
    (cached,) = (tmp_path / "fresh-cache" / "pytest-pagerduty").glob("*.cwasm")
    assert cached.name.endswith(
        f"-wasmtime-{__import__('importlib.metadata').metadata.version('wasmtime')}.cwasm"
    )
    stamp = cached.stat().st_mtime_ns

    second = pytester.runpytest_subprocess(*live_debug_log)
    second.stdout.fnmatch_lines(["*component loaded (from cache)*"])
    assert cached.stat().st_mtime_ns == stamp


def test_a_corrupt_cache_entry_is_recompiled(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.usefixtures("pagerduty_fixture")
        @pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
        def test_fails():
            assert False
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(failed=1)
    (cached,) = (tmp_path / "cache" / "pytest-pagerduty").glob("*.cwasm")
    cached.write_bytes(b"not a compiled component")
    result = pytester.runpytest_subprocess("-o", "log_cli=true", "--log-cli-level=DEBUG")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*unusable*recompiling*",
            "*component loaded (compiled)*",
            "would open: Test failed: test_fails: assert False *",
        ]
    )
