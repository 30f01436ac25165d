//! `pagerduty-junit`: pages PagerDuty for the failed cases of JUnit XML
//! reports from any test runner, through the sandboxed component.

mod args;
mod pager;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use pagerduty_host::junit::{self, Case, Outcome};
use pagerduty_host::routes::{self, Config, Route};
use pagerduty_host::{Allowlist, Host, Instance, Settings};
use serde_json::json;

use args::{Args, Resolve};
use pager::{Pager, Sent};
use state::{OpenAlert, State};

const DEFAULT_CONFIG: &str = "pagerduty-junit.toml";
const DEFAULT_TIMEOUT_MS: u32 = 10_000;
/// Stands in for a route's routing key in a dry run without one.
const DRY_RUN_ROUTING_KEY: &str = "DRYRUNROUTINGKEY0000000000000000";

/// Bad usage, config, credentials or report: exit 2, nothing sent.
struct Usage(String);

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(code) => code,
        Err(Usage(message)) => {
            eprintln!("pagerduty-junit: {message}");
            ExitCode::from(2)
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn load_config(args: &Args) -> Result<Config, Usage> {
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
fn all_routes(args: &Args, config: &Config) -> Vec<Route> {
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
    routes
}

fn settings(args: &Args, config: &Config, routes: &[Route]) -> Result<Settings, Usage> {
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
    Ok(Settings {
        api_url: args
            .api_url
            .clone()
            .or_else(|| env("PAGERDUTY_API_URL"))
            .or(config.settings.api_url.clone()),
        api_key,
        oauth_token,
        default_from: env("PAGERDUTY_DEFAULT_FROM").or(config.settings.default_from.clone()),
        routing_key,
        events_url: args
            .events_url
            .clone()
            .or_else(|| env("PAGERDUTY_EVENTS_URL"))
            .or(config.settings.events_url.clone()),
        timeout_ms: args
            .timeout_ms
            .or(config.settings.timeout_ms)
            .unwrap_or(DEFAULT_TIMEOUT_MS),
        dry_run: args.dry_run || !credentials,
    })
}

fn settings_json(s: &Settings) -> String {
    json!({
        "api_url": s.api_url, "api_key": s.api_key, "oauth_token": s.oauth_token,
        "default_from": s.default_from, "routing_key": s.routing_key, "events_url": s.events_url,
        "timeout_ms": s.timeout_ms, "dry_run": s.dry_run,
    })
    .to_string()
}

/// Each paging route's options, checked by the component as a marker is.
fn route_options(
    instance: &mut Instance,
    routes: &[Route],
    settings: &Settings,
) -> Result<Vec<Option<String>>, Usage> {
    let mut options = Vec::new();
    for (index, route) in routes.iter().enumerate() {
        if route.ignore {
            options.push(None);
            continue;
        }
        let routing_key = match &route.routing_key_env {
            None => None,
            Some(name) => match env(name) {
                Some(key) => Some(key),
                None if settings.dry_run => Some(DRY_RUN_ROUTING_KEY.to_string()),
                None => {
                    return Err(Usage(format!(
                        "route {} ({}) reads its routing key from {name}, which is not set",
                        index + 1,
                        route.describe()
                    )))
                }
            },
        };
        let arguments = route.marker_arguments(routing_key.as_deref());
        match instance.check_marker(&arguments, settings).map_err(trap)? {
            Ok(checked) => options.push(Some(checked)),
            Err(e) => {
                let argument = e.argument.map(|a| format!(" {a}:")).unwrap_or_default();
                return Err(Usage(format!(
                    "route {} ({}):{argument} {}; {}",
                    index + 1,
                    route.describe(),
                    e.problem,
                    e.fix
                )));
            }
        }
    }
    Ok(options)
}

fn trap(error: wasmtime::Error) -> Usage {
    Usage(format!("the component failed: {error:#}"))
}

fn read_cases(reports: &[PathBuf]) -> Result<Vec<Case>, Usage> {
    let mut cases = Vec::new();
    for path in reports {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Usage(format!("reading {}: {e}", path.display())))?;
        cases.extend(junit::parse(&text).map_err(|e| Usage(format!("{}: {e}", path.display())))?);
    }
    Ok(cases)
}

fn host_name() -> String {
    env("HOSTNAME")
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The component's `test-failure` for a failed case, as JSON.
fn failure_json(case: &Case, unique_name: bool, ci: &serde_json::Value, host: &str) -> String {
    let (problem, errored) = match &case.outcome {
        Outcome::Failed(p) => (p, false),
        Outcome::Errored(p) => (p, true),
        _ => unreachable!("only failed cases page"),
    };
    let message = problem.message.as_deref().unwrap_or("");
    // pytest reports a fixture's error as "failed on setup with ...".
    let phase = match (errored, message) {
        (true, m) if m.starts_with("failed on setup") => "setup",
        (true, m) if m.starts_with("failed on teardown") => "teardown",
        _ => "call",
    };
    json!({
        "nodeid": case.id(),
        "short_name": unique_name.then_some(&case.name),
        "docstring": null,
        "message": problem.message,
        "traceback": problem.text,
        "phase": phase,
        "duration_seconds": case.seconds,
        "ci": ci,
        "host": host,
    })
    .to_string()
}

#[derive(Default)]
struct Tally {
    paged: usize,
    already_open: usize,
    resolved: usize,
    undelivered: Vec<String>,
    unrouted: usize,
}

fn run(args: &Args) -> Result<ExitCode, Usage> {
    let config = load_config(args)?;
    let routes = all_routes(args, &config);
    if routes.is_empty() {
        return Err(Usage(format!(
            "nothing says where to page: give --service-id or --routing-key-env, set \
             PAGERDUTY_ROUTING_KEY, or write routes in {DEFAULT_CONFIG} (--config)"
        )));
    }
    let settings = settings(args, &config, &routes)?;
    let cases = read_cases(&args.reports)?;

    let host = Host::embedded().map_err(trap)?;
    let allowed = config.settings.allow_hosts.iter().chain(&args.allow_hosts);
    let allowlist = Allowlist::new(
        pagerduty_host::sandbox::PAGERDUTY_HOSTS
            .iter()
            .copied()
            .chain(allowed.map(String::as_str)),
    );
    let cap = Duration::from_millis(settings.timeout_ms.into());
    let mut instance = host.instance(allowlist, cap).map_err(trap)?;
    if let Err(e) = instance.check_settings(&settings).map_err(trap)? {
        return Err(Usage(format!("{}: {}; {}", e.setting, e.problem, e.fix)));
    }
    let options = route_options(&mut instance, &routes, &settings)?;
    let settings_text = settings_json(&settings);

    let ci: Vec<_> = instance
        .ci_variables()
        .map_err(trap)?
        .into_iter()
        .filter_map(|name| env(&name).map(|value| json!({"name": name, "value": value})))
        .collect();
    let ci = serde_json::Value::Array(ci);
    let host_name = host_name();
    let mut name_counts: HashMap<&str, usize> = HashMap::new();
    for case in &cases {
        *name_counts.entry(&case.name).or_default() += 1;
    }

    let mut tally = Tally::default();
    // A dry run reads the state (to show what it would resolve) but never writes it.
    let mut state = State::load(&args.state).map_err(Usage)?;
    if settings.dry_run {
        println!("pagerduty-junit: dry run (no credentials set, or --dry-run): nothing is sent");
    }
    let mut pager = Pager {
        instance: &mut instance,
        dry_run: settings.dry_run,
        max_attempts: args.max_attempts.max(1),
        stopped: None,
    };

    // Triggers: the first --max-incidents one by one, the rest grouped.
    let mut aggregates: BTreeMap<String, (String, Vec<String>, Vec<String>)> = BTreeMap::new();
    let suite = report_names(&args.reports);
    let mut individual = 0;
    for case in &cases {
        if !matches!(case.outcome, Outcome::Failed(_) | Outcome::Errored(_)) {
            continue;
        }
        let Some(route_options) = routes::route_for(&routes, case).map(|i| &options[i]) else {
            tally.unrouted += 1;
            continue;
        };
        let Some(options_text) = route_options else {
            continue; // an ignore route
        };
        let failure = failure_json(case, name_counts[case.name.as_str()] == 1, &ci, &host_name);
        if individual < args.max_incidents {
            individual += 1;
            let request = build(pager.instance.build_trigger(
                &failure,
                options_text,
                &settings_text,
            ))?;
            page(&mut pager, &request, Some(case), &mut state, &mut tally);
        } else {
            let key = build(
                pager
                    .instance
                    .aggregate_key(options_text, &settings_text, &suite),
            )?;
            let group = aggregates
                .entry(key)
                .or_insert_with(|| (options_text.clone(), Vec::new(), Vec::new()));
            group.1.push(failure);
            group.2.push(case.id());
        }
    }
    for (options_text, failures, _ids) in aggregates.values() {
        let failures = format!("[{}]", failures.join(","));
        let request = build(pager.instance.build_aggregate(
            &failures,
            &suite,
            options_text,
            &settings_text,
        ))?;
        page(&mut pager, &request, None, &mut state, &mut tally);
    }

    // Resolves: passing cases whose alert this command opened (or every one).
    if args.resolve != Resolve::Never {
        for case in &cases {
            if !matches!(case.outcome, Outcome::Passed { .. }) {
                continue;
            }
            let Some(Some(options_text)) = routes::route_for(&routes, case).map(|i| &options[i])
            else {
                continue;
            };
            let id = case.id();
            let open = state.open.get(&id).cloned();
            if open.is_none() && args.resolve == Resolve::Opened {
                continue;
            }
            let incident = open.as_ref().and_then(|o| o.incident_id.clone());
            if resolve(
                &mut pager,
                &id,
                options_text,
                &settings_text,
                incident,
                &mut tally,
            )? {
                state.open.remove(&id);
            }
        }
    }

    if !settings.dry_run {
        state.save(&args.state).map_err(Usage)?;
    }
    println!(
        "pagerduty-junit: {} cases, {} failed; {} {}, {} already open, {} {}, {} not routed, {} not delivered",
        cases.len(),
        cases.iter().filter(|c| matches!(c.outcome, Outcome::Failed(_) | Outcome::Errored(_))).count(),
        tally.paged,
        if settings.dry_run { "would page" } else { "paged" },
        tally.already_open,
        tally.resolved,
        if settings.dry_run { "would resolve" } else { "resolved" },
        tally.unrouted,
        tally.undelivered.len(),
    );
    for reason in &tally.undelivered {
        eprintln!("pagerduty-junit: not delivered: {reason}");
    }
    Ok(if tally.undelivered.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// "pytest.xml, nextest.xml": what an aggregate says the failures came from.
fn report_names(reports: &[PathBuf]) -> String {
    let names: Vec<String> = reports
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or(p.as_os_str())
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.join(", ")
}

/// A build's request, or the settings error as a usage error.
fn build(
    answer: wasmtime::Result<Result<String, pagerduty_host::SettingsError>>,
) -> Result<String, Usage> {
    match answer.map_err(trap)? {
        Ok(request) => Ok(request),
        Err(e) => Err(Usage(format!("{}: {}; {}", e.setting, e.problem, e.fix))),
    }
}

/// Shows or sends one trigger, and remembers what it opened.
fn page(
    pager: &mut Pager,
    request: &str,
    case: Option<&Case>,
    state: &mut State,
    tally: &mut Tally,
) {
    let (title, dedup_key) = pager::describe(request);
    if pager.dry_run {
        println!("would page: {title}\n  {}", pager::redacted(request));
        tally.paged += 1;
        return;
    }
    let remember = |state: &mut State, incident_id: Option<String>| {
        if let Some(case) = case {
            let key = dedup_key.clone();
            state.open.insert(
                case.id(),
                OpenAlert {
                    dedup_key: key,
                    incident_id,
                },
            );
        }
    };
    match pager.send(request) {
        Sent::Delivered(delivered) => {
            let link = delivered
                .html_url
                .clone()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            println!("paged: {title}{link}");
            remember(state, delivered.id);
            tally.paged += 1;
        }
        Sent::AlreadyOpen => {
            println!("already open: {title}");
            remember(state, None);
            tally.already_open += 1;
        }
        Sent::Failed(reason) => tally.undelivered.push(format!("{title}: {reason}")),
    }
}

/// Resolves one case's alert: an Events resolve, a REST PUT, or a REST
/// lookup by key and a PUT for each open incident. True when done.
fn resolve(
    pager: &mut Pager,
    id: &str,
    options: &str,
    settings: &str,
    incident: Option<String>,
    tally: &mut Tally,
) -> Result<bool, Usage> {
    let request = build(
        pager
            .instance
            .build_resolve(id, options, settings, incident.as_deref()),
    )?;
    let (title, _) = pager::describe(request.as_str());
    if pager.dry_run {
        println!("would resolve: {title}\n  {}", pager::redacted(&request));
        tally.resolved += 1;
        return Ok(true);
    }
    let kind = serde_json::from_str::<serde_json::Value>(&request).expect("JSON")["kind"].clone();
    let found = match pager.send(&request) {
        Sent::Delivered(delivered) if kind == "rest-find" => delivered.found,
        Sent::Delivered(_) | Sent::AlreadyOpen => {
            println!("resolved: {title}");
            tally.resolved += 1;
            return Ok(true);
        }
        Sent::Failed(reason) => {
            tally.undelivered.push(format!("{title}: {reason}"));
            return Ok(false);
        }
    };
    let mut done = true;
    for incident in found {
        done &= resolve(pager, id, options, settings, Some(incident), tally)?;
    }
    Ok(done)
}
