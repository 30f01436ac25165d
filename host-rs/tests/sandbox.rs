//! The component from the Rust host against a loopback PagerDuty: allowed
//! destinations go through, others are refused by the sandbox, and no reply
//! is waited for longer than the host's cap.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use pagerduty_host::{
    Allowlist, Host, Instance, MarkerArgument, MarkerValue, Phase, Planned, RejectionKind,
    Settings, Step, StopScope, TestFailure,
};

/// One compiled component for every test: compiling it is the slow part.
fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::embedded().unwrap())
}

/// A PagerDuty on 127.0.0.1 answering each create with 201 after `delay`;
/// returns its port and how many requests it received.
fn pagerduty(delay: Duration) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(AtomicUsize::new(0));
    let count = received.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let count = count.clone();
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                count.fetch_add(1, Ordering::SeqCst);
                thread::sleep(delay);
                let reply = r#"{"incident":{"id":"PRUST1","incident_number":77,"html_url":"https://acme.pagerduty.com/incidents/PRUST1"}}"#;
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            });
        }
    });
    (port, received)
}

fn failure() -> TestFailure {
    TestFailure {
        nodeid: "t.py::test_x".into(),
        short_name: Some("test_x".into()),
        docstring: None,
        message: Some("assert False".into()),
        traceback: "E assert False".into(),
        phase: Phase::Call,
        duration_seconds: 0.1,
        ci: Vec::new(),
        host: "ci-runner".into(),
        source: None,
        failed_at_ms: None,
    }
}

fn settings(url: &str, timeout_ms: u32) -> Settings {
    Settings {
        api_url: Some(url.into()),
        api_key: Some("k3y".into()),
        oauth_token: None,
        default_from: Some("a@example.com".into()),
        routing_key: None,
        events_url: None,
        timeout_ms,
        dry_run: false,
        max_attempts: None,
        max_incidents: None,
        fallback_routing_key: None,
        page_after_failures: None,
    }
}

/// Builds one REST trigger to `url` and sends its first attempt.
fn send_one(instance: &mut Instance, url: &str) -> (Step, Vec<String>) {
    let mut pager = instance
        .open(&settings(url, 10_000))
        .unwrap()
        .expect("the settings are fine");
    let service = MarkerArgument {
        name: "service_id".into(),
        value: MarkerValue::Text("PWIXJZS".into()),
    };
    let marker = pager.check_marker(&[service]).unwrap().expect("a marker");
    let request = match pager.trigger(&failure(), marker, None, 1).unwrap() {
        Ok(Planned::Page(request)) => request,
        other => panic!("expected a request, got {other:?}"),
    };
    let step = pager.send(&request, None).unwrap();
    (step, pager.denied().to_vec())
}

fn send(allow: &str, url: &str, cap: Duration) -> (Step, Vec<String>) {
    let mut instance = host().instance(Allowlist::new([allow]), cap).unwrap();
    send_one(&mut instance, url)
}

#[test]
fn a_request_to_an_allowed_loopback_server_goes_through() {
    let (port, received) = pagerduty(Duration::ZERO);
    let authority = format!("127.0.0.1:{port}");
    let (step, denied) = send(
        &authority,
        &format!("http://{authority}"),
        Duration::from_secs(5),
    );
    match step {
        Step::Delivered(delivered) => assert_eq!(delivered.number, Some(77)),
        other => panic!("expected created, got {other:?}"),
    }
    assert_eq!(received.load(Ordering::SeqCst), 1);
    assert!(denied.is_empty());
}

/// A refusal by the sandbox stops every further request to the API.
fn assert_denied(step: Step) {
    match step {
        Step::Rejected(rejection) => {
            assert_eq!(rejection.kind, RejectionKind::Denied);
            assert_eq!(rejection.stops, StopScope::ThisApi);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn another_port_another_host_or_localhost_for_127_0_0_1_is_denied() {
    let (port, received) = pagerduty(Duration::ZERO);
    let allowed = format!("127.0.0.1:{port}");
    for url in [
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        format!("http://localhost:{port}"),
        format!("http://127.0.0.2:{port}"),
    ] {
        let (step, denied) = send(&allowed, &url, Duration::from_secs(5));
        assert_denied(step);
        assert_eq!(denied.len(), 1, "{url}");
        assert!(denied[0].contains("is not an allowed destination; allow it with --allow-host"));
    }
    assert_eq!(
        received.load(Ordering::SeqCst),
        0,
        "nothing reached the server"
    );
}

#[test]
fn the_default_allowlist_is_pagerdutys_hosts_only() {
    let (port, received) = pagerduty(Duration::ZERO);
    let mut instance = host()
        .instance(Allowlist::default(), Duration::from_secs(5))
        .unwrap();
    let (step, denied) = send_one(&mut instance, &format!("http://127.0.0.1:{port}"));
    assert_denied(step);
    assert_eq!(denied.len(), 1);
    assert_eq!(received.load(Ordering::SeqCst), 0);
}

#[test]
fn a_slow_server_hits_the_hosts_cap_not_the_guests_timeout() {
    // The guest asks for 10 s; the host caps waits at 300 ms; the server
    // answers after 3 s. Without the cap this would be created.
    let (port, received) = pagerduty(Duration::from_secs(3));
    let authority = format!("127.0.0.1:{port}");
    let (step, _) = send(
        &authority,
        &format!("http://{authority}"),
        Duration::from_millis(300),
    );
    match step {
        Step::Retry(wait) => {
            assert!(wait.reason.contains("timed out"), "{}", wait.reason);
            assert_eq!(wait.next.attempt, 2);
        }
        other => panic!("expected a timeout to retry, got {other:?}"),
    }
    assert_eq!(received.load(Ordering::SeqCst), 1);
}
