//! The public route of a `ServiceCertificate` (`purpose: UserFacing`, a `PublicIssuer`).
//!
//! The same gates as the SITHS route (issuer, namespace, names, domain validation unless the
//! issuer turns it off, one owner per Secret), then the certificate in the Secret is checked
//! with [`pki::check_public`]: it must chain to Mozilla's root store (or the issuer's
//! additional test roots), never to SITHS, cover exactly the names, carry serverAuth, be
//! valid and match its key. Only then is it `Ready`. Where it comes from depends on the
//! issuer: ACME (the operator orders and writes the Secret), cert-manager (cert-manager
//! writes the Secret), or a person (manual).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::{Api, ResourceExt, api::ListParams, runtime::controller::Action};

use tracing::{info, warn};

use super::{
    Context, Error,
    cert_manager::{self, Delegation},
    cert_status::{MAX_REQUEUE, Status, count_tampering},
    certificate_secret::{adopt, cleanup_staged_keys, secret_text, staged_key, write_secret},
    siths_issuer::read_config_map,
};
use crate::{
    api::{PublicIssuer, ServiceCertificate},
    pki::{
        self, CertificateProfile, Expected, PrivateKey, SithsAnchors, TrustAnchors, Usage,
        build_csr,
    },
    policy::{
        backoff::BackoffPolicy,
        conditions::{failed_attempt, find_condition, true_reason},
        gates::shared_with_backend_message,
        issuers::Source,
        renewal::{
            RenewalInput, parse_renew_before, renewal_due, renewal_in_window, renewal_requested,
            renewal_time, time_until_renewal,
        },
        rfc3339,
        routing::Route,
    },
    vocabulary::{
        CERTIFICATE_LABEL, ISSUED_AT_KEY, Notice, RENEW_REQUESTED_KEY, REVISION_KEY, action,
        condition::{ISSUING, READY},
        reason,
    },
};

/// How often a delegated certificate looks at cert-manager's progress again (its
/// `Certificate` is not watched: the kind may not be installed).
const CERT_MANAGER_RECHECK: Duration = Duration::from_secs(30);

/// How often a certificate waiting for a person (manual issuer) looks at its Secret again,
/// besides the Secret watch.
const MANUAL_RECHECK: Duration = Duration::from_secs(60);

/// The route for `UserFacing` certificates, once the gates passed: `issuer` is the
/// PublicIssuer, `additional` its test roots, `source` where its certificates come from.
pub(super) async fn process(
    cert: &ServiceCertificate,
    ns: &str,
    ctx: &Context,
    s: &mut Status,
    issuer: &PublicIssuer,
    additional: Option<&TrustAnchors>,
    source: Source,
) -> Result<Action, Error> {
    let spec = &cert.spec;
    // Trust: Mozilla's store, the issuer's additional roots, and SITHS to refuse.
    let siths = ctx.siths_anchors();
    let siths_refs: Vec<&SithsAnchors> = siths.iter().collect();

    // 5. What the Secret holds now.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = secrets.get_opt(&spec.secret_name).await?;
    let current = current_public(cert, secret.as_ref(), additional, &siths_refs, s.now);
    let secret_revision = secret.as_ref().and_then(|sec| {
        sec.annotations()
            .get(REVISION_KEY)
            .and_then(|v| v.parse::<u32>().ok())
    });
    let uid = cert.uid().ok_or(Error::Incomplete("uid"))?;

    let current_problem = current.as_ref().err().cloned();
    match current {
        Ok(accepted) => {
            let leaf = &accepted.leaf;
            let managed = secret
                .as_ref()
                .is_some_and(|sec| sec.labels().get(CERTIFICATE_LABEL) == Some(&cert.name_any()));
            if !managed {
                // Placed by a person or cert-manager: label it so the Secret watch sees
                // every later change. The content is never touched.
                adopt(&secrets, &spec.secret_name, &cert.name_any()).await?;
            }
            let revision = secret_revision.or(s.st.revision).unwrap_or(1);
            let renew_before = spec
                .renew_before
                .as_deref()
                .and_then(|v| parse_renew_before(v).ok());
            let mut renew_at = renewal_time(&RenewalInput {
                not_before: leaf.not_before,
                not_after: leaf.not_after,
                renew_before,
                lead_time: jiff::SignedDuration::ZERO,
                kind: Route::Public,
                uid: &uid,
            });
            // The CA's own window (ARI) when it offers one, unless renewBefore asks for
            // earlier; if the CA cannot be asked, the computed time stands.
            if source == Source::Acme
                && let Some(leaf_der) = accepted.chain.first()
            {
                match ctx.acme.renewal_window(issuer, leaf_der).await {
                    Ok(Some((start, end))) => {
                        let in_window = renewal_in_window(start, end, &uid);
                        renew_at = if renew_before.is_some() {
                            renew_at.min(in_window)
                        } else {
                            in_window
                        };
                    }
                    Ok(None) => {}
                    Err(e) => {
                        warn!(error = %e, "ACME renewal information unavailable; renewing at two thirds of the lifetime")
                    }
                }
            }
            s.record(leaf, renew_at, revision);
            s.st.current_order = None;
            // A certificate this operator issued stays `Issued`; one found in place is
            // `Verified`.
            let ready_reason = true_reason(&s.st.conditions, READY)
                .unwrap_or(reason::VERIFIED)
                .to_string();
            s.set(
                READY,
                true,
                &ready_reason,
                &ready_message(&leaf.issuer, &spec.secret_name, &leaf.not_after),
            );
            super::certificate_secret::sync_stores(
                ctx,
                cert,
                s,
                &secrets,
                secret.as_ref(),
                &accepted,
            )
            .await?;
            let issued_at = secret
                .as_ref()
                .and_then(|sec| sec.annotations().get(ISSUED_AT_KEY))
                .and_then(|t| t.parse::<Timestamp>().ok())
                .unwrap_or(leaf.not_before);
            let requested = cert
                .annotations()
                .get(RENEW_REQUESTED_KEY)
                .and_then(|t| t.parse::<Timestamp>().ok());
            let due = renewal_due(s.now, renew_at) || renewal_requested(requested, issued_at);
            if !due {
                s.set(ISSUING, false, reason::UP_TO_DATE, "no issuance needed");
                s.forget_failures_when_quiet();
                return Ok(Action::requeue(
                    time_until_renewal(s.now, renew_at).min(MAX_REQUEUE),
                ));
            }
            if source == Source::CertManager
                && let Some(cm) = &issuer.spec.cert_manager
            {
                // cert-manager renews on its own; keep its Certificate as the spec says.
                let state =
                    cert_manager::ensure_certificate(&ctx.client, cert, &cm.issuer_ref).await?;
                s.set(
                    ISSUING,
                    true,
                    reason::DELEGATED_RENEWAL,
                    &format!("renewal is due (renewal time {renew_at}); cert-manager renews the certificate ({})", describe(&state)),
                );
                return Ok(Action::requeue(CERT_MANAGER_RECHECK));
            }
            if source == Source::PublicManual {
                let message = format!(
                    "renewal is due (renewal time {renew_at}); place a renewed certificate for {} in Secret {}{}",
                    spec.dns_names.join(", "),
                    spec.secret_name,
                    instructions(issuer)
                );
                announce(ctx, cert, s, reason::RENEWAL_DUE, &message).await;
                s.set(ISSUING, true, reason::AWAITING_CERTIFICATE, &message);
                return Ok(Action::requeue(
                    MANUAL_RECHECK.max(time_until_renewal(s.now, leaf.not_after).min(MAX_REQUEUE)),
                ));
            }
        }
        Err(why) => {
            // A Secret that back-end traffic depends on is never overwritten.
            if let Some(sec) = &secret
                && !is_ours(sec, cert)
                && let Some(user) = backend_user(ctx, ns, sec, &siths_refs, s.now).await?
            {
                s.not_ready(
                    reason::SHARED_WITH_BACKEND,
                    &shared_with_backend_message(&spec.secret_name, &user),
                );
                return Ok(Action::requeue(MAX_REQUEUE));
            }
            if source == Source::PublicManual {
                let (reason, message) = match &secret {
                    None => (
                        reason::AWAITING_CERTIFICATE,
                        format!(
                            "place the certificate for {} and its key in Secret {} (type kubernetes.io/tls: tls.crt with the chain, leaf first; tls.key){}",
                            spec.dns_names.join(", "),
                            spec.secret_name,
                            instructions(issuer)
                        ),
                    ),
                    Some(_) => (
                        reason::CERTIFICATE_REJECTED,
                        format!("Secret {}: {why}", spec.secret_name),
                    ),
                };
                announce(ctx, cert, s, reason, &message).await;
                s.not_ready(reason, &message);
                return Ok(Action::requeue(MANUAL_RECHECK));
            }
            let message = format!("Secret {}: {why}", spec.secret_name);
            if source == Source::Acme && secret_revision.or(s.st.revision).is_some() {
                count_tampering(ctx, cert, s, secret.is_some(), &message).await;
            }
            s.set(READY, false, reason::ISSUING, &message);
        }
    }

    // Automatic sources.
    if source == Source::CertManager
        && let Some(cm) = &issuer.spec.cert_manager
    {
        let state = cert_manager::ensure_certificate(&ctx.client, cert, &cm.issuer_ref).await?;
        let (reason, message, requeue) = match &state {
            Delegation::CrdsMissing { message } => (
                cert_manager::REASON_CRDS_MISSING.to_string(),
                message.clone(),
                Duration::from_secs(300),
            ),
            Delegation::Pending { reason, message } | Delegation::Failed { reason, message } => (
                reason.clone(),
                format!("cert-manager: {message}"),
                CERT_MANAGER_RECHECK,
            ),
            // cert-manager is content, but the Secret did not pass the check above.
            Delegation::Ready => (
                reason::CERTIFICATE_REJECTED.to_string(),
                format!(
                    "cert-manager reports the certificate Ready, but Secret {} was refused: {}",
                    spec.secret_name,
                    current_problem.as_deref().unwrap_or("renewal is due")
                ),
                CERT_MANAGER_RECHECK,
            ),
        };
        announce(ctx, cert, s, &reason, &message).await;
        s.not_ready(&reason, &message);
        return Ok(Action::requeue(requeue));
    }
    let revision = secret_revision.or(s.st.revision).unwrap_or(0) + 1;
    if source == Source::Acme {
        return issue_acme(
            cert,
            ns,
            ctx,
            s,
            issuer,
            revision,
            &uid,
            additional,
            &siths_refs,
        )
        .await;
    }
    s.not_ready(
        reason::SOURCE_UNAVAILABLE,
        &format!(
            "PublicIssuer {} uses {}, which this build cannot issue through yet",
            issuer.name_any(),
            issuer.spec.source()
        ),
    );
    Ok(Action::await_change())
}

/// Orders revision `revision` over ACME: the key is stored before the CSR exists, the
/// chain the CA returns is checked like any other before key and certificate replace the
/// Secret together. Failures back off exponentially per certificate.
#[allow(clippy::too_many_arguments)]
async fn issue_acme(
    cert: &ServiceCertificate,
    ns: &str,
    ctx: &Context,
    s: &mut Status,
    issuer: &PublicIssuer,
    revision: u32,
    uid: &str,
    additional: Option<&TrustAnchors>,
    siths: &[&SithsAnchors],
) -> Result<Action, Error> {
    let failed = s.st.failed_attempts.unwrap_or(0);
    if failed > 0
        && let Some(last) =
            s.st.last_failure_time
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
    {
        let retry = BackoffPolicy::STANDARD.retry_at(last, failed, uid);
        if s.now < retry {
            // Waiting out the backoff, the last attempt's failure stays the reason (both
            // conditions carry it): a plain "Issuing" hid it, and its write after every
            // failed attempt was a second one.
            if let Some(last) = cert
                .status
                .as_ref()
                .and_then(|st| failed_attempt(&st.conditions))
            {
                let (reason, message) = (last.reason.clone(), last.message.clone());
                s.not_ready(&reason, &message);
            }
            return Ok(Action::requeue(
                retry
                    .duration_since(s.now)
                    .unsigned_abs()
                    .max(Duration::from_secs(1)),
            ));
        }
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let key = staged_key(cert, &secrets, revision).await?;
    let profile = CertificateProfile {
        dns_names: cert.spec.dns_names.clone(),
        hsa_id: None,
        organization: String::new(),
        locality: None,
        usage: Usage::UserFacing,
    };
    let csr = pki::parse_csr(&build_csr(&profile, &key)?)?;
    let directory = issuer
        .spec
        .acme
        .as_ref()
        .map(|a| a.directory())
        .unwrap_or_default();
    info!(certificate = %cert.name_any(), revision, directory, "ordering over ACME");
    let outcome = match ctx
        .acme
        .issue(
            issuer,
            ns,
            &cert.spec.dns_names,
            &csr.der,
            crate::policy::ingress::gateway_owner(cert),
        )
        .await
    {
        Ok(issued) => pki::check_public(
            &issued.chain_pem,
            &Expected {
                dns_names: cert.spec.dns_names.clone(),
                hsa_id: None,
                public_key_der: key.public_key_der(),
                usage: Usage::UserFacing,
                subject: None,
            },
            additional,
            siths,
            // The certificate is as new as the order's end: its notBefore can lie after
            // this pass began (Pebble sets it to the second of issuance), and checking it
            // as of then refused it as NotYetValid, a failed attempt and a backoff.
            Timestamp::now(),
        )
        .map(|accepted| (accepted, issued.renewal_window))
        .map_err(|r| {
            (
                r.reason(),
                format!(
                    "the ACME CA returned a certificate that was refused: {}",
                    r.message()
                ),
                None,
            )
        }),
        Err(e) => Err((e.reason, e.message.clone(), e.retry_after)),
    };
    match outcome {
        Ok((accepted, window)) => {
            write_secret(cert, s, &secrets, &accepted, &key, revision).await?;
            let leaf = &accepted.leaf;
            let message = format!(
                "revision {revision} from {directory} (issuer {}) written to Secret {}, valid until {}",
                leaf.issuer, cert.spec.secret_name, leaf.not_after
            );
            // The staged key goes and the event is recorded at once (two round trips to the
            // API that do not depend on each other).
            let name = cert.name_any();
            let (cleaned, ()) = tokio::join!(
                cleanup_staged_keys(&secrets, &name, revision),
                ctx.event(cert, Notice::normal(reason::ISSUED, action::ISSUE, message))
            );
            cleaned?;
            let renew_at = match window {
                Some((start, end)) => renewal_in_window(start, end, uid),
                None => renewal_time(&RenewalInput {
                    not_before: leaf.not_before,
                    not_after: leaf.not_after,
                    renew_before: cert
                        .spec
                        .renew_before
                        .as_deref()
                        .and_then(|v| parse_renew_before(v).ok()),
                    lead_time: jiff::SignedDuration::ZERO,
                    kind: Route::Public,
                    uid,
                }),
            };
            // Failures are forgotten after an hour of health, not at once: tampering that
            // keeps coming back keeps backing off.
            s.record(leaf, renew_at, revision);
            s.st.current_order = None;
            // The condition a later pass computes, so that pass finds nothing to write.
            s.set(
                READY,
                true,
                reason::ISSUED,
                &ready_message(&leaf.issuer, &cert.spec.secret_name, &leaf.not_after),
            );
            s.set(ISSUING, false, reason::UP_TO_DATE, "no issuance needed");
            Ok(Action::requeue(
                time_until_renewal(s.now, renew_at).min(MAX_REQUEUE),
            ))
        }
        Err((reason, message, retry_after)) => {
            let failed = failed.saturating_add(1);
            s.st.failed_attempts = Some(failed);
            s.st.last_failure_time = Some(rfc3339(s.now));
            let delay = BackoffPolicy::STANDARD
                .delay(failed, uid)
                .max(retry_after.unwrap_or_default());
            let message = format!(
                "{message} (attempt {failed}; next attempt in {}s)",
                delay.as_secs()
            );
            warn!(certificate = %cert.name_any(), reason, "ACME issuance failed");
            s.not_ready(reason, &message);
            ctx.event(cert, Notice::warning(reason, action::ISSUE, message))
                .await;
            Ok(Action::requeue(delay.max(Duration::from_secs(1))))
        }
    }
}

fn instructions(issuer: &PublicIssuer) -> String {
    issuer
        .spec
        .manual
        .as_ref()
        .and_then(|m| m.instructions.as_deref())
        .map(|i| format!(". {i}"))
        .unwrap_or_default()
}

/// cert-manager's state in words, for a message.
fn describe(state: &Delegation) -> String {
    match state {
        Delegation::CrdsMissing { message } => message.clone(),
        Delegation::Pending { reason, message } | Delegation::Failed { reason, message } => {
            format!("{reason}: {message}")
        }
        Delegation::Ready => "Ready".into(),
    }
}

/// An event when the reason changes, so a waiting certificate does not repeat itself.
async fn announce(
    ctx: &Context,
    cert: &ServiceCertificate,
    s: &Status,
    reason: &str,
    message: &str,
) {
    let was = find_condition(&s.st.conditions, ISSUING).map(|c| c.reason.clone());
    let ready_was = find_condition(&s.st.conditions, READY).map(|c| c.reason.clone());
    if was.as_deref() != Some(reason) && ready_was.as_deref() != Some(reason) {
        ctx.event(
            cert,
            Notice::warning(reason, action::VERIFY, message.to_string()),
        )
        .await;
    }
}

fn is_ours(secret: &Secret, cert: &ServiceCertificate) -> bool {
    secret.labels().get(CERTIFICATE_LABEL) == Some(&cert.name_any())
}

/// Checks the Secret's certificate and key for the public route.
fn current_public(
    cert: &ServiceCertificate,
    secret: Option<&Secret>,
    additional: Option<&TrustAnchors>,
    siths: &[&SithsAnchors],
    now: Timestamp,
) -> Result<pki::Accepted, String> {
    let secret = secret.ok_or_else(|| "no Secret".to_string())?;
    let crt = secret_text(secret, "tls.crt").ok_or("tls.crt missing or not text")?;
    let key = secret_text(secret, "tls.key").ok_or("tls.key missing or not text")?;
    let public_key_der = PrivateKey::from_pem(&key)
        .map_err(|e| format!("tls.key: {e}"))?
        .public_key_der();
    pki::check_public(
        &crt,
        &Expected {
            dns_names: cert.spec.dns_names.clone(),
            hsa_id: None,
            public_key_der,
            usage: Usage::UserFacing,
            subject: None,
        },
        additional,
        siths,
        now,
    )
    .map_err(|r| format!("{}: {}", r.reason(), r.message()))
}

/// Who else uses a Secret that holds a SITHS certificate: a pod mounting it. `None` when
/// the Secret does not hold SITHS or nothing mounts it.
async fn backend_user(
    ctx: &Context,
    ns: &str,
    secret: &Secret,
    siths: &[&SithsAnchors],
    now: Timestamp,
) -> Result<Option<String>, Error> {
    let Some(chain) = secret_text(secret, "tls.crt").and_then(|c| pki::parse_pem_chain(&c).ok())
    else {
        return Ok(None);
    };
    if pki::is_siths(&chain, siths, now) == pki::SithsVerdict::NotSiths {
        return Ok(None);
    }
    let name = secret.name_any();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let list = pods.list(&ListParams::default()).await?;
    Ok(list
        .items
        .iter()
        .find(|p| pod_mounts(p, &name))
        .map(|p| format!("pod {} mounts it", p.name_any())))
}

/// Whether a pod mounts Secret `name` (a secret volume or a projected source).
pub(crate) fn pod_mounts(pod: &Pod, name: &str) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .any(|v| {
            v.secret
                .as_ref()
                .is_some_and(|s| s.secret_name.as_deref() == Some(name))
                || v.projected.as_ref().is_some_and(|p| {
                    p.sources
                        .iter()
                        .flatten()
                        .any(|src| src.secret.as_ref().is_some_and(|s| s.name == name))
                })
        })
}

/// The issuer's additional trust anchors; a SITHS CA among them is refused.
pub(super) async fn additional_anchors(
    ctx: &Context,
    r: &crate::api::ConfigMapKeyRef,
) -> Result<Result<TrustAnchors, String>, Error> {
    let Some(pem) = read_config_map(ctx, r).await? else {
        return Ok(Err(format!(
            "ConfigMap {}/{} key {} with additionalTrustAnchors does not exist",
            r.namespace, r.name, r.key
        )));
    };
    Ok(public_anchors_from_pem(&pem).map_err(|e| {
        format!(
            "additionalTrustAnchors ConfigMap {}/{}: {e}",
            r.namespace, r.name
        )
    }))
}

/// Parses additional public roots; SITHS CAs (pinned or named) are never public roots.
pub(crate) fn public_anchors_from_pem(pem: &str) -> Result<TrustAnchors, String> {
    let anchors = TrustAnchors::from_pem(pem).map_err(|e| e.to_string())?;
    for der in anchors.roots().iter().chain(anchors.intermediates()) {
        let info = pki::CertInfo::parse(der).map_err(|e| e.to_string())?;
        let named = info
            .common_name
            .as_deref()
            .is_some_and(|cn| cn.to_ascii_lowercase().contains("siths"));
        if named || pki::siths::impersonates_pin(der).is_some() || pki::siths::is_pinned(der) {
            return Err(format!(
                "{} is a SITHS CA; SITHS is never a public trust anchor",
                info.subject
            ));
        }
    }
    Ok(anchors)
}

/// The `Ready` message of a publicly trusted certificate in place: the same from the pass
/// that issued it and from every later pass (another text was one more status write and
/// one more pass per issuance).
fn ready_message(issuer: &str, secret: &str, not_after: &impl std::fmt::Display) -> String {
    format!(
        "publicly trusted certificate (issuer {issuer}) in Secret {secret} is valid until {not_after}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{KeySpec, LocalCa, LocalCaOptions};
    use k8s_openapi::api::core::v1::{
        PodSpec, ProjectedVolumeSource, SecretProjection, SecretVolumeSource, Volume,
        VolumeProjection,
    };

    fn ca(name: &str) -> LocalCa {
        LocalCa::generate(&LocalCaOptions {
            common_name: name.into(),
            organization: "T".into(),
            key: KeySpec::ECDSA_P256,
            intermediate_common_name: None,
            not_before: Timestamp::UNIX_EPOCH,
            validity: Duration::from_secs(3600),
        })
        .unwrap()
    }

    #[test]
    fn siths_is_never_an_additional_public_root() {
        assert!(public_anchors_from_pem(&ca("Pebble Root CA").root_pem()).is_ok());
        let e = public_anchors_from_pem(&ca("SITHS e-id Root CA v2").root_pem()).unwrap_err();
        assert!(e.contains("never a public trust anchor"), "{e}");
        assert!(public_anchors_from_pem("not pem").is_err());
    }

    #[test]
    fn pods_mount_secrets_directly_or_projected() {
        let pod = |volumes: Vec<Volume>| Pod {
            spec: Some(PodSpec {
                volumes: Some(volumes),
                ..Default::default()
            }),
            ..Default::default()
        };
        let direct = pod(vec![Volume {
            name: "tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some("portal-tls".into()),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        assert!(pod_mounts(&direct, "portal-tls"));
        assert!(!pod_mounts(&direct, "other"));
        let projected = pod(vec![Volume {
            name: "all".into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    secret: Some(SecretProjection {
                        name: "portal-tls".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        assert!(pod_mounts(&projected, "portal-tls"));
        assert!(!pod_mounts(&Pod::default(), "portal-tls"));
    }
}
