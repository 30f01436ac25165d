//! The command line.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Opens PagerDuty incidents (REST API v2) or alerts (Events API v2) for the
/// failed cases of JUnit XML reports, through the same sandboxed component
/// as the pytest plugin. Credentials come from the environment:
/// PAGERDUTY_API_KEY or PAGERDUTY_OAUTH_TOKEN with PAGERDUTY_DEFAULT_FROM,
/// or PAGERDUTY_ROUTING_KEY. With none set it is a dry run.
///
/// Exit codes: 0 every alert due was sent (or shown, in a dry run);
/// 1 some alert could not be delivered (listed; rerun to send it, the keys
/// are stable so nothing pages twice); 2 bad usage, config, credentials
/// or report, before anything is sent.
#[derive(Debug, Parser)]
#[command(name = "pagerduty-junit", version)]
pub struct Args {
    /// JUnit XML reports (pytest --junitxml, cargo nextest, go-junit-report, jest-junit, Surefire).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,

    /// Routes and settings; default ./pagerduty-junit.toml when it exists.
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// Page this service for failed cases no config route matched.
    #[arg(long)]
    pub service_id: Option<String>,
    /// Send to Events API v2 with the key in this environment variable.
    #[arg(long, value_name = "VAR")]
    pub routing_key_env: Option<String>,
    /// An Events API v2 integration key that receives one alert when a
    /// case's page is refused for good [env: PAGERDUTY_FALLBACK_ROUTING_KEY,
    /// which keeps it out of the process list].
    #[arg(long, value_name = "KEY")]
    pub fallback_routing_key: Option<String>,
    #[arg(long)]
    pub urgency: Option<String>,
    #[arg(long)]
    pub severity: Option<String>,

    /// Build and show the requests, send nothing (the default without credentials).
    #[arg(long, conflicts_with = "send")]
    pub dry_run: bool,
    /// Send, and fail (exit 2) when credentials are missing.
    #[arg(long)]
    pub send: bool,

    /// Which passing cases get their alert resolved.
    #[arg(long, value_enum, default_value_t = Resolve::Opened)]
    pub resolve: Resolve,
    /// Where the alerts this command opened, their notes and each case's
    /// failing runs in a row are remembered between runs.
    #[arg(long, default_value = ".pagerduty-junit-state.json")]
    pub state: PathBuf,

    /// At most this many alerts one by one; the rest are grouped into one per
    /// destination [default: the component's, 10].
    #[arg(long)]
    pub max_incidents: Option<u32>,

    /// REST API base [env: PAGERDUTY_API_URL].
    #[arg(long)]
    pub api_url: Option<String>,
    /// Events API base [env: PAGERDUTY_EVENTS_URL].
    #[arg(long)]
    pub events_url: Option<String>,
    /// A destination allowed besides PagerDuty's own hosts, as host:port.
    #[arg(long = "allow-host", value_name = "HOST:PORT")]
    pub allow_hosts: Vec<String>,
    /// Connect, first-byte and between-bytes timeout of one request [default: 10000].
    #[arg(long)]
    pub timeout_ms: Option<u32>,
    /// Attempts per request when PagerDuty is rate limiting or down
    /// [default: the component's, 4].
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Page for a case only once it has failed in this many runs in a row
    /// (counted in --state), for routes that do not say
    /// [env: PAGERDUTY_PAGE_AFTER_FAILURES; default: 1, at the first failure].
    #[arg(long, value_name = "N")]
    pub page_after_failures: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Resolve {
    /// Alerts this command opened (recorded in --state) whose case passes.
    Opened,
    /// Every passing case's key, opened here or not.
    Always,
    Never,
}
