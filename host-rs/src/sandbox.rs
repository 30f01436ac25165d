//! The sandbox the Python host cannot give: outbound requests only to the
//! allowed hosts, and never waiting longer than a cap, whatever the guest asks.

use std::future::Future;
use std::time::Duration;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{default_send_request, Error, RequestOptions, WasiBody, WasiHttpHooks};

/// PagerDuty's REST and Events hosts, US and EU.
pub const PAGERDUTY_HOSTS: &[&str] = &[
    "api.pagerduty.com:443",
    "api.eu.pagerduty.com:443",
    "events.pagerduty.com:443",
    "events.eu.pagerduty.com:443",
];

/// Where the guest may send, as `host:port` with default ports filled in.
#[derive(Debug, Clone)]
pub struct Allowlist {
    authorities: Vec<String>,
}

impl Default for Allowlist {
    fn default() -> Self {
        Self::new(PAGERDUTY_HOSTS.iter().copied())
    }
}

impl Allowlist {
    pub fn new<'a>(authorities: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            authorities: authorities
                .into_iter()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
        }
    }

    /// `host:port` of a request, with the scheme's default port filled in.
    pub fn authority_of(uri: &http::Uri) -> Option<String> {
        let host = uri.host()?.to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        Some(format!("{host}:{port}"))
    }

    /// Why a request may not go out, or nothing when it may.
    pub fn check(&self, uri: &http::Uri) -> Result<(), String> {
        let authority = Self::authority_of(uri).ok_or_else(|| format!("{uri} names no host"))?;
        if self.authorities.contains(&authority) {
            return Ok(());
        }
        Err(format!(
            "{authority} is not an allowed destination; allow it with --allow-host {authority}"
        ))
    }
}

/// The hooks wasi-http calls for every outbound request.
pub struct Sandbox {
    pub allowlist: Allowlist,
    /// No connect, first-byte or between-bytes wait is longer than this.
    pub timeout_cap: Duration,
    /// Every refusal, for the host to report.
    pub denied: Vec<String>,
}

fn capped(options: Option<RequestOptions>, cap: Duration) -> RequestOptions {
    let cap_one = |asked: Option<Duration>| Some(asked.map_or(cap, |a| a.min(cap)));
    let options = options.unwrap_or_default();
    RequestOptions {
        connect_timeout: cap_one(options.connect_timeout),
        first_byte_timeout: cap_one(options.first_byte_timeout),
        between_bytes_timeout: cap_one(options.between_bytes_timeout),
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for Sandbox {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        let verdict = self.allowlist.check(request.uri());
        if let Err(reason) = &verdict {
            self.denied.push(reason.clone());
        }
        let options = capped(options, self.timeout_cap);
        Box::new(async move {
            if verdict.is_err() {
                return Err(Error::HttpRequestDenied);
            }
            let (response, io) = default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> http::Uri {
        text.parse().unwrap()
    }

    #[test]
    fn default_ports_are_filled_in_before_comparing() {
        let allow = Allowlist::default();
        assert!(allow
            .check(&uri("https://api.pagerduty.com/incidents"))
            .is_ok());
        assert!(allow
            .check(&uri("https://api.pagerduty.com:443/incidents"))
            .is_ok());
        assert!(allow
            .check(&uri("http://api.pagerduty.com/incidents"))
            .is_err());
        assert!(allow
            .check(&uri("https://api.pagerduty.com.evil.com/"))
            .is_err());
    }

    #[test]
    fn a_refusal_names_the_host_and_how_to_allow_it() {
        let allow = Allowlist::new(["127.0.0.1:8080"]);
        let reason = allow.check(&uri("http://localhost:8080/x")).unwrap_err();
        assert_eq!(
            reason,
            "localhost:8080 is not an allowed destination; allow it with --allow-host localhost:8080"
        );
    }

    #[test]
    fn the_cap_bounds_every_timeout_the_guest_asks_for() {
        let cap = Duration::from_millis(500);
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_secs(600)),
            first_byte_timeout: None,
            between_bytes_timeout: Some(Duration::from_millis(100)),
        };
        let capped = capped(Some(asked), cap);
        assert_eq!(capped.connect_timeout, Some(cap));
        assert_eq!(capped.first_byte_timeout, Some(cap));
        assert_eq!(
            capped.between_bytes_timeout,
            Some(Duration::from_millis(100))
        );
    }
}
