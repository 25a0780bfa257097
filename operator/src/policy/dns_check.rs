//! The live DNS TXT check of a DomainValidation's evidence: what a lookup's outcome
//! writes to `status.dns`, when the record is looked up next, and what the status means
//! for the `Validated` decision at `now` (see [`super::domain_validation::verdict`]).
//!
//! Rules:
//! - a definite answer (found, missing, wrong value) replaces the last one and restarts the
//!   grace period: `graceUntil = resultTime + grace`;
//! - a failed lookup (timeout, unreachable, SERVFAIL) keeps the last definite answer, which
//!   still counts until `graceUntil`: a resolver hiccup neither flaps the condition nor
//!   blocks an order;
//! - a result for another record name or value than the spec's is stale: not checked yet;
//! - the next lookup: after `interval` when found, after at most an hour when missing or
//!   wrong, after at most five minutes when the lookup failed; each times a per-object
//!   factor in [0.9, 1.1) so that validations created together do not query together.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{add_saturating, rfc3339, stable_hash};
use crate::{
    api::{DnsCheckStatus, DnsTxtRecord, DomainValidation},
    vocabulary::dns,
};

/// Default time between lookups of a record that was found.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Default time a definite answer counts while lookups fail.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(72 * 3600);
/// A missing or wrong record is looked up again after at most this long.
pub const MISSING_RETRY: Duration = Duration::from_secs(3600);
/// A failed lookup is tried again after at most this long.
pub const FAILED_RETRY: Duration = Duration::from_secs(300);

/// Schedule of the live check (flags `--dns-check-interval`, `--dns-check-grace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Time between lookups of a record that was found.
    pub interval: Duration,
    /// Time a definite answer counts while lookups fail.
    pub grace: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            interval: DEFAULT_INTERVAL,
            grace: DEFAULT_GRACE,
        }
    }
}

/// What one lookup returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// One of the TXT strings equals the expected value.
    Found,
    /// NXDOMAIN, or the name has no TXT data.
    Missing,
    /// TXT strings, none the expected value.
    Mismatch(Vec<String>),
    /// No answer: the message says why (it must carry no secret).
    Failed(String),
}

impl Lookup {
    /// The TXT strings of an answer decide: found when one equals `expected`.
    pub fn from_answer(strings: Vec<String>, expected: &str) -> Self {
        if strings.is_empty() {
            Lookup::Missing
        } else if strings.iter().any(|s| s == expected) {
            Lookup::Found
        } else {
            Lookup::Mismatch(strings)
        }
    }

    /// The reason naming the outcome (`vocabulary::dns`), also the metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Lookup::Found => dns::FOUND,
            Lookup::Missing => dns::MISSING,
            Lookup::Mismatch(_) => dns::MISMATCH,
            Lookup::Failed(_) => dns::FAILED,
        }
    }
}

/// The live check's state at `now`, as the `Validated` decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsCheck {
    /// No record configured.
    NotConfigured,
    /// Not looked up yet for the current record name and value.
    Pending,
    /// The record holds the expected value.
    Matched,
    /// The record does not exist.
    Missing,
    /// The record holds other values.
    Mismatch {
        /// The TXT strings found.
        found: Vec<String>,
    },
    /// The last lookup failed.
    Failed {
        /// Why.
        failure: String,
        /// The last definite answer was `Found` and counts until this time.
        held_until: Option<Timestamp>,
    },
}

fn parse(ts: Option<&str>) -> Option<Timestamp> {
    ts.and_then(|t| t.parse().ok())
}

/// The status recorded for `record`, unless it is for another name or value.
fn current<'a>(dv: &'a DomainValidation, record: &DnsTxtRecord) -> Option<&'a DnsCheckStatus> {
    dv.status
        .as_ref()
        .and_then(|s| s.dns.as_ref())
        .filter(|d| d.name == record.name && d.value == record.value)
}

/// The state of the live check of `dv` at `now`, from its spec and `status.dns`.
pub fn state(dv: &DomainValidation, now: Timestamp) -> DnsCheck {
    let Some(record) = &dv.spec.evidence.dns_txt_record else {
        return DnsCheck::NotConfigured;
    };
    let Some(st) = current(dv, record) else {
        return DnsCheck::Pending;
    };
    let definite = match st.result.as_deref() {
        Some(dns::FOUND) => Some(DnsCheck::Matched),
        Some(dns::MISSING) => Some(DnsCheck::Missing),
        Some(dns::MISMATCH) => Some(DnsCheck::Mismatch {
            found: st.found.clone(),
        }),
        _ => None,
    };
    match (&st.failure, definite) {
        (None, Some(d)) => d,
        (None, None) => DnsCheck::Pending,
        (Some(failure), d) => {
            let held_until = parse(st.grace_until.as_deref())
                .filter(|until| now < *until && d == Some(DnsCheck::Matched));
            DnsCheck::Failed {
                failure: failure.clone(),
                held_until,
            }
        }
    }
}

/// Whether `dv` has a record that is due for a lookup at `now`: never looked up for the
/// current name and value, or its `nextCheckTime` has come.
pub fn due(dv: &DomainValidation, now: Timestamp) -> bool {
    let Some(record) = &dv.spec.evidence.dns_txt_record else {
        return false;
    };
    match current(dv, record) {
        None => true,
        Some(st) => parse(Some(&st.next_check_time)).is_none_or(|next| now >= next),
    }
}

/// The per-object factor in [0.9, 1.1) that spreads lookups.
pub fn jitter(uid: &str) -> f64 {
    let h = stable_hash("dns-check", uid);
    0.9 + 0.2 * ((h >> 11) as f64 / (1u64 << 53) as f64)
}

/// When the record is looked up after an outcome at `now`.
pub fn next_check(outcome: &Lookup, now: Timestamp, schedule: Schedule, uid: &str) -> Timestamp {
    let base = match outcome {
        Lookup::Found => schedule.interval,
        Lookup::Missing | Lookup::Mismatch(_) => schedule.interval.min(MISSING_RETRY),
        Lookup::Failed(_) => schedule.interval.min(FAILED_RETRY),
    };
    let wait = base.mul_f64(jitter(uid)).max(Duration::from_secs(1));
    add_saturating(
        now,
        SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX),
    )
}

/// The `status.dns` after a lookup of `record` at `now` returned `outcome`; `previous` is
/// the status before (its definite answer is kept through failures when it is for the
/// same record).
pub fn record(
    previous: Option<&DnsCheckStatus>,
    record: &DnsTxtRecord,
    outcome: &Lookup,
    now: Timestamp,
    schedule: Schedule,
    uid: &str,
) -> DnsCheckStatus {
    let previous = previous.filter(|p| p.name == record.name && p.value == record.value);
    let grace = SignedDuration::try_from(schedule.grace).unwrap_or(SignedDuration::MAX);
    let mut st = DnsCheckStatus {
        name: record.name.clone(),
        value: record.value.clone(),
        last_check_time: rfc3339(now),
        next_check_time: rfc3339(next_check(outcome, now, schedule, uid)),
        ..Default::default()
    };
    match outcome {
        Lookup::Failed(why) => {
            if let Some(p) = previous {
                st.result = p.result.clone();
                st.found = p.found.clone();
                st.result_time = p.result_time.clone();
                st.grace_until = p.grace_until.clone();
            }
            st.failure = Some(why.clone());
        }
        definite => {
            st.result = Some(definite.reason().to_string());
            if let Lookup::Mismatch(found) = definite {
                st.found = found.clone();
            }
            st.result_time = Some(rfc3339(now));
            st.grace_until = Some(rfc3339(add_saturating(now, grace)));
        }
    }
    st
}

/// The `DnsChecked` condition of `dv` at `now` (status, reason, message); `None` without a
/// record. Reported whether or not the check is required.
pub fn condition(dv: &DomainValidation, now: Timestamp) -> Option<(bool, &'static str, String)> {
    let record = dv.spec.evidence.dns_txt_record.as_ref()?;
    let name = &record.name;
    Some(match state(dv, now) {
        DnsCheck::NotConfigured | DnsCheck::Pending => (
            false,
            dns::PENDING,
            format!("the TXT record {name} has not been looked up yet"),
        ),
        DnsCheck::Matched => (
            true,
            dns::FOUND,
            format!("the TXT record {name} holds the expected value"),
        ),
        DnsCheck::Missing => (
            false,
            dns::MISSING,
            format!("the TXT record {name} was not found; publish it with the expected value"),
        ),
        DnsCheck::Mismatch { found } => (
            false,
            dns::MISMATCH,
            format!(
                "the TXT record {name} holds {found:?}, not the expected value; correct the record or evidence.dnsTxtRecord.value"
            ),
        ),
        DnsCheck::Failed {
            failure,
            held_until,
        } => (
            false,
            dns::FAILED,
            failed_message(name, &failure, held_until),
        ),
    })
}

/// The message of a failed lookup, saying whether the last answer still counts.
pub fn failed_message(name: &str, failure: &str, held_until: Option<Timestamp>) -> String {
    match held_until {
        Some(until) => format!(
            "looking up the TXT record {name} failed ({failure}); the last answer (found) counts until {}",
            rfc3339(until)
        ),
        None => format!(
            "looking up the TXT record {name} failed ({failure}) and no answer that found it is within the grace period"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DomainValidationSpec, DomainValidationStatus, Evidence, Organization};

    const UID: &str = "0b6f1c1e-1d2a-4d55-9a53-2f5f7f0e0a11";

    fn dv(record: Option<(&str, &str)>, dns: Option<DnsCheckStatus>) -> DomainValidation {
        let mut dv = DomainValidation::new(
            "region",
            DomainValidationSpec {
                domain: "region.se".into(),
                include_subdomains: true,
                owner: Organization {
                    name: "Region".into(),
                    organization_number: "232100-0016".into(),
                    locality: None,
                },
                validated_for: "232100-0016".into(),
                evidence: Evidence {
                    form_reference: "F-1".into(),
                    submitted_by: "A".into(),
                    approved_on: "2026-01-01".into(),
                    dns_txt_record: record.map(|(n, v)| DnsTxtRecord {
                        name: n.into(),
                        value: v.into(),
                        required: true,
                    }),
                },
                valid_until: "2027-12-31".into(),
                power_of_attorney: None,
            },
        );
        dv.status = Some(DomainValidationStatus {
            dns,
            ..Default::default()
        });
        dv
    }

    fn rec() -> DnsTxtRecord {
        DnsTxtRecord {
            name: "_siths.region.se".into(),
            value: "token".into(),
            required: true,
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn schedule() -> Schedule {
        Schedule {
            interval: Duration::from_secs(24 * 3600),
            grace: Duration::from_secs(72 * 3600),
        }
    }

    #[test]
    fn answer_strings_decide() {
        assert_eq!(Lookup::from_answer(vec![], "x"), Lookup::Missing);
        assert_eq!(
            Lookup::from_answer(vec!["a".into(), "x".into()], "x"),
            Lookup::Found
        );
        assert_eq!(
            Lookup::from_answer(vec!["a".into()], "x"),
            Lookup::Mismatch(vec!["a".into()])
        );
    }

    #[test]
    fn no_record_is_not_configured_and_never_due() {
        let d = dv(None, None);
        assert_eq!(
            state(&d, t("2026-06-01T00:00:00Z")),
            DnsCheck::NotConfigured
        );
        assert!(!due(&d, t("2026-06-01T00:00:00Z")));
        assert!(condition(&d, t("2026-06-01T00:00:00Z")).is_none());
    }

    #[test]
    fn unchecked_record_is_pending_and_due() {
        let d = dv(Some(("_siths.region.se", "token")), None);
        let now = t("2026-06-01T00:00:00Z");
        assert_eq!(state(&d, now), DnsCheck::Pending);
        assert!(due(&d, now));
    }

    #[test]
    fn found_then_due_after_the_jittered_interval() {
        let now = t("2026-06-01T00:00:00Z");
        let st = record(None, &rec(), &Lookup::Found, now, schedule(), UID);
        assert_eq!(st.result.as_deref(), Some(dns::FOUND));
        assert_eq!(st.grace_until.as_deref(), Some("2026-06-04T00:00:00Z"));
        let d = dv(Some(("_siths.region.se", "token")), Some(st.clone()));
        assert_eq!(state(&d, now), DnsCheck::Matched);
        assert!(!due(&d, now));
        let next: Timestamp = st.next_check_time.parse().unwrap();
        let wait = next.duration_since(now).as_secs_f64();
        assert!(
            (0.9 * 86400.0..1.1 * 86400.0).contains(&wait),
            "next check after {wait} s"
        );
        assert!(due(&d, next));
    }

    #[test]
    fn jitter_differs_per_object_and_stays_in_range() {
        let a = jitter("a");
        let b = jitter("b");
        assert_ne!(a, b);
        for uid in ["a", "b", "c", UID] {
            assert!((0.9..1.1).contains(&jitter(uid)));
            assert_eq!(jitter(uid), jitter(uid));
        }
    }

    #[test]
    fn a_failure_keeps_a_found_answer_within_grace_only() {
        let t0 = t("2026-06-01T00:00:00Z");
        let found = record(None, &rec(), &Lookup::Found, t0, schedule(), UID);
        let t1 = t("2026-06-02T00:00:00Z");
        let failed = record(
            Some(&found),
            &rec(),
            &Lookup::Failed("timed out".into()),
            t1,
            schedule(),
            UID,
        );
        assert_eq!(failed.result.as_deref(), Some(dns::FOUND));
        assert_eq!(failed.result_time, found.result_time);
        // A failure is retried within five minutes, not after a day.
        let next: Timestamp = failed.next_check_time.parse().unwrap();
        assert!(next.duration_since(t1).as_secs() <= 330);
        let d = dv(Some(("_siths.region.se", "token")), Some(failed));
        match state(&d, t1) {
            DnsCheck::Failed {
                held_until: Some(until),
                ..
            } => assert_eq!(until, t("2026-06-04T00:00:00Z")),
            other => panic!("{other:?}"),
        }
        // After the grace period the failure no longer holds the answer.
        match state(&d, t("2026-06-04T00:00:00Z")) {
            DnsCheck::Failed {
                held_until: None, ..
            } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failure_does_not_hold_a_missing_record_or_nothing() {
        let t0 = t("2026-06-01T00:00:00Z");
        let missing = record(None, &rec(), &Lookup::Missing, t0, schedule(), UID);
        let failed = record(
            Some(&missing),
            &rec(),
            &Lookup::Failed("SERVFAIL".into()),
            t0,
            schedule(),
            UID,
        );
        let d = dv(Some(("_siths.region.se", "token")), Some(failed));
        assert!(matches!(
            state(&d, t0),
            DnsCheck::Failed {
                held_until: None,
                ..
            }
        ));
        let first_failure = record(
            None,
            &rec(),
            &Lookup::Failed("timed out".into()),
            t0,
            schedule(),
            UID,
        );
        assert_eq!(first_failure.result, None);
        let d = dv(Some(("_siths.region.se", "token")), Some(first_failure));
        assert!(matches!(
            state(&d, t0),
            DnsCheck::Failed {
                held_until: None,
                ..
            }
        ));
    }

    #[test]
    fn a_definite_answer_replaces_a_found_one_at_once() {
        let t0 = t("2026-06-01T00:00:00Z");
        let found = record(None, &rec(), &Lookup::Found, t0, schedule(), UID);
        let gone = record(Some(&found), &rec(), &Lookup::Missing, t0, schedule(), UID);
        let d = dv(Some(("_siths.region.se", "token")), Some(gone.clone()));
        assert_eq!(state(&d, t0), DnsCheck::Missing);
        let next: Timestamp = gone.next_check_time.parse().unwrap();
        assert!(next.duration_since(t0).as_secs() <= 3960);
    }

    #[test]
    fn a_result_for_another_value_is_stale() {
        let t0 = t("2026-06-01T00:00:00Z");
        let found = record(None, &rec(), &Lookup::Found, t0, schedule(), UID);
        let d = dv(Some(("_siths.region.se", "new-token")), Some(found.clone()));
        assert_eq!(state(&d, t0), DnsCheck::Pending);
        assert!(due(&d, t0));
        // Nor does its answer carry over through a failure.
        let other = DnsTxtRecord {
            value: "new-token".into(),
            ..rec()
        };
        let failed = record(
            Some(&found),
            &other,
            &Lookup::Failed("timed out".into()),
            t0,
            schedule(),
            UID,
        );
        assert_eq!(failed.result, None);
    }

    #[test]
    fn short_intervals_are_not_stretched_by_the_retry_caps() {
        let s = Schedule {
            interval: Duration::from_secs(3),
            grace: Duration::from_secs(600),
        };
        let now = t("2026-06-01T00:00:00Z");
        for outcome in [
            Lookup::Found,
            Lookup::Missing,
            Lookup::Failed("timed out".into()),
        ] {
            let next = next_check(&outcome, now, s, UID);
            assert!(next.duration_since(now).as_secs_f64() <= 3.3, "{outcome:?}");
        }
    }

    #[test]
    fn condition_names_the_outcome() {
        let t0 = t("2026-06-01T00:00:00Z");
        let mismatch = record(
            None,
            &rec(),
            &Lookup::Mismatch(vec!["old".into()]),
            t0,
            schedule(),
            UID,
        );
        let d = dv(Some(("_siths.region.se", "token")), Some(mismatch));
        let (ok, reason, message) = condition(&d, t0).unwrap();
        assert!(!ok);
        assert_eq!(reason, dns::MISMATCH);
        assert!(message.contains("old"), "{message}");
    }
}
