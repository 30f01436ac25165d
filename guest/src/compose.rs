//! What an alert says about a failed test: its title and body, with the
//! secrets taken out first and the sizes cut to PagerDuty's limits.

use crate::ci::{self, Run};
use crate::pytest_pagerduty::alerts::types::{IncidentOptions, Phase, Settings, TestFailure};
use crate::text;

/// PagerDuty's limit for a title or an event's summary.
pub const TITLE_MAX: usize = 1024;
/// Keeps a page readable and far below PagerDuty's request size limits.
pub const BODY_MAX: usize = 32 * 1024;

/// The secrets of these settings and options (a marker's routing key), to
/// keep out of anything sent or shown.
pub fn secrets<'a>(settings: &'a Settings, options: &'a IncidentOptions) -> Vec<&'a str> {
    [
        &settings.api_key,
        &settings.oauth_token,
        &settings.routing_key,
        &options.routing_key,
    ]
    .into_iter()
    .filter_map(|s| s.as_deref())
    .filter(|s| !s.trim().is_empty())
    .collect()
}

/// The failure with every secret removed, before any cutting: a secret
/// across a cut would leave a piece that no longer matches.
pub fn redacted(failure: &TestFailure, secrets: &[&str]) -> TestFailure {
    let clean = |t: &Option<String>| t.as_deref().map(|t| text::redact(t, secrets));
    TestFailure {
        // A test parametrized with a secret carries it in its id.
        nodeid: text::redact(&failure.nodeid, secrets),
        short_name: clean(&failure.short_name),
        docstring: clean(&failure.docstring),
        message: clean(&failure.message),
        traceback: text::redact(&failure.traceback, secrets),
        ..failure.clone()
    }
}

/// The marker's `details`, with secrets removed.
pub fn redacted_details(options: &IncidentOptions, secrets: &[&str]) -> Option<String> {
    options.details.as_deref().map(|d| text::redact(d, secrets))
}

/// The test's name in a title: the short name when unique, else the nodeid.
pub fn name(failure: &TestFailure) -> &str {
    failure.short_name.as_deref().unwrap_or(&failure.nodeid)
}

/// "Test failed: test_x: AssertionError: assert 1 == 2", on one line.
pub fn title(failure: &TestFailure) -> String {
    let what = match failure.phase {
        Phase::Call => "Test failed",
        Phase::Setup => "Test errored in setup",
        Phase::Teardown => "Test errored in teardown",
    };
    // pytest's crash message may run on ("AssertionError: msg\\nassert 1 == 2"):
    // its first line says what failed.
    let first_line = failure
        .message
        .as_deref()
        .and_then(|m| m.lines().map(str::trim).find(|l| !l.is_empty()));
    let title = match first_line {
        Some(message) => format!("{what}: {}: {message}", name(failure)),
        None => format!("{what}: {}", name(failure)),
    };
    text::truncate_end(&text::one_line(&title), TITLE_MAX)
}

/// The `details` or the docstring, cleaned; empty when there is neither.
pub fn description(failure: &TestFailure, details: Option<&str>) -> String {
    match (details, &failure.docstring) {
        (Some(details), _) => details.trim().to_string(),
        (None, Some(doc)) => text::clean_docstring(doc),
        (None, None) => String::new(),
    }
}

/// The failure text cut to `room` characters, keeping its end (the assertion).
pub fn traceback(failure: &TestFailure, room: usize) -> String {
    text::truncate_start(failure.traceback.trim_end(), room)
}

/// The description, the failure, then the nodeid and the CI run, within `BODY_MAX`.
pub fn body(failure: &TestFailure, details: Option<&str>, run: Option<&Run>) -> String {
    let description = description(failure, details);
    let mut footer = format!("\n\nTest: {}", failure.nodeid);
    if let Some(run) = run {
        footer.push_str(&format!("\nCI: {}", ci::describe(run)));
    }
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
    format!("{header}{}{footer}", traceback(failure, room))
}
