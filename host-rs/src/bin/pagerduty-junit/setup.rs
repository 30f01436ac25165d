//! Everything that can be wrong is found here, before anything is sent:
//! the config, the routes, the settings and credentials, each route's options
//! as the component checks them, and the component's preflight of each.

use std::path::{Path, PathBuf};

use pagerduty_host::routes::{Argument, Config, Route};
use pagerduty_host::{
    BuildError, DryRunReason, Marker, MarkerError, MarkerValue, Pager, Setting, Settings,
    SettingsError,
};

use crate::args::Args;

pub const DEFAULT_CONFIG: &str = "pagerduty-junit.toml";
const DEFAULT_TIMEOUT_MS: u32 = 10_000;
/// Stands in for a route's routing key in a dry run without one.
const DRY_RUN_ROUTING_KEY: &str = "DRYRUNROUTINGKEY0000000000000000";
/// The environment's default for `--page-after-failures`.
const PAGE_AFTER_FAILURES_ENV: &str = "PAGERDUTY_PAGE_AFTER_FAILURES";

/// Bad usage, config, credentials or report: exit 2, nothing sent.
pub struct Usage(pub String);

pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn trap(error: wasmtime::Error) -> Usage {
    Usage(format!("the component failed: {error:#}"))
}

pub fn load_config(args: &Args) -> Result<Config, Usage> {
    let path = match &args.config {
        Some(path) => path.clone(),
        None if Path::new(DEFAULT_CONFIG).is_file() => PathBuf::from(DEFAULT_CONFIG),
        None => return Ok(Config::default()),
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Usage(format!("reading {}: {e}", path.display())))?;
    Config::parse(&text).map_err(|e| Usage(format!("{}: {e}", path.display())))
}

/// The config's routes, then one for every case from the flags, if any.
pub fn all_routes(args: &Args, config: &Config) -> Result<Vec<Route>, Usage> {
    let mut routes = config.routes.clone();
    let flag = |value: &Option<String>| value.clone().map(Argument::from);
    let flags = Route {
        service_id: flag(&args.service_id),
        routing_key_env: args.routing_key_env.clone(),
        urgency: flag(&args.urgency),
        severity: flag(&args.severity),
        ..Route::default()
    };
    let any_flag = flags.service_id.is_some()
        || flags.routing_key_env.is_some()
        || flags.urgency.is_some()
        || flags.severity.is_some();
    // A routing key in the environment is enough to page for every case.
    if any_flag || (routes.is_empty() && env("PAGERDUTY_ROUTING_KEY").is_some()) {
        routes.push(flags);
    }
    if routes.is_empty() {
        return Err(Usage(format!(
            "nothing says where to page: give --service-id or --routing-key-env, set \
             PAGERDUTY_ROUTING_KEY, or write routes in {DEFAULT_CONFIG} (--config)"
        )));
    }
    Ok(routes)
}

/// The settings as this command reads them. The component decides whether
/// the run is a dry run (`--dry-run`, or no credential it can send with);
/// the one exception is a stand-in routing key (below), which is never sent.
pub fn settings(args: &Args, config: &Config, routes: &[Route]) -> Result<Settings, Usage> {
    let api_key = env("PAGERDUTY_API_KEY");
    let oauth_token = env("PAGERDUTY_OAUTH_TOKEN");
    let routing_key = env("PAGERDUTY_ROUTING_KEY");
    let route_keys = routes
        .iter()
        .filter_map(|r| r.routing_key_env.as_deref())
        .any(|name| env(name).is_some());
    let credentials =
        api_key.is_some() || oauth_token.is_some() || routing_key.is_some() || route_keys;
    if args.send && !credentials {
        return Err(Usage(
            "--send, but no credentials are set: set PAGERDUTY_API_KEY (or PAGERDUTY_OAUTH_TOKEN) \
             and PAGERDUTY_DEFAULT_FROM, or PAGERDUTY_ROUTING_KEY"
                .into(),
        ));
    }
    // A route whose key is not set gets a stand-in key to preview with
    // (check_routes); that key must never go out, so the run is then only a
    // preview. With any key set, an unset one is an error instead.
    let stand_in = !credentials && routes.iter().any(|r| r.routing_key_env.is_some());
    let file = &config.settings;
    let page_after_failures = match (args.page_after_failures, env(PAGE_AFTER_FAILURES_ENV)) {
        (Some(runs), _) => Some(runs),
        (None, Some(text)) => Some(text.trim().parse::<u32>().map_err(|_| {
            Usage(format!(
                "{PAGE_AFTER_FAILURES_ENV}={text:?} is not a whole number of runs; \
                 set it to 2 to page once a case has failed in 2 runs in a row"
            ))
        })?),
        (None, None) => file.page_after_failures,
    };
    Ok(Settings {
        api_url: (args.api_url.clone())
            .or_else(|| env("PAGERDUTY_API_URL"))
            .or(file.api_url.clone()),
        api_key,
        oauth_token,
        default_from: env("PAGERDUTY_DEFAULT_FROM").or(file.default_from.clone()),
        routing_key,
        events_url: (args.events_url.clone())
            .or_else(|| env("PAGERDUTY_EVENTS_URL"))
            .or(file.events_url.clone()),
        timeout_ms: (args.timeout_ms)
            .or(file.timeout_ms)
            .unwrap_or(DEFAULT_TIMEOUT_MS),
        dry_run: args.dry_run || stand_in,
        max_attempts: args.max_attempts,
        max_incidents: args.max_incidents,
        fallback_routing_key: (args.fallback_routing_key.clone())
            .or_else(|| env("PAGERDUTY_FALLBACK_ROUTING_KEY")),
        page_after_failures,
    })
}

/// Where this command takes each setting the component may name: the one
/// table from the component's neutral names to this command's spelling.
pub fn spelling(setting: Setting) -> &'static str {
    match setting {
        Setting::ApiUrl => "--api-url (or PAGERDUTY_API_URL, or api_url in the config file)",
        Setting::ApiKey => "PAGERDUTY_API_KEY",
        Setting::OauthToken => "PAGERDUTY_OAUTH_TOKEN",
        Setting::DefaultFrom => "PAGERDUTY_DEFAULT_FROM (or default_from in the config file)",
        Setting::RoutingKey => "PAGERDUTY_ROUTING_KEY (or the route's routing_key_env)",
        Setting::EventsUrl => {
            "--events-url (or PAGERDUTY_EVENTS_URL, or events_url in the config file)"
        }
        Setting::Timeout => "--timeout-ms (or timeout_ms in the config file)",
        Setting::MaxAttempts => "--max-attempts",
        Setting::MaxIncidents => "--max-incidents",
        Setting::FallbackRoutingKey => "--fallback-routing-key (or PAGERDUTY_FALLBACK_ROUTING_KEY)",
        Setting::PageAfterFailures => {
            "--page-after-failures (or PAGERDUTY_PAGE_AFTER_FAILURES, or page_after_failures in \
             the config file)"
        }
    }
}

/// A settings error in this command's terms: the setting as this command
/// spells it, then the component's words.
pub fn settings_problem(e: &SettingsError) -> String {
    format!("{}: {}; {}", spelling(e.setting), e.problem, e.fix)
}

fn marker_problem(e: &MarkerError) -> String {
    let argument = e
        .argument
        .as_ref()
        .map(|a| format!("{a}: "))
        .unwrap_or_default();
    format!("{argument}{}; {}", e.problem, e.fix)
}

/// Why a request could not be built, in this command's terms.
pub fn build_problem(e: &BuildError) -> String {
    match e {
        BuildError::Setting(e) => settings_problem(e),
        BuildError::Marker(e) => marker_problem(e),
    }
}

/// One paging route, checked.
pub struct Checked {
    pub marker: Marker,
    /// Whether the component only shows this route's requests, and why.
    pub dry_run: Option<DryRunReason>,
}

/// Every route checked (`None` for an ignore route) and the secrets they
/// carry, to keep out of every alert.
pub struct Routes {
    pub checked: Vec<Option<Checked>>,
    pub secrets: Vec<String>,
}

/// Each route's arguments, checked by the component as a marker is, and
/// each route's requests built once (`preflight`), so a missing credential
/// is found now rather than after other alerts went out.
pub fn check_routes(
    pager: &mut Pager,
    routes: &[Route],
    settings: &Settings,
    secret_arguments: &[String],
) -> Result<Routes, Usage> {
    let mut checked = Vec::new();
    let mut secrets = Vec::new();
    for (index, route) in routes.iter().enumerate() {
        let named = || format!("route {} ({})", index + 1, route.describe());
        if route.ignore {
            checked.push(None);
            continue;
        }
        let routing_key = match &route.routing_key_env {
            None => None,
            Some(name) => match env(name) {
                Some(key) => Some(key),
                None if settings.dry_run => Some(DRY_RUN_ROUTING_KEY.to_string()),
                None => {
                    return Err(Usage(format!(
                        "{} reads its routing key from {name}, which is not set",
                        named()
                    )))
                }
            },
        };
        let arguments = route.marker_arguments(routing_key.as_deref());
        let marker = match pager.check_marker(&arguments).map_err(trap)? {
            Ok(marker) => marker,
            Err(e) => return Err(Usage(format!("{}: {}", named(), marker_problem(&e)))),
        };
        // Whether its requests are only shown, as the component decides.
        let dry_run = pager
            .preflight(marker)
            .map_err(trap)?
            .map_err(|e| Usage(format!("{}: {}", named(), build_problem(&e))))?;
        // The arguments the component calls secret, and the key it accepted.
        for argument in &arguments {
            if let (true, MarkerValue::Text(value)) =
                (secret_arguments.contains(&argument.name), &argument.value)
            {
                secrets.push(value.clone());
            }
        }
        secrets.extend(pager.options(marker).map_err(trap)?.routing_key);
        checked.push(Some(Checked { marker, dry_run }));
    }
    Ok(Routes { checked, secrets })
}

/// Whether the whole run is only shown: when every route's requests are.
/// A route that could not send while others do is an error: its alerts
/// would be lost without a word.
pub fn run_dry_run(
    routes: &[Route],
    checked: &[Option<Checked>],
    opened: Option<DryRunReason>,
) -> Result<Option<DryRunReason>, Usage> {
    let paging: Vec<(usize, &Checked)> = (checked.iter().enumerate())
        .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
        .collect();
    if paging.is_empty() {
        return Ok(opened);
    }
    if paging.iter().all(|(_, c)| c.dry_run.is_some()) {
        return Ok(paging[0].1.dry_run);
    }
    for (index, c) in paging {
        if c.dry_run == Some(DryRunReason::NoCredentials) {
            return Err(Usage(format!(
                "route {} ({}): no credential can send its alerts while other routes' are sent; \
                 set {} (or {}) and {}, or give the route a routing_key_env",
                index + 1,
                routes[index].describe(),
                spelling(Setting::ApiKey),
                spelling(Setting::OauthToken),
                spelling(Setting::DefaultFrom),
            )));
        }
    }
    Ok(None)
}
