"""Loads the embedded component with wasmtime and calls its exports.

The component gets wasi-http and nothing else: no preopened directories, no
environment, no arguments. Compiled code is cached on disk, keyed by the
wasm's digest and the wasmtime version, so later runs skip compilation.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import wasmtime
from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Func, Instance, Linker, Variant

from . import lowering, wit
from .embedded import cache_dir, wasm_bytes, wasm_digest
from .settings import Settings, component_fields

log = logging.getLogger("pytest_pagerduty")

INTERFACE = "pytest-pagerduty:alerts/incidents@0.1.0"
_FUNCTIONS = (
    "check-marker",
    "check-settings",
    "ci-variables",
    "build-trigger",
    "build-resolve",
    "aggregate-key",
    "build-aggregate",
    "send",
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
    if path.is_file():
        try:
            return Component.deserialize_file(engine, str(path)), True
        except wasmtime.WasmtimeError as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.debug("compiled component cache %s unusable (%s); recompiling", path, reason)
    component = Component(engine, wasm)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent run never reads half a file.
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(component.serialize())
        os.replace(tmp.name, path)
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
            engine = Engine()
            component, from_cache = _compile(engine, wasm_bytes())
            linker = Linker(engine)
            linker.add_wasip2()
            linker.add_wasi_http()
            _loaded = Loaded(engine, component, linker, from_cache)
            log.debug("component loaded (%s)", "from cache" if from_cache else "compiled")
        return _loaded


def _settings_record(settings: Settings) -> Any:
    return lowering.record(component_fields(settings))


def _settings_json(settings: Settings) -> str:
    fields = component_fields(settings)
    return json.dumps({name.replace("-", "_"): value for name, value in fields.items()})


class Alerts:
    """One instance of the component in its own Store: use it from one thread.

    A trap leaves an instance unusable; `Alerts` then makes a fresh one.
    """

    def __init__(self, memory_limit_mib: int) -> None:
        self._loaded = load()
        self._memory_limit = memory_limit_mib * 1024 * 1024
        self._instantiate()

    def _instantiate(self) -> None:
        store = Store(self._loaded.engine)
        # Both are required: without them the first WASI call aborts the process.
        store.set_wasi(WasiConfig())
        store.set_wasi_http()
        # A guest past this traps (and is replaced) instead of eating the machine.
        store.set_limits(memory_size=self._memory_limit)
        instance: Instance = self._loaded.linker.instantiate(store, self._loaded.component)
        interface = self._loaded.component.get_export_index(INTERFACE)
        funcs: dict[str, Func] = {}
        for name in _FUNCTIONS:
            index = self._loaded.component.get_export_index(name, interface)
            func = instance.get_func(store, index) if index is not None else None
            if func is None:
                raise RuntimeError(f"the embedded component does not export {name}")
            funcs[name] = func
        self._store, self._funcs = store, funcs

    def call(self, name: str, *args: Any) -> Any:
        """Calls an export with wasmtime-py values; the methods below type it."""
        func = self._funcs[name]
        try:
            result = func(self._store, *args)
            func.post_return(self._store)
        except wasmtime.WasmtimeError:
            self._instantiate()
            raise
        return result

    def check_marker(
        self, arguments: Mapping[str, object], positional: int, settings: Settings
    ) -> str | wit.MarkerError:
        """The accepted options as the JSON the builds take, or the error."""
        records = [lowering.marker_argument("", None) for _ in range(positional)]
        records += [lowering.marker_argument(name, value) for name, value in arguments.items()]
        result: Variant = self.call("check-marker", records, _settings_record(settings))
        if result.tag == "err":
            return lowering.marker_error(result.payload)
        return lowering.options_json(result.payload)

    def check_settings(self, settings: Settings) -> wit.SettingsError | None:
        result = self.call("check-settings", _settings_record(settings))
        return None if result is None else lowering.settings_error(result)

    def ci_variables(self) -> list[str]:
        names: list[str] = self.call("ci-variables")
        return names

    def _request(self, result: Any) -> wit.AlertRequest | wit.SettingsError:
        # Ok is a string (JSON), err a record: wasmtime-py returns them untagged.
        if isinstance(result, str):
            return lowering.request_from_json(result)
        return lowering.settings_error(result)

    def build_trigger(
        self,
        failure: wit.TestFailure,
        options: str,
        settings: Settings,
        severity: wit.Severity | None = None,
    ) -> wit.AlertRequest | wit.SettingsError:
        return self._request(
            self.call(
                "build-trigger",
                lowering.failure_json(failure),
                options,
                _settings_json(settings),
                severity,
            )
        )

    def build_resolve(
        self, nodeid: str, options: str, settings: Settings, incident_id: str | None
    ) -> wit.AlertRequest | wit.SettingsError:
        return self._request(
            self.call("build-resolve", nodeid, options, _settings_json(settings), incident_id)
        )

    def aggregate_key(self, options: str, settings: Settings, suite: str) -> str | None:
        """The key failures past the cap are grouped by; None without a destination."""
        result = self.call("aggregate-key", options, _settings_json(settings), suite)
        # Ok is a string, err a record: wasmtime-py returns them untagged.
        return result if isinstance(result, str) else None

    def build_aggregate(
        self, failures: list[wit.TestFailure], suite: str, options: str, settings: Settings
    ) -> wit.AlertRequest | wit.SettingsError:
        return self._request(
            self.call(
                "build-aggregate",
                lowering.failures_json(failures),
                suite,
                options,
                _settings_json(settings),
            )
        )

    def send(self, request: wit.AlertRequest) -> wit.Delivered | wit.DeliveryFailure:
        result = self.call("send", lowering.request_json(request))
        # Ok is a record, err a variant: wasmtime-py returns them untagged.
        if isinstance(result, Variant):
            return lowering.delivery_failure(result)
        return lowering.delivered(result)
