//! Composes `POST /incidents` (REST API v2) for one failed test.

use serde::Serialize;

use crate::pytest_pagerduty::alerts::types::{
    AlertRequest, Header, IncidentOptions, Phase, Settings, SettingsError, TestFailure, Urgency,
};
use crate::settings;
use crate::text;

/// PagerDuty truncates longer summaries; cut first so the end is ours.
pub const TITLE_MAX: usize = 1024;
/// Keeps a page readable and far below PagerDuty's request size limits.
pub const BODY_MAX: usize = 32 * 1024;

const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

#[derive(Serialize)]
struct Reference<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Assignment<'a> {
    assignee: Reference<'a>,
}

#[derive(Serialize)]
struct Body {
    #[serde(rename = "type")]
    kind: &'static str,
    details: String,
}

#[derive(Serialize)]
struct Incident<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
    service: Reference<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    urgency: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<Reference<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalation_policy: Option<Reference<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    assignments: Vec<Assignment<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incident_key: Option<&'a str>,
    body: Body,
}

#[derive(Serialize)]
struct CreateIncident<'a> {
    incident: Incident<'a>,
}

fn reference<'a>(id: &'a Option<String>, kind: &'static str) -> Option<Reference<'a>> {
    id.as_deref().map(|id| Reference { id, kind })
}

/// "Test failed: test_x: AssertionError: assert 1 == 2", on one line.
pub fn title(failure: &TestFailure) -> String {
    let name = failure.short_name.as_deref().unwrap_or(&failure.nodeid);
    let what = match failure.phase {
        Phase::Call => "Test failed",
        Phase::Setup => "Test errored in setup",
        Phase::Teardown => "Test errored in teardown",
    };
    // pytest's crash message may run on ("AssertionError: msg\nassert 1 == 2"):
    // its first line says what failed.
    let first_line = |m: &str| {
        m.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    };
    let title = match failure.message.as_deref().and_then(first_line).as_deref() {
        Some(message) if !message.is_empty() => format!("{what}: {name}: {message}"),
        _ => format!("{what}: {name}"),
    };
    text::truncate_end(&text::one_line(&title), TITLE_MAX)
}

/// The `details` argument or the docstring, the failure, then the nodeid.
pub fn body(failure: &TestFailure, options: &IncidentOptions) -> String {
    let description = match (&options.details, &failure.docstring) {
        (Some(details), _) => details.trim().to_string(),
        (None, Some(doc)) => text::clean_docstring(doc),
        (None, None) => String::new(),
    };
    let footer = format!("\n\nTest: {}", failure.nodeid);
    let header = if description.is_empty() {
        "Failure:\n".to_string()
    } else {
        format!(
            "{}\n\nFailure:\n",
            text::truncate_end(&description, BODY_MAX / 4)
        )
    };
    let room = BODY_MAX
        .saturating_sub(header.chars().count())
        .saturating_sub(footer.chars().count());
    let traceback = text::truncate_start(failure.traceback.trim_end(), room);
    format!("{header}{traceback}{footer}")
}

/// Builds the exact request to send, with secrets marked and kept out of
/// the title and body.
pub fn build_request(
    failure: &TestFailure,
    options: &IncidentOptions,
    settings: &Settings,
) -> Result<AlertRequest, SettingsError> {
    let checked = settings::check(settings)?;
    // Secrets go before any cutting: a secret across a cut would leave a
    // piece that no longer matches.
    let secrets: Vec<&str> = [&settings.api_key, &settings.oauth_token]
        .into_iter()
        .filter_map(|s| s.as_deref())
        .collect();
    let clean = |t: &Option<String>| t.as_deref().map(|t| text::redact(t, &secrets));
    let failure = TestFailure {
        nodeid: failure.nodeid.clone(),
        short_name: failure.short_name.clone(),
        docstring: clean(&failure.docstring),
        message: clean(&failure.message),
        traceback: text::redact(&failure.traceback, &secrets),
        phase: failure.phase,
    };
    let options = IncidentOptions {
        details: clean(&options.details),
        ..options.clone()
    };
    let (failure, options) = (&failure, &options);
    let title = title(failure);
    let payload = CreateIncident {
        incident: Incident {
            kind: "incident",
            title: title.clone(),
            service: Reference {
                id: &options.service_id,
                kind: "service_reference",
            },
            urgency: options.urgency.map(|u| match u {
                Urgency::High => "high",
                Urgency::Low => "low",
            }),
            priority: reference(&options.priority_id, "priority_reference"),
            escalation_policy: reference(
                &options.escalation_policy_id,
                "escalation_policy_reference",
            ),
            assignments: reference(&options.assignee_id, "user_reference")
                .map(|assignee| Assignment { assignee })
                .into_iter()
                .collect(),
            incident_key: options.incident_key.as_deref(),
            body: Body {
                kind: "incident_body",
                details: body(failure, options),
            },
        },
    };
    let mut headers = vec![
        header("Accept", ACCEPT, false),
        header("Content-Type", "application/json", false),
    ];
    if let Some(credential) = checked.credential {
        headers.push(header("Authorization", &credential.authorization(), true));
    }
    if let Some(from) = checked.from {
        headers.push(header("From", from, false));
    }
    let body = serde_json::to_string(&payload).expect("plain structs serialize");
    Ok(AlertRequest {
        method: "POST".to_string(),
        url: checked.endpoint.url("/incidents"),
        headers,
        body,
        title,
        timeout_ms: settings.timeout_ms,
    })
}

fn header(name: &str, value: &str, sensitive: bool) -> Header {
    Header {
        name: name.to_string(),
        value: value.to_string(),
        sensitive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn failure() -> TestFailure {
        TestFailure {
            nodeid: "tests/test_prod.py::test_critical_flow".into(),
            short_name: Some("test_critical_flow".into()),
            docstring: Some("Validates the critical flow.\n\n    - step one\n    ".into()),
            message: Some("AssertionError: assert 201 == 502".into()),
            traceback:
                "def test_critical_flow():\n>       assert 201 == 502\nE       assert 201 == 502"
                    .into(),
            phase: Phase::Call,
        }
    }

    fn options() -> IncidentOptions {
        IncidentOptions {
            service_id: "IIXOOXZ".into(),
            urgency: Some(Urgency::High),
            priority_id: None,
            escalation_policy_id: None,
            assignee_id: Some("SE169QA".into()),
            incident_key: None,
            details: None,
        }
    }

    fn settings() -> Settings {
        Settings {
            api_url: Some("http://127.0.0.1:9999".into()),
            api_key: Some("secretkey123".into()),
            oauth_token: None,
            default_from: Some("oncall@example.com".into()),
            timeout_ms: 5_000,
            dry_run: false,
        }
    }

    fn sent(request: &AlertRequest) -> Value {
        serde_json::from_str(&request.body).unwrap()
    }

    #[test]
    fn builds_the_exact_create_incident_request() {
        let request = build_request(&failure(), &options(), &settings()).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "http://127.0.0.1:9999/incidents");
        let names: Vec<(&str, &str, bool)> = request
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str(), h.sensitive))
            .collect();
        assert_eq!(
            names,
            vec![
                ("Accept", ACCEPT, false),
                ("Content-Type", "application/json", false),
                ("Authorization", "Token token=secretkey123", true),
                ("From", "oncall@example.com", false),
            ]
        );
        assert_eq!(
            sent(&request),
            json!({"incident": {
                "type": "incident",
                "title": "Test failed: test_critical_flow: AssertionError: assert 201 == 502",
                "service": {"id": "IIXOOXZ", "type": "service_reference"},
                "urgency": "high",
                "assignments": [{"assignee": {"id": "SE169QA", "type": "user_reference"}}],
                "body": {"type": "incident_body", "details":
                    "Validates the critical flow.\n\n- step one\n\nFailure:\ndef test_critical_flow():\n>       assert 201 == 502\nE       assert 201 == 502\n\nTest: tests/test_prod.py::test_critical_flow"},
            }})
        );
    }

    #[test]
    fn optional_references_appear_only_when_given() {
        let mut options = options();
        options.assignee_id = None;
        options.urgency = None;
        options.escalation_policy_id = Some("PT20YPA".into());
        options.priority_id = Some("P53ZZH5".into());
        options.incident_key = Some("checkout-flow".into());
        let body = sent(&build_request(&failure(), &options, &settings()).unwrap());
        let incident = &body["incident"];
        assert_eq!(
            incident["escalation_policy"],
            json!({"id": "PT20YPA", "type": "escalation_policy_reference"})
        );
        assert_eq!(
            incident["priority"],
            json!({"id": "P53ZZH5", "type": "priority_reference"})
        );
        assert_eq!(incident["incident_key"], "checkout-flow");
        assert!(incident.get("assignments").is_none());
        assert!(incident.get("urgency").is_none());
    }

    #[test]
    fn the_title_takes_the_first_line_of_the_crash_message() {
        let mut f = failure();
        f.message = Some("\nAssertionError: checkout returned 500\nassert 1 == 2".into());
        assert_eq!(
            title(&f),
            "Test failed: test_critical_flow: AssertionError: checkout returned 500"
        );
    }

    #[test]
    fn details_replace_the_docstring() {
        let mut options = options();
        options.details = Some("Checkout is down".into());
        let details = body(&failure(), &options);
        assert!(details.starts_with("Checkout is down\n\nFailure:\n"));
        assert!(!details.contains("Validates"));
    }

    #[test]
    fn the_title_falls_back_to_the_nodeid_and_names_the_phase() {
        let mut f = failure();
        f.short_name = None;
        f.message = None;
        f.phase = Phase::Setup;
        assert_eq!(
            title(&f),
            "Test errored in setup: tests/test_prod.py::test_critical_flow"
        );
    }

    #[test]
    fn long_titles_and_tracebacks_are_cut_to_the_limits_keeping_the_assertion() {
        let mut f = failure();
        f.message = Some("x".repeat(5000));
        f.traceback = "frame\n".repeat(20_000) + "E   assert the end";
        let request = build_request(&f, &options(), &settings()).unwrap();
        let incident = &sent(&request)["incident"];
        let title = incident["title"].as_str().unwrap();
        assert_eq!(title.chars().count(), TITLE_MAX);
        assert!(title.ends_with('…'));
        let details = incident["body"]["details"].as_str().unwrap();
        assert_eq!(details.chars().count(), BODY_MAX);
        assert!(
            details.contains("E   assert the end\n\nTest: tests/test_prod.py::test_critical_flow")
        );
        assert!(details.contains("characters cut]"));
    }

    #[test]
    fn secrets_in_a_traceback_never_reach_the_incident() {
        let mut f = failure();
        f.message = Some("KeyError: secretkey123".into());
        f.traceback = "env = {'PAGERDUTY_API_KEY': 'secretkey123'}".into();
        let request = build_request(&f, &options(), &settings()).unwrap();
        assert!(!request.body.contains("secretkey123"));
        assert!(!request.title.contains("secretkey123"));
        assert!(request.body.contains("[redacted]"));
    }

    #[test]
    fn a_secret_across_the_title_or_body_cut_leaves_no_piece_behind() {
        let mut f = failure();
        // The key starts 10 characters before the title's cut.
        f.message = Some(format!("{}key=secretkey123", "x".repeat(TITLE_MAX - 40)));
        f.traceback = format!("key=secretkey123{}", "y".repeat(BODY_MAX));
        let request = build_request(&f, &options(), &settings()).unwrap();
        for piece in ["secretkey", "ey123", "cretk"] {
            assert!(!request.title.contains(piece), "{piece} in title");
            assert!(!request.body.contains(piece), "{piece} in body");
        }
    }

    #[test]
    fn a_dry_run_without_credentials_builds_without_authorization() {
        let mut s = settings();
        s.api_key = None;
        s.default_from = None;
        s.dry_run = true;
        let request = build_request(&failure(), &options(), &s).unwrap();
        assert!(request
            .headers
            .iter()
            .all(|h| h.name != "Authorization" && h.name != "From"));
    }

    #[test]
    fn unicode_survives_intact() {
        let mut f = failure();
        f.message = Some("AssertionError: 'café' != 'cafe' ✓".into());
        let request = build_request(&f, &options(), &settings()).unwrap();
        assert!(sent(&request)["incident"]["title"]
            .as_str()
            .unwrap()
            .ends_with("'café' != 'cafe' ✓"));
    }
}
