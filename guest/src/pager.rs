//! One run's engine (`pager`): the checked settings, how many alerts it has
//! paged, which APIs a refusal stopped; and the markers it accepted. Every
//! decision a host would otherwise make is made here.

use std::cell::{Cell, RefCell};

use crate::alerts;
use crate::delivery;
use crate::exports::pytest_pagerduty::alerts::incidents::{
    GuestMarker, GuestPager, Held, Marker as MarkerHandle, MarkerBorrow, Pager as PagerHandle,
    Planned,
};
use crate::http;
use crate::incident;
use crate::marker as marker_rules;
use crate::marker::PAGE_AFTER_DEFAULT;
use crate::pytest_pagerduty::alerts::types::{
    Aggregate, AlertRequest, Api, BuildError, Counting, Delivered, DeliveryFailure, DryRunReason,
    IncidentOptions, MarkerArgument, MarkerError, PagerState, PagerdutyError, Phase, Progress,
    Rejection, RejectionKind, Repeat, ReplyHeader, RequestKind, Setting, Settings, SettingsError,
    Severity, Step, StopScope, StoppedApi, TestFailure,
};
use crate::reply;
use crate::settings;

impl From<SettingsError> for BuildError {
    fn from(error: SettingsError) -> Self {
        BuildError::Setting(error)
    }
}

pub struct Marker {
    options: IncidentOptions,
}

impl GuestMarker for Marker {
    fn options(&self) -> IncidentOptions {
        self.options.clone()
    }
}

pub struct Pager {
    /// As the host gave them: `dry_run` is the user's request.
    settings: Settings,
    /// Alerts paged so far (flaky `info` alerts do not count).
    paged: Cell<u32>,
    /// The refusal that stopped each API, once one did.
    stopped: RefCell<Vec<StoppedApi>>,
    /// The incidents noted in this run (`noted_key`): one note each.
    noted: RefCell<Vec<String>>,
}

fn present(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.trim().is_empty())
}

impl Pager {
    fn has_credentials(&self) -> bool {
        let s = &self.settings;
        present(&s.api_key) || present(&s.oauth_token) || present(&s.routing_key)
    }

    /// Why this marker's requests are only shown: asked for, or nothing could
    /// send them (a marker's own routing key can, without any setting).
    fn dry_run_for(&self, options: &IncidentOptions) -> Option<DryRunReason> {
        if self.settings.dry_run {
            Some(DryRunReason::Requested)
        } else if !self.has_credentials() && !present(&options.routing_key) {
            Some(DryRunReason::NoCredentials)
        } else {
            None
        }
    }

    /// The settings the builds see: a dry run needs no credentials.
    fn settings_for(&self, reason: Option<DryRunReason>) -> Settings {
        Settings {
            dry_run: reason.is_some(),
            ..self.settings.clone()
        }
    }

    fn finish(
        &self,
        mut request: AlertRequest,
        subject: &str,
        reason: Option<DryRunReason>,
    ) -> AlertRequest {
        request.subject = subject.to_string();
        request.dry_run = reason;
        request
    }

    fn max_attempts(&self) -> u32 {
        self.settings
            .max_attempts
            .unwrap_or(delivery::DEFAULT_MAX_ATTEMPTS)
    }

    fn max_incidents(&self) -> u32 {
        self.settings
            .max_incidents
            .unwrap_or(delivery::DEFAULT_MAX_INCIDENTS)
    }

    /// Not sent at all: a dry-run request, or an API a refusal stopped.
    fn unsendable(&self, request: &AlertRequest) -> Option<Step> {
        if let Some(reason) = request.dry_run {
            return Some(Step::NotSent(reason));
        }
        let stopped = self.stopped.borrow();
        let stop = stopped.iter().find(|s| s.api == request.api)?;
        Some(Step::HeldBack(stop.rejection.clone()))
    }

    /// What a classified answer means for this request.
    fn step(
        &self,
        request: &AlertRequest,
        progress: Option<Progress>,
        answer: Result<Delivered, DeliveryFailure>,
    ) -> Step {
        match answer {
            Ok(delivered)
                if request.kind == RequestKind::RestFind && !delivered.found.is_empty() =>
            {
                match &request.then_note {
                    Some(note) => self.note_to(request, note, &delivered.found[0]),
                    None => self.resolves(request, &delivered.found),
                }
            }
            Ok(delivered) => Step::Delivered(delivered),
            Err(DeliveryFailure::AlreadyOpen(error)) => Step::AlreadyOpen(error),
            Err(DeliveryFailure::RetryLater(retry)) => {
                delivery::after_transient(retry, progress, self.max_attempts(), &request.dedup_key)
            }
            Err(DeliveryFailure::Rejected(mut rejection)) => {
                // Name the REST credential these settings use.
                if request.api == Api::Rest
                    && rejection.setting == Some(Setting::ApiKey)
                    && !present(&self.settings.api_key)
                {
                    rejection.setting = Some(Setting::OauthToken);
                }
                if rejection.stops == StopScope::ThisApi {
                    let mut stopped = self.stopped.borrow_mut();
                    if !stopped.iter().any(|s| s.api == request.api) {
                        stopped.push(StoppedApi {
                            api: request.api,
                            rejection: rejection.clone(),
                        });
                    }
                }
                Step::Rejected(rejection)
            }
        }
    }

    /// Runs in a row this marker's test must fail in to page.
    fn page_after(&self, options: &IncidentOptions) -> u32 {
        options
            .page_after_failures
            .or(self.settings.page_after_failures)
            .unwrap_or(PAGE_AFTER_DEFAULT)
    }

    /// A lookup made to note found the incident (a key is open on one
    /// incident per service at most): the note to it.
    fn note_to(&self, lookup: &AlertRequest, note: &str, id: &str) -> Step {
        let settings = self.settings_for(None);
        let built = settings::check(&settings).and_then(|checked| {
            incident::note(
                &checked,
                &settings,
                &lookup.subject,
                id,
                note,
                lookup.dedup_key.clone(),
            )
        });
        match built {
            Ok(request) => Step::FollowUp(vec![self.finish(request, &lookup.subject, None)]),
            Err(error) => unbuildable(error),
        }
    }

    /// A lookup found open incidents with the key: resolve each.
    fn resolves(&self, lookup: &AlertRequest, ids: &[String]) -> Step {
        let settings = self.settings_for(None);
        let built: Result<Vec<AlertRequest>, SettingsError> =
            settings::check(&settings).and_then(|checked| {
                ids.iter()
                    .map(|id| {
                        incident::resolve(
                            &checked,
                            &settings,
                            &lookup.subject,
                            id,
                            lookup.dedup_key.clone(),
                        )
                        .map(|r| self.finish(r, &lookup.subject, None))
                    })
                    .collect()
            });
        match built {
            Ok(requests) => Step::FollowUp(requests),
            Err(error) => unbuildable(error),
        }
    }
}

/// A follow-up the settings cannot build: refused, this request only.
fn unbuildable(error: SettingsError) -> Step {
    Step::Rejected(Rejection {
        kind: RejectionKind::Other,
        error: PagerdutyError {
            status: 0,
            code: None,
            message: error.problem,
            errors: Vec::new(),
        },
        stops: StopScope::ThisRequest,
        fix: error.fix,
        setting: Some(error.setting),
    })
}

/// Which incident a note is for, to note it once per run: the service (an
/// incident key is unique per service only) and the key.
fn noted_key(options: &IncidentOptions, request: &AlertRequest) -> String {
    format!(
        "{}/{}",
        options.service_id.as_deref().unwrap_or_default(),
        request.dedup_key
    )
}

/// A failure that stands in for every test when checking a marker's needs.
fn probe() -> TestFailure {
    TestFailure {
        nodeid: "preflight".into(),
        short_name: None,
        docstring: None,
        message: None,
        traceback: String::new(),
        phase: Phase::Call,
        duration_seconds: 0.0,
        ci: Vec::new(),
        host: String::new(),
        source: None,
        failed_at_ms: None,
    }
}

impl GuestPager for Pager {
    fn open(settings: Settings, state: Option<PagerState>) -> Result<PagerHandle, SettingsError> {
        settings::check(&settings)?;
        let state = state.unwrap_or(PagerState {
            paged: 0,
            stopped: Vec::new(),
            noted: Vec::new(),
        });
        Ok(PagerHandle::new(Pager {
            settings,
            paged: Cell::new(state.paged),
            stopped: RefCell::new(state.stopped),
            noted: RefCell::new(state.noted),
        }))
    }

    fn state(&self) -> PagerState {
        PagerState {
            paged: self.paged.get(),
            stopped: self.stopped.borrow().clone(),
            noted: self.noted.borrow().clone(),
        }
    }

    fn dry_run(&self) -> Option<DryRunReason> {
        if self.settings.dry_run {
            Some(DryRunReason::Requested)
        } else if !self.has_credentials() {
            Some(DryRunReason::NoCredentials)
        } else {
            None
        }
    }

    fn check_marker(&self, arguments: Vec<MarkerArgument>) -> Result<MarkerHandle, MarkerError> {
        let options = marker_rules::check(&arguments, &self.settings)?;
        Ok(MarkerHandle::new(Marker { options }))
    }

    fn preflight(&self, marker: MarkerBorrow<'_>) -> Result<Option<DryRunReason>, BuildError> {
        let options = &marker.get::<Marker>().options;
        let reason = self.dry_run_for(options);
        let settings = self.settings_for(reason);
        alerts::trigger(&probe(), options, &settings, None)?;
        alerts::resolve("preflight", options, &settings, None)?;
        Ok(reason)
    }

    fn trigger(
        &self,
        failure: TestFailure,
        marker: MarkerBorrow<'_>,
        severity: Option<Severity>,
        failed_runs: u32,
    ) -> Result<Planned, BuildError> {
        // A flaky test's info alert pages no one: it never counts, nor waits.
        let counts = severity != Some(Severity::Info);
        let options = &marker.get::<Marker>().options;
        let needed = self.page_after(options);
        let failed = failed_runs.max(1);
        if counts && failed < needed {
            return Ok(Planned::Counting(Counting { failed, needed }));
        }
        if counts && self.paged.get() >= self.max_incidents() {
            return Ok(Planned::PastCap);
        }
        let reason = self.dry_run_for(options);
        let built = alerts::trigger(&failure, options, &self.settings_for(reason), severity)?;
        if counts {
            self.paged.set(self.paged.get() + 1);
        }
        Ok(Planned::Page(self.finish(built, &failure.nodeid, reason)))
    }

    fn repeat(
        &self,
        failure: TestFailure,
        marker: MarkerBorrow<'_>,
        incident_id: Option<String>,
        dedup_key: Option<String>,
        notes: u32,
    ) -> Result<Repeat, BuildError> {
        let mut options = marker.get::<Marker>().options.clone();
        if dedup_key.is_some() {
            options.dedup_key = dedup_key;
        }
        let reason = self.dry_run_for(&options);
        let settings = self.settings_for(reason);
        let built = alerts::repeat(&failure, &options, &settings, incident_id.as_deref(), notes)?;
        let request = match built {
            Ok(request) => request,
            Err(why) => return Ok(Repeat::Skip(why)),
        };
        let key = noted_key(&options, &request);
        let mut noted = self.noted.borrow_mut();
        if noted.contains(&key) {
            return Ok(Repeat::Skip(
                "not noted: the incident has a note from this run already".to_string(),
            ));
        }
        noted.push(key);
        Ok(Repeat::Note(self.finish(request, &failure.nodeid, reason)))
    }

    fn resolve(
        &self,
        nodeid: String,
        marker: MarkerBorrow<'_>,
        incident_id: Option<String>,
        dedup_key: Option<String>,
    ) -> Result<AlertRequest, BuildError> {
        let mut options = marker.get::<Marker>().options.clone();
        // The key the alert was opened with reaches it even if the marker's
        // destination or key changed since.
        if dedup_key.is_some() {
            options.dedup_key = dedup_key;
        }
        let reason = self.dry_run_for(&options);
        let settings = self.settings_for(reason);
        let built = alerts::resolve(&nodeid, &options, &settings, incident_id.as_deref())?;
        Ok(self.finish(built, &nodeid, reason))
    }

    fn aggregate(&self, held: Vec<Held<'_>>, suite: String) -> Vec<Aggregate> {
        // Groups in the order their first failure came, one per destination.
        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        let mut out = Vec::new();
        for (index, item) in held.iter().enumerate() {
            let options = &item.marker.get::<Marker>().options;
            let settings = self.settings_for(self.dry_run_for(options));
            match alerts::aggregate_key(options, &settings, &suite) {
                Ok(key) => match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, members)) => members.push(index as u32),
                    None => groups.push((key, vec![index as u32])),
                },
                Err(error) => out.push(Aggregate {
                    members: vec![index as u32],
                    request: Err(error),
                }),
            }
        }
        for (_, members) in groups {
            let first = &held[members[0] as usize];
            let options = &first.marker.get::<Marker>().options;
            let reason = self.dry_run_for(options);
            let failures: Vec<TestFailure> = members
                .iter()
                .map(|&i| held[i as usize].failure.clone())
                .collect();
            let request = alerts::aggregate(&failures, &suite, options, &self.settings_for(reason))
                .map(|r| self.finish(r, &suite, reason));
            out.push(Aggregate { members, request });
        }
        out
    }

    fn fallback(
        &self,
        failure: TestFailure,
        reason: String,
        fix: String,
    ) -> Result<AlertRequest, BuildError> {
        // Its own key sends it; only a dry run the user asked for holds it.
        let dry_run = self.settings.dry_run.then_some(DryRunReason::Requested);
        let built = alerts::fallback(&failure, &reason, &fix, &self.settings_for(dry_run))?;
        Ok(self.finish(built, &failure.nodeid, dry_run))
    }

    fn send(&self, request: AlertRequest, progress: Option<Progress>) -> Step {
        if let Some(step) = self.unsendable(&request) {
            return step;
        }
        let answer = match http::send(&request) {
            Ok(reply) => reply::classify_for(&request, reply.status, &reply.headers, &reply.body),
            Err(error) => Err(reply::transport_failure(&error, request.api)),
        };
        self.step(&request, progress, answer)
    }

    fn deny(&self, request: AlertRequest, reason: String) -> Step {
        if let Some(step) = self.unsendable(&request) {
            return step;
        }
        let answer = Err(reply::denied(request.api, reason));
        self.step(&request, None, answer)
    }

    fn decide(
        &self,
        request: AlertRequest,
        progress: Option<Progress>,
        status: u16,
        headers: Vec<ReplyHeader>,
        body: String,
    ) -> Step {
        if let Some(step) = self.unsendable(&request) {
            return step;
        }
        let headers: Vec<(String, String)> =
            headers.into_iter().map(|h| (h.name, h.value)).collect();
        let answer = reply::classify_for(&request, status, &headers, body.as_bytes());
        self.step(&request, progress, answer)
    }
}
