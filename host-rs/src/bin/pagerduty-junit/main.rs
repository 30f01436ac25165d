//! `pagerduty-junit`: pages PagerDuty for the failed cases of JUnit XML
//! reports from any test runner, through the sandboxed component.

mod args;
mod pager;
mod setup;
mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::Parser;
use pagerduty_host::junit::{self, Case, Outcome};
use pagerduty_host::routes::{self, Route};
use pagerduty_host::sandbox::PAGERDUTY_HOSTS;
use pagerduty_host::{
    cut_failure, AlertRequest, Allowlist, Held, Host, Marker, Pager, Phase, Planned, Repeat,
    RequestKind, SourceLocation, TestFailure, Variable,
};

use args::{Args, Resolve};
use pager::Delivery;
use setup::{env, trap, Checked, Usage};
use state::{OpenAlert, State};

/// What grouped alerts say the failures came from; part of their key.
const SUITE: &str = "the JUnit reports";
/// State ids of grouped alerts: this, then the alert's key.
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

/// When the report was written: its file's modification time, in
/// milliseconds since the Unix epoch (none where the platform cannot say).
fn modified_ms(path: &Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let since = modified.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

fn read_cases(reports: &[PathBuf]) -> Result<Vec<Case>, Usage> {
    let mut cases = Vec::new();
    for path in reports {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Usage(format!("reading {}: {e}", path.display())))?;
        let parsed = junit::parse(&text).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        let at = modified_ms(path);
        cases.extend(parsed.into_iter().map(|case| Case {
            reported_at_ms: at,
            ..case
        }));
    }
    Ok(cases)
}

fn host_name() -> String {
    env("HOSTNAME")
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Every secret this run knows: the component redacts the ones a request
/// uses, this keeps the other routes' keys out too. A case id goes through
/// it before the component sees it and before any line names it.
fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "[redacted]"))
}

struct Context<'a> {
    pager: Pager<'a>,
    state: State,
    secrets: Vec<String>,
    ci: Vec<Variable>,
    /// The component's `failure-text-limit`.
    text_limit: u32,
    host: String,
    /// Whether a fallback routing key is set.
    fallback: bool,
    tally: Tally,
}

#[derive(Default)]
struct Tally {
    paged: usize,
    /// Triggers and resolves only shown (dry-run requests).
    shown: usize,
    already_open: usize,
    resolved: usize,
    shown_resolves: usize,
    /// Notes added to open incidents for repeat failures.
    noted: usize,
    /// Failures not paged yet (`page_after_failures`).
    counting: usize,
    undelivered: Vec<String>,
    unrouted: usize,
    fallbacks: usize,
}

/// A trigger that reached PagerDuty: the alert to remember, and whether it
/// was open already (a repeat failure, to note).
struct Opened {
    alert: OpenAlert,
    already_open: bool,
}

/// How a resolve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    /// Resolved, or nothing was open: forget the alert.
    Closed,
    /// A dry run: shown only, remember the alert still.
    Shown,
    /// Not delivered: try again next run.
    Open,
}

impl Context<'_> {
    /// A case id (or ids) as output names it: redacted, as the component gets it.
    fn shown(&self, id: &str) -> String {
        redact(id, &self.secrets)
    }

    /// The component's `test-failure` for a failed case.
    fn failure(&self, case: &Case, unique_name: bool) -> TestFailure {
        let (problem, errored) = match &case.outcome {
            Outcome::Failed(p) => (p, false),
            Outcome::Errored(p) => (p, true),
            _ => unreachable!("only failed cases page"),
        };
        let message = problem.message.as_deref().unwrap_or("");
        // pytest reports a fixture's error as "failed on setup with ...".
        let phase = match (errored, message) {
            (true, m) if m.starts_with("failed on setup") => Phase::Setup,
            (true, m) if m.starts_with("failed on teardown") => Phase::Teardown,
            _ => Phase::Call,
        };
        let clean = |t: &str| redact(t, &self.secrets);
        let failure = TestFailure {
            nodeid: clean(&case.id()),
            short_name: unique_name.then(|| clean(&case.name)),
            docstring: None,
            message: problem.message.as_deref().map(clean),
            traceback: clean(&problem.text),
            phase,
            duration_seconds: case.seconds,
            ci: self.ci.clone(),
            host: self.host.clone(),
            // As the report names it: from the repository root; the line
            // 1-based (pytest's xunit1 writes it 0-based).
            source: case.file.as_deref().map(|path| SourceLocation {
                path: clean(path),
                line: case.source_line(),
            }),
            failed_at_ms: case.reported_at_ms,
        };
        cut_failure(failure, self.text_limit)
    }

    /// Sends (or shows) one trigger; returns the alert it opened. A page
    /// refused for good sends one alert to the fallback routing key, if set.
    fn page(&mut self, request: &AlertRequest, failure: &TestFailure) -> Option<Opened> {
        let delivery = pager::deliver(&mut self.pager, request);
        if let (Delivery::Refused { reason, fix, .. }, true) = (&delivery, self.fallback) {
            self.send_fallback(failure, reason, fix);
        }
        self.paged(request, delivery)
    }

    fn send_fallback(&mut self, failure: &TestFailure, reason: &str, fix: &str) {
        let request = match self.pager.fallback(failure, reason, fix) {
            Ok(Ok(request)) => request,
            Ok(Err(e)) => {
                let problem = setup::build_problem(&e);
                (self.tally.undelivered).push(format!("fallback alert: {problem}"));
                return;
            }
            Err(trap) => {
                let what = format!("fallback alert: the component failed: {trap:#}");
                self.tally.undelivered.push(what);
                return;
            }
        };
        match pager::deliver(&mut self.pager, &request) {
            Delivery::Delivered(_) | Delivery::AlreadyOpen => {
                println!("fallback alert sent: {} could not page", failure.nodeid);
                self.tally.fallbacks += 1;
            }
            Delivery::Shown => {
                println!("would send a fallback alert\n{}", pager::shown(&request));
            }
            Delivery::Failed(line) | Delivery::Refused { line, .. } => {
                (self.tally.undelivered).push(format!("fallback alert: {line}"));
            }
            Delivery::FollowUp(_) => {}
        }
    }

    fn paged(&mut self, request: &AlertRequest, delivery: Delivery) -> Option<Opened> {
        let title = &request.title;
        let opened = |incident_id, already_open| Opened {
            alert: OpenAlert {
                dedup_key: request.dedup_key.clone(),
                incident_id,
                cases: Vec::new(),
                notes: 0,
            },
            already_open,
        };
        match delivery {
            Delivery::Shown => {
                println!("would page: {title}\n{}", pager::shown(request));
                self.tally.shown += 1;
                None
            }
            Delivery::Delivered(delivered) => {
                let link = (delivered.html_url.as_deref())
                    .map(|u| format!(" {u}"))
                    .unwrap_or_default();
                println!("paged: {title}{link}");
                self.tally.paged += 1;
                Some(opened(delivered.id, false))
            }
            Delivery::AlreadyOpen => {
                println!("already open: {title}");
                self.tally.already_open += 1;
                Some(opened(None, true))
            }
            Delivery::Failed(reason) | Delivery::Refused { line: reason, .. } => {
                self.tally.undelivered.push(format!("{title}: {reason}"));
                None
            }
            Delivery::FollowUp(requests) => requests
                .into_iter()
                .fold(None, |last, (next, d)| self.paged(&next, d).or(last)),
        }
    }

    /// A repeat failure on an open incident: the note the component builds
    /// (to the incident the state remembers, else after a lookup by key),
    /// sent as it decides, or the reason it gives for none.
    fn repeat(&mut self, id: &str, failure: &TestFailure, marker: Marker, dedup_key: &str) {
        let known = self.state.open.get(id);
        let incident = known.and_then(|a| a.incident_id.clone());
        let key = known
            .map_or(dedup_key, |a| a.dedup_key.as_str())
            .to_string();
        let notes = known.map_or(0, |a| a.notes);
        let answer = self
            .pager
            .repeat(failure, marker, incident.as_deref(), Some(&key), notes);
        match answer {
            Ok(Ok(Repeat::Note(request))) => {
                let delivery = pager::deliver(&mut self.pager, &request);
                self.noted(id, &request, delivery);
            }
            Ok(Ok(Repeat::Skip(why))) => println!("{why}: {}", self.shown(id)),
            Ok(Err(e)) => {
                let problem = setup::build_problem(&e);
                let what = format!("note on {}: {problem}", self.shown(id));
                self.tally.undelivered.push(what);
            }
            Err(trap) => {
                let what = format!("note on {}: the component failed: {trap:#}", self.shown(id));
                self.tally.undelivered.push(what);
            }
        }
    }

    fn noted(&mut self, id: &str, request: &AlertRequest, delivery: Delivery) {
        let title = &request.title;
        match delivery {
            Delivery::Shown => {
                println!("would note: {title}\n{}", pager::shown(request));
            }
            Delivery::Delivered(delivered) => {
                let incident = delivered.id.as_deref().unwrap_or("?");
                println!("{title} (incident {incident})");
                self.tally.noted += 1;
                if let Some(alert) = self.state.open.get_mut(id) {
                    alert.notes = alert.notes.saturating_add(1);
                    if delivered.id.is_some() {
                        alert.incident_id = delivered.id;
                    }
                }
            }
            Delivery::AlreadyOpen => {}
            // The page went out; a note that did not is said, and is not a
            // delivery failure (the next failing run notes the incident).
            Delivery::Failed(reason) | Delivery::Refused { line: reason, .. } => {
                println!("not noted: {}: {reason}", self.shown(id));
            }
            Delivery::FollowUp(requests) => {
                for (next, d) in requests {
                    self.noted(id, &next, d);
                }
            }
        }
    }

    /// Resolves one alert: an Events resolve, a REST PUT, or a REST lookup
    /// by key and the PUTs the component asks for after it.
    fn resolve(
        &mut self,
        id: &str,
        marker: Marker,
        incident: Option<&str>,
        dedup_key: Option<&str>,
    ) -> Resolution {
        let request = match self.pager.resolve(id, marker, incident, dedup_key) {
            Ok(Ok(request)) => request,
            Ok(Err(e)) => {
                let problem = setup::build_problem(&e);
                let what = format!("{}: {problem}", self.shown(id));
                self.tally.undelivered.push(what);
                return Resolution::Open;
            }
            Err(trap) => {
                let what = format!("{}: the component failed: {trap:#}", self.shown(id));
                self.tally.undelivered.push(what);
                return Resolution::Open;
            }
        };
        let delivery = pager::deliver(&mut self.pager, &request);
        self.resolved(&request, delivery)
    }

    fn resolved(&mut self, request: &AlertRequest, delivery: Delivery) -> Resolution {
        let title = &request.title;
        match delivery {
            Delivery::Shown => {
                println!("would resolve: {title}\n{}", pager::shown(request));
                self.tally.shown_resolves += 1;
                Resolution::Shown
            }
            // A lookup that found nothing open: nothing to resolve.
            Delivery::Delivered(_) if request.kind == RequestKind::RestFind => Resolution::Closed,
            Delivery::Delivered(_) | Delivery::AlreadyOpen => {
                println!("resolved: {title}");
                self.tally.resolved += 1;
                Resolution::Closed
            }
            Delivery::Failed(reason) | Delivery::Refused { line: reason, .. } => {
                self.tally.undelivered.push(format!("{title}: {reason}"));
                Resolution::Open
            }
            Delivery::FollowUp(requests) => {
                let mut all = Resolution::Closed;
                for (next, d) in requests {
                    match self.resolved(&next, d) {
                        Resolution::Open => all = Resolution::Open,
                        Resolution::Shown if all == Resolution::Closed => all = Resolution::Shown,
                        _ => {}
                    }
                }
                all
            }
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, Usage> {
    let config = setup::load_config(args)?;
    let routes = setup::all_routes(args, &config)?;
    let settings = setup::settings(args, &config, &routes)?;
    // A case the reports name more than once is decided once.
    let cases = junit::per_case(read_cases(&args.reports)?);

    let host = Host::embedded().map_err(trap)?;
    // Only the command line widens the allow-list: a config file in a branch
    // must not be able to send the environment's credentials elsewhere.
    let allowed = PAGERDUTY_HOSTS.iter().copied();
    let allowlist = Allowlist::new(allowed.chain(args.allow_hosts.iter().map(String::as_str)));
    let cap = Duration::from_millis(settings.timeout_ms.into());
    let mut instance = host.instance(allowlist, cap).map_err(trap)?;
    let secret_arguments = instance.secret_arguments().map_err(trap)?;
    let text_limit = instance.failure_text_limit().map_err(trap)?;
    let ci: Vec<Variable> = (instance.ci_variables().map_err(trap)?)
        .into_iter()
        .filter_map(|name| env(&name).map(|value| Variable { name, value }))
        .collect();
    let mut pager = match instance.open(&settings).map_err(trap)? {
        Ok(pager) => pager,
        Err(e) => return Err(Usage(setup::settings_problem(&e))),
    };
    let checked = setup::check_routes(&mut pager, &routes, &settings, &secret_arguments)?;
    let opened = pager.dry_run().map_err(trap)?;
    let dry_run = setup::run_dry_run(&routes, &checked.checked, opened)?;
    let state = State::load(&args.state).map_err(Usage)?;
    if dry_run.is_none() {
        // Writable before anything is sent: what is opened must be remembered.
        state.save(&args.state).map_err(Usage)?;
    }
    let secrets: Vec<String> = [
        &settings.api_key,
        &settings.oauth_token,
        &settings.routing_key,
        &settings.fallback_routing_key,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .chain(checked.secrets)
    .collect();
    if dry_run.is_some() {
        let why = if args.dry_run {
            "--dry-run"
        } else {
            "no credentials set"
        };
        println!("pagerduty-junit: dry run ({why}): nothing is sent");
    }
    let mut context = Context {
        pager,
        state,
        secrets,
        ci,
        text_limit,
        host: host_name(),
        fallback: settings.fallback_routing_key.is_some(),
        tally: Tally::default(),
    };
    trigger(&mut context, &cases, &routes, &checked.checked);
    if args.resolve != Resolve::Never {
        resolve(&mut context, args, &cases, &routes, &checked.checked);
    }

    let mut tally = context.tally;
    if dry_run.is_none() {
        if let Err(problem) = context.state.save(&args.state) {
            tally.undelivered.push(problem);
        }
    }
    let count = |done: usize, verb: &str, shown: usize, would: &str| match (dry_run, shown) {
        (Some(_), _) => format!("{shown} {would}"),
        (None, 0) => format!("{done} {verb}"),
        (None, _) => format!("{done} {verb} ({shown} {would})"),
    };
    println!(
        "pagerduty-junit: {} cases, {} failed; {}, {} already open, {}, {} noted, {} counting, {} not routed, {} not delivered",
        cases.len(),
        cases.iter().filter(|c| c.failed()).count(),
        count(tally.paged, "paged", tally.shown, "would page"),
        tally.already_open,
        count(tally.resolved, "resolved", tally.shown_resolves, "would resolve"),
        tally.noted,
        tally.counting,
        tally.unrouted,
        tally.undelivered.len(),
    );
    if tally.fallbacks > 0 {
        println!(
            "pagerduty-junit: {} fallback alert(s) sent",
            tally.fallbacks
        );
    }
    for reason in &tally.undelivered {
        eprintln!("pagerduty-junit: not delivered: {reason}");
    }
    Ok(if tally.undelivered.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Each failure as the component plans it: paged one by one up to the run's
/// cap, past it held, then grouped by the component into one alert per
/// destination. `cases` has one case per id (`junit::per_case`).
fn trigger(context: &mut Context, cases: &[Case], routes: &[Route], checked: &[Option<Checked>]) {
    let mut name_counts: HashMap<&str, usize> = HashMap::new();
    for case in cases {
        *name_counts.entry(&case.name).or_default() += 1;
    }
    let mut held: Vec<Held> = Vec::new();
    let mut held_ids: Vec<String> = Vec::new();
    // Each routed failure counts one more run in a row; a pass starts its
    // case over; a case skipped or absent keeps its count.
    let mut paging: Vec<(&Case, Marker)> = Vec::new();
    for case in cases.iter().filter(|c| c.failed()) {
        let Some(route) = routes::route_for(routes, case) else {
            context.tally.unrouted += 1;
            continue;
        };
        if let Some(Checked { marker, .. }) = checked[route] {
            paging.push((case, marker));
        } // else an ignore route
    }
    let failed: BTreeSet<String> = paging.iter().map(|(case, _)| case.id()).collect();
    let passed: BTreeSet<String> = (cases.iter())
        .filter(|c| matches!(c.outcome, Outcome::Passed { .. }))
        .map(Case::id)
        .collect();
    context.state.count_run(&failed, &passed);
    for (case, marker) in paging {
        let failure = context.failure(case, name_counts[case.name.as_str()] == 1);
        let id = case.id();
        let failed_runs = context.state.failed_runs(&id);
        match context.pager.trigger(&failure, marker, None, failed_runs) {
            Ok(Ok(Planned::Page(request))) => {
                if let Some(opened) = context.page(&request, &failure) {
                    let already_open = opened.already_open;
                    context
                        .state
                        .opened(id.clone(), opened.alert, !already_open);
                    if already_open {
                        context.repeat(&id, &failure, marker, &request.dedup_key);
                    }
                }
            }
            Ok(Ok(Planned::PastCap)) => {
                held.push(Held { failure, marker });
                held_ids.push(id);
            }
            Ok(Ok(Planned::Counting(counting))) => {
                let (failed, needed) = (counting.failed, counting.needed);
                let shown = context.shown(&id);
                println!("failing {failed} of {needed} before paging: {shown}");
                context.tally.counting += 1;
            }
            // The routes' preflight passed, so this is not expected.
            Ok(Err(e)) => {
                let problem = setup::build_problem(&e);
                let what = format!("{}: {problem}", context.shown(&id));
                context.tally.undelivered.push(what);
            }
            Err(trap) => {
                let what = format!("{}: the component failed: {trap:#}", context.shown(&id));
                context.tally.undelivered.push(what);
            }
        }
    }
    if held.is_empty() {
        return;
    }
    let aggregates = match context.pager.aggregate(&held, SUITE) {
        Ok(aggregates) => aggregates,
        Err(trap) => {
            let what = context.shown(&held_ids.join(", "));
            (context.tally.undelivered).push(format!("{what}: the component failed: {trap:#}"));
            return;
        }
    };
    for aggregate in aggregates {
        let ids: Vec<String> = (aggregate.members.iter())
            .filter_map(|&i| held_ids.get(i as usize).cloned())
            .collect();
        match aggregate.request {
            Ok(request) => {
                let first = &held[aggregate.members[0] as usize].failure;
                if let Some(opened) = context.page(&request, first) {
                    let Opened {
                        mut alert,
                        already_open,
                    } = opened;
                    alert.cases = ids;
                    let id = format!("{AGGREGATE}{}", request.dedup_key);
                    context.state.opened(id, alert, !already_open);
                }
            }
            Err(e) => {
                let problem = setup::build_problem(&e);
                let what = format!("{}: {problem}", context.shown(&ids.join(", ")));
                context.tally.undelivered.push(what);
            }
        }
    }
}

/// Resolves the alerts of cases that pass (never of one that also failed in
/// this run, as in another matrix leg: `cases` has one case per id, a
/// failure winning), and grouped alerts none of whose cases failed once one
/// of them passes.
fn resolve(
    context: &mut Context,
    args: &Args,
    cases: &[Case],
    routes: &[Route],
    checked: &[Option<Checked>],
) {
    let failed: HashSet<String> = cases.iter().filter(|c| c.failed()).map(Case::id).collect();
    let mut passed: BTreeMap<String, Marker> = BTreeMap::new(); // id -> route's marker
    for case in cases {
        if !matches!(case.outcome, Outcome::Passed { .. }) {
            continue;
        }
        if let Some(Some(c)) = routes::route_for(routes, case).map(|r| &checked[r]) {
            passed.insert(case.id(), c.marker);
        }
    }
    for (id, marker) in &passed {
        let open = context.state.open.get(id).cloned();
        if open.is_none() && args.resolve == Resolve::Opened {
            continue;
        }
        let key = open.as_ref().map(|o| o.dedup_key.as_str());
        let incident = open.as_ref().and_then(|o| o.incident_id.as_deref());
        if context.resolve(id, *marker, incident, key) == Resolution::Closed {
            context.state.open.remove(id);
        }
    }
    let groups: Vec<(String, OpenAlert)> = (context.state.open.iter())
        .filter(|(id, _)| id.starts_with(AGGREGATE))
        .map(|(id, alert)| (id.clone(), alert.clone()))
        .collect();
    for (id, alert) in groups {
        let none_failed = !alert.cases.iter().any(|c| failed.contains(c));
        let Some(marker) = alert.cases.iter().find_map(|c| passed.get(c)) else {
            continue;
        };
        if none_failed
            && context.resolve(
                &id,
                *marker,
                alert.incident_id.as_deref(),
                Some(&alert.dedup_key),
            ) == Resolution::Closed
        {
            context.state.open.remove(&id);
        }
    }
}
