//! `ServiceCertificate`: routing, the domain-validation gate, exactly-once orders, the
//! manual and local-CA backends, the Secret, adoption and renewal.
//!
//! The flow for a `ServerToServer` certificate on a `SithsIssuer`:
//! 1. gates: route, issuer, namespace, HSA-id, domain validation, Secret conflict;
//! 2. the Secret's certificate is checked against the spec; if it is current and not due
//!    for renewal, nothing is written;
//! 3. otherwise revision `r + 1` is issued: the key is stored in a staged Secret before the
//!    CSR exists, then the `CertificateOrder` named after certificate and revision is
//!    created create-only, so no restart, retry or second replica can order twice;
//! 4. the order moves through approval and the backend; a returned certificate is checked
//!    (chain, key, names, HSA-id, validity) before it replaces key and certificate together.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::{
    ByteString,
    api::core::v1::{Namespace, Secret},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams},
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
    CERTIFICATE_LABEL, Context, Error, FIELD_MANAGER, ISSUED_AT_KEY, ISSUER_LABEL,
    IssuerCacheWriters, MANAGED_BY, RENEW_REQUESTED_KEY, REVISION_KEY, ROLE_CERTIFICATE,
    ROLE_LABEL, ROLE_STAGED_KEY, apply_status,
    domain_validation::{grants_for, today},
    measured, now, rfc3339,
    siths_issuer::{ResolvedBackend, ResolvedIssuer},
};
use crate::{
    api::{
        ApprovalDecision, CertificateOrder, CertificateOrderSpec, CertificateOrderStatus,
        DomainValidation, IssuerKind, KeyAlgorithm, OrderPhase, RotationPolicy, ServiceCertificate,
        ServiceCertificateStatus, SithsIssuer, status,
    },
    pki::{
        self, CertificateProfile, Expected, KeySpec, PrivateKey, Usage, build_csr, check_issued,
        parse_csr, sha256_fingerprint,
    },
    policy::{
        self,
        backoff::BackoffPolicy,
        conditions::{DesiredCondition, find_condition, set_condition, true_reason},
        coverage::uncovered_names,
        names::{key_secret_name, order_name},
        renewal::{
            RenewalInput, parse_renew_before, renewal_due, renewal_requested, renewal_time,
            time_until_renewal,
        },
        routing::Route,
    },
};

/// Longest a healthy certificate waits before it is looked at again: domain validations
/// expire by the day and tampering is caught by the Secret watch anyway.
pub(super) const MAX_REQUEUE: Duration = Duration::from_secs(6 * 3600);

/// Conditions of a ServiceCertificate.
pub(super) const READY: &str = "Ready";
pub(super) const DOMAIN_VALIDATED: &str = "DomainValidated";
pub(super) const ISSUING: &str = "Issuing";

/// The status being built by one reconcile.
pub(super) struct Status {
    pub(super) st: ServiceCertificateStatus,
    generation: Option<i64>,
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
            s.not_ready("CertificateOperationFailed", &e.to_string());
            Ok(Action::requeue(Duration::from_secs(300)))
        }
        other => other,
    };
    if let Some(version) = apply_status(&api, cert.as_ref(), cert.status.as_ref(), &s.st).await? {
        seen(key, Some(version));
    }
    action
}

async fn process(
    cert: &ServiceCertificate,
    ns: &str,
    ctx: &Context,
    s: &mut Status,
) -> Result<Action, Error> {
    let spec = &cert.spec;
    // 1. Route.
    match policy::routing::route(spec.purpose, spec.issuer_ref.kind) {
        Err(refusal) => {
            s.st.route = Some(policy::routing::REFUSED.into());
            s.not_ready(refusal.reason, &refusal.message);
            return Ok(Action::await_change());
        }
        Ok(Route::Public) => return super::public_route::process(cert, ns, ctx, s).await,
        Ok(Route::Siths) => s.st.route = Some(Route::Siths.as_str().into()),
    }
    debug_assert_eq!(spec.issuer_ref.kind, IssuerKind::SithsIssuer);

    // 2. Issuer.
    let Some(issuer_obj) = ctx.siths_issuer(&spec.issuer_ref.name).await? else {
        s.not_ready(
            "IssuerNotFound",
            &format!(
                "SithsIssuer {:?} does not exist; create it or correct issuerRef.name",
                spec.issuer_ref.name
            ),
        );
        return Ok(Action::requeue(Duration::from_secs(300)));
    };
    let issuer = match ctx.resolved_issuer(&issuer_obj).await? {
        Ok(i) => i,
        Err(p) => {
            s.not_ready(
                "IssuerNotReady",
                &format!(
                    "SithsIssuer {:?} cannot issue: {}",
                    spec.issuer_ref.name, p.message
                ),
            );
            return Ok(Action::requeue(Duration::from_secs(120)));
        }
    };

    // 3. Namespace allowed by the issuer.
    if !namespace_allowed(ctx, issuer_obj.spec.allowed_namespaces.as_ref(), ns).await? {
        s.not_ready(
            policy::namespaces::REASON_NAMESPACE_NOT_ALLOWED,
            &policy::namespaces::refusal(IssuerKind::SithsIssuer, &spec.issuer_ref.name, ns),
        );
        return Ok(Action::await_change());
    }

    // 4. Identifiers the schema cannot fully check.
    if let Some((reason, message)) = names_problem(spec) {
        s.not_ready(reason, &message);
        return Ok(Action::await_change());
    }

    // 5. Domain validation gate: nothing is made before every name is covered.
    if let Some(action) = domain_gate(ctx, cert, s, &issuer.organization_number).await {
        return Ok(action);
    }

    // 6. One Secret, one owner: the oldest certificate naming it.
    if let Some(owner) = secret_owner(ctx.certificates(), ns, &spec.secret_name)
        && owner != cert.name_any()
    {
        s.not_ready(
            "SecretConflict",
            &format!(
                "Secret {:?} is already managed by ServiceCertificate {owner:?}, which is older; choose another secretName",
                spec.secret_name
            ),
        );
        return Ok(Action::await_change());
    }

    // 7. What the Secret holds now.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = secrets.get_opt(&spec.secret_name).await?;
    let current = current_certificate(cert, secret.as_ref(), &issuer, s.now);
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
            ctx.event(
                cert,
                false,
                "Adopted",
                "Adopt",
                format!(
                    "adopted the certificate already in Secret {} (serial {}, valid until {}); no order placed",
                    spec.secret_name, leaf.serial_hex, leaf.not_after
                ),
            )
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
                    "Adopted".into()
                } else {
                    "Issued".into()
                }
            });
        s.set(
            READY,
            true,
            &ready_reason,
            &ready_message(revision.unwrap_or(1), &spec.secret_name, leaf.not_after),
        );
        let issued_at = secret
            .as_ref()
            .and_then(|sec| sec.annotations().get(ISSUED_AT_KEY))
            .and_then(|t| t.parse::<Timestamp>().ok())
            .unwrap_or(leaf.not_before);
        let requested = cert
            .annotations()
            .get(RENEW_REQUESTED_KEY)
            .and_then(|t| t.parse::<Timestamp>().ok());
        let asked = renewal_requested(requested, issued_at);
        if !renewal_due(s.now, renew_at) && !asked {
            s.set(ISSUING, false, "UpToDate", "no issuance needed");
            // Never list Secrets on an idle pass; only while finishing a revision.
            s.st.current_order = None;
            if finishing {
                cleanup_staged_keys(&secrets, &cert.name_any(), revision.unwrap_or(1)).await?;
            }
            s.forget_failures_when_quiet();
            return Ok(Action::requeue(
                time_until_renewal(s.now, renew_at).min(MAX_REQUEUE),
            ));
        }
        let was = find_condition(&s.st.conditions, ISSUING).map(|c| c.reason.clone());
        if asked && was.as_deref() != Some("Renewing") {
            ctx.event(
                cert,
                false,
                "RenewalRequested",
                "Renew",
                format!(
                    "a new revision was requested at {}; the current certificate stays in place until the new one is accepted",
                    requested.map(rfc3339).unwrap_or_default()
                ),
            )
            .await;
        } else if was.as_deref() != Some("Renewing") {
            ctx.event(
                cert,
                false,
                "RenewalDue",
                "Renew",
                format!(
                    "renewal of revision {} is due (renewal time {renew_at}); the current certificate stays in place until the new one is accepted",
                    revision.unwrap_or(1)
                ),
            )
            .await;
        }
        s.set(
            ISSUING,
            true,
            "Renewing",
            "renewal is due; a new revision is being issued",
        );
    } else {
        let (reason, message) = match (&secret, &current) {
            (None, _) => (
                "Issuing".to_string(),
                format!("Secret {} does not exist yet; issuing", spec.secret_name),
            ),
            (Some(_), Err(why)) => (
                "SecretMismatch".to_string(),
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
    issue(cert, ns, ctx, s, &issuer, revision, &uid, &issuer_obj).await
}

/// The message of `Ready=True` on the SITHS route.
fn ready_message(revision: u32, secret_name: &str, not_after: Timestamp) -> String {
    format!("certificate revision {revision} in Secret {secret_name} is valid until {not_after}")
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
        "SecretTampered"
    } else {
        "SecretDeleted"
    };
    ctx.event(cert, true, reason, "Verify", message.to_string())
        .await;
}

/// Whether namespace `ns` matches an issuer's `allowedNamespaces` (absent: every one).
pub(super) async fn namespace_allowed(
    ctx: &Context,
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    ns: &str,
) -> Result<bool, Error> {
    if selector.is_none() {
        return Ok(true);
    }
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let labels = namespaces
        .get_opt(ns)
        .await?
        .map(|n| n.labels().clone())
        .unwrap_or_default();
    Ok(policy::namespaces::allows(selector, &labels))
}

/// The first identifier the schema cannot fully check that is wrong: condition reason and
/// message. Shared with `sithsctl plan`.
pub fn names_problem(spec: &crate::api::ServiceCertificateSpec) -> Option<(&'static str, String)> {
    if let Some(id) = &spec.hsa_id
        && let Err(e) = policy::identifiers::validate_hsa_id(id)
    {
        return Some(("InvalidHsaId", format!("hsaId: {e}")));
    }
    spec.dns_names.iter().find_map(|n| {
        policy::identifiers::validate_dns_name(n)
            .err()
            .map(|e| ("InvalidDnsName", format!("dnsNames: {e}")))
    })
}

/// The domain-validation gate for organisation `org_number`: `Some(action)` when a name is
/// not covered (the status and an event say which), `None` when every name is.
pub(super) async fn domain_gate(
    ctx: &Context,
    cert: &ServiceCertificate,
    s: &mut Status,
    org_number: &str,
) -> Option<Action> {
    let grants = grants_for(
        ctx.validations().state().iter().map(|a| a.as_ref()),
        org_number,
        today(s.now),
    );
    let uncovered = uncovered_names(&cert.spec.dns_names, &grants);
    if !uncovered.is_empty() {
        let message = format!(
            "no Validated DomainValidation for organisation {org_number} covers {}; register the domain validation (or correct dnsNames). Nothing is ordered until then.",
            uncovered.join(", ")
        );
        let was = find_condition(&s.st.conditions, DOMAIN_VALIDATED).map(|c| c.status.clone());
        s.set(DOMAIN_VALIDATED, false, "NotCovered", &message);
        s.not_ready("DomainNotValidated", &message);
        if was.as_deref() != Some(status::FALSE) {
            ctx.event(cert, true, "DomainNotValidated", "Gate", message)
                .await;
        }
        return Some(Action::requeue(MAX_REQUEUE));
    }
    s.set(
        DOMAIN_VALIDATED,
        true,
        "Covered",
        &format!(
            "every name is covered by a Validated DomainValidation for organisation {org_number}"
        ),
    );
    None
}

/// The ServiceCertificate that owns Secret `secret_name` in `ns`: the oldest naming it.
fn secret_owner(store: &Store<ServiceCertificate>, ns: &str, secret_name: &str) -> Option<String> {
    secret_owner_obj(store, ns, secret_name).map(|c| c.name_any())
}

/// The ServiceCertificate that owns Secret `secret_name` in `ns`, as an object.
pub(super) fn secret_owner_obj(
    store: &Store<ServiceCertificate>,
    ns: &str,
    secret_name: &str,
) -> Option<Arc<ServiceCertificate>> {
    // Filtered under the store's lock: no copy of every certificate per pass (with ten
    // thousand certificates that copy was most of the operator's CPU and memory).
    store
        .state_filter(|c| {
            c.spec.secret_name == secret_name && c.metadata.namespace.as_deref() == Some(ns)
        })
        .into_iter()
        .min_by_key(|c| {
            (
                c.metadata.creation_timestamp.as_ref().map(|t| t.0),
                c.name_any(),
            )
        })
}

pub(super) fn secret_text(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
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

fn labels(cert_name: &str, role: &str) -> BTreeMap<String, String> {
    [
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (CERTIFICATE_LABEL.to_string(), cert_name.to_string()),
        (ROLE_LABEL.to_string(), role.to_string()),
    ]
    .into()
}

pub(super) async fn adopt(
    secrets: &Api<Secret>,
    secret_name: &str,
    cert_name: &str,
) -> Result<(), Error> {
    let patch = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "labels": labels(cert_name, ROLE_CERTIFICATE),
            "annotations": { REVISION_KEY: "1" },
        },
    });
    secrets
        .patch(
            secret_name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}

/// The key a certificate asks for; the default is RSA 2048 on SITHS and ECDSA P-256 for
/// public certificates.
pub(super) fn key_spec(cert: &ServiceCertificate) -> KeySpec {
    match &cert.spec.private_key {
        Some(pk) => match (pk.algorithm, pk.size) {
            (KeyAlgorithm::Rsa, Some(3072)) => KeySpec::RSA_3072,
            // Admitted for UserFacing certificates only (the CRD's key size rule).
            (KeyAlgorithm::Rsa, Some(4096)) => KeySpec::RSA_4096,
            (KeyAlgorithm::Rsa, _) => KeySpec::RSA_2048,
            (KeyAlgorithm::Ecdsa, Some(384)) => KeySpec::ECDSA_P384,
            (KeyAlgorithm::Ecdsa, _) => KeySpec::ECDSA_P256,
        },
        None if cert.spec.purpose == crate::api::Purpose::UserFacing => KeySpec::ECDSA_P256,
        None => KeySpec::RSA_2048,
    }
}

fn owner_reference(
    cert: &ServiceCertificate,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    cert.controller_owner_ref(&()).into_iter().collect()
}

fn create_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// ServiceCertificate passes running at once; the others wait in the controller's queue.
const RECONCILE_CONCURRENCY: u16 = 16;

/// Turns for key generation: one per core. Without a bound, a burst of a thousand new
/// certificates started a thousand RSA generations on blocking threads at once; they all
/// slowed down together and starved the async workers, whose leader-lease renewals then
/// came too late (the controllers restarted, and keys in progress were generated again).
static KEY_GENERATION: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });

/// The staged private key of `revision`, created before any CSR exists. Create-only: a
/// second replica or a restart finds and uses the key already stored.
pub(super) async fn staged_key(
    cert: &ServiceCertificate,
    secrets: &Api<Secret>,
    revision: u32,
) -> Result<PrivateKey, Error> {
    let name = key_secret_name(&cert.name_any(), revision);
    if let Some(existing) = secrets.get_opt(&name).await?
        && let Some(pem) = secret_text(&existing, "tls.key")
    {
        return Ok(PrivateKey::from_pem(&pem)?);
    }
    // Keep the key across revisions when asked to.
    let reuse = cert
        .spec
        .private_key
        .as_ref()
        .and_then(|p| p.rotation_policy)
        == Some(RotationPolicy::Never);
    let mut key = None;
    if reuse
        && let Some(current) = secrets.get_opt(&cert.spec.secret_name).await?
        && let Some(pem) = secret_text(&current, "tls.key")
        && let Ok(k) = PrivateKey::from_pem(&pem)
        && k.spec() == key_spec(cert)
    {
        key = Some(k);
    }
    let key = match key {
        Some(k) => k,
        None => {
            // RSA generation takes tens of milliseconds: keep it off the async workers, and
            // run at most one per core (see KEY_GENERATION).
            let spec = key_spec(cert);
            let _turn = KEY_GENERATION
                .acquire()
                .await
                .map_err(|_| Error::Incomplete("key generation turn"))?;
            tokio::task::spawn_blocking(move || spec.generate())
                .await
                .map_err(|_| Error::Incomplete("key generation task"))??
        }
    };
    let mut meta_labels = labels(&cert.name_any(), ROLE_STAGED_KEY);
    meta_labels.insert(REVISION_KEY.into(), revision.to_string());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(meta_labels),
            owner_references: Some(owner_reference(cert)),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some([("tls.key".to_string(), ByteString(key.to_pem().into_bytes()))].into()),
        ..Default::default()
    };
    match secrets.create(&create_params(), &secret).await {
        Ok(_) => Ok(key),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // Lost a race: the stored key is the one.
            let existing = secrets.get(&name).await?;
            let pem = secret_text(&existing, "tls.key").ok_or(Error::Incomplete("tls.key"))?;
            Ok(PrivateKey::from_pem(&pem)?)
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete_ignoring_absent(secrets: &Api<Secret>, name: &str) -> Result<(), Error> {
    match secrets.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes staged key Secrets of this certificate up to `revision` (their key is in the
/// certificate Secret now, or belongs to an abandoned revision).
pub(super) async fn cleanup_staged_keys(
    secrets: &Api<Secret>,
    cert_name: &str,
    revision: u32,
) -> Result<(), Error> {
    let list = secrets
        .list_metadata(&ListParams::default().labels(&format!(
            "{CERTIFICATE_LABEL}={cert_name},{ROLE_LABEL}={ROLE_STAGED_KEY}"
        )))
        .await?;
    for item in list.items {
        let rev = item
            .labels()
            .get(REVISION_KEY)
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        if rev <= revision {
            delete_ignoring_absent(secrets, &item.name_any()).await?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn issue(
    cert: &ServiceCertificate,
    ns: &str,
    ctx: &Context,
    s: &mut Status,
    issuer: &ResolvedIssuer,
    revision: u32,
    uid: &str,
    issuer_obj: &SithsIssuer,
) -> Result<Action, Error> {
    let name = cert.name_any();
    let orders: Api<CertificateOrder> = Api::namespaced(ctx.client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let backoff = BackoffPolicy::for_siths(issuer.environment);
    let failed = s.st.failed_attempts.unwrap_or(0);
    let order_name = order_name(&name, revision);
    let existing = orders.get_opt(&order_name).await?;
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
    let order = match existing {
        Some(o) => o,
        None => {
            // The key is stored before the CSR exists.
            let key = staged_key(cert, &secrets, revision).await?;
            let profile = CertificateProfile {
                dns_names: cert.spec.dns_names.clone(),
                hsa_id: cert.spec.hsa_id.clone(),
                organization: issuer.organization.clone(),
                locality: issuer.locality.clone(),
                usage: Usage::ServerToServer,
            };
            let csr = build_csr(&profile, &key)?;
            fresh_key = Some(key);
            let subject = parse_csr(&csr)?.subject;
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
            let mut meta_labels = labels(&name, "order");
            meta_labels.remove(ROLE_LABEL);
            meta_labels.insert(ISSUER_LABEL.into(), issuer_obj.name_any());
            meta_labels.insert(REVISION_KEY.into(), revision.to_string());
            let order = CertificateOrder {
                metadata: ObjectMeta {
                    name: Some(order_name.clone()),
                    namespace: Some(ns.into()),
                    labels: Some(meta_labels),
                    owner_references: Some(owner_reference(cert)),
                    ..Default::default()
                },
                spec: CertificateOrderSpec {
                    certificate_name: name.clone(),
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
            };
            match orders.create(&create_params(), &order).await {
                Ok(o) => {
                    info!(order = %order_name, revision, cost, "order created");
                    ctx.event(
                        cert,
                        false,
                        "OrderCreated",
                        "Order",
                        format!(
                            "CertificateOrder {order_name} created for revision {revision} (estimated cost {cost} SEK)"
                        ),
                    )
                    .await;
                    o
                }
                // Another replica or an earlier run created it: the same order.
                Err(kube::Error::Api(e)) if e.code == 409 => orders.get(&order_name).await?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    // An order a person created by hand under this name is not placed, approved or
    // imported into: it says so until it is deleted.
    if !order.made_for(cert.metadata.uid.as_deref().unwrap_or_default()) {
        s.set(ISSUING, false, "OrderNotMadeByOperator", &format!("CertificateOrder {order_name} was not created by the operator for this ServiceCertificate (it has no owner reference to it), so it is ignored; delete it and the operator creates revision {revision}'s order itself"));
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    advance_order(
        cert, ctx, s, issuer, order, &orders, &secrets, revision, fresh_key,
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

#[allow(clippy::too_many_arguments)]
async fn advance_order(
    cert: &ServiceCertificate,
    ctx: &Context,
    s: &mut Status,
    issuer: &ResolvedIssuer,
    order: CertificateOrder,
    orders: &Api<CertificateOrder>,
    secrets: &Api<Secret>,
    revision: u32,
    fresh_key: Option<PrivateKey>,
) -> Result<Action, Error> {
    let mut ost: CertificateOrderStatus = order.status.clone().unwrap_or_default();
    let decision = order.spec.approval.as_ref().map(|a| a.decision);
    let mut phase = ost.phase;
    if phase.is_none() {
        phase = Some(if issuer.approval_required {
            OrderPhase::PendingApproval
        } else {
            OrderPhase::Approved
        });
        if issuer.approval_required {
            let msg = format!(
                "CertificateOrder {} waits for approval (estimated cost {} SEK): sithsctl orders approve -n {} {}",
                order.name_any(),
                order.spec.estimated_cost_sek,
                order.namespace().unwrap_or_default(),
                order.name_any()
            );
            ctx.event(&order, false, "WaitingForApproval", "Approve", msg.clone())
                .await;
            ctx.event(cert, false, "WaitingForApproval", "Approve", msg)
                .await;
        }
    }
    if decision == Some(ApprovalDecision::Denied)
        && !matches!(phase, Some(OrderPhase::Issued) | Some(OrderPhase::Denied))
    {
        phase = Some(OrderPhase::Denied);
        let by = order
            .spec
            .approval
            .as_ref()
            .map(|a| a.by.clone())
            .unwrap_or_default();
        ost.reason = Some("Denied".into());
        ost.message = Some(format!("denied by {by}"));
        ctx.event(
            cert,
            true,
            "OrderDenied",
            "Approve",
            format!("CertificateOrder {} was denied by {by}", order.name_any()),
        )
        .await;
    }
    if phase == Some(OrderPhase::PendingApproval) && decision == Some(ApprovalDecision::Approved) {
        let a = order.spec.approval.as_ref();
        ost.approved = a.map(|a| format!("{} by {}", a.at, a.by));
        phase = Some(OrderPhase::Approved);
        ctx.event(
            cert,
            false,
            "OrderApproved",
            "Approve",
            format!(
                "CertificateOrder {} approved by {}",
                order.name_any(),
                a.map(|a| a.by.as_str()).unwrap_or("?")
            ),
        )
        .await;
    }

    let mut action = Action::await_change();
    match phase {
        Some(OrderPhase::PendingApproval) => {
            ost.reason = Some("WaitingForApproval".into());
            ost.message = Some(format!(
                "approve with: sithsctl orders approve -n {} {}",
                order.namespace().unwrap_or_default(),
                order.name_any()
            ));
            s.set(
                ISSUING,
                true,
                "WaitingForApproval",
                &format!("CertificateOrder {} waits for approval", order.name_any()),
            );
        }
        Some(OrderPhase::Denied) => {
            s.set(ISSUING, false, "OrderDenied", &format!("CertificateOrder {} was denied; no certificate is issued for revision {revision}", order.name_any()));
        }
        Some(OrderPhase::Issued) => {
            // The Secret was written before the order was marked; a later reconcile sees
            // the certificate in the Secret. Nothing to do here.
        }
        Some(OrderPhase::Approved)
        | Some(OrderPhase::AwaitingCertificate)
        | Some(OrderPhase::Failed) => {
            // The key stored for this revision (read back only when this pass did not
            // just make it).
            let key = match fresh_key {
                Some(k) => k,
                None => staged_key(cert, secrets, revision).await?,
            };
            let expected = Expected {
                dns_names: order.spec.dns_names.clone(),
                hsa_id: order.spec.hsa_id.clone(),
                public_key_der: key.public_key_der(),
                usage: Usage::ServerToServer,
                // The subject the order's CSR asked for (SERIALNUMBER, CN, O, L, C).
                subject: Some(pki::ExpectedSubject::from_csr_pem(&order.spec.csr)?),
            };
            let candidate: Option<String> = match &issuer.backend {
                ResolvedBackend::LocalCa { ca, lifetime } => {
                    let csr = parse_csr(&order.spec.csr)?;
                    let serial = pki::random_serial()?;
                    let chain = ca.sign_csr(&csr, s.now, *lifetime, &serial)?;
                    Some(pki::chain_to_pem(&chain))
                }
                ResolvedBackend::Manual => order.spec.certificate.clone().filter(|pem| {
                    ost.checked_certificate_sha256.as_deref()
                        != Some(sha256_fingerprint(pem.as_bytes()).as_str())
                        || ost.phase != Some(OrderPhase::Failed)
                }),
            };
            match candidate {
                None => {
                    if phase != Some(OrderPhase::Failed) {
                        phase = Some(OrderPhase::AwaitingCertificate);
                        ost.reason = Some("AwaitingCertificate".into());
                        ost.message = Some(format!(
                            "submit the CSR (sithsctl orders export-csr -n {ns} {o}) through Inera's portal, then import the signed certificate (sithsctl orders import -n {ns} {o} -f cert.pem)",
                            ns = order.namespace().unwrap_or_default(),
                            o = order.name_any()
                        ));
                        s.set(
                            ISSUING,
                            true,
                            "AwaitingCertificate",
                            ost.message.as_deref().unwrap_or_default(),
                        );
                    }
                }
                Some(pem) => {
                    ost.checked_certificate_sha256 = Some(sha256_fingerprint(pem.as_bytes()));
                    match check_issued(&pem, &expected, &issuer.anchors, s.now) {
                        Ok(accepted) => {
                            write_secret(cert, secrets, &accepted, &key, revision).await?;
                            phase = Some(OrderPhase::Issued);
                            ost.reason = Some("Issued".into());
                            ost.message = Some(format!(
                                "certificate serial {} accepted and written to Secret {}",
                                accepted.leaf.serial_hex, cert.spec.secret_name
                            ));
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
                            let msg = format!(
                                "revision {revision} issued (serial {}, valid until {}) and written to Secret {}",
                                accepted.leaf.serial_hex,
                                accepted.leaf.not_after,
                                cert.spec.secret_name
                            );
                            // The same condition a later pass finds (the event tells what
                            // happened), so that pass has nothing to write.
                            s.set(
                                READY,
                                true,
                                "Issued",
                                &ready_message(
                                    revision,
                                    &cert.spec.secret_name,
                                    accepted.leaf.not_after,
                                ),
                            );
                            s.set(ISSUING, false, "UpToDate", "no issuance needed");
                            ctx.event(cert, false, "Issued", "Issue", msg).await;
                            // The key now lives in the certificate Secret.
                            delete_ignoring_absent(
                                secrets,
                                &key_secret_name(&cert.name_any(), revision),
                            )
                            .await?;
                            action = Action::requeue(
                                time_until_renewal(s.now, renew_at).min(MAX_REQUEUE),
                            );
                        }
                        Err(rejection) => {
                            phase = Some(OrderPhase::Failed);
                            ost.reason = Some(rejection.reason().into());
                            ost.message = Some(rejection.message());
                            let failed = s.st.failed_attempts.unwrap_or(0).saturating_add(1);
                            s.st.failed_attempts = Some(failed);
                            s.st.last_failure_time = Some(rfc3339(s.now));
                            let msg = format!(
                                "the certificate for CertificateOrder {} was rejected ({}): {}; the Secret is unchanged",
                                order.name_any(),
                                rejection.reason(),
                                rejection.message()
                            );
                            s.set(ISSUING, false, rejection.reason(), &msg);
                            ctx.event(&order, true, "CertificateRejected", "Import", msg.clone())
                                .await;
                            ctx.event(cert, true, "CertificateRejected", "Import", msg)
                                .await;
                            if matches!(issuer.backend, ResolvedBackend::LocalCa { .. }) {
                                let uid = cert.uid().unwrap_or_default();
                                let delay = BackoffPolicy::for_siths(issuer.environment)
                                    .delay(failed, &uid);
                                action = Action::requeue(delay.max(Duration::from_secs(1)));
                            }
                        }
                    }
                }
            }
        }
        None => {}
    }
    ost.phase = phase;
    apply_status(orders, &order, order.status.as_ref(), &ost).await?;
    Ok(action)
}

pub(super) async fn write_secret(
    cert: &ServiceCertificate,
    secrets: &Api<Secret>,
    accepted: &pki::Accepted,
    key: &PrivateKey,
    revision: u32,
) -> Result<(), Error> {
    let data: BTreeMap<String, ByteString> = [
        (
            "tls.crt".to_string(),
            ByteString(accepted.chain_pem().into_bytes()),
        ),
        ("tls.key".to_string(), ByteString(key.to_pem().into_bytes())),
    ]
    .into();
    let mut data = data;
    // A root of Mozilla's store is known by name only: no ca.crt then.
    if accepted.root.is_some() {
        data.insert(
            "ca.crt".to_string(),
            ByteString(accepted.root_pem().into_bytes()),
        );
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(cert.spec.secret_name.clone()),
            labels: Some(labels(&cert.name_any(), ROLE_CERTIFICATE)),
            annotations: Some(
                [
                    (REVISION_KEY.to_string(), revision.to_string()),
                    // Full precision, to order it against renewal requests.
                    (ISSUED_AT_KEY.to_string(), now().to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    };
    let mut value = serde_json::to_value(&secret)?;
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    match secrets
        .patch(
            &cert.spec.secret_name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&value),
        )
        .await
    {
        Ok(_) => Ok(()),
        // A Secret of another type cannot change type in place: replace it.
        Err(kube::Error::Api(e)) if e.code == 422 => {
            secrets
                .delete(&cert.spec.secret_name, &DeleteParams::default())
                .await?;
            secrets.create(&create_params(), &secret).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
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
        watcher(
            Api::<K>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .modify(|o| o.meta_mut().managed_fields = None),
    )
    .touched_objects()
}

/// Runs the ServiceCertificate controller until `shutdown` resolves. Its issuer watches
/// fill the issuer caches of `ctx` through `issuers` (see [`super::IssuerCaches`]).
pub async fn run(
    ctx: Arc<Context>,
    controller: Controller<ServiceCertificate>,
    issuers: IssuerCacheWriters,
) {
    let client = ctx.client.clone();
    let store = controller.store();
    let by_issuer = store.clone();
    let by_public_issuer = store.clone();
    let public_generations = Generations::default();
    let by_validation = store.clone();
    let by_secret = store.clone();
    let issuer_generations = Generations::default();
    let validation_generations = Generations::default();
    controller
        // Issuing one certificate touches its order, Secret and status in quick
        // succession; collapse those triggers. The debounce also delays the first look at
        // a new certificate, so it stays short (B2 latency).
        // At most RECONCILE_CONCURRENCY passes at once. Without a limit, ten thousand new
        // certificates were ten thousand passes in flight, each holding its objects while
        // it waited for a key: 1.4 GiB of memory in B3.
        .with_config(
            kube::runtime::controller::Config::default()
                .debounce(Duration::from_millis(100))
                .concurrency(RECONCILE_CONCURRENCY),
        )
        .owns(
            Api::<CertificateOrder>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .watches(
            Api::<Secret>::all(client.clone()),
            watcher::Config::default()
                .labels(&format!("{}={},{ROLE_LABEL}={ROLE_CERTIFICATE}", MANAGED_BY.0, MANAGED_BY.1))
                .any_semantic(),
            move |secret| {
                // By label, and by name: a tampered Secret may have lost its labels (the
                // watch then reports it as deleted).
                let ns = secret.namespace().unwrap_or_default();
                let by_label = secret
                    .labels()
                    .get(CERTIFICATE_LABEL)
                    .map(|name| ObjectRef::new(name).within(&ns));
                let name = secret.name_any();
                let by_name = by_secret
                    .state_filter(|c| {
                        c.spec.secret_name == name
                            && c.metadata.namespace.as_deref() == Some(ns.as_str())
                    })
                    .iter()
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect::<Vec<_>>();
                by_label.into_iter().chain(by_name)
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
        .watches(
            Api::<DomainValidation>::all(client),
            watcher::Config::default().any_semantic(),
            move |dv| {
                if !validation_generations.changed(&dv.name_any(), dv.metadata.generation) {
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
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{IssuerRef, Purpose, ServiceCertificateSpec};
    use kube::runtime::{reflector, watcher::Event};

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
            },
        );
        c.metadata.namespace = Some("ns".into());
        c.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::from_second(created).unwrap(),
        ));
        c
    }

    #[test]
    fn the_oldest_certificate_owns_a_shared_secret() {
        let (reader, mut writer) = reflector::store();
        writer.apply_watcher_event(&Event::Apply(cert("newer", "shared", 200)));
        writer.apply_watcher_event(&Event::Apply(cert("older", "shared", 100)));
        writer.apply_watcher_event(&Event::Apply(cert("other", "own", 50)));
        assert_eq!(
            secret_owner(&reader, "ns", "shared").as_deref(),
            Some("older")
        );
        assert_eq!(secret_owner(&reader, "ns", "own").as_deref(), Some("other"));
        assert_eq!(secret_owner(&reader, "elsewhere", "shared"), None);
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
        assert_eq!(key_spec(&c), KeySpec::RSA_2048);
        // A size the CRD admits is the size made, never quietly another one.
        let mut c = c;
        for (size, spec) in [
            (2048, KeySpec::RSA_2048),
            (3072, KeySpec::RSA_3072),
            (4096, KeySpec::RSA_4096),
        ] {
            c.spec.private_key = Some(crate::api::PrivateKeySpec {
                algorithm: KeyAlgorithm::Rsa,
                size: Some(size),
                rotation_policy: None,
            });
            assert_eq!(key_spec(&c), spec);
        }
    }
}
