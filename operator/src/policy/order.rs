//! The phases of a `CertificateOrder`, as a pure state machine.
//!
//! ```text
//!           (new) ──approval required──> PendingApproval ──approved──> Approved
//!             │                               │ denied                   │
//!             └──────no approval─────> Approved  └────────> Denied        │
//!                                         │                               │
//!                      nothing obtained yet v                              │
//!                              AwaitingCertificate <──────────────────────┘
//!                                         │ a certificate (imported, or signed by the local CA)
//!                           accepted ──> Issued        refused ──> Failed ──(a new one)──> ...
//! ```
//!
//! [`approve`] decides the approval half from the order and its issuer; when the phase then
//! wants a certificate ([`wants_certificate`]) the controller obtains one (the person's
//! import, or the local CA's signature) and checks it ([`crate::pki::check_issued`]), and
//! [`settle`] decides what that means. Both return an [`OrderStep`]: the order's new
//! phase and status, the certificate's `Issuing` condition, the events, and whether the
//! one write (key and certificate into the Secret) happens.

use crate::{
    api::{ApprovalDecision, OrderApproval, OrderPhase},
    vocabulary::{Notice, action, reason},
};

/// What the state machine knows of an order and its issuer.
#[derive(Debug, Clone)]
pub struct OrderFacts<'a> {
    /// The order's name.
    pub name: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// The certificate revision it is for.
    pub revision: u32,
    /// Its estimated cost, SEK.
    pub cost_sek: u32,
    /// The Secret the certificate goes to.
    pub secret_name: &'a str,
    /// `status.phase` (`None`: a new order).
    pub phase: Option<OrderPhase>,
    /// `spec.approval`.
    pub approval: Option<&'a OrderApproval>,
    /// Whether the issuer requires approval.
    pub approval_required: bool,
    /// The issuer's instructions for the person who submits the CSR
    /// (`backend.manual.instructions`).
    pub instructions: Option<&'a str>,
    /// `status.reason` and `status.message` as they are (the refusal of a Failed order).
    pub last_refusal: Option<(&'a str, &'a str)>,
}

/// Which object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The CertificateOrder.
    Order,
    /// The ServiceCertificate.
    Certificate,
}

/// An event to publish, and on which object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Which object.
    pub on: Subject,
    /// What it says.
    pub notice: Notice<'static>,
}

/// A condition of the certificate to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionChange {
    /// True or False.
    pub ok: bool,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
}

/// What one step of the machine decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderStep {
    /// The order's new phase.
    pub phase: Option<OrderPhase>,
    /// The order's `status.reason`, when it changes.
    pub reason: Option<String>,
    /// The order's `status.message`, when it changes.
    pub message: Option<String>,
    /// The order's `status.approved` record, when approval happened now.
    pub approved: Option<String>,
    /// The certificate's `Issuing` condition, when it changes.
    pub issuing: Option<ConditionChange>,
    /// Events, in order.
    pub events: Vec<Announcement>,
    /// The accepted certificate is written to the Secret (with its key).
    pub write_secret: bool,
    /// A refused certificate counts as a failed attempt (backoff).
    pub failed: bool,
}

/// The approval half: the phase after approval, denial or neither, and what to say.
pub fn approve(f: &OrderFacts<'_>) -> OrderStep {
    let mut step = OrderStep {
        phase: f.phase,
        ..Default::default()
    };
    let decision = f.approval.map(|a| a.decision);
    if step.phase.is_none() {
        step.phase = Some(if f.approval_required {
            OrderPhase::PendingApproval
        } else {
            OrderPhase::Approved
        });
        if f.approval_required {
            let note = format!(
                "CertificateOrder {} waits for approval (estimated cost {} SEK): sithsctl orders approve -n {} {}",
                f.name, f.cost_sek, f.namespace, f.name
            );
            for on in [Subject::Order, Subject::Certificate] {
                step.events.push(Announcement {
                    on,
                    notice: Notice::normal(
                        reason::WAITING_FOR_APPROVAL,
                        action::APPROVE,
                        note.clone(),
                    ),
                });
            }
        }
    }
    let by = f.approval.map(|a| a.by.as_str()).unwrap_or("?");
    if decision == Some(ApprovalDecision::Denied)
        && !matches!(step.phase, Some(OrderPhase::Issued | OrderPhase::Denied))
    {
        step.phase = Some(OrderPhase::Denied);
        step.reason = Some("Denied".into());
        step.message = Some(format!("denied by {by}"));
        step.events.push(Announcement {
            on: Subject::Certificate,
            notice: Notice::warning(
                reason::ORDER_DENIED,
                action::APPROVE,
                format!("CertificateOrder {} was denied by {by}", f.name),
            ),
        });
    }
    if step.phase == Some(OrderPhase::PendingApproval)
        && decision == Some(ApprovalDecision::Approved)
    {
        step.approved = f.approval.map(|a| format!("{} by {}", a.at, a.by));
        step.phase = Some(OrderPhase::Approved);
        step.events.push(Announcement {
            on: Subject::Certificate,
            notice: Notice::normal(
                reason::ORDER_APPROVED,
                action::APPROVE,
                format!("CertificateOrder {} approved by {by}", f.name),
            ),
        });
    }
    match step.phase {
        Some(OrderPhase::PendingApproval) => {
            step.reason = Some(reason::WAITING_FOR_APPROVAL.into());
            step.message = Some(format!(
                "approve with: sithsctl orders approve -n {} {}",
                f.namespace, f.name
            ));
            step.issuing = Some(ConditionChange {
                ok: true,
                reason: reason::WAITING_FOR_APPROVAL.into(),
                message: format!("CertificateOrder {} waits for approval", f.name),
            });
        }
        Some(OrderPhase::Denied) => {
            step.issuing = Some(ConditionChange {
                ok: false,
                reason: reason::ORDER_DENIED.into(),
                message: format!(
                    "CertificateOrder {} was denied; no certificate is issued for revision {}",
                    f.name, f.revision
                ),
            });
        }
        _ => {}
    }
    step
}

/// Whether an order is signed in the pass that places it: an automatic backend (the local
/// CA) with no approval to wait for. Such a pass needs no staged key: it signs at once and
/// writes key and certificate to the Secret in one write, then records the order (see
/// `docs/architecture.md`). Every other order waits (for a person, an approval or a
/// portal), so its key is stored in a staged Secret before the CSR exists.
pub fn signs_at_once(automatic_backend: bool, approval_required: bool) -> bool {
    automatic_backend && !approval_required
}

/// Whether an order in `phase` counts in the issuer's estimated spend: every order except
/// a denied one. A refused import was still paid for (the order passed approval before
/// a certificate could come back), and a pending one is committed.
pub fn counts_in_spend(phase: Option<OrderPhase>) -> bool {
    phase != Some(OrderPhase::Denied)
}

/// Whether an order in `phase` still waits for someone: approval, the certificate, or a
/// corrected import after a refusal.
pub fn is_pending(phase: Option<OrderPhase>) -> bool {
    matches!(
        phase,
        None | Some(
            OrderPhase::PendingApproval
                | OrderPhase::Approved
                | OrderPhase::AwaitingCertificate
                | OrderPhase::Failed
        )
    )
}

/// Whether the certificate imported into an order is checked in this pass: a new one
/// always; the one already checked again only when the order did not refuse it, or when a
/// person asked for a check after the last one (a refusal whose cause is gone, such as
/// anchors fixed or a certificate that has become valid, is recoverable without a new paid
/// order). Otherwise a refused import is not checked pass after pass.
pub fn should_check(
    imported_sha256: &str,
    checked_sha256: Option<&str>,
    phase: Option<OrderPhase>,
    requested_at: Option<jiff::Timestamp>,
    checked_at: Option<jiff::Timestamp>,
) -> bool {
    checked_sha256 != Some(imported_sha256)
        || phase != Some(OrderPhase::Failed)
        || requested_at.is_some_and(|r| checked_at.is_none_or(|c| r > c))
}

/// Whether an order in `phase` looks for a certificate now.
pub fn wants_certificate(phase: Option<OrderPhase>) -> bool {
    matches!(
        phase,
        Some(OrderPhase::Approved | OrderPhase::AwaitingCertificate | OrderPhase::Failed)
    )
}

/// What the controller obtained for an order that wants a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obtained {
    /// Nothing yet: no import, or the same bytes that were already refused.
    Nothing,
    /// A certificate that passed the check.
    Accepted {
        /// Its serial number (hex).
        serial: String,
        /// Its notAfter, as written to status.
        not_after: String,
    },
    /// A certificate that the check refused.
    Rejected {
        /// The refusal's reason.
        reason: &'static str,
        /// The refusal's message.
        message: String,
    },
}

/// The certificate half: what the obtained certificate (or its absence) means for an order
/// in `step.phase` after [`approve`].
pub fn settle(f: &OrderFacts<'_>, mut step: OrderStep, obtained: Obtained) -> OrderStep {
    match obtained {
        Obtained::Nothing => {
            if step.phase != Some(OrderPhase::Failed) {
                step.phase = Some(OrderPhase::AwaitingCertificate);
                let message = format!(
                    "submit the CSR (sithsctl orders export-csr -n {ns} {o}) {how}, then import the signed certificate (sithsctl orders import -n {ns} {o} -f cert.pem)",
                    ns = f.namespace,
                    o = f.name,
                    how = match f.instructions {
                        Some(i) => format!("as the issuer says ({})", i.trim_end_matches('.')),
                        None => "through Inera's portal".into(),
                    }
                );
                step.reason = Some(reason::AWAITING_CERTIFICATE.into());
                step.message = Some(message.clone());
                step.issuing = Some(ConditionChange {
                    ok: true,
                    reason: reason::AWAITING_CERTIFICATE.into(),
                    message,
                });
            } else if let Some((why, message)) = f.last_refusal {
                // Still refused: say so, whatever else this pass found (a renewal that is
                // due must not hide why the new certificate is not in place).
                step.issuing = Some(ConditionChange {
                    ok: false,
                    reason: why.into(),
                    message: format!(
                        "the certificate imported into CertificateOrder {} was refused: {message}; import a corrected one",
                        f.name
                    ),
                });
            }
        }
        Obtained::Accepted { serial, .. } => {
            step.phase = Some(OrderPhase::Issued);
            step.reason = Some(reason::ISSUED.into());
            step.message = Some(format!(
                "certificate serial {serial} accepted and written to Secret {}",
                f.secret_name
            ));
            step.issuing = Some(ConditionChange {
                ok: false,
                reason: reason::UP_TO_DATE.into(),
                message: "no issuance needed".into(),
            });
            step.write_secret = true;
        }
        Obtained::Rejected {
            reason: why,
            message,
        } => {
            step.phase = Some(OrderPhase::Failed);
            step.reason = Some(why.into());
            step.message = Some(message.clone());
            step.failed = true;
            let note = format!(
                "the certificate for CertificateOrder {} was rejected ({why}): {message}; the Secret is unchanged",
                f.name
            );
            step.issuing = Some(ConditionChange {
                ok: false,
                reason: why.into(),
                message: note.clone(),
            });
            for on in [Subject::Order, Subject::Certificate] {
                step.events.push(Announcement {
                    on,
                    notice: Notice::warning(
                        reason::CERTIFICATE_REJECTED,
                        action::IMPORT,
                        note.clone(),
                    ),
                });
            }
        }
    }
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(decision: ApprovalDecision) -> OrderApproval {
        OrderApproval {
            decision,
            by: "anna".into(),
            at: "2026-12-01T10:00:00Z".into(),
            reason: None,
        }
    }

    fn facts(
        phase: Option<OrderPhase>,
        approval: Option<&OrderApproval>,
        required: bool,
    ) -> OrderFacts<'_> {
        OrderFacts {
            name: "api-1",
            namespace: "team",
            revision: 1,
            cost_sek: 3500,
            secret_name: "api-tls",
            phase,
            approval,
            approval_required: required,
            instructions: None,
            last_refusal: None,
        }
    }

    fn reasons(step: &OrderStep) -> Vec<(Subject, &'static str)> {
        step.events
            .iter()
            .map(|e| (e.on, e.notice.reason))
            .collect()
    }

    #[test]
    fn spend_counts_every_order_but_a_denied_one_and_a_refused_one_stays_pending() {
        use OrderPhase::*;
        for phase in [
            None,
            Some(PendingApproval),
            Some(Approved),
            Some(AwaitingCertificate),
            Some(Failed),
            Some(Issued),
        ] {
            assert!(counts_in_spend(phase), "{phase:?}");
        }
        assert!(!counts_in_spend(Some(Denied)));
        for phase in [
            None,
            Some(PendingApproval),
            Some(Approved),
            Some(AwaitingCertificate),
            Some(Failed),
        ] {
            assert!(is_pending(phase), "{phase:?}");
        }
        assert!(!is_pending(Some(Issued)) && !is_pending(Some(Denied)));
    }

    #[test]
    fn a_refused_import_is_checked_again_only_when_new_or_asked_for() {
        use OrderPhase::*;
        let t = |s: i64| Some(jiff::Timestamp::from_second(1_800_000_000 + s).unwrap());
        // A new certificate, or one the order has not refused: checked.
        assert!(should_check("b", Some("a"), Some(Failed), None, t(0)));
        assert!(should_check(
            "a",
            Some("a"),
            Some(AwaitingCertificate),
            None,
            t(0)
        ));
        assert!(should_check("a", None, Some(Approved), None, None));
        // The same refused bytes: not again, pass after pass...
        assert!(!should_check("a", Some("a"), Some(Failed), None, t(0)));
        assert!(!should_check("a", Some("a"), Some(Failed), t(-5), t(0)));
        // ...until a person imports them again after the last check.
        assert!(should_check("a", Some("a"), Some(Failed), t(5), t(0)));
        assert!(should_check("a", Some("a"), Some(Failed), t(5), None));
    }

    #[test]
    fn a_new_order_waits_for_approval_where_required() {
        let step = approve(&facts(None, None, true));
        assert_eq!(step.phase, Some(OrderPhase::PendingApproval));
        assert_eq!(step.reason.as_deref(), Some("WaitingForApproval"));
        assert_eq!(
            reasons(&step),
            [
                (Subject::Order, "WaitingForApproval"),
                (Subject::Certificate, "WaitingForApproval")
            ]
        );
        assert!(step.events[0].notice.note.contains("3500 SEK"));
        assert!(step.issuing.as_ref().unwrap().ok);
        assert!(!wants_certificate(step.phase));
        // Waiting again: no new announcement.
        let again = approve(&facts(Some(OrderPhase::PendingApproval), None, true));
        assert!(again.events.is_empty());
        assert_eq!(again.phase, Some(OrderPhase::PendingApproval));
    }

    #[test]
    fn a_new_order_without_approval_goes_straight_on() {
        let step = approve(&facts(None, None, false));
        assert_eq!(step.phase, Some(OrderPhase::Approved));
        assert!(step.events.is_empty());
        assert!(wants_certificate(step.phase));
    }

    #[test]
    fn approval_moves_a_pending_order_on_once() {
        let a = approval(ApprovalDecision::Approved);
        let step = approve(&facts(Some(OrderPhase::PendingApproval), Some(&a), true));
        assert_eq!(step.phase, Some(OrderPhase::Approved));
        assert_eq!(
            step.approved.as_deref(),
            Some("2026-12-01T10:00:00Z by anna")
        );
        assert_eq!(reasons(&step), [(Subject::Certificate, "OrderApproved")]);
        // Already approved: nothing new is recorded or announced.
        let later = approve(&facts(
            Some(OrderPhase::AwaitingCertificate),
            Some(&a),
            true,
        ));
        assert_eq!(later.phase, Some(OrderPhase::AwaitingCertificate));
        assert!(later.events.is_empty() && later.approved.is_none());
    }

    #[test]
    fn denial_ends_the_order_unless_it_was_issued() {
        let d = approval(ApprovalDecision::Denied);
        for phase in [
            Some(OrderPhase::PendingApproval),
            Some(OrderPhase::AwaitingCertificate),
            Some(OrderPhase::Failed),
        ] {
            let step = approve(&facts(phase, Some(&d), true));
            assert_eq!(step.phase, Some(OrderPhase::Denied), "{phase:?}");
            assert_eq!(step.message.as_deref(), Some("denied by anna"));
            assert_eq!(reasons(&step), [(Subject::Certificate, "OrderDenied")]);
            assert_eq!(step.issuing.as_ref().unwrap().reason, "OrderDenied");
            assert!(!wants_certificate(step.phase));
        }
        // A denial after issuance changes nothing; a denied order stays denied quietly.
        let issued = approve(&facts(Some(OrderPhase::Issued), Some(&d), true));
        assert_eq!(issued.phase, Some(OrderPhase::Issued));
        assert!(issued.events.is_empty());
        let denied = approve(&facts(Some(OrderPhase::Denied), Some(&d), true));
        assert!(denied.events.is_empty());
    }

    #[test]
    fn approval_withdrawn_after_approval_does_not_undo_it() {
        // The decision was recorded in status when it happened; removing spec.approval later
        // neither re-asks nor stops the order.
        let step = approve(&facts(Some(OrderPhase::AwaitingCertificate), None, true));
        assert_eq!(step.phase, Some(OrderPhase::AwaitingCertificate));
        assert!(step.events.is_empty());
        assert!(wants_certificate(step.phase));
    }

    #[test]
    fn nothing_imported_yet_asks_for_the_certificate_with_the_issuers_instructions() {
        let f = facts(Some(OrderPhase::Approved), None, false);
        let step = settle(&f, approve(&f), Obtained::Nothing);
        assert_eq!(step.phase, Some(OrderPhase::AwaitingCertificate));
        let msg = step.message.clone().unwrap();
        assert!(
            msg.contains("Inera's portal") && msg.contains("export-csr -n team api-1"),
            "{msg}"
        );
        let mut with = f.clone();
        with.instructions = Some("Use the SITHS eTjänst portal, account 4711.");
        let step = settle(&with, approve(&with), Obtained::Nothing);
        assert!(step.message.unwrap().contains("account 4711"));
        // A refused order waits for a new import, quietly, and keeps saying why.
        let mut failed = facts(Some(OrderPhase::Failed), None, false);
        failed.last_refusal = Some(("UntrustedChain", "the chain does not verify"));
        let step = settle(&failed, approve(&failed), Obtained::Nothing);
        assert_eq!(step.phase, Some(OrderPhase::Failed));
        assert!(step.events.is_empty());
        let issuing = step.issuing.unwrap();
        assert_eq!(
            (issuing.ok, issuing.reason.as_str()),
            (false, "UntrustedChain")
        );
        assert!(
            issuing.message.contains("does not verify"),
            "{}",
            issuing.message
        );
    }

    #[test]
    fn an_accepted_certificate_is_the_one_write() {
        for phase in [
            OrderPhase::Approved,
            OrderPhase::AwaitingCertificate,
            OrderPhase::Failed,
        ] {
            let f = facts(Some(phase), None, false);
            let step = settle(
                &f,
                approve(&f),
                Obtained::Accepted {
                    serial: "0a1b".into(),
                    not_after: "2027-12-01T00:00:00Z".into(),
                },
            );
            assert_eq!(step.phase, Some(OrderPhase::Issued));
            assert!(step.write_secret && !step.failed);
            assert!(step.message.as_deref().unwrap().contains("0a1b"));
            assert_eq!(step.issuing.as_ref().unwrap().reason, "UpToDate");
        }
    }

    #[test]
    fn a_refused_certificate_fails_the_order_with_its_reason_and_writes_nothing() {
        for why in [
            "UntrustedChain",
            "KeyMismatch",
            "NamesMismatch",
            "HsaIdMismatch",
            "NotYetValid",
            "Expired",
        ] {
            let f = facts(Some(OrderPhase::AwaitingCertificate), None, false);
            let step = settle(
                &f,
                approve(&f),
                Obtained::Rejected {
                    reason: why,
                    message: "details".into(),
                },
            );
            assert_eq!(step.phase, Some(OrderPhase::Failed));
            assert_eq!(step.reason.as_deref(), Some(why));
            assert!(step.failed && !step.write_secret);
            assert_eq!(step.issuing.as_ref().unwrap().reason, why);
            assert_eq!(
                reasons(&step),
                [
                    (Subject::Order, "CertificateRejected"),
                    (Subject::Certificate, "CertificateRejected")
                ]
            );
            assert!(
                step.events[0]
                    .notice
                    .note
                    .contains("the Secret is unchanged")
            );
        }
    }

    #[test]
    fn only_an_automatic_backend_without_approval_signs_at_once() {
        assert!(super::signs_at_once(true, false));
        assert!(!super::signs_at_once(true, true), "approval first");
        assert!(!super::signs_at_once(false, false), "a person signs");
        assert!(!super::signs_at_once(false, true));
    }
}
