//! `ServiceCertificate`: routing, the domain-validation gate, exactly-once orders, the
//! manual and local-CA backends, the Secret, adoption and renewal.
//!
//! The flow for a `ServerToServer` certificate on a `SithsIssuer`:
//! 1. gates: route, issuer, namespace, HSA-id, domain validation, Secret conflict;
//! 2. the Secret's certificate is checked against the spec; if it is current and not due
//!    for renewal, nothing is written;
//!    (a pass over a Secret unchanged since the last pass read or wrote it reuses that
//!    pass's conclusion without reading it: `checked_secrets`);
//! 3. otherwise revision `r + 1` is issued. An order that waits (for a person, an approval,
//!    a portal) has its key stored in a staged Secret before the CSR exists, then the
//!    `CertificateOrder` named after certificate and revision is created create-only, so
//!    no restart, retry or second replica can order twice. An issuer that signs at once
//!    (the local CA without approval) needs no staged key: the pass signs, writes key and
//!    certificate to the Secret in one write and then records the order; after a crash in
//!    between, the Secret holds the revision and the next pass records its order
//!    (`record_missing_order`), so every revision still has exactly one order;
//! 4. the order moves through approval and the backend; a returned certificate is checked
//!    (chain, key, names, HSA-id, validity) before it replaces key and certificate together.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::{Stream, StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ListParams, ObjectMeta},
    core::{DeserializeGuard, PartialObjectMeta, PartialObjectMetaExt as _},
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        reflector::{ObjectRef, Store, reflector, store::Writer},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use super::{
    Context, Error, IssuerCacheWriters, apply_status,
    cert_status::{MAX_REQUEUE, Status, count_tampering},
    certificate_secret::{
        adopt, cleanup_staged_keys, create_params, delete_ignoring_absent, labels, owner_reference,
        password_secret_names, secret_text, staged_key, write_secret,
    },
    checked_secrets::Checked,
    measured, now,
    shared_watch::SharedReaders,
    siths_issuer::{ResolvedBackend, ResolvedIssuer},
};
use crate::{
    api::{
        CertificateOrder, CertificateOrderSpec, CertificateOrderStatus, DomainValidation,
        IssuerKind, PublicIssuer, ServiceCertificate, SithsIssuer, status,
    },
    pki::{
        self, CertificateProfile, Expected, PrivateKey, TrustAnchors, Usage, build_csr,
        check_issued, parse_csr, sha256_fingerprint,
    },
    policy::{
        self,
        backoff::BackoffPolicy,
        conditions::{find_condition, true_reason},
        gates::{self, GateInput, IssuerFacts, IssuerState},
        issuers::IssuerProblem,
        names::{key_secret_name, order_name},
        order::{Obtained, OrderFacts},
        renewal::{
            RenewalInput, parse_renew_before, renewal_due, renewal_requested, renewal_time,
            time_until_renewal,
        },
        rfc3339,
        routing::Route,
    },
    vocabulary::{
        CERTIFICATE_LABEL, IMPORT_REQUESTED_KEY, ISSUED_AT_KEY, ISSUER_LABEL,
        KEYSTORE_PASSWORD_LABEL, Notice, RENEW_REQUESTED_KEY, REVISION_KEY, ROLE_LABEL, action,
        condition::{DOMAIN_VALIDATED, ISSUING, KEYSTORES, READY},
        reason,
    },
};

/// ServiceCertificate passes running at once; the others wait in the controller's queue.
const RECONCILE_CONCURRENCY: u16 = 16;

/// Reconciles one ServiceCertificate.
pub async fn reconcile(cert: Arc<ServiceCertificate>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = cert.namespace().ok_or(Error::Incomplete("namespace"))?;
    let api: Api<ServiceCertificate> = Api::namespaced(ctx.client.clone(), &ns);
    let key = format!("{ns}/{}", cert.name_any());
    let seen = |key: String, version: Option<String>| {
        let store = ctx.certificates();
        ctx.certificate_versions
            .saw(key, version, store.len(), |k| {
                k.split_once('/')
                    .is_some_and(|(ns, name)| store.get(&ObjectRef::new(name).within(ns)).is_some())
            });
    };
    // The cache has not caught up with a status this process wrote: start from the
    // current object, not from the stale copy.
    let cert = if ctx
        .certificate_versions
        .is_behind(&key, cert.resource_version().as_deref())
    {
        match api.get_opt(&cert.name_any()).await? {
            Some(fresh) => {
                seen(key.clone(), fresh.resource_version());
                Arc::new(fresh)
            }
            None => {
                ctx.certificate_versions.forget(&key);
                return Ok(Action::await_change());
            }
        }
    } else {
        cert
    };
    let mut s = Status {
        st: cert.status.clone().unwrap_or_default(),
        generation: cert.metadata.generation,
        now: now(),
    };
    s.st.observed_generation = cert.metadata.generation;
    let action = match process(&cert, &ns, &ctx, &mut s).await {
        // A key or certificate operation that failed on this input fails again on a
        // retry: say so in the status and look again later, without a tight error loop.
        Err(Error::Pki(e)) => {
            s.not_ready(reason::CERTIFICATE_OPERATION_FAILED, &e.to_string());
            Ok(Action::requeue(Duration::from_secs(300)))
        }
        other => other,
    };
    if let Some(version) = apply_status(&api, cert.as_ref(), cert.status.as_ref(), &s.st).await? {
        seen(key, Some(version));
    }
    action
}

/// A SithsIssuer and, when it can issue, its resolved connection.
type SithsGathered = (Arc<SithsIssuer>, Result<Arc<ResolvedIssuer>, IssuerProblem>);
/// A PublicIssuer and its additional test roots (or why they cannot be used).
type PublicGathered = (
    Arc<PublicIssuer>,
    Result<Option<TrustAnchors>, IssuerProblem>,
);

/// What a pass gathered about the certificate's issuer (`None`: it does not exist).
enum GatheredIssuer {
    /// The certificate names a SithsIssuer.
    Siths(Option<SithsGathered>),
    /// The certificate names a PublicIssuer.
    Public(Option<PublicGathered>),
}

/// Gathers what the gate chain needs: the issuer (from the cache, resolved), the namespace's
/// labels when the issuer limits namespaces, the validations and the certificates naming
/// the same Secret.
async fn gather(ctx: &Context, cert: &ServiceCertificate) -> Result<GatheredIssuer, Error> {
    let name = &cert.spec.issuer_ref.name;
    Ok(match cert.spec.issuer_ref.kind {
        IssuerKind::SithsIssuer => GatheredIssuer::Siths(match ctx.siths_issuer(name).await? {
            None => None,
            Some(obj) => {
                let resolved = ctx.resolved_issuer(&obj).await?;
                Some((obj, resolved))
            }
        }),
        IssuerKind::PublicIssuer => GatheredIssuer::Public(match ctx.public_issuer(name).await? {
            None => None,
            Some(obj) => {
                let additional = match &obj.spec.additional_trust_anchors {
                    None => Ok(None),
                    Some(r) => super::public_route::additional_anchors(ctx, r)
                        .await?
                        .map(Some)
                        .map_err(|m| IssuerProblem::new(reason::TRUST_ANCHORS_INVALID, m)),
                };
                Some((obj, additional))
            }
        }),
    })
}

impl GatheredIssuer {
    /// The issuer as the gate chain sees it.
    fn state(&self) -> IssuerState<'_> {
        match self {
            GatheredIssuer::Siths(None) | GatheredIssuer::Public(None) => IssuerState::Missing,
            GatheredIssuer::Siths(Some((_, Err(p))))
            | GatheredIssuer::Public(Some((_, Err(p)))) => IssuerState::NotReady(p.clone()),
            GatheredIssuer::Siths(Some((obj, Ok(_)))) => {
                IssuerState::Ready(IssuerFacts::siths(&obj.spec))
            }
            GatheredIssuer::Public(Some((obj, Ok(_)))) => {
                IssuerState::Ready(IssuerFacts::public(&obj.spec))
            }
        }
    }

    fn allowed_namespaces(
        &self,
    ) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector> {
        match self {
            GatheredIssuer::Siths(Some((obj, _))) => obj.spec.allowed_namespaces.as_ref(),
            GatheredIssuer::Public(Some((obj, _))) => obj.spec.allowed_namespaces.as_ref(),
            _ => None,
        }
    }
}

async fn process(
    cert: &ServiceCertificate,
    ns: &str,
    ctx: &Context,
    s: &mut Status,
) -> Result<Action, Error> {
    let spec = &cert.spec;
    // Gather.
    let issuer = gather(ctx, cert).await?;
    let labels = match issuer.allowed_namespaces() {
        Some(_) => namespace_labels(ctx, ns).await?,
        None => BTreeMap::new(),
    };
    let validations = ctx.validations().state();
    let validations: Vec<&DomainValidation> = validations.iter().map(AsRef::as_ref).collect();
    let same_secret = ctx.certificates_naming(ns, &spec.secret_name);
    let same_secret: Vec<&ServiceCertificate> = same_secret
        .iter()
        .map(AsRef::as_ref)
        // The pass's own copy may be fresher than the cache's.
        .filter(|c| c.metadata.name != cert.metadata.name)
        .chain(std::iter::once(cert))
        .collect();
    // Decide.
    let outcome = gates::evaluate(&GateInput {
        cert,
        issuer: issuer.state(),
        namespace_labels: &labels,
        validations: &validations,
        same_secret: &same_secret,
        now: s.now,
    });
    // Apply.
    let passed = match apply_gates(ctx, cert, s, outcome).await {
        Ok(passed) => passed,
        Err(action) => return Ok(action),
    };
    match issuer {
        GatheredIssuer::Public(Some((obj, Ok(additional)))) => {
            super::public_route::process(cert, ns, ctx, s, &obj, additional.as_ref(), passed.source)
                .await
        }
        GatheredIssuer::Siths(Some((obj, Ok(resolved)))) => {
            siths_route(cert, ns, ctx, s, &obj, &resolved).await
        }
        // The gates passed, so the issuer was there and ready.
        _ => Err(Error::Incomplete("issuer")),
    }
}

/// Writes what the gate chain decided into the status: the route, `DomainValidated`, and
/// for a blocked certificate `Ready=False` and `Issuing=False` with the gate's reason (an
/// event when the domain gate starts blocking). `Err` is the action of a blocked pass.
async fn apply_gates(
    ctx: &Context,
    cert: &ServiceCertificate,
    s: &mut Status,
    outcome: gates::GateOutcome,
) -> Result<gates::Passed, Action> {
    s.st.route = Some(outcome.route.into());
    let domain_was = find_condition(&s.st.conditions, DOMAIN_VALIDATED).map(|c| c.status.clone());
    if let Some(d) = &outcome.domain {
        s.set(DOMAIN_VALIDATED, d.covered, d.reason, &d.message);
    }
    match outcome.verdict {
        Ok(passed) => Ok(passed),
        Err(blocked) => {
            s.not_ready(blocked.reason, &blocked.message);
            if blocked.reason == reason::DOMAIN_NOT_VALIDATED
                && domain_was.as_deref() != Some(status::FALSE)
            {
                ctx.event(
                    cert,
                    Notice::warning(blocked.reason, action::GATE, blocked.message),
                )
                .await;
            }
            Err(match blocked.retry {
                gates::Retry::OnChange => Action::await_change(),
                gates::Retry::After(d) => Action::requeue(d),
            })
        }
    }
}

/// The SITHS route after the gates: the certificate in the Secret, renewal, and issuing
/// revision `r + 1` through an order.
async fn siths_route(
    cert: &ServiceCertificate,
    ns: &str,
    ctx: &Context,
    s: &mut Status,
    issuer_obj: &SithsIssuer,
    issuer: &Arc<ResolvedIssuer>,
) -> Result<Action, Error> {
    let spec = &cert.spec;
    let name = cert.name_any();
    // 7. What the Secret holds now. Unchanged since the last pass read or wrote it (the
    // same certificate generation, issuer and Secret version): that pass's conclusion
    // holds, and the Secret is not read again.
    // Taken before any password is read: a password changed after this moment has a new
    // version, and the next pass does not take this one's conclusion.
    let passwords = watched_passwords(ctx, ns, cert);
    if stores_in_place(cert, s)
        && s.st.current_order.is_none()
        && true_reason(&s.st.conditions, READY).is_some()
        && let Some(known) = last_check(ctx, cert, s, issuer, passwords.as_deref()).await
        && s.st.revision == Some(known.revision)
        && !renewal_due(s.now, known.renew_at)
        && !renewal_requested(renewal_request(cert), known.issued_at)
    {
        s.set(ISSUING, false, reason::UP_TO_DATE, "no issuance needed");
        s.forget_failures_when_quiet();
        return Ok(Action::requeue(
            time_until_renewal(s.now, known.renew_at).min(MAX_REQUEUE),
        ));
    }
    ctx.checked_secrets.forget(ns, &name);
    s.st.secret_check = None;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = secrets.get_opt(&spec.secret_name).await?;
    let current = current_certificate(cert, secret.as_ref(), issuer, s.now);
    let secret_revision = secret.as_ref().and_then(|sec| {
        sec.annotations()
            .get(REVISION_KEY)
            .and_then(|v| v.parse::<u32>().ok())
    });
    let uid = cert.uid().ok_or(Error::Incomplete("uid"))?;

    let renew_before = spec
        .renew_before
        .as_deref()
        .and_then(|v| parse_renew_before(v).ok());
    if let Ok(accepted) = &current {
        let leaf = &accepted.leaf;
        let mut revision = secret_revision.or(s.st.revision);
        if revision.is_none() {
            // Adoption: a matching certificate is already there; it costs nothing.
            adopt(&secrets, &spec.secret_name, &cert.name_any()).await?;
            revision = Some(1);
            ctx.event(cert, Notice::normal(reason::ADOPTED, action::ADOPT, format!(
                    "adopted the certificate already in Secret {} (serial {}, valid until {}); no order placed",
                    spec.secret_name, leaf.serial_hex, leaf.not_after
                )))
            .await;
        }
        let renew_at = renewal_time(&RenewalInput {
            not_before: leaf.not_before,
            not_after: leaf.not_after,
            renew_before,
            lead_time: issuer.lead_time,
            kind: Route::Siths,
            uid: &uid,
        });
        // The status lags the Secret after a crash between writing the Secret and the
        // status: then the staged key of that revision may still need removing.
        let finishing = s.st.revision != revision || s.st.current_order.is_some();
        s.record(leaf, renew_at, revision.unwrap_or(1));
        let ready_reason = true_reason(&s.st.conditions, READY)
            .map(str::to_string)
            .unwrap_or_else(|| {
                if secret_revision.is_none() {
                    reason::ADOPTED.into()
                } else {
                    reason::ISSUED.into()
                }
            });
        s.set(
            READY,
            true,
            &ready_reason,
            &ready_message(revision.unwrap_or(1), &spec.secret_name, leaf.not_after),
        );
        super::certificate_secret::sync_stores(ctx, cert, s, &secrets, secret.as_ref(), accepted)
            .await?;
        let issued_at = secret
            .as_ref()
            .and_then(|sec| sec.annotations().get(ISSUED_AT_KEY))
            .and_then(|t| t.parse::<Timestamp>().ok())
            .unwrap_or(leaf.not_before);
        let requested = renewal_request(cert);
        let asked = renewal_requested(requested, issued_at);
        if !renewal_due(s.now, renew_at) && !asked {
            s.set(ISSUING, false, reason::UP_TO_DATE, "no issuance needed");
            // Never list Secrets on an idle pass; only while finishing a revision.
            s.st.current_order = None;
            if finishing {
                cleanup_staged_keys(&secrets, &cert.name_any(), revision.unwrap_or(1)).await?;
                if let Some(sec) = &secret {
                    record_missing_order(cert, ns, ctx, issuer, issuer_obj, sec, accepted).await?;
                }
            }
            s.forget_failures_when_quiet();
            remember_checked(
                ctx,
                cert,
                s,
                issuer,
                secret.as_ref().and_then(|sec| sec.resource_version()),
                passwords,
                (revision.unwrap_or(1), renew_at, issued_at),
            );
            return Ok(Action::requeue(
                time_until_renewal(s.now, renew_at).min(MAX_REQUEUE),
            ));
        }
        let was = find_condition(&s.st.conditions, ISSUING).map(|c| c.reason.clone());
        // An issuer that signs at once announces the new revision once, when it is issued.
        let announce = !signs_now(issuer) && was.as_deref() != Some(reason::RENEWING);
        if asked && announce {
            ctx.event(cert, Notice::normal(reason::RENEWAL_REQUESTED, action::RENEW, format!(
                    "a new revision was requested at {}; the current certificate stays in place until the new one is accepted",
                    requested.map(rfc3339).unwrap_or_default()
                )))
            .await;
        } else if announce {
            ctx.event(cert, Notice::normal(reason::RENEWAL_DUE, action::RENEW, format!(
                    "renewal of revision {} is due (renewal time {renew_at}); the current certificate stays in place until the new one is accepted",
                    revision.unwrap_or(1)
                )))
            .await;
        }
        s.set(
            ISSUING,
            true,
            reason::RENEWING,
            "renewal is due; a new revision is being issued",
        );
    } else {
        let (reason, message) = match (&secret, &current) {
            (None, _) => (
                reason::ISSUING.to_string(),
                format!("Secret {} does not exist yet; issuing", spec.secret_name),
            ),
            (Some(_), Err(why)) => (
                reason::SECRET_MISMATCH.to_string(),
                format!(
                    "Secret {} does not hold a certificate for this spec ({why}); issuing a new one",
                    spec.secret_name
                ),
            ),
            _ => unreachable!("current is Err here"),
        };
        // A certificate that was Ready and is now missing or wrong was tampered with (or
        // deleted). Re-issuing counts as a failure, so repeated tampering backs off
        // exponentially instead of turning into a write loop.
        if secret_revision.or(s.st.revision).is_some() {
            count_tampering(ctx, cert, s, secret.is_some(), &message).await;
        }
        s.set(READY, false, &reason, &message);
    }

    // 8. Issue revision r + 1.
    let revision = secret_revision.or(s.st.revision).unwrap_or(0) + 1;
    issue(
        cert,
        ns,
        ctx,
        s,
        issuer,
        revision,
        &uid,
        issuer_obj,
        secret.as_ref(),
    )
    .await
}

/// Whether order `name` in `ns` may exist, so that it must be read before one is placed:
/// the status names it, or the orders' watch has not listed them yet, or it reported the
/// order. Only an order made in the last moments by someone else escapes this (the watch
/// has not reported it yet); its create then answers 409, which every placement handles.
fn order_may_exist(ctx: &Context, s: &Status, ns: &str, name: &str) -> bool {
    s.st.current_order.as_deref() == Some(name)
        || !ctx.order_versions.listed()
        || ctx.order_versions.version(ns, name).is_some()
}

/// Whether `issuer` signs an order in the pass that places it ([`policy::order::signs_at_once`]).
fn signs_now(issuer: &ResolvedIssuer) -> bool {
    policy::order::signs_at_once(
        matches!(issuer.backend, ResolvedBackend::LocalCa { .. }),
        issuer.approval_required,
    )
}

/// The watched versions of the certificate's key store password Secrets (empty without key
/// stores; `None` when one of them is not watched, for example without its label).
fn watched_passwords(ctx: &Context, ns: &str, cert: &ServiceCertificate) -> Option<Vec<String>> {
    password_secret_names(cert)
        .into_iter()
        .map(|name| ctx.password_versions.version(ns, name))
        .collect()
}

/// Whether the key stores the certificate asks for (if any) are in place: `Keystores=True`.
fn stores_in_place(cert: &ServiceCertificate, s: &Status) -> bool {
    cert.spec.keystores.is_none() || true_reason(&s.st.conditions, KEYSTORES).is_some()
}

/// The time of the certificate's last renewal request (its annotation), if any.
fn renewal_request(cert: &ServiceCertificate) -> Option<Timestamp> {
    cert.annotations()
        .get(RENEW_REQUESTED_KEY)
        .and_then(|t| t.parse::<Timestamp>().ok())
}

/// How long a pass of a certificate whose status holds a check of its Secret waits for the
/// Secrets' watch to list them after a start, before it reads its Secret instead.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(60);

/// The last conclusion about the certificate's Secret that still holds
/// ([`Checked::holds`]): this process's own, or, after a start, the one its status records
/// (then once the Secrets' watch has listed them, so that the Secret's version is known).
async fn last_check(
    ctx: &Context,
    cert: &ServiceCertificate,
    s: &Status,
    issuer: &ResolvedIssuer,
    passwords: Option<&[String]>,
) -> Option<Checked> {
    let ns = cert.namespace().unwrap_or_default();
    let name = cert.name_any();
    let secret = &cert.spec.secret_name;
    let generation = cert.metadata.generation;
    let watched = ctx.secret_versions.version(&ns, secret);
    if let Some(known) = ctx.checked_secrets.unchanged(
        &ns,
        &name,
        generation,
        &issuer.digest,
        watched.as_deref(),
        passwords,
    ) {
        return Some(known);
    }
    let recorded = Checked::from_status(&s.st)?;
    let watched = match watched {
        Some(v) => Some(v),
        None if !ctx.secret_versions.listed()
            && ctx.secret_versions.wait_listed(FIRST_LIST_WAIT).await =>
        {
            ctx.secret_versions.version(&ns, secret)
        }
        None => None,
    };
    recorded
        .holds(generation, &issuer.digest, watched.as_deref(), passwords)
        .then_some(recorded)
}

/// Remembers what this pass concluded from the certificate's Secret at `version`: the
/// revision it holds, its renewal time and when it was issued (see
/// [`super::checked_secrets`]). Nothing is remembered without a version, or while the key
/// stores the certificate asks for are not in place (`Keystores=True`), or when a password
/// Secret is not watched.
fn remember_checked(
    ctx: &Context,
    cert: &ServiceCertificate,
    s: &mut Status,
    issuer: &ResolvedIssuer,
    version: Option<String>,
    passwords: Option<Vec<String>>,
    (revision, renew_at, issued_at): (u32, Timestamp, Timestamp),
) {
    let Some(secret_version) = version else {
        return;
    };
    let (true, Some(passwords)) = (stores_in_place(cert, s), passwords) else {
        return;
    };
    let store = ctx.certificates();
    let checked = Checked {
        secret_version,
        generation: cert.metadata.generation,
        issuer_digest: issuer.digest.clone(),
        revision,
        renew_at,
        issued_at,
        passwords,
    };
    // Also in the status, for the next start (written with this pass's status, which
    // changes only when the Secret's version does). Not for a certificate with key stores:
    // a new password rebuilds its stores (a new Secret version) and must write nothing
    // else; its Secret is read once after a start, as before.
    s.st.secret_check = if cert.spec.keystores.is_none() {
        checked.to_status()
    } else {
        None
    };
    // When the cached object's status already records this very conclusion (every pass
    // after a restart, every later pass that finds nothing changed), that status is the
    // copy `last_check` reads: a second one in memory would cost some 300 bytes per
    // certificate (30 MiB at 100 000) and say nothing new.
    if cert.spec.keystores.is_none()
        && cert.status.as_ref().and_then(Checked::from_status).as_ref() == Some(&checked)
    {
        ctx.checked_secrets
            .forget(&cert.namespace().unwrap_or_default(), &cert.name_any());
        return;
    }
    ctx.checked_secrets.remember(
        &cert.namespace().unwrap_or_default(),
        &cert.name_any(),
        checked,
        store.len(),
        |k| {
            k.split_once('/')
                .is_some_and(|(ns, name)| store.get(&ObjectRef::new(name).within(ns)).is_some())
        },
    );
}

/// The order a revision is placed as: named after certificate and revision, owned by the
/// certificate, with the CSR `csr` and its estimated cost.
fn order_object(
    cert: &ServiceCertificate,
    ns: &str,
    issuer_obj: &SithsIssuer,
    revision: u32,
    csr: String,
    cost: u32,
) -> Result<CertificateOrder, Error> {
    let name = cert.name_any();
    let subject = parse_csr(&csr)?.subject;
    let mut meta_labels = labels(&name, "order");
    meta_labels.remove(ROLE_LABEL);
    meta_labels.insert(ISSUER_LABEL.into(), issuer_obj.name_any());
    meta_labels.insert(REVISION_KEY.into(), revision.to_string());
    Ok(CertificateOrder {
        metadata: ObjectMeta {
            name: Some(order_name(&name, revision)),
            namespace: Some(ns.into()),
            labels: Some(meta_labels),
            owner_references: Some(owner_reference(cert)),
            ..Default::default()
        },
        spec: CertificateOrderSpec {
            certificate_name: name,
            revision,
            issuer_name: issuer_obj.name_any(),
            dns_names: cert.spec.dns_names.clone(),
            hsa_id: cert.spec.hsa_id.clone(),
            subject,
            csr,
            estimated_cost_sek: cost,
            approval: None,
            certificate: None,
        },
        status: None,
    })
}

/// The CSR of a certificate's profile for `key`.
fn csr_for(
    cert: &ServiceCertificate,
    issuer: &ResolvedIssuer,
    key: &PrivateKey,
) -> Result<String, Error> {
    let profile = CertificateProfile {
        dns_names: cert.spec.dns_names.clone(),
        hsa_id: cert.spec.hsa_id.clone(),
        organization: issuer.organization.clone(),
        locality: issuer.locality.clone(),
        usage: Usage::ServerToServer,
    };
    Ok(build_csr(&profile, key)?)
}

/// An issuer that signs at once writes the Secret before it records the order (see
/// [`issue`]). After a crash between the two, the Secret holds the revision and no order
/// records it: record it now, once (create-only), from the key and certificate in the Secret.
async fn record_missing_order(
    cert: &ServiceCertificate,
    ns: &str,
    ctx: &Context,
    issuer: &ResolvedIssuer,
    issuer_obj: &SithsIssuer,
    secret: &Secret,
    accepted: &pki::Accepted,
) -> Result<(), Error> {
    // Only a revision the operator issued (not an adopted certificate), on an issuer that
    // signs at once (every other issuer's orders exist before their certificate).
    let issued = secret.annotations().contains_key(ISSUED_AT_KEY);
    let Some(revision) = secret
        .annotations()
        .get(REVISION_KEY)
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return Ok(());
    };
    if !issued || !signs_now(issuer) {
        return Ok(());
    }
    let orders: Api<CertificateOrder> = Api::namespaced(ctx.client.clone(), ns);
    let guarded: Api<DeserializeGuard<CertificateOrder>> = Api::namespaced(ctx.client.clone(), ns);
    if guarded
        .get_opt(&order_name(&cert.name_any(), revision))
        .await?
        .is_some()
    {
        return Ok(());
    }
    let key = secret_text(secret, "tls.key").ok_or(Error::Incomplete("tls.key"))?;
    let key = PrivateKey::from_pem(&key)?;
    let order = order_object(
        cert,
        ns,
        issuer_obj,
        revision,
        csr_for(cert, issuer, &key)?,
        policy::cost::order_cost_for_backend(
            false,
            issuer_obj.spec.environment,
            issuer_obj.spec.price_per_certificate_sek,
            0,
        ),
    )?;
    let created = match orders.create(&create_params(), &order).await {
        Ok(o) => o,
        Err(kube::Error::Api(e)) if e.code == 409 => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let message = format!(
        "certificate serial {} accepted and written to Secret {} (order recorded after a restart)",
        accepted.leaf.serial_hex, cert.spec.secret_name
    );
    let ost = CertificateOrderStatus {
        phase: Some(crate::api::OrderPhase::Issued),
        reason: Some(reason::ISSUED.into()),
        message: Some(message),
        serial_number: Some(accepted.leaf.serial_hex.clone()),
        not_after: Some(rfc3339(accepted.leaf.not_after)),
        ..Default::default()
    };
    apply_status(&orders, &created, None, &ost).await?;
    info!(order = %created.name_any(), revision, "order recorded for a revision already in its Secret");
    ctx.event(cert, Notice::normal(reason::ISSUED, action::ISSUE, format!(
            "revision {revision} (serial {}, valid until {}) is in Secret {}; its CertificateOrder {} was recorded after a restart",
            accepted.leaf.serial_hex, accepted.leaf.not_after, cert.spec.secret_name, created.name_any()
        )))
    .await;
    Ok(())
}

/// The message of `Ready=True` on the SITHS route.
fn ready_message(revision: u32, secret_name: &str, not_after: Timestamp) -> String {
    format!("certificate revision {revision} in Secret {secret_name} is valid until {not_after}")
}

/// The labels of namespace `ns` (none when it does not exist).
async fn namespace_labels(ctx: &Context, ns: &str) -> Result<BTreeMap<String, String>, Error> {
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    Ok(namespaces
        .get_opt(ns)
        .await?
        .map(|n| n.labels().clone())
        .unwrap_or_default())
}

/// Checks the Secret's certificate and key against the spec and the issuer's anchors.
fn current_certificate(
    cert: &ServiceCertificate,
    secret: Option<&Secret>,
    issuer: &ResolvedIssuer,
    now: Timestamp,
) -> Result<pki::Accepted, String> {
    let secret = secret.ok_or_else(|| "no Secret".to_string())?;
    let crt = secret_text(secret, "tls.crt").ok_or("tls.crt missing or not text")?;
    let key = secret_text(secret, "tls.key").ok_or("tls.key missing or not text")?;
    // Checked on every pass over every managed Secret, so without loading the key (an RSA
    // key's validation alone costs tens of milliseconds) whenever its fields tell.
    let leaf = pki::parse_pem_chain(&crt)
        .ok()
        .and_then(|chain| chain.first().and_then(|der| pki::CertInfo::parse(der).ok()));
    let public_key_der = match leaf
        .as_ref()
        .and_then(|l| pki::key_pem_matches_spki(&key, &l.public_key_der))
    {
        Some(true) => leaf.map(|l| l.public_key_der).unwrap_or_default(),
        Some(false) => return Err("tls.key is not the key of the certificate in tls.crt".into()),
        None => PrivateKey::from_pem(&key)
            .map_err(|e| format!("tls.key: {e}"))?
            .public_key_der(),
    };
    check_issued(
        &crt,
        &Expected {
            dns_names: cert.spec.dns_names.clone(),
            hsa_id: cert.spec.hsa_id.clone(),
            public_key_der,
            usage: Usage::ServerToServer,
            subject: None,
        },
        &issuer.anchors,
        now,
    )
    .map_err(|r| format!("{}: {}", r.reason(), r.message()))
}

#[allow(clippy::too_many_arguments)]
async fn issue(
    cert: &ServiceCertificate,
    ns: &str,
    ctx: &Context,
    s: &mut Status,
    issuer: &Arc<ResolvedIssuer>,
    revision: u32,
    uid: &str,
    issuer_obj: &SithsIssuer,
    current_secret: Option<&Secret>,
) -> Result<Action, Error> {
    let name = cert.name_any();
    let orders: Api<CertificateOrder> = Api::namespaced(ctx.client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let backoff = BackoffPolicy::for_siths(issuer.environment);
    let failed = s.st.failed_attempts.unwrap_or(0);
    let order_name = order_name(&name, revision);
    // Read item by item: an order an older schema admitted is named, never replaced.
    let guarded: Api<DeserializeGuard<CertificateOrder>> = Api::namespaced(ctx.client.clone(), ns);
    let existing = if !order_may_exist(ctx, s, ns, &order_name) {
        None
    } else {
        guarded.get_opt(&order_name).await?
    };
    let existing = match existing {
        None => None,
        Some(DeserializeGuard(Ok(order))) => Some(order),
        Some(DeserializeGuard(Err(invalid))) => {
            let message = format!(
                "CertificateOrder {order_name} cannot be read ({}); correct or delete it. No other order is placed for revision {revision}",
                crate::telemetry::redact_values(&invalid.error)
            );
            let was = find_condition(&s.st.conditions, ISSUING).map(|c| c.reason.clone());
            if was.as_deref() != Some(reason::ORDER_UNREADABLE) {
                warn!(order = %format!("{ns}/{order_name}"), "CertificateOrder cannot be read");
                ctx.event(
                    cert,
                    Notice::warning(reason::ORDER_UNREADABLE, action::ORDER, message.clone()),
                )
                .await;
            }
            s.set(ISSUING, false, reason::ORDER_UNREADABLE, &message);
            return Ok(Action::await_change());
        }
    };
    // Backoff applies to placing a new order and to automatic signing; a person importing
    // again into an existing order is never made to wait.
    if failed > 0
        && (existing.is_none() || matches!(issuer.backend, ResolvedBackend::LocalCa { .. }))
        && let Some(last) =
            s.st.last_failure_time
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
    {
        let retry = backoff.retry_at(last, failed, uid);
        if s.now < retry {
            return Ok(Action::requeue(
                retry
                    .duration_since(s.now)
                    .unsigned_abs()
                    .max(Duration::from_secs(1)),
            ));
        }
    }
    s.st.current_order = Some(order_name.clone());
    let mut fresh_key = None;
    // An issuer that signs at once places the order after the Secret is written (in
    // `advance_order`); every other order is placed here, after its key is staged.
    let mut place_after_signing = false;
    let order = match existing {
        Some(o) => o,
        None => {
            let at_once = signs_now(issuer);
            // Signed in this pass: the key goes to the Secret together with its certificate.
            // Otherwise the key is stored before the CSR exists.
            let key = if at_once {
                super::certificate_secret::new_key(cert, current_secret).await?
            } else {
                staged_key(cert, &secrets, revision).await?
            };
            let csr = csr_for(cert, issuer, &key)?;
            fresh_key = Some(key);
            let manual = matches!(issuer.backend, ResolvedBackend::Manual);
            // Only the Test price list depends on how many orders came before.
            let placed = if manual
                && issuer_obj.spec.price_per_certificate_sek.is_none()
                && issuer_obj.spec.environment == crate::api::Environment::Test
            {
                orders_placed_on(ctx, &issuer_obj.name_any()).await?
            } else {
                0
            };
            let cost = policy::cost::order_cost_for_backend(
                manual,
                issuer_obj.spec.environment,
                issuer_obj.spec.price_per_certificate_sek,
                placed,
            );
            let order = order_object(cert, ns, issuer_obj, revision, csr, cost)?;
            if at_once {
                place_after_signing = true;
                order
            } else {
                match orders.create(&create_params(), &order).await {
                    Ok(o) => {
                        info!(order = %order_name, revision, cost, "order created");
                        ctx.event(cert, Notice::normal(reason::ORDER_CREATED, action::ORDER, format!(
                                "CertificateOrder {order_name} created for revision {revision} (estimated cost {cost} SEK)"
                            )))
                        .await;
                        o
                    }
                    // Another replica or an earlier run created it: the same order.
                    Err(kube::Error::Api(e)) if e.code == 409 => orders.get(&order_name).await?,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    };
    // An order a person created by hand under this name is not placed, approved or
    // imported into: it says so until it is deleted.
    if !order.made_for(cert.metadata.uid.as_deref().unwrap_or_default()) {
        s.set(
            ISSUING,
            false,
            reason::ORDER_NOT_MADE_BY_OPERATOR,
            &format!(
                "CertificateOrder {order_name} was not created by the operator for this ServiceCertificate (it has no owner reference to it), so it is ignored; delete it and the operator creates revision {revision}'s order itself"
            ),
        );
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    let instructions = issuer_obj
        .spec
        .backend
        .manual
        .as_ref()
        .and_then(|m| m.instructions.as_deref());
    advance_order(
        cert,
        ctx,
        s,
        issuer,
        instructions,
        order,
        &orders,
        &secrets,
        revision,
        fresh_key,
        place_after_signing,
    )
    .await
}

async fn orders_placed_on(ctx: &Context, issuer: &str) -> Result<u32, Error> {
    let all: Api<CertificateOrder> = Api::all(ctx.client.clone());
    let list = all
        .list_metadata(&ListParams::default().labels(&format!("{ISSUER_LABEL}={issuer}")))
        .await?;
    Ok(u32::try_from(list.items.len()).unwrap_or(u32::MAX))
}

/// Moves an order on: gathers the approval and (when its phase wants one) the certificate,
/// asks [`policy::order`] what they mean, and applies the step: the Secret, the events, the
/// order's status and the certificate's conditions.
#[allow(clippy::too_many_arguments)]
async fn advance_order(
    cert: &ServiceCertificate,
    ctx: &Context,
    s: &mut Status,
    issuer: &Arc<ResolvedIssuer>,
    instructions: Option<&str>,
    order: CertificateOrder,
    orders: &Api<CertificateOrder>,
    secrets: &Api<Secret>,
    revision: u32,
    fresh_key: Option<PrivateKey>,
    place_after_signing: bool,
) -> Result<Action, Error> {
    // Before any password is read (see `siths_route`).
    let passwords = watched_passwords(ctx, &cert.namespace().unwrap_or_default(), cert);
    let mut ost: CertificateOrderStatus = order.status.clone().unwrap_or_default();
    let order_name = order.name_any();
    let namespace = order.namespace().unwrap_or_default();
    let facts = OrderFacts {
        name: &order_name,
        namespace: &namespace,
        revision,
        cost_sek: order.spec.estimated_cost_sek,
        secret_name: &cert.spec.secret_name,
        phase: ost.phase,
        approval: order.spec.approval.as_ref(),
        approval_required: issuer.approval_required,
        instructions,
        last_refusal: ost.reason.as_deref().zip(ost.message.as_deref()),
    };
    let mut step = policy::order::approve(&facts);
    let mut accepted = None;
    let mut key = None;
    if policy::order::wants_certificate(step.phase) {
        // The key stored for this revision (read back only when this pass did not just
        // make it).
        let k = match fresh_key {
            Some(k) => k,
            None => staged_key(cert, secrets, revision).await?,
        };
        let candidate: Option<String> = match &issuer.backend {
            ResolvedBackend::LocalCa { ca, lifetime } => {
                let csr = parse_csr(&order.spec.csr)?;
                let serial = pki::random_serial()?;
                let chain = ca.sign_csr(&csr, s.now, *lifetime, &serial)?;
                Some(pki::chain_to_pem(&chain))
            }
            // The same bytes that were refused are checked again only when asked for.
            ResolvedBackend::Manual => order.spec.certificate.clone().filter(|pem| {
                let stamp = |t: Option<&String>| t.and_then(|t| t.parse::<Timestamp>().ok());
                policy::order::should_check(
                    &sha256_fingerprint(pem.as_bytes()),
                    ost.checked_certificate_sha256.as_deref(),
                    ost.phase,
                    stamp(order.annotations().get(IMPORT_REQUESTED_KEY)),
                    stamp(ost.checked_at.as_ref()),
                )
            }),
        };
        let obtained = match candidate {
            None => Obtained::Nothing,
            Some(pem) => {
                ost.checked_certificate_sha256 = Some(sha256_fingerprint(pem.as_bytes()));
                // Full precision: a request made in the same second is still after it.
                ost.checked_at = Some(s.now.to_string());
                let expected = Expected {
                    dns_names: order.spec.dns_names.clone(),
                    hsa_id: order.spec.hsa_id.clone(),
                    public_key_der: k.public_key_der(),
                    usage: Usage::ServerToServer,
                    // The subject the order's CSR asked for (SERIALNUMBER, CN, O, L, C).
                    subject: Some(pki::ExpectedSubject::from_csr_pem(&order.spec.csr)?),
                };
                match check_issued(&pem, &expected, &issuer.anchors, s.now) {
                    Ok(a) => {
                        let obtained = Obtained::Accepted {
                            serial: a.leaf.serial_hex.clone(),
                            not_after: rfc3339(a.leaf.not_after),
                        };
                        accepted = Some(a);
                        obtained
                    }
                    Err(rejection) => Obtained::Rejected {
                        reason: rejection.reason(),
                        message: rejection.message(),
                    },
                }
            }
        };
        key = Some(k);
        step = policy::order::settle(&facts, step, obtained);
    }

    // Apply: the one write first, so a crash before the order's status is recorded finds
    // the certificate in the Secret.
    let mut action = Action::await_change();
    if step.write_secret
        && let (Some(accepted), Some(key)) = (&accepted, &key)
    {
        let written = write_secret(cert, s, secrets, accepted, key, revision).await?;
        ost.serial_number = Some(accepted.leaf.serial_hex.clone());
        ost.not_after = Some(rfc3339(accepted.leaf.not_after));
        let renew_at = renewal_time(&RenewalInput {
            not_before: accepted.leaf.not_before,
            not_after: accepted.leaf.not_after,
            renew_before: cert
                .spec
                .renew_before
                .as_deref()
                .and_then(|v| parse_renew_before(v).ok()),
            lead_time: issuer.lead_time,
            kind: Route::Siths,
            uid: cert.uid().as_deref().unwrap_or_default(),
        });
        s.record(&accepted.leaf, renew_at, revision);
        s.st.current_order = None;
        remember_checked(
            ctx,
            cert,
            s,
            issuer,
            written,
            passwords,
            (revision, renew_at, s.now),
        );
        // Refused imports do not back anything off (a person importing again never waits):
        // once one is accepted they are history. Re-issues after tampering keep counting.
        if matches!(issuer.backend, ResolvedBackend::Manual) {
            s.st.failed_attempts = None;
            s.st.last_failure_time = None;
        }
        // The same condition a later pass finds (the event tells what happened), so that
        // pass has nothing to write.
        s.set(
            READY,
            true,
            reason::ISSUED,
            &ready_message(revision, &cert.spec.secret_name, accepted.leaf.not_after),
        );
        step.events.push(policy::order::Announcement {
            on: policy::order::Subject::Certificate,
            notice: Notice::normal(reason::ISSUED, action::ISSUE, format!(
                "revision {revision} issued (serial {}, valid until {}) and written to Secret {}; CertificateOrder {order_name}",
                accepted.leaf.serial_hex, accepted.leaf.not_after, cert.spec.secret_name
            )),
        });
        // The staged key now lives in the certificate Secret (a key made in this pass for
        // an issuer that signs at once was never staged).
        if !place_after_signing {
            delete_ignoring_absent(secrets, &key_secret_name(&cert.name_any(), revision)).await?;
        }
        action = Action::requeue(time_until_renewal(s.now, renew_at).min(MAX_REQUEUE));
    }
    if step.failed {
        let failed = s.st.failed_attempts.unwrap_or(0).saturating_add(1);
        s.st.failed_attempts = Some(failed);
        s.st.last_failure_time = Some(rfc3339(s.now));
        if matches!(issuer.backend, ResolvedBackend::LocalCa { .. }) {
            let uid = cert.uid().unwrap_or_default();
            let delay = BackoffPolicy::for_siths(issuer.environment).delay(failed, &uid);
            action = Action::requeue(delay.max(Duration::from_secs(1)));
        }
    }
    if let Some(c) = &step.issuing {
        s.set(ISSUING, c.ok, &c.reason, &c.message);
    }
    // An issuer that signs at once: the order is placed now, after the Secret (a crash in
    // between leaves a Secret whose order `record_missing_order` records later).
    let order = if place_after_signing {
        match orders.create(&create_params(), &order).await {
            Ok(o) => {
                info!(order = %order_name, revision, "order created and signed");
                o
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                warn!(order = %order_name, "an order of this revision appeared while it was signed; leaving it as it is");
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        order
    };
    for e in step.events {
        match e.on {
            policy::order::Subject::Order => ctx.event(&order, e.notice).await,
            policy::order::Subject::Certificate => ctx.event(cert, e.notice).await,
        }
    }
    ost.phase = step.phase;
    if let Some(r) = step.reason {
        ost.reason = Some(r);
    }
    if let Some(m) = step.message {
        ost.message = Some(m);
    }
    if step.approved.is_some() {
        ost.approved = step.approved;
    }
    apply_status(orders, &order, order.status.as_ref(), &ost).await?;
    Ok(action)
}

/// The last generation seen per object name, so a watch mapper can ignore status-only
/// updates of the objects it watches.
#[derive(Debug, Default)]
struct Generations(std::sync::Mutex<std::collections::HashMap<String, Option<i64>>>);

impl Generations {
    /// Whether `generation` differs from the one last seen for `name` (and remembers it).
    fn changed(&self, name: &str, generation: Option<i64>) -> bool {
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.insert(name.to_string(), generation) != Some(generation)
    }
}

/// Whether the certificate's key stores take a password from Secret `name`.
fn uses_password_secret(cert: &ServiceCertificate, name: &str) -> bool {
    cert.spec.keystores.as_ref().is_some_and(|ks| {
        ks.pkcs12
            .as_ref()
            .is_some_and(|p| p.password_secret_ref.name == name)
            || ks
                .jks
                .as_ref()
                .is_some_and(|j| j.password_secret_ref.name == name)
    })
}

/// The `Validated` condition status last seen per DomainValidation.
#[derive(Default)]
struct ValidatedStates(std::sync::Mutex<std::collections::HashMap<String, Option<String>>>);

impl ValidatedStates {
    /// Whether `dv`'s `Validated` status differs from the one last seen (and remembers it):
    /// a live DNS check changes it without a new generation.
    fn changed(&self, dv: &DomainValidation) -> bool {
        let now = dv
            .status
            .as_ref()
            .and_then(|s| find_condition(&s.conditions, crate::vocabulary::condition::VALIDATED))
            .map(|c| c.status.clone());
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.insert(dv.name_any(), now.clone()) != Some(now)
    }
}

/// The certificates a change of certificate Secret `secret` concerns: the one its label
/// names, and, when the label is missing (a tampered Secret that lost its labels is
/// reported as deleted by the labelled watch) or names a certificate of another Secret,
/// every certificate naming the Secret. Only that case scans the cache: a scan per Secret
/// made the start-up pass quadratic (B8: 221 s at 100 000 certificates, 2 s at 10 000).
fn secret_owners<S: Resource>(
    store: &Store<ServiceCertificate>,
    secret: &S,
) -> Vec<ObjectRef<ServiceCertificate>> {
    let ns = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let by_label = secret
        .labels()
        .get(CERTIFICATE_LABEL)
        .map(|c| ObjectRef::new(c).within(&ns));
    // A certificate not in the cache yet gets its own first pass from its own watch.
    if let Some(owner) = by_label.as_ref()
        && store.get(owner).is_none_or(|c| c.spec.secret_name == name)
    {
        return vec![owner.clone()];
    }
    let by_name = store
        .state_filter(|c| {
            c.spec.secret_name == name && c.metadata.namespace.as_deref() == Some(ns.as_str())
        })
        .into_iter()
        .map(|c| ObjectRef::from_obj(c.as_ref()));
    by_label.into_iter().chain(by_name).collect()
}

/// The certificates naming issuer `name` of `kind`.
fn certificates_of(
    store: &Store<ServiceCertificate>,
    kind: IssuerKind,
    name: &str,
) -> Vec<ObjectRef<ServiceCertificate>> {
    store
        .state_filter(|c| c.spec.issuer_ref.kind == kind && c.spec.issuer_ref.name == name)
        .iter()
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

/// Every change of an issuer kind, written into `cache` before it is passed on.
fn cached_changes<K>(
    client: &Client,
    cache: Writer<K>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    reflector(
        cache,
        super::watch(
            Api::<K>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .modify(|o| o.meta_mut().managed_fields = None),
    )
    .touched_objects()
}

/// Runs the ServiceCertificate controller until `shutdown` resolves. Its issuer watches
/// fill the issuer caches of `ctx` through `issuers` (see [`super::IssuerCaches`]).
///
/// `shared` are its readers of the watches it shares with other controllers, subscribed
/// before those watches run (see [`super::shared_watch`]).
pub async fn run(
    ctx: Arc<Context>,
    controller: Controller<ServiceCertificate>,
    issuers: IssuerCacheWriters,
    shared: SharedReaders,
) {
    let client = ctx.client.clone();
    let store = controller.store();
    let by_issuer = store.clone();
    let by_public_issuer = store.clone();
    let public_generations = Generations::default();
    let by_validation = store.clone();
    let by_secret = store.clone();
    let versions = ctx.clone();
    let password_versions = ctx.clone();
    let order_versions = ctx.clone();
    let by_password = store.clone();
    let issuer_generations = Generations::default();
    let validation_generations = Generations::default();
    let validated_states = ValidatedStates::default();
    controller
        // Issuing one certificate touches its order, Secret and status in quick
        // succession; collapse those triggers. The debounce also delays the first look at
        // a new certificate, so it stays short (B2 latency). (With 20 ms, passes started
        // before the issuer caches had listed; they used to hang there: see
        // `ready_store`.)
        // At most RECONCILE_CONCURRENCY passes at once. Without a limit, ten thousand new
        // certificates were ten thousand passes in flight, each holding its objects while
        // it waited for a key: 1.4 GiB of memory in B3.
        .with_config(
            kube::runtime::controller::Config::default()
                .debounce(Duration::from_millis(20))
                .concurrency(RECONCILE_CONCURRENCY),
        )
        // Orders by metadata, from the order watch shared with the SithsIssuer controller:
        // an order's change wakes its certificate, and the versions tell a pass whether an
        // order may exist before it reads one (no read that would only answer 404). An
        // order an older schema admitted is seen by its metadata too. None is kept here.
        .owns_stream(
            shared
                .orders
                .map_ok(|event| {
                    super::shared_watch::map_event(event, |order| {
                        let mut meta = order.meta().clone();
                        meta.managed_fields = None;
                        meta.into_request_partial::<CertificateOrder>()
                    })
                })
                .inspect_ok(move |event| order_versions.order_versions.apply(event))
                .touched_objects(),
        )
        // Certificate Secrets by metadata (their data is read when a pass needs it), from
        // the Secret watch shared with the Ingress and Gateway controllers, read as a watch
        // of the operator's certificate Secrets would be: each event also records the
        // Secret's version, so a pass over an unchanged Secret need not read it (see
        // `checked_secrets`).
        .watches_stream(
            shared
                .secrets
                .try_filter_map(move |event| {
                    std::future::ready(Ok(versions.secret_versions.apply_selected(event, |s| {
                        super::certificate_secret::is_certificate_secret(s.labels())
                    })))
                })
                .touched_objects(),
            move |secret| secret_owners(&by_secret, &secret),
        )
        // Key store passwords: the metadata of labelled Secrets only (never their data,
        // never every Secret); a changed password rebuilds the stores that use it.
        .watches_stream(
            super::watch(
                Api::<PartialObjectMeta<Secret>>::all(client.clone()),
                watcher::Config::default()
                    .labels(&format!("{KEYSTORE_PASSWORD_LABEL}=true"))
                    .any_semantic(),
            )
            .inspect_ok(move |event| password_versions.password_versions.apply(event))
            .touched_objects(),
            move |meta| {
                let ns = meta.namespace().unwrap_or_default();
                let name = meta.name_any();
                by_password
                    .state_filter(|c| {
                        c.metadata.namespace.as_deref() == Some(ns.as_str())
                            && uses_password_secret(c, &name)
                    })
                    .iter()
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches_stream(
            cached_changes(&client, issuers.siths),
            move |issuer| {
                // Only a changed spec matters here: the issuer's own status changes every
                // few seconds while orders flow, and mapping those would reconcile every
                // certificate of the issuer again and again.
                let name = issuer.name_any();
                if !issuer_generations.changed(&name, issuer.metadata.generation) {
                    return Vec::new();
                }
                certificates_of(&by_issuer, IssuerKind::SithsIssuer, &name)
            },
        )
        .watches_stream(
            cached_changes(&client, issuers.public),
            move |issuer| {
                let name = issuer.name_any();
                if !public_generations.changed(&name, issuer.metadata.generation) {
                    return Vec::new();
                }
                certificates_of(&by_public_issuer, IssuerKind::PublicIssuer, &name)
            },
        )
        .watches_stream(
            super::watch(
                Api::<DomainValidation>::all(client),
                watcher::Config::default().any_semantic(),
            )
            .touched_objects(),
            move |dv| {
                let state_changed = validated_states.changed(&dv);
                let generation_changed =
                    validation_generations.changed(&dv.name_any(), dv.metadata.generation);
                if state_changed {
                    // Validated changed (a live DNS check, an expiry): every certificate
                    // looks again, the issued ones to report a lapse, the blocked ones to go on.
                    return by_validation
                        .state()
                        .iter()
                        .map(|c| ObjectRef::from_obj(c.as_ref()))
                        .collect::<Vec<_>>();
                }
                if !generation_changed {
                    return Vec::new();
                }
                // A validation can unblock any certificate waiting at the gate.
                by_validation
                    .state_filter(|c| {
                        c.status.as_ref().is_none_or(|s| {
                            find_condition(&s.conditions, DOMAIN_VALIDATED)
                                .is_none_or(|c| c.status != status::TRUE)
                        })
                    })
                    .iter()
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .run(
            |o, ctx| measured(ctx.clone(), "ServiceCertificate", reconcile(o, ctx)),
            |cert, e, _| {
                warn!(error = %e, label = e.metric_label(), name = %cert.name_any(), "ServiceCertificate reconcile failed");
                Action::requeue(Duration::from_secs(5))
            },
            ctx,
        )
        .for_each(super::log_output("ServiceCertificate"))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{IssuerRef, Purpose, ServiceCertificateSpec};

    fn cert(name: &str, secret: &str, created: i64) -> ServiceCertificate {
        let mut c = ServiceCertificate::new(
            name,
            ServiceCertificateSpec {
                purpose: Purpose::ServerToServer,
                dns_names: vec!["a.region.se".into()],
                secret_name: secret.into(),
                hsa_id: Some("SE2321000016-A1".into()),
                issuer_ref: IssuerRef {
                    kind: IssuerKind::SithsIssuer,
                    name: "i".into(),
                },
                private_key: None,
                renew_before: None,
                keystores: None,
            },
        );
        c.metadata.namespace = Some("ns".into());
        c.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::from_second(created).unwrap(),
        ));
        c
    }

    #[test]
    fn a_secret_change_wakes_its_certificate_and_scans_only_when_tampered() {
        use kube::runtime::watcher::Event;
        let (store, mut writer) = kube::runtime::reflector::store::<ServiceCertificate>();
        writer.apply_watcher_event(&Event::Init);
        for c in [
            cert("a", "a-tls", 1),
            cert("b", "b-tls", 1),
            cert("c", "a-tls", 1),
        ] {
            writer.apply_watcher_event(&Event::InitApply(c));
        }
        writer.apply_watcher_event(&Event::InitDone);
        let secret = |name: &str, label: Option<&str>| {
            let mut s = Secret::default();
            s.metadata.name = Some(name.into());
            s.metadata.namespace = Some("ns".into());
            s.metadata.labels =
                label.map(|l| [(CERTIFICATE_LABEL.to_string(), l.to_string())].into());
            s
        };
        let names = |refs: Vec<ObjectRef<ServiceCertificate>>| {
            let mut n: Vec<String> = refs.into_iter().map(|r| r.name).collect();
            n.sort();
            n
        };
        // Labelled as its certificate's: that one only (c also names a-tls, but the label
        // is trusted while it fits).
        assert_eq!(
            names(secret_owners(&store, &secret("a-tls", Some("a")))),
            ["a"]
        );
        // A certificate not cached yet: its label is taken as it is.
        assert_eq!(
            names(secret_owners(&store, &secret("d-tls", Some("d")))),
            ["d"]
        );
        // Labels lost: every certificate naming the Secret.
        assert_eq!(
            names(secret_owners(&store, &secret("a-tls", None))),
            ["a", "c"]
        );
        // A label naming the certificate of another Secret: that one and the Secret's own.
        assert_eq!(
            names(secret_owners(&store, &secret("b-tls", Some("a")))),
            ["a", "b"]
        );
    }

    #[test]
    fn status_only_updates_do_not_count_as_changes() {
        let g = Generations::default();
        assert!(g.changed("issuer", Some(1)), "first sighting");
        assert!(
            !g.changed("issuer", Some(1)),
            "status update, same generation"
        );
        assert!(g.changed("issuer", Some(2)), "spec changed");
        assert!(g.changed("other", Some(2)), "another object");
    }

    #[test]
    fn key_defaults_to_rsa_2048_for_siths() {
        let c = cert("c", "s", 1);
        let key_spec = super::super::certificate_secret::key_spec;
        assert_eq!(key_spec(&c), crate::pki::KeySpec::RSA_2048);
        // A size the CRD admits is the size made, never quietly another one.
        let mut c = c;
        for (size, spec) in [
            (2048, crate::pki::KeySpec::RSA_2048),
            (3072, crate::pki::KeySpec::RSA_3072),
            (4096, crate::pki::KeySpec::RSA_4096),
        ] {
            c.spec.private_key = Some(crate::api::PrivateKeySpec {
                algorithm: crate::api::KeyAlgorithm::Rsa,
                size: Some(size),
                rotation_policy: None,
            });
            assert_eq!(key_spec(&c), spec);
        }
    }
}
