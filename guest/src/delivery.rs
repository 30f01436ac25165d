//! What happens after each attempt: wait and try again, give up for now, or
//! stop. Every host runs these rules by asking the component (`step`), so a
//! test run, a replay and `pagerduty-junit` wait and give up alike.

use sha2::{Digest, Sha256};

use crate::pytest_pagerduty::alerts::types::{GaveUp, Progress, Retry, Step, Wait};

/// Attempts per request unless the settings say otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// Alerts per run unless the settings say otherwise; the rest are grouped.
pub const DEFAULT_MAX_INCIDENTS: u32 = 10;
/// The most one request waits between its attempts, in all.
pub const WAIT_BUDGET_MS: u32 = 120_000;
/// The longest single wait.
pub const WAIT_MAX_MS: u32 = 60_000;
/// The shortest wait: a `ratelimit-reset` of 0 means "this second", and an
/// immediate burst would only be limited again.
pub const WAIT_FLOOR_MS: u32 = 1_000;
/// The first backoff when PagerDuty names no wait; it doubles per attempt.
pub const BACKOFF_BASE_MS: u32 = 1_000;

/// A factor from 0.5 to 1.5 (in thousandths), the same for the same key and
/// attempt: alerts spread their retries, and a vector can state the wait.
fn jitter_permille(dedup_key: &str, attempt: u32) -> u64 {
    let digest = Sha256::new()
        .chain_update(dedup_key.as_bytes())
        .chain_update(attempt.to_le_bytes())
        .finalize();
    500 + u64::from(u16::from_le_bytes([digest[0], digest[1]])) % 1001
}

/// How long to wait after this attempt's transient failure: what PagerDuty
/// asked (which may be longer than we will wait), else a doubling backoff
/// with jitter; never less than the floor.
pub fn wait_ms(retry: &Retry, attempt: u32, dedup_key: &str) -> u64 {
    let wait = match retry.after_seconds {
        Some(seconds) => u64::from(seconds) * 1000,
        None => {
            let doubling = 1u64 << attempt.saturating_sub(1).min(16);
            let backoff = (u64::from(BACKOFF_BASE_MS) * doubling).min(u64::from(WAIT_MAX_MS));
            (backoff * jitter_permille(dedup_key, attempt) / 1000).min(u64::from(WAIT_MAX_MS))
        }
    };
    wait.max(u64::from(WAIT_FLOOR_MS))
}

/// After a transient failure: wait and try again, or give up once the
/// attempts or the time allowed are used up.
pub fn after_transient(
    retry: Retry,
    progress: Option<Progress>,
    max_attempts: u32,
    dedup_key: &str,
) -> Step {
    let Progress { attempt, waited_ms } = progress.unwrap_or(Progress {
        attempt: 1,
        waited_ms: 0,
    });
    let wait = wait_ms(&retry, attempt, dedup_key);
    // Past the longest wait or the time left, a retry would go out while
    // PagerDuty still refuses it: keep the alert for later instead.
    let too_long =
        wait > u64::from(WAIT_MAX_MS) || u64::from(waited_ms) + wait > u64::from(WAIT_BUDGET_MS);
    if attempt >= max_attempts || too_long {
        return Step::GaveUp(GaveUp {
            attempts: attempt,
            reason: retry.reason,
        });
    }
    let wait = wait as u32; // within WAIT_MAX_MS
    Step::Retry(Wait {
        wait_ms: wait,
        next: Progress {
            attempt: attempt + 1,
            waited_ms: waited_ms + wait,
        },
        reason: retry.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(after: Option<u32>) -> Retry {
        Retry {
            after_seconds: after,
            reason: "rate limited".into(),
        }
    }

    fn waits(after: Option<u32>, max_attempts: u32) -> (Vec<u32>, u32) {
        let mut progress = None;
        let mut waits = Vec::new();
        loop {
            match after_transient(retry(after), progress, max_attempts, "k") {
                Step::Retry(w) => {
                    waits.push(w.wait_ms);
                    progress = Some(w.next);
                }
                Step::GaveUp(g) => return (waits, g.attempts),
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn a_reset_of_zero_waits_the_floor_and_never_bursts() {
        assert_eq!(waits(Some(0), 4), (vec![1000, 1000, 1000], 4));
    }

    #[test]
    fn the_reset_pagerduty_names_is_kept_and_one_past_the_longest_wait_gives_up() {
        assert_eq!(waits(Some(7), 3), (vec![7000, 7000], 3));
        // Waiting 60 s of a 600 s reset would only be refused again.
        assert_eq!(waits(Some(600), 4), (vec![], 1));
    }

    #[test]
    fn the_time_budget_stops_before_the_attempts_do() {
        // 30 s apart (an Events 429): 4 waits fit in 120 s, a fifth does not.
        let (waits, attempts) = waits(Some(30), 20);
        assert_eq!(waits, vec![30_000; 4]);
        assert_eq!(attempts, 5);
    }

    #[test]
    fn backoff_doubles_with_stable_jitter_of_half_either_way() {
        let (first, _) = waits(None, 6);
        let (again, _) = waits(None, 6);
        assert_eq!(first, again);
        for (n, wait) in first.iter().enumerate() {
            let base = 1000u32 << n;
            assert!(*wait >= base / 2 && *wait <= base + base / 2, "{n}: {wait}");
            assert!(*wait >= WAIT_FLOOR_MS);
        }
        let other = wait_ms(&retry(None), 2, "another key");
        let mine = wait_ms(&retry(None), 2, "k");
        assert!((1000..=3000).contains(&other) && (1000..=3000).contains(&mine));
        assert_ne!(other, mine);
    }

    #[test]
    fn one_attempt_gives_up_at_once() {
        assert_eq!(waits(Some(1), 1), (vec![], 1));
    }
}
