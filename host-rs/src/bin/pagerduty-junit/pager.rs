//! Delivers requests as the component decides, step by step: this command
//! only sleeps when told, sends again, and prints. A dry-run request is
//! shown with its secrets left out.

use std::time::Duration;

use pagerduty_host::{
    canonical, AlertRequest, Delivered, Pager, Rejection, RejectionKind, Step, StopScope,
};
use serde_json::{json, Map, Value};

use crate::setup::spelling;

/// How the delivery of one request ended.
pub enum Delivery {
    Delivered(Delivered),
    /// REST: an open incident already has the key; nothing new was opened.
    AlreadyOpen,
    /// A dry-run request: shown, not sent.
    Shown,
    Failed(String),
    /// PagerDuty refused this request for good (a mistyped service id):
    /// the line to print, and PagerDuty's reason and fix for a fallback alert.
    Refused {
        line: String,
        reason: String,
        fix: String,
    },
    /// The answer called for these requests, each delivered in turn.
    FollowUp(Vec<(AlertRequest, Delivery)>),
}

/// Sends a request until the component's step is final.
pub fn deliver(pager: &mut Pager, request: &AlertRequest) -> Delivery {
    let mut progress = None;
    loop {
        let step = match pager.send(request, progress) {
            Ok(step) => step,
            Err(trap) => return Delivery::Failed(format!("the component failed: {trap:#}")),
        };
        return match step {
            Step::Retry(wait) => {
                eprintln!(
                    "pagerduty-junit: {}; retrying in {:.1} s",
                    wait.reason,
                    f64::from(wait.wait_ms) / 1000.0
                );
                std::thread::sleep(Duration::from_millis(wait.wait_ms.into()));
                progress = Some(wait.next);
                continue;
            }
            Step::Delivered(delivered) => Delivery::Delivered(delivered),
            Step::AlreadyOpen(_) => Delivery::AlreadyOpen,
            Step::NotSent(_) => Delivery::Shown,
            Step::GaveUp(gave_up) => Delivery::Failed(format!(
                "{} (gave up after {} attempts)",
                gave_up.reason, gave_up.attempts
            )),
            Step::Rejected(rejection) if rejection.stops == StopScope::ThisRequest => {
                Delivery::Refused {
                    line: refusal(pager, &rejection),
                    reason: answered(&rejection),
                    fix: rejection.fix.clone(),
                }
            }
            Step::Rejected(rejection) => Delivery::Failed(refusal(pager, &rejection)),
            Step::HeldBack(rejection) => {
                Delivery::Failed(format!("not sent: {}", refusal(pager, &rejection)))
            }
            Step::FollowUp(requests) => Delivery::FollowUp(
                requests
                    .into_iter()
                    .map(|next| {
                        let delivery = deliver(pager, &next);
                        (next, delivery)
                    })
                    .collect(),
            ),
        };
    }
}

/// What PagerDuty answered, as the fallback alert quotes it.
fn answered(rejection: &Rejection) -> String {
    let error = &rejection.error;
    let mut words = vec![
        format!("PagerDuty answered {}", error.status),
        error.message.clone(),
    ];
    words.extend(
        error
            .errors
            .iter()
            .filter(|e| !e.trim().is_empty())
            .cloned(),
    );
    words.join(": ")
}

/// A refusal as one line: PagerDuty's status and words, then the fix.
fn refusal(pager: &Pager, rejection: &Rejection) -> String {
    let error = &rejection.error;
    let mut reason = format!(
        "{} {}: {}",
        error.status,
        canonical::rejection_kind_name(rejection.kind),
        error.message
    );
    for detail in &error.errors {
        reason.push_str(&format!("; {detail}"));
    }
    // The sandbox's own account names the host and the flag that allows it.
    let fix = match (rejection.kind, pager.denied().last()) {
        (RejectionKind::Denied, Some(refusal)) => refusal.clone(),
        _ => rejection.fix.clone(),
    };
    match rejection.setting {
        Some(setting) => reason.push_str(&format!(" ({fix}; check {})", spelling(setting))),
        None => reason.push_str(&format!(" ({fix})")),
    }
    reason
}

/// A dry-run request as a person reads it, as the plugin's summary shows
/// one: where it goes and its key, then the whole request (secrets left
/// out) on one line for tools.
pub fn shown(request: &AlertRequest) -> String {
    format!(
        "  {} {}\n  key: {}\n  request: {}",
        request.method,
        request.url,
        request.dedup_key,
        redacted(request)
    )
}

/// The request as a dry run prints it: secret headers replaced, the display body.
fn redacted(request: &AlertRequest) -> String {
    let headers: Map<String, Value> = request
        .headers
        .iter()
        .map(|h| {
            let shown = if h.sensitive {
                "[redacted]"
            } else {
                h.value.as_str()
            };
            (h.name.clone(), Value::from(shown))
        })
        .collect();
    let body: Value = serde_json::from_str(&request.display_body).unwrap_or(Value::Null);
    json!({
        "method": request.method,
        "url": request.url,
        "headers": headers,
        "body": body,
    })
    .to_string()
}
