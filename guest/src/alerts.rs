//! The requests a host asks for, sent to whichever API the test's
//! destination uses: trigger, resolve, and the aggregate past the cap.

// `Value::from`, not `json!`: the macro's `to_value(..).unwrap()` would pull
// in serde_json's error formatting, for conversions that cannot fail.
use serde_json::{Map, Value};

use crate::ci;
use crate::compose;
use crate::dedup;
use crate::destination::{self, Destination};
use crate::event::{self, Trigger};
use crate::incident;
use crate::links;
use crate::note;
use crate::pytest_pagerduty::alerts::types::{
    AlertRequest, BuildError, IncidentOptions, MarkerError, Setting, Settings, Severity,
    TestFailure, Urgency,
};
use crate::settings;
use crate::text;

/// Room for the failure text in an event's details, in bytes.
const EVENT_TRACEBACK_MAX: usize = 16 * 1024;
/// An aggregate event lists its tests within this many bytes (and at most
/// `AGGREGATE_LIST_COUNT`), far inside the Events API's 512 KB.
const AGGREGATE_LIST_MAX: usize = 64 * 1024;
const AGGREGATE_LIST_COUNT: usize = 500;

fn no_destination() -> BuildError {
    BuildError::Marker(MarkerError {
        argument: Some("service_id".to_string()),
        problem: "the test has no service_id and no routing key is set".to_string(),
        fix: "give it service_id=... (REST API) or routing_key=... (Events API v2)".to_string(),
    })
}

fn destination<'a>(
    options: &'a IncidentOptions,
    settings: &'a Settings,
) -> Result<Destination<'a>, BuildError> {
    destination::of(options, settings).ok_or_else(no_destination)
}

pub fn trigger(
    failure: &TestFailure,
    options: &IncidentOptions,
    settings: &Settings,
    severity: Option<Severity>,
) -> Result<AlertRequest, BuildError> {
    let checked = settings::check(settings)?;
    let destination = destination(options, settings)?;
    // From the id as the host knows it, as `resolve` makes it.
    let default_key = || dedup::for_test(&destination, &failure.nodeid);
    let secrets = compose::secrets(settings, &options.routing_key);
    let failure = compose::redacted(failure, &secrets);
    let details = compose::redacted_details(options, &secrets);
    // An info alert (a flaky test) must not page: in REST, low urgency.
    let low = IncidentOptions {
        urgency: Some(Urgency::Low),
        ..options.clone()
    };
    let options = if severity == Some(Severity::Info) {
        &low
    } else {
        options
    };
    let title = compose::title(&failure);
    let dedup_key = options.dedup_key.clone().unwrap_or_else(default_key);
    let run = ci::run(&failure.ci);
    match destination {
        Destination::Rest { service_id } => {
            // The CI run is in the body's footer already.
            let links = links::of(Some(&failure), None, options.runbook_url.as_deref());
            let body = compose::body(&failure, details.as_deref(), run.as_ref(), &links);
            Ok(incident::create(
                &checked, settings, service_id, options, title, body, dedup_key,
            )?)
        }
        Destination::Events { routing_key } => {
            let description = compose::description(&failure, details.as_deref());
            let mut custom = vec![
                (
                    "failure",
                    Value::from(compose::traceback(&failure, EVENT_TRACEBACK_MAX)),
                ),
                (
                    "duration_seconds",
                    Value::from((failure.duration_seconds * 1000.0).round() / 1000.0),
                ),
            ];
            if !description.is_empty() {
                custom.push(("description", Value::from(description)));
            }
            let severity = event::severity(options, severity);
            Ok(test_event(
                &checked,
                settings,
                (routing_key, &dedup_key, &title, severity),
                &failure,
                custom,
                options.runbook_url.as_deref(),
            ))
        }
    }
}

/// An Events API v2 trigger about one test: its id, these `details`, and
/// the CI run in its custom details; its links (source, run, runbook).
fn test_event(
    checked: &settings::Checked,
    settings: &Settings,
    (routing_key, dedup_key, title, severity): (&str, &str, &str, Severity),
    failure: &TestFailure,
    details: Vec<(&str, Value)>,
    runbook: Option<&str>,
) -> AlertRequest {
    let run = ci::run(&failure.ci);
    let mut custom = Map::new();
    custom.insert("nodeid".into(), Value::from(compose::nodeid(failure)));
    for (name, value) in details {
        custom.insert(name.into(), value);
    }
    let ci = event::ci_details(run.as_ref());
    if !ci.is_null() {
        custom.insert("ci".into(), ci);
    }
    event::trigger(
        checked,
        settings,
        Trigger {
            routing_key,
            dedup_key,
            title,
            severity,
            failure,
            links: links::of(Some(failure), run.as_ref(), runbook),
            run: run.as_ref(),
            custom_details: custom,
        },
    )
}

/// A note for a repeat failure on an open REST incident: to the incident
/// when its id is known, else a lookup by key that leads to it. `Ok(Err)`
/// says why there is none (Events API v2, or this tool's share of notes).
pub fn repeat(
    failure: &TestFailure,
    options: &IncidentOptions,
    settings: &Settings,
    (incident_id, remembered_key, notes): (Option<&str>, Option<&str>, u32),
) -> Result<Result<AlertRequest, String>, BuildError> {
    let checked = settings::check(settings)?;
    let destination = destination(options, settings)?;
    let Destination::Rest { service_id } = destination else {
        return Ok(Err(
            "not noted: Events API v2 adds the new trigger, with its failure, to the alert's log"
                .to_string(),
        ));
    };
    // The incident the trigger was answered "already open" for has its key.
    let dedup_key = options
        .dedup_key
        .clone()
        .unwrap_or_else(|| dedup::for_test(&destination, &failure.nodeid));
    // What the host remembers is of that incident only if it was opened with
    // that key (a marker's key or service may have changed since).
    let (incident_id, notes) = match remembered_key {
        Some(key) if key != dedup_key => (None, 0),
        _ => (incident_id, notes),
    };
    if let Some(refusal) = note::refusal(notes) {
        return Ok(Err(refusal));
    }
    let secrets = compose::secrets(settings, &options.routing_key);
    let failure = compose::redacted(failure, &secrets);
    let content = note::content(&failure, ci::run(&failure.ci).as_ref(), notes);
    Ok(Ok(match incident_id {
        Some(id) => incident::note(&checked, settings, &failure.nodeid, id, &content, dedup_key)?,
        None => {
            let mut lookup =
                incident::find(&checked, settings, &failure.nodeid, service_id, dedup_key)?;
            lookup.title = format!("Find the incident of {} to note", failure.nodeid);
            lookup.then_note = Some(content);
            lookup
        }
    }))
}

pub fn resolve(
    nodeid: &str,
    options: &IncidentOptions,
    settings: &Settings,
    incident_id: Option<&str>,
) -> Result<AlertRequest, BuildError> {
    let checked = settings::check(settings)?;
    let destination = destination(options, settings)?;
    let dedup_key = options
        .dedup_key
        .clone()
        .unwrap_or_else(|| dedup::for_test(&destination, nodeid));
    match (destination, incident_id) {
        (Destination::Events { routing_key }, _) => Ok(event::resolve(
            &checked,
            settings,
            routing_key,
            &dedup_key,
            nodeid,
        )),
        (Destination::Rest { .. }, Some(id)) => Ok(incident::resolve(
            &checked, settings, nodeid, id, dedup_key,
        )?),
        (Destination::Rest { service_id }, None) => Ok(incident::find(
            &checked, settings, nodeid, service_id, dedup_key,
        )?),
    }
}

/// The key of the aggregate alert these options' failures would share: hosts
/// group failures past the cap by it.
pub fn aggregate_key(
    options: &IncidentOptions,
    settings: &Settings,
    suite: &str,
) -> Result<String, BuildError> {
    Ok(dedup::for_aggregate(
        &destination(options, settings)?,
        suite,
    ))
}

/// One alert for the failures past the run's cap, with a key of its own.
pub fn aggregate(
    failures: &[&TestFailure],
    suite: &str,
    options: &IncidentOptions,
    settings: &Settings,
) -> Result<AlertRequest, BuildError> {
    let checked = settings::check(settings)?;
    let destination = destination(options, settings)?;
    let secrets = compose::secrets(settings, &options.routing_key);
    // Shards of one CI run share the aggregate: say which one this is.
    let run = failures.first().and_then(|f| ci::run(&f.ci));
    let from = run.as_ref().map(from_where).unwrap_or_default();
    let title = compose::one_line_title(&format!(
        "{} more tests failed in {suite}{from}",
        failures.len()
    ));
    // One redacted copy at a time: held failures may each carry the whole
    // text limit, and copying them all at once would trap at 64 MiB.
    let listed: Vec<String> = failures
        .iter()
        .map(|f| {
            let f = compose::redacted(f, &secrets);
            format!("- {}: {}", compose::nodeid(&f), compose::title(&f))
        })
        .collect();
    let dedup_key = dedup::for_aggregate(&destination, suite);
    match destination {
        Destination::Rest { service_id } => {
            // The CI run and the runbook (as on every incident) come first,
            // above the list a cut may end.
            let mut head: Vec<String> = run
                .as_ref()
                .map(|r| {
                    format!(
                        "CI: {}",
                        text::cut_end(&ci::describe(r), compose::NODEID_MAX)
                    )
                })
                .into_iter()
                .collect();
            let runbook = links::of(None, None, options.runbook_url.as_deref());
            if !runbook.is_empty() {
                head.push(links::lines(&runbook));
            }
            let head = if head.is_empty() {
                String::new()
            } else {
                format!("{}\n\n", text::join(&head, "\n"))
            };
            let body = text::cut_end(
                &format!(
                    "{head}The run's cap on incidents was reached; these failed too:\n{}",
                    text::join(&listed, "\n")
                ),
                compose::BODY_MAX,
            );
            Ok(incident::create(
                &checked, settings, service_id, options, title, body, dedup_key,
            )?)
        }
        Destination::Events { routing_key } => {
            let first = compose::redacted(failures.first().ok_or_else(no_destination)?, &secrets);
            let mut custom = Map::new();
            let mut room = AGGREGATE_LIST_MAX;
            let tests: Vec<Value> = listed
                .iter()
                .take(AGGREGATE_LIST_COUNT)
                .take_while(|l| {
                    room = room.saturating_sub(l.len());
                    room > 0
                })
                .map(|l| Value::from(l.as_str()))
                .collect();
            custom.insert("failed_tests".into(), Value::Array(tests));
            custom.insert("count".into(), Value::from(failures.len()));
            let ci = event::ci_details(run.as_ref());
            if !ci.is_null() {
                custom.insert("ci".into(), ci);
            }
            Ok(event::trigger(
                &checked,
                settings,
                Trigger {
                    routing_key,
                    dedup_key: &dedup_key,
                    title: &title,
                    severity: event::severity(options, None),
                    failure: &first,
                    links: links::of(None, run.as_ref(), options.runbook_url.as_deref()),
                    run: run.as_ref(),
                    custom_details: custom,
                },
            ))
        }
    }
}

/// ", from GitLab CI job test, shard 2 of 4": where an aggregate last came
/// from, for its title; empty when the run names neither job nor shard.
fn from_where(run: &ci::Run) -> String {
    let mut at = Vec::new();
    if let Some(job) = &run.job {
        at.push(format!("job {job}"));
    }
    if let Some(shard) = &run.shard {
        at.push(format!("shard {shard}"));
    }
    if at.is_empty() {
        return String::new();
    }
    format!(", from {} {}", run.system, text::join(&at, ", "))
}

/// The alert to the fallback routing key saying that `failure` could not
/// page: why, what to do, and where it was meant to go. A marker's own
/// routing key is not known here, so the settings say where that was.
pub fn fallback(
    failure: &TestFailure,
    reason: &str,
    fix: &str,
    settings: &Settings,
) -> Result<AlertRequest, BuildError> {
    let checked = settings::check(settings)?;
    let routing_key = destination::fallback_key(settings).ok_or_else(|| {
        settings::error(
            Setting::FallbackRoutingKey,
            "no fallback routing key is set, so an alert PagerDuty refused for good has nowhere else to go",
            "set the fallback routing key to an Events API v2 integration key someone watches",
        )
    })?;
    let secrets = compose::secrets(settings, &None);
    let dedup_key = dedup::for_fallback(&failure.nodeid);
    let failure = compose::redacted(failure, &secrets);
    let said = |t: &str| text::cut_end(&text::redact(t, &secrets), compose::DESCRIPTION_MAX);
    let (reason, fix) = (said(reason), said(fix));
    let title = compose::one_line_title(&format!(
        "pytest-pagerduty could not page for {}: {reason}",
        compose::name(&failure)
    ));
    let meant_for = if destination::events_by_default(settings) {
        "Events API v2 with the settings' routing key"
    } else {
        "the REST API, or Events API v2 for a marker with its own routing key"
    };
    let details = vec![
        ("reason", Value::from(reason)),
        ("fix", Value::from(fix)),
        ("meant_for", Value::from(meant_for)),
        ("rest_api", Value::from(checked.endpoint.url(""))),
        ("events_api", Value::from(checked.events.url(""))),
    ];
    Ok(test_event(
        &checked,
        settings,
        (routing_key, &dedup_key, &title, Severity::Error),
        &failure,
        details,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{BODY_MAX, TITLE_MAX};
    use crate::fixtures::{headers, settings, variables};
    use crate::pytest_pagerduty::alerts::types::{Phase, RequestKind, SourceLocation, Variable};
    use serde_json::{json, Value};

    const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

    fn refs(failures: &[TestFailure]) -> Vec<&TestFailure> {
        failures.iter().collect()
    }

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
            duration_seconds: 0.1234,
            ci: Vec::new(),
            host: "build-7".into(),
            source: None,
            failed_at_ms: None,
        }
    }

    fn options() -> IncidentOptions {
        IncidentOptions {
            service_id: Some("IIXOOXZ".into()),
            routing_key: None,
            urgency: Some(Urgency::High),
            severity: None,
            priority_id: None,
            escalation_policy_id: None,
            assignee_id: Some("SE169QA".into()),
            dedup_key: None,
            details: None,
            runbook_url: None,
            page_after_failures: None,
        }
    }

    fn sent(request: &AlertRequest) -> Value {
        serde_json::from_str(&request.body).unwrap()
    }

    fn test_key() -> String {
        dedup::for_test(
            &Destination::Rest {
                service_id: "IIXOOXZ",
            },
            "tests/test_prod.py::test_critical_flow",
        )
    }

    #[test]
    fn builds_the_exact_create_incident_request() {
        let request = trigger(&failure(), &options(), &settings(), None).unwrap();
        assert_eq!(request.kind, RequestKind::RestCreate);
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "http://127.0.0.1:9999/incidents");
        assert_eq!(
            headers(&request),
            vec![
                ("Accept", ACCEPT, false),
                ("Content-Type", "application/json", false),
                ("Authorization", "Token token=secretkey123", true),
                ("From", "oncall@example.com", false),
            ]
        );
        assert_eq!(request.dedup_key, test_key());
        assert_eq!(
            sent(&request),
            json!({"incident": {
                "type": "incident",
                "title": "Test failed: test_critical_flow: AssertionError: assert 201 == 502",
                "service": {"id": "IIXOOXZ", "type": "service_reference"},
                "urgency": "high",
                "assignments": [{"assignee": {"id": "SE169QA", "type": "user_reference"}}],
                "incident_key": test_key(),
                "body": {"type": "incident_body", "details":
                    "Validates the critical flow.\n\n- step one\n\nFailure:\ndef test_critical_flow():\n>       assert 201 == 502\nE       assert 201 == 502\n\nTest: tests/test_prod.py::test_critical_flow"},
            }})
        );
        assert_eq!(request.display_body, request.body);
    }

    #[test]
    fn optional_references_appear_only_when_given_and_a_given_key_wins() {
        let mut options = options();
        options.assignee_id = None;
        options.urgency = None;
        options.escalation_policy_id = Some("PT20YPA".into());
        options.priority_id = Some("P53ZZH5".into());
        options.dedup_key = Some("checkout-flow".into());
        let body = sent(&trigger(&failure(), &options, &settings(), None).unwrap());
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
    fn details_replace_the_docstring() {
        let mut options = options();
        options.details = Some("Checkout is down".into());
        let body = sent(&trigger(&failure(), &options, &settings(), None).unwrap());
        let details = body["incident"]["body"]["details"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(details.starts_with("Checkout is down\n\nFailure:\n"));
        assert!(!details.contains("Validates"));
    }

    #[test]
    fn titles_fall_back_to_the_nodeid_name_the_phase_and_take_one_line() {
        let mut f = failure();
        f.short_name = None;
        f.message = None;
        f.phase = Phase::Setup;
        assert_eq!(
            compose::title(&f),
            "Test errored in setup: tests/test_prod.py::test_critical_flow"
        );
        let mut f = failure();
        f.message = Some("\nAssertionError: checkout returned 500\nassert 1 == 2".into());
        assert_eq!(
            compose::title(&f),
            "Test failed: test_critical_flow: AssertionError: checkout returned 500"
        );
    }

    #[test]
    fn long_titles_and_tracebacks_are_cut_to_the_limits_keeping_the_assertion() {
        let mut f = failure();
        f.message = Some("x".repeat(5000));
        f.traceback = "frame\n".repeat(20_000) + "E   assert the end";
        let request = trigger(&f, &options(), &settings(), None).unwrap();
        let incident = &sent(&request)["incident"];
        let title = incident["title"].as_str().unwrap();
        assert_eq!(title.chars().count(), TITLE_MAX);
        assert!(title.ends_with('…'));
        let details = incident["body"]["details"].as_str().unwrap();
        assert_eq!(details.len(), BODY_MAX);
        assert!(
            details.contains("E   assert the end\n\nTest: tests/test_prod.py::test_critical_flow")
        );
        assert!(details.contains("bytes cut]"));
    }

    #[test]
    fn secrets_never_reach_an_incident_even_across_a_cut() {
        let mut f = failure();
        f.message = Some(format!("{}key=secretkey123", "x".repeat(TITLE_MAX - 40)));
        f.traceback = format!("key=secretkey123{}", "y".repeat(BODY_MAX));
        let request = trigger(&f, &options(), &settings(), None).unwrap();
        for piece in ["secretkey", "ey123", "cretk"] {
            assert!(!request.title.contains(piece), "{piece} in title");
            assert!(!request.body.contains(piece), "{piece} in body");
        }
        let mut f = failure();
        f.traceback = "env = {'PAGERDUTY_API_KEY': 'secretkey123'}".into();
        let request = trigger(&f, &options(), &settings(), None).unwrap();
        assert!(request.body.contains("[redacted]"));
    }

    #[test]
    fn a_dry_run_without_credentials_builds_without_authorization() {
        let mut s = settings();
        s.api_key = None;
        s.default_from = None;
        s.dry_run = true;
        let request = trigger(&failure(), &options(), &s, None).unwrap();
        assert!(request
            .headers
            .iter()
            .all(|h| h.name != "Authorization" && h.name != "From"));
    }

    #[test]
    fn unicode_survives_intact() {
        let mut f = failure();
        f.message = Some("AssertionError: 'café' != 'cafe' ✓".into());
        let request = trigger(&f, &options(), &settings(), None).unwrap();
        assert!(sent(&request)["incident"]["title"]
            .as_str()
            .unwrap()
            .ends_with("'café' != 'cafe' ✓"));
    }

    fn events_settings() -> Settings {
        let mut s = settings();
        s.routing_key = Some("R0UTINGKEY0123456789abcdefghijkl".into());
        s
    }

    #[test]
    fn with_a_routing_key_a_failure_is_an_events_v2_trigger() {
        let mut f = failure();
        f.ci = vec![
            Variable {
                name: "GITHUB_ACTIONS".into(),
                value: "true".into(),
            },
            Variable {
                name: "GITHUB_SERVER_URL".into(),
                value: "https://github.com".into(),
            },
            Variable {
                name: "GITHUB_REPOSITORY".into(),
                value: "acme/shop".into(),
            },
            Variable {
                name: "GITHUB_RUN_ID".into(),
                value: "42".into(),
            },
            Variable {
                name: "GITHUB_JOB".into(),
                value: "smoke".into(),
            },
        ];
        let request = trigger(&f, &options(), &events_settings(), None).unwrap();
        assert_eq!(request.kind, RequestKind::EventsTrigger);
        assert_eq!(request.url, "http://127.0.0.1:9998/v2/enqueue");
        assert!(headers(&request)
            .iter()
            .all(|(n, _, _)| *n != "Authorization"));
        let key = dedup::for_test(
            &Destination::Events {
                routing_key: "R0UTINGKEY0123456789abcdefghijkl",
            },
            "tests/test_prod.py::test_critical_flow",
        );
        let event = sent(&request);
        assert_eq!(
            event,
            json!({
                "routing_key": "R0UTINGKEY0123456789abcdefghijkl",
                "event_action": "trigger",
                "dedup_key": key,
                "client": "pytest-pagerduty",
                "client_url": "https://github.com/acme/shop/actions/runs/42",
                "payload": {
                    "summary": "Test failed: test_critical_flow: AssertionError: assert 201 == 502",
                    "source": "GitHub Actions: smoke",
                    "severity": "critical",
                    "component": "tests/test_prod",
                    "group": "tests",
                    "class": "pytest",
                    "custom_details": {
                        "nodeid": "tests/test_prod.py::test_critical_flow",
                        "description": "Validates the critical flow.\n\n- step one",
                        "failure": "def test_critical_flow():\n>       assert 201 == 502\nE       assert 201 == 502",
                        "duration_seconds": 0.123,
                        "ci": {"system": "GitHub Actions", "url": "https://github.com/acme/shop/actions/runs/42",
                               "commit": null, "branch": null, "job": "smoke"},
                    },
                },
                "links": [{"href": "https://github.com/acme/shop/actions/runs/42", "text": "GitHub Actions run"}],
            })
        );
        let shown: Value = serde_json::from_str(&request.display_body).unwrap();
        assert_eq!(shown["routing_key"], "[redacted]");
        assert!(!request.display_body.contains("R0UTINGKEY"));
        assert_eq!(shown["payload"], event["payload"]);
    }

    #[test]
    fn a_flaky_test_can_be_reported_at_info_severity() {
        let request = trigger(
            &failure(),
            &options(),
            &events_settings(),
            Some(Severity::Info),
        )
        .unwrap();
        assert_eq!(sent(&request)["payload"]["severity"], "info");
    }

    #[test]
    fn a_flaky_info_incident_in_rest_mode_is_low_urgency() {
        let request = trigger(&failure(), &options(), &settings(), Some(Severity::Info)).unwrap();
        assert_eq!(sent(&request)["incident"]["urgency"], "low");
    }

    #[test]
    fn a_secret_in_a_test_id_or_in_the_markers_routing_key_is_redacted() {
        let mut f = failure();
        f.nodeid = "t.py::test_x[secretkey123]".into();
        f.short_name = Some("test_x[secretkey123]".into());
        let request = trigger(&f, &options(), &settings(), None).unwrap();
        assert!(!request.body.contains("secretkey123") && !request.title.contains("secretkey123"));
        let mut options = options();
        options.routing_key = Some("MARKERKEY42abcdefghijklmnopqrstu".into());
        f.traceback = "key MARKERKEY42abcdefghijklmnopqrstu".into();
        let request = trigger(&f, &options, &settings(), None).unwrap();
        assert!(!request
            .display_body
            .contains("MARKERKEY42abcdefghijklmnopqrstu"));
        assert!(sent(&request)["payload"]["custom_details"]["failure"] == "key [redacted]");
    }

    #[test]
    fn failures_group_for_the_aggregate_by_where_they_would_go() {
        let mut other = options();
        other.service_id = Some("POTHER".into());
        assert_ne!(
            aggregate_key(&options(), &settings(), "s").unwrap(),
            aggregate_key(&other, &settings(), "s").unwrap()
        );
        // With a routing key in the settings, both go to the same place.
        assert_eq!(
            aggregate_key(&options(), &events_settings(), "s").unwrap(),
            aggregate_key(&other, &events_settings(), "s").unwrap()
        );
    }

    #[test]
    fn resolving_uses_the_same_key_in_both_apis() {
        let events = resolve(
            "tests/test_prod.py::test_critical_flow",
            &options(),
            &events_settings(),
            None,
        )
        .unwrap();
        assert_eq!(events.kind, RequestKind::EventsResolve);
        let trigger_key = trigger(&failure(), &options(), &events_settings(), None)
            .unwrap()
            .dedup_key;
        assert_eq!(
            sent(&events),
            json!({"routing_key": "R0UTINGKEY0123456789abcdefghijkl", "event_action": "resolve", "dedup_key": trigger_key})
        );

        let find = resolve(
            "tests/test_prod.py::test_critical_flow",
            &options(),
            &settings(),
            None,
        )
        .unwrap();
        assert_eq!(find.kind, RequestKind::RestFind);
        assert_eq!(find.method, "GET");
        assert_eq!(
            find.url,
            format!("http://127.0.0.1:9999/incidents?incident_key={}&service_ids%5B%5D=IIXOOXZ&statuses%5B%5D=triggered&statuses%5B%5D=acknowledged&date_range=all", test_key())
        );
        let put = resolve(
            "tests/test_prod.py::test_critical_flow",
            &options(),
            &settings(),
            Some("PT4KHLK"),
        )
        .unwrap();
        assert_eq!(put.kind, RequestKind::RestResolve);
        assert_eq!(
            (put.method.as_str(), put.url.as_str()),
            ("PUT", "http://127.0.0.1:9999/incidents/PT4KHLK")
        );
        assert_eq!(
            sent(&put),
            json!({"incident": {"type": "incident_reference", "status": "resolved"}})
        );
        assert!(headers(&put).contains(&("From", "oncall@example.com", false)));
    }

    /// A failure with every text at `n` bytes (the traceback and docstring
    /// full of what costs most: tabs, escapes, multi-byte characters).
    fn huge_failure(n: usize) -> TestFailure {
        let fill = |unit: &str| {
            let mut text = unit.repeat(n / unit.len());
            text.push_str(&"x".repeat(n - text.len()));
            text
        };
        TestFailure {
            nodeid: fill("t.py::é"),
            short_name: Some(fill("name")),
            docstring: Some(fill("\t\n")),
            message: Some(fill("\u{1b}[31m€")),
            traceback: fill("E\0\u{1}€"),
            phase: Phase::Call,
            duration_seconds: 1.0,
            ci: crate::ci::variables()
                .into_iter()
                .map(|name| Variable {
                    value: fill("v"),
                    name,
                })
                .collect(),
            host: fill("h"),
            source: Some(SourceLocation {
                path: fill("/w/t/"),
                line: Some(u32::MAX),
            }),
            failed_at_ms: Some(u64::MAX),
        }
    }

    #[test]
    fn a_failure_at_the_text_limit_builds_within_every_limit() {
        let limit = compose::FAILURE_TEXT_LIMIT as usize;
        let f = huge_failure(limit);
        let rest = trigger(&f, &options(), &settings(), None).unwrap();
        let details = sent(&rest)["incident"]["body"]["details"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(details.len() <= BODY_MAX, "{}", details.len());
        assert!(
            sent(&rest)["incident"]["title"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= TITLE_MAX
        );
        let event = trigger(&f, &options(), &events_settings(), None).unwrap();
        assert!(
            event.body.len() <= event::PAYLOAD_MAX,
            "{}",
            event.body.len()
        );
        let summary = sent(&event)["payload"]["summary"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(summary.chars().count() <= TITLE_MAX);
        assert!(!summary.contains(|c: char| c.is_control()), "{summary:?}");
        let many = vec![f.clone(); 3];
        let grouped = aggregate(&refs(&many), "suite", &options(), &events_settings()).unwrap();
        assert!(grouped.body.len() <= event::PAYLOAD_MAX);
        let fell_back = fallback(&f, &"r".repeat(limit), "fix", &fallback_settings()).unwrap();
        assert!(fell_back.body.len() <= event::PAYLOAD_MAX);
    }

    #[test]
    fn a_long_test_id_is_cut_in_the_body_but_keys_the_whole_id() {
        let mut f = failure();
        f.nodeid = format!("tests/test_x.py::test_{}", "é".repeat(50_000));
        f.short_name = None;
        let request = trigger(&f, &options(), &settings(), None).unwrap();
        let details = sent(&request)["incident"]["body"]["details"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(details.len() <= BODY_MAX);
        assert!(details.contains("E       assert 201 == 502\n\nTest: tests/test_x.py::test_é"));
        assert!(details.ends_with('…'));
        let mut other = f.clone();
        other.nodeid.push('x');
        let again = trigger(&other, &options(), &settings(), None).unwrap();
        assert_ne!(request.dedup_key, again.dedup_key);
    }

    #[test]
    fn titles_and_summaries_carry_no_control_characters_and_bodies_no_nul_or_escapes() {
        let mut f = failure();
        f.message = Some("\u{1b}[1m\u{1b}[31mAssertionError\u{1b}[0m: a\0b\u{7}c\td".into());
        f.traceback = "\u{1b}[31mE   assert\u{1b}[0m 1\0 == 2\u{1}".into();
        let request = trigger(&f, &options(), &settings(), None).unwrap();
        let incident = &sent(&request)["incident"];
        assert_eq!(
            incident["title"],
            "Test failed: test_critical_flow: AssertionError: abc d"
        );
        let details = incident["body"]["details"].as_str().unwrap();
        assert!(
            details.contains("Failure:\nE   assert 1 == 2\u{1}"),
            "{details:?}"
        );
        assert!(!request.body.contains("\\u0000") && !request.body.contains("\\u001b"));
    }

    #[test]
    fn an_event_past_pagerdutys_512_kb_keeps_its_alert_with_its_details_trimmed_and_a_note() {
        let s = events_settings();
        let checked = settings::check(&s).unwrap();
        let mut custom = Map::new();
        custom.insert("nodeid".into(), Value::from("t.py::test_x"));
        custom.insert("blob".into(), Value::from("\u{1}".repeat(100_000)));
        let request = event::trigger(
            &checked,
            &s,
            Trigger {
                routing_key: "R0UTINGKEY0123456789abcdefghijkl",
                dedup_key: "k",
                title: "t",
                severity: Severity::Error,
                failure: &failure(),
                run: None,
                custom_details: custom,
                links: Vec::new(),
            },
        );
        assert!(request.body.len() <= event::PAYLOAD_MAX);
        let details = &sent(&request)["payload"]["custom_details"];
        assert_eq!(details["nodeid"], "t.py::test_x");
        // Trimmed, not dropped: half of it still fits.
        let blob = details["blob"].as_str().unwrap();
        assert!(
            blob.len() > 40_000 && blob.len() < 100_000,
            "{}",
            blob.len()
        );
        assert!(blob.ends_with('…'));
        assert_eq!(
            details["note"],
            "custom_details were trimmed from 600035 bytes to keep the event within PagerDuty's 512 KB limit"
        );
    }

    fn fallback_settings() -> Settings {
        let mut s = settings();
        s.fallback_routing_key = Some("FALLBACK0123456789abcdefghijklmn".into());
        s
    }

    #[test]
    fn a_fallback_alert_says_which_test_could_not_page_why_and_the_fix() {
        let mut f = failure();
        f.traceback = "key=secretkey123".into();
        let request = fallback(
            &f,
            "PagerDuty answered 400: Invalid Input Provided: Service not found",
            "check the test's ids",
            &fallback_settings(),
        )
        .unwrap();
        assert_eq!(request.kind, RequestKind::EventsTrigger);
        assert_eq!(request.url, "http://127.0.0.1:9998/v2/enqueue");
        assert_eq!(request.authority, "127.0.0.1:9998");
        let event = sent(&request);
        assert_eq!(event["routing_key"], "FALLBACK0123456789abcdefghijklmn");
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["payload"]["severity"], "error");
        assert_eq!(
            event["payload"]["summary"],
            "pytest-pagerduty could not page for test_critical_flow: PagerDuty answered 400: Invalid Input Provided: Service not found"
        );
        let details = &event["payload"]["custom_details"];
        assert_eq!(details["nodeid"], "tests/test_prod.py::test_critical_flow");
        assert_eq!(details["fix"], "check the test's ids");
        assert_eq!(details["rest_api"], "http://127.0.0.1:9999");
        let key = dedup::for_fallback("tests/test_prod.py::test_critical_flow");
        assert_eq!(request.dedup_key, key);
        assert_ne!(
            key,
            trigger(&failure(), &options(), &settings(), None)
                .unwrap()
                .dedup_key
        );
        for secret in ["secretkey123", "FALLBACK0123456789abcdefghijklmn"] {
            assert!(!request.display_body.contains(secret), "{secret}");
        }
        assert!(!request.body.contains("secretkey123"));
    }

    #[test]
    fn without_a_fallback_key_the_fallback_names_the_setting() {
        match fallback(&failure(), "r", "f", &settings()) {
            Err(BuildError::Setting(e)) => {
                assert_eq!(e.setting, Setting::FallbackRoutingKey)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_request_names_the_authority_it_goes_to() {
        let rest = trigger(&failure(), &options(), &settings(), None).unwrap();
        assert_eq!(rest.authority, "127.0.0.1:9999");
        let events = trigger(&failure(), &options(), &events_settings(), None).unwrap();
        assert_eq!(events.authority, "127.0.0.1:9998");
        let mut s = settings();
        s.api_url = None;
        let find = resolve("t.py::test_x", &options(), &s, None).unwrap();
        assert_eq!(find.authority, "api.pagerduty.com");
    }

    #[test]
    fn failures_past_the_cap_become_one_incident_with_its_own_key() {
        let mut second = failure();
        second.nodeid = "tests/test_prod.py::test_login".into();
        second.short_name = Some("test_login".into());
        let request =
            aggregate(&refs(&[failure(), second]), "shop", &options(), &settings()).unwrap();
        let incident = &sent(&request)["incident"];
        assert_eq!(incident["title"], "2 more tests failed in shop");
        let details = incident["body"]["details"].as_str().unwrap();
        assert!(details.contains("- tests/test_prod.py::test_login: Test failed: test_login: AssertionError: assert 201 == 502"));
        assert_ne!(request.dedup_key, test_key());
        assert_eq!(incident["incident_key"], request.dedup_key.as_str());
    }

    fn github_failure() -> TestFailure {
        let mut f = failure();
        f.ci = variables(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_SHA", "4f2a9c1d"),
            ("GITHUB_WORKSPACE", "/home/runner/work/shop/shop"),
        ]);
        f.source = Some(SourceLocation {
            path: "/home/runner/work/shop/shop/tests/test_prod.py".into(),
            line: Some(12),
        });
        f
    }

    const SOURCE: &str = "https://github.com/acme/shop/blob/4f2a9c1d/tests/test_prod.py#L12";
    const RUN: &str = "https://github.com/acme/shop/actions/runs/42";
    const RUNBOOK: &str = "https://wiki.example.com/runbooks/checkout";

    fn with_runbook() -> IncidentOptions {
        IncidentOptions {
            runbook_url: Some(RUNBOOK.into()),
            ..options()
        }
    }

    #[test]
    fn an_event_links_the_source_at_the_commit_the_run_and_the_runbook() {
        let request =
            trigger(&github_failure(), &with_runbook(), &events_settings(), None).unwrap();
        assert_eq!(
            sent(&request)["links"],
            json!([
                {"href": SOURCE, "text": "Test source: tests/test_prod.py line 12"},
                {"href": RUN, "text": "GitHub Actions run"},
                {"href": RUNBOOK, "text": "Runbook"},
            ])
        );
        // Outside CI only the runbook; without it, no links at all.
        let request = trigger(&failure(), &with_runbook(), &events_settings(), None).unwrap();
        assert_eq!(
            sent(&request)["links"],
            json!([{"href": RUNBOOK, "text": "Runbook"}])
        );
        let request = trigger(&failure(), &options(), &events_settings(), None).unwrap();
        assert!(sent(&request).get("links").is_none());
    }

    #[test]
    fn a_rest_incident_lists_the_source_and_the_runbook_as_lines_of_its_body() {
        let request = trigger(&github_failure(), &with_runbook(), &settings(), None).unwrap();
        let details = sent(&request)["incident"]["body"]["details"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            details.ends_with(&format!(
                "\n\nTest: tests/test_prod.py::test_critical_flow\nCI: GitHub Actions {RUN} (commit 4f2a9c1d)\nTest source: tests/test_prod.py line 12: {SOURCE}\nRunbook: {RUNBOOK}"
            )),
            "{details}"
        );
        // The run is on its CI line, once.
        assert_eq!(details.matches(RUN).count(), 1);
        let plain = trigger(&failure(), &options(), &settings(), None).unwrap();
        assert!(sent(&plain)["incident"]["body"]["details"]
            .as_str()
            .unwrap()
            .ends_with("\n\nTest: tests/test_prod.py::test_critical_flow"));
    }

    #[test]
    fn an_events_summary_is_cut_at_1024_characters_with_an_ellipsis() {
        let mut f = failure();
        f.message = Some(format!("AssertionError: {}", "é".repeat(3000)));
        let request = trigger(&f, &options(), &events_settings(), None).unwrap();
        let summary = sent(&request)["payload"]["summary"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(summary.chars().count(), TITLE_MAX);
        assert!(summary.starts_with("Test failed: test_critical_flow: AssertionError: éé"));
        assert!(summary.ends_with("é…"));
        assert_eq!(request.title, summary);
        // At the limit exactly, nothing is cut.
        let room = TITLE_MAX - "Test failed: test_critical_flow: ".chars().count();
        f.message = Some("x".repeat(room));
        let request = trigger(&f, &options(), &events_settings(), None).unwrap();
        let summary = sent(&request)["payload"]["summary"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(summary.chars().count(), TITLE_MAX);
        assert!(summary.ends_with('x'));
    }

    #[test]
    fn a_failure_with_every_text_at_the_limit_builds_an_event_far_below_512_kb() {
        let limit = compose::FAILURE_TEXT_LIMIT as usize;
        let f = huge_failure(limit);
        let mut options = with_runbook();
        options.details = Some("d".repeat(limit));
        let request = trigger(&f, &options, &events_settings(), None).unwrap();
        // Far below, so trimming is never what keeps a test's alert in.
        assert!(request.body.len() < 64 * 1024, "{}", request.body.len());
        assert!(sent(&request)["payload"]["custom_details"]
            .get("note")
            .is_none());
    }

    fn gitlab_shard(index: &str) -> Vec<Variable> {
        variables(&[
            ("GITLAB_CI", "true"),
            ("CI_JOB_URL", "https://gitlab.com/acme/shop/-/jobs/77"),
            ("CI_JOB_NAME", "pytest"),
            ("CI_NODE_INDEX", index),
            ("CI_NODE_TOTAL", "4"),
        ])
    }

    #[test]
    fn an_aggregate_names_the_job_and_shard_it_came_from() {
        let mut first = failure();
        first.ci = gitlab_shard("2");
        let mut second = first.clone();
        second.nodeid = "tests/test_prod.py::test_login".into();
        let failures = [first, second];
        let rest = aggregate(&refs(&failures), "shop", &with_runbook(), &settings()).unwrap();
        let incident = &sent(&rest)["incident"];
        assert_eq!(
            incident["title"],
            "2 more tests failed in shop, from GitLab CI job pytest, shard 2 of 4"
        );
        // The CI line, then the runbook (a line of any incident's body).
        let details = incident["body"]["details"].as_str().unwrap();
        assert!(
            details.starts_with(&format!("CI: GitLab CI https://gitlab.com/acme/shop/-/jobs/77 (job pytest, shard 2 of 4)\nRunbook: {RUNBOOK}\n\nThe run's cap on incidents was reached")),
            "{details}"
        );
        let plain = aggregate(&refs(&failures), "shop", &options(), &settings()).unwrap();
        assert!(sent(&plain)["incident"]["body"]["details"]
            .as_str()
            .unwrap()
            .starts_with("CI: GitLab CI https://gitlab.com/acme/shop/-/jobs/77 (job pytest, shard 2 of 4)\n\nThe run's cap"));
        let events = aggregate(
            &refs(&failures),
            "shop",
            &with_runbook(),
            &events_settings(),
        )
        .unwrap();
        let event = sent(&events);
        assert_eq!(
            event["payload"]["summary"],
            "2 more tests failed in shop, from GitLab CI job pytest, shard 2 of 4"
        );
        // No one test's source: the run and the runbook.
        assert_eq!(
            event["links"],
            json!([
                {"href": "https://gitlab.com/acme/shop/-/jobs/77", "text": "GitLab CI run"},
                {"href": RUNBOOK, "text": "Runbook"},
            ])
        );
        // Another shard of the same run shares the key, and says it is another.
        let mut other = failure();
        other.ci = gitlab_shard("3");
        let third = aggregate(&[&other], "shop", &options(), &settings()).unwrap();
        assert_eq!(third.dedup_key, rest.dedup_key);
        assert_eq!(
            sent(&third)["incident"]["title"],
            "1 more tests failed in shop, from GitLab CI job pytest, shard 3 of 4"
        );
    }

    #[test]
    fn an_aggregate_from_a_run_naming_neither_job_nor_shard_says_nothing_of_where() {
        let mut f = failure();
        f.ci = variables(&[("BITBUCKET_BUILD_NUMBER", "77")]);
        let request = aggregate(&[&f], "shop", &options(), &settings()).unwrap();
        assert_eq!(
            sent(&request)["incident"]["title"],
            "1 more tests failed in shop"
        );
        let mut f = failure();
        f.ci = variables(&[("GITHUB_ACTIONS", "true"), ("GITHUB_JOB", "smoke")]);
        let request = aggregate(&[&f], "shop", &options(), &settings()).unwrap();
        assert_eq!(
            sent(&request)["incident"]["title"],
            "1 more tests failed in shop, from GitHub Actions job smoke"
        );
    }
}
