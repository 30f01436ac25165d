//! Pieces every request shares: headers, JSON bodies, the finished record.

use serde::Serialize;

use crate::pytest_pagerduty::alerts::types::{AlertRequest, Api, Header, RequestKind};

pub fn header(name: &str, value: &str, sensitive: bool) -> Header {
    Header {
        name: name.to_string(),
        value: value.to_string(),
        sensitive,
    }
}

pub fn json(value: &impl Serialize) -> String {
    // Not `expect`: it would format the error, pulling in serde_json's
    // error messages for a failure that cannot happen.
    serde_json::to_string(value).unwrap_or_else(|_| panic!("plain structs serialize"))
}

pub struct Parts {
    pub kind: RequestKind,
    pub method: &'static str,
    pub url: String,
    /// Where `url` goes, as `http::send` hands it to wasi-http.
    pub authority: String,
    pub headers: Vec<Header>,
    pub body: String,
    /// The body as it may be shown (an event's routing key removed).
    pub display_body: String,
    pub title: String,
    pub dedup_key: String,
}

pub fn finish(parts: Parts, timeout_ms: u32) -> AlertRequest {
    let api = match parts.kind {
        RequestKind::EventsTrigger | RequestKind::EventsResolve => Api::Events,
        _ => Api::Rest,
    };
    AlertRequest {
        kind: parts.kind,
        api,
        method: parts.method.to_string(),
        url: parts.url,
        authority: parts.authority,
        headers: parts.headers,
        body: parts.body,
        display_body: parts.display_body,
        title: parts.title,
        // The pager names the subject and the dry run (pager.rs).
        subject: String::new(),
        dedup_key: parts.dedup_key,
        timeout_ms,
        dry_run: None,
        then_note: None,
    }
}
