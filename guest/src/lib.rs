//! PagerDuty's rules as a WebAssembly component: every decision about what
//! to send and what a reply means lives here, so every host shares them.

mod http;
mod incident;
mod marker;
mod reply;
mod settings;
mod text;

wit_bindgen::generate!({
    path: "../wit",
    world: "alerts",
    generate_all,
});

use exports::pytest_pagerduty::alerts::incidents::Guest;
use pytest_pagerduty::alerts::types::{
    AlertRequest, CreatedIncident, DeliveryFailure, IncidentOptions, MarkerArgument, MarkerError,
    ReplyHeader, Settings, SettingsError, TestFailure,
};

struct Component;

impl Guest for Component {
    fn check_marker(arguments: Vec<MarkerArgument>) -> Result<IncidentOptions, MarkerError> {
        marker::check(&arguments)
    }

    fn check_settings(settings: Settings) -> Result<(), SettingsError> {
        settings::check(&settings).map(|_| ())
    }

    fn build_request(
        failure: TestFailure,
        options: IncidentOptions,
        settings: Settings,
    ) -> Result<AlertRequest, SettingsError> {
        incident::build_request(&failure, &options, &settings)
    }

    fn send(request: AlertRequest) -> Result<CreatedIncident, DeliveryFailure> {
        match http::post(&request) {
            Ok(reply) => reply::classify(reply.status, &reply.headers, &reply.body),
            Err(error) => Err(reply::transport_failure(&error)),
        }
    }

    fn classify_reply(
        status: u16,
        headers: Vec<ReplyHeader>,
        body: String,
    ) -> Result<CreatedIncident, DeliveryFailure> {
        let headers: Vec<(String, String)> =
            headers.into_iter().map(|h| (h.name, h.value)).collect();
        reply::classify(status, &headers, body.as_bytes())
    }
}

// A native build (unit tests) has no component model to export into, and its
// linker rejects the export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
