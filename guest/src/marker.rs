//! Validation of `@pytest.mark.pagerduty_trigger_incident(...)` arguments:
//! every mistake is caught at collection with the argument and the fix.

use crate::destination;
use crate::pytest_pagerduty::alerts::types::{
    IncidentOptions, MarkerArgument, MarkerError, MarkerValue, Settings, Severity, Urgency,
};

/// The marker's keywords, in the order the README documents them.
pub const KEYWORDS: &[&str] = &[
    "service_id",
    "urgency",
    "priority_id",
    "escalation_policy_id",
    "incident_key",
    "details",
    "assignee_id",
    "assignee_ids",
    "routing_key",
    "severity",
    "dedup_key",
    "runbook_url",
    "page_after_failures",
];

/// The most runs in a row `page_after_failures` may ask for: a check run
/// every minute would wait a whole day at this.
pub const PAGE_AFTER_MAX: u32 = 1440;
/// Without a marker argument or a setting: page at the first failure.
pub const PAGE_AFTER_DEFAULT: u32 = 1;

/// Arguments whose values are secrets: hosts never print or store them.
pub const SECRET_ARGUMENTS: &[&str] = &["routing_key"];

use crate::dedup::KEY_MAX as INCIDENT_KEY_MAX;

fn error(argument: Option<&str>, problem: String, fix: String) -> MarkerError {
    MarkerError {
        argument: argument.map(str::to_string),
        problem,
        fix,
    }
}

fn type_name(value: &MarkerValue) -> &str {
    match value {
        MarkerValue::Text(_) => "str",
        MarkerValue::TextList(_) => "list",
        MarkerValue::Number(_) => "int",
        MarkerValue::Unsupported(name) => name,
    }
}

/// A keyword argument that must hold one string.
fn text<'a>(name: &str, value: &'a MarkerValue) -> Result<&'a str, MarkerError> {
    match value {
        MarkerValue::Text(text) => Ok(text),
        other => Err(error(
            Some(name),
            format!("{name} must be a string, got {}", type_name(other)),
            format!("write {name}=\"...\" with a string value"),
        )),
    }
}

/// A runbook link: `https://`, a host, no spaces or control characters, at
/// most `links::URL_MAX` bytes, so it opens where on-call clicks it.
fn runbook(name: &str, value: &MarkerValue) -> Result<String, MarkerError> {
    let url = text(name, value)?;
    let problem = crate::links::url_problem(url, true);
    match problem {
        None => Ok(url.to_string()),
        Some(problem) => Err(error(
            Some(name),
            format!("{name} {problem}"),
            format!("write {name}=\"https://wiki.example.com/runbooks/checkout\", the page on-call should open"),
        )),
    }
}

/// A count of runs: a whole number from 1 to `PAGE_AFTER_MAX`.
fn runs(name: &str, value: &MarkerValue) -> Result<u32, MarkerError> {
    let number = match value {
        MarkerValue::Number(n) => *n,
        other => {
            return Err(error(
                Some(name),
                format!("{name} must be a whole number, got {}", type_name(other)),
                format!("write {name}=2 to page once the test has failed in 2 runs in a row"),
            ))
        }
    };
    match u32::try_from(number) {
        Ok(n) if (1..=PAGE_AFTER_MAX).contains(&n) => Ok(n),
        _ => Err(error(
            Some(name),
            // The sign apart: `i64`'s own formatting would be one more
            // copy of the integer formatter than `u64`'s (the same text).
            format!(
                "{name}={}{} is out of range",
                if number < 0 { "-" } else { "" },
                number.unsigned_abs()
            ),
            format!("use a whole number from 1 (page at the first failure) to {PAGE_AFTER_MAX}"),
        )),
    }
}

/// The longest id accepted. PagerDuty's ids are short letters and digits:
/// 7 (`PWIXJZS`) or 14 (an incident's `Q2ZP5BXHT06KHM`); the longest its
/// REST contract describes are 26 (a Base32 UUID v7). Twice that leaves room.
pub const ID_MAX: usize = 64;

/// A PagerDuty object id such as `PWIXJZS`: 1 to `ID_MAX` letters and digits.
fn pagerduty_id(name: &str, value: &MarkerValue) -> Result<String, MarkerError> {
    let id = text(name, value)?;
    if id.is_empty() || id.len() > ID_MAX || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        // Quote a short value only: an id of 10,000 characters is no help.
        let shown = if id.len() > ID_MAX {
            format!("a value of {} characters", id.chars().count())
        } else {
            format!("{id:?}")
        };
        return Err(error(
            Some(name),
            format!("{name}={shown} is not a PagerDuty id"),
            format!("PagerDuty ids are 1 to {ID_MAX} letters and digits, such as {name}=\"PWIXJZS\"; copy it from the object's URL in PagerDuty"),
        ));
    }
    Ok(id.to_string())
}

/// Levenshtein distance, for suggesting the keyword a typo meant.
/// Over bytes: the keywords are ASCII, so a non-ASCII character only counts
/// as more than one edit (no `Vec<char>`, about 1 KB of the component).
fn distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

fn unknown_keyword(name: &str) -> MarkerError {
    let closest = KEYWORDS
        .iter()
        .min_by_key(|known| distance(name, known))
        .filter(|known| distance(name, known) <= 3);
    let fix = match closest {
        Some(known) => format!(
            "did you mean {known}=? The marker takes {}",
            KEYWORDS.join(", ")
        ),
        None => format!("the marker takes {}", KEYWORDS.join(", ")),
    };
    error(Some(name), format!("unknown argument {name}="), fix)
}

/// Checks every argument and returns the options PagerDuty will be sent.
/// Which are required depends on the API: a service for REST, a routing key
/// (from the marker or the settings) for Events API v2.
pub fn check(
    arguments: &[MarkerArgument],
    settings: &Settings,
) -> Result<IncidentOptions, MarkerError> {
    let mut options = IncidentOptions {
        service_id: None,
        routing_key: None,
        urgency: None,
        severity: None,
        priority_id: None,
        escalation_policy_id: None,
        assignee_id: None,
        dedup_key: None,
        details: None,
        runbook_url: None,
        page_after_failures: None,
    };
    let mut assignees: Vec<String> = Vec::new();

    for MarkerArgument { name, value } in arguments {
        match name.as_str() {
            "" => {
                return Err(error(
                    None,
                    "the marker takes keyword arguments only, got a positional argument"
                        .to_string(),
                    "write service_id=\"PWIXJZS\" rather than \"PWIXJZS\"".to_string(),
                ))
            }
            "service_id" => options.service_id = Some(pagerduty_id(name, value)?),
            "routing_key" => {
                let key = text(name, value)?;
                if let Some(problem) = crate::destination::routing_key_problem(key) {
                    return Err(error(
                        Some(name),
                        format!("routing_key is not an Events API v2 integration key: {problem}"),
                        "copy the 32-character Integration Key from the service's Events API v2 integration".to_string(),
                    ));
                }
                options.routing_key = Some(key.to_string());
            }
            "severity" => {
                options.severity = Some(match text(name, value)? {
                    "critical" => Severity::Critical,
                    "error" => Severity::Error,
                    "warning" => Severity::Warning,
                    "info" => Severity::Info,
                    other => {
                        return Err(error(
                            Some(name),
                            format!("severity={other:?} is not an Events API v2 severity"),
                            "use severity=\"critical\", \"error\", \"warning\" or \"info\""
                                .to_string(),
                        ))
                    }
                })
            }
            "priority_id" => options.priority_id = Some(pagerduty_id(name, value)?),
            "escalation_policy_id" => {
                options.escalation_policy_id = Some(pagerduty_id(name, value)?)
            }
            "assignee_id" => assignees.push(pagerduty_id(name, value)?),
            "assignee_ids" => match value {
                MarkerValue::TextList(ids) if ids.is_empty() => {
                    return Err(error(
                        Some(name),
                        "assignee_ids=[] names no one to assign".to_string(),
                        "give one id, assignee_ids=[\"PZUVZZZ\"], or leave assignee_ids out"
                            .to_string(),
                    ))
                }
                MarkerValue::TextList(ids) => {
                    for id in ids {
                        assignees.push(pagerduty_id(name, &MarkerValue::Text(id.clone()))?);
                    }
                }
                other => assignees.push(pagerduty_id(name, other)?),
            },
            "urgency" => {
                options.urgency = Some(match text(name, value)? {
                    "high" => Urgency::High,
                    "low" => Urgency::Low,
                    other => {
                        return Err(error(
                            Some(name),
                            format!("urgency={other:?} is not a PagerDuty urgency"),
                            "use urgency=\"high\" or urgency=\"low\"".to_string(),
                        ))
                    }
                })
            }
            "incident_key" | "dedup_key" => {
                let key = text(name, value)?;
                if options.dedup_key.as_deref().is_some_and(|k| k != key) {
                    return Err(error(
                        Some(name),
                        "incident_key and dedup_key differ; they name the same key".to_string(),
                        "give one of them".to_string(),
                    ));
                }
                if key.trim().is_empty() || key.chars().count() > INCIDENT_KEY_MAX {
                    return Err(error(
                        Some(name),
                        format!("{name} must be 1 to {INCIDENT_KEY_MAX} characters"),
                        "use a short stable key, such as the check's name".to_string(),
                    ));
                }
                options.dedup_key = Some(key.to_string());
            }
            "details" => {
                let details = text(name, value)?;
                options.details = (!details.trim().is_empty()).then(|| details.to_string());
            }
            "runbook_url" => options.runbook_url = Some(runbook(name, value)?),
            "page_after_failures" => options.page_after_failures = Some(runs(name, value)?),
            other => return Err(unknown_keyword(other)),
        }
    }

    if options.routing_key.is_none()
        && options.service_id.is_none()
        && !destination::events_by_default(settings)
    {
        return Err(error(
            Some("service_id"),
            "service_id is required".to_string(),
            "add service_id=\"PWIXJZS\" (your PagerDuty service's id), or a routing_key for Events API v2".to_string(),
        ));
    }
    assignees.dedup();
    if assignees.len() > 1 {
        return Err(error(
            Some("assignee_id"),
            format!(
                "{} assignees given; PagerDuty takes one assignee per incident",
                assignees.len()
            ),
            "keep one assignee, or page a team with escalation_policy_id".to_string(),
        ));
    }
    options.assignee_id = assignees.pop();
    if options.assignee_id.is_some() && options.escalation_policy_id.is_some() {
        return Err(error(
            Some("escalation_policy_id"),
            "an assignee and an escalation policy cannot be sent together".to_string(),
            "give either assignee_id or escalation_policy_id, not both".to_string(),
        ));
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(name: &str, value: &str) -> MarkerArgument {
        MarkerArgument {
            name: name.to_string(),
            value: MarkerValue::Text(value.to_string()),
        }
    }

    use crate::fixtures::bare_settings as settings;

    fn check(arguments: &[MarkerArgument]) -> Result<IncidentOptions, MarkerError> {
        super::check(arguments, &settings())
    }

    fn problem(arguments: &[MarkerArgument]) -> MarkerError {
        check(arguments).expect_err("the marker should be rejected")
    }

    #[test]
    fn accepts_the_seed_readme_marker() {
        let options = check(&[
            arg("service_id", "XIXOOXZ"),
            arg("urgency", "high"),
            arg("assignee_id", "SE169QA"),
        ])
        .unwrap();
        assert_eq!(options.service_id.as_deref(), Some("XIXOOXZ"));
        assert_eq!(options.urgency, Some(Urgency::High));
        assert_eq!(options.assignee_id.as_deref(), Some("SE169QA"));
        assert_eq!(options.escalation_policy_id, None);
    }

    #[test]
    fn a_missing_service_id_names_the_argument_and_the_fix() {
        let err = problem(&[arg("urgency", "low")]);
        assert_eq!(err.argument.as_deref(), Some("service_id"));
        assert_eq!(err.problem, "service_id is required");
        assert!(err.fix.contains("service_id=\""));
    }

    #[test]
    fn an_unknown_urgency_is_rejected() {
        let err = problem(&[arg("service_id", "P1"), arg("urgency", "critical")]);
        assert_eq!(err.argument.as_deref(), Some("urgency"));
        assert!(err.fix.contains("\"high\""));
    }

    #[test]
    fn a_typo_suggests_the_keyword_it_meant() {
        let err = problem(&[arg("service_id", "P1"), arg("urgancy", "high")]);
        assert_eq!(err.problem, "unknown argument urgancy=");
        assert!(err.fix.starts_with("did you mean urgency=?"), "{}", err.fix);
    }

    #[test]
    fn a_far_off_keyword_lists_the_known_ones_without_guessing() {
        let err = problem(&[arg("service_id", "P1"), arg("colour", "red")]);
        assert!(
            err.fix.starts_with("the marker takes service_id"),
            "{}",
            err.fix
        );
    }

    #[test]
    fn a_non_string_id_names_its_type() {
        let err = problem(&[MarkerArgument {
            name: "service_id".into(),
            value: MarkerValue::Unsupported("int".into()),
        }]);
        assert_eq!(err.problem, "service_id must be a string, got int");
    }

    #[test]
    fn an_id_with_spaces_is_not_a_pagerduty_id() {
        let err = problem(&[arg("service_id", "my service")]);
        assert!(err.problem.contains("is not a PagerDuty id"));
    }

    #[test]
    fn assignee_and_escalation_policy_together_are_rejected() {
        let err = problem(&[
            arg("service_id", "P1"),
            arg("assignee_id", "U1"),
            arg("escalation_policy_id", "E1"),
        ]);
        assert_eq!(err.argument.as_deref(), Some("escalation_policy_id"));
    }

    #[test]
    fn two_assignees_are_rejected_but_a_one_element_list_is_accepted() {
        let two = MarkerArgument {
            name: "assignee_ids".into(),
            value: MarkerValue::TextList(vec!["U1".into(), "U2".into()]),
        };
        assert!(problem(&[arg("service_id", "P1"), two])
            .problem
            .contains("2 assignees"));
        let one = MarkerArgument {
            name: "assignee_ids".into(),
            value: MarkerValue::TextList(vec!["U1".into()]),
        };
        let options = check(&[arg("service_id", "P1"), one]).unwrap();
        assert_eq!(options.assignee_id.as_deref(), Some("U1"));
    }

    #[test]
    fn an_id_too_long_to_be_pagerdutys_is_rejected_without_quoting_it() {
        let long = "P".repeat(10_000);
        for name in [
            "service_id",
            "priority_id",
            "escalation_policy_id",
            "assignee_id",
        ] {
            let err = problem(&[arg("service_id", "P1"), arg(name, &long)]);
            assert_eq!(err.argument.as_deref(), Some(name));
            assert_eq!(
                err.problem,
                format!("{name}=a value of 10000 characters is not a PagerDuty id")
            );
            assert!(
                err.fix.contains("1 to 64 letters and digits"),
                "{}",
                err.fix
            );
        }
        assert!(check(&[arg("service_id", &"P".repeat(ID_MAX))]).is_ok());
        assert!(check(&[arg("service_id", "01J8Z3Q4ABCDEFGHJKMNPQRSTV")]).is_ok());
    }

    #[test]
    fn an_empty_assignee_list_is_rejected() {
        let empty = MarkerArgument {
            name: "assignee_ids".into(),
            value: MarkerValue::TextList(Vec::new()),
        };
        let err = problem(&[arg("service_id", "P1"), empty]);
        assert_eq!(err.argument.as_deref(), Some("assignee_ids"));
        assert!(err.problem.contains("names no one"), "{}", err.problem);
    }

    #[test]
    fn positional_arguments_are_rejected() {
        let err = problem(&[arg("", "P1")]);
        assert!(err.problem.contains("keyword arguments only"));
    }

    #[test]
    fn an_overlong_incident_key_is_rejected() {
        let err = problem(&[
            arg("service_id", "P1"),
            arg("incident_key", &"k".repeat(256)),
        ]);
        assert_eq!(err.argument.as_deref(), Some("incident_key"));
    }

    #[test]
    fn events_mode_needs_no_service_and_checks_severity() {
        let options = check(&[
            arg("routing_key", "R0UTE0123456789abcdefghijklmnopq"),
            arg("severity", "warning"),
        ])
        .unwrap();
        assert_eq!(
            options.routing_key.as_deref(),
            Some("R0UTE0123456789abcdefghijklmnopq")
        );
        assert_eq!(options.severity, Some(Severity::Warning));
        let mut with_key = settings();
        with_key.routing_key = Some("R0UTE0123456789abcdefghijklmnopq".into());
        assert!(super::check(&[arg("severity", "info")], &with_key).is_ok());
        assert!(problem(&[
            arg("routing_key", "R0UTE0123456789abcdefghijklmnopq"),
            arg("severity", "fatal")
        ])
        .fix
        .contains("\"critical\""));
    }

    #[test]
    fn incident_key_and_dedup_key_are_one_key() {
        let options = check(&[arg("service_id", "P1"), arg("dedup_key", "k")]).unwrap();
        assert_eq!(options.dedup_key.as_deref(), Some("k"));
        assert!(check(&[
            arg("service_id", "P1"),
            arg("dedup_key", "k"),
            arg("incident_key", "k")
        ])
        .is_ok());
        let err = problem(&[
            arg("service_id", "P1"),
            arg("dedup_key", "k"),
            arg("incident_key", "j"),
        ]);
        assert!(err.problem.contains("differ"));
    }

    fn value(name: &str, value: MarkerValue) -> MarkerArgument {
        MarkerArgument {
            name: name.to_string(),
            value,
        }
    }

    #[test]
    fn a_runbook_url_over_https_is_accepted() {
        let options = check(&[
            arg("service_id", "P1"),
            arg(
                "runbook_url",
                "https://wiki.example.com/runbooks/checkout#refunds",
            ),
        ])
        .unwrap();
        assert_eq!(
            options.runbook_url.as_deref(),
            Some("https://wiki.example.com/runbooks/checkout#refunds")
        );
        assert_eq!(check(&[arg("service_id", "P1")]).unwrap().runbook_url, None);
    }

    #[test]
    fn a_runbook_url_that_would_not_open_is_rejected_naming_the_argument_and_the_fix() {
        for (url, said) in [
            (
                "http://wiki.example.com/runbook",
                "runbook_url must be an https:// URL",
            ),
            (
                "wiki.example.com/runbook",
                "runbook_url must be an https:// URL",
            ),
            ("https://", "runbook_url names no host"),
            (
                "https://wiki.example.com/run book",
                "runbook_url holds spaces or control characters",
            ),
        ] {
            let err = problem(&[arg("service_id", "P1"), arg("runbook_url", url)]);
            assert_eq!(err.argument.as_deref(), Some("runbook_url"), "{url}");
            assert_eq!(err.problem, said, "{url}");
            assert_eq!(
                err.fix,
                "write runbook_url=\"https://wiki.example.com/runbooks/checkout\", the page on-call should open"
            );
        }
        let long = format!("https://wiki.example.com/{}", "a".repeat(3000));
        let err = problem(&[arg("service_id", "P1"), arg("runbook_url", &long)]);
        assert_eq!(err.problem, "runbook_url is longer than 2048 bytes");
        let err = problem(&[
            arg("service_id", "P1"),
            value("runbook_url", MarkerValue::Number(1)),
        ]);
        assert_eq!(err.problem, "runbook_url must be a string, got int");
    }

    #[test]
    fn page_after_failures_takes_a_whole_number_from_1_to_1440() {
        for n in [1, 2, PAGE_AFTER_MAX] {
            let options = check(&[
                arg("service_id", "P1"),
                value("page_after_failures", MarkerValue::Number(i64::from(n))),
            ])
            .unwrap();
            assert_eq!(options.page_after_failures, Some(n));
        }
        assert_eq!(
            check(&[arg("service_id", "P1")])
                .unwrap()
                .page_after_failures,
            None
        );
    }

    #[test]
    fn page_after_failures_out_of_range_is_rejected_with_the_range() {
        for n in [0, 1441, -1, i64::MAX, i64::from(u32::MAX) + 2] {
            let err = problem(&[
                arg("service_id", "P1"),
                value("page_after_failures", MarkerValue::Number(n)),
            ]);
            assert_eq!(err.argument.as_deref(), Some("page_after_failures"));
            assert_eq!(
                err.problem,
                format!("page_after_failures={n} is out of range")
            );
            assert_eq!(
                err.fix,
                "use a whole number from 1 (page at the first failure) to 1440"
            );
        }
    }

    #[test]
    fn page_after_failures_of_another_type_is_rejected_naming_the_type() {
        // The host lowers a Python bool to `unsupported("bool")`, never 1 or 0.
        for (given, type_name) in [
            (MarkerValue::Text("2".into()), "str"),
            (MarkerValue::TextList(vec!["2".into()]), "list"),
            (MarkerValue::Unsupported("bool".into()), "bool"),
            (MarkerValue::Unsupported("float".into()), "float"),
        ] {
            let err = problem(&[arg("service_id", "P1"), value("page_after_failures", given)]);
            assert_eq!(err.argument.as_deref(), Some("page_after_failures"));
            assert_eq!(
                err.problem,
                format!("page_after_failures must be a whole number, got {type_name}")
            );
            assert_eq!(
                err.fix,
                "write page_after_failures=2 to page once the test has failed in 2 runs in a row"
            );
        }
    }

    #[test]
    fn a_typo_of_the_new_arguments_suggests_them() {
        let err = problem(&[arg("service_id", "P1"), arg("runbook_uri", "x")]);
        assert!(
            err.fix.starts_with("did you mean runbook_url=?"),
            "{}",
            err.fix
        );
        let err = problem(&[
            arg("service_id", "P1"),
            value("page_after_failure", MarkerValue::Number(2)),
        ]);
        assert!(
            err.fix.starts_with("did you mean page_after_failures=?"),
            "{}",
            err.fix
        );
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("urgancy", "urgency"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
