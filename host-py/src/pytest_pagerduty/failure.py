"""Which reports page, and what the component is told about them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported when a test fails: green runs never pay for it
    from . import wit


def pages(report: pytest.TestReport, page_on_error: bool) -> bool:
    """Only a real failure pages: a failed call, or with the switch on, a
    failed setup or teardown (an error). Skips and xfails never do, nor an
    xpass that strict xfail turned into a failure."""
    if not report.failed or hasattr(report, "wasxfail"):
        return False
    if isinstance(report.longrepr, str) and report.longrepr.startswith("[XPASS(strict)]"):
        return False
    return report.when == "call" or page_on_error


def _failure_text(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str:
    """pytest's failure text; in full even when `--tb=line` or `--tb=no`
    shortened the report, since the incident is read without the terminal."""
    text = report.longreprtext
    if call.excinfo is not None and len(text.splitlines()) <= 1:
        return str(call.excinfo.getrepr(style="short", funcargs=False))
    return text


def describe(
    item: pytest.Item,
    report: pytest.TestReport,
    call: pytest.CallInfo[None],
    short_name: str | None,
    full: bool = True,
) -> wit.TestFailure:
    """The failure as the component is told it; without `full`, the crash
    message stands in for the traceback."""
    from . import wit

    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    doc = getattr(getattr(item, "obj", None), "__doc__", None)
    phase = report.when if report.when in ("setup", "call", "teardown") else "call"
    return wit.TestFailure(
        nodeid=item.nodeid,
        short_name=short_name,
        docstring=doc if isinstance(doc, str) else None,
        message=message,
        traceback=_failure_text(report, call) if full else (message or ""),
        phase=phase,
    )
