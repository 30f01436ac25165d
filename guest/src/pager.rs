//! One run's engine (`pager`): the checked settings, how many alerts it has
//! paged, which APIs a refusal stopped; and the markers it accepted. Every
//! decision a host would otherwise make is made here.

use std::cell::{Cell, RefCell};

use crate::alerts;
use crate::compose;
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
            Ok(delivered) if request.kind == RequestKind::RestFind => {
                match (&request.then_note, delivered.found.first()) {
                    (Some(note), Some(id)) => self.note_to(request, note, id),
                    (Some(_), None) => nothing_to_note(),
                    (None, Some(_)) => self.resolves(request, &delivered.found),
                    // Nothing open to resolve: done.
                    (None, None) => Step::Delivered(delivered),
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

    /// `trigger` for a marker's options: counting, past the cap, or a page.
    fn plan(
        &self,
        failure: &TestFailure,
        options: &IncidentOptions,
        severity: Option<Severity>,
        failed_runs: u32,
    ) -> Result<Planned, BuildError> {
        // A flaky test's info alert pages no one: it never counts, nor waits.
        let counts = severity != Some(Severity::Info);
        let needed = self.page_after(options);
        // 0: a replay, kept to be delivered: never counted again.
        if counts && failed_runs != 0 && failed_runs < needed {
            return Ok(Planned::Counting(Counting {
                failed: failed_runs,
                needed,
            }));
        }
        if counts && self.paged.get() >= self.max_incidents() {
            return Ok(Planned::PastCap);
        }
        let reason = self.dry_run_for(options);
        let built = alerts::trigger(failure, options, &self.settings_for(reason), severity)?;
        if counts {
            self.paged.set(self.paged.get() + 1);
        }
        Ok(Planned::Page(self.finish(built, &failure.nodeid, reason)))
    }

    /// `repeat` for a marker's options: a note, or why there is none.
    fn repeat_for(
        &self,
        failure: &TestFailure,
        options: IncidentOptions,
        incident_id: Option<String>,
        dedup_key: Option<String>,
        notes: u32,
    ) -> Result<Repeat, BuildError> {
        let reason = self.dry_run_for(&options);
        let settings = self.settings_for(reason);
        let remembered = (incident_id.as_deref(), dedup_key.as_deref(), notes);
        let built = alerts::repeat(failure, &options, &settings, remembered)?;
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

    /// A lookup made to note found the incident (a key is open on one
    /// incident per service at most): the note to it.
    fn note_to(&self, lookup: &AlertRequest, note: &str, id: &str) -> Step {
        let settings = self.settings_for(None);
        // Its title names the test as every title does: without a secret.
        let nodeid = crate::text::redact(&lookup.subject, &compose::secrets(&settings, &None));
        let built = settings::check(&settings).and_then(|checked| {
            incident::note(
                &checked,
                &settings,
                &nodeid,
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

/// A lookup made to note found no open incident with the key (resolved or
/// merged since it answered "already open"): this note only is refused.
fn nothing_to_note() -> Step {
    Step::Rejected(Rejection {
        kind: RejectionKind::NotFound,
        error: PagerdutyError {
            status: 0,
            code: None,
            message: "not noted: PagerDuty lists no open incident with the key".to_string(),
            errors: Vec::new(),
        },
        stops: StopScope::ThisRequest,
        fix: "none needed: the incident was resolved or merged meanwhile; the next failure opens a new one".to_string(),
        setting: None,
    })
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
        let options = &marker.get::<Marker>().options;
        self.plan(&failure, options, severity, failed_runs)
    }

    fn repeat(
        &self,
        failure: TestFailure,
        marker: MarkerBorrow<'_>,
        incident_id: Option<String>,
        dedup_key: Option<String>,
        notes: u32,
    ) -> Result<Repeat, BuildError> {
        let options = marker.get::<Marker>().options.clone();
        self.repeat_for(&failure, options, incident_id, dedup_key, notes)
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
            let failures: Vec<&TestFailure> =
                members.iter().map(|&i| &held[i as usize].failure).collect();
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
            Err(error) => Err(reply::transport_failure(&error, &request)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup;
    use crate::destination::Destination;
    use crate::fixtures::{headers, settings};
    use crate::pytest_pagerduty::alerts::types::Variable;
    use serde_json::{json, Value};

    const NODEID: &str = "tests/test_checkout.py::test_refund_is_issued";
    const INCIDENT: &str = "Q2ZP5BXHT06KHM";

    /// A pager as `open` makes it, without the resource handle a native
    /// build cannot make.
    fn pager(settings: Settings) -> Pager {
        settings::check(&settings).expect("valid settings");
        Pager {
            settings,
            paged: Cell::new(0),
            stopped: RefCell::new(Vec::new()),
            noted: RefCell::new(Vec::new()),
        }
    }

    fn options() -> IncidentOptions {
        IncidentOptions {
            service_id: Some("PWIXJZS".into()),
            ..crate::fixtures::no_options()
        }
    }

    fn with_page_after(n: u32) -> IncidentOptions {
        IncidentOptions {
            page_after_failures: Some(n),
            ..options()
        }
    }

    fn gitlab() -> Vec<Variable> {
        [
            ("GITLAB_CI", "true"),
            ("CI_JOB_URL", "https://gitlab.com/acme/shop/-/jobs/77"),
            ("CI_COMMIT_SHA", "4f2a9c1d"),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_JOB_NAME", "test"),
            ("CI_NODE_INDEX", "2"),
            ("CI_NODE_TOTAL", "4"),
        ]
        .iter()
        .map(|(name, value)| Variable {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect()
    }

    fn failure() -> TestFailure {
        TestFailure {
            nodeid: NODEID.into(),
            short_name: Some("test_refund_is_issued".into()),
            docstring: Some("Refunds reach the card within a minute.".into()),
            message: Some("AssertionError: assert 502 == 201".into()),
            traceback: "    def test_refund_is_issued():\n>       assert response.status_code == 201\nE       assert 502 == 201\n\ntests/test_checkout.py:41: AssertionError\n".into(),
            phase: Phase::Call,
            duration_seconds: 1.25,
            ci: gitlab(),
            host: "ci-runner-7".into(),
            source: None,
            failed_at_ms: Some(1_795_948_812_999),
        }
    }

    fn key() -> String {
        dedup::for_test(
            &Destination::Rest {
                service_id: "PWIXJZS",
            },
            NODEID,
        )
    }

    /// What was planned, in a word and its numbers.
    fn plan(
        pager: &Pager,
        options: &IncidentOptions,
        severity: Option<Severity>,
        runs: u32,
    ) -> String {
        match pager.plan(&failure(), options, severity, runs) {
            Ok(Planned::Counting(c)) => format!("counting {} of {}", c.failed, c.needed),
            Ok(Planned::PastCap) => "past-cap".to_string(),
            Ok(Planned::Page(request)) => {
                assert_eq!(request.kind, RequestKind::RestCreate);
                "page".to_string()
            }
            Err(error) => panic!("{error:?}"),
        }
    }

    #[test]
    fn a_failure_counts_until_it_has_failed_in_as_many_runs_in_a_row_as_the_marker_asks() {
        let p = pager(settings());
        let three = with_page_after(3);
        assert_eq!(plan(&p, &three, None, 1), "counting 1 of 3");
        assert_eq!(plan(&p, &three, None, 2), "counting 2 of 3");
        assert_eq!(plan(&p, &three, None, 3), "page");
        assert_eq!(plan(&p, &three, None, 4), "page");
        // 0: a replay of an alert an earlier run kept to deliver: it pages.
        assert_eq!(plan(&p, &three, None, 0), "page");
        assert_eq!(p.paged.get(), 3);
    }

    #[test]
    fn without_a_marker_argument_or_a_setting_the_first_failure_pages() {
        let p = pager(settings());
        assert_eq!(plan(&p, &options(), None, 1), "page");
        assert_eq!(plan(&p, &options(), None, 0), "page");
    }

    #[test]
    fn the_setting_is_the_default_and_the_marker_overrides_it_either_way() {
        let mut s = settings();
        s.page_after_failures = Some(2);
        let p = pager(s);
        assert_eq!(plan(&p, &options(), None, 1), "counting 1 of 2");
        assert_eq!(plan(&p, &options(), None, 2), "page");
        assert_eq!(plan(&p, &with_page_after(1), None, 1), "page");
        assert_eq!(plan(&p, &with_page_after(4), None, 2), "counting 2 of 4");
        assert_eq!(plan(&p, &with_page_after(4), None, 4), "page");
    }

    #[test]
    fn an_info_alert_neither_waits_for_page_after_failures_nor_counts_to_the_cap() {
        let mut s = settings();
        s.page_after_failures = Some(3);
        s.max_incidents = Some(1);
        let p = pager(s);
        assert_eq!(plan(&p, &options(), Some(Severity::Info), 1), "page");
        assert_eq!(p.paged.get(), 0);
        assert_eq!(plan(&p, &options(), None, 3), "page");
        assert_eq!(p.paged.get(), 1);
        assert_eq!(plan(&p, &options(), None, 3), "past-cap");
        assert_eq!(plan(&p, &options(), Some(Severity::Info), 1), "page");
        // Another severity waits and counts like any failure.
        assert_eq!(
            plan(&p, &options(), Some(Severity::Warning), 1),
            "counting 1 of 3"
        );
    }

    #[test]
    fn counting_comes_before_the_cap_and_a_counting_failure_does_not_use_it_up() {
        let mut s = settings();
        s.max_incidents = Some(1);
        let p = pager(s);
        let two = with_page_after(2);
        for _ in 0..5 {
            assert_eq!(plan(&p, &two, None, 1), "counting 1 of 2");
        }
        assert_eq!(p.paged.get(), 0);
        assert_eq!(plan(&p, &two, None, 2), "page");
        assert_eq!(p.paged.get(), 1);
        // Past the cap, a failure that would not page yet is still counting.
        assert_eq!(plan(&p, &two, None, 1), "counting 1 of 2");
        assert_eq!(plan(&p, &two, None, 2), "past-cap");
        assert_eq!(p.paged.get(), 1);
    }

    fn note(repeat: Result<Repeat, BuildError>) -> AlertRequest {
        match repeat {
            Ok(Repeat::Note(request)) => request,
            other => panic!("not a note: {other:?}"),
        }
    }

    fn skip(repeat: Result<Repeat, BuildError>) -> String {
        match repeat {
            Ok(Repeat::Skip(why)) => why,
            other => panic!("not skipped: {other:?}"),
        }
    }

    const CONTENT: &str = "Failed again at 2026-11-29T10:40:12Z: Test failed: test_refund_is_issued: AssertionError: assert 502 == 201\n\n    def test_refund_is_issued():\n>       assert response.status_code == 201\nE       assert 502 == 201\n\ntests/test_checkout.py:41: AssertionError\n\nCI: GitLab CI https://gitlab.com/acme/shop/-/jobs/77 (job test, shard 2 of 4, branch main, commit 4f2a9c1d)";

    #[test]
    fn a_repeat_with_the_incident_id_is_the_exact_note_request() {
        let p = pager(settings());
        let request = note(p.repeat_for(&failure(), options(), Some(INCIDENT.into()), None, 3));
        assert_eq!(request.kind, RequestKind::RestNote);
        assert_eq!(request.api, Api::Rest);
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.url,
            "http://127.0.0.1:9999/incidents/Q2ZP5BXHT06KHM/notes"
        );
        assert_eq!(request.authority, "127.0.0.1:9999");
        assert_eq!(
            headers(&request),
            [
                ("Accept", "application/vnd.pagerduty+json;version=2", false),
                ("Content-Type", "application/json", false),
                ("Authorization", "Token token=secretkey123", true),
                ("From", "oncall@example.com", false),
            ]
        );
        let body: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(body, json!({"note": {"content": CONTENT}}));
        assert_eq!(request.display_body, request.body);
        assert_eq!(request.title, format!("Noted: {NODEID} failed again"));
        assert_eq!(request.subject, NODEID);
        assert_eq!(request.dedup_key, key());
        assert_eq!(request.then_note, None);
        assert_eq!(request.dry_run, None);
    }

    fn lookup_reply(service: &str, key: &str) -> String {
        json!({"incidents": [{"id": INCIDENT, "incident_key": key, "status": "triggered",
            "service": {"id": service, "type": "service_reference"}}],
            "limit": 25, "offset": 0, "more": false})
        .to_string()
    }

    #[test]
    fn a_repeat_without_the_id_looks_the_incident_up_and_its_reply_becomes_the_note() {
        let p = pager(settings());
        let lookup = note(p.repeat_for(&failure(), options(), None, None, 0));
        assert_eq!(lookup.kind, RequestKind::RestFind);
        assert_eq!(lookup.method, "GET");
        assert_eq!(
            lookup.url,
            format!("http://127.0.0.1:9999/incidents?incident_key={}&service_ids%5B%5D=PWIXJZS&statuses%5B%5D=triggered&statuses%5B%5D=acknowledged&date_range=all", key())
        );
        assert_eq!(lookup.body, "");
        assert_eq!(lookup.then_note.as_deref(), Some(CONTENT));
        assert_eq!(
            lookup.title,
            format!("Find the incident of {NODEID} to note")
        );
        assert_eq!(lookup.subject, NODEID);

        let step = p.decide(
            lookup.clone(),
            None,
            200,
            Vec::new(),
            lookup_reply("PWIXJZS", &key()),
        );
        let follow = match step {
            Step::FollowUp(requests) => requests,
            other => panic!("{other:?}"),
        };
        assert_eq!(follow.len(), 1);
        let noted = &follow[0];
        assert_eq!(noted.kind, RequestKind::RestNote);
        assert_eq!(
            (noted.method.as_str(), noted.url.as_str()),
            (
                "POST",
                "http://127.0.0.1:9999/incidents/Q2ZP5BXHT06KHM/notes"
            )
        );
        let body: Value = serde_json::from_str(&noted.body).unwrap();
        assert_eq!(body, json!({"note": {"content": CONTENT}}));
        assert!(headers(noted).contains(&("From", "oncall@example.com", false)));
        assert_eq!(noted.subject, NODEID);
        assert_eq!(noted.then_note, None);

        let reply =
            r#"{"note":{"id":"PWL7QXS","content":"x","created_at":"2026-11-29T10:40:13Z"}}"#;
        match p.decide(noted.clone(), None, 201, Vec::new(), reply.into()) {
            Step::Delivered(d) => assert_eq!(d.id.as_deref(), Some(INCIDENT)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lookup_that_finds_no_open_incident_of_its_service_notes_nothing() {
        let p = pager(settings());
        let lookup = note(p.repeat_for(&failure(), options(), None, None, 0));
        let none = r#"{"incidents":[],"limit":25,"offset":0,"more":false}"#;
        for body in [
            none.to_string(),
            lookup_reply("POTHER1", &key()),
            lookup_reply("PWIXJZS", "another-key"),
        ] {
            // The component says so: a host need not tell an empty lookup apart.
            match p.decide(lookup.clone(), None, 200, Vec::new(), body) {
                Step::Rejected(r) => {
                    assert_eq!(r.kind, RejectionKind::NotFound);
                    assert_eq!(r.stops, StopScope::ThisRequest);
                    assert!(r.error.message.starts_with("not noted: "));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_events_alert_is_not_noted_its_retrigger_is_in_the_alerts_log() {
        let mut s = settings();
        s.routing_key = Some("R0UTINGKEY0123456789abcdefghijkl".into());
        let p = pager(s);
        let why = skip(p.repeat_for(&failure(), options(), Some(INCIDENT.into()), None, 0));
        assert_eq!(
            why,
            "not noted: Events API v2 adds the new trigger, with its failure, to the alert's log"
        );
        // A marker's own routing key too.
        let p = pager(settings());
        let marker_key = IncidentOptions {
            routing_key: Some("MARKERKEY42abcdefghijklmnopqrstu".into()),
            ..options()
        };
        assert!(skip(p.repeat_for(&failure(), marker_key, None, None, 0)).contains("Events API v2"));
        assert!(p.noted.borrow().is_empty());
    }

    #[test]
    fn at_this_tools_share_of_notes_none_is_added_and_the_last_one_says_so() {
        let p = pager(settings());
        let limit = "not noted: the incident already has the 1000 notes pytest-pagerduty adds at most (PagerDuty allows 2000); the check is still failing";
        for notes in [1000, 1001, 1999, 2000, u32::MAX] {
            assert_eq!(
                skip(p.repeat_for(&failure(), options(), Some(INCIDENT.into()), None, notes)),
                limit
            );
        }
        assert!(
            p.noted.borrow().is_empty(),
            "a skipped note uses up nothing"
        );
        let last = note(p.repeat_for(&failure(), options(), Some(INCIDENT.into()), None, 999));
        let body: Value = serde_json::from_str(&last.body).unwrap();
        assert_eq!(
            body["note"]["content"],
            format!("{CONTENT}\n\nThis is the last note pytest-pagerduty adds to this incident (1000 of PagerDuty's 2000); later failures are not noted.")
        );
        let p = pager(settings());
        let before = note(p.repeat_for(&failure(), options(), Some(INCIDENT.into()), None, 998));
        let body: Value = serde_json::from_str(&before.body).unwrap();
        assert_eq!(body["note"]["content"], CONTENT);
    }

    #[test]
    fn what_the_host_remembers_of_another_key_is_not_this_incidents() {
        let p = pager(settings());
        // Remembered under a key the marker no longer pages with: its id and
        // its count of notes belong to another incident.
        let moved = note(p.repeat_for(
            &failure(),
            options(),
            Some(INCIDENT.into()),
            Some("an-old-key".into()),
            999,
        ));
        assert_eq!(moved.kind, RequestKind::RestFind);
        assert_eq!(moved.dedup_key, key());
        assert!(!moved.then_note.unwrap().contains("last note"));
        // Remembered under this key: used as it is.
        let p = pager(settings());
        let same = note(p.repeat_for(
            &failure(),
            options(),
            Some(INCIDENT.into()),
            Some(key()),
            999,
        ));
        assert_eq!(same.kind, RequestKind::RestNote);
        assert!(same.url.ends_with(&format!("/incidents/{INCIDENT}/notes")));
        assert!(same.body.contains("last note"));
    }

    #[test]
    fn an_incident_is_noted_once_per_run_however_it_is_reached() {
        let p = pager(settings());
        note(p.repeat_for(&failure(), options(), Some(INCIDENT.into()), None, 0));
        let again = "not noted: the incident has a note from this run already";
        assert_eq!(
            skip(p.repeat_for(&failure(), options(), Some(INCIDENT.into()), None, 1)),
            again
        );
        // By lookup, or the key the host remembers (the same one).
        assert_eq!(
            skip(p.repeat_for(&failure(), options(), None, None, 1)),
            again
        );
        assert_eq!(
            skip(p.repeat_for(&failure(), options(), None, Some(key()), 1)),
            again
        );
        // Another key, or the same key on another service, is another incident.
        let checkout = IncidentOptions {
            dedup_key: Some("checkout-flow".into()),
            ..options()
        };
        let other_key = note(p.repeat_for(&failure(), checkout, None, None, 0));
        assert!(
            other_key.url.contains("incident_key=checkout-flow&"),
            "{}",
            other_key.url
        );
        assert_eq!(other_key.dedup_key, "checkout-flow");
        let other_service = IncidentOptions {
            service_id: Some("POTHER1".into()),
            dedup_key: Some(key()),
            ..options()
        };
        note(p.repeat_for(&failure(), other_service, None, None, 0));
        // A successor pager of the same run (after a trap) keeps the rule.
        let state = p.state();
        assert_eq!(state.noted.len(), 3);
        let successor = Pager {
            noted: RefCell::new(state.noted),
            ..pager(settings())
        };
        assert_eq!(
            skip(successor.repeat_for(&failure(), options(), Some(INCIDENT.into()), None, 1)),
            again
        );
    }

    #[test]
    fn secrets_never_reach_a_note() {
        let mut s = settings();
        s.api_key = None;
        s.oauth_token = Some("oauthsecret456".into());
        s.fallback_routing_key = Some("FALLBACK0123456789abcdefghijklmn".into());
        let p = pager(s);
        let mut f = failure();
        f.nodeid = "tests/t.py::test_x[oauthsecret456]".into();
        f.short_name = Some("test_x[oauthsecret456]".into());
        f.message = Some("AssertionError: token oauthsecret456".into());
        f.traceback = "headers = {'Authorization': 'Bearer oauthsecret456'}\nfallback FALLBACK0123456789abcdefghijklmn".into();
        for incident in [Some(INCIDENT.to_string()), None] {
            let keyed = IncidentOptions {
                dedup_key: Some(format!("k{}", p.noted.borrow().len())),
                ..options()
            };
            let request = note(p.repeat_for(&f, keyed, incident, None, 0));
            let content = match request.kind {
                RequestKind::RestNote => {
                    let body: Value = serde_json::from_str(&request.body).unwrap();
                    body["note"]["content"].as_str().unwrap().to_string()
                }
                _ => request.then_note.clone().unwrap(),
            };
            assert!(content.contains("[redacted]"), "{content}");
            for secret in ["oauthsecret456", "FALLBACK0123456789abcdefghijklmn"] {
                assert!(!content.contains(secret), "{content}");
                assert!(!request.title.contains(secret), "{}", request.title);
                assert!(!request.display_body.contains(secret));
                assert!(!request.url.contains(secret));
            }
        }
    }

    #[test]
    fn a_dry_run_note_is_only_shown() {
        let mut s = settings();
        s.dry_run = true;
        let p = pager(s);
        let request = note(p.repeat_for(&failure(), options(), Some(INCIDENT.into()), None, 0));
        assert_eq!(request.dry_run, Some(DryRunReason::Requested));
        assert!(matches!(
            p.decide(request, None, 201, Vec::new(), String::new()),
            Step::NotSent(DryRunReason::Requested)
        ));
    }
}
