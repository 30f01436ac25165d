//! `pagerduty-junit`: pages PagerDuty for the failed cases of JUnit XML
//! reports from any test runner, through the sandboxed component.

mod args;
mod pager;
mod setup;
mod state;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use pagerduty_host::junit::{self, Case, Outcome};
use pagerduty_host::routes::{self, Route};
use pagerduty_host::sandbox::PAGERDUTY_HOSTS;
use pagerduty_host::{Allowlist, Host};
use serde_json::{json, Value};

use args::{Args, Resolve};
use pager::{Pager, Sent};
use setup::{env, trap, Checked, Usage};
use state::{OpenAlert, State};

/// What grouped alerts say the failures came from; part of their key.
const SUITE: &str = "the JUnit reports";
const AGGREGATE: &str = "aggregate:";

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(code) => code,
        Err(Usage(message)) => {
            eprintln!("pagerduty-junit: {message}");
            ExitCode::from(2)
        }
    }
}

fn read_cases(reports: &[PathBuf]) -> Result<Vec<Case>, Usage> {
    let mut cases = Vec::new();
    for path in reports {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Usage(format!("reading {}: {e}", path.display())))?;
        let parsed = junit::parse(&text).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        cases.extend(parsed);
    }
    Ok(cases)
}

fn host_name() -> String {
    env("HOSTNAME")
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn is_failed(case: &Case) -> bool {
    matches!(case.outcome, Outcome::Failed(_) | Outcome::Errored(_))
}

/// Every secret this run knows: the component redacts the ones a request
/// uses, this keeps the other routes' keys out too.
fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "[redacted]"))
}

/// The options with the key an alert was opened with, for its resolve.
fn with_key(options: &str, dedup_key: Option<&str>) -> String {
    let mut value: Value = serde_json::from_str(options).expect("options are JSON");
    if let Some(key) = dedup_key {
        value["dedup_key"] = Value::from(key);
    }
    value.to_string()
}

struct Context<'a> {
    pager: Pager<'a>,
    state: State,
    settings: String,
    secrets: Vec<String>,
    ci: Value,
    host: String,
    dry_run: bool,
    tally: Tally,
}

#[derive(Default)]
struct Tally {
    paged: usize,
    already_open: usize,
    resolved: usize,
    undelivered: Vec<String>,
    unrouted: usize,
}

impl Context<'_> {
    /// The component's `test-failure` for a failed case, as JSON.
    fn failure_json(&self, case: &Case, unique_name: bool) -> String {
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
        let clean = |t: &str| redact(t, &self.secrets);
        json!({
            "nodeid": clean(&case.id()),
            "short_name": unique_name.then(|| clean(&case.name)),
            "docstring": null,
            "message": problem.message.as_deref().map(clean),
            "traceback": clean(&problem.text),
            "phase": phase,
            "duration_seconds": case.seconds,
            "ci": self.ci,
            "host": self.host,
        })
        .to_string()
    }

    /// Shows or sends one trigger; returns the alert it opened.
    fn page(&mut self, request: &str) -> Option<OpenAlert> {
        let (title, dedup_key) = pager::describe(request);
        if self.dry_run {
            println!("would page: {title}\n  {}", pager::redacted(request));
            self.tally.paged += 1;
            return None;
        }
        let opened = |incident_id| OpenAlert {
            dedup_key: dedup_key.clone(),
            incident_id,
            cases: Vec::new(),
        };
        match self.pager.send(request) {
            Sent::Delivered(delivered) => {
                let link = (delivered.html_url.as_deref())
                    .map(|u| format!(" {u}"))
                    .unwrap_or_default();
                println!("paged: {title}{link}");
                self.tally.paged += 1;
                Some(opened(delivered.id))
            }
            Sent::AlreadyOpen => {
                println!("already open: {title}");
                self.tally.already_open += 1;
                Some(opened(None))
            }
            Sent::Failed(reason) => {
                self.tally.undelivered.push(format!("{title}: {reason}"));
                None
            }
        }
    }

    /// A build's request, or its error counted as undelivered (the routes'
    /// builds were all tried before sending, so this is not expected).
    fn built(
        &mut self,
        what: &str,
        answer: wasmtime::Result<Result<String, pagerduty_host::SettingsError>>,
    ) -> Option<String> {
        match answer {
            Ok(Ok(request)) => Some(request),
            Ok(Err(e)) => {
                let Usage(problem) = setup::settings_problem(&e);
                self.tally.undelivered.push(format!("{what}: {problem}"));
                None
            }
            Err(trap) => {
                (self.tally.undelivered).push(format!("{what}: the component failed: {trap:#}"));
                None
            }
        }
    }

    /// Resolves one alert: an Events resolve, a REST PUT, or a REST lookup
    /// by key and a PUT for each open incident. True when nothing is left open.
    fn resolve(&mut self, id: &str, options: &str, incident: Option<String>) -> bool {
        let built =
            self.pager
                .instance
                .build_resolve(id, options, &self.settings, incident.as_deref());
        let Some(request) = self.built(id, built) else {
            return false;
        };
        let (title, _) = pager::describe(&request);
        if self.dry_run {
            println!("would resolve: {title}\n  {}", pager::redacted(&request));
            self.tally.resolved += 1;
            return true;
        }
        let finding = pager::kind(&request) == "rest-find";
        let found = match self.pager.send(&request) {
            Sent::Delivered(delivered) if finding => delivered.found,
            Sent::Delivered(_) | Sent::AlreadyOpen => {
                println!("resolved: {title}");
                self.tally.resolved += 1;
                return true;
            }
            Sent::Failed(reason) => {
                self.tally.undelivered.push(format!("{title}: {reason}"));
                return false;
            }
        };
        let mut done = true;
        for incident in found {
            done &= self.resolve(id, options, Some(incident));
        }
        done
    }
}

fn run(args: &Args) -> Result<ExitCode, Usage> {
    let config = setup::load_config(args)?;
    let routes = setup::all_routes(args, &config)?;
    let settings = setup::settings(args, &config, &routes)?;
    let cases = read_cases(&args.reports)?;

    let host = Host::embedded().map_err(trap)?;
    // Only the command line widens the allow-list: a config file in a branch
    // must not be able to send the environment's credentials elsewhere.
    let allowed = PAGERDUTY_HOSTS.iter().copied();
    let allowlist = Allowlist::new(allowed.chain(args.allow_hosts.iter().map(String::as_str)));
    let cap = Duration::from_millis(settings.timeout_ms.into());
    let mut instance = host.instance(allowlist, cap).map_err(trap)?;
    if let Err(e) = instance.check_settings(&settings).map_err(trap)? {
        return Err(setup::settings_problem(&e));
    }
    let checked = setup::check_routes(&mut instance, &routes, &settings)?;
    let state = State::load(&args.state).map_err(Usage)?;
    if !settings.dry_run {
        // Writable before anything is sent: what is opened must be remembered.
        state.save(&args.state).map_err(Usage)?;
    }
    let secrets: Vec<String> = [
        &settings.api_key,
        &settings.oauth_token,
        &settings.routing_key,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .chain(
        checked
            .iter()
            .flatten()
            .filter_map(|c| c.routing_key.clone()),
    )
    .collect();
    let ci: Vec<Value> = (instance.ci_variables().map_err(trap)?)
        .into_iter()
        .filter_map(|name| env(&name).map(|value| json!({"name": name, "value": value})))
        .collect();
    if settings.dry_run {
        println!("pagerduty-junit: dry run (no credentials set, or --dry-run): nothing is sent");
    }
    let mut context = Context {
        pager: Pager::new(&mut instance, args.max_attempts),
        state,
        settings: setup::settings_json(&settings),
        secrets,
        ci: Value::Array(ci),
        host: host_name(),
        dry_run: settings.dry_run,
        tally: Tally::default(),
    };
    trigger(&mut context, args, &cases, &routes, &checked);
    if args.resolve != Resolve::Never {
        resolve(&mut context, args, &cases, &routes, &checked);
    }

    let mut tally = context.tally;
    if !settings.dry_run {
        if let Err(problem) = context.state.save(&args.state) {
            tally.undelivered.push(problem);
        }
    }
    let (page_verb, resolve_verb) = if settings.dry_run {
        ("would page", "would resolve")
    } else {
        ("paged", "resolved")
    };
    println!(
        "pagerduty-junit: {} cases, {} failed; {} {page_verb}, {} already open, {} {resolve_verb}, {} not routed, {} not delivered",
        cases.len(),
        cases.iter().filter(|c| is_failed(c)).count(),
        tally.paged,
        tally.already_open,
        tally.resolved,
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

/// The first `--max-incidents` failures one by one, the rest grouped by
/// the component's aggregate key (one alert per destination).
fn trigger(
    context: &mut Context,
    args: &Args,
    cases: &[Case],
    routes: &[Route],
    checked: &[Option<Checked>],
) {
    let mut name_counts: HashMap<&str, usize> = HashMap::new();
    for case in cases {
        *name_counts.entry(&case.name).or_default() += 1;
    }
    // aggregate key -> (options, failures, case ids)
    let mut groups: BTreeMap<String, (String, Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut individual = 0;
    for case in cases.iter().filter(|c| is_failed(c)) {
        let Some(route) = routes::route_for(routes, case) else {
            context.tally.unrouted += 1;
            continue;
        };
        let Some(Checked { options, .. }) = &checked[route] else {
            continue; // an ignore route
        };
        let failure = context.failure_json(case, name_counts[case.name.as_str()] == 1);
        let id = case.id();
        if individual < args.max_incidents {
            individual += 1;
            let built =
                (context.pager.instance).build_trigger(&failure, options, &context.settings);
            let Some(request) = context.built(&id, built) else {
                continue;
            };
            if let Some(alert) = context.page(&request) {
                context.state.opened(id, alert);
            }
        } else {
            let key = (context.pager.instance).aggregate_key(options, &context.settings, SUITE);
            let Some(key) = context.built(&id, key) else {
                continue;
            };
            let group =
                (groups.entry(key)).or_insert_with(|| (options.clone(), Vec::new(), Vec::new()));
            group.1.push(failure);
            group.2.push(id);
        }
    }
    for (key, (options, failures, ids)) in groups {
        let failures = format!("[{}]", failures.join(","));
        let built =
            (context.pager.instance).build_aggregate(&failures, SUITE, &options, &context.settings);
        let Some(request) = context.built(&key, built) else {
            continue;
        };
        if let Some(mut alert) = context.page(&request) {
            alert.cases = ids;
            context.state.opened(format!("{AGGREGATE}{key}"), alert);
        }
    }
}

/// Resolves the alerts of cases that pass (never of one that also failed in
/// this run, as in another matrix leg), and grouped alerts none of whose
/// cases failed once one of them passes.
fn resolve(
    context: &mut Context,
    args: &Args,
    cases: &[Case],
    routes: &[Route],
    checked: &[Option<Checked>],
) {
    let failed: HashSet<String> = cases
        .iter()
        .filter(|c| is_failed(c))
        .map(Case::id)
        .collect();
    let mut passed: BTreeMap<String, String> = BTreeMap::new(); // id -> route options
    for case in cases {
        if !matches!(case.outcome, Outcome::Passed { .. }) || failed.contains(&case.id()) {
            continue;
        }
        if let Some(Some(c)) = routes::route_for(routes, case).map(|r| &checked[r]) {
            passed.insert(case.id(), c.options.clone());
        }
    }
    for (id, options) in &passed {
        let open = context.state.open.get(id).cloned();
        if open.is_none() && args.resolve == Resolve::Opened {
            continue;
        }
        let key = open.as_ref().map(|o| o.dedup_key.as_str());
        let incident = open.as_ref().and_then(|o| o.incident_id.clone());
        if context.resolve(id, &with_key(options, key), incident) && !context.dry_run {
            context.state.open.remove(id);
        }
    }
    let groups: Vec<(String, OpenAlert)> = (context.state.open.iter())
        .filter(|(id, _)| id.starts_with(AGGREGATE))
        .map(|(id, alert)| (id.clone(), alert.clone()))
        .collect();
    for (id, alert) in groups {
        let none_failed = !alert.cases.iter().any(|c| failed.contains(c));
        let Some(options) = alert.cases.iter().find_map(|c| passed.get(c)) else {
            continue;
        };
        if none_failed
            && context.resolve(
                &id,
                &with_key(options, Some(&alert.dedup_key)),
                alert.incident_id,
            )
            && !context.dry_run
        {
            context.state.open.remove(&id);
        }
    }
}
