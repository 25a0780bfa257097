//! The rules: every finding code, computed from an [`Inventory`] at a given time.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::{
    Code, Finding, Severity,
    anchors::{AnchorSet, CertClass, Classification},
    objects::{CertSecret, FoundCertificate, IngressTls, Inventory, ObjectRef, Termination},
    plan,
};
use crate::{
    api::{self, Purpose, ServiceCertificate},
    pki::Environment,
    policy::{cost, renewal::SITHS_MARGIN},
};

/// Certificates by class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassCounts {
    /// Chain to a SITHS production anchor.
    pub siths_production: usize,
    /// Chain to a SITHS test anchor.
    pub siths_test: usize,
    /// Publicly trusted.
    pub public: usize,
    /// Neither.
    pub other: usize,
    /// All of them.
    pub total: usize,
}

/// Findings by severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeverityCounts {
    /// Errors.
    pub error: usize,
    /// Warnings.
    pub warning: usize,
    /// Infos.
    pub info: usize,
}

/// Where the migration stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Certificates found in Secrets, by class.
    pub certificates: ClassCounts,
    /// Ingress TLS entries still serving a SITHS certificate.
    pub user_facing_siths_endpoints: usize,
    /// Estimated cost of renewing, at the SITHS price list, every SITHS certificate that
    /// expires within twelve months.
    pub estimated_siths_spend_next_12_months_sek: u64,
    /// Findings by severity.
    pub findings: SeverityCounts,
}

/// The result of an audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The time the audit was evaluated at (RFC 3339).
    pub evaluated_at: String,
    /// Findings, most severe first, then by code and object.
    pub findings: Vec<Finding>,
    /// Counts.
    pub summary: Summary,
}

impl Report {
    /// Whether any finding is at least as severe as `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.findings.iter().any(|f| f.severity.trips(threshold))
    }
}

struct Seen<'a> {
    secret: &'a CertSecret,
    cert: &'a FoundCertificate,
    class: Classification,
}

fn date(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d").to_string()
}

fn days(d: SignedDuration) -> i64 {
    d.as_secs() / 86_400
}

/// The ServiceCertificates that write Secret `secret`.
pub fn managing<'a>(inv: &'a Inventory, secret: &ObjectRef) -> Vec<&'a ServiceCertificate> {
    inv.service_certificates
        .iter()
        .filter(|c| c.metadata.namespace == secret.namespace && c.spec.secret_name == secret.name)
        .collect()
}

/// Lead time of the next order for a certificate of `class` in `secret`: the managing
/// issuer's, else the manual SITHS default for SITHS certificates, else none.
pub fn lead_time(inv: &Inventory, secret: &ObjectRef, class: CertClass) -> SignedDuration {
    if class.siths_environment().is_none() {
        return SignedDuration::ZERO;
    }
    managing(inv, secret)
        .into_iter()
        .find_map(|c| plan::issuer_of(inv, c))
        .map_or_else(
            || cost::default_lead_time(true),
            |i| cost::lead_time(i.spec.lead_time_days, i.spec.backend.manual.is_some()),
        )
}

/// The finding about certificate `cert` of class `class` served by Ingress TLS entry
/// `tls`: a SITHS certificate on a user-facing endpoint (error), or one that is neither
/// SITHS nor publicly trusted (warning); none for a publicly trusted one. Used by
/// [`audit`] and by the operator's Ingress controller (`audit` mode), so both say the same.
pub fn ingress_certificate_finding(
    tls: &IngressTls,
    cert: &FoundCertificate,
    class: CertClass,
) -> Option<Finding> {
    endpoint_certificate_finding(
        &tls.ingress,
        &format!("Secret {}", tls.secret),
        &tls.hosts,
        cert,
        class,
    )
}

/// [`ingress_certificate_finding`] for any user-facing endpoint (an Ingress, an OpenShift
/// Route) serving `served` (`Secret NAME`, or a Route's inline certificate).
pub fn endpoint_certificate_finding(
    endpoint: &ObjectRef,
    served: &str,
    hosts: &[String],
    cert: &FoundCertificate,
    class: CertClass,
) -> Option<Finding> {
    let hosts = if hosts.is_empty() {
        "no hosts listed".to_string()
    } else {
        hosts.join(", ")
    };
    let leaf = &cert.leaf;
    match class {
        CertClass::SithsProduction | CertClass::SithsTest => Some(Finding::new(
            Code::SithsOnUserFacingIngress,
            Severity::Error,
            endpoint.clone(),
            format!(
                "serves {served} ({hosts}) with a {} certificate for {} issued by {}",
                class.label(),
                leaf.subject,
                leaf.issuer
            ),
        )),
        CertClass::Other => Some(Finding::new(
            Code::NotPubliclyTrustedOnIngress,
            Severity::Warning,
            endpoint.clone(),
            format!(
                "serves {served} ({hosts}) with a certificate for {} issued by {}, which is neither SITHS nor publicly trusted",
                leaf.subject, leaf.issuer
            ),
        )),
        CertClass::Public => None,
    }
}

/// Findings about one certificate wherever it is kept: a name that claims SITHS without
/// the chain, expiry, expiry within the lead time. `lead` is the lead time of its next
/// order.
fn certificate_findings(
    obj: &ObjectRef,
    cert: &FoundCertificate,
    class: Classification,
    lead: SignedDuration,
    now: Timestamp,
    findings: &mut Vec<Finding>,
) {
    let leaf = &cert.leaf;
    let subject = format!(
        "{} ({}, issued by {}, valid until {})",
        cert.key,
        leaf.subject,
        leaf.issuer,
        date(leaf.not_after)
    );
    if class.siths_name_unverified {
        findings.push(Finding::new(
            Code::SithsNameUnverified,
            Severity::Warning,
            obj.clone(),
            format!(
                "{subject}: the issuer name claims SITHS but the chain does not verify to any SITHS anchor"
            ),
        ));
    }
    let left = leaf.not_after.duration_since(now);
    if left.is_negative() {
        findings.push(Finding::new(
            Code::Expired,
            Severity::Error,
            obj.clone(),
            format!(
                "{subject}: a {} certificate that expired {} days ago",
                class.class.label(),
                -days(left)
            ),
        ));
    } else {
        let threshold = lead + SITHS_MARGIN;
        if left < threshold {
            findings.push(Finding::new(
                Code::ExpiresWithinLeadTime,
                if class.class == CertClass::SithsProduction {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                obj.clone(),
                format!(
                    "{subject}: a {} certificate with {} days left, fewer than the lead time of {} days plus a margin of {} days",
                    class.class.label(),
                    days(left),
                    days(lead),
                    days(SITHS_MARGIN)
                ),
            ));
        }
    }
}

fn count(counts: &mut ClassCounts, class: CertClass) {
    counts.total += 1;
    match class {
        CertClass::SithsProduction => counts.siths_production += 1,
        CertClass::SithsTest => counts.siths_test += 1,
        CertClass::Public => counts.public += 1,
        CertClass::Other => counts.other += 1,
    }
}

fn price_environment(env: Environment) -> api::Environment {
    match env {
        Environment::Production => api::Environment::Production,
        Environment::Test => api::Environment::Test,
    }
}

/// Runs every rule over `inv` at `now`.
pub fn audit(inv: &Inventory, anchors: &AnchorSet, now: Timestamp) -> Report {
    let mut findings = Vec::new();
    let mut counts = ClassCounts::default();
    let mut spend: Vec<(api::Environment, Timestamp)> = Vec::new();
    let mut by_secret: BTreeMap<(&str, &str), Vec<Seen<'_>>> = BTreeMap::new();

    // Certificates in Secrets: class, name claims, expiry, management.
    for secret in &inv.secrets {
        let obj = &secret.object;
        for u in &secret.unparseable {
            findings.push(Finding::new(
                Code::UnparseableCertificate,
                Severity::Warning,
                obj.clone(),
                format!("key {} should hold a certificate but {}", u.key, u.reason),
            ));
        }
        for cert in &secret.certificates {
            let leaf = &cert.leaf;
            let class = anchors.classify(&cert.chain, leaf, now);
            count(&mut counts, class.class);
            let lead = lead_time(inv, obj, class.class);
            certificate_findings(obj, cert, class, lead, now, &mut findings);
            if let Some(env) = class.class.siths_environment() {
                spend.push((price_environment(env), leaf.not_after));
                if managing(inv, obj).is_empty() {
                    findings.push(Finding::new(
                        Code::UnmanagedSithsCertificate,
                        Severity::Info,
                        obj.clone(),
                        format!(
                            "{} ({}, issued by {}, valid until {}): a {} certificate no ServiceCertificate manages",
                            cert.key,
                            leaf.subject,
                            leaf.issuer,
                            date(leaf.not_after),
                            class.class.label()
                        ),
                    ));
                }
            }
            let ns = obj.namespace.as_deref().unwrap_or_default();
            by_secret
                .entry((ns, obj.name.as_str()))
                .or_default()
                .push(Seen {
                    secret,
                    cert,
                    class,
                });
        }
    }

    // Ingresses: SITHS or untrusted certificates on user-facing endpoints.
    let mut endpoints = 0;
    let mut user_facing_siths: BTreeMap<(&str, &str), BTreeSet<&ObjectRef>> = BTreeMap::new();
    let mut done: BTreeSet<(&ObjectRef, &str)> = BTreeSet::new();
    for tls in &inv.ingress_tls {
        if !done.insert((&tls.ingress, tls.secret.as_str())) {
            continue;
        }
        let ns = tls.ingress.namespace.as_deref().unwrap_or_default();
        let Some(seen) = by_secret.get(&(ns, tls.secret.as_str())) else {
            continue;
        };
        for s in seen {
            if s.class.class.siths_environment().is_some() {
                endpoints += 1;
                user_facing_siths
                    .entry((ns, s.secret.object.name.as_str()))
                    .or_default()
                    .insert(&tls.ingress);
            }
            findings.extend(ingress_certificate_finding(tls, s.cert, s.class.class));
        }
    }

    // OpenShift Routes: an inline certificate is user-facing like an Ingress's (edge and
    // re-encrypt; a passthrough Route serves its back end's own certificate, end to end).
    for route in &inv.routes {
        let obj = &route.route;
        if let Some(u) = &route.unparseable {
            findings.push(Finding::new(
                Code::UnparseableCertificate,
                Severity::Warning,
                obj.clone(),
                format!("{} should hold a certificate but {}", u.key, u.reason),
            ));
        }
        if let Some(cert) = &route.certificate {
            let class = anchors.classify(&cert.chain, &cert.leaf, now);
            count(&mut counts, class.class);
            // Inline: nothing orders its successor, so no lead time but the margin.
            certificate_findings(obj, cert, class, SignedDuration::ZERO, now, &mut findings);
            if let Some(env) = class.class.siths_environment() {
                spend.push((price_environment(env), cert.leaf.not_after));
                endpoints += 1;
            }
            let hosts: Vec<String> = route.host.iter().cloned().collect();
            findings.extend(endpoint_certificate_finding(
                obj,
                "its inline spec.tls.certificate",
                &hosts,
                cert,
                class.class,
            ));
        }
        // Re-encrypt: the router verifies the back end with destinationCACertificate.
        if route.termination != Termination::Reencrypt {
            continue;
        }
        let Some(service) = &route.service else {
            continue;
        };
        let ns = obj.namespace.as_deref().unwrap_or_default();
        let mut serving: BTreeMap<CertClass, BTreeSet<String>> = BTreeMap::new();
        for w in inv.service_workloads(ns, service) {
            for secret in &w.secrets {
                for s in by_secret.get(&(ns, secret.as_str())).into_iter().flatten() {
                    if s.class.class.siths_environment().is_some() {
                        serving.entry(s.class.class).or_default().insert(format!(
                            "{} {} (Secret {secret})",
                            w.object.kind, w.object.name
                        ));
                    }
                }
            }
        }
        for (class, users) in serving {
            let Some(env) = class.siths_environment() else {
                continue;
            };
            if !route
                .destination_ca
                .is_disjoint(&anchors.siths_fingerprints(env))
            {
                continue;
            }
            findings.push(Finding::new(
                Code::SithsCaMissingOnReencryptRoute,
                Severity::Error,
                obj.clone(),
                format!(
                    "re-encrypts to Service {service}, whose back ends serve SITHS {env} certificates ({}), but spec.tls.destinationCACertificate holds no SITHS {env} CA certificate; the router cannot verify them",
                    users.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }

    // The same Secret on an Ingress and in back-end use.
    for ((ns, name), ingresses) in &user_facing_siths {
        let secret = ObjectRef::namespaced("Secret", ns, name);
        let mut users: Vec<String> = inv
            .workloads
            .iter()
            .filter(|w| w.object.namespace.as_deref() == Some(*ns) && w.secrets.contains(*name))
            .map(|w| format!("{} {}", w.object.kind, w.object.name))
            .collect();
        users.extend(
            managing(inv, &secret)
                .into_iter()
                .filter(|c| c.spec.purpose == Purpose::ServerToServer)
                .map(|c| {
                    format!(
                        "ServerToServer ServiceCertificate {}",
                        c.metadata.name.as_deref().unwrap_or_default()
                    )
                }),
        );
        if users.is_empty() {
            continue;
        }
        let ingresses: Vec<String> = ingresses
            .iter()
            .map(|i| format!("{} {}", i.kind, i.name))
            .collect();
        findings.push(Finding::new(
            Code::SharedSecretUserFacingAndBackend,
            Severity::Error,
            secret,
            format!(
                "serves {} and is also used by {}; swapping its SITHS certificate for a public one would break that back-end traffic",
                ingresses.join(", "),
                users.join(", ")
            ),
        ));
    }

    // SITHS trust where workloads use SITHS certificates.
    let mut needs: BTreeMap<&str, BTreeMap<CertClass, BTreeSet<String>>> = BTreeMap::new();
    for w in &inv.workloads {
        let ns = w.object.namespace.as_deref().unwrap_or_default();
        for secret in &w.secrets {
            for s in by_secret.get(&(ns, secret.as_str())).into_iter().flatten() {
                if s.class.class.siths_environment().is_some() {
                    needs
                        .entry(ns)
                        .or_default()
                        .entry(s.class.class)
                        .or_default()
                        .insert(format!(
                            "{} {} (Secret {secret})",
                            w.object.kind, w.object.name
                        ));
                }
            }
        }
    }
    for (ns, envs) in needs {
        let installed = inv.config_map_certificates.get(ns);
        for (class, users) in envs {
            let Some(env) = class.siths_environment() else {
                continue;
            };
            let have =
                installed.is_some_and(|fps| !fps.is_disjoint(&anchors.siths_fingerprints(env)));
            if have {
                continue;
            }
            findings.push(Finding::new(
                Code::SithsTrustNotInstalled,
                Severity::Warning,
                ObjectRef {
                    kind: "Namespace".into(),
                    namespace: None,
                    name: ns.to_string(),
                },
                format!(
                    "workloads use SITHS {env} certificates ({}), but no ConfigMap in the namespace holds the SITHS {env} CA certificates",
                    users.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }

    // Names no domain validation covers.
    for cert in &inv.service_certificates {
        if let Some(gap) = plan::domain_gap(inv, cert, now) {
            findings.push(Finding::new(
                Code::NoDomainValidation,
                Severity::Error,
                ObjectRef::namespaced(
                    "ServiceCertificate",
                    cert.metadata.namespace.as_deref().unwrap_or_default(),
                    cert.metadata.name.as_deref().unwrap_or_default(),
                ),
                gap.message(),
            ));
        }
    }

    // DomainValidations whose live DNS check failed (the verdict the gate uses).
    for dv in &inv.domain_validations {
        let v = crate::policy::domain_validation::verdict(dv, now);
        let dns_reason = [
            crate::vocabulary::dns::MISSING,
            crate::vocabulary::dns::MISMATCH,
            crate::vocabulary::dns::FAILED,
            crate::vocabulary::dns::PENDING,
        ]
        .contains(&v.reason);
        if !dns_reason {
            continue;
        }
        findings.push(Finding::new(
            Code::DnsCheckFailed,
            // Held within the grace period: the validation still counts.
            if v.validated {
                Severity::Warning
            } else {
                Severity::Error
            },
            ObjectRef {
                kind: "DomainValidation".into(),
                namespace: None,
                name: dv.metadata.name.clone().unwrap_or_default(),
            },
            format!("{}: {}", v.reason, v.message),
        ));
    }

    findings.sort_by(|a, b| {
        (a.severity, a.code, &a.object, &a.message)
            .cmp(&(b.severity, b.code, &b.object, &b.message))
    });
    let mut by_severity = SeverityCounts::default();
    for f in &findings {
        match f.severity {
            Severity::Error => by_severity.error += 1,
            Severity::Warning => by_severity.warning += 1,
            Severity::Info => by_severity.info += 1,
        }
    }
    Report {
        evaluated_at: crate::policy::rfc3339(now),
        findings,
        summary: Summary {
            certificates: counts,
            user_facing_siths_endpoints: endpoints,
            estimated_siths_spend_next_12_months_sek: cost::estimated_spend_next_12_months(
                &spend, now,
            ),
            findings: by_severity,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{self, CertificateProfile, KeySpec, LocalCa, Usage, testutil};
    use base64::Engine as _;
    use serde_json::json;

    struct World {
        prod: LocalCa,
        test: LocalCa,
        public: LocalCa,
        private: LocalCa,
        forged: LocalCa,
        anchors: AnchorSet,
        inv: Inventory,
    }

    fn now() -> Timestamp {
        testutil::now()
    }

    impl World {
        fn new() -> Self {
            let opts = |cn: &str| testutil::ca_options(cn, false);
            let prod = testutil::ca();
            let test = LocalCa::generate(&opts("Stand-in test root")).unwrap();
            let public = LocalCa::generate(&opts("Public root")).unwrap();
            let private = LocalCa::generate(&opts("Private root")).unwrap();
            let forged = LocalCa::generate(&pki::LocalCaOptions {
                common_name: "SITHS e-id Function CA v1".into(),
                organization: "Inera AB".into(),
                ..opts("unused")
            })
            .unwrap();
            let anchors = AnchorSet::new()
                .add_pem(&prod.cert_pem(), Environment::Production)
                .unwrap()
                .add_pem(&test.root_pem(), Environment::Test)
                .unwrap()
                .with_public_roots(vec![
                    webpki::anchor_from_trusted_cert(&public.root_der())
                        .unwrap()
                        .to_owned(),
                ]);
            World {
                prod,
                test,
                public,
                private,
                forged,
                anchors,
                inv: Inventory::default(),
            }
        }

        /// PEM chain and key of a leaf of `ca` for `name`, valid `days` from `now() - 1 day`.
        fn leaf(&self, name: &str, ca: &str, days: u64) -> (String, String) {
            let ca = match ca {
                "prod" => &self.prod,
                "test" => &self.test,
                "public" => &self.public,
                "private" => &self.private,
                _ => &self.forged,
            };
            let key = KeySpec::ECDSA_P256.generate().unwrap();
            let profile = CertificateProfile {
                dns_names: vec![format!("{name}.region.se")],
                usage: Usage::ServerToServer,
                ..testutil::profile()
            };
            let start = now() - SignedDuration::from_hours(24);
            let chain = ca
                .sign(
                    &profile,
                    &key.public_key_der(),
                    start,
                    std::time::Duration::from_secs(days * 86_400),
                    &pki::random_serial().unwrap(),
                )
                .unwrap();
            (pki::chain_to_pem(&chain), key.to_pem())
        }

        /// An OpenShift Route.
        fn route(&mut self, ns: &str, name: &str, tls: serde_json::Value) {
            self.add(json!({"apiVersion": "route.openshift.io/v1", "kind": "Route",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"host": format!("{name}.region.se"), "to": {"kind": "Service", "name": name}, "tls": tls}}));
        }

        /// A Service selecting `app: name` and a Deployment of such pods mounting `secret`.
        fn backend(&mut self, ns: &str, name: &str, secret: &str) {
            self.add(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"app": name}, "ports": [{"port": 8443}]}}));
            self.add(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                    "metadata": {"labels": {"app": name, "tier": "api"}},
                    "spec": {"volumes": [{"name": "tls", "secret": {"secretName": secret}}],
                        "containers": [{"name": "c"}]}}}}));
        }

        /// A TLS Secret with a leaf of `ca` for `name`, valid `days` from `now() - 1 day`.
        fn secret(&mut self, ns: &str, name: &str, ca: &str, days: u64) {
            let (crt, key) = self.leaf(name, ca, days);
            let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
            self.add(
                json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": name, "namespace": ns},
                "data": {"tls.crt": b64(crt), "tls.key": b64(key)}}),
            );
        }

        fn add(&mut self, v: serde_json::Value) {
            self.inv.add_value(v).unwrap();
        }

        fn ingress(&mut self, ns: &str, name: &str, secret: &str) {
            self.add(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"tls": [{"hosts": [format!("{name}.region.se")], "secretName": secret}]}}),
            );
        }

        fn deployment(&mut self, ns: &str, name: &str, secret: &str) {
            self.add(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {}, "template": {"spec": {
                    "volumes": [{"name": "tls", "secret": {"secretName": secret}}],
                    "containers": [{"name": "c"}]}}}}));
        }

        fn certificate(&mut self, ns: &str, name: &str, secret: &str, dns: &str) {
            self.add(json!({"apiVersion": "siths-operator.io/v1alpha1", "kind": "ServiceCertificate",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"purpose": "ServerToServer", "hsaId": "SE2321000016-ABC1", "dnsNames": [dns],
                    "secretName": secret, "issuerRef": {"kind": "SithsIssuer", "name": "region"}}}));
        }

        fn report(&self) -> Report {
            audit(&self.inv, &self.anchors, now())
        }
    }

    fn codes_for(report: &Report, object: &str) -> Vec<&'static str> {
        report
            .findings
            .iter()
            .filter(|f| f.object.display() == object)
            .map(|f| f.code.as_str())
            .collect()
    }

    #[test]
    fn openshift_routes_edge_reencrypt_passthrough_and_external_certificates() {
        let mut w = World::new();
        // Edge with an inline SITHS certificate (and its key, which is never kept).
        let (crt, key) = w.leaf("portal", "prod", 365);
        w.route(
            "web",
            "portal",
            json!({"termination": "edge", "certificate": crt, "key": key}),
        );
        // Re-encrypt to a SITHS back end, without and with the SITHS CA.
        w.secret("web", "api-tls", "prod", 365);
        w.backend("web", "api", "api-tls");
        w.route(
            "web",
            "api",
            json!({"termination": "reencrypt", "destinationCACertificate": w.private.root_pem()}),
        );
        w.secret("web", "sync-tls", "prod", 365);
        w.backend("web", "sync", "sync-tls");
        let prod_ca = w.prod.cert_pem();
        w.route(
            "web",
            "sync",
            json!({"termination": "reencrypt", "destinationCACertificate": prod_ca}),
        );
        // Passthrough to a SITHS back end: mutual TLS end to end, correct.
        w.secret("web", "mtls-tls", "prod", 365);
        w.backend("web", "mtls", "mtls-tls");
        w.route("web", "mtls", json!({"termination": "passthrough"}));
        // A SITHS test certificate through externalCertificate.
        w.secret("web", "ext-tls", "test", 365);
        w.route(
            "web",
            "ext",
            json!({"termination": "edge", "externalCertificate": {"name": "ext-tls"}}),
        );
        let r = w.report();
        assert_eq!(
            codes_for(&r, "Route/web/portal"),
            ["SITHS_ON_USER_FACING_INGRESS"]
        );
        let portal = r
            .findings
            .iter()
            .find(|f| f.object.name == "portal")
            .unwrap();
        assert!(
            portal.message.starts_with(
                "serves its inline spec.tls.certificate (portal.region.se) with a SITHS production certificate"
            ),
            "{}",
            portal.message
        );
        assert_eq!(
            codes_for(&r, "Route/web/api"),
            ["SITHS_CA_MISSING_ON_REENCRYPT_ROUTE"]
        );
        let api = r.findings.iter().find(|f| f.object.name == "api").unwrap();
        assert!(
            api.message.contains("Deployment api (Secret api-tls)"),
            "{}",
            api.message
        );
        assert!(codes_for(&r, "Route/web/sync").is_empty());
        assert!(codes_for(&r, "Route/web/mtls").is_empty());
        assert_eq!(
            codes_for(&r, "Route/web/ext"),
            ["SITHS_ON_USER_FACING_INGRESS"]
        );
        // Two SITHS endpoints to replace, the inline and the external one: back ends behind
        // re-encrypt and passthrough are server-to-server.
        assert_eq!(r.summary.user_facing_siths_endpoints, 2);
        // The inline certificate counts; its key is nowhere.
        assert_eq!(r.summary.certificates.siths_production, 4);
        assert_eq!(r.summary.certificates.siths_test, 1);
        assert!(!format!("{:?}", w.inv).contains("PRIVATE KEY"));
        assert!(!serde_json::to_string(&r).unwrap().contains("PRIVATE KEY"));
        // A selector that does not match the pods finds no back end, so no finding.
        let mut w2 = World::new();
        w2.secret("web", "api-tls", "prod", 365);
        w2.backend("web", "api", "api-tls");
        w2.add(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "api", "namespace": "web"}, "spec": {"selector": {"app": "other"}}}));
        w2.route("web", "api", json!({"termination": "reencrypt"}));
        assert!(codes_for(&w2.report(), "Route/web/api").is_empty());
    }

    #[test]
    fn siths_on_an_ingress_shared_with_a_workload() {
        let mut w = World::new();
        w.secret("web", "portal-tls", "prod", 365);
        w.ingress("web", "portal", "portal-tls");
        w.deployment("web", "portal-api", "portal-tls");
        let r = w.report();
        assert_eq!(
            codes_for(&r, "Ingress/web/portal"),
            ["SITHS_ON_USER_FACING_INGRESS"]
        );
        assert_eq!(
            codes_for(&r, "Secret/web/portal-tls"),
            [
                "SHARED_SECRET_USER_FACING_AND_BACKEND",
                "UNMANAGED_SITHS_CERTIFICATE"
            ]
        );
        assert_eq!(
            codes_for(&r, "Namespace/web"),
            ["SITHS_TRUST_NOT_INSTALLED"]
        );
        let shared = &r.findings[1];
        assert!(
            shared.message.contains("Ingress portal")
                && shared.message.contains("Deployment portal-api"),
            "{}",
            shared.message
        );
        assert_eq!(r.summary.user_facing_siths_endpoints, 1);
        assert_eq!(r.summary.certificates.siths_production, 1);
        assert!(r.fails(Severity::Error));
    }

    #[test]
    fn an_ingress_alone_is_not_shared_and_a_managed_server_to_server_secret_is() {
        let mut w = World::new();
        w.secret("web", "alone", "test", 365);
        w.ingress("web", "alone", "alone");
        w.secret("web", "both", "prod", 365);
        w.ingress("web", "both", "both");
        w.certificate("web", "both-cert", "both", "both.region.se");
        let r = w.report();
        assert_eq!(
            codes_for(&r, "Ingress/web/alone"),
            ["SITHS_ON_USER_FACING_INGRESS"]
        );
        assert_eq!(
            codes_for(&r, "Secret/web/alone"),
            ["UNMANAGED_SITHS_CERTIFICATE"]
        );
        // Managed (no UNMANAGED), shared with the ServerToServer certificate.
        assert_eq!(
            codes_for(&r, "Secret/web/both"),
            ["SHARED_SECRET_USER_FACING_AND_BACKEND"]
        );
        // No workload: trust is not needed.
        assert!(codes_for(&r, "Namespace/web").is_empty());
        assert_eq!(r.summary.user_facing_siths_endpoints, 2);
    }

    #[test]
    fn public_private_and_forged_certificates_on_ingresses() {
        let mut w = World::new();
        for (name, ca) in [("pub", "public"), ("own", "private"), ("fake", "forged")] {
            w.secret("web", name, ca, 365);
            w.ingress("web", name, name);
        }
        let r = w.report();
        assert!(codes_for(&r, "Ingress/web/pub").is_empty());
        assert!(codes_for(&r, "Secret/web/pub").is_empty());
        assert_eq!(
            codes_for(&r, "Ingress/web/own"),
            ["NOT_PUBLICLY_TRUSTED_ON_INGRESS"]
        );
        assert_eq!(
            codes_for(&r, "Ingress/web/fake"),
            ["NOT_PUBLICLY_TRUSTED_ON_INGRESS"]
        );
        assert_eq!(codes_for(&r, "Secret/web/fake"), ["SITHS_NAME_UNVERIFIED"]);
        assert_eq!(
            r.summary.certificates,
            ClassCounts {
                public: 1,
                other: 2,
                total: 3,
                ..Default::default()
            }
        );
        assert_eq!(r.summary.user_facing_siths_endpoints, 0);
        assert!(!r.fails(Severity::Error));
        assert!(r.fails(Severity::Warning));
    }

    #[test]
    fn expiry_against_lead_time_and_margin() {
        let mut w = World::new();
        // Created a day ago: `days` - 1 left.
        w.secret("a", "prod-30", "prod", 31); // 30 days < 28 + 14: error
        w.secret("a", "prod-50", "prod", 51); // 50 days: fine
        w.secret("a", "test-30", "test", 31); // warning
        w.secret("a", "private-10", "private", 11); // 10 < 0 + 14: warning
        w.secret("a", "private-20", "private", 21); // fine
        let r = w.report();
        let sev = |name: &str| {
            r.findings
                .iter()
                .find(|f| f.code == Code::ExpiresWithinLeadTime && f.object.name == name)
                .map(|f| f.severity)
        };
        assert_eq!(sev("prod-30"), Some(Severity::Error));
        assert_eq!(sev("prod-50"), None);
        assert_eq!(sev("test-30"), Some(Severity::Warning));
        assert_eq!(sev("private-10"), Some(Severity::Warning));
        assert_eq!(sev("private-20"), None);
        let msg = &r
            .findings
            .iter()
            .find(|f| f.object.name == "prod-30" && f.code == Code::ExpiresWithinLeadTime)
            .unwrap()
            .message;
        assert!(
            msg.contains("30 days left") && msg.contains("lead time of 28 days"),
            "{msg}"
        );
        // A year later everything has expired, and spend counts every SITHS certificate.
        let later = audit(
            &w.inv,
            &w.anchors,
            now() + SignedDuration::from_hours(24 * 365),
        );
        assert_eq!(
            later
                .findings
                .iter()
                .filter(|f| f.code == Code::Expired)
                .count(),
            5
        );
        assert!(
            !later
                .findings
                .iter()
                .any(|f| f.code == Code::ExpiresWithinLeadTime)
        );
        assert_eq!(
            r.summary.estimated_siths_spend_next_12_months_sek,
            3_500 * 2 + 150
        );
    }

    #[test]
    fn an_issuer_lead_time_moves_the_threshold() {
        let mut w = World::new();
        w.secret("a", "s", "prod", 51); // 50 days left
        w.certificate("a", "c", "s", "s.region.se");
        assert!(
            !w.report()
                .findings
                .iter()
                .any(|f| f.code == Code::ExpiresWithinLeadTime)
        );
        w.add(
            json!({"apiVersion": "siths-operator.io/v1alpha1", "kind": "SithsIssuer",
            "metadata": {"name": "region"},
            "spec": {"organization": {"name": "R", "organizationNumber": "232100-0016"},
                "connection": {"type": "Direct"}, "environment": "Production",
                "backend": {"manual": {}}, "leadTimeDays": 40}}),
        );
        let r = w.report();
        let f = r
            .findings
            .iter()
            .find(|f| f.code == Code::ExpiresWithinLeadTime)
            .unwrap();
        assert!(f.message.contains("lead time of 40 days"), "{}", f.message);
    }

    #[test]
    fn trust_installed_by_a_config_map_of_the_right_environment() {
        let mut w = World::new();
        w.secret("b", "mtls", "prod", 365);
        w.deployment("b", "sync", "mtls");
        let test_root = w.test.root_pem();
        w.add(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "wrong", "namespace": "b"},
            "data": {"ca.crt": test_root}}));
        assert_eq!(
            codes_for(&w.report(), "Namespace/b"),
            ["SITHS_TRUST_NOT_INSTALLED"]
        );
        let prod_bundle = w.prod.cert_pem();
        w.add(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "siths", "namespace": "b"},
            "data": {"ca.crt": prod_bundle}}));
        assert!(codes_for(&w.report(), "Namespace/b").is_empty());
    }

    #[test]
    fn domain_validations_whose_live_dns_check_failed() {
        let mut w = World::new();
        let dv = |name: &str, result: &str| {
            json!({"apiVersion": "siths-operator.io/v1alpha1", "kind": "DomainValidation",
            "metadata": {"name": name},
            "spec": {"domain": format!("{name}.se"), "includeSubdomains": true,
                "owner": {"name": "O", "organizationNumber": "232100-0016"}, "validatedFor": "232100-0016",
                "evidence": {"formReference": "F", "submittedBy": "A", "approvedOn": "2026-01-01",
                    "dnsTxtRecord": {"name": format!("_v.{name}.se"), "value": "t"}},
                "validUntil": "2030-01-01"},
            "status": {"dns": {"name": format!("_v.{name}.se"), "value": "t", "result": result,
                "resultTime": "2026-01-01T00:00:00Z", "lastCheckTime": "2026-01-01T00:00:00Z",
                "graceUntil": "2026-01-04T00:00:00Z", "nextCheckTime": "2026-01-02T00:00:00Z"}}})
        };
        w.add(dv("gone", "DnsRecordMissing"));
        w.add(dv("here", "DnsRecordFound"));
        let r = w.report();
        assert_eq!(codes_for(&r, "DomainValidation/gone"), ["DNS_CHECK_FAILED"]);
        let f = r
            .findings
            .iter()
            .find(|f| f.code == Code::DnsCheckFailed)
            .unwrap();
        assert!(f.message.starts_with("DnsRecordMissing: "), "{}", f.message);
        assert!(codes_for(&r, "DomainValidation/here").is_empty());
    }

    #[test]
    fn domain_validation_gaps_and_unparseable_secrets() {
        let mut w = World::new();
        w.certificate("c", "api", "api-tls", "api.region.se");
        w.add(json!({"apiVersion": "siths-operator.io/v1alpha1", "kind": "DomainValidation",
            "metadata": {"name": "other"},
            "spec": {"domain": "other.se", "includeSubdomains": true,
                "owner": {"name": "O", "organizationNumber": "232100-0016"}, "validatedFor": "232100-0016",
                "evidence": {"formReference": "F", "submittedBy": "A", "approvedOn": "2026-01-01"},
                "validUntil": "2030-01-01"}}));
        w.add(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "empty", "namespace": "c"}, "data": {"tls.crt": "", "tls.key": ""}}));
        let r = w.report();
        let dv = r
            .findings
            .iter()
            .find(|f| f.code == Code::NoDomainValidation)
            .unwrap();
        assert_eq!(dv.object.display(), "ServiceCertificate/c/api");
        assert!(dv.message.contains("api.region.se"), "{}", dv.message);
        assert_eq!(codes_for(&r, "Secret/c/empty"), ["UNPARSEABLE_CERTIFICATE"]);
        // Covered: no finding.
        w.add(json!({"apiVersion": "siths-operator.io/v1alpha1", "kind": "DomainValidation",
            "metadata": {"name": "region"},
            "spec": {"domain": "region.se", "includeSubdomains": true,
                "owner": {"name": "O", "organizationNumber": "232100-0016"}, "validatedFor": "232100-0016",
                "evidence": {"formReference": "F", "submittedBy": "A", "approvedOn": "2026-01-01"},
                "validUntil": "2030-01-01"}}));
        assert!(
            !w.report()
                .findings
                .iter()
                .any(|f| f.code == Code::NoDomainValidation)
        );
    }
}
