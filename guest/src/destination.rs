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

/// The length of every Events API v2 integration key.
pub const ROUTING_KEY_LENGTH: usize = 32;

/// Whether `key` has the shape of an integration key: PagerDuty refuses any
/// other ("Length of 'routing_key' is incorrect"), so say so before a test runs.
/// The reason never quotes the key.
pub fn routing_key_problem(key: &str) -> Option<String> {
    if !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Some("the routing key holds characters other than letters and digits".into());
    }
    let length = key.chars().count();
    (length != ROUTING_KEY_LENGTH).then(|| {
        format!(
            "the routing key has {length} characters; integration keys have {ROUTING_KEY_LENGTH}"
        )
    })
}

/// The destination, or `None` when a REST marker has no service.
pub fn of<'a>(options: &'a IncidentOptions, settings: &'a Settings) -> Option<Destination<'a>> {
    if let Some(routing_key) = present(&options.routing_key).or(present(&settings.routing_key)) {
        return Some(Destination::Events { routing_key });
    }
    present(&options.service_id).map(|service_id| Destination::Rest { service_id })
}

/// The fallback routing key, when one is set.
pub fn fallback_key(settings: &Settings) -> Option<&str> {
    present(&settings.fallback_routing_key)
}

/// Whether Events API v2 is in use for markers without their own routing key.
pub fn events_by_default(settings: &Settings) -> bool {
    present(&settings.routing_key).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integration_key_is_32_letters_and_digits() {
        assert_eq!(
            routing_key_problem("R0UTINGKEY0123456789abcdefghijkl"),
            None
        );
        let short = routing_key_problem("R0UTINGKEY").unwrap();
        assert_eq!(
            short,
            "the routing key has 10 characters; integration keys have 32"
        );
        assert!(routing_key_problem("R0UTINGKEY-0123456789abcdefghijk")
            .unwrap()
            .contains("other than letters and digits"));
    }
}
