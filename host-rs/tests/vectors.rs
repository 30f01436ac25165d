//! The conformance vectors (tests/vectors, format in its README) through the
//! Rust host. The Python host (tests/test_vectors.py) and Node (tests/js)
//! run the same files.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pagerduty_host::{
    canonical, AlertRequest, Allowlist, BuildError, Held, Host, Instance, Marker, Pager, Planned,
    Repeat, Step,
};
use serde_json::{json, Value};

/// Every call of the README's table.
const CALLS: &[&str] = &[
    "open",
    "check-marker",
    "preflight",
    "trigger",
    "repeat",
    "resolve",
    "aggregate",
    "fallback",
    "classify-reply",
    "deliver",
];

fn vectors() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "json") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"),
        &mut found,
    );
    found.sort();
    found
}

/// Why a vector could not be run (a bad input, a refusal in a call the
/// vector does not test, a trap): it fails with this.
type Failure = String;

fn trap(what: &str) -> impl Fn(wasmtime::Error) -> Failure + '_ {
    move |e| format!("{what} trapped: {e:#}")
}

/// The pager the vector's settings open; a refusal fails the vector.
fn open<'i>(instance: &'i mut Instance, input: &Value) -> Result<Pager<'i>, Failure> {
    let settings = canonical::settings(&input["settings"])?;
    instance
        .open(&settings)
        .map_err(trap("pager.open"))?
        .map_err(|e| format!("pager.open refused: {}", canonical::settings_error(&e)))
}

/// The marker of `arguments`; a refusal fails the vector.
fn marker(pager: &mut Pager, arguments: &Value) -> Result<Marker, Failure> {
    let arguments = canonical::marker_arguments(arguments)?;
    pager
        .check_marker(&arguments)
        .map_err(trap("pager.check-marker"))?
        .map_err(|e| {
            format!(
                "pager.check-marker refused: {}",
                canonical::marker_error(&e)
            )
        })
}

fn text<'v>(value: &'v Value, name: &str) -> Result<&'v str, Failure> {
    value[name]
        .as_str()
        .ok_or_else(|| format!("{name} must be a string"))
}

/// A count of the input that may be left out (`paged_before`, `failed_runs`...).
fn count(input: &Value, name: &str, default: u32) -> Result<u32, Failure> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("{name} must be a count, got {value}")),
    }
}

/// `pager.repeat` with a `repeat` input (or a `deliver`'s `build.repeat`):
/// `failure`, `incident_id`, `dedup_key` (each string or null), `notes`.
fn repeat(
    pager: &mut Pager,
    marker: Marker,
    input: &Value,
) -> Result<Result<Repeat, BuildError>, Failure> {
    let failure = canonical::test_failure(&input["failure"])?;
    pager
        .repeat(
            &failure,
            marker,
            input["incident_id"].as_str(),
            input["dedup_key"].as_str(),
            input["notes"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("notes must be a count")?,
        )
        .map_err(trap("pager.repeat"))
}

/// The request a `deliver` vector starts from (`build`).
fn build(pager: &mut Pager, marker: Marker, build: &Value) -> Result<AlertRequest, Failure> {
    if let Some(trigger) = build.get("trigger") {
        let failure = canonical::test_failure(&trigger["failure"])?;
        let severity = canonical::optional_severity(&trigger["severity"])?;
        let failed_runs = count(trigger, "failed_runs", 1)?;
        let planned = pager
            .trigger(&failure, marker, severity, failed_runs)
            .map_err(trap("pager.trigger"))?
            .map_err(|e| format!("pager.trigger refused: {}", canonical::build_error(&e)))?;
        return match planned {
            Planned::Page(request) => Ok(request),
            Planned::PastCap => Err("the trigger planned past-cap, not a page".into()),
            Planned::Counting(_) => Err("the trigger planned counting, not a page".into()),
        };
    }
    if let Some(given) = build.get("repeat") {
        let answer = repeat(pager, marker, given)?
            .map_err(|e| format!("pager.repeat refused: {}", canonical::build_error(&e)))?;
        return match answer {
            Repeat::Note(request) => Ok(request),
            Repeat::Skip(why) => Err(format!("the repeat was skipped, not a note: {why}")),
        };
    }
    if let Some(resolve) = build.get("resolve") {
        return pager
            .resolve(
                text(resolve, "nodeid")?,
                marker,
                resolve["incident_id"].as_str(),
                resolve["dedup_key"].as_str(),
            )
            .map_err(trap("pager.resolve"))?
            .map_err(|e| format!("pager.resolve refused: {}", canonical::build_error(&e)));
    }
    Err(format!("unknown build {build}"))
}

/// README, "deliver": the component's step for each reply in turn.
fn deliver(pager: &mut Pager, marker: Marker, input: &Value) -> Result<Value, Failure> {
    let mut request = build(pager, marker, &input["build"])?;
    let mut pending: VecDeque<AlertRequest> = VecDeque::new();
    let mut progress = None;
    let mut steps = Vec::new();
    let replies = input["replies"]
        .as_array()
        .ok_or("replies must be a list")?;
    for reply in replies {
        let status = reply["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or("a reply's status must be a u16")?;
        let headers = canonical::reply_headers(&reply["headers"])?;
        let step = pager
            .decide(&request, progress, status, &headers, text(reply, "body")?)
            .map_err(trap("pager.decide"))?;
        steps.push(canonical::step(&step));
        progress = None;
        match step {
            Step::Retry(wait) => progress = Some(wait.next),
            Step::FollowUp(requests) => {
                pending = requests.into();
                if let Some(next) = pending.pop_front() {
                    request = next;
                }
            }
            // A final step: the next reply is for the next pending request,
            // or for the same request sent again.
            _ => {
                if let Some(next) = pending.pop_front() {
                    request = next;
                }
            }
        }
    }
    Ok(Value::Array(steps))
}

fn answer(instance: &mut Instance, vector: &Value) -> Result<Value, Failure> {
    let input = &vector["input"];
    let call = vector["call"].as_str().ok_or("call must be a string")?;
    if call == "classify-reply" {
        let answer = instance
            .classify_reply(
                canonical::request_kind(text(input, "kind")?)?,
                input["status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .ok_or("status must be a u16")?,
                &canonical::reply_headers(&input["headers"])?,
                text(input, "body")?,
            )
            .map_err(trap("classify-reply"))?;
        return Ok(canonical::result(
            &answer,
            canonical::delivered,
            canonical::delivery_failure,
        ));
    }
    if call == "open" {
        let settings = canonical::settings(&input["settings"])?;
        let opened = instance.open(&settings).map_err(trap("pager.open"))?;
        return Ok(canonical::result(
            &opened.map(drop),
            |()| Value::Null,
            canonical::settings_error,
        ));
    }
    let mut pager = open(instance, input)?;
    match call {
        "check-marker" => {
            let arguments = canonical::marker_arguments(&input["arguments"])?;
            let checked = pager
                .check_marker(&arguments)
                .map_err(trap("pager.check-marker"))?;
            let options = match checked {
                Ok(marker) => Ok(pager.options(marker).map_err(trap("marker.options"))?),
                Err(e) => Err(e),
            };
            Ok(canonical::result(
                &options,
                canonical::options,
                canonical::marker_error,
            ))
        }
        "preflight" => {
            let marker = marker(&mut pager, &input["arguments"])?;
            let answer = pager.preflight(marker).map_err(trap("pager.preflight"))?;
            Ok(canonical::result(
                &answer,
                |reason| json!(reason.map(canonical::dry_run_reason_name)),
                canonical::build_error,
            ))
        }
        "trigger" => {
            let marker = marker(&mut pager, &input["arguments"])?;
            let failure = canonical::test_failure(&input["failure"])?;
            let before = count(input, "paged_before", 0)?;
            for n in 1..=before {
                pager
                    .trigger(&failure, marker, None, 1)
                    .map_err(trap("pager.trigger"))?
                    .map_err(|e| {
                        format!(
                            "trigger {n} of paged_before refused: {}",
                            canonical::build_error(&e)
                        )
                    })?;
            }
            let severity = canonical::optional_severity(&input["severity"])?;
            let failed_runs = count(input, "failed_runs", 1)?;
            let answer = pager
                .trigger(&failure, marker, severity, failed_runs)
                .map_err(trap("pager.trigger"))?;
            Ok(canonical::result(
                &answer,
                canonical::planned,
                canonical::build_error,
            ))
        }
        "repeat" => {
            let marker = marker(&mut pager, &input["arguments"])?;
            // The same repeat made first, to show what a run remembers.
            for n in 1..=count(input, "noted_before", 0)? {
                repeat(&mut pager, marker, input)?.map_err(|e| {
                    format!(
                        "repeat {n} of noted_before refused: {}",
                        canonical::build_error(&e)
                    )
                })?;
            }
            let answer = repeat(&mut pager, marker, input)?;
            Ok(canonical::result(
                &answer,
                canonical::repeat,
                canonical::build_error,
            ))
        }
        "resolve" => {
            let marker = marker(&mut pager, &input["arguments"])?;
            let answer = pager
                .resolve(
                    text(input, "nodeid")?,
                    marker,
                    input["incident_id"].as_str(),
                    input["dedup_key"].as_str(),
                )
                .map_err(trap("pager.resolve"))?;
            Ok(canonical::result(
                &answer,
                canonical::alert_request,
                canonical::build_error,
            ))
        }
        "aggregate" => {
            let mut held = Vec::new();
            for item in input["held"].as_array().ok_or("held must be a list")? {
                held.push(Held {
                    failure: canonical::test_failure(&item["failure"])?,
                    marker: marker(&mut pager, &item["arguments"])?,
                });
            }
            let aggregates = pager
                .aggregate(&held, text(input, "suite")?)
                .map_err(trap("pager.aggregate"))?;
            Ok(aggregates.iter().map(canonical::aggregate).collect())
        }
        "deliver" => {
            let marker = marker(&mut pager, &input["arguments"])?;
            deliver(&mut pager, marker, input)
        }
        "fallback" => {
            let failure = canonical::test_failure(&input["failure"])?;
            let answer = pager
                .fallback(&failure, text(input, "reason")?, text(input, "fix")?)
                .map_err(trap("pager.fallback"))?;
            Ok(canonical::result(
                &answer,
                canonical::alert_request,
                canonical::build_error,
            ))
        }
        other => Err(format!("unknown call {other:?}")),
    }
}

/// The secret a placeholder names: `settings.<field>`, or `options.<name>`,
/// the marker argument of that name (in `arguments`, else in `held`).
fn secret<'v>(input: &'v Value, group: &str, name: &str) -> Option<&'v str> {
    match group {
        "settings" => input["settings"][name].as_str(),
        "options" => {
            let held = input["held"].as_array().into_iter().flatten();
            std::iter::once(&input["arguments"])
                .chain(held.map(|h| &h["arguments"]))
                .filter_map(Value::as_array)
                .flatten()
                .find(|a| a["name"] == name)
                .and_then(|a| a["value"]["text"].as_str())
        }
        _ => None,
    }
}

/// The expectation with `${settings.x}` / `${options.x}` filled from the input.
fn expected(vector: &Value) -> Result<Value, Failure> {
    fn fill(value: &Value, input: &Value) -> Result<Value, Failure> {
        Ok(match value {
            Value::String(text) => {
                let mut text = text.clone();
                let mut from = 0;
                while let Some(start) = text[from..].find("${").map(|s| s + from) {
                    let end = start
                        + text[start..]
                            .find('}')
                            .ok_or_else(|| format!("an unclosed placeholder in {text:?}"))?;
                    let placeholder = &text[start + 2..end];
                    let value = placeholder
                        .split_once('.')
                        .and_then(|(group, name)| secret(input, group, name))
                        .ok_or_else(|| {
                            format!("placeholder ${{{placeholder}}} names no string in the input")
                        })?
                        .to_string();
                    text.replace_range(start..=end, &value);
                    from = start + value.len();
                }
                Value::String(text)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| fill(v, input))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), fill(v, input)?)))
                    .collect::<Result<_, Failure>>()?,
            ),
            other => other.clone(),
        })
    }
    let want = vector
        .get("expect")
        .ok_or("no \"expect\" (record it with tests/vectors/record.py)")?;
    fill(want, &vector["input"])
}

/// Every difference between two values, as `path: expected X, got Y`. Keys
/// must match exactly: a none is `null` on both sides, never a missing key.
fn differences(want: &Value, got: &Value, path: &str, found: &mut Vec<String>) {
    let show = |v: Option<&Value>| {
        let text = v.map_or("(missing)".to_string(), Value::to_string);
        if text.chars().count() > 200 {
            format!("{}...", text.chars().take(197).collect::<String>())
        } else {
            text
        }
    };
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let keys: BTreeSet<&String> = w.keys().chain(g.keys()).collect();
            for key in keys {
                let here = format!("{path}.{key}");
                match (w.get(key), g.get(key)) {
                    (Some(w), Some(g)) => differences(w, g, &here, found),
                    (w, g) => found.push(format!("{here}: expected {}, got {}", show(w), show(g))),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            for index in 0..w.len().max(g.len()) {
                let here = format!("{path}[{index}]");
                match (w.get(index), g.get(index)) {
                    (Some(w), Some(g)) => differences(w, g, &here, found),
                    (w, g) => found.push(format!("{here}: expected {}, got {}", show(w), show(g))),
                }
            }
        }
        (w, g) if w != g => found.push(format!(
            "{path}: expected {}, got {}",
            show(Some(w)),
            show(Some(g))
        )),
        _ => {}
    }
}

/// What is wrong with one vector's answer, if anything.
fn check(host: &Host, path: &Path) -> Result<Option<String>, Failure> {
    let vector: Value = serde_json::from_str(
        &std::fs::read_to_string(path).map_err(|e| format!("reading it: {e}"))?,
    )
    .map_err(|e| format!("not JSON: {e}"))?;
    let want = expected(&vector)?;
    // A fresh instance per vector: a trap in one does not fail the rest.
    let mut instance = host
        .instance(Allowlist::default(), Duration::from_secs(10))
        .map_err(|e| format!("instantiating: {e:#}"))?;
    let got = answer(&mut instance, &vector)?;
    let mut found = Vec::new();
    differences(&want, &got, "$", &mut found);
    Ok((!found.is_empty()).then(|| found.join("\n    ")))
}

#[test]
fn every_vector_gets_its_expected_answer() {
    let paths = vectors();
    assert!(!paths.is_empty(), "no vectors under tests/vectors");
    let host = Host::embedded().unwrap();
    let mut failed = Vec::new();
    let mut seen = BTreeSet::new();
    for path in &paths {
        let name = path
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"))
            .unwrap_or(path)
            .display()
            .to_string();
        if let Some(call) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["call"].as_str().map(str::to_string))
        {
            seen.insert(call);
        }
        match check(&host, path) {
            Ok(None) => {}
            Ok(Some(differences)) => failed.push(format!("{name}:\n    {differences}")),
            Err(problem) => failed.push(format!("{name}: {problem}")),
        }
    }
    let unexercised: Vec<&str> = CALLS
        .iter()
        .copied()
        .filter(|c| !seen.contains(*c))
        .collect();
    if !unexercised.is_empty() {
        failed.push(format!("no vector of {}", unexercised.join(", ")));
    }
    assert!(
        failed.is_empty(),
        "{} of {} vectors fail:\n{}",
        failed.len(),
        paths.len(),
        failed.join("\n")
    );
}

#[test]
fn placeholders_are_filled_from_settings_and_the_markers_arguments() {
    let vector = json!({
        "input": {
            "settings": {"api_key": "k3y"},
            "held": [{"arguments": [{"name": "routing_key", "value": {"text": "R0UT1NG"}}]}],
        },
        "expect": {"ok": ["Token token=${settings.api_key}", "${options.routing_key}!"]},
    });
    assert_eq!(
        expected(&vector).unwrap(),
        json!({"ok": ["Token token=k3y", "R0UT1NG!"]})
    );
    let missing = json!({"input": {"settings": {}}, "expect": "${settings.api_key}"});
    assert!(expected(&missing).unwrap_err().contains("names no string"));
}

#[test]
fn every_difference_is_reported_with_its_path() {
    let mut found = Vec::new();
    differences(
        &json!({"a": 1, "b": [1, 2], "c": null}),
        &json!({"a": 2, "b": [1], "d": null}),
        "$",
        &mut found,
    );
    assert_eq!(
        found,
        [
            "$.a: expected 1, got 2",
            "$.b[1]: expected 2, got (missing)",
            "$.c: expected null, got (missing)",
            "$.d: expected (missing), got null",
        ]
    );
}
