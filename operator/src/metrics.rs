//! Prometheus metrics (`siths_` prefix), served on `/metrics` in the OpenMetrics text format.
//!
//! Two kinds of metrics:
//! - what happened (reconcile counts, errors by reason, durations): counters and a
//!   histogram the controllers update through [`Metrics::reconciled`];
//! - what is (certificate timestamps and readiness, orders by phase, spend): computed at
//!   scrape time from the controllers' caches, so a deleted certificate disappears from
//!   the output at once and a standby replica (which runs no controllers) reports none.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use kube::{ResourceExt, runtime::reflector::Store};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::{
    api::{CertificateOrder, OrderPhase, Purpose, ServiceCertificate, SithsIssuer, status},
    policy::conditions::find_condition,
};

/// Content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

/// Every metric of the operator process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    durations: Family<Labels, Histogram>,
    leader: Gauge,
    ingress_tls: Family<Labels, Gauge>,
    backend_tls_untrusted: Gauge,
    acme_requests: Counter,
    dns_checks: Family<Labels, Counter>,
    dns_update_failures: crate::acme::DnsUpdateFailures,
    state: Arc<ClusterState>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered and no cluster state attached.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<Labels, Counter>::default();
        registry.register(
            "siths_reconcile",
            "Reconciles run, by controller",
            reconciles.clone(),
        );
        let errors = Family::<Labels, Counter>::default();
        registry.register(
            "siths_reconcile_errors",
            "Reconciles that failed, by controller and reason",
            errors.clone(),
        );
        let durations = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "siths_reconcile_duration_seconds",
            "Duration of reconciles, by controller",
            durations.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "siths_leader",
            "1 when this replica holds the leader lease and runs the controllers",
            leader.clone(),
        );
        let ingress_tls = Family::<Labels, Gauge>::default();
        registry.register(
            "siths_ingress_tls_certificates",
            "TLS Secrets of Ingresses and Gateway listeners in audit mode, by kind (Ingress, Gateway) and what they serve: siths, public, untrusted (neither), missing (no Secret or no certificate)",
            ingress_tls.clone(),
        );
        let backend_tls_untrusted = Gauge::default();
        registry.register(
            "siths_backend_tls_policies_without_siths_trust",
            "BackendTLSPolicies whose CA certificates do not verify the SITHS certificate their Service serves",
            backend_tls_untrusted.clone(),
        );
        let acme_requests = Counter::default();
        registry.register(
            "siths_acme_requests",
            "HTTP requests sent to ACME CAs (pass to Acme::with_requests_counter)",
            acme_requests.clone(),
        );
        let dns_checks = Family::<Labels, Counter>::default();
        registry.register(
            "siths_dns_checks",
            "Live DNS TXT lookups of DomainValidation evidence, by result (DnsRecordFound, DnsRecordMissing, DnsRecordMismatch, DnsCheckFailed)",
            dns_checks.clone(),
        );
        let dns_update_failures = crate::acme::DnsUpdateFailures::default();
        registry.register(
            "siths_dns_update_failures",
            "RFC 2136 updates of ACME DNS-01 records that failed, by reason (TsigBadKey, TsigBadSig, TsigBadTime, UpdateRefused, NotZone, Unreachable, UpdateFailed)",
            dns_update_failures.clone(),
        );
        let state = Arc::new(ClusterState::default());
        registry.register_collector(Box::new(state.clone()));
        Self {
            registry,
            reconciles,
            errors,
            durations,
            leader,
            ingress_tls,
            backend_tls_untrusted,
            acme_requests,
            dns_checks,
            dns_update_failures,
            state,
        }
    }

    /// Records one reconcile of `controller` that took `elapsed` and failed with
    /// `error` (an [`Error::metric_label`](crate::controllers::Error::metric_label)) or
    /// succeeded (`None`).
    pub fn reconciled(&self, controller: &str, elapsed: Duration, error: Option<&str>) {
        let by = vec![("controller", controller.to_string())];
        self.reconciles.get_or_create(&by).inc();
        self.durations
            .get_or_create(&by)
            .observe(elapsed.as_secs_f64());
        if let Some(reason) = error {
            self.errors
                .get_or_create(&vec![
                    ("controller", controller.to_string()),
                    ("reason", reason.to_string()),
                ])
                .inc();
        }
    }

    /// The counter of requests sent to ACME CAs, for
    /// [`Acme::with_requests_counter`](crate::acme::Acme::with_requests_counter).
    pub fn acme_requests(&self) -> Counter {
        self.acme_requests.clone()
    }

    /// Counts one live DNS TXT lookup with `result` (a `vocabulary::dns` reason).
    pub fn dns_checked(&self, result: &str) {
        self.dns_checks
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    /// The counter of failed RFC 2136 updates, for
    /// [`Acme::with_dns_update_failures`](crate::acme::Acme::with_dns_update_failures).
    pub fn dns_update_failures(&self) -> crate::acme::DnsUpdateFailures {
        self.dns_update_failures.clone()
    }

    /// Whether this replica leads (and runs the controllers).
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Sets the number of audited TLS Secrets of user-facing endpoints of `kind` (`Ingress`,
    /// `Gateway`) of `classification` (`siths`, `public`, `untrusted`, `missing`).
    pub fn set_ingress_tls(&self, kind: &str, classification: &str, count: i64) {
        self.ingress_tls
            .get_or_create(&vec![
                ("classification", classification.to_string()),
                ("kind", kind.to_string()),
            ])
            .set(count);
    }

    /// Sets the number of BackendTLSPolicies without the SITHS trust their back end needs.
    pub fn set_backend_tls_untrusted(&self, count: i64) {
        self.backend_tls_untrusted.set(count);
    }

    /// Reports certificates from `store` (the certificate controller's cache).
    pub fn attach_certificates(&self, store: Store<ServiceCertificate>) {
        *lock(&self.state.certificates) = Some(store);
    }

    /// Reports issuers from `store` (the issuer controller's cache).
    pub fn attach_issuers(&self, store: Store<SithsIssuer>) {
        *lock(&self.state.issuers) = Some(store);
    }

    /// Records the orders of issuer `issuer` (all of them).
    pub fn observe_orders(&self, issuer: &str, orders: &[CertificateOrder]) {
        self.observe_order_samples(issuer, orders.iter().map(OrderSample::from));
    }

    /// Records issuer `issuer`'s orders: how many per phase ([`phase_label`]) and the
    /// open ones (neither Issued nor Denied).
    pub fn observe_order_counts(
        &self,
        issuer: &str,
        by_phase: BTreeMap<&'static str, i64>,
        open: Vec<OrderSample>,
    ) {
        lock(&self.state.orders).insert(issuer.to_string(), IssuerOrders { by_phase, open });
    }

    /// Like [`Metrics::observe_orders`], from samples. Only the counts by phase and the
    /// orders still open are kept: with 100 000 issued orders, keeping a sample of each
    /// was some 20 MiB for two gauges that need a count of them.
    pub fn observe_order_samples(
        &self,
        issuer: &str,
        samples: impl IntoIterator<Item = OrderSample>,
    ) {
        let mut summary = IssuerOrders::default();
        for o in samples {
            summary.count(o.phase);
            if is_open(o.phase) {
                summary.open.push(o);
            }
        }
        lock(&self.state.orders).insert(issuer.to_string(), summary);
    }

    /// Forgets the cluster state: the controllers stopped (leadership lost or shutdown),
    /// so their caches no longer describe the cluster.
    pub fn detach(&self) {
        *lock(&self.state.certificates) = None;
        *lock(&self.state.issuers) = None;
        lock(&self.state.orders).clear();
        self.ingress_tls.clear();
        self.backend_tls_untrusted.set(0);
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        self.encode_to(&mut out)?;
        Ok(out)
    }

    /// Writes the OpenMetrics text exposition of every metric to `out`.
    pub fn encode_to(&self, out: &mut impl std::fmt::Write) -> Result<(), std::fmt::Error> {
        prometheus_client::encoding::text::encode(out, &self.registry)
    }

    /// The exposition as a stream of pieces of about [`CHUNK`] bytes, encoded on a blocking
    /// thread while the pieces before are sent. The text is about 800 bytes per
    /// certificate: as one string, a scrape of 100 000 certificates held some 80 MB, plus
    /// the copies its growth made. A reader that goes away stops the encoding; a failed
    /// encoding ends the stream with an error, so a client never takes a cut text for a
    /// whole one.
    pub fn encode_stream(
        self: Arc<Self>,
    ) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            let mut out = Chunks {
                buf: String::with_capacity(CHUNK + CHUNK / 8),
                tx,
            };
            let done = self.encode_to(&mut out).and_then(|()| out.flush());
            if done.is_err() {
                // Nothing to do when the reader is gone; otherwise it learns of the failure.
                let _ = out
                    .tx
                    .blocking_send(Err(std::io::Error::other("encoding metrics failed")));
            }
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
    }
}

/// About how many bytes of the exposition [`Metrics::encode_stream`] sends at a time.
pub const CHUNK: usize = 64 * 1024;

/// A [`std::fmt::Write`] that passes on what it is given in pieces of about [`CHUNK`] bytes.
struct Chunks {
    buf: String,
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
}

impl Chunks {
    /// Sends what is buffered; fails when the reader is gone.
    fn flush(&mut self) -> Result<(), std::fmt::Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, String::with_capacity(CHUNK + CHUNK / 8));
        self.tx
            .blocking_send(Ok(bytes::Bytes::from(piece)))
            .map_err(|_| std::fmt::Error)
    }
}

impl std::fmt::Write for Chunks {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic while holding it; the data is still consistent
    // (every write replaces a whole value).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the metrics keep of one order.
#[derive(Debug, Clone)]
pub struct OrderSample {
    namespace: String,
    name: String,
    certificate: String,
    phase: Option<OrderPhase>,
    created: Option<i64>,
}

impl OrderSample {
    /// A sample of order `namespace/name` for `certificate`, created at `created` (Unix
    /// seconds).
    pub fn new(
        namespace: String,
        name: String,
        certificate: String,
        phase: Option<OrderPhase>,
        created: Option<i64>,
    ) -> Self {
        Self {
            namespace,
            name,
            certificate,
            phase,
            created,
        }
    }
}

/// What the metrics keep of one issuer's orders: how many per phase, and the open ones.
#[derive(Debug, Default, Clone)]
struct IssuerOrders {
    by_phase: BTreeMap<&'static str, i64>,
    open: Vec<OrderSample>,
}

impl IssuerOrders {
    fn count(&mut self, phase: Option<OrderPhase>) {
        *self.by_phase.entry(phase_label(phase)).or_default() += 1;
    }
}

impl From<&CertificateOrder> for OrderSample {
    fn from(o: &CertificateOrder) -> Self {
        Self {
            namespace: o.namespace().unwrap_or_default(),
            name: o.name_any(),
            certificate: o.spec.certificate_name.clone(),
            phase: o.status.as_ref().and_then(|s| s.phase),
            created: o
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
        }
    }
}

/// Phase label of an order; an order the operator has not looked at yet is `New`.
pub fn phase_label(phase: Option<OrderPhase>) -> &'static str {
    match phase {
        None => "New",
        Some(OrderPhase::PendingApproval) => "PendingApproval",
        Some(OrderPhase::Approved) => "Approved",
        Some(OrderPhase::AwaitingCertificate) => "AwaitingCertificate",
        Some(OrderPhase::Issued) => "Issued",
        Some(OrderPhase::Denied) => "Denied",
        Some(OrderPhase::Failed) => "Failed",
    }
}

fn is_open(phase: Option<OrderPhase>) -> bool {
    !matches!(phase, Some(OrderPhase::Issued) | Some(OrderPhase::Denied))
}

#[derive(Debug, Default)]
struct ClusterState {
    certificates: Mutex<Option<Store<ServiceCertificate>>>,
    issuers: Mutex<Option<Store<SithsIssuer>>>,
    orders: Mutex<BTreeMap<String, IssuerOrders>>,
}

/// One gauge family written by the collector.
struct GaugeFamily {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Labels, i64)>,
}

impl GaugeFamily {
    fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let kind = ConstGauge::new(0i64).metric_type();
        let mut family = encoder.encode_descriptor(self.name, self.help, None, kind)?;
        for (labels, value) in &self.samples {
            ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
        }
        Ok(())
    }
}

fn timestamp(value: Option<&String>) -> Option<i64> {
    value
        .and_then(|v| v.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second())
}

/// The labels of a certificate's series, borrowed from the cached object: a scrape of
/// 10 000 certificates copied 50 000 label sets (10 MiB of the operator's peak heap in B8).
fn certificate_labels(c: &ServiceCertificate) -> [(&'static str, &str); 5] {
    [
        (
            "namespace",
            c.metadata.namespace.as_deref().unwrap_or_default(),
        ),
        ("name", c.metadata.name.as_deref().unwrap_or_default()),
        (
            "purpose",
            match c.spec.purpose {
                Purpose::ServerToServer => "ServerToServer",
                Purpose::UserFacing => "UserFacing",
            },
        ),
        (
            "route",
            c.status
                .as_ref()
                .and_then(|s| s.route.as_deref())
                .unwrap_or_default(),
        ),
        ("issuer", c.spec.issuer_ref.name.as_str()),
    ]
}

/// A gauge family with one series per certificate that has a value, each written as it is
/// computed.
fn encode_certificate_family(
    encoder: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    certificates: &[Arc<ServiceCertificate>],
    value: impl Fn(&ServiceCertificate) -> Option<i64>,
) -> Result<(), std::fmt::Error> {
    let kind = ConstGauge::new(0i64).metric_type();
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for c in certificates {
        if let Some(v) = value(c) {
            ConstGauge::new(v).encode(family.encode_family(&certificate_labels(c))?)?;
        }
    }
    Ok(())
}

/// The per-certificate gauges, from the cache at scrape time.
fn encode_certificate_gauges(
    encoder: &mut DescriptorEncoder,
    certificates: &[Arc<ServiceCertificate>],
) -> Result<(), std::fmt::Error> {
    fn conditions(c: &ServiceCertificate) -> &[crate::api::Condition] {
        c.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default()
    }
    type Value = fn(&ServiceCertificate) -> Option<i64>;
    let families: [((&str, &str), Value); 4] = [
        (
            (
                "siths_certificate_expiration_timestamp_seconds",
                "End of validity (notAfter) of the certificate in the Secret, as a Unix timestamp",
            ),
            |c| timestamp(c.status.as_ref().and_then(|s| s.not_after.as_ref())),
        ),
        (
            (
                "siths_certificate_renewal_timestamp_seconds",
                "When renewal of the certificate starts, as a Unix timestamp",
            ),
            |c| timestamp(c.status.as_ref().and_then(|s| s.renewal_time.as_ref())),
        ),
        (
            (
                "siths_certificate_not_before_timestamp_seconds",
                "Start of validity (notBefore) of the certificate in the Secret, as a Unix timestamp",
            ),
            |c| timestamp(c.status.as_ref().and_then(|s| s.not_before.as_ref())),
        ),
        (
            (
                "siths_certificate_ready_status",
                "1 when the ServiceCertificate is Ready, 0 otherwise",
            ),
            |c| {
                Some(i64::from(
                    find_condition(conditions(c), "Ready")
                        .is_some_and(|c| c.status == status::TRUE),
                ))
            },
        ),
    ];
    for (descriptor, value) in families {
        encode_certificate_family(encoder, descriptor, certificates, value)?;
    }
    // Issuing carries its reason as one more label.
    let kind = ConstGauge::new(0i64).metric_type();
    let mut family = encoder.encode_descriptor(
        "siths_certificate_issuing_status",
        "1 while a new revision is being issued, 0 otherwise; reason is the Issuing condition's reason (WaitingForApproval, AwaitingCertificate, OrderDenied, ...)",
        None,
        kind,
    )?;
    for c in certificates {
        if let Some(cond) = find_condition(conditions(c), "Issuing") {
            let [a, b, d, e, f] = certificate_labels(c);
            let labels = [a, b, d, e, f, ("reason", cond.reason.as_str())];
            ConstGauge::new(i64::from(cond.status == status::TRUE))
                .encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// The issuer and order gauges, computed at scrape time.
fn cluster_gauges(
    issuers: Option<&[Arc<SithsIssuer>]>,
    orders: &BTreeMap<String, IssuerOrders>,
) -> Vec<GaugeFamily> {
    let mut by_phase = GaugeFamily::new(
        "siths_certificate_orders",
        "CertificateOrders by issuer and phase",
    );
    let mut open = GaugeFamily::new(
        "siths_certificate_order_created_timestamp_seconds",
        "Creation time of every order not yet Issued or Denied, as a Unix timestamp",
    );
    let mut spend = GaugeFamily::new(
        "siths_issuer_estimated_spend_sek",
        "Estimated SITHS spend of the issuer's orders in SEK (denied and failed orders excluded)",
    );
    let mut issuer_ready = GaugeFamily::new(
        "siths_issuer_ready_status",
        "1 when the SithsIssuer is Ready, 0 otherwise",
    );
    if let Some(issuers) = issuers {
        for i in issuers {
            let name = i.name_any();
            let labels: Labels = vec![("issuer", name.clone())];
            let st = i.status.as_ref();
            spend.samples.push((
                labels.clone(),
                st.map(|s| s.estimated_spend_sek as i64).unwrap_or(0),
            ));
            let conditions = st.map(|s| s.conditions.as_slice()).unwrap_or_default();
            issuer_ready.samples.push((
                labels,
                i64::from(
                    find_condition(conditions, "Ready").is_some_and(|c| c.status == status::TRUE),
                ),
            ));
            let Some(summary) = orders.get(&name) else {
                continue;
            };
            for o in &summary.open {
                if let Some(created) = o.created {
                    open.samples.push((
                        vec![
                            ("namespace", o.namespace.clone()),
                            ("name", o.name.clone()),
                            ("certificate", o.certificate.clone()),
                            ("issuer", name.clone()),
                            ("phase", phase_label(o.phase).to_string()),
                        ],
                        created,
                    ));
                }
            }
            for (phase, n) in &summary.by_phase {
                let (phase, n) = (*phase, *n);
                by_phase.samples.push((
                    vec![("issuer", name.clone()), ("phase", phase.to_string())],
                    n,
                ));
            }
        }
    }
    vec![by_phase, open, spend, issuer_ready]
}

impl Collector for ClusterState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let certificates = lock(&self.certificates)
            .as_ref()
            .map(|s| s.state())
            .unwrap_or_default();
        let issuers = lock(&self.issuers).as_ref().map(|s| s.state());
        let orders = lock(&self.orders).clone();
        encode_certificate_gauges(&mut encoder, &certificates)?;
        for family in cluster_gauges(issuers.as_deref(), &orders) {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        CertificateOrderSpec, CertificateOrderStatus, Condition, IssuerKind, IssuerRef,
        ServiceCertificateSpec, ServiceCertificateStatus,
    };
    use kube::runtime::{reflector, watcher::Event};

    fn condition(type_: &str, status: &str, reason: &str) -> Condition {
        serde_json::from_value(serde_json::json!({
            "type": type_, "status": status, "reason": reason, "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"
        }))
        .expect("condition")
    }

    fn cert(name: &str, ready: bool) -> ServiceCertificate {
        let mut c = ServiceCertificate::new(
            name,
            ServiceCertificateSpec {
                purpose: Purpose::ServerToServer,
                dns_names: vec!["a.region.se".into()],
                secret_name: name.into(),
                hsa_id: Some("SE2321000016-A1".into()),
                issuer_ref: IssuerRef {
                    kind: IssuerKind::SithsIssuer,
                    name: "region".into(),
                },
                private_key: None,
                renew_before: None,
                keystores: None,
            },
        );
        c.metadata.namespace = Some("team".into());
        c.status = Some(ServiceCertificateStatus {
            route: Some("SITHS".into()),
            conditions: vec![
                condition("Ready", if ready { "True" } else { "False" }, "Issued"),
                condition("Issuing", "True", "WaitingForApproval"),
            ],
            not_after: ready.then(|| "2027-01-01T00:00:00Z".into()),
            not_before: ready.then(|| "2026-01-01T00:00:00Z".into()),
            renewal_time: ready.then(|| "2026-11-01T00:00:00Z".into()),
            ..Default::default()
        });
        c
    }

    fn order(name: &str, phase: Option<OrderPhase>) -> CertificateOrder {
        let mut o = CertificateOrder::new(
            name,
            CertificateOrderSpec {
                certificate_name: "api".into(),
                revision: 1,
                issuer_name: "region".into(),
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
        o.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::from_second(1_700_000_000).expect("ts"),
        ));
        o.status = Some(CertificateOrderStatus {
            phase,
            ..Default::default()
        });
        o
    }

    #[test]
    fn expiry_gauges_exist_for_certificates_with_a_certificate_only() {
        let (reader, mut writer) = reflector::store();
        writer.apply_watcher_event(&Event::Apply(cert("ready", true)));
        writer.apply_watcher_event(&Event::Apply(cert("waiting", false)));
        let m = Metrics::new();
        m.attach_certificates(reader);
        let text = m.encode().expect("encode");
        assert!(text.contains(
            "siths_certificate_expiration_timestamp_seconds{namespace=\"team\",name=\"ready\",purpose=\"ServerToServer\",route=\"SITHS\",issuer=\"region\"} 1798761600"
        ), "{text}");
        assert!(!text.contains("expiration_timestamp_seconds{namespace=\"team\",name=\"waiting\""));
        assert!(text.contains("siths_certificate_ready_status{namespace=\"team\",name=\"ready\""));
        assert!(text.contains(
            "siths_certificate_ready_status{namespace=\"team\",name=\"waiting\",purpose=\"ServerToServer\",route=\"SITHS\",issuer=\"region\"} 0"
        ));
        assert!(text.contains("reason=\"WaitingForApproval\"} 1"));
        assert!(text.ends_with("# EOF\n"));

        // A standby (or a replica that lost the lease) reports no certificates.
        m.detach();
        let text = m.encode().expect("encode");
        assert!(text.contains("# TYPE siths_certificate_expiration_timestamp_seconds gauge"));
        assert!(!text.contains("name=\"ready\""));
    }

    #[test]
    fn orders_are_counted_by_phase_and_open_orders_listed() {
        let (reader, mut writer) = reflector::store();
        let issuer: SithsIssuer = serde_json::from_value(serde_json::json!({
            "apiVersion": "siths-operator.io/v1alpha1", "kind": "SithsIssuer",
            "metadata": {"name": "region"},
            "spec": {
                "organization": {"name": "Region", "organizationNumber": "232100-0016"},
                "connection": {"type": "Direct"}, "environment": "Production",
                "backend": {"manual": {}}
            },
            "status": {"estimatedSpendSek": 7000}
        }))
        .expect("issuer");
        writer.apply_watcher_event(&Event::Apply(issuer));
        let m = Metrics::new();
        m.attach_issuers(reader);
        m.observe_orders(
            "region",
            &[
                order("a-1", Some(OrderPhase::Issued)),
                order("b-1", Some(OrderPhase::PendingApproval)),
                order("c-1", Some(OrderPhase::PendingApproval)),
            ],
        );
        // Orders of an issuer that no longer exists are not reported.
        m.observe_orders("gone", &[order("d-1", None)]);
        let text = m.encode().expect("encode");
        assert!(
            text.contains(
                "siths_certificate_orders{issuer=\"region\",phase=\"PendingApproval\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("siths_certificate_orders{issuer=\"region\",phase=\"Issued\"} 1"));
        assert!(!text.contains("issuer=\"gone\""));
        assert!(text.contains("siths_certificate_order_created_timestamp_seconds{namespace=\"team\",name=\"b-1\",certificate=\"api\",issuer=\"region\",phase=\"PendingApproval\"} 1700000000"));
        assert!(!text.contains("name=\"a-1\""), "issued orders are not open");
        assert!(text.contains("siths_issuer_estimated_spend_sek{issuer=\"region\"} 7000"));
    }

    #[test]
    fn reconciles_are_counted_with_errors_by_reason() {
        let m = Metrics::new();
        m.reconciled("ServiceCertificate", Duration::from_millis(20), None);
        m.reconciled(
            "ServiceCertificate",
            Duration::from_millis(20),
            Some("kube"),
        );
        m.set_leader(true);
        let text = m.encode().expect("encode");
        assert!(
            text.contains("siths_reconcile_total{controller=\"ServiceCertificate\"} 2"),
            "{text}"
        );
        assert!(text.contains(
            "siths_reconcile_errors_total{controller=\"ServiceCertificate\",reason=\"kube\"} 1"
        ));
        assert!(text.contains(
            "siths_reconcile_duration_seconds_count{controller=\"ServiceCertificate\"} 2"
        ));
        assert!(text.contains("siths_leader 1"));
    }

    #[test]
    fn ingress_tls_certificates_are_counted_by_class_and_cleared_on_detach() {
        let m = Metrics::new();
        m.set_ingress_tls("Ingress", "siths", 2);
        m.set_ingress_tls("Ingress", "public", 0);
        m.set_ingress_tls("Gateway", "siths", 1);
        let text = m.encode().expect("encode");
        assert!(
            text.contains(
                "siths_ingress_tls_certificates{classification=\"siths\",kind=\"Ingress\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "siths_ingress_tls_certificates{classification=\"public\",kind=\"Ingress\"} 0"
        ));
        assert!(text.contains(
            "siths_ingress_tls_certificates{classification=\"siths\",kind=\"Gateway\"} 1"
        ));
        m.detach();
        let text = m.encode().expect("encode");
        assert!(!text.contains("classification=\"siths\""), "{text}");
    }

    /// A scrape is streamed in pieces of about `CHUNK` bytes, and the pieces make the same
    /// text as one encoding; a reader that goes away stops the encoder.
    #[tokio::test]
    async fn the_exposition_streams_in_pieces_that_make_the_whole_text() {
        use futures::StreamExt as _;
        let (reader, mut writer) = reflector::store();
        for i in 0..1000 {
            writer.apply_watcher_event(&Event::Apply(cert(&format!("c{i}"), i % 2 == 0)));
        }
        let m = Arc::new(Metrics::new());
        m.attach_certificates(reader);
        let whole = m.encode().expect("encode");
        assert!(
            whole.len() > 3 * CHUNK,
            "too small to test: {}",
            whole.len()
        );

        let pieces: Vec<_> = m.clone().encode_stream().collect().await;
        assert!(pieces.len() >= 3, "{} pieces", pieces.len());
        let mut streamed = Vec::new();
        for p in pieces {
            let p = p.expect("piece");
            assert!(p.len() < 2 * CHUNK, "a piece of {} bytes", p.len());
            streamed.extend_from_slice(&p);
        }
        assert_eq!(String::from_utf8(streamed).expect("utf-8"), whole);

        // A reader that takes one piece and goes away: the encoder ends (its next send
        // fails) instead of encoding the rest for nobody.
        let mut stream = Box::pin(m.clone().encode_stream());
        assert!(stream.next().await.is_some());
        drop(stream);
        // The encoder held `m`: once it has ended, only this test's handle is left.
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while Arc::strong_count(&m) > 1 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the encoder did not stop after its reader went away");
    }
}
