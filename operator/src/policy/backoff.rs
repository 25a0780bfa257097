//! Per-certificate exponential backoff after failed issuance attempts.
//!
//! Without it a certificate whose issuance fails (a tampered Secret, a rejected order) is
//! retried on every reconcile. The jitter comes from the object's UID, so certificates that
//! failed together (an issuer outage) do not retry together.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{add_saturating, stable_hash};
use crate::api::Environment;

/// An exponential backoff: `base * 2^(attempts - 1)` up to `cap`, then up to
/// `jitter_percent` % more, fixed per UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// Largest delay before jitter.
    pub cap: Duration,
    /// Largest jitter, in percent of the delay.
    pub jitter_percent: u32,
}

impl BackoffPolicy {
    /// 10 s doubling up to 1 h, plus up to 10 %.
    pub const STANDARD: BackoffPolicy = BackoffPolicy {
        base: Duration::from_secs(10),
        cap: Duration::from_secs(3600),
        jitter_percent: 10,
    };

    /// 10 s doubling up to 6 h, plus up to 10 %: for SITHS production, where a retry may
    /// ask a person to place another order that costs 3 500 SEK, an hourly retry of a
    /// persistent failure only adds noise and risk.
    pub const PAID_ORDER: BackoffPolicy = BackoffPolicy {
        base: Duration::from_secs(10),
        cap: Duration::from_secs(6 * 3600),
        jitter_percent: 10,
    };

    /// The policy for a SITHS issuer of the given environment.
    pub fn for_siths(environment: Environment) -> BackoffPolicy {
        match environment {
            Environment::Production => BackoffPolicy::PAID_ORDER,
            Environment::Test => BackoffPolicy::STANDARD,
        }
    }

    /// Delay after `failed_attempts` consecutive failures; zero when there were none. The
    /// cap applies before jitter, so capped retries still spread out (the longest delay is
    /// `cap * (1 + jitter_percent / 100)`).
    pub fn delay(&self, failed_attempts: u32, uid: &str) -> Duration {
        if failed_attempts == 0 {
            return Duration::ZERO;
        }
        let doublings = failed_attempts - 1;
        let exponential = if doublings >= 64 {
            u128::MAX
        } else {
            self.base.as_nanos().saturating_mul(1u128 << doublings)
        };
        let capped = exponential.min(self.cap.as_nanos());
        // Per-mille resolution: the jitter is 0..=jitter_percent % of the delay.
        let per_mille = u128::from(stable_hash("backoff-jitter", uid) % 1001);
        let jitter = capped * per_mille * u128::from(self.jitter_percent) / 100_000;
        nanos_to_duration(capped + jitter)
    }

    /// When to retry after the last failure.
    pub fn retry_at(&self, last_failure: Timestamp, failed_attempts: u32, uid: &str) -> Timestamp {
        let delay = SignedDuration::try_from(self.delay(failed_attempts, uid))
            .unwrap_or(SignedDuration::MAX);
        add_saturating(last_failure, delay)
    }
}

fn nanos_to_duration(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(nanos / NANOS_PER_SEC) {
        // The remainder is below 10^9 and fits.
        Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

/// [`BackoffPolicy::STANDARD`] delay after `failed_attempts` consecutive failures.
pub fn backoff_delay(failed_attempts: u32, uid: &str) -> Duration {
    BackoffPolicy::STANDARD.delay(failed_attempts, uid)
}

/// [`BackoffPolicy::STANDARD`] retry time after the last failure.
pub fn retry_at(last_failure: Timestamp, failed_attempts: u32, uid: &str) -> Timestamp {
    BackoffPolicy::STANDARD.retry_at(last_failure, failed_attempts, uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Asserts `d` lies in `[base, base * 1.1]`.
    fn assert_jittered(d: Duration, base: Duration) {
        assert!(
            d >= base && d <= base + base / 10,
            "{d:?} not within 10 % above {base:?}"
        );
    }

    #[test]
    fn no_failure_no_delay() {
        assert_eq!(backoff_delay(0, "u"), Duration::ZERO);
    }

    #[test]
    fn doubles_from_ten_seconds() {
        for (attempts, base) in [(1, 10), (2, 20), (3, 40), (4, 80), (9, 2560)] {
            assert_jittered(backoff_delay(attempts, "u"), secs(base));
        }
    }

    #[test]
    fn capped_at_one_hour_plus_jitter() {
        for attempts in [10, 11, 20, 64, 65, 1000, u32::MAX] {
            for uid in ["a", "b", "c", "d"] {
                assert_jittered(backoff_delay(attempts, uid), secs(3600));
            }
        }
    }

    #[test]
    fn paid_orders_cap_at_six_hours() {
        let p = BackoffPolicy::for_siths(Environment::Production);
        assert_eq!(p, BackoffPolicy::PAID_ORDER);
        assert_jittered(p.delay(12, "u"), secs(6 * 3600));
        assert_jittered(p.delay(u32::MAX, "u"), secs(6 * 3600));
        assert_jittered(p.delay(3, "u"), secs(40));
        assert_eq!(
            BackoffPolicy::for_siths(Environment::Test),
            BackoffPolicy::STANDARD
        );
    }

    #[test]
    fn jitter_is_stable_per_uid_and_spread_between_uids() {
        assert_eq!(backoff_delay(20, "uid-1"), backoff_delay(20, "uid-1"));
        let distinct: std::collections::BTreeSet<Duration> = (0..100)
            .map(|i| backoff_delay(20, &format!("uid-{i}")))
            .collect();
        assert!(
            distinct.len() > 80,
            "only {} distinct delays",
            distinct.len()
        );
        let max = distinct.iter().max().unwrap();
        let min = distinct.iter().min().unwrap();
        assert!(*max - *min > secs(300), "spread {:?}", *max - *min);
    }

    #[test]
    fn jitter_is_pinned() {
        assert_eq!(backoff_delay(1, "u"), Duration::from_millis(10_686));
    }

    #[test]
    fn retry_at_adds_the_delay() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let d = backoff_delay(3, "u");
        assert_eq!(
            retry_at(t, 3, "u"),
            t + SignedDuration::try_from(d).unwrap()
        );
        assert_eq!(retry_at(t, 0, "u"), t);
        assert_eq!(retry_at(Timestamp::MAX, 5, "u"), Timestamp::MAX);
    }
}
