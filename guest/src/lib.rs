//! PagerDuty's rules as a WebAssembly component: every decision about what
//! to send and what a reply means lives here, so every host shares them.

mod alerts;
mod ci;
mod compose;
mod dedup;
mod destination;
mod event;
mod flat;
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
    // The hot path passes some records as JSON (flat.rs); the guest still
    // works with their generated types.
    generate_unused_types: true,
});

use exports::pytest_pagerduty::alerts::incidents::Guest;
use pytest_pagerduty::alerts::types::{
    Delivered, DeliveryFailure, IncidentOptions, MarkerArgument, MarkerError, ReplyHeader,
    RequestKind, Settings, SettingsError, Severity,
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
        failure: String,
        options: String,
        settings: String,
        severity: Option<Severity>,
    ) -> Result<String, SettingsError> {
        let (failure, options) = (flat::failure(&failure)?, flat::options(&options)?);
        alerts::trigger(&failure, &options, &flat::settings(&settings)?, severity)
            .map(flat::request_json)
    }

    fn build_resolve(
        nodeid: String,
        options: String,
        settings: String,
        incident_id: Option<String>,
    ) -> Result<String, SettingsError> {
        let (options, settings) = (flat::options(&options)?, flat::settings(&settings)?);
        alerts::resolve(&nodeid, &options, &settings, incident_id.as_deref())
            .map(flat::request_json)
    }

    fn aggregate_key(
        options: String,
        settings: String,
        suite: String,
    ) -> Result<String, SettingsError> {
        alerts::aggregate_key(
            &flat::options(&options)?,
            &flat::settings(&settings)?,
            &suite,
        )
    }

    fn build_aggregate(
        failures: String,
        suite: String,
        options: String,
        settings: String,
    ) -> Result<String, SettingsError> {
        let (options, settings) = (flat::options(&options)?, flat::settings(&settings)?);
        alerts::aggregate(&flat::failures(&failures)?, &suite, &options, &settings)
            .map(flat::request_json)
    }

    fn send(request: String) -> Result<Delivered, DeliveryFailure> {
        let request = match flat::request(&request) {
            Ok(request) => request,
            Err(error) => return Err(reply::malformed_request(&error)),
        };
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
