//! PagerDuty's rules as a WebAssembly component: every decision about what
//! to send, what a reply means and what happens next lives here, so every
//! host shares them.

mod alerts;
mod ci;
mod compose;
mod dedup;
mod delivery;
mod destination;
mod event;
#[cfg(test)]
mod fixtures;
mod http;
mod incident;
mod links;
mod marker;
mod note;
mod pager;
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
use pytest_pagerduty::alerts::types::{Delivered, DeliveryFailure, ReplyHeader, RequestKind};

struct Component;

impl Guest for Component {
    type Pager = pager::Pager;
    type Marker = pager::Marker;

    fn ci_variables() -> Vec<String> {
        ci::variables()
    }

    fn secret_arguments() -> Vec<String> {
        marker::SECRET_ARGUMENTS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn failure_text_limit() -> u32 {
        compose::FAILURE_TEXT_LIMIT
    }

    fn classify_reply(
        kind: RequestKind,
        status: u16,
        headers: Vec<ReplyHeader>,
        body: String,
    ) -> Result<Delivered, DeliveryFailure> {
        let headers: Vec<(String, String)> =
            headers.into_iter().map(|h| (h.name, h.value)).collect();
        reply::classify(kind, status, &headers, body.as_bytes(), None)
    }
}

// A native build (unit tests) has no component model to export into, and its
// linker rejects the export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
