//! What this command opened, kept between runs so that a case that passes
//! again gets its alert resolved. Keys and incident ids only: no secrets.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Case id (or `aggregate:<key>` for a grouped alert) → its open alert.
    #[serde(default)]
    pub open: BTreeMap<String, OpenAlert>,
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

    /// Remembers an alert; an answer without an incident id keeps the known one.
    pub fn opened(&mut self, id: String, mut alert: OpenAlert) {
        if alert.incident_id.is_none() {
            alert.incident_id = self.open.get(&id).and_then(|a| a.incident_id.clone());
        }
        self.open.insert(id, alert);
    }
}
