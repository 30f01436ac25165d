"""Where the plugin keeps its caches: where the platform expects
(`platformdirs`), pruned of other versions' files, and never left with a
half-written file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

FAILING_MARKED = """
import pytest

@pytest.mark.usefixtures("pagerduty_fixture")
@pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS")
def test_probe():
    assert False
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache: the compiled component is not there yet."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "pytest-pagerduty"


def test_files_of_other_versions_unused_for_a_week_are_pruned(
    pytester: pytest.Pytester, cache: Path
) -> None:
    cache.mkdir(parents=True)
    stale = [cache / "0123-wasmtime-49.0.0.cwasm", cache / "accepted-0123.txt"]
    recent = [cache / "4567-wasmtime-50.0.0.cwasm", cache / "accepted-4567.txt"]
    week_ago = time.time() - 8 * 24 * 3600
    for path in stale + recent:
        path.write_bytes(b"an older version's file")
    for path in stale:
        os.utime(path, (week_ago, week_ago))
    pytester.makepyfile(FAILING_MARKED)
    pytester.runpytest_subprocess("--pagerduty_dry_run").assert_outcomes(failed=1)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in recent)  # another installed version may still use them
    assert len(list(cache.glob("*.cwasm"))) == 2  # the recent one and this version's


def test_a_failed_write_of_the_compiled_component_leaves_no_temporary_file(
    pytester: pytest.Pytester, cache: Path
) -> None:
    # A real short write: files may not grow past 64 KiB in this run, and
    # the compiled component is about a megabyte.
    pytester.makeconftest(
        """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
"""
    )
    pytester.makepyfile(FAILING_MARKED)
    result = pytester.runpytest_subprocess("--pagerduty_dry_run", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["would open: Test failed: test_probe: assert False"])
    assert list(cache.glob("*.cwasm")) == []
    assert [p.name for p in cache.iterdir() if p.suffix == ".tmp"] == []
