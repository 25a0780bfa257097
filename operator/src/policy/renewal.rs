//! When a certificate renews.
//!
//! SITHS orders take weeks (a person submits the CSR through Inera's portal), so SITHS
//! certificates renew at least the issuer's lead time plus a margin before expiry. Public
//! certificates renew at two thirds of their lifetime, as ACME clients commonly do. Every
//! renewal is moved earlier by a jitter derived from the object's UID, so certificates that
//! expire together (a migration issues hundreds at once) do not renew in the same minute.
//!
//! Whatever the inputs, the renewal lies strictly inside the certificate's lifetime and no
//! earlier than about 28 % into it, so a short-lived certificate (a test certificate of a
//! few minutes) renews before it expires without renewing again the moment it arrives.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::routing::Route;
use super::{add_saturating, stable_hash};

/// Margin added to the lead time of SITHS certificates, for a CSR that sits in someone's
/// inbox or a certificate that comes back wrong.
pub const SITHS_MARGIN: SignedDuration = SignedDuration::from_hours(14 * 24);
/// Largest renewal jitter.
pub const MAX_JITTER: SignedDuration = SignedDuration::from_hours(72);
/// The jitter window is the lifetime divided by this (5 %), up to [`MAX_JITTER`].
const JITTER_LIFETIME_DIVISOR: i128 = 20;

/// Inputs of [`renewal_time`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalInput<'a> {
    /// Start of validity of the current certificate.
    pub not_before: Timestamp,
    /// End of validity of the current certificate.
    pub not_after: Timestamp,
    /// The certificate's `renewBefore`, parsed with [`parse_renew_before`].
    pub renew_before: Option<SignedDuration>,
    /// Time between placing an order and receiving the certificate (the issuer's lead
    /// time; zero for ACME and local CAs).
    pub lead_time: SignedDuration,
    /// Which PKI the certificate comes from.
    pub kind: Route,
    /// UID of the ServiceCertificate: the seed of the jitter.
    pub uid: &'a str,
}

/// A renewal time with what went into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalPlan {
    /// When renewal starts.
    pub at: Timestamp,
    /// How long before expiry renewal starts, jitter included.
    pub before_expiry: SignedDuration,
    /// The part of `before_expiry` that is jitter.
    pub jitter: SignedDuration,
    /// False when the lifetime is too short to start the lead time before expiry: the
    /// certificate will expire before its successor arrives unless the order is fast.
    /// Worth a warning event, since the certificate will lapse.
    pub lead_time_fits: bool,
}

/// When renewal of a certificate starts. See [`renewal_plan`].
pub fn renewal_time(input: &RenewalInput<'_>) -> Timestamp {
    renewal_plan(input).at
}

/// When renewal starts and why.
///
/// - SITHS: `max(renewBefore, lead time + margin)` before expiry, where the margin is
///   [`SITHS_MARGIN`] but at most a third of the lifetime.
/// - Public: `max(renewBefore, lead time, lifetime / 3)` before expiry, that is at two
///   thirds of the lifetime unless asked earlier.
///
/// Either way at most two thirds of the lifetime before expiry: a larger `renewBefore` or
/// lead time cannot be honoured (renewing at issuance would loop, and for SITHS place a
/// paid order every reconcile), and `lead_time_fits` reports it. Then the jitter, uniform
/// over `[0, min(lifetime / 20, 72 h))` and fixed per UID, moves the time earlier (never
/// later, so the lead time is never eaten into). A certificate whose `notAfter` is not after
/// its `notBefore` renews at once.
pub fn renewal_plan(input: &RenewalInput<'_>) -> RenewalPlan {
    let lifetime = input.not_after.duration_since(input.not_before).as_nanos();
    if lifetime <= 0 {
        return RenewalPlan {
            at: input.not_before.min(input.not_after),
            before_expiry: SignedDuration::ZERO,
            jitter: SignedDuration::ZERO,
            lead_time_fits: false,
        };
    }
    let lead_time = input.lead_time.as_nanos().max(0);
    let renew_before = input.renew_before.map_or(0, |d| d.as_nanos().max(0));
    let wanted = match input.kind {
        Route::Siths => {
            let margin = SITHS_MARGIN.as_nanos().min(lifetime / 3);
            renew_before.max(lead_time.saturating_add(margin))
        }
        Route::Public => renew_before.max(lead_time).max(lifetime / 3),
    };
    let before = wanted.min(lifetime * 2 / 3);
    let jitter = jitter_nanos(lifetime, input.uid);
    let before_expiry = SignedDuration::from_nanos_i128(before + jitter);
    RenewalPlan {
        at: add_saturating(input.not_after, -before_expiry),
        before_expiry,
        jitter: SignedDuration::from_nanos_i128(jitter),
        lead_time_fits: lead_time <= before,
    }
}

/// Jitter for a certificate of `lifetime` nanoseconds: uniform over the window, in whole
/// seconds when the window is at least a second (so status times read cleanly).
fn jitter_nanos(lifetime: i128, uid: &str) -> i128 {
    let window = (lifetime / JITTER_LIFETIME_DIVISOR).min(MAX_JITTER.as_nanos());
    let hash = i128::from(stable_hash("renewal-jitter", uid));
    const NANOS_PER_SEC: i128 = 1_000_000_000;
    if window >= NANOS_PER_SEC {
        (hash % (window / NANOS_PER_SEC)) * NANOS_PER_SEC
    } else if window > 0 {
        hash % window
    } else {
        0
    }
}

/// Why a `renewBefore` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "renewBefore {value:?} must be a whole number of days or hours from 1 to 99999, for example 30d or 720h"
)]
pub struct RenewBeforeError {
    /// The rejected value.
    pub value: String,
}

/// Parses `renewBefore`: `<n>d` (days of 24 h) or `<n>h`, `n` from 1 to 99999 without
/// leading zeros, the same grammar the CRD schema enforces.
pub fn parse_renew_before(value: &str) -> Result<SignedDuration, RenewBeforeError> {
    let error = || RenewBeforeError {
        value: value.to_string(),
    };
    let (number, hours_per_unit) = if let Some(n) = value.strip_suffix('d') {
        (n, 24)
    } else if let Some(n) = value.strip_suffix('h') {
        (n, 1)
    } else {
        return Err(error());
    };
    let well_formed = (1..=5).contains(&number.len())
        && !number.starts_with('0')
        && number.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(error());
    }
    let n: i64 = number.parse().map_err(|_| error())?;
    Ok(SignedDuration::from_hours(n * hours_per_unit))
}

/// Whether a person asked for a new revision (`sithsctl renew`) after the certificate now
/// in the Secret was written. `issued_at` is when the operator wrote it (or its notBefore
/// for an adopted certificate), so a request is answered by exactly one new revision.
pub fn renewal_requested(requested_at: Option<Timestamp>, issued_at: Timestamp) -> bool {
    requested_at.is_some_and(|r| r > issued_at)
}

/// Whether renewal should start now.
pub fn renewal_due(now: Timestamp, renewal_time: Timestamp) -> bool {
    now >= renewal_time
}

/// The renewal time inside a CA's suggested window (ACME Renewal Information, RFC 9773):
/// a point fixed per UID, spread uniformly over `[start, end)` as the RFC asks, so the
/// certificates of one window do not renew together. An empty or inverted window gives
/// its start.
pub fn renewal_in_window(start: Timestamp, end: Timestamp, uid: &str) -> Timestamp {
    let width = end.duration_since(start).as_nanos();
    if width <= 0 {
        return start;
    }
    let offset = i128::from(stable_hash("ari", uid)) % width;
    add_saturating(start, SignedDuration::from_nanos_i128(offset))
}

/// How long a controller can wait before looking again; zero when renewal is due.
pub fn time_until_renewal(now: Timestamp, renewal_time: Timestamp) -> Duration {
    if renewal_due(now, renewal_time) {
        Duration::ZERO
    } else {
        renewal_time.duration_since(now).unsigned_abs()
    }
}

#[cfg(test)]
mod ari_tests {
    use super::*;

    #[test]
    fn renewal_lands_inside_the_window_and_spreads() {
        let start: Timestamp = "2027-05-01T00:00:00Z".parse().unwrap();
        let end = start + SignedDuration::from_hours(48);
        let mut minutes = std::collections::HashSet::new();
        for i in 0..200 {
            let at = renewal_in_window(start, end, &format!("uid-{i}"));
            assert!(at >= start && at < end, "{at}");
            minutes.insert(at.as_second() / 60);
        }
        assert!(minutes.len() > 190, "{} distinct minutes", minutes.len());
        assert_eq!(renewal_in_window(start, start, "u"), start);
        assert_eq!(renewal_in_window(end, start, "u"), end);
        assert_eq!(
            renewal_in_window(start, end, "u"),
            renewal_in_window(start, end, "u")
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const DAY: SignedDuration = SignedDuration::from_hours(24);

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn days(n: i64) -> SignedDuration {
        SignedDuration::from_hours(24 * n)
    }

    fn siths(lifetime: SignedDuration, lead_time: SignedDuration, uid: &str) -> RenewalInput<'_> {
        let not_before = ts("2026-01-01T00:00:00Z");
        RenewalInput {
            not_before,
            not_after: not_before + lifetime,
            renew_before: None,
            lead_time,
            kind: Route::Siths,
            uid,
        }
    }

    /// A Kubernetes-style UID (UUID v4 layout), deterministic per index.
    fn uid(i: u32) -> String {
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            i.wrapping_mul(2_654_435_761),
            i % 0xffff,
            i % 0xfff,
            (i * 7) % 0xfff,
            u64::from(i) * 1_000_003
        )
    }

    #[test]
    fn siths_production_renews_lead_time_plus_margin_before_expiry() {
        let input = siths(days(398), days(28), "a");
        let plan = renewal_plan(&input);
        let lower = input.not_after - days(42) - MAX_JITTER;
        let upper = input.not_after - days(42);
        assert!(plan.at > lower && plan.at <= upper, "{plan:?}");
        assert_eq!(plan.before_expiry, days(42) + plan.jitter);
        assert!(plan.lead_time_fits);
        assert_eq!(plan.jitter.subsec_nanos(), 0, "whole seconds");
        assert_eq!(renewal_time(&input), plan.at);
        // Pinned: a change moves every certificate's renewal and rewrites every status.
        assert_eq!(plan.at, ts("2026-12-21T11:23:40Z"));
    }

    #[test]
    fn renew_before_only_moves_renewal_earlier_for_siths() {
        let mut input = siths(days(398), days(28), "a");
        input.renew_before = Some(days(7));
        let jitter = renewal_plan(&input).jitter;
        assert_eq!(renewal_plan(&input).before_expiry, days(42) + jitter);
        input.renew_before = Some(days(60));
        assert_eq!(renewal_plan(&input).before_expiry, days(60) + jitter);
    }

    #[test]
    fn jitter_is_deterministic_per_uid() {
        let a = renewal_time(&siths(days(398), days(28), "uid-a"));
        assert_eq!(a, renewal_time(&siths(days(398), days(28), "uid-a")));
        assert_ne!(a, renewal_time(&siths(days(398), days(28), "uid-b")));
    }

    #[test]
    fn ten_minute_certificate_renews_within_its_lifetime() {
        let lifetime = SignedDuration::from_mins(10);
        // Local CA: no lead time; the margin shrinks to a third of the lifetime (200 s),
        // the jitter window to 30 s.
        let input = siths(lifetime, SignedDuration::ZERO, "test-uid");
        let plan = renewal_plan(&input);
        assert!(
            plan.at > input.not_before && plan.at < input.not_after,
            "{plan:?}"
        );
        let upper = input.not_after - SignedDuration::from_secs(200);
        let lower = upper - SignedDuration::from_secs(30);
        assert!(plan.at > lower && plan.at <= upper, "{plan:?}");
        assert!(plan.lead_time_fits);

        // A 28-day lead time cannot fit: renewal is clamped to a third into the lifetime
        // (minus jitter), not at issuance, and the plan says so.
        let input = siths(lifetime, days(28), "test-uid");
        let plan = renewal_plan(&input);
        let upper = input.not_before + SignedDuration::from_secs(200);
        let lower = upper - SignedDuration::from_secs(30);
        assert!(plan.at > lower && plan.at <= upper, "{plan:?}");
        assert!(!plan.lead_time_fits);
    }

    #[test]
    fn every_lifetime_renews_strictly_inside_it() {
        for secs in [
            1,
            2,
            3,
            59,
            60,
            600,
            3_600,
            86_400,
            30 * 86_400,
            800 * 86_400,
        ] {
            for kind in [Route::Siths, Route::Public] {
                for i in 0..50 {
                    let u = uid(i);
                    let mut input = siths(SignedDuration::from_secs(secs), days(28), &u);
                    input.kind = kind;
                    input.renew_before = Some(days(i64::from(i) * 10));
                    let at = renewal_time(&input);
                    assert!(
                        at > input.not_before && at < input.not_after,
                        "{secs}s {kind:?} {u}: {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn public_renews_at_two_thirds_unless_asked_earlier() {
        let not_before = ts("2026-03-01T00:00:00Z");
        let mut input = RenewalInput {
            not_before,
            not_after: not_before + days(90),
            renew_before: None,
            lead_time: SignedDuration::ZERO,
            kind: Route::Public,
            uid: "pub",
        };
        let plan = renewal_plan(&input);
        assert_eq!(plan.before_expiry, days(30) + plan.jitter);
        assert!(plan.jitter >= SignedDuration::ZERO && plan.jitter < MAX_JITTER);

        input.renew_before = Some(days(45));
        assert_eq!(renewal_plan(&input).before_expiry, days(45) + plan.jitter);
        // A shorter renewBefore does not delay renewal past two thirds.
        input.renew_before = Some(days(10));
        assert_eq!(renewal_plan(&input).before_expiry, days(30) + plan.jitter);
        // Longer than two thirds of the lifetime: clamped.
        input.renew_before = Some(days(80));
        assert_eq!(renewal_plan(&input).before_expiry, days(60) + plan.jitter);
    }

    #[test]
    fn broken_lifetime_renews_at_once() {
        let t = ts("2026-01-01T00:00:00Z");
        let input = RenewalInput {
            not_before: t,
            not_after: t - DAY,
            renew_before: None,
            lead_time: days(28),
            kind: Route::Siths,
            uid: "x",
        };
        assert_eq!(renewal_time(&input), t - DAY);
    }

    /// 1 000 certificates with the same notAfter: no minute holds more than 2 % (20) of the
    /// renewals.
    fn assert_spread(lifetime: SignedDuration, lead_time: SignedDuration, kind: Route) {
        let not_before = ts("2026-01-01T00:00:00Z");
        let uids: Vec<String> = (0..1000).map(uid).collect();
        let mut per_minute: HashMap<i64, u32> = HashMap::new();
        for u in &uids {
            let at = renewal_time(&RenewalInput {
                not_before,
                not_after: not_before + lifetime,
                renew_before: None,
                lead_time,
                kind,
                uid: u,
            });
            *per_minute.entry(at.as_second().div_euclid(60)).or_default() += 1;
        }
        let busiest = per_minute.values().copied().max().unwrap();
        assert!(busiest <= 20, "{kind:?}: {busiest} renewals in one minute");
        // And they really spread over the window, not over a handful of minutes.
        let first = per_minute.keys().min().unwrap();
        let last = per_minute.keys().max().unwrap();
        assert!(
            last - first > 60 * 60,
            "{kind:?}: spread over only {} min",
            last - first
        );
        assert!(
            per_minute.len() > 700,
            "{kind:?}: {} distinct minutes",
            per_minute.len()
        );
    }

    #[test]
    fn jitter_spreads_1000_siths_certificates() {
        assert_spread(days(398), days(28), Route::Siths);
    }

    #[test]
    fn jitter_spreads_1000_public_certificates() {
        assert_spread(days(90), SignedDuration::ZERO, Route::Public);
    }

    #[test]
    fn parse_renew_before_accepts_days_and_hours() {
        assert_eq!(parse_renew_before("30d"), Ok(days(30)));
        assert_eq!(parse_renew_before("720h"), Ok(days(30)));
        assert_eq!(parse_renew_before("1h"), Ok(SignedDuration::from_hours(1)));
        assert_eq!(parse_renew_before("99999d"), Ok(days(99_999)));
        for bad in [
            "", "d", "0d", "030d", "30", "30m", "1.5d", "-3d", "100000h", " 30d", "30D",
        ] {
            assert_eq!(
                parse_renew_before(bad),
                Err(RenewBeforeError { value: bad.into() }),
                "{bad:?}"
            );
        }
        assert!(
            parse_renew_before("30m")
                .unwrap_err()
                .to_string()
                .contains("30d or 720h")
        );
    }

    #[test]
    fn renewal_due_from_the_renewal_time_on() {
        let at = ts("2026-05-01T12:00:00Z");
        assert!(!renewal_due(at - SignedDuration::from_secs(1), at));
        assert!(renewal_due(at, at));
        assert!(renewal_due(at + DAY, at));
        assert_eq!(
            time_until_renewal(at - SignedDuration::from_secs(90), at),
            Duration::from_secs(90)
        );
        assert_eq!(time_until_renewal(at + DAY, at), Duration::ZERO);
    }

    #[test]
    fn a_renewal_request_is_answered_once() {
        let issued: Timestamp = "2026-11-01T10:00:00Z".parse().unwrap();
        let before: Timestamp = "2026-11-01T09:00:00Z".parse().unwrap();
        let after: Timestamp = "2026-11-02T09:00:00Z".parse().unwrap();
        assert!(!renewal_requested(None, issued));
        assert!(!renewal_requested(Some(before), issued), "already answered");
        assert!(renewal_requested(Some(after), issued));
    }
}
