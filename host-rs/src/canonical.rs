//! The WIT types as JSON: fields in snake_case, enum and variant cases in
//! kebab-case, as the conformance vectors (tests/vectors) and the flat hot
//! path write them.

use serde_json::{json, Value};

use crate::pytest_pagerduty::alerts::types::{
    Delivered, DeliveryFailure, IncidentOptions, MarkerArgument, MarkerError, MarkerValue,
    PagerdutyError, RejectionKind, ReplyHeader, RequestKind, Settings, SettingsError, Severity,
    Urgency,
};

/// A field of a JSON object, or an error naming it.
fn field<'a>(object: &'a Value, name: &str) -> Result<&'a Value, String> {
    object
        .get(name)
        .ok_or_else(|| format!("missing field {name}"))
}

fn text(object: &Value, name: &str) -> Result<String, String> {
    field(object, name)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{name} must be a string"))
}

fn optional_text(object: &Value, name: &str) -> Result<Option<String>, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => text(object, name).map(Some),
    }
}

pub fn settings(value: &Value) -> Result<Settings, String> {
    Ok(Settings {
        api_url: optional_text(value, "api_url")?,
        api_key: optional_text(value, "api_key")?,
        oauth_token: optional_text(value, "oauth_token")?,
        default_from: optional_text(value, "default_from")?,
        routing_key: optional_text(value, "routing_key")?,
        events_url: optional_text(value, "events_url")?,
        timeout_ms: field(value, "timeout_ms")?
            .as_u64()
            .and_then(|t| u32::try_from(t).ok())
            .ok_or("timeout_ms must be a u32")?,
        dry_run: field(value, "dry_run")?
            .as_bool()
            .ok_or("dry_run must be a boolean")?,
    })
}

/// `{"name": .., "value": {"text": ..} | {"text-list": [..]} | {"unsupported": ..}}`.
pub fn marker_argument(value: &Value) -> Result<MarkerArgument, String> {
    let (case, payload) = field(value, "value")?
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or("value must be an object with one case")?;
    let strings = || -> Result<Vec<String>, String> {
        payload
            .as_array()
            .ok_or("text-list must be a list")?
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or("not a string".into()))
            .collect()
    };
    let single = || payload.as_str().map(str::to_string).ok_or("not a string");
    Ok(MarkerArgument {
        name: text(value, "name")?,
        value: match case.as_str() {
            "text" => MarkerValue::Text(single()?),
            "text-list" => MarkerValue::TextList(strings()?),
            "unsupported" => MarkerValue::Unsupported(single()?),
            other => return Err(format!("unknown marker value case {other}")),
        },
    })
}

pub fn request_kind(name: &str) -> Result<RequestKind, String> {
    Ok(match name {
        "rest-create" => RequestKind::RestCreate,
        "rest-find" => RequestKind::RestFind,
        "rest-resolve" => RequestKind::RestResolve,
        "events-trigger" => RequestKind::EventsTrigger,
        "events-resolve" => RequestKind::EventsResolve,
        other => return Err(format!("unknown request kind {other}")),
    })
}

pub fn severity(name: &str) -> Result<Severity, String> {
    Ok(match name {
        "critical" => Severity::Critical,
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        "info" => Severity::Info,
        other => return Err(format!("unknown severity {other}")),
    })
}

pub fn reply_header(value: &Value) -> Result<ReplyHeader, String> {
    Ok(ReplyHeader {
        name: text(value, "name")?,
        value: text(value, "value")?,
    })
}

pub fn options(o: &IncidentOptions) -> Value {
    json!({
        "service_id": o.service_id,
        "routing_key": o.routing_key,
        "urgency": o.urgency.map(|u| match u { Urgency::High => "high", Urgency::Low => "low" }),
        "severity": o.severity.map(|s| match s {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }),
        "priority_id": o.priority_id,
        "escalation_policy_id": o.escalation_policy_id,
        "assignee_id": o.assignee_id,
        "dedup_key": o.dedup_key,
        "details": o.details,
    })
}

pub fn marker_error(e: &MarkerError) -> Value {
    json!({"argument": e.argument, "problem": e.problem, "fix": e.fix})
}

pub fn settings_error(e: &SettingsError) -> Value {
    json!({"setting": e.setting, "problem": e.problem, "fix": e.fix})
}

pub fn delivered(d: &Delivered) -> Value {
    json!({
        "id": d.id,
        "number": d.number,
        "html_url": d.html_url,
        "dedup_key": d.dedup_key,
        "found": d.found,
    })
}

fn pagerduty_error(e: &PagerdutyError) -> Value {
    json!({"status": e.status, "code": e.code, "message": e.message, "errors": e.errors})
}

pub fn rejection_kind(kind: RejectionKind) -> &'static str {
    match kind {
        RejectionKind::InvalidRequest => "invalid-request",
        RejectionKind::Unauthorized => "unauthorized",
        RejectionKind::Forbidden => "forbidden",
        RejectionKind::NotFound => "not-found",
        RejectionKind::Denied => "denied",
        RejectionKind::Other => "other",
    }
}

pub fn delivery_failure(f: &DeliveryFailure) -> Value {
    match f {
        DeliveryFailure::AlreadyOpen(e) => json!({"already-open": pagerduty_error(e)}),
        DeliveryFailure::RetryLater(r) => json!({"retry-later": {
            "after_seconds": r.after_seconds,
            "reason": r.reason,
        }}),
        DeliveryFailure::Rejected(r) => json!({"rejected": {
            "kind": rejection_kind(r.kind),
            "error": pagerduty_error(&r.error),
            "applies_to_all": r.applies_to_all,
            "fix": r.fix,
        }}),
    }
}
