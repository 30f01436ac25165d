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
    let lines: Vec<&str> = failure
        .traceback
        .trim()
        .lines()
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

    #[test]
    fn the_limit_stops_well_before_pagerdutys() {
        assert_eq!(refusal(0), None);
        assert_eq!(refusal(NOTES_MAX - 1), None);
        let said = refusal(NOTES_MAX).unwrap();
        assert!(said.contains("1000") && said.contains("2000"), "{said}");
    }
}
