//! Repeat failures on an open REST incident: a note saying the check failed
//! again, when and how, so on-call sees it is still failing. At most one per
//! incident per run (`pager.rs` keeps which), and never more than
//! `NOTES_MAX`, well inside PagerDuty's 2,000 notes per incident.

use crate::ci::{self, Run};
use crate::compose;
use crate::pytest_pagerduty::alerts::types::TestFailure;
use crate::text;

/// PagerDuty's limit of notes on one incident.
pub const PAGERDUTY_NOTES_MAX: u32 = 2_000;
/// The most notes this tool adds to one incident: half PagerDuty's limit,
/// leaving the rest to the people working it.
pub const NOTES_MAX: u32 = PAGERDUTY_NOTES_MAX / 2;
/// Lines of the failure text a note shows, and their most bytes.
const FAILURE_LINES: usize = 20;
const FAILURE_MAX: usize = 2 * 1024;

/// Why no note is added, or `None` when one is: the host has added `notes`.
pub fn refusal(notes: u32) -> Option<String> {
    (notes >= NOTES_MAX).then(|| {
        format!(
            "not noted: the incident already has the {NOTES_MAX} notes pytest-pagerduty adds at most (PagerDuty allows {PAGERDUTY_NOTES_MAX}); the check is still failing"
        )
    })
}

/// UTC date and time of a Unix time in milliseconds, as RFC 3339 to the
/// second (`2026-11-29T10:40:12Z`). Days to a civil date as in Howard
/// Hinnant's `civil_from_days`.
pub fn rfc3339(ms: u64) -> String {
    let seconds = ms / 1000;
    let (days, second_of_day) = ((seconds / 86_400) as i64, seconds % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The note: that it failed again (and when), what failed, the failure's
/// first lines, the CI run; with the last note this tool adds saying so.
pub fn content(failure: &TestFailure, run: Option<&Run>, notes: u32) -> String {
    let when = match failure.failed_at_ms {
        Some(ms) => format!("Failed again at {}", rfc3339(ms)),
        None => "Failed again".to_string(),
    };
    let mut note = format!("{when}: {}", compose::title(failure));
    // Leading blank lines go, not the first line's indentation: pytest's
    // text starts with the test's source, indented as the lines after it.
    let lines: Vec<&str> = failure
        .traceback
        .trim_end()
        .lines()
        .skip_while(|line| line.trim().is_empty())
        .take(FAILURE_LINES)
        .collect();
    let first = text::cut_end(&lines.join("\n"), FAILURE_MAX);
    if !first.is_empty() {
        note.push_str(&format!("\n\n{first}"));
    }
    if let Some(run) = run {
        note.push_str(&format!(
            "\n\nCI: {}",
            text::cut_end(&ci::describe(run), compose::NODEID_MAX)
        ));
    }
    if notes + 1 >= NOTES_MAX {
        note.push_str(&format!(
            "\n\nThis is the last note pytest-pagerduty adds to this incident ({NOTES_MAX} of PagerDuty's {PAGERDUTY_NOTES_MAX}); later failures are not noted."
        ));
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_counts_days_leap_years_and_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_948_812_999), "2026-11-29T10:40:12Z");
        assert_eq!(rfc3339(4_107_542_399_000), "2100-02-28T23:59:59Z");
    }

    use crate::pytest_pagerduty::alerts::types::Phase;

    fn failure(traceback: &str) -> TestFailure {
        TestFailure {
            nodeid: "tests/t.py::test_x".into(),
            short_name: Some("test_x".into()),
            docstring: None,
            message: Some("AssertionError: assert 1 == 2".into()),
            traceback: traceback.into(),
            phase: Phase::Call,
            duration_seconds: 0.5,
            ci: Vec::new(),
            host: "h".into(),
            source: None,
            failed_at_ms: Some(1_795_948_812_999),
        }
    }

    #[test]
    fn a_note_says_when_what_and_how_it_failed_again_and_in_which_run() {
        let run = Run {
            system: "Buildkite".into(),
            url: Some("https://buildkite.com/acme/shop/builds/7".into()),
            job: Some(":pytest: prod".into()),
            shard: Some("1 of 2".into()),
            ..Run::default()
        };
        assert_eq!(
            content(&failure("\n\n    def test_x():\n>       assert 1 == 2\nE       assert 1 == 2\n\n"), Some(&run), 0),
            "Failed again at 2026-11-29T10:40:12Z: Test failed: test_x: AssertionError: assert 1 == 2\n\n    def test_x():\n>       assert 1 == 2\nE       assert 1 == 2\n\nCI: Buildkite https://buildkite.com/acme/shop/builds/7 (job :pytest: prod, shard 1 of 2)"
        );
    }

    #[test]
    fn without_a_time_a_failure_text_or_a_run_the_note_leaves_them_out() {
        let mut f = failure(" \n");
        f.failed_at_ms = None;
        f.phase = Phase::Setup;
        assert_eq!(
            content(&f, None, 0),
            "Failed again: Test errored in setup: test_x: AssertionError: assert 1 == 2"
        );
    }

    #[test]
    fn a_note_shows_the_first_20_lines_within_2_kb() {
        let text: Vec<String> = (1..=25).map(|n| format!("line {n}")).collect();
        let note = content(&failure(&text.join("\n")), None, 0);
        assert!(note.contains("\n\nline 1\n"), "{note}");
        assert!(note.ends_with("\nline 20"), "{note}");
        assert!(!note.contains("line 21"));
        let wide = "x".repeat(10_000);
        let note = content(&failure(&wide), None, 0);
        let shown = note.split("\n\n").nth(1).unwrap();
        assert_eq!(shown.len(), FAILURE_MAX);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn only_the_last_note_this_tool_adds_says_it_is_the_last() {
        let last = "\n\nThis is the last note pytest-pagerduty adds to this incident (1000 of PagerDuty's 2000); later failures are not noted.";
        assert!(content(&failure("E"), None, NOTES_MAX - 1).ends_with(last));
        for notes in [0, 1, NOTES_MAX - 2] {
            assert!(
                !content(&failure("E"), None, notes).contains("last note"),
                "{notes}"
            );
        }
    }

    #[test]
    fn the_limit_stops_well_before_pagerdutys() {
        assert_eq!(refusal(0), None);
        assert_eq!(refusal(NOTES_MAX - 1), None);
        let said = refusal(NOTES_MAX).unwrap();
        assert!(said.contains("1000") && said.contains("2000"), "{said}");
    }
}
