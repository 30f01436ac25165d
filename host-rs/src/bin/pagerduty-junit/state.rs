//! What this command opened, kept between runs so that a case that passes
//! again gets its alert resolved, a case still failing gets a note, and a
//! case waits its `page_after_failures`. Case ids, keys, incident ids and
//! counts: no credentials. The failing runs are kept by digests of the case
//! ids (an id may hold a secret, as a parametrized test's may), as the
//! Python host keeps them.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A case's failing runs are kept under this and the SHA-256 of its id.
const DIGEST: &str = "sha256:";
/// Hashed before the id, as the Python host hashes a test id.
const DIGEST_DOMAIN: &[u8] = b"pytest-pagerduty test id\0";

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Case id (or `aggregate:<key>` for a grouped alert) → its open alert.
    #[serde(default)]
    pub open: BTreeMap<String, OpenAlert>,
    /// Digest of a case id ([`digest`]) → how many runs in a row it has
    /// failed in, this command's runs (a pass forgets it; a run without it,
    /// or that skips it, keeps it).
    #[serde(
        default,
        deserialize_with = "counts",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    failing: BTreeMap<String, u32>,
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

/// How a case id is kept: `sha256:` and the hex SHA-256 of the Python
/// host's domain and the id.
pub fn digest(id: &str) -> String {
    let mut data = DIGEST_DOMAIN.to_vec();
    data.extend_from_slice(id.as_bytes());
    let hex: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{DIGEST}{hex}")
}

fn is_digest(name: &str) -> bool {
    name.strip_prefix(DIGEST).is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The `failing` map as a file holds it, leniently: a count that is not a
/// whole number of runs from 1 (a person's edit, another version's) is no
/// count, and a raw case id (an older file) is read as its digest.
fn counts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, u32>, D::Error> {
    let Value::Object(entries) = Value::deserialize(deserializer)? else {
        return Ok(BTreeMap::new());
    };
    let mut counts = BTreeMap::new();
    for (name, value) in entries {
        let Some(runs) = value.as_u64().filter(|&n| n > 0) else {
            continue;
        };
        let runs = u32::try_from(runs).unwrap_or(u32::MAX);
        let name = if is_digest(&name) {
            name
        } else {
            digest(&name)
        };
        let kept: &mut u32 = counts.entry(name).or_default();
        *kept = (*kept).max(runs);
    }
    Ok(counts)
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

    /// Remembers an alert. `created`: PagerDuty opened it just now (or, for
    /// Events API v2, accepted it), so it starts without notes and with only
    /// the incident id the answer gave. Otherwise (already open) the known
    /// incident's id and notes are kept, but only when it was opened with
    /// the same key: the incident of another key (a changed route) is not
    /// this alert's.
    pub fn opened(&mut self, id: String, mut alert: OpenAlert, created: bool) {
        if let Some(known) = self.open.get(&id) {
            if !created && known.dedup_key == alert.dedup_key {
                if alert.incident_id.is_none() {
                    alert.incident_id = known.incident_id.clone();
                }
                if alert.incident_id == known.incident_id {
                    alert.notes = alert.notes.max(known.notes);
                }
            }
        }
        self.open.insert(id, alert);
    }

    /// One more run: each case that failed in it (once, however many
    /// reports name it) counts one more run in a row; each that passed (and
    /// failed in none of them) starts over; one that is absent or skipped
    /// keeps its count.
    pub fn count_run(&mut self, failed: &BTreeSet<String>, passed: &BTreeSet<String>) {
        for id in failed {
            let runs = self.failing.entry(digest(id)).or_default();
            *runs = runs.saturating_add(1);
        }
        for id in passed.difference(failed) {
            self.failing.remove(&digest(id));
        }
    }

    /// Runs in a row the case has failed in, this one included (1 without
    /// a history).
    pub fn failed_runs(&self, id: &str) -> u32 {
        self.failing.get(&digest(id)).copied().unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(key: &str, incident: Option<&str>, notes: u32) -> OpenAlert {
        OpenAlert {
            dedup_key: key.into(),
            incident_id: incident.map(str::to_string),
            cases: Vec::new(),
            notes,
        }
    }

    fn ids(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_case_id_is_kept_as_the_python_hosts_digest() {
        // hashlib.sha256(b"pytest-pagerduty test id\0" + b"t::a").hexdigest()
        assert_eq!(
            digest("t::a"),
            "sha256:6a5d88f1fcc69f24a3aa79c39a462cc4f00c84d2145e0dfbd209732798b5de7c"
        );
        assert!(is_digest(&digest("anything")));
        assert!(!is_digest("sha256:t::a"));
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
    fn counts_are_saved_by_digests_and_raw_ids_of_an_older_file_are_read() {
        let old = r#"{"failing": {"t::a": 2, "t::b": 3}}"#;
        let mut state: State = serde_json::from_str(old).unwrap();
        assert_eq!(
            (state.failed_runs("t::a"), state.failed_runs("t::b")),
            (2, 3)
        );
        state.count_run(&ids(&["t::a"]), &ids(&[]));
        let saved = serde_json::to_string(&state).unwrap();
        assert!(!saved.contains("t::"), "{saved}");
        let again: State = serde_json::from_str(&saved).unwrap();
        assert_eq!(
            (again.failed_runs("t::a"), again.failed_runs("t::b")),
            (3, 3)
        );
    }

    #[test]
    fn a_count_that_is_not_a_number_of_runs_is_no_count() {
        let text = format!(
            r#"{{"failing": {{"a": -1, "b": "two", "c": 1.5, "d": 0, "e": null, "f": 4,
                "{}": 99999999999}}}}"#,
            digest("g")
        );
        let state: State = serde_json::from_str(&text).unwrap();
        for id in ["a", "b", "c", "d", "e"] {
            assert_eq!(state.failed_runs(id), 1, "{id}");
        }
        assert_eq!(
            (state.failed_runs("f"), state.failed_runs("g")),
            (4, u32::MAX)
        );
        for failing in ["[]", "3", "null", r#""x""#] {
            let state: State =
                serde_json::from_str(&format!(r#"{{"failing": {failing}}}"#)).unwrap();
            assert!(state.failing.is_empty(), "{failing}");
        }
    }

    #[test]
    fn already_open_keeps_the_incident_and_its_notes_a_new_incident_starts_over() {
        let mut state = State::default();
        state.opened("t".into(), alert("k", Some("Q1"), 0), true);
        state.open.get_mut("t").unwrap().notes = 3;
        state.opened("t".into(), alert("k", None, 0), false);
        assert_eq!(state.open["t"].incident_id.as_deref(), Some("Q1"));
        assert_eq!(state.open["t"].notes, 3);
        state.opened("t".into(), alert("k", Some("Q2"), 0), true);
        assert_eq!(state.open["t"].notes, 0);
    }

    #[test]
    fn a_created_alert_or_another_keys_carries_no_incident_or_notes() {
        let mut state = State::default();
        let remembered = |state: &State| {
            let a = &state.open["t"];
            (a.incident_id.clone(), a.notes)
        };
        state.opened("t".into(), alert("k", Some("Q1"), 5), true);
        // Created, without an id in the answer (an Events alert): none kept.
        state.opened("t".into(), alert("k", None, 0), true);
        assert_eq!(remembered(&state), (None, 0));
        state.opened("t".into(), alert("k", Some("Q1"), 5), true);
        // Already open, under another key than the one remembered.
        state.opened("t".into(), alert("other", None, 0), false);
        assert_eq!(remembered(&state), (None, 0));
        assert_eq!(state.open["t"].dedup_key, "other");
    }

    #[test]
    fn a_failure_counts_a_run_a_pass_forgets_absence_and_skips_keep() {
        let mut state = State::default();
        state.count_run(&ids(&["a", "b"]), &ids(&[]));
        state.count_run(&ids(&["a"]), &ids(&[]));
        // b was absent (or skipped): it keeps its count.
        assert_eq!((state.failed_runs("a"), state.failed_runs("b")), (2, 1));
        state.count_run(&ids(&["a", "b"]), &ids(&[]));
        assert_eq!((state.failed_runs("a"), state.failed_runs("b")), (3, 2));
        state.count_run(&ids(&[]), &ids(&[]));
        assert_eq!((state.failed_runs("a"), state.failed_runs("b")), (3, 2));
        // A pass forgets; a pass in a run where it also failed does not.
        state.count_run(&ids(&["b"]), &ids(&["a", "b"]));
        assert_eq!((state.failed_runs("a"), state.failed_runs("b")), (1, 3));
        assert!(!state.failing.contains_key(&digest("a")));
    }
}
