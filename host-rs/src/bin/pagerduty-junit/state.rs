//! What this command opened, kept between runs so that a case that passes
//! again gets its alert resolved, a case still failing gets a note, and a
//! case waits its `page_after_failures`. Keys, incident ids and counts only:
//! no secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Case id (or `aggregate:<key>` for a grouped alert) → its open alert.
    #[serde(default)]
    pub open: BTreeMap<String, OpenAlert>,
    /// Case id → how many runs in a row it has failed in, this command's
    /// runs (a pass, or a run without the case, forgets it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failing: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenAlert {
    /// Resolves use this key, even if the route's would now be another.
    pub dedup_key: String,
    /// The REST incident, when PagerDuty said which.
    pub incident_id: Option<String>,
    /// For a grouped alert: the cases it stands for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<String>,
    /// Notes this command added to the incident (repeat failures).
    #[serde(default)]
    pub notes: u32,
}

impl State {
    /// The state file, or an empty state when there is none yet.
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("{} is not a state file: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// Written whole to a temporary file and renamed, so a crash never leaves half.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).expect("state serializes");
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, text + "\n")
            .and_then(|()| std::fs::rename(&temporary, path))
            .map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Remembers an alert. An answer without an incident id is about the
    /// known incident (already open): its id and notes are kept; a new
    /// incident starts without notes.
    pub fn opened(&mut self, id: String, mut alert: OpenAlert) {
        if let Some(known) = self.open.get(&id) {
            if alert.incident_id.is_none() {
                alert.incident_id = known.incident_id.clone();
            }
            if alert.incident_id == known.incident_id {
                alert.notes = alert.notes.max(known.notes);
            }
        }
        self.open.insert(id, alert);
    }

    /// One more run: the cases that failed in it (each once, however many
    /// reports name it) count one more run in a row; every other case is
    /// forgotten.
    pub fn count_failures(&mut self, failed: &BTreeSet<String>) {
        let before = std::mem::take(&mut self.failing);
        self.failing = failed
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    before.get(id).map_or(1, |n| n.saturating_add(1)),
                )
            })
            .collect();
    }

    /// Runs in a row the case has failed in, this one included (1 without
    /// a history).
    pub fn failed_runs(&self, id: &str) -> u32 {
        self.failing.get(id).copied().unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(incident: Option<&str>, notes: u32) -> OpenAlert {
        OpenAlert {
            dedup_key: "k".into(),
            incident_id: incident.map(str::to_string),
            cases: Vec::new(),
            notes,
        }
    }

    #[test]
    fn an_old_state_file_loads_without_notes_or_counts() {
        let old = r#"{"open": {"t::a": {"dedup_key": "k", "incident_id": "Q1"}}}"#;
        let state: State = serde_json::from_str(old).unwrap();
        assert_eq!(state.open["t::a"].notes, 0);
        assert!(state.failing.is_empty());
        assert_eq!(state.failed_runs("t::a"), 1);
    }

    #[test]
    fn already_open_keeps_the_incident_and_its_notes_a_new_incident_starts_over() {
        let mut state = State::default();
        state.opened("t".into(), alert(Some("Q1"), 0));
        state.open.get_mut("t").unwrap().notes = 3;
        state.opened("t".into(), alert(None, 0));
        assert_eq!(state.open["t"].incident_id.as_deref(), Some("Q1"));
        assert_eq!(state.open["t"].notes, 3);
        state.opened("t".into(), alert(Some("Q2"), 0));
        assert_eq!(state.open["t"].notes, 0);
    }

    #[test]
    fn a_failure_counts_a_run_and_a_pass_or_absence_forgets() {
        let mut state = State::default();
        let run = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        state.count_failures(&run(&["a", "b"]));
        state.count_failures(&run(&["a"]));
        assert_eq!(state.failed_runs("a"), 2);
        assert!(!state.failing.contains_key("b"));
        state.count_failures(&run(&["a", "b"]));
        assert_eq!((state.failed_runs("a"), state.failed_runs("b")), (3, 1));
        state.count_failures(&run(&[]));
        assert!(state.failing.is_empty());
    }
}
