//! `DomainValidation`: the `Validated` condition, recomputed daily and at expiry, and the
//! live DNS TXT check of `evidence.dnsTxtRecord` on its schedule (see
//! [`crate::policy::dns_check`]).

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use kube::{
    Api, ResourceExt,
    runtime::{controller::Action, watcher},
};
use tracing::{info, warn};

use super::{Context, Error, apply_status, measured, now};
use crate::{
    api::{DomainValidation, DomainValidationStatus, status},
    policy::{
        conditions::{DesiredCondition, find_condition, set_condition},
        dns_check::{self, DnsCheck},
        domain_validation::verdict,
    },
    vocabulary::{Notice, condition, dns},
};

/// Longest wait between two passes: dates turn at midnight.
const DAILY: Duration = Duration::from_secs(3600);

/// Reconciles one DomainValidation.
pub async fn reconcile(dv: Arc<DomainValidation>, ctx: Arc<Context>) -> Result<Action, Error> {
    // Gather: the live lookup, when due.
    let now = now();
    let mut st: DomainValidationStatus = dv.status.clone().unwrap_or_default();
    st.observed_generation = dv.metadata.generation;
    let uid = dv.uid().unwrap_or_else(|| dv.name_any());
    match &dv.spec.evidence.dns_txt_record {
        None => st.dns = None,
        Some(record) if dns_check::due(&dv, now) => {
            let outcome =
                crate::dns::check_txt(&ctx.settings.dns_lookup, &record.name, &record.value).await;
            ctx.metrics.dns_checked(outcome.reason());
            info!(
                domain_validation = %dv.name_any(),
                record = %record.name,
                result = outcome.reason(),
                "DNS TXT record looked up"
            );
            st.dns = Some(dns_check::record(
                st.dns.as_ref(),
                record,
                &outcome,
                now,
                ctx.settings.dns_schedule,
                &uid,
            ));
        }
        Some(_) => {}
    }
    // Decide on the object as it will be written.
    let mut seen = (*dv).clone();
    seen.status = Some(st.clone());
    let v = verdict(&seen, now);
    let before = find_condition(&st.conditions, condition::VALIDATED)
        .map(|c| (c.status.clone(), c.reason.clone()));
    set_condition(
        &mut st.conditions,
        &DesiredCondition {
            type_: condition::VALIDATED,
            status: v.status,
            reason: v.reason,
            message: &v.message,
            observed_generation: dv.metadata.generation,
        },
        now,
    );
    match dns_check::condition(&seen, now) {
        Some((ok, reason, message)) => {
            set_condition(
                &mut st.conditions,
                &DesiredCondition {
                    type_: condition::DNS_CHECKED,
                    status: if ok {
                        status::TRUE
                    } else if reason == dns::FAILED || reason == dns::PENDING {
                        status::UNKNOWN
                    } else {
                        status::FALSE
                    },
                    reason,
                    message: &message,
                    observed_generation: dv.metadata.generation,
                },
                now,
            );
        }
        None => st.conditions.retain(|c| c.type_ != condition::DNS_CHECKED),
    }
    // Apply.
    let api: Api<DomainValidation> = Api::all(ctx.client.clone());
    apply_status(&api, dv.as_ref(), dv.status.as_ref(), &st).await?;
    let after = Some((v.status.to_string(), v.reason.to_string()));
    if before != after && v.status != status::TRUE {
        let notice = if v.validated {
            Notice::normal(v.reason, dns::ACTION, v.message.clone())
        } else {
            Notice::warning(v.reason, "Validate", v.message.clone())
        };
        ctx.event(dv.as_ref(), notice).await;
    }
    Ok(Action::requeue(next_pass(&seen, now)))
}

/// When to look again: at the next DNS lookup or the end of a grace period, at the latest
/// within the hour (dates turn at midnight).
fn next_pass(dv: &DomainValidation, now: jiff::Timestamp) -> Duration {
    let mut wait = DAILY;
    let mut until = |at: jiff::Timestamp| {
        let d = at.duration_since(now).unsigned_abs();
        wait = wait.min(d.max(Duration::from_millis(500)));
    };
    if let Some(next) = dv
        .status
        .as_ref()
        .and_then(|s| s.dns.as_ref())
        .and_then(|d| d.next_check_time.parse().ok())
    {
        until(next);
    }
    if let DnsCheck::Failed {
        held_until: Some(at),
        ..
    } = dns_check::state(dv, now)
    {
        until(at);
    }
    wait
}

/// Runs the DomainValidation controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<DomainValidation> = Api::all(ctx.client.clone());
    super::controller(api, watcher::Config::default().any_semantic())
        .graceful_shutdown_on(shutdown)
        .run(
            |o, ctx| measured(ctx.clone(), "DomainValidation", reconcile(o, ctx)),
            |_, e, _| {
                warn!(error = %e, label = e.metric_label(), "DomainValidation reconcile failed");
                Action::requeue(Duration::from_secs(15))
            },
            ctx,
        )
        .for_each(super::log_output("DomainValidation"))
        .await;
}
