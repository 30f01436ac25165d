"""Loads the embedded component with wasmtime and calls its exports.

The component gets wasi-http and nothing else: no preopened directories, no
environment, no arguments. Compiled code is cached on disk, keyed by the
wasm's digest and the wasmtime version, so later runs skip compilation.

`Pager` is one instance in its own Store with the run's `pager` resource in
it; every call is typed by the mirrors in `wit.py`. A trap leaves the
instance dead (`WasmtimeError` is raised): the caller opens a new `Pager`.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import wasmtime
from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Func, Linker, Record

from . import type_cache, wit
from .embedded import cache_dir, prune, wasm_bytes, wasm_digest
from .lowering import lift, lower, marker_arguments, result

log = logging.getLogger("pytest_pagerduty")

INTERFACE = "pytest-pagerduty:alerts/incidents@0.4.0"
FUNCTIONS = (
    "[static]pager.open",
    "[method]pager.state",
    "[method]pager.dry-run",
    "[method]pager.check-marker",
    "[method]pager.preflight",
    "[method]pager.trigger",
    "[method]pager.repeat",
    "[method]pager.resolve",
    "[method]pager.aggregate",
    "[method]pager.fallback",
    "[method]pager.deny",
    "[method]pager.send",
    "[method]pager.decide",
    "[method]marker.options",
    "ci-variables",
    "secret-arguments",
    "failure-text-limit",
    "classify-reply",
)


@dataclass(frozen=True)
class Loaded:
    """The compiled component, shared by every thread's instance."""

    engine: Engine
    component: Component
    linker: Linker
    from_cache: bool


def _compile(engine: Engine, wasm: bytes) -> tuple[Component, bool]:
    digest = wasm_digest()
    version = importlib.metadata.version("wasmtime")
    path = cache_dir() / f"{digest}-wasmtime-{version}.cwasm"
    prune(path, "*.cwasm")
    if path.is_file():
        try:
            return Component.deserialize_file(engine, str(path)), True
        except wasmtime.WasmtimeError as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.debug("compiled component cache %s unusable (%s); recompiling", path, reason)
    component = Component(engine, wasm)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent run never reads half a file;
        # a failed write (a full disk) leaves no temporary file behind.
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            try:
                tmp.write(component.serialize())
                tmp.close()
                os.replace(tmp.name, path)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp.name)
    except OSError as err:
        log.debug("could not cache the compiled component in %s: %s", path, err)
    return component, False


_loaded: Loaded | None = None
_load_lock = threading.Lock()


def load() -> Loaded:
    """Compiles (or loads from cache) the component once per process."""
    global _loaded
    with _load_lock:
        if _loaded is None:
            type_cache.install()
            engine = Engine()
            component, from_cache = _compile(engine, wasm_bytes())
            linker = Linker(engine)
            linker.add_wasip2()
            linker.add_wasi_http()
            _loaded = Loaded(engine, component, linker, from_cache)
            log.debug("component loaded (%s)", "from cache" if from_cache else "compiled")
        return _loaded


class Instance:
    """One instance of the component in its own Store: use it from one thread."""

    def __init__(self, memory_limit_mib: int) -> None:
        loaded = load()
        store = Store(loaded.engine)
        # Both are required: without them the first WASI call aborts the process.
        store.set_wasi(WasiConfig())
        store.set_wasi_http()
        # A guest past this traps (and is replaced) instead of eating the machine.
        store.set_limits(memory_size=memory_limit_mib * 1024 * 1024)
        instance = loaded.linker.instantiate(store, loaded.component)
        interface = loaded.component.get_export_index(INTERFACE)
        funcs: dict[str, Func] = {}
        for name in FUNCTIONS:
            index = loaded.component.get_export_index(name, interface)
            func = instance.get_func(store, index) if index is not None else None
            if func is None:
                raise RuntimeError(f"the embedded component does not export {name}")
            funcs[name] = type_cache.own(func)
        self.store, self._funcs = store, funcs
        self.dead = False

    def call(self, name: str, *args: Any) -> Any:
        """Calls an export with wasmtime-py values."""
        if self.dead:
            raise RuntimeError("the component instance trapped earlier; open a new one")
        func = self._funcs[name]
        try:
            result = func(self.store, *args)
            func.post_return(self.store)
        except wasmtime.WasmtimeError:
            self.dead = True
            raise
        return result

    def ci_variables(self) -> list[str]:
        names: list[str] = self.call("ci-variables")
        return names

    def secret_arguments(self) -> list[str]:
        names: list[str] = self.call("secret-arguments")
        return names

    def failure_text_limit(self) -> int:
        """The most UTF-8 bytes of each text of a `TestFailure` the component takes."""
        limit: int = self.call("failure-text-limit")
        return limit

    def classify_reply(
        self, kind: wit.RequestKind, status: int, headers: Sequence[wit.ReplyHeader], body: str
    ) -> wit.Delivered | wit.DeliveryFailure:
        reply = self.call("classify-reply", kind, status, lower(tuple(headers)), body)
        return lift(reply, result(wit.Delivered, wit.DeliveryFailure))  # type: ignore[no-any-return]


class Marker(wit.Handle):
    """A marker the pager accepted."""


class Pager(wit.Handle):
    """The run's `pager` resource and the instance it lives in."""

    def __init__(self, instance: Instance, resource: object) -> None:
        super().__init__(resource)
        self.instance = instance
        self._markers: dict[str, Marker | wit.MarkerError] = {}

    @classmethod
    def open(
        cls, settings: wit.Settings, memory_limit_mib: int, state: wit.PagerState | None = None
    ) -> Pager | wit.SettingsError:
        """A fresh instance and a pager for these settings (carrying over what
        an earlier pager of the run learnt), or why not."""
        instance = Instance(memory_limit_mib)
        opened = instance.call("[static]pager.open", lower(settings), lower(state))
        if isinstance(opened, Record):  # the ok arm is a resource: untagged
            return lift(opened, wit.SettingsError)  # type: ignore[no-any-return]
        return cls(instance, opened)

    @property
    def dead(self) -> bool:
        return self.instance.dead

    def _call(self, name: str, *args: Any) -> Any:
        return self.instance.call(f"[method]pager.{name}", self.resource, *args)

    def state(self) -> wit.PagerState:
        return lift(self._call("state"), wit.PagerState)  # type: ignore[no-any-return]

    def dry_run(self) -> wit.DryRunReason | None:
        reason: wit.DryRunReason | None = self._call("dry-run")
        return reason

    def marker(
        self, arguments: Mapping[str, object], positional: int = 0
    ) -> Marker | wit.MarkerError:
        """The component's verdict on a marker; identical markers are asked once."""
        key = repr((sorted(arguments.items()), positional))
        if key not in self._markers:
            self._markers[key] = self.check_marker(marker_arguments(dict(arguments), positional))
        return self._markers[key]

    def check_marker(self, arguments: Sequence[wit.MarkerArgument]) -> Marker | wit.MarkerError:
        checked = self._call("check-marker", lower(tuple(arguments)))
        if isinstance(checked, Record):  # the ok arm is a resource: untagged
            return lift(checked, wit.MarkerError)  # type: ignore[no-any-return]
        return Marker(checked)

    def options(self, marker: Marker) -> wit.IncidentOptions:
        options = self.instance.call("[method]marker.options", marker.resource)
        return lift(options, wit.IncidentOptions)  # type: ignore[no-any-return]

    def preflight(self, marker: Marker) -> wit.DryRunReason | wit.BuildError | None:
        """Why the marker's requests would only be shown (None: they are sent),
        or what keeps them from being built."""
        answer = self._call("preflight", marker.resource)
        ok = Optional[wit.DryRunReason]
        return lift(answer, result(ok, wit.BuildError))  # type: ignore[no-any-return]

    def trigger(
        self,
        failure: wit.TestFailure,
        marker: Marker,
        severity: wit.Severity | None = None,
        failed_runs: int = 1,
    ) -> wit.Planned | wit.BuildError:
        answer = self._call("trigger", lower(failure), marker.resource, severity, failed_runs)
        return lift(answer, result(wit.Planned, wit.BuildError))  # type: ignore[no-any-return]

    def repeat(
        self,
        failure: wit.TestFailure,
        marker: Marker,
        incident_id: str | None,
        dedup_key: str | None,
        notes: int,
    ) -> wit.Repeat | wit.BuildError:
        """A note for a failure whose REST incident is already open, or why none."""
        args = (lower(failure), marker.resource, incident_id, dedup_key, notes)
        answer = self._call("repeat", *args)
        return lift(answer, result(wit.Repeat, wit.BuildError))  # type: ignore[no-any-return]

    def resolve(
        self,
        nodeid: str,
        marker: Marker,
        incident_id: str | None = None,
        dedup_key: str | None = None,
    ) -> wit.AlertRequest | wit.BuildError:
        answer = self._call("resolve", nodeid, marker.resource, incident_id, dedup_key)
        return lift(answer, result(wit.AlertRequest, wit.BuildError))  # type: ignore[no-any-return]

    def aggregate(self, held: Sequence[wit.Held], suite: str) -> list[wit.Aggregate]:
        answer = self._call("aggregate", lower(tuple(held)), suite)
        return [lift(item, wit.Aggregate) for item in answer]

    def fallback(
        self, failure: wit.TestFailure, reason: str, fix: str
    ) -> wit.AlertRequest | wit.BuildError:
        """The alert to the fallback routing key saying `failure` could not page."""
        answer = self._call("fallback", lower(failure), reason, fix)
        return lift(answer, result(wit.AlertRequest, wit.BuildError))  # type: ignore[no-any-return]

    def deny(self, request: wit.AlertRequest, reason: str) -> wit.Step:
        """The step for a request this host's allow-list refused unsent."""
        answer = self._call("deny", lower(request), reason)
        return lift(answer, wit.Step)  # type: ignore[no-any-return]

    def send(self, request: wit.AlertRequest, progress: wit.Progress | None) -> wit.Step:
        answer = self._call("send", lower(request), lower(progress))
        return lift(answer, wit.Step)  # type: ignore[no-any-return]

    def decide(
        self,
        request: wit.AlertRequest,
        progress: wit.Progress | None,
        status: int,
        headers: Sequence[wit.ReplyHeader],
        body: str,
    ) -> wit.Step:
        args = (lower(request), lower(progress), status, lower(tuple(headers)), body)
        return lift(self._call("decide", *args), wit.Step)  # type: ignore[no-any-return]
