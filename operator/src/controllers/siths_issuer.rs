//! `SithsIssuer`: resolves the connection (backend, trust anchors, prices) and reports
//! whether it can issue.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
};
use kube::{
    Api, ResourceExt,
    api::PostParams,
    core::DeserializeGuard,
    runtime::{WatchStreamExt, controller::Action, watcher},
};
use tracing::{info, warn};

use super::{Context, Error, apply_status, measured, now, shared_watch::Reader};
use crate::vocabulary::{FIELD_MANAGER, ISSUER_LABEL, MANAGED_BY};
use crate::{
    api::{
        CertificateOrder, ConfigMapKeyRef, Environment, OrderPhase, SithsIssuer, SithsIssuerStatus,
        status,
    },
    metrics::OrderSample,
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
    /// SHA-256 over all of the above ([`issuer_digest`]): two resolutions with the same
    /// digest check a certificate Secret alike.
    pub digest: String,
}

/// A digest of everything a check of a certificate Secret against `r` depends on: the
/// anchors (roots and intermediates), the backend (the local CA's certificates and the
/// lifetime of its leaves), the subject fields, the approval rule and the lead time.
fn issuer_digest(r: &ResolvedIssuer) -> String {
    use std::fmt::Write as _;
    let mut text = format!(
        "organization {:?}\nnumber {:?}\nlocality {:?}\nenvironment {:?}\napproval {}\nlead {}\n",
        r.organization,
        r.organization_number,
        r.locality,
        r.environment,
        r.approval_required,
        r.lead_time.as_secs()
    );
    for der in r.anchors.roots() {
        let _ = writeln!(text, "root {}", pki::sha256_fingerprint(der));
    }
    for der in r.anchors.intermediates() {
        let _ = writeln!(text, "intermediate {}", pki::sha256_fingerprint(der));
    }
    match &r.backend {
        ResolvedBackend::Manual => text.push_str("manual\n"),
        ResolvedBackend::LocalCa { ca, lifetime } => {
            let _ = writeln!(
                text,
                "local CA {} lifetime {}",
                pki::sha256_fingerprint(ca.cert_pem().as_bytes()),
                lifetime.as_secs()
            );
        }
    }
    pki::sha256_fingerprint(text.as_bytes())
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
    let mut resolved = ResolvedIssuer {
        organization: spec.organization.name.clone(),
        organization_number: spec.organization.organization_number.clone(),
        locality: spec.organization.locality.clone(),
        environment: spec.environment,
        backend,
        anchors,
        approval_required: policy::cost::approval_required(spec.environment, spec.approval),
        lead_time: policy::cost::lead_time(spec.lead_time_days, manual),
        digest: String::new(),
    };
    resolved.digest = issuer_digest(&resolved);
    Ok(Ok(resolved))
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

/// What an issuer's status and metrics need of one order.
#[derive(Debug, Clone)]
enum Tracked {
    /// An order that reads as a CertificateOrder.
    Readable {
        phase: Option<OrderPhase>,
        cost_sek: u32,
        certificate: String,
        created: Option<i64>,
    },
    /// An order an older schema admitted; it is named in a warning, never counted.
    Unreadable { error: String },
}

/// Orders by issuer, then by (namespace, name).
type Books = HashMap<String, HashMap<(String, String), Tracked>>;

/// The orders of every SithsIssuer, kept from the order watch the issuer controller runs
/// anyway. The status pass used to list all of an issuer's orders, 100 to a page, on every
/// pass (every 5 s while orders flow): 1 000 LISTs and about 1 GiB of JSON per pass with
/// 100 000 orders. Now a pass reads this book and asks the apiserver nothing.
#[derive(Debug, Default)]
pub struct OrderBook {
    state: std::sync::Mutex<BookState>,
    /// Set once the first complete list of orders is in: a pass before that would report
    /// a partial count (and write it).
    synced: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct BookState {
    current: Books,
    /// Filled while the watch lists again; replaces `current` when the list is complete.
    relisting: Option<Books>,
    synced: bool,
}

fn order_key(meta: &kube::api::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn tracked(order: &DeserializeGuard<CertificateOrder>) -> (&kube::api::ObjectMeta, Tracked) {
    match &order.0 {
        Ok(o) => (
            &o.metadata,
            Tracked::Readable {
                phase: o.status.as_ref().and_then(|s| s.phase),
                cost_sek: o.spec.estimated_cost_sek,
                certificate: o.spec.certificate_name.clone(),
                created: o
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.as_second()),
            },
        ),
        Err(invalid) => (
            &invalid.metadata,
            Tracked::Unreadable {
                error: invalid.error.clone(),
            },
        ),
    }
}

/// Records `order` in `books` under its issuer label (and nowhere else).
fn record(books: &mut Books, order: &DeserializeGuard<CertificateOrder>) {
    let (meta, entry) = tracked(order);
    let key = order_key(meta);
    let issuer = meta.labels.as_ref().and_then(|l| l.get(ISSUER_LABEL));
    // A changed issuer label moves the order (issuers are few).
    for (name, orders) in books.iter_mut() {
        if Some(name) != issuer {
            orders.remove(&key);
        }
    }
    books.retain(|_, orders| !orders.is_empty());
    if let Some(issuer) = issuer {
        books.entry(issuer.clone()).or_default().insert(key, entry);
    }
}

/// What one issuer's orders add up to.
#[derive(Debug, Default, PartialEq)]
pub struct OrderTotals {
    /// Orders waiting for approval or a certificate.
    pub pending: u32,
    /// Estimated spend in SEK (denied orders excluded).
    pub spend_sek: u64,
    /// Unreadable orders: `namespace/name` and why.
    pub unreadable: Vec<(String, String)>,
}

impl OrderBook {
    /// Applies one event of the order watch.
    pub fn apply(&self, event: &watcher::Event<DeserializeGuard<CertificateOrder>>) {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            watcher::Event::Apply(o) => record(&mut st.current, o),
            watcher::Event::Delete(o) => {
                let (meta, _) = tracked(o);
                let key = order_key(meta);
                for orders in st.current.values_mut() {
                    orders.remove(&key);
                }
                st.current.retain(|_, orders| !orders.is_empty());
            }
            watcher::Event::Init => st.relisting = Some(Books::new()),
            watcher::Event::InitApply(o) => {
                let books = st.relisting.get_or_insert_with(Books::new);
                record(books, o);
            }
            watcher::Event::InitDone => {
                if let Some(books) = st.relisting.take() {
                    st.current = books;
                }
                if !st.synced {
                    st.synced = true;
                    self.synced.notify_waiters();
                }
            }
        }
    }

    /// Waits until the first complete list of orders is in.
    async fn wait_synced(&self) {
        loop {
            let notified = self.synced.notified();
            if self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .synced
            {
                return;
            }
            notified.await;
        }
    }

    /// The totals of `issuer`'s orders, and their metric samples (to `sample`).
    pub fn totals(
        &self,
        issuer: &str,
        sample: impl FnOnce(BTreeMap<&'static str, i64>, Vec<OrderSample>),
    ) -> OrderTotals {
        let st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut totals = OrderTotals::default();
        let mut open = Vec::new();
        let mut by_phase = BTreeMap::new();
        for ((ns, name), entry) in st.current.get(issuer).into_iter().flatten() {
            match entry {
                Tracked::Readable {
                    phase,
                    cost_sek,
                    certificate,
                    created,
                } => {
                    if policy::order::counts_in_spend(*phase) {
                        totals.spend_sek += u64::from(*cost_sek);
                    }
                    if policy::order::is_pending(*phase) {
                        totals.pending += 1;
                    }
                    *by_phase
                        .entry(crate::metrics::phase_label(*phase))
                        .or_default() += 1;
                    if !matches!(phase, Some(OrderPhase::Issued | OrderPhase::Denied)) {
                        open.push(OrderSample::new(
                            ns.clone(),
                            name.clone(),
                            certificate.clone(),
                            *phase,
                            *created,
                        ));
                    }
                }
                Tracked::Unreadable { error } => {
                    totals
                        .unreadable
                        .push((format!("{ns}/{name}"), error.clone()));
                }
            }
        }
        drop(st);
        totals.unreadable.sort();
        sample(by_phase, open);
        totals
    }
}

/// Reconciles one SithsIssuer: the `Ready` condition, orders pending and estimated spend.
pub async fn reconcile(
    issuer: Arc<SithsIssuer>,
    ctx: Arc<Context>,
    book: Arc<OrderBook>,
) -> Result<Action, Error> {
    let resolved = resolve(&ctx, &issuer).await?;
    // From the order watch, not a list: see OrderBook. Until its first list is complete
    // the counts are not known; a watch that cannot list says so as an error and retries.
    tokio::time::timeout(Duration::from_secs(60), book.wait_synced())
        .await
        .map_err(|_| {
            Error::Incomplete("the CertificateOrder watch has not listed the orders yet")
        })?;
    let name = issuer.name_any();
    let totals = book.totals(&name, |by_phase, open| {
        ctx.metrics.observe_order_counts(&name, by_phase, open);
    });
    for (order, error) in &totals.unreadable {
        let why = crate::telemetry::redact_values(error);
        warn!(order = %order, error = %why, "CertificateOrder cannot be read; not counted");
        ctx.event(
            issuer.as_ref(),
            Notice::warning(
                reason::ORDER_UNREADABLE,
                "Count",
                format!("CertificateOrder {order} cannot be read ({why}); it is not counted in orders pending or spend. Correct or delete it"),
            ),
        )
        .await;
    }
    let (pending, spend) = (totals.pending, totals.spend_sek);
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

/// Runs the SithsIssuer controller until `shutdown` resolves. `orders` is its reader of
/// the order watch it shares with the ServiceCertificate controller, subscribed before
/// that watch runs (the book needs the whole list; see [`super::shared_watch`]).
pub async fn run(
    ctx: Arc<Context>,
    orders: Reader<DeserializeGuard<CertificateOrder>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let issuers: Api<SithsIssuer> = Api::all(ctx.client.clone());
    let book = Arc::new(OrderBook::default());
    let writer = book.clone();
    let order_events = orders
        .inspect_ok(move |event| writer.apply(event))
        .touched_objects();
    let controller = super::controller(issuers, watcher::Config::default().any_semantic())
        // Orders change in bursts (hundreds while a batch issues); counting them once per
        // burst is enough for a status that shows pending orders and spend.
        .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_secs(5)));
    ctx.metrics.attach_issuers(controller.store());
    controller
        .watches_stream(order_events, |o| {
            o.labels()
                .get(ISSUER_LABEL)
                .map(|n| kube::runtime::reflector::ObjectRef::new(n))
        })
        .graceful_shutdown_on(shutdown)
        .run(
            move |o, ctx| measured(ctx.clone(), "SithsIssuer", reconcile(o, ctx, book.clone())),
            |_, e, _| {
                warn!(error = %e, label = e.metric_label(), "SithsIssuer reconcile failed");
                Action::requeue(Duration::from_secs(15))
            },
            ctx,
        )
        .for_each(super::log_output("SithsIssuer"))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CertificateOrderSpec, CertificateOrderStatus};
    use kube::core::error_boundary::InvalidObject;

    fn local_ca(name: &str) -> LocalCa {
        LocalCa::generate(&crate::pki::testutil::ca_options(name, false)).unwrap()
    }

    fn resolved(
        anchors: &TrustAnchors,
        lead_days: i64,
        backend: ResolvedBackend,
    ) -> ResolvedIssuer {
        let mut r = ResolvedIssuer {
            organization: "Region".into(),
            organization_number: "2321000016".into(),
            locality: None,
            environment: Environment::Test,
            backend,
            anchors: anchors.clone(),
            approval_required: false,
            lead_time: jiff::SignedDuration::from_hours(24 * lead_days),
            digest: String::new(),
        };
        r.digest = issuer_digest(&r);
        r
    }

    #[test]
    fn an_issuer_resolved_to_the_same_content_has_the_same_digest() {
        let (a, b) = (local_ca("A"), local_ca("B"));
        let (ta, tb) = (a.trust_anchors().clone(), b.trust_anchors().clone());
        let (ta, tb) = (&ta, &tb);
        let manual = || ResolvedBackend::Manual;
        let first = resolved(ta, 1, manual()).digest;
        assert_eq!(first, resolved(ta, 1, manual()).digest);
        assert_eq!(first.len(), 64);
        assert_ne!(first, resolved(tb, 1, manual()).digest, "other anchors");
        assert_ne!(first, resolved(ta, 2, manual()).digest, "another lead time");
        let both = TrustAnchors::new([ta.roots(), tb.roots()].concat(), Vec::new()).unwrap();
        assert_ne!(
            first,
            resolved(&both, 1, manual()).digest,
            "a second anchor"
        );
        let local = |ca: LocalCa| ResolvedBackend::LocalCa {
            ca: Box::new(ca),
            lifetime: Duration::from_secs(3600),
        };
        let signed_by_a = resolved(ta, 1, local(a)).digest;
        assert_ne!(first, signed_by_a, "signed at once by the local CA");
        assert_ne!(
            signed_by_a,
            resolved(ta, 1, local(b)).digest,
            "another signing CA under the same anchors"
        );
    }

    fn order(
        name: &str,
        issuer: Option<&str>,
        phase: Option<OrderPhase>,
    ) -> DeserializeGuard<CertificateOrder> {
        let mut o = CertificateOrder::new(
            name,
            CertificateOrderSpec {
                certificate_name: "api".into(),
                revision: 1,
                issuer_name: issuer.unwrap_or_default().into(),
                dns_names: vec!["a.region.se".into()],
                hsa_id: None,
                subject: "CN=a.region.se".into(),
                csr: String::new(),
                estimated_cost_sek: 3500,
                approval: None,
                certificate: None,
            },
        );
        o.metadata.namespace = Some("team".into());
        o.metadata.labels = issuer.map(|i| [(ISSUER_LABEL.to_string(), i.to_string())].into());
        o.status = Some(CertificateOrderStatus {
            phase,
            ..Default::default()
        });
        DeserializeGuard(Ok(o))
    }

    fn totals(book: &OrderBook, issuer: &str) -> (u32, u64, usize, Vec<String>) {
        let mut open = 0;
        let t = book.totals(issuer, |_, o| open = o.len());
        let unreadable = t.unreadable.iter().map(|(n, _)| n.clone()).collect();
        (t.pending, t.spend_sek, open, unreadable)
    }

    #[test]
    fn the_book_counts_what_the_watch_says() {
        use watcher::Event;
        let book = OrderBook::default();
        book.apply(&Event::Init);
        book.apply(&Event::InitApply(order(
            "a-1",
            Some("r"),
            Some(OrderPhase::Issued),
        )));
        book.apply(&Event::InitApply(order(
            "b-1",
            Some("r"),
            Some(OrderPhase::PendingApproval),
        )));
        book.apply(&Event::InitApply(order(
            "c-1",
            Some("r"),
            Some(OrderPhase::Denied),
        )));
        book.apply(&Event::InitApply(order("x-1", None, None)));
        // Before the list is complete nothing counts yet.
        assert_eq!(totals(&book, "r"), (0, 0, 0, vec![]));
        book.apply(&Event::InitDone);
        assert_eq!(
            totals(&book, "r"),
            (1, 7000, 1, vec![]),
            "denied is not spend"
        );
        // Approval, then issuance: still counted once.
        book.apply(&Event::Apply(order(
            "b-1",
            Some("r"),
            Some(OrderPhase::Issued),
        )));
        assert_eq!(totals(&book, "r"), (0, 7000, 0, vec![]));
        // A relabelled order moves to its new issuer.
        book.apply(&Event::Apply(order(
            "a-1",
            Some("s"),
            Some(OrderPhase::Issued),
        )));
        assert_eq!(totals(&book, "r"), (0, 3500, 0, vec![]));
        assert_eq!(totals(&book, "s"), (0, 3500, 0, vec![]));
        book.apply(&Event::Delete(order(
            "a-1",
            Some("s"),
            Some(OrderPhase::Issued),
        )));
        assert_eq!(totals(&book, "s"), (0, 0, 0, vec![]));
        // An order the current schema cannot read is named, not counted.
        let mut meta = kube::api::ObjectMeta {
            name: Some("old-1".into()),
            namespace: Some("team".into()),
            ..Default::default()
        };
        meta.labels = Some([(ISSUER_LABEL.to_string(), "r".to_string())].into());
        book.apply(&Event::Apply(DeserializeGuard(Err(InvalidObject {
            error: "unknown variant".into(),
            metadata: meta,
        }))));
        assert_eq!(totals(&book, "r"), (0, 3500, 0, vec!["team/old-1".into()]));
        // A new list replaces the book: orders deleted while the watch was down go.
        book.apply(&Event::Init);
        book.apply(&Event::InitApply(order("d-1", Some("r"), None)));
        assert_eq!(
            totals(&book, "r"),
            (0, 3500, 0, vec!["team/old-1".into()]),
            "the old book serves until the list is complete"
        );
        book.apply(&Event::InitDone);
        assert_eq!(totals(&book, "r"), (1, 3500, 1, vec![]));
    }
}
