//! The status a ServiceCertificate pass builds, and what both routes record in it.

use std::time::Duration;

use jiff::Timestamp;

use super::Context;
use crate::{
    api::{ServiceCertificate, ServiceCertificateStatus, status},
    pki,
    policy::{
        conditions::{DesiredCondition, find_condition, set_condition},
        rfc3339,
    },
    vocabulary::{
        Notice, action,
        condition::{ISSUING, READY},
        reason,
    },
};

/// Longest a healthy certificate waits before it is looked at again: domain validations
/// expire by the day and tampering is caught by the Secret watch anyway.
pub(super) const MAX_REQUEUE: Duration = Duration::from_secs(6 * 3600);

/// The status being built by one reconcile.
pub(super) struct Status {
    pub(super) st: ServiceCertificateStatus,
    pub(super) generation: Option<i64>,
    pub(super) now: Timestamp,
}

impl Status {
    pub(super) fn set(&mut self, type_: &str, ok: bool, reason: &str, message: &str) {
        set_condition(
            &mut self.st.conditions,
            &DesiredCondition {
                type_,
                status: if ok { status::TRUE } else { status::FALSE },
                reason,
                message,
                observed_generation: self.generation,
            },
            self.now,
        );
    }

    /// Records the certificate now in the Secret.
    pub(super) fn record(&mut self, leaf: &pki::CertInfo, renew_at: Timestamp, revision: u32) {
        self.st.revision = Some(revision);
        self.st.not_before = Some(rfc3339(leaf.not_before));
        self.st.not_after = Some(rfc3339(leaf.not_after));
        self.st.serial_number = Some(leaf.serial_hex.clone());
        self.st.issuer = Some(leaf.issuer.clone());
        self.st.renewal_time = Some(rfc3339(renew_at));
    }

    /// Failures are forgotten after an hour of health, so tampering that keeps coming
    /// back keeps backing off (a success alone does not reset the count).
    pub(super) fn forget_failures_when_quiet(&mut self) {
        let quiet = self
            .st
            .last_failure_time
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .is_none_or(|t| self.now.duration_since(t) > jiff::SignedDuration::from_hours(1));
        if quiet {
            self.st.failed_attempts = None;
            self.st.last_failure_time = None;
        }
    }

    pub(super) fn not_ready(&mut self, reason: &str, message: &str) {
        self.set(READY, false, reason, message);
        self.set(ISSUING, false, reason, message);
    }
}

/// A certificate that was Ready and whose Secret is now missing or wrong was tampered with
/// (or deleted): re-issuing counts as a failure, so repeated tampering backs off
/// exponentially instead of turning into a write loop.
pub(super) async fn count_tampering(
    ctx: &Context,
    cert: &ServiceCertificate,
    s: &mut Status,
    secret_exists: bool,
    message: &str,
) {
    let was_ready =
        find_condition(&s.st.conditions, READY).is_some_and(|c| c.status == status::TRUE);
    if !was_ready {
        return;
    }
    s.st.failed_attempts = Some(s.st.failed_attempts.unwrap_or(0).saturating_add(1));
    s.st.last_failure_time = Some(rfc3339(s.now));
    let reason = if secret_exists {
        reason::SECRET_TAMPERED
    } else {
        reason::SECRET_DELETED
    };
    ctx.event(
        cert,
        Notice::warning(reason, action::VERIFY, message.to_string()),
    )
    .await;
}
