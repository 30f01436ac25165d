//! The PagerDuty component from Rust, sandboxed: the guest gets wasi-http and
//! nothing else (no preopened directories, no environment, no arguments), and
//! wasi-http only reaches allowed hosts, never waiting past a cap.

pub mod canonical;
pub mod junit;
pub mod routes;
pub mod sandbox;

use std::path::Path;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::Result;
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use sandbox::{Allowlist, Sandbox};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "alerts",
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::sync::io,
    },
    require_store_data_send: true,
});

pub use pytest_pagerduty::alerts::types::{
    Delivered, DeliveryFailure, MarkerArgument, MarkerError, MarkerValue, RejectionKind,
    ReplyHeader, RequestKind, Settings, SettingsError, Severity,
};

/// The component this crate was built with (build.rs compiles the guest).
pub const EMBEDDED_COMPONENT: &[u8] = include_bytes!(env!("PAGERDUTY_COMPONENT_WASM"));

/// One store's state: WASI with nothing granted, wasi-http, the sandbox.
pub struct State {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub sandbox: Sandbox,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.sandbox,
        }
    }
}

/// The compiled component, ready to instantiate.
pub struct Host {
    engine: Engine,
    component: Component,
    linker: Linker<State>,
}

impl Host {
    /// The component from a `.wasm` file.
    pub fn load(wasm: &Path) -> Result<Self> {
        let bytes = std::fs::read(wasm)
            .map_err(|e| wasmtime::Error::from(e).context(format!("reading {}", wasm.display())))?;
        Self::from_bytes(&bytes)
    }

    /// The component embedded in this binary.
    pub fn embedded() -> Result<Self> {
        Self::from_bytes(EMBEDDED_COMPONENT)
    }

    pub fn from_bytes(wasm: &[u8]) -> Result<Self> {
        let mut config = Config::new();
        // Compiled code is cached on disk (wasmtime's own cache, under the
        // user's cache folder): compiling takes seconds, loading milliseconds.
        // Without a usable cache folder it just compiles every time.
        if let Ok(cache) = wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
            config.cache(Some(cache));
        }
        let engine = Engine::new(&config)?;
        let component = Component::new(&engine, wasm)
            .map_err(|e| e.context("compiling the PagerDuty component"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        Ok(Self {
            engine,
            component,
            linker,
        })
    }

    /// A fresh instance whose requests go only where `allowlist` says.
    pub fn instance(&self, allowlist: Allowlist, timeout_cap: Duration) -> Result<Instance> {
        let state = State {
            table: ResourceTable::new(),
            // Nothing granted: no directories, environment or arguments.
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            sandbox: Sandbox {
                allowlist,
                timeout_cap,
                denied: Vec::new(),
            },
        };
        let mut store = Store::new(&self.engine, state);
        let alerts = Alerts::instantiate(&mut store, &self.component, &self.linker)?;
        Ok(Instance { store, alerts })
    }
}

/// One instance of the component and its store.
pub struct Instance {
    store: Store<State>,
    alerts: Alerts,
}

type Answer<T, E> = Result<std::result::Result<T, E>>;

impl Instance {
    /// The marker's options, as the JSON the builds take, or what is wrong.
    pub fn check_marker(
        &mut self,
        arguments: &[MarkerArgument],
        settings: &Settings,
    ) -> Answer<String, MarkerError> {
        let checked = self
            .alerts
            .pytest_pagerduty_alerts_incidents()
            .call_check_marker(&mut self.store, arguments, settings)?;
        Ok(checked.map(|o| canonical::options(&o).to_string()))
    }

    pub fn check_settings(&mut self, settings: &Settings) -> Answer<(), SettingsError> {
        self.alerts
            .pytest_pagerduty_alerts_incidents()
            .call_check_settings(&mut self.store, settings)
    }

    pub fn ci_variables(&mut self) -> Result<Vec<String>> {
        self.alerts
            .pytest_pagerduty_alerts_incidents()
            .call_ci_variables(&mut self.store)
    }

    pub fn build_trigger(
        &mut self,
        failure_json: &str,
        options_json: &str,
        settings_json: &str,
    ) -> Answer<String, SettingsError> {
        self.build_trigger_as(failure_json, options_json, settings_json, None)
    }

    /// `build_trigger` with the severity overridden (a flaky test as `info`).
    pub fn build_trigger_as(
        &mut self,
        failure_json: &str,
        options_json: &str,
        settings_json: &str,
        severity: Option<Severity>,
    ) -> Answer<String, SettingsError> {
        self.alerts
            .pytest_pagerduty_alerts_incidents()
            .call_build_trigger(
                &mut self.store,
                failure_json,
                options_json,
                settings_json,
                severity,
            )
    }

    pub fn build_resolve(
        &mut self,
        nodeid: &str,
        options_json: &str,
        settings_json: &str,
        incident_id: Option<&str>,
    ) -> Answer<String, SettingsError> {
        self.alerts
            .pytest_pagerduty_alerts_incidents()
            .call_build_resolve(
                &mut self.store,
                nodeid,
                options_json,
                settings_json,
                incident_id,
            )
    }

    pub fn aggregate_key(
        &mut self,
        options_json: &str,
        settings_json: &str,
        suite: &str,
    ) -> Answer<String, SettingsError> {
        self.alerts
            .pytest_pagerduty_alerts_incidents()
            .call_aggregate_key(&mut self.store, options_json, settings_json, suite)
    }

    pub fn build_aggregate(
        &mut self,
        failures_json: &str,
        suite: &str,
        options_json: &str,
        settings_json: &str,
    ) -> Answer<String, SettingsError> {
        self.alerts
            .pytest_pagerduty_alerts_incidents()
            .call_build_aggregate(
                &mut self.store,
                failures_json,
                suite,
                options_json,
                settings_json,
            )
    }

    pub fn send(&mut self, request_json: &str) -> Answer<Delivered, DeliveryFailure> {
        self.alerts
            .pytest_pagerduty_alerts_incidents()
            .call_send(&mut self.store, request_json)
    }

    pub fn classify_reply(
        &mut self,
        kind: RequestKind,
        status: u16,
        headers: &[ReplyHeader],
        body: &str,
    ) -> Answer<Delivered, DeliveryFailure> {
        self.alerts
            .pytest_pagerduty_alerts_incidents()
            .call_classify_reply(&mut self.store, kind, status, headers, body)
    }

    /// Every destination the sandbox refused so far.
    pub fn denied(&self) -> &[String] {
        &self.store.data().sandbox.denied
    }
}
