//! The WIT types as the canonical JSON of the conformance vectors
//! (tests/vectors/README.md): record fields in snake_case, every field
//! present; `option` as the value or `null`; enum cases as kebab-case
//! strings; variant cases as one-key objects (`null` for no payload);
//! `result` as `{"ok": ..}` / `{"err": ..}`; an `alert-request` with its
//! `body` and `display_body` parsed (`null` when empty).
//!
//! `from_*`-style functions read the inputs of a vector; the others write
//! the component's answers.

use serde_json::{json, Map, Value};

use crate::{
    Aggregate, AlertRequest, Api, BuildError, Counting, Delivered, DeliveryFailure, DryRunReason,
    GaveUp, Header, IncidentOptions, MarkerArgument, MarkerError, MarkerValue, PagerState,
    PagerdutyError, Phase, Planned, Progress, Rejection, RejectionKind, Repeat, ReplyHeader,
    RequestKind, Retry, Setting, Settings, SettingsError, Severity, SourceLocation, Step,
    StopScope, StoppedApi, TestFailure, Urgency, Variable, Wait,
};

/// An enum's cases and their kebab-case names, both ways.
macro_rules! names {
    ($ty:ident, $to:ident, $from:ident, { $($case:ident => $name:literal),* $(,)? }) => {
        #[doc = concat!("The kebab-case name of a `", stringify!($ty), "`.")]
        pub fn $to(value: $ty) -> &'static str {
            match value {
                $($ty::$case => $name,)*
            }
        }

        #[doc = concat!("A `", stringify!($ty), "` from its kebab-case name.")]
        pub fn $from(name: &str) -> Result<$ty, String> {
            match name {
                $($name => Ok($ty::$case),)*
                other => Err(format!(concat!("unknown ", stringify!($ty), " {:?}"), other)),
            }
        }
    };
}

names!(Urgency, urgency_name, urgency, { High => "high", Low => "low" });
names!(Severity, severity_name, severity, {
    Critical => "critical", Error => "error", Warning => "warning", Info => "info",
});
names!(Setting, setting_name, setting, {
    ApiUrl => "api-url",
    ApiKey => "api-key",
    OauthToken => "oauth-token",
    DefaultFrom => "default-from",
    RoutingKey => "routing-key",
    EventsUrl => "events-url",
    Timeout => "timeout",
    MaxAttempts => "max-attempts",
    MaxIncidents => "max-incidents",
    FallbackRoutingKey => "fallback-routing-key",
    PageAfterFailures => "page-after-failures",
});
names!(Phase, phase_name, phase, { Setup => "setup", Call => "call", Teardown => "teardown" });
names!(DryRunReason, dry_run_reason_name, dry_run_reason, {
    Requested => "requested", NoCredentials => "no-credentials",
});
names!(Api, api_name, api, { Rest => "rest", Events => "events" });
names!(RequestKind, request_kind_name, request_kind, {
    RestCreate => "rest-create",
    RestFind => "rest-find",
    RestResolve => "rest-resolve",
    EventsTrigger => "events-trigger",
    EventsResolve => "events-resolve",
    RestNote => "rest-note",
});
names!(RejectionKind, rejection_kind_name, rejection_kind, {
    InvalidRequest => "invalid-request",
    Unauthorized => "unauthorized",
    Forbidden => "forbidden",
    NotFound => "not-found",
    Denied => "denied",
    Other => "other",
});
names!(StopScope, stop_scope_name, stop_scope, {
    ThisRequest => "this-request", ThisApi => "this-api",
});

// --- reading vector inputs ---------------------------------------------------

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

/// An `option<T>`: absent or `null` is none.
fn optional<T>(
    object: &Value,
    name: &str,
    read: impl FnOnce(&Value) -> Option<T>,
) -> Result<Option<T>, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => read(value)
            .map(Some)
            .ok_or_else(|| format!("{name} has the wrong type: {value}")),
    }
}

fn optional_text(object: &Value, name: &str) -> Result<Option<String>, String> {
    optional(object, name, |v| v.as_str().map(str::to_string))
}

fn optional_u32(object: &Value, name: &str) -> Result<Option<u32>, String> {
    optional(object, name, |v| {
        v.as_u64().and_then(|n| u32::try_from(n).ok())
    })
}

fn optional_u64(object: &Value, name: &str) -> Result<Option<u64>, String> {
    optional(object, name, Value::as_u64)
}

fn u32_field(object: &Value, name: &str) -> Result<u32, String> {
    field(object, name)?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{name} must be a u32"))
}

fn list<T>(value: &Value, read: impl Fn(&Value) -> Result<T, String>) -> Result<Vec<T>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("expected a list, got {value}"))?
        .iter()
        .map(read)
        .collect()
}

/// The one case of a variant: `{"case": payload}`.
fn case(value: &Value) -> Result<(&str, &Value), String> {
    match value.as_object() {
        Some(object) if object.len() == 1 => {
            let (name, payload) = object.iter().next().expect("one case");
            Ok((name.as_str(), payload))
        }
        _ => Err(format!("expected one {{\"case\": payload}}, got {value}")),
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
        timeout_ms: u32_field(value, "timeout_ms")?,
        dry_run: field(value, "dry_run")?
            .as_bool()
            .ok_or("dry_run must be a boolean")?,
        max_attempts: optional_u32(value, "max_attempts")?,
        max_incidents: optional_u32(value, "max_incidents")?,
        fallback_routing_key: optional_text(value, "fallback_routing_key")?,
        page_after_failures: optional_u32(value, "page_after_failures")?,
    })
}

/// `{"name": .., "value": {"text": ..} | {"text-list": [..]} | {"number": 3} |
/// {"unsupported": ..}}`.
pub fn marker_argument(value: &Value) -> Result<MarkerArgument, String> {
    let (name, payload) = case(field(value, "value")?)?;
    let single = || {
        payload
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{name} must be a string"))
    };
    Ok(MarkerArgument {
        name: text(value, "name")?,
        value: match name {
            "text" => MarkerValue::Text(single()?),
            "text-list" => MarkerValue::TextList(list(payload, |v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("text-list holds {v}"))
            })?),
            "number" => MarkerValue::Number(
                payload
                    .as_i64()
                    .ok_or_else(|| format!("{name} must be a whole number (s64), got {payload}"))?,
            ),
            "unsupported" => MarkerValue::Unsupported(single()?),
            other => return Err(format!("unknown marker value case {other:?}")),
        },
    })
}

pub fn marker_arguments(value: &Value) -> Result<Vec<MarkerArgument>, String> {
    list(value, marker_argument)
}

pub fn variable(value: &Value) -> Result<Variable, String> {
    Ok(Variable {
        name: text(value, "name")?,
        value: text(value, "value")?,
    })
}

/// `{"path": .., "line": n or null}`.
pub fn source_location(value: &Value) -> Result<SourceLocation, String> {
    Ok(SourceLocation {
        path: text(value, "path")?,
        line: optional_u32(value, "line")?,
    })
}

pub fn test_failure(value: &Value) -> Result<TestFailure, String> {
    let source = match value.get("source") {
        None | Some(Value::Null) => None,
        Some(location) => Some(source_location(location).map_err(|e| format!("source: {e}"))?),
    };
    Ok(TestFailure {
        nodeid: text(value, "nodeid")?,
        short_name: optional_text(value, "short_name")?,
        docstring: optional_text(value, "docstring")?,
        message: optional_text(value, "message")?,
        traceback: text(value, "traceback")?,
        phase: phase(&text(value, "phase")?)?,
        duration_seconds: field(value, "duration_seconds")?
            .as_f64()
            .ok_or("duration_seconds must be a number")?,
        ci: list(field(value, "ci")?, variable)?,
        host: text(value, "host")?,
        source,
        failed_at_ms: optional_u64(value, "failed_at_ms")?,
    })
}

/// `null` or a severity's name.
pub fn optional_severity(value: &Value) -> Result<Option<Severity>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(name) => severity(name).map(Some),
        other => Err(format!("a severity must be a string or null, got {other}")),
    }
}

pub fn reply_header(value: &Value) -> Result<ReplyHeader, String> {
    Ok(ReplyHeader {
        name: text(value, "name")?,
        value: text(value, "value")?,
    })
}

pub fn reply_headers(value: &Value) -> Result<Vec<ReplyHeader>, String> {
    list(value, reply_header)
}

pub fn progress(value: &Value) -> Result<Progress, String> {
    Ok(Progress {
        attempt: u32_field(value, "attempt")?,
        waited_ms: u32_field(value, "waited_ms")?,
    })
}

// --- writing the component's answers ------------------------------------------

/// `{"ok": ..}` or `{"err": ..}`.
pub fn result<T, E>(
    answer: &Result<T, E>,
    ok: impl FnOnce(&T) -> Value,
    err: impl FnOnce(&E) -> Value,
) -> Value {
    match answer {
        Ok(value) => json!({ "ok": ok(value) }),
        Err(error) => json!({ "err": err(error) }),
    }
}

/// A body as the vectors write it: parsed, `null` when empty (a GET). A body
/// that is not JSON stays a string, so the difference shows.
fn body(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
    }
}

pub fn settings_json(s: &Settings) -> Value {
    json!({
        "api_url": s.api_url,
        "api_key": s.api_key,
        "oauth_token": s.oauth_token,
        "default_from": s.default_from,
        "routing_key": s.routing_key,
        "events_url": s.events_url,
        "timeout_ms": s.timeout_ms,
        "dry_run": s.dry_run,
        "max_attempts": s.max_attempts,
        "max_incidents": s.max_incidents,
        "fallback_routing_key": s.fallback_routing_key,
        "page_after_failures": s.page_after_failures,
    })
}

pub fn options(o: &IncidentOptions) -> Value {
    json!({
        "service_id": o.service_id,
        "routing_key": o.routing_key,
        "urgency": o.urgency.map(urgency_name),
        "severity": o.severity.map(severity_name),
        "priority_id": o.priority_id,
        "escalation_policy_id": o.escalation_policy_id,
        "assignee_id": o.assignee_id,
        "dedup_key": o.dedup_key,
        "details": o.details,
        "runbook_url": o.runbook_url,
        "page_after_failures": o.page_after_failures,
    })
}

pub fn marker_error(e: &MarkerError) -> Value {
    json!({"argument": e.argument, "problem": e.problem, "fix": e.fix})
}

pub fn settings_error(e: &SettingsError) -> Value {
    json!({"setting": setting_name(e.setting), "problem": e.problem, "fix": e.fix})
}

pub fn build_error(e: &BuildError) -> Value {
    match e {
        BuildError::Setting(e) => json!({ "setting": settings_error(e) }),
        BuildError::Marker(e) => json!({ "marker": marker_error(e) }),
    }
}

fn header(h: &Header) -> Value {
    json!({"name": h.name, "value": h.value, "sensitive": h.sensitive})
}

pub fn alert_request(r: &AlertRequest) -> Value {
    json!({
        "kind": request_kind_name(r.kind),
        "api": api_name(r.api),
        "method": r.method,
        "url": r.url,
        "authority": r.authority,
        "headers": r.headers.iter().map(header).collect::<Vec<_>>(),
        "body": body(&r.body),
        "display_body": body(&r.display_body),
        "title": r.title,
        "subject": r.subject,
        "dedup_key": r.dedup_key,
        "timeout_ms": r.timeout_ms,
        "dry_run": r.dry_run.map(dry_run_reason_name),
        "then_note": r.then_note,
    })
}

pub fn planned(p: &Planned) -> Value {
    match p {
        Planned::Page(request) => json!({ "page": alert_request(request) }),
        Planned::PastCap => json!({ "past-cap": null }),
        Planned::Counting(c) => json!({ "counting": counting(c) }),
    }
}

pub fn counting(c: &Counting) -> Value {
    json!({"failed": c.failed, "needed": c.needed})
}

/// `{"note": request}` or `{"skip": "why"}`.
pub fn repeat(r: &Repeat) -> Value {
    match r {
        Repeat::Note(request) => json!({ "note": alert_request(request) }),
        Repeat::Skip(why) => json!({ "skip": why }),
    }
}

pub fn source_location_json(s: &SourceLocation) -> Value {
    json!({"path": s.path, "line": s.line})
}

fn stopped_api(s: &StoppedApi) -> Value {
    json!({"api": api_name(s.api), "rejection": rejection(&s.rejection)})
}

pub fn pager_state(s: &PagerState) -> Value {
    json!({
        "paged": s.paged,
        "stopped": s.stopped.iter().map(stopped_api).collect::<Vec<_>>(),
        "noted": s.noted,
    })
}

pub fn aggregate(a: &Aggregate) -> Value {
    json!({
        "members": a.members,
        "request": result(&a.request, alert_request, build_error),
    })
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

pub fn pagerduty_error(e: &PagerdutyError) -> Value {
    json!({"status": e.status, "code": e.code, "message": e.message, "errors": e.errors})
}

pub fn rejection(r: &Rejection) -> Value {
    json!({
        "kind": rejection_kind_name(r.kind),
        "error": pagerduty_error(&r.error),
        "stops": stop_scope_name(r.stops),
        "fix": r.fix,
        "setting": r.setting.map(setting_name),
    })
}

pub fn retry(r: &Retry) -> Value {
    json!({"after_seconds": r.after_seconds, "reason": r.reason})
}

pub fn delivery_failure(f: &DeliveryFailure) -> Value {
    match f {
        DeliveryFailure::AlreadyOpen(e) => json!({ "already-open": pagerduty_error(e) }),
        DeliveryFailure::RetryLater(r) => json!({ "retry-later": retry(r) }),
        DeliveryFailure::Rejected(r) => json!({ "rejected": rejection(r) }),
    }
}

pub fn progress_json(p: &Progress) -> Value {
    json!({"attempt": p.attempt, "waited_ms": p.waited_ms})
}

fn wait(w: &Wait) -> Value {
    json!({"wait_ms": w.wait_ms, "next": progress_json(&w.next), "reason": w.reason})
}

fn gave_up(g: &GaveUp) -> Value {
    json!({"attempts": g.attempts, "reason": g.reason})
}

pub fn step(s: &Step) -> Value {
    let (name, payload) = match s {
        Step::Delivered(d) => ("delivered", delivered(d)),
        Step::AlreadyOpen(e) => ("already-open", pagerduty_error(e)),
        Step::Retry(w) => ("retry", wait(w)),
        Step::GaveUp(g) => ("gave-up", gave_up(g)),
        Step::Rejected(r) => ("rejected", rejection(r)),
        Step::HeldBack(r) => ("held-back", rejection(r)),
        Step::NotSent(reason) => ("not-sent", json!(dry_run_reason_name(*reason))),
        Step::FollowUp(requests) => (
            "follow-up",
            Value::Array(requests.iter().map(alert_request).collect()),
        ),
    };
    let mut object = Map::new();
    object.insert(name.to_string(), payload);
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_reads_back_from_its_name() {
        for s in [
            Setting::ApiUrl,
            Setting::ApiKey,
            Setting::OauthToken,
            Setting::DefaultFrom,
            Setting::RoutingKey,
            Setting::EventsUrl,
            Setting::Timeout,
            Setting::MaxAttempts,
            Setting::MaxIncidents,
            Setting::FallbackRoutingKey,
            Setting::PageAfterFailures,
        ] {
            assert_eq!(setting(setting_name(s)), Ok(s));
        }
        assert!(setting("api_key").is_err());
    }

    #[test]
    fn settings_take_none_for_a_missing_or_null_limit() {
        let value = json!({
            "api_url": null, "api_key": "k", "oauth_token": null, "default_from": "a@b.co",
            "routing_key": null, "events_url": null, "timeout_ms": 500, "dry_run": false,
            "max_attempts": 2,
        });
        let read = settings(&value).unwrap();
        assert_eq!(read.max_attempts, Some(2));
        assert_eq!(read.max_incidents, None);
        let mut back = settings_json(&read);
        back["max_incidents"] = Value::Null;
        assert_eq!(settings(&back).unwrap().timeout_ms, 500);
    }

    #[test]
    fn a_number_a_source_and_a_time_read_back() {
        let argument = marker_argument(&json!({
            "name": "page_after_failures", "value": {"number": 2}
        }))
        .unwrap();
        assert!(matches!(argument.value, MarkerValue::Number(2)));
        assert!(marker_argument(&json!({"name": "x", "value": {"number": 1.5}})).is_err());
        let failure = json!({
            "nodeid": "t.py::t", "short_name": null, "docstring": null, "message": null,
            "traceback": "", "phase": "call", "duration_seconds": 0.0, "ci": [], "host": "h",
            "source": {"path": "t.py", "line": 3}, "failed_at_ms": 1_795_948_812_000u64,
        });
        let read = test_failure(&failure).unwrap();
        let source = read.source.as_ref().unwrap();
        assert_eq!(
            source_location_json(source),
            json!({"path": "t.py", "line": 3})
        );
        assert_eq!(read.failed_at_ms, Some(1_795_948_812_000));
        let mut without = failure.clone();
        without.as_object_mut().unwrap().remove("source");
        without["failed_at_ms"] = Value::Null;
        let read = test_failure(&without).unwrap();
        assert!(read.source.is_none() && read.failed_at_ms.is_none());
        assert_eq!(
            request_kind(request_kind_name(RequestKind::RestNote)),
            Ok(RequestKind::RestNote)
        );
    }

    #[test]
    fn counting_and_repeat_are_one_key_objects() {
        assert_eq!(
            planned(&Planned::Counting(Counting {
                failed: 1,
                needed: 2
            })),
            json!({"counting": {"failed": 1, "needed": 2}})
        );
        assert_eq!(repeat(&Repeat::Skip("why".into())), json!({"skip": "why"}));
    }

    #[test]
    fn a_step_is_a_one_key_object() {
        assert_eq!(
            step(&Step::NotSent(DryRunReason::NoCredentials)),
            json!({"not-sent": "no-credentials"})
        );
        assert_eq!(step(&Step::FollowUp(vec![])), json!({"follow-up": []}));
    }
}
