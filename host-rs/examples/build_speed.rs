//! P4 from the Rust host: incidents built per second through the component.
//! `cargo run --profile host-release -p pagerduty-host --example build_speed -- [count]`

use std::time::{Duration, Instant};

use pagerduty_host::{Allowlist, Host};

const FAILURE: &str = r#"{"nodeid":"tests/test_prod.py::test_x","short_name":"test_x","docstring":"A production check.","message":"AssertionError: assert 201 == 502","traceback":"E   assert 201 == 502\nE   assert 201 == 502\nE   assert 201 == 502","phase":"call","duration_seconds":0.5}"#;
const OPTIONS: &str = r#"{"service_id":"PWIXJZS","routing_key":null,"urgency":"high","severity":null,"priority_id":null,"escalation_policy_id":null,"assignee_id":null,"dedup_key":null,"details":null}"#;
const SETTINGS: &str = r#"{"api_url":null,"api_key":"k","oauth_token":null,"default_from":"a@b.co","routing_key":null,"events_url":null,"timeout_ms":10000,"dry_run":false}"#;

fn main() -> wasmtime::Result<()> {
    let count: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let host = Host::embedded()?;
    let mut instance = host.instance(Allowlist::default(), Duration::from_secs(10))?;
    instance
        .build_trigger(FAILURE, OPTIONS, SETTINGS)?
        .expect("builds");
    let start = Instant::now();
    for _ in 0..count {
        instance
            .build_trigger(FAILURE, OPTIONS, SETTINGS)?
            .expect("builds");
    }
    let per = start.elapsed() / count;
    println!("{{\"seconds_per_build\": {}}}", per.as_secs_f64());
    Ok(())
}
