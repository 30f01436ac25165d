//! What this command opened, kept between runs so that a case that passes
//! again gets its alert resolved, a case still failing gets a note, and a
//! case waits its `page_after_failures`. Case ids, keys, incident ids and
//! counts: no credentials. The failing runs are kept by digests of the case
//! ids (an id may hold a secret, as a parametrized test's may), as the
//! Python host keeps them.

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
    let hex: String = sha256(&data).iter().map(|b| format!("{b:02x}")).collect();
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

/// SHA-256 (FIPS 180-4), for the digests above: small enough to keep here
/// rather than a dependency of the whole host.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bits.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let choice = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(choice)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let majority = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(majority);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (word, add) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *word = word.wrapping_add(add);
        }
    }
    let mut out = [0u8; 32];
    for (bytes, word) in out.chunks_exact_mut(4).zip(h) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    out
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
    fn sha256_matches_the_standards_examples() {
        let hex =
            |data: &[u8]| -> String { sha256(data).iter().map(|b| format!("{b:02x}")).collect() };
        assert_eq!(
            hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Two blocks, and a length whose padding needs a block of its own.
        assert_eq!(
            hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            hex(&[b'a'; 1000]),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
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
