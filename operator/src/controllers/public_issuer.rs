//! `PublicIssuer` status: whether the source can issue, and if not, what to fix.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use kube::{
    Api, ResourceExt,
    runtime::{controller::Action, watcher},
};
use tracing::warn;

use super::{Context, Error, apply_status, measured, now, public_route::additional_anchors};
use crate::{
    api::{PublicIssuer, status},
    policy::conditions::{DesiredCondition, set_condition},
};

/// How often a healthy issuer is looked at again (the ACME account, cert-manager's CRDs).
const RECHECK: Duration = Duration::from_secs(3600);

/// What a source check found: `Ok(message)` or `Err((reason, message))`, and the ACME
/// account URL when there is one.
type Checked = (Result<String, (String, String)>, Option<String>);

/// Whether the issuer's source works.
async fn check_source(issuer: &PublicIssuer, ctx: &Context) -> Result<Checked, Error> {
    if let Some(r) = &issuer.spec.additional_trust_anchors
        && let Err(message) = additional_anchors(ctx, r).await?
    {
        return Ok((Err(("TrustAnchorsInvalid".into(), message)), None));
    }
    if issuer.spec.acme.is_some() {
        return Ok(match ctx.acme.ensure_account(issuer).await {
            Ok(url) => (
                Ok(format!(
                    "ACME account {url} is registered; its key is kept in the privateKeySecretRef Secret"
                )),
                Some(url),
            ),
            Err(e) => (Err((e.reason.to_string(), e.message)), None),
        });
    }
    if issuer.spec.cert_manager.is_some() {
        return Ok(if super::cert_manager::crds_present(&ctx.client).await? {
            (
                Ok("cert-manager is installed; certificates are delegated to it and verified by the operator".to_string()),
                None,
            )
        } else {
            (
                Err((
                    super::cert_manager::REASON_CRDS_MISSING.to_string(),
                    super::cert_manager::CRDS_MISSING_MESSAGE.to_string(),
                )),
                None,
            )
        });
    }
    Ok((
        Ok(
            "certificates are placed in their Secrets by a person and verified by the operator"
                .to_string(),
        ),
        None,
    ))
}

/// Reconciles one PublicIssuer.
pub async fn reconcile(issuer: Arc<PublicIssuer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let mut st = issuer.status.clone().unwrap_or_default();
    st.observed_generation = issuer.metadata.generation;
    st.source = Some(issuer.spec.source().to_string());
    let (checked, account) = check_source(&issuer, &ctx).await?;
    st.acme_account_uri = account;
    let (ok, reason, message, requeue) = match checked {
        Ok(message) => (
            true,
            issuer.spec.source().to_string() + "Ready",
            message,
            RECHECK,
        ),
        Err((reason, message)) => (false, reason, message, Duration::from_secs(120)),
    };
    set_condition(
        &mut st.conditions,
        &DesiredCondition {
            type_: crate::vocabulary::condition::READY,
            status: if ok { status::TRUE } else { status::FALSE },
            reason: &reason,
            message: &message,
            observed_generation: issuer.metadata.generation,
        },
        now(),
    );
    let api: Api<PublicIssuer> = Api::all(ctx.client.clone());
    apply_status(&api, issuer.as_ref(), issuer.status.as_ref(), &st).await?;
    Ok(Action::requeue(requeue))
}

/// Runs the PublicIssuer controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<PublicIssuer> = Api::all(ctx.client.clone());
    super::controller(api, watcher::Config::default().any_semantic())
        .graceful_shutdown_on(shutdown)
        .run(
            |o, ctx| measured(ctx.clone(), "PublicIssuer", reconcile(o, ctx)),
            |issuer, e, _| {
                warn!(error = %e, label = e.metric_label(), name = %issuer.name_any(), "PublicIssuer reconcile failed");
                Action::requeue(Duration::from_secs(15))
            },
            ctx,
        )
        .for_each(super::log_output("PublicIssuer"))
        .await;
}
