//! `SithsIssuer`: resolves the connection (backend, trust anchors, prices) and reports
//! whether it can issue.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, PostParams},
    core::DeserializeGuard,
    runtime::{Controller, controller::Action, watcher},
};
use tracing::{info, warn};

use super::{Context, Error, apply_status, measured, now};
use crate::vocabulary::{FIELD_MANAGER, ISSUER_LABEL, MANAGED_BY};
use crate::{
    api::{CertificateOrder, ConfigMapKeyRef, Environment, SithsIssuer, SithsIssuerStatus, status},
    pki::{self, KeySpec, LocalCa, LocalCaOptions, SithsAnchors, TrustAnchors},
    policy::{
        self,
        conditions::{DesiredCondition, set_condition},
    },
    vocabulary::{Notice, reason},
};

/// How certificates are obtained.
#[derive(Debug)]
pub enum ResolvedBackend {
    /// A person submits the CSR and imports the certificate.
    Manual,
    /// Signed at once by a local CA.
    LocalCa {
        /// The CA.
        ca: Box<LocalCa>,
        /// Lifetime of the leaves it signs.
        lifetime: Duration,
    },
}

/// Everything the certificate controller needs to know about an issuer.
#[derive(Debug)]
pub struct ResolvedIssuer {
    /// Organisation name (subject O).
    pub organization: String,
    /// Organisation number; domain validations must be made for it.
    pub organization_number: String,
    /// Subject L.
    pub locality: Option<String>,
    /// Environment.
    pub environment: Environment,
    /// Backend.
    pub backend: ResolvedBackend,
    /// Anchors returned certificates must chain to.
    pub anchors: TrustAnchors,
    /// Whether orders wait for a person's approval.
    pub approval_required: bool,
    /// Lead time of an order.
    pub lead_time: jiff::SignedDuration,
}

pub use crate::policy::issuers::IssuerProblem;

fn problem(reason: &'static str, message: impl Into<String>) -> IssuerProblem {
    IssuerProblem::new(reason, message)
}

/// Resolves `issuer`: checks identifiers, loads the local CA (creating it when asked) and the
/// trust anchors. Errors of the API are `Err(Error)`; problems a person must fix are
/// `Ok(Err(IssuerProblem))`.
pub async fn resolve(
    ctx: &Context,
    issuer: &SithsIssuer,
) -> Result<Result<ResolvedIssuer, IssuerProblem>, Error> {
    let spec = &issuer.spec;
    // What the spec alone shows, as `sithsctl plan` checks it.
    if let Some(p) = policy::issuers::siths_spec_problem(spec) {
        return Ok(Err(p));
    }
    let manual = spec.backend.manual.is_some();
    let backend = match &spec.backend.local_ca {
        Some(local) => {
            let lifetime = match policy::issuers::local_ca_lifetime(spec) {
                Ok(l) => l.unwrap_or(policy::issuers::DEFAULT_LOCAL_LIFETIME),
                Err(p) => return Ok(Err(p)),
            };
            let secrets: Api<Secret> =
                Api::namespaced(ctx.client.clone(), &local.secret_ref.namespace);
            let secret = match secrets.get_opt(&local.secret_ref.name).await? {
                Some(s) => s,
                None if local.generate => {
                    generate_local_ca(&secrets, &local.secret_ref.name, issuer).await?
                }
                None => {
                    return Ok(Err(problem(
                        "LocalCaSecretNotFound",
                        format!(
                            "Secret {}/{} with the CA (tls.crt, tls.key) does not exist; create it or set backend.localCA.generate: true",
                            local.secret_ref.namespace, local.secret_ref.name
                        ),
                    )));
                }
            };
            let text = |key: &str| {
                secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .and_then(|b| String::from_utf8(b.0.clone()).ok())
            };
            let (Some(crt), Some(key)) = (text("tls.crt"), text("tls.key")) else {
                return Ok(Err(problem(
                    "LocalCaSecretInvalid",
                    format!(
                        "Secret {}/{} must hold tls.crt and tls.key as PEM",
                        local.secret_ref.namespace, local.secret_ref.name
                    ),
                )));
            };
            match LocalCa::from_pem(&crt, &key) {
                Ok(ca) => ResolvedBackend::LocalCa {
                    ca: Box::new(ca),
                    lifetime,
                },
                Err(e) => {
                    return Ok(Err(problem(
                        "LocalCaSecretInvalid",
                        format!(
                            "Secret {}/{} does not hold a usable CA: {e}",
                            local.secret_ref.namespace, local.secret_ref.name
                        ),
                    )));
                }
            }
        }
        None => ResolvedBackend::Manual,
    };
    let anchors = match load_anchors(ctx, issuer, &backend).await? {
        Ok(a) => a,
        Err(p) => return Ok(Err(p)),
    };
    Ok(Ok(ResolvedIssuer {
        organization: spec.organization.name.clone(),
        organization_number: spec.organization.organization_number.clone(),
        locality: spec.organization.locality.clone(),
        environment: spec.environment,
        backend,
        anchors,
        approval_required: policy::cost::approval_required(spec.environment, spec.approval),
        lead_time: policy::cost::lead_time(spec.lead_time_days, manual),
    }))
}

/// The value of `r.key` in ConfigMap `r`, if both exist.
pub(crate) async fn read_config_map(
    ctx: &Context,
    r: &ConfigMapKeyRef,
) -> Result<Option<String>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &r.namespace);
    Ok(api
        .get_opt(&r.name)
        .await?
        .and_then(|cm| cm.data)
        .and_then(|d| d.get(&r.key).cloned()))
}

async fn load_anchors(
    ctx: &Context,
    issuer: &SithsIssuer,
    backend: &ResolvedBackend,
) -> Result<Result<TrustAnchors, IssuerProblem>, Error> {
    let env = match issuer.spec.environment {
        Environment::Production => pki::Environment::Production,
        Environment::Test => pki::Environment::Test,
    };
    let explicit = issuer
        .spec
        .trust_anchors
        .as_ref()
        .and_then(|t| t.config_map.as_ref());
    if let Some(r) = explicit {
        let Some(pem) = read_config_map(ctx, r).await? else {
            return Ok(Err(problem(
                "TrustAnchorsNotFound",
                format!(
                    "ConfigMap {}/{} key {} with the trust anchors does not exist",
                    r.namespace, r.name, r.key
                ),
            )));
        };
        return Ok(TrustAnchors::from_pem(&pem).map_err(|e| {
            problem(
                reason::TRUST_ANCHORS_INVALID,
                format!("ConfigMap {}/{}: {e}", r.namespace, r.name),
            )
        }));
    }
    let pinned_source = issuer
        .spec
        .trust_anchors
        .as_ref()
        .and_then(|t| t.pinned.as_ref())
        .and_then(|p| p.config_map.as_ref());
    // Without explicit anchors a local CA verifies against its own root.
    if pinned_source.is_none()
        && let ResolvedBackend::LocalCa { ca, .. } = backend
    {
        return Ok(Ok(ca.trust_anchors().clone()));
    }
    let pem = match pinned_source {
        Some(r) => read_config_map(ctx, r).await?,
        None => match &ctx.settings.siths_ca_file {
            Some(path) => std::fs::read_to_string(path).ok(),
            None => None,
        },
    };
    let Some(pem) = pem else {
        return Ok(Err(problem(
            "SithsCaNotConfigured",
            "the SITHS CA certificates are not available: set trustAnchors.pinned.configMap or start the operator with --siths-ca-file",
        )));
    };
    Ok(SithsAnchors::from_pem(&pem, env)
        .map(|a| a.trust_anchors().clone())
        .map_err(|e| problem("TrustAnchorsRejected", e.to_string())))
}

async fn generate_local_ca(
    secrets: &Api<Secret>,
    name: &str,
    issuer: &SithsIssuer,
) -> Result<Secret, Error> {
    let ca = LocalCa::generate(&LocalCaOptions {
        common_name: format!("{} test CA", issuer.spec.organization.name),
        organization: issuer.spec.organization.name.clone(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: None,
        not_before: now(),
        validity: Duration::from_secs(10 * 365 * 24 * 3600),
    })?;
    let mut data = std::collections::BTreeMap::new();
    data.insert("tls.crt".into(), ByteString(ca.cert_pem().into_bytes()));
    data.insert("tls.key".into(), ByteString(ca.key_pem().into_bytes()));
    data.insert("ca.crt".into(), ByteString(ca.root_pem().into_bytes()));
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                [
                    (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                    (ISSUER_LABEL.to_string(), issuer.name_any()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    };
    // Create-only: if another replica won the race, use its CA.
    match secrets
        .create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &secret,
        )
        .await
    {
        Ok(s) => {
            info!(issuer = %issuer.name_any(), "generated a local test CA");
            Ok(s)
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(secrets.get(name).await?),
        Err(e) => Err(e.into()),
    }
}

/// Reconciles one SithsIssuer: the `Ready` condition, orders pending and estimated spend.
pub async fn reconcile(issuer: Arc<SithsIssuer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let resolved = resolve(&ctx, &issuer).await?;
    // Item by item: one order an older schema admitted must not hide the others.
    let orders: Api<DeserializeGuard<CertificateOrder>> = Api::all(ctx.client.clone());
    let mut pending = 0u32;
    let mut spend = 0u64;
    // Paged, so memory stays flat however many orders an issuer has placed. An order
    // carries its CSR and certificate chain (some 10 KiB as objects): a page of 500 was
    // 4.8 MiB of the operator's 18 MiB peak heap with 3 000 certificates (heaptrack).
    let mut lp = ListParams::default()
        .labels(&format!("{ISSUER_LABEL}={}", issuer.name_any()))
        .limit(100);
    let mut mine = Vec::new();
    let mut samples = Vec::new();
    let mut unreadable = Vec::new();
    loop {
        let page = orders.list(&lp).await?;
        let readable = page.items.into_iter().filter_map(|o| match o.0 {
            Ok(order) => Some(order),
            Err(invalid) => {
                unreadable.push(invalid);
                None
            }
        });
        let readable: Vec<CertificateOrder> = readable.collect();
        samples.extend(readable.iter().map(crate::metrics::OrderSample::from));
        mine.extend(
            readable
                .into_iter()
                .map(|o| (o.status.and_then(|s| s.phase), o.spec.estimated_cost_sek)),
        );
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => lp = lp.continue_token(&token),
            _ => break,
        }
    }
    for invalid in &unreadable {
        let name = format!(
            "{}/{}",
            invalid.metadata.namespace.as_deref().unwrap_or_default(),
            invalid.metadata.name.as_deref().unwrap_or_default()
        );
        let why = crate::telemetry::redact_values(&invalid.error);
        warn!(order = %name, error = %why, "CertificateOrder cannot be read; not counted");
        ctx.event(
            issuer.as_ref(),
            Notice::warning(
                reason::ORDER_UNREADABLE,
                "Count",
                format!("CertificateOrder {name} cannot be read ({why}); it is not counted in orders pending or spend. Correct or delete it"),
            ),
        )
        .await;
    }
    ctx.metrics
        .observe_order_samples(&issuer.name_any(), samples);
    for (phase, cost) in mine {
        if policy::order::counts_in_spend(phase) {
            spend += u64::from(cost);
        }
        if policy::order::is_pending(phase) {
            pending += 1;
        }
    }
    let mut st: SithsIssuerStatus = issuer.status.clone().unwrap_or_default();
    st.backend = Some(
        if issuer.spec.backend.local_ca.is_some() {
            "LocalCA"
        } else {
            "Manual"
        }
        .into(),
    );
    st.orders_pending = pending;
    st.estimated_spend_sek = spend;
    st.observed_generation = issuer.metadata.generation;
    let (cond_status, reason, message) = match &resolved {
        Ok(r) => (
            status::TRUE,
            "Ready",
            format!(
                "{} issuer for {} ({}); approval {}",
                match r.environment {
                    Environment::Production => "Production",
                    Environment::Test => "Test",
                },
                r.organization,
                r.organization_number,
                if r.approval_required {
                    "required"
                } else {
                    "not required"
                }
            ),
        ),
        Err(p) => (status::FALSE, p.reason, p.message.clone()),
    };
    set_condition(
        &mut st.conditions,
        &DesiredCondition {
            type_: crate::vocabulary::condition::READY,
            status: cond_status,
            reason,
            message: &message,
            observed_generation: issuer.metadata.generation,
        },
        now(),
    );
    let api: Api<SithsIssuer> = Api::all(ctx.client.clone());
    apply_status(&api, issuer.as_ref(), issuer.status.as_ref(), &st).await?;
    if let Err(p) = &resolved {
        ctx.event(
            issuer.as_ref(),
            Notice::warning(p.reason, "Resolve", p.message.clone()),
        )
        .await;
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    Ok(Action::requeue(Duration::from_secs(600)))
}

/// Runs the SithsIssuer controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let issuers: Api<SithsIssuer> = Api::all(ctx.client.clone());
    let orders: Api<DeserializeGuard<CertificateOrder>> = Api::all(ctx.client.clone());
    let controller = Controller::new(issuers, watcher::Config::default().any_semantic())
        // Orders change in bursts (hundreds while a batch issues); counting them once per
        // burst is enough for a status that shows pending orders and spend.
        .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_secs(5)));
    ctx.metrics.attach_issuers(controller.store());
    controller
        .watches(orders, watcher::Config::default().any_semantic(), |o| {
            o.labels()
                .get(ISSUER_LABEL)
                .map(|n| kube::runtime::reflector::ObjectRef::new(n))
        })
        .graceful_shutdown_on(shutdown)
        .run(
            |o, ctx| measured(ctx.clone(), "SithsIssuer", reconcile(o, ctx)),
            |_, e, _| {
                warn!(error = %e, label = e.metric_label(), "SithsIssuer reconcile failed");
                Action::requeue(Duration::from_secs(15))
            },
            ctx,
        )
        .for_each(|_| async {})
        .await;
}
