//! Sends built requests through the component, waiting as its classification
//! says, and shows them in a dry run with their secrets left out.

use std::collections::HashMap;
use std::time::Duration;

use pagerduty_host::{canonical, Delivered, DeliveryFailure, Instance, RejectionKind};
use serde_json::Value;

/// No request waits longer than this in all, however often PagerDuty says later.
const WAIT_BUDGET: Duration = Duration::from_secs(120);
const WAIT_MAX: Duration = Duration::from_secs(60);
const WAIT_MIN: Duration = Duration::from_millis(500);

pub enum Sent {
    Delivered(Delivered),
    /// REST: an open incident already has the key; nothing new was opened.
    AlreadyOpen,
    Failed(String),
}

pub struct Pager<'a> {
    pub instance: &'a mut Instance,
    max_attempts: u32,
    /// "rest" or "events" → why every further request to that API would
    /// fail the same way (bad credentials): they are not sent.
    stopped: HashMap<&'static str, String>,
}

/// The request's kind: `rest-create`, `rest-find`, `events-trigger`...
pub fn kind(request: &str) -> String {
    let value: Value = serde_json::from_str(request).expect("the component builds JSON");
    value["kind"].as_str().unwrap_or_default().to_string()
}

/// A REST credential failing says nothing about an Events routing key.
fn api(request: &str) -> &'static str {
    if kind(request).starts_with("events") {
        "events"
    } else {
        "rest"
    }
}

/// `title`, and the request as JSON text, from a build's answer.
pub fn describe(request: &str) -> (String, String) {
    let value: Value = serde_json::from_str(request).expect("the component builds JSON");
    (
        value["title"].as_str().unwrap_or_default().to_string(),
        value["dedup_key"].as_str().unwrap_or_default().to_string(),
    )
}

/// The request as a dry run prints it: secret headers replaced, the display body.
pub fn redacted(request: &str) -> String {
    let value: Value = serde_json::from_str(request).expect("the component builds JSON");
    let headers: serde_json::Map<String, Value> = value["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let shown = if h["sensitive"].as_bool() == Some(true) {
                Value::from("[redacted]")
            } else {
                h["value"].clone()
            };
            (h["name"].as_str().unwrap_or_default().to_string(), shown)
        })
        .collect();
    let body = value["display_body"].as_str().unwrap_or_default();
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    serde_json::json!({
        "method": value["method"],
        "url": value["url"],
        "headers": headers,
        "body": body,
    })
    .to_string()
}

impl<'a> Pager<'a> {
    pub fn new(instance: &'a mut Instance, max_attempts: u32) -> Self {
        Self {
            instance,
            max_attempts: max_attempts.max(1),
            stopped: HashMap::new(),
        }
    }

    /// Sends one request, retrying what PagerDuty calls transient.
    pub fn send(&mut self, request: &str) -> Sent {
        let api = api(request);
        if let Some(reason) = self.stopped.get(api) {
            return Sent::Failed(format!("not sent: {reason}"));
        }
        let mut waited = Duration::ZERO;
        let mut attempt = 1;
        loop {
            let answer = match self.instance.send(request) {
                Ok(answer) => answer,
                Err(trap) => return Sent::Failed(format!("the component failed: {trap:#}")),
            };
            let failure = match answer {
                Ok(delivered) => return Sent::Delivered(delivered),
                Err(DeliveryFailure::AlreadyOpen(_)) => return Sent::AlreadyOpen,
                Err(failure) => failure,
            };
            if let DeliveryFailure::RetryLater(retry) = &failure {
                let backoff = 2u32.saturating_pow(attempt - 1).min(1 << 10);
                let wait = retry.after_seconds.map_or_else(
                    || Duration::from_millis(500) * backoff,
                    |s| Duration::from_secs(s.into()),
                );
                // "Reset in 0 s" must not turn into a burst of retries.
                let wait = wait.clamp(WAIT_MIN, WAIT_MAX);
                if attempt < self.max_attempts && waited + wait <= WAIT_BUDGET {
                    eprintln!(
                        "pagerduty-junit: {}; retrying in {:.1} s",
                        retry.reason,
                        wait.as_secs_f64()
                    );
                    std::thread::sleep(wait);
                    waited += wait;
                    attempt += 1;
                    continue;
                }
            }
            return self.failed(api, &failure, attempt);
        }
    }

    fn failed(&mut self, api: &'static str, failure: &DeliveryFailure, attempts: u32) -> Sent {
        let (reason, stop) = match failure {
            DeliveryFailure::RetryLater(retry) => (
                format!("{} (gave up after {attempts} attempts)", retry.reason),
                false,
            ),
            DeliveryFailure::Rejected(rejection) => {
                let mut reason = format!(
                    "{} {}: {}",
                    rejection.error.status,
                    canonical::rejection_kind(rejection.kind),
                    rejection.error.message
                );
                for detail in &rejection.error.errors {
                    reason.push_str(&format!("; {detail}"));
                }
                // The sandbox's own account names the host and the flag.
                let fix = match (rejection.kind, self.instance.denied().last()) {
                    (RejectionKind::Denied, Some(refusal)) => refusal.clone(),
                    _ => rejection.fix.clone(),
                };
                reason.push_str(&format!(" ({fix})"));
                (reason, rejection.applies_to_all)
            }
            DeliveryFailure::AlreadyOpen(_) => unreachable!("handled by send"),
        };
        // Every further request would fail the same way (bad credentials).
        if stop {
            self.stopped.insert(api, reason.clone());
        }
        Sent::Failed(reason)
    }
}
