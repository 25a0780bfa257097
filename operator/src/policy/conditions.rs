//! Conditions computed from the old ones, so `lastTransitionTime` moves only on a real
//! transition and controllers can skip the status write when nothing changed.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::Condition;

/// Longest condition message the apiserver accepts.
pub const MAX_MESSAGE_LEN: usize = 32_768;

/// The condition a controller wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesiredCondition<'a> {
    /// Condition type, for example `Ready`.
    pub type_: &'a str,
    /// `True`, `False` or `Unknown` (see `crate::api::status`).
    pub status: &'a str,
    /// CamelCase reason.
    pub reason: &'a str,
    /// What holds or what to do; cut to [`MAX_MESSAGE_LEN`] bytes.
    pub message: &'a str,
    /// The generation the condition was computed from.
    pub observed_generation: Option<i64>,
}

/// Sets `desired` in `conditions` and returns whether anything changed.
///
/// An existing condition of the type keeps its `lastTransitionTime` unless its status
/// changes; a new one gets `now`. Other conditions and their order are kept; duplicates of
/// the type (which the apiserver should not allow) are dropped.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    desired: &DesiredCondition<'_>,
    now: Timestamp,
) -> bool {
    let message = truncate(desired.message, MAX_MESSAGE_LEN);
    let before = conditions.len();
    let mut seen = false;
    conditions.retain(|c| {
        let keep = c.type_ != desired.type_ || !seen;
        seen |= c.type_ == desired.type_;
        keep
    });
    let mut changed = conditions.len() != before;

    match conditions.iter_mut().find(|c| c.type_ == desired.type_) {
        Some(c) => {
            if c.status != desired.status {
                c.status = desired.status.to_string();
                c.last_transition_time = Time(now);
                changed = true;
            }
            if c.reason != desired.reason {
                c.reason = desired.reason.to_string();
                changed = true;
            }
            if c.message != message {
                c.message = message.to_string();
                changed = true;
            }
            if c.observed_generation != desired.observed_generation {
                c.observed_generation = desired.observed_generation;
                changed = true;
            }
        }
        None => {
            conditions.push(Condition {
                type_: desired.type_.to_string(),
                status: desired.status.to_string(),
                reason: desired.reason.to_string(),
                message: message.to_string(),
                observed_generation: desired.observed_generation,
                last_transition_time: Time(now),
            });
            changed = true;
        }
    }
    changed
}

/// [`set_condition`] on a copy of `old`: the new conditions and whether they differ.
pub fn with_condition(
    old: &[Condition],
    desired: &DesiredCondition<'_>,
    now: Timestamp,
) -> (Vec<Condition>, bool) {
    let mut conditions = old.to_vec();
    let changed = set_condition(&mut conditions, desired, now);
    (conditions, changed)
}

/// The condition of the given type, if any.
pub fn find_condition<'c>(conditions: &'c [Condition], type_: &str) -> Option<&'c Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of the given type is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == crate::api::status::TRUE)
}

/// The reason of the condition of the given type while it is `True`: a condition that
/// stays true keeps the reason it became true with (`Issued`, `Adopted`, `Verified`).
pub fn true_reason<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    find_condition(conditions, type_)
        .filter(|c| c.status == crate::api::status::TRUE)
        .map(|c| c.reason.as_str())
}

/// Where a ServiceCertificate stands, in one reason: `Ready`'s reason while it is `True`;
/// else the reason of `Issuing` while it is `True` (waiting for a person, renewing); else
/// `Ready`'s reason (the gate or failure that holds it back). `sithsctl plan` prints the
/// reason a certificate settles at by the same rule.
pub fn settled_reason(conditions: &[Condition]) -> Option<&str> {
    use crate::vocabulary::condition::{ISSUING, READY};
    true_reason(conditions, READY)
        .or_else(|| true_reason(conditions, ISSUING))
        .or_else(|| find_condition(conditions, READY).map(|c| c.reason.as_str()))
}

/// The `Ready` condition of a failed attempt, as a pass that failed leaves the conditions:
/// `Ready` and `Issuing` both `False` with the same reason (not the plain `Issuing` of a
/// pass about to order). A pass waiting out the backoff keeps it.
pub fn failed_attempt(conditions: &[Condition]) -> Option<&Condition> {
    use crate::{
        api::status::FALSE,
        vocabulary::{
            condition::{ISSUING, READY},
            reason,
        },
    };
    let ready = find_condition(conditions, READY)?;
    let issuing = find_condition(conditions, ISSUING)?;
    (ready.status == FALSE
        && issuing.status == FALSE
        && ready.reason == issuing.reason
        && ready.reason != reason::ISSUING)
        .then_some(ready)
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_attempt_is_told_apart_from_a_pass_about_to_order() {
        let t = Timestamp::UNIX_EPOCH;
        let conds = |pairs: &[(&str, &str, &str)]| {
            pairs.iter().fold(Vec::new(), |c, (type_, status, reason)| {
                with_condition(
                    &c,
                    &DesiredCondition {
                        type_,
                        status,
                        reason,
                        message: "m",
                        observed_generation: None,
                    },
                    t,
                )
                .0
            })
        };
        let failed = conds(&[
            ("Ready", "False", "AcmeDnsUpdateFailed"),
            ("Issuing", "False", "AcmeDnsUpdateFailed"),
        ]);
        assert_eq!(
            failed_attempt(&failed).map(|c| c.reason.as_str()),
            Some("AcmeDnsUpdateFailed")
        );
        // About to order, issued, or not yet looked at: no failure to keep.
        for pairs in [
            &[
                ("Ready", "False", "Issuing"),
                ("Issuing", "False", "Issuing"),
            ][..],
            &[
                ("Ready", "True", "Issued"),
                ("Issuing", "False", "UpToDate"),
            ][..],
            &[
                ("Ready", "False", "Issuing"),
                ("Issuing", "False", "AcmeDnsUpdateFailed"),
            ][..],
            &[][..],
        ] {
            assert!(failed_attempt(&conds(pairs)).is_none(), "{pairs:?}");
        }
    }

    #[test]
    fn the_settled_reason_prefers_ready_then_a_waiting_issuing() {
        let t = Timestamp::UNIX_EPOCH;
        let set = |c: Vec<Condition>, type_: &str, ok: bool, reason: &str| {
            with_condition(
                &c,
                &DesiredCondition {
                    type_,
                    status: if ok { "True" } else { "False" },
                    reason,
                    message: "",
                    observed_generation: None,
                },
                t,
            )
            .0
        };
        assert_eq!(settled_reason(&[]), None);
        let waiting = set(
            set(Vec::new(), "Ready", false, "Issuing"),
            "Issuing",
            true,
            "WaitingForApproval",
        );
        assert_eq!(settled_reason(&waiting), Some("WaitingForApproval"));
        let blocked = set(
            set(Vec::new(), "Ready", false, "SecretConflict"),
            "Issuing",
            false,
            "SecretConflict",
        );
        assert_eq!(settled_reason(&blocked), Some("SecretConflict"));
        let renewing = set(
            set(Vec::new(), "Ready", true, "Issued"),
            "Issuing",
            true,
            "Renewing",
        );
        assert_eq!(settled_reason(&renewing), Some("Issued"));
    }
    use crate::api::status::{FALSE, TRUE};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ready<'a>(status: &'a str, reason: &'a str, message: &'a str) -> DesiredCondition<'a> {
        DesiredCondition {
            type_: "Ready",
            status,
            reason,
            message,
            observed_generation: Some(1),
        }
    }

    #[test]
    fn new_condition_gets_now() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let (c, changed) = with_condition(&[], &ready(FALSE, "Pending", "waiting"), t0);
        assert!(changed);
        assert_eq!(
            c,
            vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: "Pending".into(),
                message: "waiting".into(),
                observed_generation: Some(1),
                last_transition_time: Time(t0),
            }]
        );
    }

    #[test]
    fn same_condition_is_no_change() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let (c, _) = with_condition(&[], &ready(TRUE, "Issued", "ok"), t0);
        let (c2, changed) =
            with_condition(&c, &ready(TRUE, "Issued", "ok"), ts("2026-01-02T00:00:00Z"));
        assert!(!changed);
        assert_eq!(c2, c);
    }

    #[test]
    fn reason_or_message_change_keeps_transition_time() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let t1 = ts("2026-01-02T00:00:00Z");
        let (c, _) = with_condition(&[], &ready(FALSE, "Pending", "waiting"), t0);
        let (c, changed) = with_condition(
            &c,
            &ready(FALSE, "AwaitingCertificate", "submit the CSR"),
            t1,
        );
        assert!(changed);
        assert_eq!(c[0].reason, "AwaitingCertificate");
        assert_eq!(c[0].message, "submit the CSR");
        assert_eq!(c[0].last_transition_time, Time(t0));

        let mut newer = ready(FALSE, "AwaitingCertificate", "submit the CSR");
        newer.observed_generation = Some(2);
        let (c, changed) = with_condition(&c, &newer, t1);
        assert!(changed);
        assert_eq!(c[0].observed_generation, Some(2));
        assert_eq!(c[0].last_transition_time, Time(t0));
    }

    #[test]
    fn status_change_moves_transition_time() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let t1 = ts("2026-01-02T00:00:00Z");
        let (c, _) = with_condition(&[], &ready(FALSE, "Pending", "waiting"), t0);
        let (c, changed) = with_condition(&c, &ready(TRUE, "Issued", "ok"), t1);
        assert!(changed);
        assert_eq!(c[0].status, "True");
        assert_eq!(c[0].last_transition_time, Time(t1));
        assert!(is_true(&c, "Ready"));
        assert!(!is_true(&c, "Issuing"));
    }

    #[test]
    fn other_conditions_and_order_are_kept() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let t1 = ts("2026-01-02T00:00:00Z");
        let mut c = Vec::new();
        set_condition(&mut c, &ready(FALSE, "Pending", "waiting"), t0);
        let issuing = DesiredCondition {
            type_: "Issuing",
            status: TRUE,
            reason: "Renewing",
            message: "renewal due",
            observed_generation: Some(1),
        };
        assert!(set_condition(&mut c, &issuing, t0));
        assert!(set_condition(&mut c, &ready(TRUE, "Issued", "ok"), t1));
        let types: Vec<&str> = c.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Issuing"]);
        assert_eq!(
            find_condition(&c, "Issuing").unwrap().last_transition_time,
            Time(t0)
        );
    }

    #[test]
    fn duplicates_are_dropped() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let (one, _) = with_condition(&[], &ready(TRUE, "Issued", "ok"), t0);
        let doubled = [one[0].clone(), one[0].clone()];
        let (c, changed) = with_condition(&doubled, &ready(TRUE, "Issued", "ok"), t0);
        assert!(changed);
        assert_eq!(c, one);
    }

    #[test]
    fn a_true_condition_keeps_its_reason_a_false_one_has_none() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let (c, _) = with_condition(&[], &ready(TRUE, "Issued", "ok"), t0);
        assert_eq!(true_reason(&c, "Ready"), Some("Issued"));
        assert_eq!(true_reason(&c, "Issuing"), None);
        let (c, _) = with_condition(&c, &ready("False", "Expired", "no"), t0);
        assert_eq!(true_reason(&c, "Ready"), None);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let long = "å".repeat(MAX_MESSAGE_LEN); // two bytes each
        let (c, _) = with_condition(&[], &ready(FALSE, "Failed", &long), t0);
        assert_eq!(c[0].message.len(), MAX_MESSAGE_LEN);
        // Setting the same long message again is no change.
        let (_, changed) = with_condition(&c, &ready(FALSE, "Failed", &long), t0);
        assert!(!changed);
    }
}
