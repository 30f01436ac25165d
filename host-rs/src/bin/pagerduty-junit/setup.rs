//! Everything that can be wrong is found here, before anything is sent:
//! the config, the routes, the settings and credentials, each route's options
//! as the component checks them, and a build of each route's requests.

use std::path::{Path, PathBuf};

use pagerduty_host::routes::{Config, Route};
use pagerduty_host::{Instance, Settings, SettingsError};
use serde_json::json;

use crate::args::Args;

pub const DEFAULT_CONFIG: &str = "pagerduty-junit.toml";
const DEFAULT_TIMEOUT_MS: u32 = 10_000;
/// Stands in for a route's routing key in a dry run without one.
const DRY_RUN_ROUTING_KEY: &str = "DRYRUNROUTINGKEY0000000000000000";

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
    let flags = Route {
        service_id: args.service_id.clone(),
        routing_key_env: args.routing_key_env.clone(),
        urgency: args.urgency.clone(),
        severity: args.severity.clone(),
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
    let file = &config.settings;
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
        dry_run: args.dry_run || !credentials,
    })
}

pub fn settings_json(s: &Settings) -> String {
    json!({
        "api_url": s.api_url, "api_key": s.api_key, "oauth_token": s.oauth_token,
        "default_from": s.default_from, "routing_key": s.routing_key, "events_url": s.events_url,
        "timeout_ms": s.timeout_ms, "dry_run": s.dry_run,
    })
    .to_string()
}

/// Where this command takes each setting the component may name.
fn source(setting: &str) -> Option<&'static str> {
    Some(match setting {
        "pagerduty_api_key" => "PAGERDUTY_API_KEY",
        "pagerduty_oauth_token" => "PAGERDUTY_OAUTH_TOKEN",
        "pagerduty_default_from" => "PAGERDUTY_DEFAULT_FROM (or default_from in the config file)",
        "pagerduty_routing_key" => "PAGERDUTY_ROUTING_KEY (or the route's routing_key_env)",
        "pagerduty_api_url" => "--api-url (or PAGERDUTY_API_URL, or api_url in the config file)",
        "pagerduty_events_url" => {
            "--events-url (or PAGERDUTY_EVENTS_URL, or events_url in the config file)"
        }
        "pagerduty_timeout" => "--timeout-ms (or timeout_ms in the config file)",
        _ => return None,
    })
}

/// A settings error in this command's terms: the component's fixes name the
/// plugin's options, which mean nothing here.
pub fn settings_problem(e: &SettingsError) -> Usage {
    let plugin_terms = e.fix.contains("--pagerduty_") || e.fix.contains("ini ");
    match source(&e.setting) {
        Some(source) if plugin_terms => Usage(format!("{}; set {source}", e.problem)),
        Some(source) => Usage(format!("{} ({source}); {}", e.problem, e.fix)),
        None => Usage(format!("{}: {}; {}", e.setting, e.problem, e.fix)),
    }
}

/// One paging route, checked.
pub struct Checked {
    /// The options as the builds take them.
    pub options: String,
    /// Its routing key, to keep out of other routes' alerts.
    pub routing_key: Option<String>,
}

/// Each route's options (`None` for an ignore route), checked by the
/// component as a marker is, and each route's requests built once, so a
/// missing credential is found now rather than after other alerts went out.
pub fn check_routes(
    instance: &mut Instance,
    routes: &[Route],
    settings: &Settings,
) -> Result<Vec<Option<Checked>>, Usage> {
    let settings_text = settings_json(settings);
    let mut checked = Vec::new();
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
        let options = match instance.check_marker(&arguments, settings).map_err(trap)? {
            Ok(options) => options,
            Err(e) => {
                let argument = e.argument.map(|a| format!(" {a}:")).unwrap_or_default();
                return Err(Usage(format!(
                    "{}:{argument} {}; {}",
                    named(),
                    e.problem,
                    e.fix.replace("to the marker", "to the route")
                )));
            }
        };
        let probe = json!({
            "nodeid": "probe", "short_name": null, "docstring": null, "message": null,
            "traceback": "", "phase": "call",
        })
        .to_string();
        for built in [
            instance.build_trigger(&probe, &options, &settings_text),
            instance.build_resolve("probe", &options, &settings_text, None),
        ] {
            if let Err(e) = built.map_err(trap)? {
                let Usage(problem) = settings_problem(&e);
                return Err(Usage(format!("{}: {problem}", named())));
            }
        }
        checked.push(Some(Checked {
            options,
            routing_key,
        }));
    }
    Ok(checked)
}
