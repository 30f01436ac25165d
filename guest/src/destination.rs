//! Where a test's alerts go: the REST API (a service) or Events API v2 (an
//! integration's routing key). A routing key, from the marker or the
//! settings, means Events API v2.

use crate::pytest_pagerduty::alerts::types::{IncidentOptions, Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    Rest { service_id: &'a str },
    Events { routing_key: &'a str },
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The destination, or `None` when a REST marker has no service.
pub fn of<'a>(options: &'a IncidentOptions, settings: &'a Settings) -> Option<Destination<'a>> {
    if let Some(routing_key) = present(&options.routing_key).or(present(&settings.routing_key)) {
        return Some(Destination::Events { routing_key });
    }
    present(&options.service_id).map(|service_id| Destination::Rest { service_id })
}

/// Whether Events API v2 is in use for markers without their own routing key.
pub fn events_by_default(settings: &Settings) -> bool {
    present(&settings.routing_key).is_some()
}
