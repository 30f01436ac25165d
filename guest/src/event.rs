//! Events API v2 requests: `trigger` for a failure, `resolve` when the test
//! passes again (`POST /v2/enqueue`).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::ci::Run;
use crate::links::Link;
use crate::pytest_pagerduty::alerts::types::{
    AlertRequest, IncidentOptions, RequestKind, Settings, Severity, TestFailure, Urgency,
};
use crate::request::{self, header, Parts};
use crate::settings::Checked;
use crate::text;

const CLIENT: &str = "pytest-pagerduty";
const REDACTED: &str = "[redacted]";
/// PagerDuty's limit for a whole event ("512 KB"), read as the smaller
/// 512,000 bytes.
pub const PAYLOAD_MAX: usize = 512_000;
/// Each short field of an event (source, component, group, class), in bytes.
const FIELD_MAX: usize = 1024;

#[derive(Serialize)]
struct Payload<'a> {
    summary: &'a str,
    source: String,
    severity: &'static str,
    component: String,
    group: String,
    class: String,
    custom_details: Map<String, Value>,
}

#[derive(Serialize)]
struct Event<'a> {
    routing_key: &'a str,
    event_action: &'static str,
    dedup_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Payload<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
}

/// The marker's severity, else one from its urgency; a failing check is
/// critical unless said otherwise.
pub fn severity(options: &IncidentOptions, overridden: Option<Severity>) -> Severity {
    overridden
        .or(options.severity)
        .unwrap_or(match options.urgency {
            Some(Urgency::Low) => Severity::Warning,
            _ => Severity::Critical,
        })
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// Where the test lives: (component, group, class) from its nodeid, as in
/// `tests/api/test_pay.py::TestRefund::test_eu` → `tests/api/test_pay`,
/// `tests/api`, `TestRefund`.
pub fn location(nodeid: &str) -> (String, String, String) {
    let mut parts = nodeid.split("::");
    let path = parts.next().unwrap_or(nodeid);
    let rest: Vec<&str> = parts.collect();
    let module = path.strip_suffix(".py").unwrap_or(path).to_string();
    let group = match path.rsplit_once('/') {
        Some((dir, _)) => dir.to_string(),
        None => ".".to_string(),
    };
    let class = if rest.len() > 1 { rest[0] } else { "pytest" };
    let cut = |text: &str| text::cut_end(text, FIELD_MAX);
    (cut(&module), cut(&group), cut(class))
}

/// The event's source: the CI job when there is one, else the host.
pub fn source(run: Option<&Run>, host: &str) -> String {
    let source = match run {
        Some(Run {
            system,
            job: Some(job),
            ..
        }) => format!("{system}: {job}"),
        Some(Run { system, .. }) => system.clone(),
        None if !host.is_empty() => text::printable(host, true),
        None => "pytest".to_string(),
    };
    text::cut_end(&source, FIELD_MAX)
}

pub fn ci_details(run: Option<&Run>) -> Value {
    match run {
        None => Value::Null,
        // As `json!` builds it, without its `to_value(..).unwrap()` (alerts.rs).
        Some(run) => {
            let mut ci = Map::new();
            ci.insert("system".into(), Value::from(run.system.clone()));
            for (name, value) in [
                ("url", &run.url),
                ("commit", &run.commit),
                ("branch", &run.branch),
                ("job", &run.job),
            ] {
                ci.insert(name.into(), Value::from(value.clone()));
            }
            Value::Object(ci)
        }
    }
}

/// The note that says the details were trimmed, and what they weighed.
fn trimmed_note(from: usize) -> Value {
    Value::from(format!(
        "custom_details were trimmed from {from} bytes to keep the event within PagerDuty's 512 KB limit"
    ))
}

/// Cuts the largest of the details (a text to half, a list to half its
/// items) until the event fits `PAYLOAD_MAX`, and says so in `note`; as
/// Alertmanager does, the alert itself always goes.
fn trim_details(event: &mut Event) {
    let size = |event: &Event| request::json(event).len();
    let Some(from) = event
        .payload
        .as_ref()
        .map(|p| request::json(&p.custom_details).len())
    else {
        return;
    };
    if size(event) <= PAYLOAD_MAX {
        return;
    }
    // Each pass halves one value; 64 passes reach nothing from any size.
    for _ in 0..64 {
        let Some(payload) = event.payload.as_mut() else {
            return;
        };
        let details = &mut payload.custom_details;
        details.insert("note".into(), trimmed_note(from));
        // The last of the largest, as `max_by_key` would pick it (spelled
        // out: the adapter's code costs the component more).
        let mut largest: Option<(&String, usize)> = None;
        for (name, value) in details.iter() {
            if name == "note" {
                continue;
            }
            let size = request::json(value).len();
            if largest.is_none_or(|(_, most)| size >= most) {
                largest = Some((name, size));
            }
        }
        let largest = largest.map(|(name, _)| name.clone());
        if size(event) <= PAYLOAD_MAX {
            return;
        }
        let Some(payload) = event.payload.as_mut() else {
            return;
        };
        let details = &mut payload.custom_details;
        let Some(name) = largest else { break };
        match details.get_mut(&name) {
            Some(Value::String(text)) if text.len() > 64 => {
                *text = text::cut_end(text, text.len() / 2);
            }
            Some(Value::Array(items)) if items.len() > 1 => items.truncate(items.len() / 2),
            // Rebuilt without it: `Map::remove` would bring in the B-tree's
            // rebalancing (about 4 KB) for this one use.
            _ => {
                for (key, value) in std::mem::take(details) {
                    if key != name {
                        details.insert(key, value);
                    }
                }
            }
        }
    }
    if let Some(payload) = event.payload.as_mut() {
        payload.custom_details = only_id_and_note(&mut payload.custom_details, from);
    }
}

/// Details that could not be halved to fit: they go but for the test's id
/// (at most `compose::NODEID_MAX` as built, so it fits) and the note.
fn only_id_and_note(details: &mut Map<String, Value>, from: usize) -> Map<String, Value> {
    let mut kept = Map::new();
    // Taken whole, not by `Map::remove` (`trim_details`).
    for (name, value) in std::mem::take(details) {
        if name == "nodeid" && request::json(&value).len() <= 2 * crate::compose::NODEID_MAX {
            kept.insert(name, value);
        }
    }
    kept.insert("note".into(), trimmed_note(from));
    kept
}

fn finish(
    checked: &Checked,
    settings: &Settings,
    kind: RequestKind,
    event: &Event,
    title: String,
) -> AlertRequest {
    let body = request::json(event);
    // The shown body keeps everything but the routing key.
    // Not `expect`, which would format the error (request.rs).
    let mut display: Value =
        // `from_slice`, as replies are read: `from_str` would be a second
        // copy of the whole JSON reader (about 8 KB).
        serde_json::from_slice(body.as_bytes()).unwrap_or_else(|_| panic!("just serialized"));
    // Not `display["routing_key"] = ..`: indexing brings in its panic
    // message's formatting; the body is always an object.
    if let Value::Object(fields) = &mut display {
        fields.insert("routing_key".into(), Value::String(REDACTED.to_string()));
    }
    request::finish(
        Parts {
            kind,
            method: "POST",
            url: checked.events.url("/v2/enqueue"),
            authority: checked.events.authority.clone(),
            headers: vec![
                header("Accept", "application/json", false),
                header("Content-Type", "application/json", false),
            ],
            body,
            // The same text as `display.to_string()`, through the one JSON
            // writer every body uses: `Value`'s `Display` would be two more
            // (compact and pretty).
            display_body: request::json(&display),
            title,
            dedup_key: event.dedup_key.to_string(),
        },
        settings.timeout_ms,
    )
}

pub struct Trigger<'a> {
    pub routing_key: &'a str,
    pub dedup_key: &'a str,
    pub title: &'a str,
    pub severity: Severity,
    pub failure: &'a TestFailure,
    pub run: Option<&'a Run>,
    pub custom_details: Map<String, Value>,
    /// Source, CI run, runbook (`links::of`).
    pub links: Vec<Link>,
}

pub fn trigger(checked: &Checked, settings: &Settings, t: Trigger) -> AlertRequest {
    let (component, group, class) = location(&t.failure.nodeid);
    let mut event = Event {
        routing_key: t.routing_key,
        event_action: "trigger",
        dedup_key: t.dedup_key,
        client: Some(CLIENT),
        client_url: t.run.and_then(|r| r.url.clone()),
        payload: Some(Payload {
            summary: t.title,
            source: source(t.run, &t.failure.host),
            severity: severity_name(t.severity),
            component,
            group,
            class,
            custom_details: t.custom_details,
        }),
        links: t.links,
    };
    trim_details(&mut event);
    finish(
        checked,
        settings,
        RequestKind::EventsTrigger,
        &event,
        t.title.to_string(),
    )
}

pub fn resolve(
    checked: &Checked,
    settings: &Settings,
    routing_key: &str,
    dedup_key: &str,
    nodeid: &str,
) -> AlertRequest {
    let event = Event {
        routing_key,
        event_action: "resolve",
        dedup_key,
        client: None,
        client_url: None,
        payload: None,
        links: Vec::new(),
    };
    finish(
        checked,
        settings,
        RequestKind::EventsResolve,
        &event,
        format!("Resolved: {nodeid} passes again"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_splits_module_package_and_class() {
        assert_eq!(
            location("tests/api/test_pay.py::TestRefund::test_eu[1]"),
            (
                "tests/api/test_pay".into(),
                "tests/api".into(),
                "TestRefund".into()
            )
        );
        assert_eq!(
            location("test_x.py::test_y"),
            ("test_x".into(), ".".into(), "pytest".into())
        );
    }

    #[test]
    fn severity_follows_the_marker_then_the_urgency() {
        let mut options = IncidentOptions {
            urgency: Some(Urgency::Low),
            ..crate::fixtures::no_options()
        };
        assert_eq!(severity(&options, None), Severity::Warning);
        options.urgency = Some(Urgency::High);
        assert_eq!(severity(&options, None), Severity::Critical);
        options.urgency = None;
        assert_eq!(severity(&options, None), Severity::Critical);
        options.severity = Some(Severity::Error);
        assert_eq!(severity(&options, None), Severity::Error);
        assert_eq!(severity(&options, Some(Severity::Info)), Severity::Info);
    }

    use crate::pytest_pagerduty::alerts::types::Phase;

    fn settings() -> Settings {
        Settings {
            routing_key: Some("R0UTINGKEY0123456789abcdefghijkl".into()),
            timeout_ms: 5_000,
            dry_run: false,
            ..crate::fixtures::bare_settings()
        }
    }

    fn failure() -> TestFailure {
        TestFailure {
            nodeid: "tests/t.py::test_x".into(),
            short_name: None,
            docstring: None,
            message: None,
            traceback: String::new(),
            phase: Phase::Call,
            duration_seconds: 0.0,
            ci: Vec::new(),
            host: "h".into(),
            source: None,
            failed_at_ms: None,
        }
    }

    /// The event `trigger` builds with these custom details, as sent.
    fn sent(custom: Vec<(&str, Value)>) -> (AlertRequest, Value) {
        let s = settings();
        let checked = crate::settings::check(&s).unwrap();
        let f = failure();
        let request = trigger(
            &checked,
            &s,
            Trigger {
                routing_key: "R0UTINGKEY0123456789abcdefghijkl",
                dedup_key: "k",
                title: "Test failed: test_x",
                severity: Severity::Critical,
                failure: &f,
                run: None,
                custom_details: custom
                    .into_iter()
                    .map(|(name, value)| (name.to_string(), value))
                    .collect(),
                links: vec![Link {
                    href: "https://wiki.example.com/rb".into(),
                    text: "Runbook".into(),
                }],
            },
        );
        let event = serde_json::from_str(&request.body).unwrap();
        (request, event)
    }

    #[test]
    fn an_event_within_512_kb_keeps_its_details_untouched_and_without_a_note() {
        let failure = "E".repeat(400_000);
        let (request, event) = sent(vec![
            ("nodeid", Value::from("tests/t.py::test_x")),
            ("failure", Value::from(failure.as_str())),
        ]);
        assert!(request.body.len() < PAYLOAD_MAX);
        let details = &event["payload"]["custom_details"];
        assert_eq!(details["failure"], failure.as_str());
        assert!(details.get("note").is_none());
    }

    #[test]
    fn past_512_kb_the_largest_details_are_cut_with_a_note_and_the_test_id_kept() {
        let tests: Vec<Value> = (0..20_000)
            .map(|n| Value::from(format!("- tests/t.py::test_{n}: failed")))
            .collect();
        let (request, event) = sent(vec![
            ("nodeid", Value::from("tests/t.py::test_x")),
            ("failure", Value::from("E".repeat(600_000))),
            ("failed_tests", Value::Array(tests.clone())),
            ("duration_seconds", Value::from(1.5)),
        ]);
        assert!(request.body.len() <= PAYLOAD_MAX, "{}", request.body.len());
        assert!(request.display_body.len() <= PAYLOAD_MAX);
        let details = &event["payload"]["custom_details"];
        assert_eq!(details["nodeid"], "tests/t.py::test_x");
        assert_eq!(details["duration_seconds"], 1.5);
        let failure = details["failure"].as_str().unwrap();
        assert!(
            failure.len() < 600_000 && failure.ends_with('…'),
            "{}",
            failure.len()
        );
        assert!(!details["failed_tests"].as_array().unwrap().is_empty());
        // The note names what the details weighed before.
        let mut before = Map::new();
        before.insert("nodeid".into(), Value::from("tests/t.py::test_x"));
        before.insert("failure".into(), Value::from("E".repeat(600_000)));
        before.insert("failed_tests".into(), Value::Array(tests));
        before.insert("duration_seconds".into(), Value::from(1.5));
        assert_eq!(
            details["note"],
            format!("custom_details were trimmed from {} bytes to keep the event within PagerDuty's 512 KB limit", request::json(&before).len())
        );
        // The rest of the event is whole.
        assert_eq!(event["payload"]["summary"], "Test failed: test_x");
        assert_eq!(event["routing_key"], "R0UTINGKEY0123456789abcdefghijkl");
        assert_eq!(event["links"][0]["href"], "https://wiki.example.com/rb");
    }

    #[test]
    fn details_that_cannot_be_halved_to_fit_go_but_for_the_test_id_and_the_note() {
        let mut details = Map::new();
        details.insert("nodeid".into(), Value::from("tests/t.py::test_x"));
        details.insert("failure".into(), Value::from("E".repeat(1000)));
        let kept = only_id_and_note(&mut details, 900_000);
        assert_eq!(
            Value::Object(kept),
            serde_json::json!({"nodeid": "tests/t.py::test_x", "note": "custom_details were trimmed from 900000 bytes to keep the event within PagerDuty's 512 KB limit"})
        );
        // An id longer than any the component sends does not stay.
        let mut details = Map::new();
        details.insert("nodeid".into(), Value::from("x".repeat(100_000)));
        let kept = only_id_and_note(&mut details, 1);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["note"]);
    }
}
