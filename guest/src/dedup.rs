//! Stable keys: the same test failing on the same destination always
//! updates one alert, run after run.

use sha2::{Digest, Sha256};

use crate::destination::Destination;

/// PagerDuty's limit for `dedup_key` (and, here, `incident_key`).
pub const KEY_MAX: usize = 255;

fn hashed(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(20)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn destination_parts<'a>(destination: &Destination<'a>) -> [&'a str; 2] {
    match *destination {
        Destination::Rest { service_id } => ["service", service_id],
        // A hash, never the routing key itself: the key is shown in PagerDuty.
        Destination::Events { routing_key } => ["routing-key", routing_key],
    }
}

/// The default key of a test's alert: derived from the destination and the
/// nodeid, so renaming either starts a new alert.
pub fn for_test(destination: &Destination, nodeid: &str) -> String {
    let [kind, id] = destination_parts(destination);
    format!("pytest-{}", hashed(&[kind, id, nodeid]))
}

/// The key of the alert standing for failures past the run's cap.
pub fn for_aggregate(destination: &Destination, suite: &str) -> String {
    let [kind, id] = destination_parts(destination);
    format!("pytest-aggregate-{}", hashed(&[kind, id, suite]))
}

/// The key of the fallback alert saying a test could not page: one per test,
/// whatever its destination, and never the test's own.
pub fn for_fallback(nodeid: &str) -> String {
    format!("pytest-fallback-{}", hashed(&["fallback", nodeid]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REST: Destination = Destination::Rest {
        service_id: "PWIXJZS",
    };
    const EVENTS: Destination = Destination::Events {
        routing_key: "R0UT1NGKEY",
    };

    #[test]
    fn keys_are_stable_and_differ_by_test_and_destination() {
        let key = for_test(&REST, "t.py::test_a");
        assert_eq!(key, for_test(&REST, "t.py::test_a"));
        assert_eq!(key.len(), "pytest-".len() + 40);
        assert_ne!(key, for_test(&REST, "t.py::test_b"));
        assert_ne!(key, for_test(&EVENTS, "t.py::test_a"));
        assert_ne!(
            key,
            for_test(
                &Destination::Rest {
                    service_id: "POTHER"
                },
                "t.py::test_a"
            )
        );
    }

    #[test]
    fn keys_never_show_the_routing_key_and_fit_the_limit() {
        let key = for_test(&EVENTS, &"x".repeat(10_000));
        assert!(!key.contains("R0UT1NGKEY"));
        assert!(key.len() <= KEY_MAX);
        assert_ne!(for_aggregate(&EVENTS, "suite"), for_test(&EVENTS, "suite"));
    }

    #[test]
    fn the_fallback_key_is_stable_per_test_and_not_the_tests_own() {
        let key = for_fallback("t.py::test_a");
        assert_eq!(key, for_fallback("t.py::test_a"));
        assert_ne!(key, for_fallback("t.py::test_b"));
        assert_ne!(key, for_test(&EVENTS, "t.py::test_a"));
        assert!(for_fallback(&"x".repeat(100_000)).len() <= KEY_MAX);
    }
}
