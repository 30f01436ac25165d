"""Which reports page, and what the component is told about them."""

from __future__ import annotations

import pytest

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


def describe(
    item: pytest.Item, report: pytest.TestReport, short_name: str | None
) -> wit.TestFailure:
    crash = getattr(report.longrepr, "reprcrash", None)
    obj = getattr(item, "obj", None)
    doc = getattr(obj, "__doc__", None)
    phase = report.when if report.when in ("setup", "call", "teardown") else "call"
    return wit.TestFailure(
        nodeid=item.nodeid,
        short_name=short_name,
        docstring=doc if isinstance(doc, str) else None,
        message=getattr(crash, "message", None),
        traceback=report.longreprtext,
        phase=phase,
    )
