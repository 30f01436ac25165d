//! P4 from the Rust host: incidents built per second through the component.
//! `cargo run --profile host-release -p pagerduty-host --example build_speed -- [count]`

use std::time::{Duration, Instant};

use pagerduty_host::{
    Allowlist, Host, MarkerArgument, MarkerValue, Phase, Planned, Settings, TestFailure,
};

fn main() -> wasmtime::Result<()> {
    let count: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let failure = TestFailure {
        nodeid: "tests/test_prod.py::test_x".into(),
        short_name: Some("test_x".into()),
        docstring: Some("A production check.".into()),
        message: Some("AssertionError: assert 201 == 502".into()),
        traceback: "E   assert 201 == 502\nE   assert 201 == 502\nE   assert 201 == 502".into(),
        phase: Phase::Call,
        duration_seconds: 0.5,
        ci: Vec::new(),
        host: "bench".into(),
        source: None,
        failed_at_ms: None,
    };
    // No cap on the count of alerts: every build is a page, as before.
    let settings = Settings {
        api_url: None,
        api_key: Some("k".into()),
        oauth_token: None,
        default_from: Some("a@b.co".into()),
        routing_key: None,
        events_url: None,
        timeout_ms: 10_000,
        dry_run: false,
        max_attempts: None,
        max_incidents: Some(u32::MAX),
        fallback_routing_key: None,
        page_after_failures: None,
    };
    let host = Host::embedded()?;
    let mut instance = host.instance(Allowlist::default(), Duration::from_secs(10))?;
    let mut pager = instance.open(&settings)?.expect("the settings are fine");
    let service = MarkerArgument {
        name: "service_id".into(),
        value: MarkerValue::Text("PWIXJZS".into()),
    };
    let marker = pager.check_marker(&[service])?.expect("a marker");
    let mut build = || -> wasmtime::Result<()> {
        match pager.trigger(&failure, marker, None, 1)? {
            Ok(Planned::Page(_)) => Ok(()),
            other => panic!("expected a request, got {other:?}"),
        }
    };
    build()?;
    let start = Instant::now();
    for _ in 0..count {
        build()?;
    }
    let per = start.elapsed() / count;
    println!("{{\"seconds_per_build\": {}}}", per.as_secs_f64());
    Ok(())
}
