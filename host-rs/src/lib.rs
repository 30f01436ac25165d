//! The PagerDuty component from Rust, sandboxed: the guest gets wasi-http and
//! nothing else (no preopened directories, no environment, no arguments), and
//! wasi-http only reaches allowed hosts, never waiting past a cap.

pub mod canonical;
pub mod junit;
pub mod routes;
pub mod sandbox;

use std::path::Path;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
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

pub use exports::pytest_pagerduty::alerts::incidents::Planned;
pub use pytest_pagerduty::alerts::types::{
    Aggregate, AlertRequest, Api, BuildError, Counting, Delivered, DeliveryFailure, DryRunReason,
    GaveUp, Header, IncidentOptions, MarkerArgument, MarkerError, MarkerValue, PagerState,
    PagerdutyError, Phase, Progress, Rejection, RejectionKind, Repeat, ReplyHeader, RequestKind,
    Retry, Setting, Settings, SettingsError, Severity, SourceLocation, Step, StopScope, StoppedApi,
    TestFailure, Urgency, Variable, Wait,
};

/// The component this crate was built with (build.rs compiles the guest).
pub const EMBEDDED_COMPONENT: &[u8] = include_bytes!(env!("PAGERDUTY_COMPONENT_WASM"));

/// The longest start of `text` within `limit` bytes that ends on a character.
fn head(text: &mut String, limit: usize) {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// `failure` with each text within `limit` UTF-8 bytes
/// (`Instance::failure_text_limit`), so no failure can trap the component:
/// the traceback keeps its end, where the assertion is; the others their start.
pub fn cut_failure(mut failure: TestFailure, limit: u32) -> TestFailure {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let f = &mut failure;
    for text in [&mut f.nodeid, &mut f.host]
        .into_iter()
        .chain(
            [&mut f.short_name, &mut f.docstring, &mut f.message]
                .into_iter()
                .flatten(),
        )
        .chain(f.ci.iter_mut().map(|v| &mut v.value))
        .chain(f.source.iter_mut().map(|s| &mut s.path))
    {
        head(text, limit);
    }
    if f.traceback.len() > limit {
        let mut start = f.traceback.len() - limit;
        while !f.traceback.is_char_boundary(start) {
            start += 1;
        }
        f.traceback.drain(..start);
    }
    failure
}

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

/// A call's answer: the outer error is a trap (the instance is dead
/// afterwards), the inner one the component's own refusal.
pub type Answer<T, E> = Result<std::result::Result<T, E>>;

type Incidents = exports::pytest_pagerduty::alerts::incidents::Guest;

impl Instance {
    fn parts(&mut self) -> (&mut Store<State>, &Incidents) {
        (
            &mut self.store,
            self.alerts.pytest_pagerduty_alerts_incidents(),
        )
    }

    /// Checks the settings and opens one run's pager with them.
    pub fn open(&mut self, settings: &Settings) -> Answer<Pager<'_>, SettingsError> {
        self.reopen(settings, None)
    }

    /// A pager that goes on from what an earlier one of the same run learnt
    /// (`Pager::state`): after a trap, the cap and the stopped APIs hold.
    pub fn reopen(
        &mut self,
        settings: &Settings,
        state: Option<&PagerState>,
    ) -> Answer<Pager<'_>, SettingsError> {
        let (store, incidents) = self.parts();
        let opened = incidents.pager().call_open(store, settings, state)?;
        Ok(opened.map(|handle| Pager {
            instance: self,
            handle,
            markers: Vec::new(),
        }))
    }

    /// The environment variables the component wants in `TestFailure::ci`.
    pub fn ci_variables(&mut self) -> Result<Vec<String>> {
        let (store, incidents) = self.parts();
        incidents.call_ci_variables(store)
    }

    /// Marker arguments whose values are secrets.
    pub fn secret_arguments(&mut self) -> Result<Vec<String>> {
        let (store, incidents) = self.parts();
        incidents.call_secret_arguments(store)
    }

    /// The most UTF-8 bytes of each text of a `TestFailure` the component
    /// takes: cut longer text before a call (`cut_failure`).
    pub fn failure_text_limit(&mut self) -> Result<u32> {
        let (store, incidents) = self.parts();
        incidents.call_failure_text_limit(store)
    }

    /// What one reply means, without deciding anything.
    pub fn classify_reply(
        &mut self,
        kind: RequestKind,
        status: u16,
        headers: &[ReplyHeader],
        body: &str,
    ) -> Answer<Delivered, DeliveryFailure> {
        let (store, incidents) = self.parts();
        incidents.call_classify_reply(store, kind, status, headers, body)
    }

    /// Every destination the sandbox refused so far.
    pub fn denied(&self) -> &[String] {
        &self.store.data().sandbox.denied
    }
}

/// A marker (or route) the component accepted. Valid as long as the pager
/// that checked it: the pager drops its markers when it is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker(ResourceAny);

/// A failure held past the run's cap, and the marker it pages with.
#[derive(Debug, Clone)]
pub struct Held {
    pub failure: TestFailure,
    pub marker: Marker,
}

/// One run's PagerDuty engine inside an instance: the checked settings, the
/// count of alerts paged and the APIs a refusal stopped.
pub struct Pager<'i> {
    instance: &'i mut Instance,
    handle: ResourceAny,
    markers: Vec<ResourceAny>,
}

impl Drop for Pager<'_> {
    fn drop(&mut self) {
        // After a trap the instance refuses every call: nothing to release then.
        for marker in self.markers.drain(..) {
            let _ = marker.resource_drop(&mut self.instance.store);
        }
        let _ = self.handle.resource_drop(&mut self.instance.store);
    }
}

impl Pager<'_> {
    fn parts(&mut self) -> (&mut Store<State>, &Incidents, ResourceAny) {
        let (store, incidents) = self.instance.parts();
        (store, incidents, self.handle)
    }

    /// What this pager learnt so far, to reopen with after a trap.
    pub fn state(&mut self) -> Result<PagerState> {
        let (store, incidents, pager) = self.parts();
        incidents.pager().call_state(store, pager)
    }

    /// The run's dry run as the settings make it (each request says for itself).
    pub fn dry_run(&mut self) -> Result<Option<DryRunReason>> {
        let (store, incidents, pager) = self.parts();
        incidents.pager().call_dry_run(store, pager)
    }

    /// Checks a marker's (or route's) arguments against the settings.
    pub fn check_marker(&mut self, arguments: &[MarkerArgument]) -> Answer<Marker, MarkerError> {
        let (store, incidents, pager) = self.parts();
        let checked = incidents
            .pager()
            .call_check_marker(store, pager, arguments)?;
        Ok(checked.map(|handle| {
            self.markers.push(handle);
            Marker(handle)
        }))
    }

    /// What the component made of a marker's arguments.
    pub fn options(&mut self, marker: Marker) -> Result<IncidentOptions> {
        let (store, incidents, _) = self.parts();
        incidents.marker().call_options(store, marker.0)
    }

    /// Builds everything the marker's alerts need and sends nothing.
    pub fn preflight(&mut self, marker: Marker) -> Answer<Option<DryRunReason>, BuildError> {
        let (store, incidents, pager) = self.parts();
        incidents.pager().call_preflight(store, pager, marker.0)
    }

    /// The request that pages for one failure, `Planned::PastCap`, or
    /// `Planned::Counting` while the test has failed in fewer runs in a row
    /// (`failed_runs`, this one included; 1 without a history) than its
    /// `page_after_failures`.
    pub fn trigger(
        &mut self,
        failure: &TestFailure,
        marker: Marker,
        severity: Option<Severity>,
        failed_runs: u32,
    ) -> Answer<Planned, BuildError> {
        let (store, incidents, pager) = self.parts();
        incidents
            .pager()
            .call_trigger(store, pager, failure, marker.0, severity, failed_runs)
    }

    /// A repeat failure on an open REST incident (a trigger's
    /// `Step::AlreadyOpen`): the note to send, or why there is none.
    /// `incident_id` and `dedup_key` are what the host remembers of the
    /// alert; `notes` how many notes the host has added to it.
    pub fn repeat(
        &mut self,
        failure: &TestFailure,
        marker: Marker,
        incident_id: Option<&str>,
        dedup_key: Option<&str>,
        notes: u32,
    ) -> Answer<Repeat, BuildError> {
        let (store, incidents, pager) = self.parts();
        incidents.pager().call_repeat(
            store,
            pager,
            failure,
            marker.0,
            incident_id,
            dedup_key,
            notes,
        )
    }

    /// The request that resolves a test's alert; `dedup_key` is the key it
    /// was opened with, when the host remembers it.
    pub fn resolve(
        &mut self,
        nodeid: &str,
        marker: Marker,
        incident_id: Option<&str>,
        dedup_key: Option<&str>,
    ) -> Answer<AlertRequest, BuildError> {
        let (store, incidents, pager) = self.parts();
        incidents
            .pager()
            .call_resolve(store, pager, nodeid, marker.0, incident_id, dedup_key)
    }

    /// Failures held past the cap, one alert per destination; each aggregate
    /// names its members by index into `held`.
    pub fn aggregate(&mut self, held: &[Held], suite: &str) -> Result<Vec<Aggregate>> {
        use exports::pytest_pagerduty::alerts::incidents::Held as Wit;
        let held: Vec<Wit> = held
            .iter()
            .map(|h| Wit {
                failure: h.failure.clone(),
                marker: h.marker.0,
            })
            .collect();
        let (store, incidents, pager) = self.parts();
        incidents.pager().call_aggregate(store, pager, &held, suite)
    }

    /// The alert to the fallback routing key saying that `failure` could not
    /// page, why (`reason`) and what to do (`fix`).
    pub fn fallback(
        &mut self,
        failure: &TestFailure,
        reason: &str,
        fix: &str,
    ) -> Answer<AlertRequest, BuildError> {
        let (store, incidents, pager) = self.parts();
        incidents
            .pager()
            .call_fallback(store, pager, failure, reason, fix)
    }

    /// Sends one attempt (nothing for a dry-run request or a stopped API) and
    /// says what comes next. `progress` is `None` first, then the `next` of
    /// the last `Step::Retry`.
    pub fn send(&mut self, request: &AlertRequest, progress: Option<Progress>) -> Result<Step> {
        let (store, incidents, pager) = self.parts();
        incidents.pager().call_send(store, pager, request, progress)
    }

    /// `send`'s decision for a reply the host already has: nothing is sent.
    pub fn decide(
        &mut self,
        request: &AlertRequest,
        progress: Option<Progress>,
        status: u16,
        headers: &[ReplyHeader],
        body: &str,
    ) -> Result<Step> {
        let (store, incidents, pager) = self.parts();
        incidents
            .pager()
            .call_decide(store, pager, request, progress, status, headers, body)
    }

    /// The instance this pager lives in (for `ci_variables`, `denied`...).
    pub fn instance(&mut self) -> &mut Instance {
        self.instance
    }

    /// Every destination the sandbox refused so far.
    pub fn denied(&self) -> &[String] {
        self.instance.denied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_cut_on_characters_keeping_the_tracebacks_end() {
        let failure = TestFailure {
            nodeid: "é".repeat(10),
            short_name: Some("abcdef".into()),
            docstring: None,
            message: Some("€€".into()),
            traceback: "start… end".into(),
            phase: Phase::Call,
            duration_seconds: 0.0,
            ci: vec![Variable {
                name: "GITHUB_JOB".into(),
                value: "build".into(),
            }],
            host: "h".into(),
            source: Some(SourceLocation {
                path: "tests/ünï.py".into(),
                line: Some(7),
            }),
            failed_at_ms: Some(1),
        };
        let cut = cut_failure(failure, 5);
        assert_eq!(cut.nodeid, "éé");
        assert_eq!(cut.short_name.as_deref(), Some("abcde"));
        assert_eq!(cut.message.as_deref(), Some("€"));
        assert_eq!(cut.traceback, " end");
        assert_eq!(cut.ci[0].value, "build");
        assert_eq!(cut.host, "h");
        let source = cut.source.unwrap();
        assert_eq!((source.path.as_str(), source.line), ("tests", Some(7)));
        assert_eq!(cut.failed_at_ms, Some(1));
    }
}
