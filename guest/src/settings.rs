//! Settings checks: where requests go and how they authenticate. Errors
//! never quote a secret.

use crate::pytest_pagerduty::alerts::types::{Setting, Settings, SettingsError};

/// PagerDuty's REST API; EU accounts use https://api.eu.pagerduty.com.
pub const DEFAULT_API_URL: &str = "https://api.pagerduty.com";
/// PagerDuty's Events API; EU accounts use https://events.eu.pagerduty.com.
pub const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com";

/// The longest wait a user may set, so no send can hang a run for long.
const TIMEOUT_MAX_MS: u32 = 600_000;
/// More attempts than this would only hammer a PagerDuty that is down.
pub const MAX_ATTEMPTS_MAX: u32 = 20;

/// How a request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    ApiKey(&'a str),
    OAuthToken(&'a str),
}

impl Credential<'_> {
    /// The `Authorization` header value PagerDuty expects.
    pub fn authorization(&self) -> String {
        match self {
            Credential::ApiKey(key) => format!("Token token={key}"),
            Credential::OAuthToken(token) => format!("Bearer {token}"),
        }
    }
}

/// Where requests go, split as wasi-http wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    pub authority: String,
    /// The base path without a trailing slash (usually empty).
    pub path: String,
}

impl Endpoint {
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}{path}", self.authority, self.path)
    }
}

/// Settings once checked.
#[derive(Debug)]
pub struct Checked<'a> {
    pub endpoint: Endpoint,
    pub events: Endpoint,
    pub credential: Option<Credential<'a>>,
    pub from: Option<&'a str>,
    pub dry_run: bool,
}

impl<'a> Checked<'a> {
    /// The REST credential and From address; in a dry run they may be absent.
    pub fn rest(&self) -> Result<(Option<Credential<'a>>, Option<&'a str>), SettingsError> {
        if self.dry_run {
            return Ok((self.credential, self.from));
        }
        match (self.credential, self.from) {
            (None, _) => Err(error(
                Setting::ApiKey,
                "this test pages through the REST API (it has a service_id, no routing_key), and no API key or OAuth token is set",
                "set the REST API key (or an OAuth token), or give the test a routing_key for Events API v2",
            )),
            (Some(_), None) => Err(missing_from()),
            (credential, from) => Ok((credential, from)),
        }
    }
}

fn missing_from() -> SettingsError {
    // POST /incidents requires From (the user the incident is created as),
    // whichever credential is used.
    error(
        Setting::DefaultFrom,
        "PagerDuty creates incidents as a user, named by a From address, and none is set",
        "set the From address to a PagerDuty user's email",
    )
}

pub fn error(
    setting: Setting,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> SettingsError {
    SettingsError {
        setting,
        problem: problem.into(),
        fix: fix.into(),
    }
}

fn is_loopback(host: &str) -> bool {
    let octets: Vec<&str> = host.split('.').collect();
    let ipv4_loopback =
        octets.len() == 4 && octets[0] == "127" && octets.iter().all(|o| o.parse::<u8>().is_ok());
    host == "localhost" || host == "[::1]" || ipv4_loopback
}

/// Splits `scheme://authority[/path]`; PagerDuty's base URL has no query.
pub fn parse_url(url: &str) -> Result<Endpoint, String> {
    // Messages never quote the URL: it may carry credentials or a token.
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "the URL is not absolute (scheme://host)".to_string())?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err("the URL's scheme is not http or https".to_string()),
    };
    if rest.contains(['?', '#']) {
        return Err("the URL has a query or fragment".to_string());
    }
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("the URL carries a user or password (user:password@host)".to_string());
    }
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return Err("the URL has no valid host".to_string());
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            if !port.is_empty() && !port.chars().all(|c| c.is_ascii_digit()) {
                return Err("the URL's port is not a number".to_string());
            }
            if host.is_empty() {
                authority
            } else {
                host
            }
        }
        _ => authority,
    };
    if !https && !is_loopback(&host.to_ascii_lowercase()) {
        return Err(format!(
            "plain http is allowed only for loopback hosts, not {host}"
        ));
    }
    Ok(Endpoint {
        https,
        authority: authority.to_ascii_lowercase(),
        path: path.trim_end_matches('/').to_string(),
    })
}

/// A token must be the bare secret: one printable word, no scheme prefix.
/// How messages name a secret setting.
fn label(setting: Setting) -> &'static str {
    match setting {
        Setting::ApiKey => "the API key",
        Setting::OauthToken => "the OAuth token",
        Setting::FallbackRoutingKey => "the fallback routing key",
        _ => "the routing key",
    }
}

fn check_secret(setting: Setting, secret: &str) -> Result<(), SettingsError> {
    let name = label(setting);
    let lowered = secret.to_ascii_lowercase();
    if lowered.starts_with("token ") || lowered.starts_with("bearer ") {
        return Err(error(
            setting,
            "the value starts with an authorization scheme",
            format!("set {name} to the bare key; the scheme is added for you"),
        ));
    }
    if secret.is_empty() || !secret.chars().all(|c| c.is_ascii_graphic()) {
        return Err(error(
            setting,
            "the value is empty or holds spaces, quotes of a shell, or non-ASCII characters",
            format!("copy {name} again from PagerDuty (User Settings or Integrations → API Access Keys)"),
        ));
    }
    Ok(())
}

fn check_from(from: &str) -> Result<(), SettingsError> {
    let valid = match from.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !from.contains(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(error(
            Setting::DefaultFrom,
            format!("{from:?} is not an email address"),
            "set it to the email of a PagerDuty user on the account",
        ))
    }
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Checks settings; an API key wins over an OAuth token when both are set.
pub fn check(settings: &Settings) -> Result<Checked<'_>, SettingsError> {
    let url = present(&settings.api_url).unwrap_or(DEFAULT_API_URL);
    let endpoint = parse_url(url).map_err(|problem| {
        error(
            Setting::ApiUrl,
            problem,
            "use https://api.pagerduty.com, or https://api.eu.pagerduty.com for EU accounts",
        )
    })?;
    if settings.timeout_ms == 0 || settings.timeout_ms > TIMEOUT_MAX_MS {
        return Err(error(
            Setting::Timeout,
            format!("{} ms is out of range", settings.timeout_ms),
            format!(
                "use a timeout from 0.001 to {} seconds",
                TIMEOUT_MAX_MS / 1000
            ),
        ));
    }
    for (setting, value, most) in [
        (
            Setting::MaxAttempts,
            settings.max_attempts,
            MAX_ATTEMPTS_MAX,
        ),
        (Setting::MaxIncidents, settings.max_incidents, u32::MAX),
        (
            Setting::PageAfterFailures,
            settings.page_after_failures,
            crate::marker::PAGE_AFTER_MAX,
        ),
    ] {
        if value.is_some_and(|v| v == 0 || v > most) {
            return Err(error(
                setting,
                format!("{} is out of range", value.unwrap_or_default()),
                if most == u32::MAX {
                    "use a whole number of 1 or more".to_string()
                } else {
                    format!("use a whole number from 1 to {most}")
                },
            ));
        }
    }
    let events = parse_url(present(&settings.events_url).unwrap_or(DEFAULT_EVENTS_URL))
        .map_err(|problem| {
            error(
                Setting::EventsUrl,
                problem,
                "use https://events.pagerduty.com, or https://events.eu.pagerduty.com for EU accounts",
            )
        })?;
    let api_key = present(&settings.api_key);
    let oauth_token = present(&settings.oauth_token);
    let routing_key = present(&settings.routing_key);
    let from = present(&settings.default_from);
    if let Some(key) = api_key {
        check_secret(Setting::ApiKey, key)?;
    }
    if let Some(token) = oauth_token {
        check_secret(Setting::OauthToken, token)?;
    }
    for (setting, key) in [
        (Setting::RoutingKey, routing_key),
        (
            Setting::FallbackRoutingKey,
            crate::destination::fallback_key(settings),
        ),
    ] {
        let Some(key) = key else { continue };
        check_secret(setting, key)?;
        if let Some(problem) = crate::destination::routing_key_problem(key) {
            return Err(error(
                setting,
                problem,
                "copy the 32-character Integration Key from the service's Events API v2 integration",
            ));
        }
    }
    if let Some(from) = from {
        check_from(from)?;
    }
    let credential = match (api_key, oauth_token) {
        (Some(key), _) => Some(Credential::ApiKey(key)),
        (None, Some(token)) => Some(Credential::OAuthToken(token)),
        (None, None) => None,
    };
    // What each destination needs (a REST credential, a routing key, which a
    // marker may bring) is checked when its request is built.
    if !settings.dry_run && credential.is_some() && from.is_none() {
        return Err(missing_from());
    }
    Ok(Checked {
        endpoint,
        events,
        credential,
        from,
        dry_run: settings.dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn settings() -> Settings {
        Settings {
            api_url: None,
            api_key: Some("u+abcdefghij".into()),
            oauth_token: None,
            default_from: Some("oncall@example.com".into()),
            routing_key: None,
            events_url: None,
            timeout_ms: 10_000,
            dry_run: false,
            max_attempts: None,
            max_incidents: None,
            fallback_routing_key: None,
            page_after_failures: None,
        }
    }

    #[test]
    fn parses_https_urls_with_ports_and_paths() {
        let endpoint = parse_url("https://API.eu.pagerduty.com:8443/base/").unwrap();
        assert!(endpoint.https);
        assert_eq!(endpoint.authority, "api.eu.pagerduty.com:8443");
        assert_eq!(
            endpoint.url("/incidents"),
            "https://api.eu.pagerduty.com:8443/base/incidents"
        );
    }

    #[test]
    fn plain_http_is_only_for_loopback() {
        assert!(parse_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_url("http://localhost:1").is_ok());
        assert!(parse_url("http://[::1]:9").is_ok());
        let err = parse_url("http://api.pagerduty.com").unwrap_err();
        assert!(err.contains("only for loopback"), "{err}");
        assert!(parse_url("http://127.0.0.1.evil.com").is_err());
    }

    #[test]
    fn rejects_urls_that_are_not_plain_bases() {
        for url in [
            "api.pagerduty.com",
            "ftp://x",
            "https://",
            "https://u:p@host",
            "https://h/?q=1",
            "https://h:x1",
        ] {
            assert!(parse_url(url).is_err(), "{url} should be rejected");
        }
    }

    #[test]
    fn an_api_key_without_from_is_rejected_with_the_fix() {
        let mut s = settings();
        s.default_from = None;
        let err = check(&s).unwrap_err();
        assert_eq!(err.setting, Setting::DefaultFrom);
        assert!(err.fix.contains("From address"));
    }

    #[test]
    fn an_oauth_token_is_a_bearer_token_and_also_needs_from() {
        let mut s = settings();
        s.api_key = None;
        s.oauth_token = Some("tok_123".into());
        let checked = check(&s).unwrap();
        assert_eq!(checked.credential, Some(Credential::OAuthToken("tok_123")));
        assert_eq!(
            checked.credential.unwrap().authorization(),
            "Bearer tok_123"
        );
        s.default_from = None;
        assert_eq!(check(&s).unwrap_err().setting, Setting::DefaultFrom);
    }

    #[test]
    fn without_a_url_the_default_is_pagerdutys_api() {
        let s = settings();
        let checked = check(&s).unwrap();
        assert_eq!(
            checked.endpoint.url("/incidents"),
            "https://api.pagerduty.com/incidents"
        );
    }

    #[test]
    fn url_errors_never_quote_the_url() {
        for url in [
            "https://bob:SECRETPW@api.pagerduty.com",
            "https://h/?token=SECRETQ",
            "SECRETX",
        ] {
            let err = parse_url(url).unwrap_err();
            assert!(!err.contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn the_api_key_wins_when_both_are_set() {
        let mut s = settings();
        s.oauth_token = Some("tok_123".into());
        let checked = check(&s).unwrap();
        assert_eq!(
            checked.credential.unwrap().authorization(),
            "Token token=u+abcdefghij"
        );
    }

    #[test]
    fn a_token_with_a_scheme_or_spaces_is_rejected_without_quoting_it() {
        for bad in ["Token token=abc", "Bearer abc", "ab c", "ключ"] {
            let mut s = settings();
            s.api_key = Some(bad.into());
            let err = check(&s).unwrap_err();
            assert_eq!(err.setting, Setting::ApiKey);
            assert!(!err.problem.contains(bad) && !err.fix.contains(bad));
        }
    }

    #[test]
    fn a_routing_key_alone_is_enough_and_needs_no_from() {
        let mut s = settings();
        s.api_key = None;
        s.default_from = None;
        s.routing_key = Some("R0UTINGKEY0123456789abcdefghijkl".into());
        let checked = check(&s).unwrap();
        assert_eq!(
            checked.events.url("/v2/enqueue"),
            "https://events.pagerduty.com/v2/enqueue"
        );
        assert_eq!(checked.rest().unwrap_err().setting, Setting::ApiKey);
        s.routing_key = Some("bad key".into());
        assert_eq!(check(&s).unwrap_err().setting, Setting::RoutingKey);
    }

    #[test]
    fn a_fallback_routing_key_is_checked_as_a_routing_key_without_quoting_it() {
        let mut s = settings();
        s.fallback_routing_key = Some("FALLBACKKEY0123456789abcdefghijk".into());
        assert!(check(&s).is_ok());
        for bad in ["FALLBACKKEY", "Token FALLBACKKEY0123456789abcdefghijk"] {
            s.fallback_routing_key = Some(bad.into());
            let err = check(&s).unwrap_err();
            assert_eq!(err.setting, Setting::FallbackRoutingKey);
            assert!(!err.problem.contains("FALLBACKKEY") && !err.fix.contains("FALLBACKKEY"));
        }
    }

    #[test]
    fn without_credentials_rest_requests_are_refused_unless_in_a_dry_run() {
        let mut s = settings();
        s.api_key = None;
        let err = check(&s).unwrap().rest().unwrap_err();
        assert_eq!(err.setting, Setting::ApiKey);
        assert!(err.fix.contains("routing_key"));
        s.dry_run = true;
        assert_eq!(
            check(&s).unwrap().rest().unwrap(),
            (None, Some("oncall@example.com"))
        );
    }

    #[test]
    fn a_bad_from_or_timeout_is_rejected() {
        let mut s = settings();
        s.default_from = Some("not-an-email".into());
        assert_eq!(check(&s).unwrap_err().setting, Setting::DefaultFrom);
        let mut s = settings();
        s.timeout_ms = 0;
        assert_eq!(check(&s).unwrap_err().setting, Setting::Timeout);
    }

    #[test]
    fn page_after_failures_as_a_setting_is_a_whole_number_from_1_to_1440() {
        for n in [1, 2, 1440] {
            let mut s = settings();
            s.page_after_failures = Some(n);
            assert!(check(&s).is_ok(), "{n}");
        }
        for n in [0, 1441, u32::MAX] {
            let mut s = settings();
            s.page_after_failures = Some(n);
            let err = check(&s).unwrap_err();
            assert_eq!(err.setting, Setting::PageAfterFailures);
            assert_eq!(err.problem, format!("{n} is out of range"));
            assert_eq!(err.fix, "use a whole number from 1 to 1440");
        }
    }
}
