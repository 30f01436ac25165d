//! The component from the Rust host against a loopback PagerDuty: allowed
//! destinations go through, others are refused by the sandbox, and no reply
//! is waited for longer than the host's cap.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use pagerduty_host::{Allowlist, DeliveryFailure, Host, RejectionKind};

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

const FAILURE: &str = r#"{"nodeid":"t.py::test_x","short_name":"test_x","docstring":null,"message":"assert False","traceback":"E assert False","phase":"call"}"#;
const OPTIONS: &str = r#"{"service_id":"PWIXJZS","routing_key":null,"urgency":"high","severity":null,"priority_id":null,"escalation_policy_id":null,"assignee_id":null,"dedup_key":null,"details":null}"#;

fn settings(url: &str, timeout_ms: u32) -> String {
    format!(
        r#"{{"api_url":"{url}","api_key":"k3y","oauth_token":null,"default_from":"a@example.com","routing_key":null,"events_url":null,"timeout_ms":{timeout_ms},"dry_run":false}}"#
    )
}

fn send(
    allow: &str,
    url: &str,
    cap: Duration,
) -> (
    Result<pagerduty_host::Delivered, DeliveryFailure>,
    Vec<String>,
) {
    let mut instance = host().instance(Allowlist::new([allow]), cap).unwrap();
    let request = instance
        .build_trigger(FAILURE, OPTIONS, &settings(url, 10_000))
        .unwrap()
        .expect("the component builds the request");
    let result = instance.send(&request).unwrap();
    (result, instance.denied().to_vec())
}

#[test]
fn a_request_to_an_allowed_loopback_server_goes_through() {
    let (port, received) = pagerduty(Duration::ZERO);
    let authority = format!("127.0.0.1:{port}");
    let (result, denied) = send(
        &authority,
        &format!("http://{authority}"),
        Duration::from_secs(5),
    );
    let delivered = result.expect("created");
    assert_eq!(delivered.number, Some(77));
    assert_eq!(received.load(Ordering::SeqCst), 1);
    assert!(denied.is_empty());
}

fn assert_denied(result: Result<pagerduty_host::Delivered, DeliveryFailure>) {
    match result {
        Err(DeliveryFailure::Rejected(rejection)) => {
            assert_eq!(rejection.kind, RejectionKind::Denied);
            assert!(rejection.applies_to_all);
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
        let (result, denied) = send(&allowed, &url, Duration::from_secs(5));
        assert_denied(result);
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
    let url = format!("http://127.0.0.1:{port}");
    let request = instance
        .build_trigger(FAILURE, OPTIONS, &settings(&url, 10_000))
        .unwrap()
        .unwrap();
    assert_denied(instance.send(&request).unwrap());
    assert_eq!(received.load(Ordering::SeqCst), 0);
}

#[test]
fn a_slow_server_hits_the_hosts_cap_not_the_guests_timeout() {
    // The guest asks for 10 s; the host caps waits at 300 ms; the server
    // answers after 3 s. Without the cap this would be created.
    let (port, received) = pagerduty(Duration::from_secs(3));
    let authority = format!("127.0.0.1:{port}");
    let (result, _) = send(
        &authority,
        &format!("http://{authority}"),
        Duration::from_millis(300),
    );
    match result {
        Err(DeliveryFailure::RetryLater(retry)) => {
            assert_eq!(retry.reason, "timed out waiting for the reply");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(received.load(Ordering::SeqCst), 1);
}
