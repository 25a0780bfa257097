//! `DomainValidation`: the `Validated` condition, recomputed daily and at expiry.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use kube::{
    Api,
    runtime::{Controller, controller::Action, watcher},
};
use tracing::warn;

use super::{Context, Error, apply_status, measured, now};
use crate::{
    api::{DomainValidation, DomainValidationStatus, status},
    policy::{
        conditions::{DesiredCondition, set_condition},
        domain_validation::{today, verdict},
    },
    vocabulary::Notice,
};

/// Reconciles one DomainValidation.
pub async fn reconcile(dv: Arc<DomainValidation>, ctx: Arc<Context>) -> Result<Action, Error> {
    let v = verdict(&dv, today(now()));
    let mut st: DomainValidationStatus = dv.status.clone().unwrap_or_default();
    st.observed_generation = dv.metadata.generation;
    set_condition(
        &mut st.conditions,
        &DesiredCondition {
            type_: crate::vocabulary::condition::VALIDATED,
            status: if v.validated {
                status::TRUE
            } else {
                status::FALSE
            },
            reason: v.reason,
            message: &v.message,
            observed_generation: dv.metadata.generation,
        },
        now(),
    );
    let api: Api<DomainValidation> = Api::all(ctx.client.clone());
    let changed = apply_status(&api, dv.as_ref(), dv.status.as_ref(), &st)
        .await?
        .is_some();
    if changed && !v.validated {
        ctx.event(
            dv.as_ref(),
            Notice::warning(v.reason, "Validate", v.message.clone()),
        )
        .await;
    }
    // Dates turn at midnight; look again within the hour.
    Ok(Action::requeue(Duration::from_secs(3600)))
}

/// Runs the DomainValidation controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<DomainValidation> = Api::all(ctx.client.clone());
    Controller::new(api, watcher::Config::default().any_semantic())
        .graceful_shutdown_on(shutdown)
        .run(
            |o, ctx| measured(ctx.clone(), "DomainValidation", reconcile(o, ctx)),
            |_, e, _| {
                warn!(error = %e, label = e.metric_label(), "DomainValidation reconcile failed");
                Action::requeue(Duration::from_secs(15))
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
}
