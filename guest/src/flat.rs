//! The hot path's flat values: hosts pass failures, options, settings and
//! requests as JSON (the records' fields, snake_case) rather than as records,
//! because lowering a record from Python costs ~0.4 ms (wasmtime-py converts
//! each field generically), a string a few microseconds. BENCHMARKS.md P4.

use serde::{Deserialize, Serialize};

use crate::pytest_pagerduty::alerts::types::{
    AlertRequest, Header, IncidentOptions, Phase, RequestKind, Settings, SettingsError, Severity,
    TestFailure, Urgency, Variable,
};

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum PhaseJson {
    Setup,
    Call,
    Teardown,
}

#[derive(Deserialize)]
struct VariableJson {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct FailureJson {
    nodeid: String,
    short_name: Option<String>,
    docstring: Option<String>,
    message: Option<String>,
    traceback: String,
    phase: PhaseJson,
    #[serde(default)]
    duration_seconds: f64,
    #[serde(default)]
    ci: Vec<VariableJson>,
    #[serde(default)]
    host: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum UrgencyJson {
    High,
    Low,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum SeverityJson {
    Critical,
    Error,
    Warning,
    Info,
}

#[derive(Deserialize)]
struct OptionsJson {
    service_id: Option<String>,
    routing_key: Option<String>,
    urgency: Option<UrgencyJson>,
    severity: Option<SeverityJson>,
    priority_id: Option<String>,
    escalation_policy_id: Option<String>,
    assignee_id: Option<String>,
    dedup_key: Option<String>,
    details: Option<String>,
}

#[derive(Deserialize)]
struct SettingsJson {
    api_url: Option<String>,
    api_key: Option<String>,
    oauth_token: Option<String>,
    default_from: Option<String>,
    routing_key: Option<String>,
    events_url: Option<String>,
    timeout_ms: u32,
    dry_run: bool,
}

#[derive(Deserialize, Serialize)]
struct HeaderJson {
    name: String,
    value: String,
    sensitive: bool,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
enum KindJson {
    RestCreate,
    RestFind,
    RestResolve,
    EventsTrigger,
    EventsResolve,
}

#[derive(Deserialize, Serialize)]
struct RequestJson {
    kind: KindJson,
    method: String,
    url: String,
    headers: Vec<HeaderJson>,
    body: String,
    display_body: String,
    title: String,
    dedup_key: String,
    timeout_ms: u32,
}

fn malformed(what: &str, error: serde_json::Error) -> SettingsError {
    SettingsError {
        setting: "host".to_string(),
        problem: format!("the host passed malformed {what}: {error}"),
        fix: "this is a bug in the host; report it".to_string(),
    }
}

pub fn failure(json: &str) -> Result<TestFailure, SettingsError> {
    let f: FailureJson = serde_json::from_str(json).map_err(|e| malformed("failure", e))?;
    Ok(TestFailure {
        nodeid: f.nodeid,
        short_name: f.short_name,
        docstring: f.docstring,
        message: f.message,
        traceback: f.traceback,
        phase: match f.phase {
            PhaseJson::Setup => Phase::Setup,
            PhaseJson::Call => Phase::Call,
            PhaseJson::Teardown => Phase::Teardown,
        },
        duration_seconds: f.duration_seconds,
        ci: f
            .ci
            .into_iter()
            .map(|v| Variable {
                name: v.name,
                value: v.value,
            })
            .collect(),
        host: f.host,
    })
}

pub fn failures(json: &str) -> Result<Vec<TestFailure>, SettingsError> {
    let items: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| malformed("failures", e))?;
    items
        .iter()
        .map(|item| failure(&item.to_string()))
        .collect()
}

pub fn options(json: &str) -> Result<IncidentOptions, SettingsError> {
    let o: OptionsJson = serde_json::from_str(json).map_err(|e| malformed("options", e))?;
    Ok(IncidentOptions {
        service_id: o.service_id,
        routing_key: o.routing_key,
        urgency: o.urgency.map(|u| match u {
            UrgencyJson::High => Urgency::High,
            UrgencyJson::Low => Urgency::Low,
        }),
        severity: o.severity.map(|s| match s {
            SeverityJson::Critical => Severity::Critical,
            SeverityJson::Error => Severity::Error,
            SeverityJson::Warning => Severity::Warning,
            SeverityJson::Info => Severity::Info,
        }),
        priority_id: o.priority_id,
        escalation_policy_id: o.escalation_policy_id,
        assignee_id: o.assignee_id,
        dedup_key: o.dedup_key,
        details: o.details,
    })
}

pub fn settings(json: &str) -> Result<Settings, SettingsError> {
    let s: SettingsJson = serde_json::from_str(json).map_err(|e| malformed("settings", e))?;
    Ok(Settings {
        api_url: s.api_url,
        api_key: s.api_key,
        oauth_token: s.oauth_token,
        default_from: s.default_from,
        routing_key: s.routing_key,
        events_url: s.events_url,
        timeout_ms: s.timeout_ms,
        dry_run: s.dry_run,
    })
}

pub fn request_json(r: AlertRequest) -> String {
    serde_json::to_string(&RequestJson {
        kind: match r.kind {
            RequestKind::RestCreate => KindJson::RestCreate,
            RequestKind::RestFind => KindJson::RestFind,
            RequestKind::RestResolve => KindJson::RestResolve,
            RequestKind::EventsTrigger => KindJson::EventsTrigger,
            RequestKind::EventsResolve => KindJson::EventsResolve,
        },
        method: r.method,
        url: r.url,
        headers: r
            .headers
            .into_iter()
            .map(|h| HeaderJson {
                name: h.name,
                value: h.value,
                sensitive: h.sensitive,
            })
            .collect(),
        body: r.body,
        display_body: r.display_body,
        title: r.title,
        dedup_key: r.dedup_key,
        timeout_ms: r.timeout_ms,
    })
    .expect("plain structs serialize")
}

pub fn request(json: &str) -> Result<AlertRequest, String> {
    let r: RequestJson = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(AlertRequest {
        kind: match r.kind {
            KindJson::RestCreate => RequestKind::RestCreate,
            KindJson::RestFind => RequestKind::RestFind,
            KindJson::RestResolve => RequestKind::RestResolve,
            KindJson::EventsTrigger => RequestKind::EventsTrigger,
            KindJson::EventsResolve => RequestKind::EventsResolve,
        },
        method: r.method,
        url: r.url,
        headers: r
            .headers
            .into_iter()
            .map(|h| Header {
                name: h.name,
                value: h.value,
                sensitive: h.sensitive,
            })
            .collect(),
        body: r.body,
        display_body: r.display_body,
        title: r.title,
        dedup_key: r.dedup_key,
        timeout_ms: r.timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_survives_the_round_trip() {
        let original = AlertRequest {
            kind: RequestKind::EventsResolve,
            method: "POST".into(),
            url: "http://127.0.0.1:1/v2/enqueue".into(),
            headers: vec![Header {
                name: "A".into(),
                value: "b".into(),
                sensitive: true,
            }],
            body: "{}".into(),
            display_body: "{}".into(),
            title: "t".into(),
            dedup_key: "k".into(),
            timeout_ms: 5,
        };
        let json = request_json(original);
        assert!(json.contains("\"kind\":\"events-resolve\""));
        let back = request(&json).unwrap();
        assert_eq!(back.kind, RequestKind::EventsResolve);
        assert!(back.headers[0].sensitive);
        assert_eq!(request_json(back), json);
    }

    #[test]
    fn options_parse_and_malformed_input_is_an_error() {
        let json = r#"{"service_id":"P1","routing_key":null,"urgency":"low","severity":"info","priority_id":null,"escalation_policy_id":null,"assignee_id":null,"dedup_key":"k","details":null}"#;
        let parsed = options(json).unwrap();
        assert_eq!(parsed.urgency, Some(Urgency::Low));
        assert_eq!(parsed.severity, Some(Severity::Info));
        assert_eq!(parsed.dedup_key.as_deref(), Some("k"));
        assert_eq!(failure("{").unwrap_err().setting, "host");
        let f = failure(r#"{"nodeid":"t::x","short_name":null,"docstring":null,"message":null,"traceback":"tb","phase":"teardown"}"#).unwrap();
        assert_eq!(f.phase, Phase::Teardown);
    }
}
