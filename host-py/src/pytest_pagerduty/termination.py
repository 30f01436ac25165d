"""SIGTERM (a CI job cancelled or timed out): stop politely. Every alert is
in the outbox already (written ahead), so the handler only says so, on the
real stderr, then lets the process die of the signal as pytest would.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest

_NONE = object()


class SigtermNotice:
    def __init__(self, config: pytest.Config, message: Callable[[], str | None]) -> None:
        self._config = config
        # Called in the handler: it must take no lock the main thread may hold.
        self._message = message
        self._previous: Any = _NONE
        self._stderr: int | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set a handler
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_IGN:
            return  # whoever ignores it keeps it ignored
        # The real stderr, not pytest's capture of it: the notice must
        # outlive a test's captured output, which dies with the process.
        capture = self._config.pluginmanager.getplugin("capturemanager")
        uncaptured = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
        with uncaptured:
            self._stderr = os.dup(2)
        self._previous = previous
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        with contextlib.suppress(Exception):
            text = self._message()
            if text and self._stderr is not None:
                os.write(self._stderr, (text + "\n").encode("utf-8", "backslashreplace"))
        previous = self._previous
        self.restore()
        if callable(previous):
            previous(signum, frame)
        else:  # the default, or a handler set outside Python: die of the signal
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def restore(self) -> None:
        if self._previous is not _NONE:
            previous, self._previous = self._previous, _NONE
            # A handler set outside Python cannot be put back: the default.
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        if self._stderr is not None:
            with contextlib.suppress(OSError):
                os.close(self._stderr)
            self._stderr = None
