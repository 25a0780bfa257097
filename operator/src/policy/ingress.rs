//! Decisions about Ingresses: the mode of an Ingress (annotation `siths-operator.io/tls`
//! or the operator's default), the `UserFacing` ServiceCertificates its TLS entries need
//! in `public` mode, their names, whether an existing one must be written, and the class
//! of the certificate a TLS entry serves in `audit` mode.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::networking::v1::IngressTLS,
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};

use super::{conditions::find_condition, stable_hash};
use crate::{
    api::{IssuerKind, IssuerRef, Purpose, ServiceCertificate, ServiceCertificateSpec, status},
    pki::CertClass,
    vocabulary::{INGRESS_TLS_ANNOTATION, MANAGED_BY, reason::SHARED_WITH_BACKEND},
};

/// How the operator treats an Ingress's TLS entries (annotation `siths-operator.io/tls`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum IngressMode {
    /// Keep a publicly trusted certificate in each TLS Secret (a UserFacing
    /// ServiceCertificate owned by the Ingress). The Ingress itself is never modified.
    Public,
    /// Read each TLS Secret and warn about SITHS or not publicly trusted certificates.
    #[default]
    Audit,
    /// Leave the Ingress alone.
    Ignore,
}

/// Label on the ServiceCertificates the operator keeps for an Ingress: the Ingress's name
/// (hash-suffixed when longer than a label value may be).
pub const INGRESS_LABEL: &str = "siths-operator.io/ingress";

/// Longest label value, and the longest name given to a ServiceCertificate of an Ingress
/// (its name becomes a label value on the Secret and orders it leads to).
pub const MAX_LABEL_LEN: usize = 63;

/// Most DNS names a ServiceCertificate takes.
pub const MAX_DNS_NAMES: usize = 100;

/// The mode of an Ingress, and the annotation value when it was not a mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeChoice {
    /// The mode that applies.
    pub mode: IngressMode,
    /// The annotation's value, when it is not `public`, `audit` or `ignore` (the default
    /// applies then).
    pub invalid: Option<String>,
}

impl ModeChoice {
    /// What to tell people about an invalid annotation value.
    pub fn message(&self) -> Option<String> {
        self.invalid.as_ref().map(|v| {
            format!(
                "annotation {INGRESS_TLS_ANNOTATION} has the value {v:?}; the allowed values are public, audit and ignore; the operator's default ({}) applies",
                mode_label(self.mode)
            )
        })
    }
}

/// `public`, `audit` or `ignore`.
pub fn mode_label(mode: IngressMode) -> &'static str {
    match mode {
        IngressMode::Public => "public",
        IngressMode::Audit => "audit",
        IngressMode::Ignore => "ignore",
    }
}

/// The mode of an Ingress from its annotation (`None` when absent) and the default. Case
/// and surrounding spaces do not matter; anything else than a mode is the default.
pub fn mode(annotation: Option<&str>, default: IngressMode) -> ModeChoice {
    let Some(value) = annotation else {
        return ModeChoice {
            mode: default,
            invalid: None,
        };
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "public" => ModeChoice {
            mode: IngressMode::Public,
            invalid: None,
        },
        "audit" => ModeChoice {
            mode: IngressMode::Audit,
            invalid: None,
        },
        "ignore" => ModeChoice {
            mode: IngressMode::Ignore,
            invalid: None,
        },
        _ => ModeChoice {
            mode: default,
            invalid: Some(value.to_string()),
        },
    }
}

/// The UserFacing ServiceCertificate one Secret of an Ingress needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredCertificate {
    /// Name of the ServiceCertificate, see [`certificate_name`].
    pub name: String,
    /// The Secret the Ingress names (the certificate is written there).
    pub secret_name: String,
    /// The hosts of every TLS entry naming that Secret, in order, without repeats.
    pub dns_names: Vec<String>,
}

/// A TLS entry that gets no certificate, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryProblem {
    /// The entry lists no hosts: there is no name to put in a certificate.
    NoHosts {
        /// Its Secret.
        secret: String,
    },
    /// The entry names no Secret (the controller's default certificate serves it).
    NoSecret {
        /// Its hosts.
        hosts: Vec<String>,
    },
    /// More hosts on one Secret than a certificate takes.
    TooManyHosts {
        /// The Secret.
        secret: String,
        /// How many.
        count: usize,
    },
}

impl EntryProblem {
    /// A stable key, so that the same problem is reported once.
    pub fn key(&self) -> String {
        match self {
            EntryProblem::NoHosts { secret } => format!("no-hosts/{secret}"),
            EntryProblem::NoSecret { hosts } => format!("no-secret/{}", hosts.join(",")),
            EntryProblem::TooManyHosts { secret, .. } => format!("too-many-hosts/{secret}"),
        }
    }

    /// What to tell people.
    pub fn message(&self) -> String {
        match self {
            EntryProblem::NoHosts { secret } => format!(
                "the TLS entry with Secret {secret} lists no hosts, so no certificate can be issued for it; add its hosts to spec.tls[].hosts"
            ),
            EntryProblem::NoSecret { hosts } => format!(
                "the TLS entry for {} names no secretName; the operator only writes certificates into a Secret the Ingress names",
                hosts.join(", ")
            ),
            EntryProblem::TooManyHosts { secret, count } => format!(
                "Secret {secret} serves {count} hosts, more than the {MAX_DNS_NAMES} one certificate takes; split them over several Secrets"
            ),
        }
    }
}

/// One TLS entry of a user-facing endpoint: an Ingress's `spec.tls[]`, or a Gateway
/// listener's Secret with the listener's host names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsEntry {
    /// Host names.
    pub hosts: Vec<String>,
    /// The Secret serving them.
    pub secret_name: Option<String>,
}

impl From<&IngressTLS> for TlsEntry {
    fn from(t: &IngressTLS) -> Self {
        TlsEntry {
            hosts: t.hosts.clone().unwrap_or_default(),
            secret_name: t.secret_name.clone(),
        }
    }
}

/// The entries of an Ingress's `spec.tls`.
pub fn ingress_entries(tls: &[IngressTLS]) -> Vec<TlsEntry> {
    tls.iter().map(TlsEntry::from).collect()
}

/// The certificates an Ingress (or Gateway) named `ingress` with TLS entries `tls` needs in
/// `public` mode: one per Secret (entries naming the same Secret share it, their hosts
/// merged; hosts are lowercased), and the entries that get none.
pub fn desired_certificates(
    ingress: &str,
    tls: &[TlsEntry],
) -> (Vec<DesiredCertificate>, Vec<EntryProblem>) {
    let mut by_secret: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    let mut problems = Vec::new();
    for entry in tls {
        let hosts: Vec<String> = entry
            .hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let Some(secret) = entry.secret_name.as_deref().filter(|s| !s.is_empty()) else {
            if !hosts.is_empty() {
                problems.push(EntryProblem::NoSecret { hosts });
            }
            continue;
        };
        if hosts.is_empty() {
            problems.push(EntryProblem::NoHosts {
                secret: secret.to_string(),
            });
            continue;
        }
        let names = by_secret.entry(secret).or_insert_with(|| {
            order.push(secret);
            Vec::new()
        });
        for h in hosts {
            if !names.contains(&h) {
                names.push(h);
            }
        }
    }
    let mut out = Vec::new();
    for secret in order {
        let dns_names = by_secret.remove(secret).unwrap_or_default();
        if dns_names.len() > MAX_DNS_NAMES {
            problems.push(EntryProblem::TooManyHosts {
                secret: secret.to_string(),
                count: dns_names.len(),
            });
            continue;
        }
        out.push(DesiredCertificate {
            name: certificate_name(ingress, secret),
            secret_name: secret.to_string(),
            dns_names,
        });
    }
    (out, problems)
}

/// `base`, or, when longer than [`MAX_LABEL_LEN`], its start and a hash of `key`.
fn bounded(base: &str, key: &str) -> String {
    if base.len() <= MAX_LABEL_LEN {
        return base.to_string();
    }
    let hash = format!("{:016x}", stable_hash("ingress-certificate", key));
    let hash = &hash[..8];
    let mut end = MAX_LABEL_LEN - hash.len() - 1;
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = base[..end].trim_end_matches(['-', '.']);
    if prefix.is_empty() {
        hash.to_string()
    } else {
        format!("{prefix}-{hash}")
    }
}

/// Name of the ServiceCertificate for Secret `secret` of Ingress `ingress`:
/// `<ingress>-<secret>`, or, when that exceeds [`MAX_LABEL_LEN`], its start and a hash of
/// both names (so two long names sharing a start stay apart).
pub fn certificate_name(ingress: &str, secret: &str) -> String {
    bounded(
        &format!("{ingress}-{secret}"),
        &format!("{ingress}\0{secret}"),
    )
}

/// Value of [`INGRESS_LABEL`] for Ingress `ingress`.
pub fn ingress_label_value(ingress: &str) -> String {
    bounded(ingress, ingress)
}

/// Label on the ServiceCertificates the operator keeps for a Gateway: the Gateway's name
/// (hash-suffixed when longer than a label value may be).
pub const GATEWAY_LABEL: &str = "siths-operator.io/gateway";

/// The kind of user-facing endpoint that owns the certificates it keeps in `public` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Door {
    /// A `networking.k8s.io/v1` Ingress.
    Ingress,
    /// A `gateway.networking.k8s.io/v1` Gateway (its listeners and ListenerSets).
    Gateway,
}

impl Door {
    /// The owner's apiVersion.
    pub fn api_version(self) -> &'static str {
        match self {
            Door::Ingress => "networking.k8s.io/v1",
            Door::Gateway => "gateway.networking.k8s.io/v1",
        }
    }

    /// The owner's kind.
    pub fn kind(self) -> &'static str {
        match self {
            Door::Ingress => "Ingress",
            Door::Gateway => "Gateway",
        }
    }

    /// The label naming the owner on its certificates.
    pub fn label(self) -> &'static str {
        match self {
            Door::Ingress => INGRESS_LABEL,
            Door::Gateway => GATEWAY_LABEL,
        }
    }
}

/// The Ingress or Gateway an object belongs to: kind, name and uid.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// Ingress or Gateway.
    pub door: Door,
    /// Its name.
    pub name: &'a str,
    /// Its uid.
    pub uid: &'a str,
}

/// The ServiceCertificate `desired` of Ingress `owner` in `namespace` on PublicIssuer
/// `issuer`: owned by the Ingress (controller, so garbage collection removes it with the
/// Ingress), labelled with it.
pub fn certificate_object(
    namespace: &str,
    owner: Owner<'_>,
    desired: &DesiredCertificate,
    issuer: &str,
) -> ServiceCertificate {
    let mut labels = BTreeMap::new();
    labels.insert(
        owner.door.label().to_string(),
        ingress_label_value(owner.name),
    );
    labels.insert(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string());
    ServiceCertificate {
        metadata: ObjectMeta {
            name: Some(desired.name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            owner_references: Some(vec![owner_reference(owner)]),
            ..Default::default()
        },
        spec: ServiceCertificateSpec {
            purpose: Purpose::UserFacing,
            dns_names: desired.dns_names.clone(),
            secret_name: desired.secret_name.clone(),
            hsa_id: None,
            issuer_ref: IssuerRef {
                kind: IssuerKind::PublicIssuer,
                name: issuer.to_string(),
            },
            private_key: None,
            renew_before: None,
            keystores: None,
        },
        status: None,
    }
}

/// The controller reference to `owner`.
pub fn owner_reference(owner: Owner<'_>) -> OwnerReference {
    OwnerReference {
        api_version: owner.door.api_version().into(),
        kind: owner.door.kind().into(),
        name: owner.name.to_string(),
        uid: owner.uid.to_string(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// Whether `obj` is controlled by the object (Ingress or Gateway) with `uid`.
pub fn controlled_by(obj: &ServiceCertificate, uid: &str) -> bool {
    obj.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// The Gateway (its name, in the certificate's namespace) that controls `cert`: its ACME
/// HTTP-01 challenges are answered through an HTTPRoute on that Gateway.
pub fn gateway_owner(cert: &ServiceCertificate) -> Option<&str> {
    cert.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| {
            o.controller == Some(true)
                && o.kind == Door::Gateway.kind()
                && o.api_version == Door::Gateway.api_version()
        })
        .map(|o| o.name.as_str())
}

/// Whether `existing` lacks anything of `desired` (the fields the operator sets: spec,
/// its labels, its owner reference), so that it must be written. Fields others set
/// (status, defaults, their labels) do not count.
pub fn needs_apply(existing: &ServiceCertificate, desired: &ServiceCertificate) -> bool {
    let e = &existing.spec;
    let d = &desired.spec;
    if e.purpose != d.purpose
        || e.dns_names != d.dns_names
        || e.secret_name != d.secret_name
        || e.issuer_ref != d.issuer_ref
        || e.hsa_id.is_some()
        || e.private_key.is_some()
        || e.renew_before.is_some()
    {
        return true;
    }
    let labels = existing.metadata.labels.as_ref();
    let labels_ok = desired
        .metadata
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
    let owners_ok = desired.metadata.owner_references.iter().flatten().all(|o| {
        existing
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|x| x == o)
    });
    !(labels_ok && owners_ok)
}

/// The message of a `Ready=False` condition with reason `SharedWithBackend`: the
/// certificate's Secret also serves back-end traffic, so the operator does not write it.
pub fn shared_with_backend(cert: &ServiceCertificate) -> Option<&str> {
    let conditions = cert.status.as_ref()?.conditions.as_slice();
    find_condition(conditions, crate::vocabulary::condition::READY)
        .filter(|c| c.status == status::FALSE && c.reason == SHARED_WITH_BACKEND)
        .map(|c| c.message.as_str())
}

/// What a TLS entry serves, as counted by the
/// `siths_ingress_tls_certificates{classification}` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsClass {
    /// Chains to SITHS (production or test).
    Siths,
    /// Publicly trusted.
    Public,
    /// Neither.
    Untrusted,
    /// The Secret does not exist or holds no certificate in `tls.crt`.
    Missing,
}

impl TlsClass {
    /// Every class, in label order.
    pub const ALL: [TlsClass; 4] = [
        TlsClass::Siths,
        TlsClass::Public,
        TlsClass::Untrusted,
        TlsClass::Missing,
    ];

    /// The class of a certificate the audit classified (`None`: no certificate).
    pub fn of(class: Option<CertClass>) -> Self {
        match class {
            Some(CertClass::SithsProduction | CertClass::SithsTest) => TlsClass::Siths,
            Some(CertClass::Public) => TlsClass::Public,
            Some(CertClass::Other) => TlsClass::Untrusted,
            None => TlsClass::Missing,
        }
    }

    /// Label value.
    pub fn label(self) -> &'static str {
        match self {
            TlsClass::Siths => "siths",
            TlsClass::Public => "public",
            TlsClass::Untrusted => "untrusted",
            TlsClass::Missing => "missing",
        }
    }

    /// Reason of the Warning event this class gets on the Ingress or Gateway, if any.
    pub fn event_reason(self, door: Door) -> Option<&'static str> {
        match (self, door) {
            (TlsClass::Siths, Door::Ingress) => Some("SithsCertificateOnUserFacingIngress"),
            (TlsClass::Siths, Door::Gateway) => Some("SithsCertificateOnUserFacingGateway"),
            (TlsClass::Untrusted, Door::Ingress) => Some("NotPubliclyTrustedOnIngress"),
            (TlsClass::Untrusted, Door::Gateway) => Some("NotPubliclyTrustedOnGateway"),
            (TlsClass::Public | TlsClass::Missing, _) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Condition;

    fn entry(hosts: &[&str], secret: Option<&str>) -> TlsEntry {
        TlsEntry::from(&IngressTLS {
            hosts: Some(hosts.iter().map(|h| h.to_string()).collect()),
            secret_name: secret.map(str::to_string),
        })
    }

    #[test]
    fn mode_comes_from_the_annotation_or_the_default() {
        let m = |a, d| mode(a, d).mode;
        assert_eq!(m(None, IngressMode::Audit), IngressMode::Audit);
        assert_eq!(m(None, IngressMode::Public), IngressMode::Public);
        assert_eq!(m(Some("public"), IngressMode::Audit), IngressMode::Public);
        assert_eq!(m(Some(" Ignore "), IngressMode::Audit), IngressMode::Ignore);
        assert_eq!(m(Some("audit"), IngressMode::Ignore), IngressMode::Audit);
        let bad = mode(Some("publik"), IngressMode::Audit);
        assert_eq!(bad.mode, IngressMode::Audit);
        assert_eq!(bad.invalid.as_deref(), Some("publik"));
        let msg = bad.message().unwrap();
        assert!(
            msg.contains("\"publik\"") && msg.contains("public, audit and ignore"),
            "{msg}"
        );
        assert!(msg.contains("default (audit)"), "{msg}");
        assert_eq!(
            mode(Some(""), IngressMode::Ignore).mode,
            IngressMode::Ignore
        );
        assert!(mode(Some("public"), IngressMode::Audit).message().is_none());
    }

    #[test]
    fn one_certificate_per_secret_with_the_entries_hosts() {
        let (certs, problems) = desired_certificates(
            "web",
            &[
                entry(&["a.region.se", "B.region.se"], Some("web-tls")),
                entry(&["c.region.se"], Some("other-tls")),
                entry(&["b.region.se", "d.region.se"], Some("web-tls")),
                entry(&[], Some("empty-tls")),
                entry(&["e.region.se"], None),
            ],
        );
        assert_eq!(
            certs,
            vec![
                DesiredCertificate {
                    name: "web-web-tls".into(),
                    secret_name: "web-tls".into(),
                    dns_names: vec![
                        "a.region.se".into(),
                        "b.region.se".into(),
                        "d.region.se".into()
                    ],
                },
                DesiredCertificate {
                    name: "web-other-tls".into(),
                    secret_name: "other-tls".into(),
                    dns_names: vec!["c.region.se".into()],
                },
            ]
        );
        assert_eq!(
            problems,
            vec![
                EntryProblem::NoHosts {
                    secret: "empty-tls".into()
                },
                EntryProblem::NoSecret {
                    hosts: vec!["e.region.se".into()]
                },
            ]
        );
        assert!(problems[0].message().contains("lists no hosts"));
        assert_ne!(problems[0].key(), problems[1].key());
        // No TLS at all: nothing.
        assert_eq!(desired_certificates("web", &[]), (vec![], vec![]));
    }

    #[test]
    fn too_many_hosts_on_one_secret_are_refused() {
        let hosts: Vec<String> = (0..=MAX_DNS_NAMES).map(|i| format!("h{i}.se")).collect();
        let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let (certs, problems) = desired_certificates("web", &[entry(&refs, Some("s"))]);
        assert!(certs.is_empty());
        assert_eq!(
            problems,
            vec![EntryProblem::TooManyHosts {
                secret: "s".into(),
                count: 101
            }]
        );
    }

    #[test]
    fn names_are_deterministic_and_bounded() {
        assert_eq!(certificate_name("web", "web-tls"), "web-web-tls");
        let long_ingress = "i".repeat(60);
        let a = certificate_name(&long_ingress, "secret-a");
        let b = certificate_name(&long_ingress, "secret-b");
        assert_eq!(a, certificate_name(&long_ingress, "secret-a"));
        assert_ne!(a, b);
        for n in [&a, &b] {
            assert!(n.len() <= MAX_LABEL_LEN, "{n}");
            assert!(crate::policy::names::is_dns1123_subdomain(n), "{n}");
            assert!(n.starts_with("iiii"), "{n}");
        }
        // The same joined text from different parts stays apart once hashed.
        let x = certificate_name(&format!("{}-a", "x".repeat(60)), "b");
        let y = certificate_name(&"x".repeat(60), "a-b");
        assert_ne!(x, y);
        // A cut after '-' leaves no "--" before the hash.
        let dashed = certificate_name(&format!("{}-", "d".repeat(53)), "s".repeat(20).as_str());
        assert!(!dashed.contains("--"), "{dashed}");
        assert_eq!(ingress_label_value("web"), "web");
        assert!(ingress_label_value(&"w".repeat(200)).len() <= MAX_LABEL_LEN);
    }

    fn desired() -> ServiceCertificate {
        let (certs, _) = desired_certificates("web", &[entry(&["a.region.se"], Some("web-tls"))]);
        certificate_object(
            "team",
            Owner {
                door: Door::Ingress,
                name: "web",
                uid: "u-1",
            },
            &certs[0],
            "letsencrypt",
        )
    }

    #[test]
    fn the_certificate_is_user_facing_owned_and_labelled() {
        let c = desired();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["spec"]["purpose"], "UserFacing");
        assert_eq!(v["spec"]["issuerRef"]["kind"], "PublicIssuer");
        assert_eq!(v["spec"]["issuerRef"]["name"], "letsencrypt");
        assert_eq!(v["spec"]["secretName"], "web-tls");
        assert_eq!(v["spec"]["dnsNames"], serde_json::json!(["a.region.se"]));
        assert_eq!(v["metadata"]["labels"][INGRESS_LABEL], "web");
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "Ingress");
        assert_eq!(v["metadata"]["ownerReferences"][0]["controller"], true);
        assert!(controlled_by(&c, "u-1"));
        assert!(!controlled_by(&c, "u-2"));
        assert_eq!(gateway_owner(&c), None);
        let g = certificate_object(
            "team",
            Owner {
                door: Door::Gateway,
                name: "gw",
                uid: "u-3",
            },
            &desired_certificates("gw", &[entry(&["a.region.se"], Some("gw-tls"))]).0[0],
            "letsencrypt",
        );
        assert_eq!(gateway_owner(&g), Some("gw"));
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!(v["metadata"]["labels"][GATEWAY_LABEL], "gw");
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "Gateway");
        assert_eq!(
            v["metadata"]["ownerReferences"][0]["apiVersion"],
            "gateway.networking.k8s.io/v1"
        );
    }

    #[test]
    fn only_a_difference_in_what_the_operator_sets_needs_a_write() {
        let d = desired();
        let mut existing = d.clone();
        assert!(!needs_apply(&existing, &d));
        // Status, other labels and other owners do not count.
        existing
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("team".into(), "x".into());
        existing.metadata.resource_version = Some("42".into());
        existing.status = Some(Default::default());
        assert!(!needs_apply(&existing, &d));
        let mut changed = existing.clone();
        changed.spec.dns_names.push("b.region.se".into());
        assert!(needs_apply(&changed, &d));
        let mut changed = existing.clone();
        changed.spec.issuer_ref.name = "other".into();
        assert!(needs_apply(&changed, &d));
        let mut changed = existing.clone();
        changed.metadata.owner_references = None;
        assert!(needs_apply(&changed, &d));
        let mut changed = existing.clone();
        changed
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(INGRESS_LABEL);
        assert!(needs_apply(&changed, &d));
        let mut changed = existing;
        changed.spec.renew_before = Some("30d".into());
        assert!(needs_apply(&changed, &d));
    }

    fn with_ready(reason: &str, status: &str) -> ServiceCertificate {
        let mut c = desired();
        let cond: Condition = serde_json::from_value(serde_json::json!({
            "type": "Ready", "status": status, "reason": reason, "message": "Secret web-tls is also used by Deployment api",
            "lastTransitionTime": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        c.status = Some(crate::api::ServiceCertificateStatus {
            conditions: vec![cond],
            ..Default::default()
        });
        c
    }

    #[test]
    fn shared_with_backend_is_read_from_the_ready_condition() {
        assert_eq!(
            shared_with_backend(&with_ready("SharedWithBackend", "False")),
            Some("Secret web-tls is also used by Deployment api")
        );
        assert_eq!(shared_with_backend(&with_ready("Issued", "False")), None);
        assert_eq!(
            shared_with_backend(&with_ready("SharedWithBackend", "True")),
            None
        );
        assert_eq!(shared_with_backend(&desired()), None);
    }

    #[test]
    fn classes_and_their_events() {
        assert_eq!(TlsClass::of(Some(CertClass::SithsTest)), TlsClass::Siths);
        assert_eq!(
            TlsClass::of(Some(CertClass::SithsProduction)),
            TlsClass::Siths
        );
        assert_eq!(TlsClass::of(Some(CertClass::Public)), TlsClass::Public);
        assert_eq!(TlsClass::of(Some(CertClass::Other)), TlsClass::Untrusted);
        assert_eq!(TlsClass::of(None), TlsClass::Missing);
        assert_eq!(
            TlsClass::Siths.event_reason(Door::Ingress),
            Some("SithsCertificateOnUserFacingIngress")
        );
        assert_eq!(
            TlsClass::Siths.event_reason(Door::Gateway),
            Some("SithsCertificateOnUserFacingGateway")
        );
        assert_eq!(
            TlsClass::Untrusted.event_reason(Door::Ingress),
            Some("NotPubliclyTrustedOnIngress")
        );
        assert_eq!(TlsClass::Public.event_reason(Door::Gateway), None);
        assert_eq!(TlsClass::Missing.event_reason(Door::Ingress), None);
        let labels: Vec<_> = TlsClass::ALL.iter().map(|c| c.label()).collect();
        assert_eq!(labels, ["siths", "public", "untrusted", "missing"]);
    }
}
