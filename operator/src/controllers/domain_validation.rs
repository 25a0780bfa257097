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
        coverage::DomainGrant,
        domain_validation::{
            DnsCheck, PowerOfAttorney, REASON_INVALID_DATE, ValidationInput, Verdict, evaluate,
            parse_date,
        },
    },
};

/// Today in Sweden: validity dates are calendar days there.
pub fn today(ts: jiff::Timestamp) -> jiff::civil::Date {
    ts.in_tz("Europe/Stockholm")
        .map(|z| z.date())
        .unwrap_or_else(|_| ts.to_zoned(jiff::tz::TimeZone::UTC).date())
}

/// The verdict for `dv` on `today`. The DNS TXT record is not looked up (see the notes in
/// the README); a configured record counts as not checked.
pub fn verdict(dv: &DomainValidation, today: jiff::civil::Date) -> Verdict {
    let spec = &dv.spec;
    let invalid_date = |message: String| Verdict {
        validated: false,
        reason: REASON_INVALID_DATE,
        message,
    };
    let valid_until = match parse_date("validUntil", &spec.valid_until) {
        Ok(d) => d,
        Err(m) => return invalid_date(m),
    };
    let poa = match &spec.power_of_attorney {
        Some(p) => match parse_date("powerOfAttorney.validUntil", &p.valid_until) {
            Ok(d) => Some(PowerOfAttorney {
                granted_by: &p.granted_by,
                valid_until: d,
            }),
            Err(m) => return invalid_date(m),
        },
        None => None,
    };
    evaluate(
        &ValidationInput {
            owner: &spec.owner.organization_number,
            validated_for: &spec.validated_for,
            valid_until,
            power_of_attorney: poa,
            dns: DnsCheck::NotChecked,
        },
        today,
    )
}

/// The grants the validations give `issuer_org_number` on `today`.
pub fn grants_for<'a>(
    validations: impl IntoIterator<Item = &'a DomainValidation>,
    issuer_org_number: &str,
    today: jiff::civil::Date,
) -> Vec<DomainGrant> {
    validations
        .into_iter()
        .filter(|dv| dv.spec.validated_for == issuer_org_number)
        .filter(|dv| verdict(dv, today).validated)
        .map(|dv| DomainGrant {
            domain: dv.spec.domain.clone(),
            include_subdomains: dv.spec.include_subdomains,
        })
        .collect()
}

/// Reconciles one DomainValidation.
pub async fn reconcile(dv: Arc<DomainValidation>, ctx: Arc<Context>) -> Result<Action, Error> {
    let v = verdict(&dv, today(now()));
    let mut st: DomainValidationStatus = dv.status.clone().unwrap_or_default();
    st.observed_generation = dv.metadata.generation;
    set_condition(
        &mut st.conditions,
        &DesiredCondition {
            type_: "Validated",
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
        ctx.event(dv.as_ref(), true, v.reason, "Validate", v.message.clone())
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
