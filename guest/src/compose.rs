//! What an alert says about a failed test: its title and body, with the
//! secrets taken out first and the sizes cut to PagerDuty's limits.

use crate::ci::{self, Run};
use crate::links::Link;
use crate::pytest_pagerduty::alerts::types::{IncidentOptions, Phase, Settings, TestFailure};
use crate::text;

/// PagerDuty's limit for a title or an event's summary, in characters.
pub const TITLE_MAX: usize = 1024;
/// An incident's body, in UTF-8 bytes: keeps a page readable and far below
/// PagerDuty's request size limits.
pub const BODY_MAX: usize = 32 * 1024;
/// The description (`details` or the docstring) in a body, in bytes.
pub const DESCRIPTION_MAX: usize = BODY_MAX / 4;
/// A test id where it is shown (a body's footer, an event's details), in
/// bytes; its key is made from the whole id.
pub const NODEID_MAX: usize = BODY_MAX / 8;
/// A docstring is cut to this many bytes before it is cleaned: cleaning
/// copies it (a tab becomes eight spaces), and only its start is shown.
const DOCSTRING_READ_MAX: usize = 8 * DESCRIPTION_MAX;
/// The most UTF-8 bytes of each text in a `test-failure` the component
/// takes (`failure-text-limit`): 8 times a body and 16 times an event's
/// failure text, so a host's cut never shows in an alert. A failure has about
/// 57 texts (7 fields and one per CI variable asked for): at 256 KiB each it
/// is 14 MiB, and building its alert stays inside 64 MiB (the Python host's
/// default; tests/test_text_limit.py holds it), an aggregate of two such
/// failures too (it copies one at a time). At 1 MiB a failure alone trapped.
pub const FAILURE_TEXT_LIMIT: u32 = 256 * 1024;

/// The secrets of these settings and a marker's routing key, to keep out of
/// anything sent or shown.
pub fn secrets<'a>(settings: &'a Settings, marker_key: &'a Option<String>) -> Vec<&'a str> {
    [
        &settings.api_key,
        &settings.oauth_token,
        &settings.routing_key,
        &settings.fallback_routing_key,
        marker_key,
    ]
    .into_iter()
    .filter_map(|s| s.as_deref())
    .filter(|s| !s.trim().is_empty())
    .collect()
}

/// The failure with every secret removed, before any cutting (a secret
/// across a cut would leave a piece that no longer matches), and without
/// terminal escapes or NUL.
pub fn redacted(failure: &TestFailure, secrets: &[&str]) -> TestFailure {
    let clean = |t: &str| text::printable(&text::redact(t, secrets), false);
    let optional = |t: &Option<String>| t.as_deref().map(clean);
    TestFailure {
        // A test parametrized with a secret carries it in its id.
        nodeid: clean(&failure.nodeid),
        short_name: optional(&failure.short_name),
        docstring: optional(&failure.docstring),
        message: optional(&failure.message),
        traceback: clean(&failure.traceback),
        // The rest copied field by field: `..failure.clone()` would copy
        // the texts above too, only to drop them.
        phase: failure.phase,
        duration_seconds: failure.duration_seconds,
        ci: failure.ci.clone(),
        host: failure.host.clone(),
        source: failure.source.clone(),
        failed_at_ms: failure.failed_at_ms,
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
    one_line_title(&title)
}

/// A title on one line, without control characters, within `TITLE_MAX`.
pub fn one_line_title(title: &str) -> String {
    text::truncate_end(&text::one_line(&text::printable(title, true)), TITLE_MAX)
}

/// The `details` or the docstring, cleaned, within `DESCRIPTION_MAX` bytes;
/// empty when there is neither.
pub fn description(failure: &TestFailure, details: Option<&str>) -> String {
    let cleaned = match (details, &failure.docstring) {
        (Some(details), _) => details.trim().to_string(),
        (None, Some(doc)) => text::clean_docstring(&text::cut_end(doc, DOCSTRING_READ_MAX)),
        (None, None) => return String::new(),
    };
    text::cut_end(&cleaned, DESCRIPTION_MAX)
}

/// The failure text cut to `room` bytes, keeping its end (the assertion).
pub fn traceback(failure: &TestFailure, room: usize) -> String {
    text::cut_start(failure.traceback.trim_end(), room)
}

/// The test id as shown, within `NODEID_MAX` bytes.
pub fn nodeid(failure: &TestFailure) -> String {
    text::cut_end(&failure.nodeid, NODEID_MAX)
}

/// The description, the failure, then the nodeid, the CI run and the links
/// (source, runbook), within `BODY_MAX` bytes.
pub fn body(
    failure: &TestFailure,
    details: Option<&str>,
    run: Option<&Run>,
    links: &[Link],
) -> String {
    let description = description(failure, details);
    let mut footer = format!("\n\nTest: {}", nodeid(failure));
    if let Some(run) = run {
        let ci = text::cut_end(&ci::describe(run), NODEID_MAX);
        footer.push_str(&format!("\nCI: {ci}"));
    }
    if !links.is_empty() {
        footer.push_str(&format!("\n{}", crate::links::lines(links)));
    }
    let header = if description.is_empty() {
        "Failure:\n".to_string()
    } else {
        format!("{description}\n\nFailure:\n")
    };
    let room = BODY_MAX
        .saturating_sub(header.len())
        .saturating_sub(footer.len());
    format!("{header}{}{footer}", traceback(failure, room))
}
