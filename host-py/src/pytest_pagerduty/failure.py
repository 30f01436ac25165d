"""Which reports page, and what the component is told about them.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
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


def _text(value: str) -> str:
    """Text that can cross to the component and be written as UTF-8: a lone
    surrogate (bytes a test decoded with `surrogateescape`, say) is shown as
    its escape rather than making the whole failure unsendable."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def source(path: Path | str, line: int | None) -> dict[str, Any]:
    """Where the test is written: an absolute path (the component makes it
    relative to the CI workspace) and its line from 1."""
    return {"path": _text(str(Path(path).absolute())), "line": line}


def _now_ms() -> int:
    return int(time.time() * 1000)


def describe(
    item: pytest.Item,
    report: pytest.TestReport,
    call: pytest.CallInfo[None],
    short_name: str | None,
    full: bool = True,
) -> dict[str, Any]:
    """The failure as the component is told it (the fields of its
    `test-failure` record; a dict, so a failing test never waits for the
    mirrors to import); without `full`, the crash message stands in for the
    traceback."""
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    doc = getattr(getattr(item, "obj", None), "__doc__", None)
    phase = report.when if report.when in ("setup", "call", "teardown") else "call"
    # `location` is pytest's (path from the rootdir, line from 0) of the test
    # function: for an inherited test, the base class's file, not the item's.
    where, line = item.location[0], item.location[1]
    return {
        "nodeid": _text(item.nodeid),
        "short_name": _text(short_name) if short_name is not None else None,
        "docstring": _text(doc) if isinstance(doc, str) else None,
        "message": _text(message) if isinstance(message, str) else None,
        "traceback": _text(_failure_text(report, call) if full else (message or "")),
        "phase": phase,
        "duration_seconds": float(report.duration or 0.0),
        "source": source(item.config.rootpath / where, _line(line)),
        "failed_at_ms": _now_ms(),
    }


def crashed(
    report: pytest.TestReport, short_name: str | None, phase: str, rootpath: Path
) -> dict[str, Any]:
    """The failure of a test whose xdist worker died running it, from the
    controller's crash report (there is no item, call or traceback)."""
    text = _text(report.longreprtext or "the worker running this test died")
    lines = text.splitlines()
    # xdist's report starts with the worker's platform line; the crash is named after it.
    message = next((line for line in lines if "crashed while running" in line), None)
    return {
        "nodeid": _text(report.nodeid),
        "short_name": _text(short_name) if short_name is not None else None,
        "docstring": None,
        "message": message or (lines[-1] if lines else None),
        "traceback": text,
        "phase": phase,
        "duration_seconds": float(report.duration or 0.0),
        "source": source(rootpath / report.location[0], _line(report.location[1])),
        "failed_at_ms": _now_ms(),
    }


def _line(lineno: object) -> int | None:
    return lineno + 1 if isinstance(lineno, int) else None


def to_wit(data: Mapping[str, Any]) -> wit.TestFailure:
    """A failure as `describe` (or the outbox) holds it, as the component's record."""
    from . import wit

    fields = dict(data)
    fields["ci"] = tuple(wit.Variable(**v) for v in fields.get("ci", ()))
    where = fields.get("source")
    fields["source"] = wit.SourceLocation(**where) if isinstance(where, dict) else None
    return wit.TestFailure(**fields)


ELLIPSIS = "…"


def _within(text: str, limit: int, keep_end: bool = False) -> str:
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    room = max(0, limit - len(ELLIPSIS.encode()))
    if keep_end:
        return ELLIPSIS + data[len(data) - room :].decode("utf-8", "ignore")
    return data[:room].decode("utf-8", "ignore") + ELLIPSIS


def within_limit(failure: wit.TestFailure, limit: int) -> wit.TestFailure:
    """The failure with each text at most `limit` UTF-8 bytes, the limit the
    component states (`failure-text-limit`): the end of the traceback (where
    the assertion is), the start of every other text. A 20 MB message then
    costs the component nothing, and the outbox holds no more than it can send."""
    from dataclasses import replace

    def start(text: str | None) -> str | None:
        return None if text is None else _within(text, limit)

    return replace(
        failure,
        nodeid=_within(failure.nodeid, limit),
        short_name=start(failure.short_name),
        docstring=start(failure.docstring),
        message=start(failure.message),
        traceback=_within(failure.traceback, limit, keep_end=True),
        ci=tuple(replace(v, value=_within(v.value, limit)) for v in failure.ci),
        host=_within(failure.host, limit),
        source=failure.source and replace(failure.source, path=_within(failure.source.path, limit)),
    )
