//! REST API v2 requests: `POST /incidents` for a failure, `GET /incidents`
//! by key, `PUT /incidents/{id}` to resolve and `POST /incidents/{id}/notes`
//! when it fails again.

use serde::Serialize;

use crate::pytest_pagerduty::alerts::types::{
    AlertRequest, Header, IncidentOptions, RequestKind, Settings, SettingsError, Urgency,
};
use crate::request::{self, header, Parts};
use crate::settings::Checked;

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
    incident_key: &'a str,
    body: Body,
}

#[derive(Serialize)]
struct CreateIncident<'a> {
    incident: Incident<'a>,
}

/// The body that resolves an incident, always the same: written out, not
/// serialized from two structs (their serializers cost the component).
const RESOLVE_BODY: &str = r#"{"incident":{"type":"incident_reference","status":"resolved"}}"#;

fn reference<'a>(id: &'a Option<String>, kind: &'static str) -> Option<Reference<'a>> {
    id.as_deref().map(|id| Reference { id, kind })
}

/// Accept, Content-Type (the contract requires it even on a GET), the
/// credential and From.
fn headers(checked: &Checked) -> Result<Vec<Header>, SettingsError> {
    let (credential, from) = checked.rest()?;
    let mut headers = vec![
        header("Accept", ACCEPT, false),
        header("Content-Type", "application/json", false),
    ];
    if let Some(credential) = credential {
        headers.push(header("Authorization", &credential.authorization(), true));
    }
    if let Some(from) = from {
        headers.push(header("From", from, false));
    }
    Ok(headers)
}

/// A REST request to `path` with this body (shown as sent): the part every
/// REST request shares, built in one place (the component's size, P4).
fn rest(
    (checked, settings): (&Checked, &Settings),
    (kind, method, path): (RequestKind, &'static str, &str),
    body: String,
    title: String,
    dedup_key: String,
) -> Result<AlertRequest, SettingsError> {
    Ok(request::finish(
        Parts {
            kind,
            method,
            url: checked.endpoint.url(path),
            authority: checked.endpoint.authority.clone(),
            headers: headers(checked)?,
            display_body: body.clone(),
            body,
            title,
            dedup_key,
        },
        settings.timeout_ms,
    ))
}

/// `POST /incidents` with this title and body.
pub fn create(
    checked: &Checked,
    settings: &Settings,
    service_id: &str,
    options: &IncidentOptions,
    title: String,
    details: String,
    dedup_key: String,
) -> Result<AlertRequest, SettingsError> {
    let payload = CreateIncident {
        incident: Incident {
            kind: "incident",
            title: title.clone(),
            service: Reference {
                id: service_id,
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
            incident_key: &dedup_key,
            body: Body {
                kind: "incident_body",
                details,
            },
        },
    };
    let body = request::json(&payload);
    rest(
        (checked, settings),
        (RequestKind::RestCreate, "POST", "/incidents"),
        body,
        title,
        dedup_key,
    )
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn query_value(value: &str) -> String {
    crate::text::percent_encoded(value, false)
}

/// The query parameter naming the service a lookup is scoped to.
pub const SERVICE_IDS: &str = "service_ids%5B%5D=";

/// `GET /incidents` for the open incidents of this service with this key: an
/// incident key is unique only per service.
pub fn find(
    checked: &Checked,
    settings: &Settings,
    nodeid: &str,
    service_id: &str,
    dedup_key: String,
) -> Result<AlertRequest, SettingsError> {
    let path = format!(
        "/incidents?incident_key={}&{SERVICE_IDS}{}&statuses%5B%5D=triggered&statuses%5B%5D=acknowledged&date_range=all",
        query_value(&dedup_key),
        query_value(service_id)
    );
    rest(
        (checked, settings),
        (RequestKind::RestFind, "GET", &path),
        String::new(),
        format!("Find the incident of {nodeid}"),
        dedup_key,
    )
}

/// `PUT /incidents/{id}` setting it resolved.
pub fn resolve(
    checked: &Checked,
    settings: &Settings,
    nodeid: &str,
    incident_id: &str,
    dedup_key: String,
) -> Result<AlertRequest, SettingsError> {
    let body = RESOLVE_BODY.to_string();
    rest(
        (checked, settings),
        (
            RequestKind::RestResolve,
            "PUT",
            &format!("/incidents/{}", query_value(incident_id)),
        ),
        body,
        format!("Resolved: {nodeid} passes again"),
        dedup_key,
    )
}

/// `POST /incidents/{id}/notes` with this note.
pub fn note(
    checked: &Checked,
    settings: &Settings,
    nodeid: &str,
    incident_id: &str,
    content: &str,
    dedup_key: String,
) -> Result<AlertRequest, SettingsError> {
    // `{"note":{"content":…}}`, the content written as any JSON string.
    let body = format!(
        "{{\"note\":{{\"content\":{}}}}}",
        request::json(&serde_json::Value::from(content))
    );
    rest(
        (checked, settings),
        (
            RequestKind::RestNote,
            "POST",
            &format!("/incidents/{}/notes", query_value(incident_id)),
        ),
        body,
        format!("Noted: {nodeid} failed again"),
        dedup_key,
    )
}

/// The incident a `note` request is for, from its URL.
pub fn noted_incident(url: &str) -> Option<&str> {
    // `rsplit_once("/incidents/")`, without the backward substring search
    // it brings in.
    const AT: &[u8] = b"/incidents/";
    let start = url.as_bytes().windows(AT.len()).rposition(|w| w == AT)?;
    url[start + AT.len()..].strip_suffix("/notes")
}
