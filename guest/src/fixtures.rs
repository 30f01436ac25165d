//! Inputs the component's unit tests share: one place that spells out every
//! field of the records they build.

use crate::pytest_pagerduty::alerts::types::{AlertRequest, IncidentOptions, Settings, Variable};

/// REST with an API key and a From, PagerDuty's APIs on loopback ports.
pub fn settings() -> Settings {
    Settings {
        api_url: Some("http://127.0.0.1:9999".into()),
        api_key: Some("secretkey123".into()),
        default_from: Some("oncall@example.com".into()),
        events_url: Some("http://127.0.0.1:9998".into()),
        timeout_ms: 5_000,
        dry_run: false,
        ..bare_settings()
    }
}

/// No credential and no URL, in a dry run: what a marker is checked against.
pub fn bare_settings() -> Settings {
    Settings {
        api_url: None,
        api_key: None,
        oauth_token: None,
        default_from: None,
        routing_key: None,
        events_url: None,
        timeout_ms: 1000,
        dry_run: true,
        max_attempts: None,
        max_incidents: None,
        fallback_routing_key: None,
        page_after_failures: None,
    }
}

/// CI variables from (name, value) pairs.
pub fn variables(pairs: &[(&str, &str)]) -> Vec<Variable> {
    pairs
        .iter()
        .map(|(name, value)| Variable {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect()
}

/// Marker options with nothing set: a test names what it needs.
pub fn no_options() -> IncidentOptions {
    IncidentOptions {
        service_id: None,
        routing_key: None,
        urgency: None,
        severity: None,
        priority_id: None,
        escalation_policy_id: None,
        assignee_id: None,
        dedup_key: None,
        details: None,
        runbook_url: None,
        page_after_failures: None,
    }
}

/// A request's headers as (name, value, sensitive).
pub fn headers(request: &AlertRequest) -> Vec<(&str, &str, bool)> {
    request
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str(), h.sensitive))
        .collect()
}
