//! The conformance vectors (tests/vectors) through the Rust host. The Python
//! host (tests/test_vectors.py) and Node (tests/js) run the same files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pagerduty_host::{canonical, Allowlist, Host, Instance};
use serde_json::{json, Value};

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

/// `{"ok": ..}` or `{"err": ..}`.
fn tagged<T, E>(result: Result<T, E>, ok: impl Fn(T) -> Value, err: impl Fn(E) -> Value) -> Value {
    match result {
        Ok(value) => json!({ "ok": ok(value) }),
        Err(error) => json!({ "err": err(error) }),
    }
}

/// A built request with its bodies parsed (null when empty, as for a GET).
fn request(text: String) -> Value {
    let mut request: Value = serde_json::from_str(&text).unwrap();
    for field in ["body", "display_body"] {
        let body = request[field].as_str().unwrap().to_string();
        request[field] = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap()
        };
    }
    request
}

fn answer(instance: &mut Instance, vector: &Value) -> Value {
    let input = &vector["input"];
    let flat = |name: &str| input[name].to_string();
    let settings_error = |e: pagerduty_host::SettingsError| canonical::settings_error(&e);
    match vector["call"].as_str().unwrap() {
        "check-marker" => {
            let arguments: Vec<_> = input["arguments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| canonical::marker_argument(a).unwrap())
                .collect();
            let settings = canonical::settings(&input["settings"]).unwrap();
            let result = instance.check_marker(&arguments, &settings).unwrap();
            tagged(
                result,
                |o| serde_json::from_str(&o).unwrap(),
                |e| canonical::marker_error(&e),
            )
        }
        "check-settings" => {
            let settings = canonical::settings(&input["settings"]).unwrap();
            let result = instance.check_settings(&settings).unwrap();
            tagged(result, |()| Value::Null, settings_error)
        }
        "build-trigger" => {
            let severity = input["severity"]
                .as_str()
                .map(|s| canonical::severity(s).unwrap());
            let result = instance
                .build_trigger_as(
                    &flat("failure"),
                    &flat("options"),
                    &flat("settings"),
                    severity,
                )
                .unwrap();
            tagged(result, request, settings_error)
        }
        "build-resolve" => {
            let result = instance
                .build_resolve(
                    input["nodeid"].as_str().unwrap(),
                    &flat("options"),
                    &flat("settings"),
                    input["incident_id"].as_str(),
                )
                .unwrap();
            tagged(result, request, settings_error)
        }
        "build-aggregate" => {
            let result = instance
                .build_aggregate(
                    &flat("failures"),
                    input["suite"].as_str().unwrap(),
                    &flat("options"),
                    &flat("settings"),
                )
                .unwrap();
            tagged(result, request, settings_error)
        }
        "aggregate-key" => {
            let result = instance
                .aggregate_key(
                    &flat("options"),
                    &flat("settings"),
                    input["suite"].as_str().unwrap(),
                )
                .unwrap();
            tagged(result, Value::String, settings_error)
        }
        "classify-reply" => {
            let headers: Vec<_> = input["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| canonical::reply_header(h).unwrap())
                .collect();
            let result = instance
                .classify_reply(
                    canonical::request_kind(input["kind"].as_str().unwrap()).unwrap(),
                    u16::try_from(input["status"].as_u64().unwrap()).unwrap(),
                    &headers,
                    input["body"].as_str().unwrap(),
                )
                .unwrap();
            tagged(
                result,
                |d| canonical::delivered(&d),
                |f| canonical::delivery_failure(&f),
            )
        }
        other => panic!("unknown call {other}"),
    }
}

/// The expectation with `${settings.x}` / `${options.x}` filled from the input.
fn expected(vector: &Value) -> Value {
    fn fill(value: &Value, input: &Value) -> Value {
        match value {
            Value::String(text) => {
                let mut text = text.clone();
                while let Some(start) = text.find("${") {
                    let end = start + text[start..].find('}').expect("a closed placeholder");
                    let (group, name) = text[start + 2..end].split_once('.').unwrap();
                    let secret = input[group][name]
                        .as_str()
                        .expect("the input has the secret");
                    text.replace_range(start..=end, secret);
                }
                Value::String(text)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, input)).collect()),
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), fill(v, input)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    fill(&vector["expect"], &vector["input"])
}

#[test]
fn every_vector_gets_its_expected_answer() {
    let paths = vectors();
    assert!(paths.len() > 50, "the vectors are missing: {paths:?}");
    let host = Host::embedded().unwrap();
    let mut instance = host
        .instance(Allowlist::default(), Duration::from_secs(10))
        .unwrap();
    let mut failed = Vec::new();
    for path in &paths {
        let vector: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let got = answer(&mut instance, &vector);
        let want = expected(&vector);
        if got != want {
            failed.push(format!(
                "{}:\n  expected {want}\n  got      {got}",
                path.display()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} vectors differ:\n{}",
        failed.len(),
        paths.len(),
        failed.join("\n")
    );
}
