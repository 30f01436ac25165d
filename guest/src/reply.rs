//! What a PagerDuty reply, or a failure to get one, means for delivery.

use serde_json::Value;

use crate::pytest_pagerduty::alerts::types::{
    AlertRequest, Api, Delivered, DeliveryFailure, PagerdutyError, Rejection, RejectionKind,
    RequestKind, Retry, Setting, StopScope,
};
use crate::wasi::http::types::{ErrorCode, FieldSizePayload};

// Replies are read by serde_json into a `Value` and their few fields picked
// out below: serde's derived readers for the same shapes cost the component
// about 60 KB. A field of the wrong type reads as absent; the rest still
// count.

fn json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

fn text(value: &Value, field: &str) -> Option<String> {
    value.get(field)?.as_str().map(str::to_string)
}

/// What REST says of the incident it created or resolved (`{"incident": {..}}`).
fn created(body: &[u8]) -> Option<Delivered> {
    let reply = json(body)?;
    let incident = reply.get("incident").filter(|i| i.is_object())?;
    Some(Delivered {
        id: text(incident, "id"),
        number: incident.get("incident_number").and_then(Value::as_u64),
        html_url: text(incident, "html_url"),
        dedup_key: text(incident, "incident_key"),
        found: Vec::new(),
    })
}

/// What a lookup (`rest-find`) is after: the open incidents of one service
/// whose own key is this one. PagerDuty's `incident_key` query also matches
/// alerts' keys, and a key is unique only per service.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    pub service_id: &'a str,
    pub incident_key: &'a str,
}

impl<'a> Lookup<'a> {
    /// What the lookup the component built asks for: the service in its URL
    /// (`incident::find`), its key. None for another request, or a lookup
    /// without a service (built before lookups had one): it resolves nothing.
    pub fn of(request: &'a AlertRequest) -> Option<Self> {
        let (_, query) = request.url.split_once('?')?;
        let service_id = query
            .split('&')
            .find_map(|p| p.strip_prefix(crate::incident::SERVICE_IDS))?;
        Some(Lookup {
            service_id,
            incident_key: &request.dedup_key,
        })
    }

    fn matches(&self, incident: &Value) -> bool {
        let service = incident.get("service").and_then(|s| s.get("id"));
        service.and_then(Value::as_str) == Some(self.service_id)
            && incident.get("incident_key").and_then(Value::as_str) == Some(self.incident_key)
    }
}

/// The ids of the incidents a lookup found (`{"incidents": [{"id": ..}]}`):
/// with a `lookup`, only those it is after.
fn found(body: &[u8], lookup: Option<&Lookup>) -> Option<Vec<String>> {
    let reply = json(body)?;
    let incidents = reply.get("incidents")?.as_array()?;
    Some(
        incidents
            .iter()
            .filter(|i| lookup.is_none_or(|l| l.matches(i)))
            .filter_map(|i| text(i, "id"))
            .collect(),
    )
}

/// Events API v2: `{"status": "success", "message": ..., "dedup_key": ...}`.
fn accepted(body: &[u8]) -> Option<String> {
    text(&json(body)?, "dedup_key")
}

fn delivered() -> Delivered {
    Delivered {
        id: None,
        number: None,
        html_url: None,
        dedup_key: None,
        found: Vec::new(),
    }
}

/// What a 2xx means for each kind of request. A 2xx always counts: PagerDuty
/// took the request even when its reply cannot be read.
fn success(kind: RequestKind, body: &[u8], lookup: Option<&Lookup>) -> Delivered {
    match kind {
        RequestKind::RestCreate | RequestKind::RestResolve => {
            created(body).unwrap_or_else(delivered)
        }
        RequestKind::RestFind => Delivered {
            found: found(body, lookup).unwrap_or_default(),
            ..delivered()
        },
        RequestKind::EventsTrigger | RequestKind::EventsResolve => Delivered {
            dedup_key: accepted(body),
            ..delivered()
        },
        // The note's own id is of no use: `classify_for` names the incident.
        RequestKind::RestNote => delivered(),
    }
}

/// Resolving an incident that is already resolved has done its job.
fn already_resolved(error: &PagerdutyError) -> bool {
    error.code == Some(1001)
        || std::iter::once(&error.message)
            .chain(error.errors.iter())
            .any(|t| t.to_ascii_lowercase().contains("already resolved"))
}

struct ErrorFields {
    code: Option<i32>,
    message: Option<String>,
    /// A list of strings, or (newer endpoints) an object of field → strings.
    errors: Value,
}

/// REST errors nest their fields under `error`; the Events API puts
/// `message` and `errors` at the top (`{"status": "invalid event", ...}`).
fn error_reply(body: &[u8]) -> Option<ErrorFields> {
    let reply = json(body)?;
    let fields = reply
        .get("error")
        .filter(|e| e.is_object())
        .unwrap_or(&reply);
    Some(ErrorFields {
        code: (fields.get("code").and_then(Value::as_i64)).and_then(|c| i32::try_from(c).ok()),
        message: text(fields, "message"),
        errors: fields.get("errors").cloned().unwrap_or(Value::Null),
    })
}

fn error_details(errors: &Value) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        // `other.to_string()`'s text, through the JSON writer requests use
        // (`Value`'s `Display` is two more writers, compact and pretty).
        other => crate::request::json(other),
    };
    match errors {
        Value::Array(items) => items.iter().map(text).collect(),
        Value::Object(fields) => fields
            .iter()
            .flat_map(|(field, v)| match v {
                Value::Array(items) => items
                    .iter()
                    .map(|i| format!("{field}: {}", text(i)))
                    .collect(),
                other => vec![format!("{field}: {}", text(other))],
            })
            .collect(),
        Value::Null => Vec::new(),
        other => vec![text(other)],
    }
}

/// Seconds between retries of a rate-limited event (events-API-v2 rate limits).
const EVENTS_RATE_LIMIT_WAIT: u32 = 30;

/// Longest excerpt of an unreadable body quoted back to the user.
const EXCERPT_MAX: usize = 200;

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// PagerDuty's words as a clause a host can end with its own punctuation
/// ("Service not found." would read "Service not found.. Fix: ..."), on one
/// line.
fn clause(text: &str) -> String {
    let line = crate::text::one_line(&crate::text::printable(text, true));
    line.trim_end_matches('.').trim_end().to_string()
}

/// PagerDuty's error object, or the body itself when it is not one.
fn pagerduty_error(status: u16, body: &[u8]) -> PagerdutyError {
    match error_reply(body) {
        Some(ErrorFields {
            code,
            message: Some(message),
            errors,
        }) => PagerdutyError {
            status,
            code,
            message: clause(&message),
            errors: error_details(&errors).iter().map(|e| clause(e)).collect(),
        },
        _ => {
            let text = String::from_utf8_lossy(body);
            let excerpt = crate::text::truncate_end(&crate::text::one_line(&text), EXCERPT_MAX);
            PagerdutyError {
                status,
                code: None,
                message: if excerpt.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {excerpt}")
                },
                errors: Vec::new(),
            }
        }
    }
}

/// PagerDuty answers a second create with the key of an open incident with
/// a 400 whose text (not code) says so.
fn is_duplicate_key(error: &PagerdutyError) -> bool {
    std::iter::once(&error.message)
        .chain(error.errors.iter())
        .map(|text| text.to_ascii_lowercase())
        .any(|text| {
            (text.contains("incident key")
                || text.contains("incident_key")
                || text.contains("dedup key"))
                && (text.contains("open incident") || text.contains("already exists"))
        })
}

fn rejected(
    kind: RejectionKind,
    error: PagerdutyError,
    stops: StopScope,
    fix: &str,
    setting: Option<Setting>,
) -> DeliveryFailure {
    DeliveryFailure::Rejected(Rejection {
        kind,
        error,
        stops,
        fix: fix.to_string(),
        setting,
    })
}

fn retry_after(headers: &[(String, String)]) -> Option<u32> {
    header(headers, "ratelimit-reset")
        .or_else(|| header(headers, "retry-after"))
        .and_then(|v| v.parse::<u32>().ok())
}

/// Classifies one HTTP reply to a request of this kind; a lookup's reply
/// lists only the incidents `lookup` is after, when it is given.
pub fn classify(
    kind: RequestKind,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    lookup: Option<&Lookup>,
) -> Result<Delivered, DeliveryFailure> {
    if (200..300).contains(&status) {
        return Ok(success(kind, body, lookup));
    }
    let error = pagerduty_error(status, body);
    let events = matches!(
        kind,
        RequestKind::EventsTrigger | RequestKind::EventsResolve
    );
    Err(match status {
        400 if kind == RequestKind::RestCreate && is_duplicate_key(&error) => {
            DeliveryFailure::AlreadyOpen(error)
        }
        400 if kind == RequestKind::RestResolve && already_resolved(&error) => {
            return Ok(delivered())
        }
        // A refused note never stops paging: this note only.
        // Rate limited: not taken, so safe to send again; any other failure
        // may have added it.
        408 | 500..=599 if kind == RequestKind::RestNote => unconfirmed_note(error),
        400 | 402 | 403 | 404 if kind == RequestKind::RestNote => {
            let (why, fix) = match status {
                400 => (RejectionKind::InvalidRequest, "PagerDuty did not take the note (an incident holds at most 2,000 notes); the incident stays open"),
                404 => (RejectionKind::NotFound, "the incident is gone (merged or removed); the next failure opens a new one"),
                _ => (RejectionKind::Forbidden, "the key or the From user may not add notes (scope incidents.write); pages still go out"),
            };
            rejected(why, error, StopScope::ThisRequest, fix, None)
        }
        400 if events => rejected(
            RejectionKind::InvalidRequest,
            error,
            StopScope::ThisRequest,
            "PagerDuty refused the event: check the routing key is an Events API v2 integration key",
            Some(Setting::RoutingKey),
        ),
        400 => rejected(
            RejectionKind::InvalidRequest,
            error,
            StopScope::ThisRequest,
            "check the test's ids (service, priority, escalation policy, assignee) exist in PagerDuty",
            None,
        ),
        401 => rejected(
            RejectionKind::Unauthorized,
            error,
            StopScope::ThisApi,
            "PagerDuty did not accept the credentials: check the API key (or the OAuth token)",
            Some(Setting::ApiKey),
        ),
        // Stops the Events API: what it holds back is kept to send once fixed.
        402 | 403 if events => rejected(
            RejectionKind::Forbidden,
            error,
            StopScope::ThisApi,
            "PagerDuty refused this event: check the routing key's integration and the account's plan",
            Some(Setting::RoutingKey),
        ),
        // PagerDuty's 402: the account's plan lacks the ability the request needs.
        402 => rejected(
            RejectionKind::Forbidden,
            error,
            StopScope::ThisApi,
            "the PagerDuty account's plan does not include what this request needs: ask an account owner to upgrade the plan, or page through Events API v2 with a routing key",
            Some(Setting::ApiKey),
        ),
        403 => rejected(
            RejectionKind::Forbidden,
            error,
            StopScope::ThisApi,
            "the key or the From user may not create incidents: give it write access (scope incidents.write)",
            Some(Setting::ApiKey),
        ),
        // The incident to resolve is gone (deleted or merged): nothing is open.
        404 if kind == RequestKind::RestResolve => return Ok(delivered()),
        404 => rejected(
            RejectionKind::NotFound,
            error,
            StopScope::ThisRequest,
            if events {
                "check the Events API URL"
            } else {
                "check the REST API URL and the test's ids"
            },
            Some(if events { Setting::EventsUrl } else { Setting::ApiUrl }),
        ),
        408 | 429 | 500..=599 => DeliveryFailure::RetryLater(Retry {
            // The Events API sends no reset header; PagerDuty suggests 30 s apart.
            after_seconds: retry_after(headers)
                .or((events && status == 429).then_some(EVENTS_RATE_LIMIT_WAIT)),
            reason: if status == 429 {
                format!("rate limited by PagerDuty ({})", error.message)
            } else {
                format!("PagerDuty answered {status} ({})", error.message)
            },
        }),
        _ => rejected(
            RejectionKind::Other,
            error,
            StopScope::ThisRequest,
            "unexpected answer from PagerDuty; check the API URL",
            Some(if events { Setting::EventsUrl } else { Setting::ApiUrl }),
        ),
    })
}

/// Classifies the reply to this request: a lookup's lists only the
/// incidents it is after (`Lookup`), none for a lookup without a service.
pub fn classify_for(
    request: &AlertRequest,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Delivered, DeliveryFailure> {
    let lookup = Lookup::of(request);
    let mut answer = classify(request.kind, status, headers, body, lookup.as_ref());
    if let (Ok(delivered), None) = (&mut answer, lookup) {
        delivered.found.clear();
    }
    if let (Ok(delivered), RequestKind::RestNote) = (&mut answer, request.kind) {
        delivered.id = crate::incident::noted_incident(&request.url).map(str::to_string);
    }
    answer
}

/// Classifies a request that got no reply. A note is sent again only when
/// it never reached PagerDuty (refused, not connected, no address): sent
/// twice, it would show twice.
pub fn transport_failure(error: &ErrorCode, request: &AlertRequest) -> DeliveryFailure {
    let described = describe(error);
    let unsent = matches!(
        error,
        ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTimeout
            | ErrorCode::DnsTimeout
            | ErrorCode::DnsError(_)
    );
    match error {
        ErrorCode::HttpRequestDenied => denied(request.api, described),
        _ if request.kind == RequestKind::RestNote && !unsent => unconfirmed_note(PagerdutyError {
            status: 0,
            code: None,
            message: described,
            errors: Vec::new(),
        }),
        _ => DeliveryFailure::RetryLater(Retry {
            after_seconds: None,
            reason: described,
        }),
    }
}

/// A note PagerDuty may have taken without saying so: not sent again.
fn unconfirmed_note(error: PagerdutyError) -> DeliveryFailure {
    rejected(
        RejectionKind::Other,
        error,
        StopScope::ThisRequest,
        "PagerDuty did not confirm the note, which is not sent again (sent twice, it would show twice); the next failure notes the incident",
        None,
    )
}

/// A destination the host does not allow (its sandbox, or its allow-list
/// before sending): this and every later request to the API are held back.
pub fn denied(api: Api, message: String) -> DeliveryFailure {
    rejected(
        RejectionKind::Denied,
        PagerdutyError {
            status: 0,
            code: None,
            message,
            errors: Vec::new(),
        },
        StopScope::ThisApi,
        "the host does not allow this destination; allow it, or change the API URL",
        Some(match api {
            Api::Rest => Setting::ApiUrl,
            Api::Events => Setting::EventsUrl,
        }),
    )
}

fn describe(error: &ErrorCode) -> String {
    match error {
        ErrorCode::ConnectionRefused => "connection refused".to_string(),
        ErrorCode::ConnectionTimeout => "timed out connecting".to_string(),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            "timed out waiting for the reply".to_string()
        }
        ErrorCode::ConnectionTerminated => "connection closed before the reply".to_string(),
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) => "could not resolve the host".to_string(),
        ErrorCode::HttpRequestDenied => "request denied by the host's sandbox".to_string(),
        ErrorCode::InternalError(Some(text)) => format!("transport error: {text}"),
        other => format!("transport error: {}", debug(other)),
    }
}

/// `{:?}` of an `ErrorCode` as wit-bindgen derives it (`ErrorCode::Name`,
/// a payload in parentheses), without pulling in the `Debug` impls of every
/// payload (about 4 KB).
fn debug(error: &ErrorCode) -> String {
    use ErrorCode as E;
    // One instantiation for every integer width: the digits are the same.
    fn some<T: Copy + Into<u64>>(value: &Option<T>) -> String {
        value.map_or_else(|| "None".to_string(), |v| format!("Some({})", v.into()))
    }
    fn text(value: &Option<String>) -> String {
        value
            .as_ref()
            .map_or_else(|| "None".to_string(), |v| format!("Some({v:?})"))
    }
    fn field_size(p: &FieldSizePayload) -> String {
        format!(
            "FieldSizePayload {{ field-name: {}, field-size: {} }}",
            text(&p.field_name),
            some(&p.field_size)
        )
    }
    let (name, payload) = match error {
        E::DnsTimeout => ("DnsTimeout", None),
        E::DnsError(p) => (
            "DnsError",
            Some(format!(
                "DnsErrorPayload {{ rcode: {}, info-code: {} }}",
                text(&p.rcode),
                some(&p.info_code)
            )),
        ),
        E::DestinationNotFound => ("DestinationNotFound", None),
        E::DestinationUnavailable => ("DestinationUnavailable", None),
        E::DestinationIpProhibited => ("DestinationIpProhibited", None),
        E::DestinationIpUnroutable => ("DestinationIpUnroutable", None),
        E::ConnectionRefused => ("ConnectionRefused", None),
        E::ConnectionTerminated => ("ConnectionTerminated", None),
        E::ConnectionTimeout => ("ConnectionTimeout", None),
        E::ConnectionReadTimeout => ("ConnectionReadTimeout", None),
        E::ConnectionWriteTimeout => ("ConnectionWriteTimeout", None),
        E::ConnectionLimitReached => ("ConnectionLimitReached", None),
        E::TlsProtocolError => ("TlsProtocolError", None),
        E::TlsCertificateError => ("TlsCertificateError", None),
        E::TlsAlertReceived(p) => (
            "TlsAlertReceived",
            Some(format!(
                "TlsAlertReceivedPayload {{ alert-id: {}, alert-message: {} }}",
                some(&p.alert_id),
                text(&p.alert_message)
            )),
        ),
        E::HttpRequestDenied => ("HttpRequestDenied", None),
        E::HttpRequestLengthRequired => ("HttpRequestLengthRequired", None),
        E::HttpRequestBodySize(n) => ("HttpRequestBodySize", Some(some(n))),
        E::HttpRequestMethodInvalid => ("HttpRequestMethodInvalid", None),
        E::HttpRequestUriInvalid => ("HttpRequestUriInvalid", None),
        E::HttpRequestUriTooLong => ("HttpRequestUriTooLong", None),
        E::HttpRequestHeaderSectionSize(n) => ("HttpRequestHeaderSectionSize", Some(some(n))),
        E::HttpRequestHeaderSize(p) => (
            "HttpRequestHeaderSize",
            Some(p.as_ref().map_or_else(
                || "None".to_string(),
                |p| format!("Some({})", field_size(p)),
            )),
        ),
        E::HttpRequestTrailerSectionSize(n) => ("HttpRequestTrailerSectionSize", Some(some(n))),
        E::HttpRequestTrailerSize(p) => ("HttpRequestTrailerSize", Some(field_size(p))),
        E::HttpResponseIncomplete => ("HttpResponseIncomplete", None),
        E::HttpResponseHeaderSectionSize(n) => ("HttpResponseHeaderSectionSize", Some(some(n))),
        E::HttpResponseHeaderSize(p) => ("HttpResponseHeaderSize", Some(field_size(p))),
        E::HttpResponseBodySize(n) => ("HttpResponseBodySize", Some(some(n))),
        E::HttpResponseTrailerSectionSize(n) => ("HttpResponseTrailerSectionSize", Some(some(n))),
        E::HttpResponseTrailerSize(p) => ("HttpResponseTrailerSize", Some(field_size(p))),
        E::HttpResponseTransferCoding(t) => ("HttpResponseTransferCoding", Some(text(t))),
        E::HttpResponseContentCoding(t) => ("HttpResponseContentCoding", Some(text(t))),
        E::HttpResponseTimeout => ("HttpResponseTimeout", None),
        E::HttpUpgradeFailed => ("HttpUpgradeFailed", None),
        E::HttpProtocolError => ("HttpProtocolError", None),
        E::LoopDetected => ("LoopDetected", None),
        E::ConfigurationError => ("ConfigurationError", None),
        E::InternalError(t) => ("InternalError", Some(text(t))),
    };
    match payload {
        Some(payload) => format!("ErrorCode::{name}({payload})"),
        None => format!("ErrorCode::{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, headers: &[(&str, &str)], body: &str) -> DeliveryFailure {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        classify(
            RequestKind::RestCreate,
            status,
            &headers,
            body.as_bytes(),
            None,
        )
        .expect_err("should not be created")
    }

    #[test]
    fn a_201_yields_the_incident_number_and_link() {
        let body = r#"{"incident":{"id":"PT4KHLK","incident_number":1234,"html_url":"https://x.pagerduty.com/incidents/PT4KHLK"}}"#;
        let created = classify(RequestKind::RestCreate, 201, &[], body.as_bytes(), None).unwrap();
        assert_eq!(created.id.as_deref(), Some("PT4KHLK"));
        assert_eq!(created.number, Some(1234));
        assert_eq!(
            created.html_url.as_deref(),
            Some("https://x.pagerduty.com/incidents/PT4KHLK")
        );
    }

    #[test]
    fn a_field_of_the_wrong_type_reads_as_absent_and_the_rest_count() {
        let body = br#"{"incident":{"id":"PT4KHLK","incident_number":"1234","html_url":7}}"#;
        let created = classify(RequestKind::RestCreate, 201, &[], body, None).unwrap();
        assert_eq!(created.id.as_deref(), Some("PT4KHLK"));
        assert_eq!((created.number, created.html_url), (None, None));
        let found = br#"{"incidents":[{"id":"PA"},{"no":"id"},{"id":"PB"}]}"#;
        let reply = classify(RequestKind::RestFind, 200, &[], found, None).unwrap();
        assert_eq!(reply.found, ["PA", "PB"]);
        let body = br#"{"error":{"message":"Invalid Input Provided","code":"x"}}"#;
        match classify(RequestKind::RestCreate, 400, &[], body, None).unwrap_err() {
            DeliveryFailure::Rejected(r) => {
                assert_eq!(r.error.message, "Invalid Input Provided");
                assert_eq!(r.error.code, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_201_with_malformed_json_is_still_created() {
        let created = classify(RequestKind::RestCreate, 201, &[], b"{not json", None).unwrap();
        assert_eq!(created.number, None);
    }

    #[test]
    fn a_duplicate_incident_key_is_already_open() {
        let body = r#"{"error":{"message":"Invalid Input Provided","code":2001,"errors":["Open incident with matching incident key already exists on this service"]}}"#;
        match failure(400, &[], body) {
            DeliveryFailure::AlreadyOpen(e) => assert_eq!(e.code, Some(2001)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn another_400_is_rejected_with_pagerdutys_message() {
        let body = r#"{"error":{"message":"Invalid Input Provided","code":2001,"errors":["Service not found"]}}"#;
        match failure(400, &[], body) {
            DeliveryFailure::Rejected(r) => {
                assert_eq!(r.kind, RejectionKind::InvalidRequest);
                assert_eq!(r.stops, StopScope::ThisRequest);
                assert_eq!(r.error.message, "Invalid Input Provided");
                assert_eq!(r.error.errors, vec!["Service not found".to_string()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_given_as_an_object_of_fields_are_flattened() {
        let body = r#"{"error":{"message":"Invalid Request","code":2001,"errors":{"event.effective_since":["Date cannot be more than 12 months in the future"]}}}"#;
        match failure(400, &[], body) {
            DeliveryFailure::Rejected(r) => assert_eq!(
                r.error.errors,
                vec![
                    "event.effective_since: Date cannot be more than 12 months in the future"
                        .to_string()
                ]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_401_stops_all_sending() {
        match failure(
            401,
            &[],
            r#"{"error":{"message":"Authentication failed","code":2006}}"#,
        ) {
            DeliveryFailure::Rejected(r) => {
                assert_eq!(r.kind, RejectionKind::Unauthorized);
                assert_eq!(r.stops, StopScope::ThisApi);
                assert_eq!(r.error.message, "Authentication failed");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_429_waits_for_ratelimit_reset() {
        match failure(
            429,
            &[("RateLimit-Reset", "20")],
            r#"{"error":{"message":"Rate Limit Exceeded","code":2020}}"#,
        ) {
            DeliveryFailure::RetryLater(r) => {
                assert_eq!(r.after_seconds, Some(20));
                assert!(r.reason.contains("Rate Limit Exceeded"));
            }
            other => panic!("{other:?}"),
        }
        match failure(429, &[], "") {
            DeliveryFailure::RetryLater(r) => assert_eq!(r.after_seconds, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_errors_are_retried_and_an_html_body_is_quoted_briefly() {
        for status in [500, 502, 503, 504] {
            match failure(status, &[], "<html>bad gateway</html>") {
                DeliveryFailure::RetryLater(r) => {
                    assert!(r.reason.contains(&status.to_string()));
                    assert!(r.reason.contains("<html>bad gateway</html>"));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn events_replies_carry_the_dedup_key_and_finds_list_ids() {
        let accepted = br#"{"status":"success","message":"Event processed","dedup_key":"k1"}"#;
        let reply = classify(RequestKind::EventsTrigger, 202, &[], accepted, None).unwrap();
        assert_eq!(reply.dedup_key.as_deref(), Some("k1"));
        let found = br#"{"incidents":[{"id":"PA"},{"id":"PB"}],"limit":25}"#;
        let reply = classify(RequestKind::RestFind, 200, &[], found, None).unwrap();
        assert_eq!(reply.found, vec!["PA".to_string(), "PB".to_string()]);
        let bad = br#"{"status":"invalid event","message":"Event object is invalid","errors":["'routing_key' is invalid"]}"#;
        match classify(RequestKind::EventsTrigger, 400, &[], bad, None).unwrap_err() {
            DeliveryFailure::Rejected(r) => assert!(r.fix.contains("routing key")),
            other => panic!("{other:?}"),
        }
    }

    fn lookup_request(url: &str, key: &str) -> AlertRequest {
        AlertRequest {
            kind: RequestKind::RestFind,
            api: Api::Rest,
            method: "GET".into(),
            url: url.into(),
            authority: "api.pagerduty.com".into(),
            headers: Vec::new(),
            body: String::new(),
            display_body: String::new(),
            title: String::new(),
            subject: String::new(),
            dedup_key: key.into(),
            timeout_ms: 1000,
            then_note: None,
            dry_run: None,
        }
    }

    #[test]
    fn a_lookup_keeps_only_its_services_incidents_with_its_own_key() {
        let request = lookup_request(
            "https://api.pagerduty.com/incidents?incident_key=k&service_ids%5B%5D=PSVC1&statuses%5B%5D=triggered",
            "k",
        );
        let lookup = Lookup::of(&request).unwrap();
        assert_eq!(lookup.service_id, "PSVC1");
        let body = br#"{"incidents":[
            {"id":"PA","incident_key":"k","service":{"id":"PSVC1","type":"service_reference"}},
            {"id":"PB","incident_key":"k","service":{"id":"PSVC2","type":"service_reference"}},
            {"id":"PC","incident_key":null,"service":{"id":"PSVC1","type":"service_reference"}},
            {"id":"PD","incident_key":"k"},
            {"id":"PE","incident_key":"other","service":{"id":"PSVC1"}}
        ]}"#;
        let reply = classify(RequestKind::RestFind, 200, &[], body, Some(&lookup)).unwrap();
        assert_eq!(reply.found, ["PA"]);
        // Without a request to compare with, every listed incident.
        let reply = classify(RequestKind::RestFind, 200, &[], body, None).unwrap();
        assert_eq!(reply.found.len(), 5);
        // A lookup built without a service asks for nothing to resolve.
        let unscoped = lookup_request("https://api.pagerduty.com/incidents?incident_key=k", "k");
        assert!(Lookup::of(&unscoped).is_none());
    }

    #[test]
    fn pagerdutys_words_come_without_a_closing_period() {
        let body = br#"{"error":{"message":"Invalid Input Provided.","code":2001,"errors":["Service not found."]}}"#;
        match classify(RequestKind::RestCreate, 400, &[], body, None).unwrap_err() {
            DeliveryFailure::Rejected(r) => {
                assert_eq!(r.error.message, "Invalid Input Provided");
                assert_eq!(r.error.errors, ["Service not found"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_402_names_the_accounts_plan_and_a_403_the_keys_access() {
        let fix = |status| match failure(status, &[], "") {
            DeliveryFailure::Rejected(r) => r.fix,
            other => panic!("{other:?}"),
        };
        assert!(fix(402).contains("plan"), "{}", fix(402));
        assert!(!fix(402).contains("write access"));
        assert!(fix(403).contains("write access"));
    }

    #[test]
    fn resolving_an_already_resolved_incident_is_done() {
        let body = br#"{"error":{"message":"Incident Already Resolved","code":1001}}"#;
        assert!(classify(RequestKind::RestResolve, 400, &[], body, None).is_ok());
        assert!(classify(RequestKind::RestCreate, 400, &[], body, None).is_err());
    }

    #[test]
    fn each_status_gets_its_class() {
        let kind = |status| match failure(status, &[], "") {
            DeliveryFailure::Rejected(r) => {
                format!("{:?} all={}", r.kind, r.stops == StopScope::ThisApi)
            }
            DeliveryFailure::RetryLater(_) => "retry".to_string(),
            DeliveryFailure::AlreadyOpen(_) => "open".to_string(),
        };
        assert_eq!(kind(402), "RejectionKind::Forbidden all=true");
        assert_eq!(kind(403), "RejectionKind::Forbidden all=true");
        assert_eq!(kind(404), "RejectionKind::NotFound all=false");
        assert_eq!(kind(408), "retry");
        assert_eq!(kind(418), "RejectionKind::Other all=false");
        assert_eq!(kind(599), "retry");
    }

    #[test]
    fn refused_connections_retry_and_denied_ones_stop() {
        let create = AlertRequest {
            kind: RequestKind::RestCreate,
            ..lookup_request("https://api.pagerduty.com/incidents", "k")
        };
        assert!(matches!(
            transport_failure(&ErrorCode::ConnectionRefused, &create),
            DeliveryFailure::RetryLater(_)
        ));
        match transport_failure(&ErrorCode::HttpRequestDenied, &create) {
            DeliveryFailure::Rejected(r) => assert_eq!(r.kind, RejectionKind::Denied),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_note_is_sent_again_only_when_it_never_reached_pagerduty() {
        let note = AlertRequest {
            kind: RequestKind::RestNote,
            ..lookup_request("https://api.pagerduty.com/incidents/Q1/notes", "k")
        };
        for unsent in [ErrorCode::ConnectionRefused, ErrorCode::ConnectionTimeout] {
            let failure = transport_failure(&unsent, &note);
            assert!(
                matches!(failure, DeliveryFailure::RetryLater(_)),
                "{failure:?}"
            );
        }
        for maybe_taken in [
            ErrorCode::HttpResponseTimeout,
            ErrorCode::ConnectionReadTimeout,
            ErrorCode::ConnectionTerminated,
        ] {
            match transport_failure(&maybe_taken, &note) {
                DeliveryFailure::Rejected(r) => {
                    assert_eq!(r.stops, StopScope::ThisRequest);
                    assert!(r.fix.contains("not sent again"), "{}", r.fix);
                }
                other => panic!("{other:?}"),
            }
        }
        // A reply: rate limited is retried; a server error or 408 is not.
        let answer = |status| classify(RequestKind::RestNote, status, &[], b"{}", None);
        assert!(matches!(answer(429), Err(DeliveryFailure::RetryLater(_))));
        for status in [408, 500, 502, 503] {
            match answer(status) {
                Err(DeliveryFailure::Rejected(r)) => assert_eq!(r.stops, StopScope::ThisRequest),
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn transport_errors_are_named_as_their_derived_debug_names_them() {
        use crate::wasi::http::types::{DnsErrorPayload, TlsAlertReceivedPayload};
        let size = |name: Option<&str>, size: Option<u32>| FieldSizePayload {
            field_name: name.map(str::to_string),
            field_size: size,
        };
        let texts = [
            None,
            Some(String::new()),
            Some("gzip \"x\"\n\u{301}é\u{7f}".to_string()),
        ];
        let mut errors = vec![
            ErrorCode::DnsTimeout,
            ErrorCode::DestinationNotFound,
            ErrorCode::DestinationUnavailable,
            ErrorCode::DestinationIpProhibited,
            ErrorCode::DestinationIpUnroutable,
            ErrorCode::ConnectionRefused,
            ErrorCode::ConnectionTerminated,
            ErrorCode::ConnectionTimeout,
            ErrorCode::ConnectionReadTimeout,
            ErrorCode::ConnectionWriteTimeout,
            ErrorCode::ConnectionLimitReached,
            ErrorCode::TlsProtocolError,
            ErrorCode::TlsCertificateError,
            ErrorCode::HttpRequestDenied,
            ErrorCode::HttpRequestLengthRequired,
            ErrorCode::HttpRequestMethodInvalid,
            ErrorCode::HttpRequestUriInvalid,
            ErrorCode::HttpRequestUriTooLong,
            ErrorCode::HttpResponseIncomplete,
            ErrorCode::HttpResponseTimeout,
            ErrorCode::HttpUpgradeFailed,
            ErrorCode::HttpProtocolError,
            ErrorCode::LoopDetected,
            ErrorCode::ConfigurationError,
            ErrorCode::HttpRequestHeaderSize(None),
        ];
        for n in [None, Some(0), Some(u32::MAX)] {
            errors.push(ErrorCode::HttpRequestHeaderSectionSize(n));
            errors.push(ErrorCode::HttpRequestTrailerSectionSize(n));
            errors.push(ErrorCode::HttpResponseHeaderSectionSize(n));
            errors.push(ErrorCode::HttpResponseTrailerSectionSize(n));
        }
        for n in [None, Some(7), Some(u64::MAX)] {
            errors.push(ErrorCode::HttpRequestBodySize(n));
            errors.push(ErrorCode::HttpResponseBodySize(n));
        }
        for t in &texts {
            errors.push(ErrorCode::HttpResponseTransferCoding(t.clone()));
            errors.push(ErrorCode::HttpResponseContentCoding(t.clone()));
            errors.push(ErrorCode::InternalError(t.clone()));
            for id in [None, Some(0), Some(255)] {
                errors.push(ErrorCode::TlsAlertReceived(TlsAlertReceivedPayload {
                    alert_id: id,
                    alert_message: t.clone(),
                }));
            }
            for code in [None, Some(3)] {
                errors.push(ErrorCode::DnsError(DnsErrorPayload {
                    rcode: t.clone(),
                    info_code: code,
                }));
            }
            for n in [None, Some(1)] {
                let p = size(t.as_deref(), n);
                errors.push(ErrorCode::HttpRequestHeaderSize(Some(p.clone())));
                errors.push(ErrorCode::HttpRequestTrailerSize(p.clone()));
                errors.push(ErrorCode::HttpResponseHeaderSize(p.clone()));
                errors.push(ErrorCode::HttpResponseTrailerSize(p));
            }
        }
        for error in errors {
            assert_eq!(debug(&error), format!("{error:?}"));
        }
    }

    #[test]
    fn an_events_error_body_gives_its_message_and_errors() {
        let bad = br#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect"]}"#;
        match classify(RequestKind::EventsTrigger, 400, &[], bad, None).unwrap_err() {
            DeliveryFailure::Rejected(r) => {
                assert_eq!(r.error.message, "Event object is invalid");
                assert_eq!(r.error.errors, ["Length of 'routing_key' is incorrect"]);
            }
            other => panic!("{other:?}"),
        }
    }

    fn note_reply(status: u16, body: &str) -> Result<Delivered, DeliveryFailure> {
        classify(RequestKind::RestNote, status, &[], body.as_bytes(), None)
    }

    #[test]
    fn a_refused_note_stops_that_note_only_and_says_why() {
        let limit = r#"{"error":{"message":"Invalid Input Provided","code":2001,"errors":["Incident has reached the maximum number of notes"]}}"#;
        let cases = [
            (400, limit, RejectionKind::InvalidRequest, "PagerDuty did not take the note (an incident holds at most 2,000 notes); the incident stays open"),
            (402, "", RejectionKind::Forbidden, "the key or the From user may not add notes (scope incidents.write); pages still go out"),
            (403, "", RejectionKind::Forbidden, "the key or the From user may not add notes (scope incidents.write); pages still go out"),
            (404, r#"{"error":{"message":"Not Found","code":2100}}"#, RejectionKind::NotFound, "the incident is gone (merged or removed); the next failure opens a new one"),
        ];
        for (status, body, kind, fix) in cases {
            match note_reply(status, body) {
                Err(DeliveryFailure::Rejected(r)) => {
                    assert_eq!(
                        (r.kind, r.stops, r.setting),
                        (kind, StopScope::ThisRequest, None),
                        "{status}"
                    );
                    assert_eq!(r.fix, fix, "{status}");
                    assert_eq!(r.error.status, status);
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        match note_reply(400, limit) {
            Err(DeliveryFailure::Rejected(r)) => {
                assert_eq!(r.error.message, "Invalid Input Provided");
                assert_eq!(
                    r.error.errors,
                    ["Incident has reached the maximum number of notes"]
                );
            }
            other => panic!("{other:?}"),
        }
        // Bad credentials stop the REST API as for any request; a 429 or a
        // Only 429 is retried; a 400 is never taken for an open key.
        match note_reply(401, "") {
            Err(DeliveryFailure::Rejected(r)) => assert_eq!(r.stops, StopScope::ThisApi),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            note_reply(429, ""),
            Err(DeliveryFailure::RetryLater(_))
        ));
        // A server error may have added it: not sent again.
        assert!(matches!(
            note_reply(503, ""),
            Err(DeliveryFailure::Rejected(Rejection {
                stops: StopScope::ThisRequest,
                ..
            }))
        ));
        let duplicate = r#"{"error":{"message":"Invalid Input Provided","errors":["Open incident with matching incident key already exists"]}}"#;
        assert!(matches!(
            note_reply(400, duplicate),
            Err(DeliveryFailure::Rejected(_))
        ));
    }

    #[test]
    fn a_note_taken_names_the_incident_it_was_added_to() {
        let reply = r#"{"note":{"id":"PWL7QXS","content":"Failed again","created_at":"2026-11-29T10:40:13Z"}}"#;
        // The note's own id is not the incident's.
        let bare = note_reply(201, reply).unwrap();
        assert_eq!(bare.id, None);
        let mut request = lookup_request(
            "https://api.pagerduty.com/incidents/Q2ZP5BXHT06KHM/notes",
            "k",
        );
        request.kind = RequestKind::RestNote;
        request.method = "POST".into();
        for status in [200, 201] {
            let noted = classify_for(&request, status, &[], reply.as_bytes()).unwrap();
            assert_eq!(noted.id.as_deref(), Some("Q2ZP5BXHT06KHM"));
            assert!(noted.found.is_empty());
        }
        // Unreadable, it still counts.
        let noted = classify_for(&request, 201, &[], b"not json").unwrap();
        assert_eq!(noted.id.as_deref(), Some("Q2ZP5BXHT06KHM"));
    }
}
