//! The PagerDuty component from Rust, sandboxed: the guest gets wasi-http and
//! nothing else (no preopened directories, no environment, no arguments), and
//! wasi-http only reaches allowed hosts, never waiting past a cap.

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
    Delivered, DeliveryFailure, MarkerArgument, MarkerError, MarkerValue, RejectionKind, Settings,
    SettingsError,
};

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
    pub fn load(wasm: &Path) -> Result<Self> {
        let engine = Engine::new(&Config::new())?;
        let component = Component::from_file(&engine, wasm)
            .map_err(|e| e.context(format!("loading the component {}", wasm.display())))?;
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

impl Instance {
    pub fn check_marker(
        &mut self,
        arguments: &[MarkerArgument],
        settings: &Settings,
    ) -> Result<std::result::Result<String, MarkerError>> {
        let api = self.alerts.pytest_pagerduty_alerts_incidents();
        let checked = api.call_check_marker(&mut self.store, arguments, settings)?;
        Ok(checked.map(|o| options_json(&o)))
    }

    pub fn build_trigger(
        &mut self,
        failure_json: &str,
        options_json: &str,
        settings_json: &str,
    ) -> Result<std::result::Result<String, SettingsError>> {
        let api = self.alerts.pytest_pagerduty_alerts_incidents();
        api.call_build_trigger(
            &mut self.store,
            failure_json,
            options_json,
            settings_json,
            None,
        )
    }

    pub fn send(
        &mut self,
        request_json: &str,
    ) -> Result<std::result::Result<Delivered, DeliveryFailure>> {
        let api = self.alerts.pytest_pagerduty_alerts_incidents();
        api.call_send(&mut self.store, request_json)
    }

    /// Every destination the sandbox refused so far.
    pub fn denied(&self) -> &[String] {
        &self.store.data().sandbox.denied
    }
}

/// The options `check-marker` returned, as the JSON the builds take.
fn options_json(o: &pytest_pagerduty::alerts::types::IncidentOptions) -> String {
    use pytest_pagerduty::alerts::types::{Severity, Urgency};
    serde_json::json!({
        "service_id": o.service_id,
        "routing_key": o.routing_key,
        "urgency": o.urgency.map(|u| match u { Urgency::High => "high", Urgency::Low => "low" }),
        "severity": o.severity.map(|s| match s {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }),
        "priority_id": o.priority_id,
        "escalation_policy_id": o.escalation_policy_id,
        "assignee_id": o.assignee_id,
        "dedup_key": o.dedup_key,
        "details": o.details,
    })
    .to_string()
}
