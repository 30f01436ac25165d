//! PagerDuty's rules as a WebAssembly component: every decision about what
//! to send and what a reply means lives here, so every host shares them.

mod alerts;
mod ci;
mod compose;
mod dedup;
mod destination;
mod event;
mod http;
mod incident;
mod marker;
mod reply;
mod request;
mod settings;
mod text;

wit_bindgen::generate!({
    path: "../wit",
    world: "alerts",
    generate_all,
});

use exports::pytest_pagerduty::alerts::incidents::Guest;
use pytest_pagerduty::alerts::types::{
    AlertRequest, Delivered, DeliveryFailure, IncidentOptions, MarkerArgument, MarkerError,
    ReplyHeader, RequestKind, Settings, SettingsError, Severity, TestFailure,
};

struct Component;

impl Guest for Component {
    fn check_marker(
        arguments: Vec<MarkerArgument>,
        settings: Settings,
    ) -> Result<IncidentOptions, MarkerError> {
        marker::check(&arguments, &settings)
    }

    fn check_settings(settings: Settings) -> Result<(), SettingsError> {
        settings::check(&settings).map(|_| ())
    }

    fn ci_variables() -> Vec<String> {
        ci::variables()
    }

    fn build_trigger(
        failure: TestFailure,
        options: IncidentOptions,
        settings: Settings,
        severity: Option<Severity>,
    ) -> Result<AlertRequest, SettingsError> {
        alerts::trigger(&failure, &options, &settings, severity)
    }

    fn build_resolve(
        nodeid: String,
        options: IncidentOptions,
        settings: Settings,
        incident_id: Option<String>,
    ) -> Result<AlertRequest, SettingsError> {
        alerts::resolve(&nodeid, &options, &settings, incident_id.as_deref())
    }

    fn aggregate_key(
        options: IncidentOptions,
        settings: Settings,
        suite: String,
    ) -> Result<String, SettingsError> {
        alerts::aggregate_key(&options, &settings, &suite)
    }

    fn build_aggregate(
        failures: Vec<TestFailure>,
        suite: String,
        options: IncidentOptions,
        settings: Settings,
    ) -> Result<AlertRequest, SettingsError> {
        alerts::aggregate(&failures, &suite, &options, &settings)
    }

    fn send(request: AlertRequest) -> Result<Delivered, DeliveryFailure> {
        match http::send(&request) {
            Ok(reply) => reply::classify(request.kind, reply.status, &reply.headers, &reply.body),
            Err(error) => Err(reply::transport_failure(&error)),
        }
    }

    fn classify_reply(
        kind: RequestKind,
        status: u16,
        headers: Vec<ReplyHeader>,
        body: String,
    ) -> Result<Delivered, DeliveryFailure> {
        let headers: Vec<(String, String)> =
            headers.into_iter().map(|h| (h.name, h.value)).collect();
        reply::classify(kind, status, &headers, body.as_bytes())
    }
}

// A native build (unit tests) has no component model to export into, and its
// linker rejects the export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
