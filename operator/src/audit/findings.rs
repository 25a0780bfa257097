//! The rules: every finding code, computed from an [`Inventory`] at a given time.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::{
    Code, Finding, Severity,
    anchors::{AnchorSet, CertClass, Classification},
    objects::{CertSecret, FoundCertificate, Inventory, ObjectRef, Termination},
    plan,
};
use crate::{
    api::{self, Purpose, ServiceCertificate},
    pki::Environment,
    policy::{
        cost,
        gateway::{self as gw_policy, CaContents, RefAccess, Unmanaged},
        renewal::SITHS_MARGIN,
    },
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
    /// Ingress TLS entries and Gateway listeners (by Gateway or ListenerSet and Secret) still
    /// serving a SITHS certificate.
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

/// A Secret a user-facing endpoint serves: an Ingress TLS entry or a Gateway listener.
struct Served<'a> {
    endpoint: ObjectRef,
    secret_namespace: &'a str,
    secret: &'a str,
    hosts: Vec<String>,
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

/// The finding about certificate `cert` of class `class` served by a user-facing endpoint
/// (an Ingress, an OpenShift Route, a Gateway or ListenerSet listener) serving `served`
/// (`Secret NAME`, `Secret NAMESPACE/NAME`, or a Route's inline certificate): a SITHS
/// certificate (error) or one that is neither SITHS nor publicly trusted (warning); none for
/// a publicly trusted one. Used by [`audit`] and by the operator's Ingress and Gateway
/// controllers (`audit` mode), so both say the same.
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
    let gateway = matches!(endpoint.kind.as_str(), "Gateway" | "ListenerSet");
    match class {
        CertClass::SithsProduction | CertClass::SithsTest => Some(Finding::new(
            if gateway {
                Code::SithsOnUserFacingGateway
            } else {
                Code::SithsOnUserFacingIngress
            },
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
            if gateway {
                Code::NotPubliclyTrustedOnGateway
            } else {
                Code::NotPubliclyTrustedOnIngress
            },
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

/// Findings about Gateway API objects beyond listener certificates: BackendTLSPolicies that
/// cannot verify a SITHS-serving back end, and Gateways verifying clients against SITHS.
fn gateway_findings(
    inv: &Inventory,
    anchors: &AnchorSet,
    by_secret: &BTreeMap<(&str, &str), Vec<Seen<'_>>>,
    now: Timestamp,
    findings: &mut Vec<Finding>,
) {
    // A BackendTLSPolicy must let the Gateway verify the SITHS certificates its Services'
    // pods serve: an error, as for a re-encrypt Route, since the Gateway's connections to
    // that back end fail verification (or, with System trust, stop working once SITHS
    // leaves the public root programmes).
    for policy in &inv.gateway_api.backend_tls_policies {
        let ns = policy.metadata.namespace.as_deref().unwrap_or_default();
        let object = ObjectRef::namespaced(
            "BackendTLSPolicy",
            ns,
            policy.metadata.name.as_deref().unwrap_or_default(),
        );
        let cas: CaContents = policy
            .spec
            .validation
            .ca_certificate_refs
            .iter()
            .map(|r| {
                let text = inv
                    .config_map_ca_crt
                    .get(&(ns.to_string(), r.name.clone()))
                    .cloned();
                (r.clone(), text)
            })
            .collect();
        for service in gw_policy::policy_services(policy) {
            let mut reported = BTreeSet::new();
            for w in inv.service_workloads(ns, &service) {
                for secret in &w.secrets {
                    for s in by_secret.get(&(ns, secret.as_str())).into_iter().flatten() {
                        if s.class.class.siths_environment().is_none() {
                            continue;
                        }
                        let Err(problem) =
                            gw_policy::backend_trust(policy, &cas, &s.cert.chain, now)
                        else {
                            continue;
                        };
                        if reported.insert(problem.key()) {
                            let served =
                                format!("Secret {secret} of {} {}", w.object.kind, w.object.name);
                            findings.push(Finding::new(
                                Code::BackendTlsWithoutSithsTrust,
                                Severity::Error,
                                object.clone(),
                                problem.message(&service, &served),
                            ));
                        }
                    }
                }
            }
        }
    }

    // A Gateway validating client certificates against SITHS CA certificates: the SITHS
    // mutual TLS of the national platforms ends there (for the record).
    for gw in &inv.gateway_api.gateways {
        let ns = gw.metadata.namespace.as_deref().unwrap_or_default();
        let mut siths: Vec<String> = Vec::new();
        for (cm_ns, r) in gw_policy::frontend_ca_refs(gw) {
            if !r.is("", "ConfigMap", "ConfigMap") {
                continue;
            }
            let Some(Some(text)) = inv.config_map_ca_crt.get(&(cm_ns.clone(), r.name.clone()))
            else {
                continue;
            };
            for env in anchors.siths_environments_in(text) {
                siths.push(format!("ConfigMap {cm_ns}/{} (SITHS {env})", r.name));
            }
        }
        if siths.is_empty() {
            continue;
        }
        findings.push(Finding::new(
            Code::SithsClientAuthTerminatedAtGateway,
            Severity::Info,
            ObjectRef::namespaced("Gateway", ns, gw.metadata.name.as_deref().unwrap_or_default()),
            format!(
                "verifies client certificates against SITHS CA certificates ({}): callers' SITHS mutual TLS ends at the Gateway",
                siths.join(", ")
            ),
        ));
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

    // Ingresses and Gateway listeners: SITHS or untrusted certificates on user-facing
    // endpoints. A listener whose Secret in another namespace no ReferenceGrant allows is
    // not served (and not read as the Gateway's).
    let listeners = inv.gateway_listeners();
    let mut served: Vec<Served<'_>> = inv
        .ingress_tls
        .iter()
        .map(|t| Served {
            endpoint: t.ingress.clone(),
            secret_namespace: t.ingress.namespace.as_deref().unwrap_or_default(),
            secret: &t.secret,
            hosts: t.hosts.clone(),
        })
        .collect();
    for c in &listeners {
        let endpoint = ObjectRef::namespaced(c.source.kind(), &c.namespace, &c.name);
        if c.access == RefAccess::NotGranted {
            findings.push(Finding::new(
                Code::GatewayRefNotGranted,
                Severity::Warning,
                endpoint,
                Unmanaged::NotGranted.message(c),
            ));
            continue;
        }
        // The hosts of every listener of the same object serving the same Secret, as the
        // operator's Gateway controller words it.
        match served.iter_mut().find(|s| {
            s.endpoint == endpoint
                && s.secret_namespace == c.secret_namespace
                && s.secret == c.secret
        }) {
            Some(s) => {
                for h in &c.hosts {
                    if !s.hosts.contains(h) {
                        s.hosts.push(h.clone());
                    }
                }
            }
            None => served.push(Served {
                endpoint,
                secret_namespace: &c.secret_namespace,
                secret: &c.secret,
                hosts: c.hosts.clone(),
            }),
        }
    }
    let mut endpoints = 0;
    let mut user_facing_siths: BTreeMap<(&str, &str), BTreeSet<&ObjectRef>> = BTreeMap::new();
    let mut done: BTreeSet<(&ObjectRef, &str, &str)> = BTreeSet::new();
    for tls in &served {
        if !done.insert((&tls.endpoint, tls.secret_namespace, tls.secret)) {
            continue;
        }
        let ns = tls.secret_namespace;
        let Some(seen) = by_secret.get(&(ns, tls.secret)) else {
            continue;
        };
        let served_text = if tls.endpoint.namespace.as_deref() == Some(ns) {
            format!("Secret {}", tls.secret)
        } else {
            format!("Secret {ns}/{}", tls.secret)
        };
        for s in seen {
            if s.class.class.siths_environment().is_some() {
                endpoints += 1;
                user_facing_siths
                    .entry((ns, s.secret.object.name.as_str()))
                    .or_default()
                    .insert(&tls.endpoint);
            }
            findings.extend(endpoint_certificate_finding(
                &tls.endpoint,
                &served_text,
                &tls.hosts,
                s.cert,
                s.class.class,
            ));
        }
    }

    gateway_findings(inv, anchors, &by_secret, now, &mut findings);

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

    /// A Gateway in `ns` with the given listeners (and `tls`, when not null).
    fn gateway(
        w: &mut World,
        ns: &str,
        name: &str,
        listeners: serde_json::Value,
        tls: serde_json::Value,
    ) {
        let mut spec = json!({"gatewayClassName": "eg", "listeners": listeners});
        if !tls.is_null() {
            spec["tls"] = tls;
        }
        w.add(
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}),
        );
    }

    fn https(name: &str, host: Option<&str>, secret: serde_json::Value) -> serde_json::Value {
        let mut l = json!({"name": name, "port": 443, "protocol": "HTTPS",
            "tls": {"certificateRefs": [secret]}});
        if let Some(h) = host {
            l["hostname"] = json!(h);
        }
        l
    }

    fn backend_policy(
        w: &mut World,
        ns: &str,
        name: &str,
        service: &str,
        validation: serde_json::Value,
    ) {
        w.add(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "BackendTLSPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": service}], "validation": validation}}));
    }

    fn config_map(w: &mut World, ns: &str, name: &str, ca_crt: String) {
        w.add(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns}, "data": {"ca.crt": ca_crt}}));
    }

    #[test]
    fn gateway_listeners_grants_backend_policies_and_frontend_trust() {
        let mut w = World::new();
        // A SITHS listener (hosts from an attached HTTPRoute), shared with a back end; a
        // public one; a private one on a ListenerSet; one in another namespace with and one
        // without a ReferenceGrant.
        w.secret("web", "portal-tls", "prod", 365);
        w.deployment("web", "portal-api", "portal-tls");
        w.secret("web", "pub-tls", "public", 365);
        w.secret("certs", "shared-tls", "test", 365);
        w.secret("other", "lost-tls", "prod", 365);
        gateway(
            &mut w,
            "web",
            "front",
            json!([
                https("portal", None, json!({"name": "portal-tls"})),
                https("pub", Some("pub.region.se"), json!({"name": "pub-tls"})),
                https("shared", Some("shared.region.se"), json!({"name": "shared-tls", "namespace": "certs"})),
                https("lost", Some("lost.region.se"), json!({"name": "lost-tls", "namespace": "other"})),
                {"name": "http", "port": 80, "protocol": "HTTP"}
            ]),
            json!({"frontend": {"default": {"validation": {"caCertificateRefs": [
                {"group": "", "kind": "ConfigMap", "name": "siths-clients"}]}}}}),
        );
        w.add(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "portal", "namespace": "web"},
            "spec": {"parentRefs": [{"name": "front", "sectionName": "portal"}], "hostnames": ["portal.region.se"]}}));
        w.add(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ReferenceGrant",
            "metadata": {"name": "web-gateways", "namespace": "certs"},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "web"}],
                     "to": [{"group": "", "kind": "Secret"}]}}));
        w.secret("web", "own-tls", "private", 365);
        w.add(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet",
            "metadata": {"name": "extra", "namespace": "web"},
            "spec": {"parentRef": {"name": "front"}, "listeners": [https("own", Some("own.region.se"), json!({"name": "own-tls"}))]}}));
        let prod_ca = w.prod.cert_pem();
        config_map(&mut w, "web", "siths-clients", prod_ca.clone());
        // Back ends serving SITHS behind BackendTLSPolicies: System trust, a stale copy, the
        // SithsTrustBundle's ConfigMap (right), and a public back end (nothing to say).
        for (svc, ca) in [
            ("sys", "prod"),
            ("stale", "prod"),
            ("good", "prod"),
            ("pubapi", "public"),
        ] {
            w.secret("api", &format!("{svc}-tls"), ca, 365);
            w.backend("api", svc, &format!("{svc}-tls"));
        }
        backend_policy(
            &mut w,
            "api",
            "sys",
            "sys",
            json!({"wellKnownCACertificates": "System", "hostname": "sys.region.se"}),
        );
        let private_root = w.private.root_pem();
        config_map(&mut w, "api", "stale-ca", private_root);
        backend_policy(
            &mut w,
            "api",
            "stale",
            "stale",
            json!({"caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "stale-ca"}], "hostname": "stale.region.se"}),
        );
        config_map(&mut w, "api", "siths-trust", prod_ca);
        backend_policy(
            &mut w,
            "api",
            "good",
            "good",
            json!({"caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "siths-trust"}], "hostname": "good-tls.region.se"}),
        );
        backend_policy(
            &mut w,
            "api",
            "pubapi",
            "pubapi",
            json!({"wellKnownCACertificates": "System", "hostname": "pubapi.region.se"}),
        );
        // A Gateway presenting an unmanaged SITHS client certificate to back ends.
        w.secret("api", "gw-client", "prod", 365);
        gateway(
            &mut w,
            "api",
            "internal",
            json!([]),
            json!({"backend": {"clientCertificateRef": {"name": "gw-client"}}}),
        );

        let r = w.report();
        assert_eq!(
            codes_for(&r, "Gateway/web/front"),
            [
                "SITHS_ON_USER_FACING_GATEWAY",
                "SITHS_ON_USER_FACING_GATEWAY",
                "GATEWAY_REF_NOT_GRANTED",
                "SITHS_CLIENT_AUTH_TERMINATED_AT_GATEWAY"
            ]
        );
        // Sorted by message within a code.
        let msgs: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.object.display() == "Gateway/web/front")
            .map(|f| f.message.as_str())
            .collect();
        assert!(
            msgs[1]
                .starts_with("serves Secret portal-tls (portal.region.se) with a SITHS production"),
            "{}",
            msgs[1]
        );
        assert!(
            msgs[0]
                .starts_with("serves Secret certs/shared-tls (shared.region.se) with a SITHS test"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[2].contains("no ReferenceGrant in namespace other"),
            "{}",
            msgs[2]
        );
        assert!(
            msgs[3].contains("ConfigMap web/siths-clients (SITHS production)"),
            "{}",
            msgs[3]
        );
        assert_eq!(
            codes_for(&r, "ListenerSet/web/extra"),
            ["NOT_PUBLICLY_TRUSTED_ON_GATEWAY"]
        );
        assert_eq!(
            codes_for(&r, "Secret/web/portal-tls"),
            [
                "SHARED_SECRET_USER_FACING_AND_BACKEND",
                "UNMANAGED_SITHS_CERTIFICATE"
            ]
        );
        let shared = r
            .findings
            .iter()
            .find(|f| f.code == Code::SharedSecretUserFacingAndBackend)
            .unwrap();
        assert!(
            shared.message.contains("serves Gateway front")
                && shared.message.contains("Deployment portal-api"),
            "{}",
            shared.message
        );
        // Not granted: not served, so not read as the Gateway's.
        assert_eq!(r.summary.user_facing_siths_endpoints, 2);
        assert_eq!(
            codes_for(&r, "BackendTLSPolicy/api/sys"),
            ["BACKEND_TLS_WITHOUT_SITHS_TRUST"]
        );
        assert_eq!(
            codes_for(&r, "BackendTLSPolicy/api/stale"),
            ["BACKEND_TLS_WITHOUT_SITHS_TRUST"]
        );
        assert!(codes_for(&r, "BackendTLSPolicy/api/good").is_empty());
        assert!(codes_for(&r, "BackendTLSPolicy/api/pubapi").is_empty());
        let stale = r
            .findings
            .iter()
            .find(|f| f.object.name == "stale" && f.object.kind == "BackendTLSPolicy")
            .unwrap();
        assert_eq!(stale.severity, Severity::Error);
        assert!(
            stale.message.starts_with(
                "Service stale serves a SITHS certificate (Secret stale-tls of Deployment stale)"
            ),
            "{}",
            stale.message
        );
        // The client certificate is a SITHS-using workload: adoption, trust, inventory.
        assert_eq!(
            codes_for(&r, "Secret/api/gw-client"),
            ["UNMANAGED_SITHS_CERTIFICATE"]
        );
        let rows = crate::audit::inventory::inventory(&w.inv, &w.anchors, now());
        let used = |name: &str| {
            rows.iter()
                .find(|row| row.secret.name == name)
                .unwrap()
                .used_by
                .clone()
        };
        assert_eq!(used("gw-client"), ["Gateway/internal"]);
        assert_eq!(
            used("portal-tls"),
            ["Deployment/portal-api", "Gateway/front"]
        );
        assert_eq!(used("shared-tls"), ["Gateway/web/front"]);
        assert!(used("lost-tls").is_empty(), "not granted: not used");
        assert_eq!(used("own-tls"), ["ListenerSet/extra"]);
        let timeline = crate::audit::timeline::certificates(&w.inv, &w.anchors, now());
        assert!(
            timeline
                .iter()
                .any(|t| t.user_facing && t.holder.name == "portal-tls")
        );
        // The same objects from a ReferenceGrant for another Secret only: not granted.
        let mut w2 = World::new();
        w2.secret("certs", "shared-tls", "test", 365);
        gateway(
            &mut w2,
            "web",
            "front",
            json!([https(
                "shared",
                Some("shared.region.se"),
                json!({"name": "shared-tls", "namespace": "certs"})
            )]),
            serde_json::Value::Null,
        );
        w2.add(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ReferenceGrant",
            "metadata": {"name": "g", "namespace": "certs"},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "web"}],
                     "to": [{"group": "", "kind": "Secret", "name": "something-else"}]}}));
        assert_eq!(
            codes_for(&w2.report(), "Gateway/web/front"),
            ["GATEWAY_REF_NOT_GRANTED"]
        );
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
