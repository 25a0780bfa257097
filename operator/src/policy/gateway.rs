//! Decisions about Gateway API objects, shared by the Gateway controller, the BackendTLSPolicy
//! check, `sithsctl audit` (live and from files) and `sithsctl plan`:
//!
//! - which Secret each TLS listener of a Gateway (and of the ListenerSets attached to it)
//!   serves, for which host names, and whether the Gateway may read it
//!   ([`listener_certificates`], [`reference_granted`]);
//! - the TLS entries a Gateway in `public` mode gets UserFacing certificates for
//!   ([`public_entries`], the same entries as an Ingress's `spec.tls`);
//! - whether a BackendTLSPolicy lets the Gateway verify a SITHS-serving backend
//!   ([`backend_trust`]);
//! - the SITHS trust a Gateway's frontend validates clients against
//!   ([`frontend_ca_refs`]).

use rustls_pki_types::CertificateDer;

use super::ingress::TlsEntry;
use crate::{
    api::gateway::{
        BackendTLSPolicy, Gateway, HTTPRoute, Listener, ListenerSet, ObjectReference,
        ReferenceGrant, TLSRoute,
    },
    pki::{self, TrustAnchors, Usage},
};

/// The object a listener belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListenerSource {
    /// Listed in the Gateway's own `spec.listeners`.
    Gateway,
    /// Listed in an attached ListenerSet.
    ListenerSet,
}

impl ListenerSource {
    /// The kind's name.
    pub fn kind(self) -> &'static str {
        match self {
            ListenerSource::Gateway => "Gateway",
            ListenerSource::ListenerSet => "ListenerSet",
        }
    }
}

/// Whether the Gateway may read the Secret a listener names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefAccess {
    /// In the listener's own namespace.
    Local,
    /// In another namespace, allowed by a ReferenceGrant there.
    Granted,
    /// In another namespace with no ReferenceGrant allowing it: the Gateway cannot use it.
    NotGranted,
}

/// A Secret a TLS listener serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerCertificate {
    /// Gateway or ListenerSet.
    pub source: ListenerSource,
    /// Namespace of the Gateway or ListenerSet.
    pub namespace: String,
    /// Name of the Gateway or ListenerSet.
    pub name: String,
    /// The listener's name.
    pub listener: String,
    /// The Secret's namespace.
    pub secret_namespace: String,
    /// The Secret's name.
    pub secret: String,
    /// The listener's host name, or, without one, those of the HTTPRoutes (and TLSRoutes)
    /// attached to it; lowercased, without repeats.
    pub hosts: Vec<String>,
    /// Whether the Gateway may read the Secret.
    pub access: RefAccess,
}

impl ListenerCertificate {
    /// `Gateway NS/NAME listener L` (or `ListenerSet ...`), for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {}/{} listener {}",
            self.source.kind(),
            self.namespace,
            self.name,
            self.listener
        )
    }
}

/// Whether a listener terminates TLS with certificates the Gateway is given: protocol HTTPS,
/// or TLS in mode `Terminate` (the default mode).
pub fn terminates_tls(listener: &Listener) -> bool {
    let terminate = listener.tls.as_ref().is_some_and(|t| {
        t.mode
            .as_deref()
            .is_none_or(|m| m.is_empty() || m == "Terminate")
    });
    terminate && matches!(listener.protocol.as_str(), "HTTPS" | "TLS")
}

/// Whether ReferenceGrants in the target namespace (`grants`, any namespace: filtered here)
/// allow a `from_kind` of group `from_group` in `from_ns` to refer to the `to_kind` of core
/// group `to_group` named `to_name` in `to_ns`. A reference within one namespace needs none.
pub fn reference_granted(
    grants: &[&ReferenceGrant],
    (from_group, from_kind, from_ns): (&str, &str, &str),
    (to_group, to_kind, to_ns, to_name): (&str, &str, &str, &str),
) -> bool {
    if from_ns == to_ns {
        return true;
    }
    grants
        .iter()
        .filter(|g| g.metadata.namespace.as_deref() == Some(to_ns))
        .any(|g| {
            let from = g.spec.from.iter().any(|f| {
                f.group == from_group
                    && f.kind == from_kind
                    && f.namespace.as_deref() == Some(from_ns)
            });
            let to = g.spec.to.iter().any(|t| {
                t.group == to_group
                    && t.kind == to_kind
                    && t.name
                        .as_deref()
                        .is_none_or(|n| n.is_empty() || n == to_name)
            });
            from && to
        })
}

/// Whether route parent reference `r` (on a route in `route_ns`) attaches to listener
/// `listener` of the Gateway or ListenerSet `kind` `ns/name`.
fn attaches(
    r: &ObjectReference,
    route_ns: &str,
    kind: &str,
    ns: &str,
    name: &str,
    listener: &Listener,
) -> bool {
    r.is_parent(kind)
        && r.name == name
        && r.namespace_from(route_ns) == ns
        && r.section_name
            .as_deref()
            .is_none_or(|s| s.is_empty() || s == listener.name)
        && r.port.is_none_or(|p| p == listener.port)
}

/// The routes attached to a Gateway: HTTPRoutes and TLSRoutes, as (namespace, parent
/// references, host names).
#[derive(Debug, Default, Clone, Copy)]
pub struct Routes<'a> {
    /// HTTPRoutes (any namespace; filtered by their parent references).
    pub http: &'a [&'a HTTPRoute],
    /// TLSRoutes.
    pub tls: &'a [&'a TLSRoute],
}

impl Routes<'_> {
    fn attached(&self) -> impl Iterator<Item = (&str, &[ObjectReference], &[String])> {
        let http = self.http.iter().map(|r| {
            (
                r.metadata.namespace.as_deref().unwrap_or_default(),
                r.spec.parent_refs.as_slice(),
                r.spec.hostnames.as_slice(),
            )
        });
        let tls = self.tls.iter().map(|r| {
            (
                r.metadata.namespace.as_deref().unwrap_or_default(),
                r.spec.parent_refs.as_slice(),
                r.spec.hostnames.as_slice(),
            )
        });
        http.chain(tls)
    }
}

/// The host names listener `listener` of `kind` `ns/name` serves: its own, or those of the
/// routes attached to it.
fn listener_hosts(
    listener: &Listener,
    kind: &str,
    ns: &str,
    name: &str,
    routes: Routes<'_>,
) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    let mut add = |h: &str| {
        let h = h.trim().to_ascii_lowercase();
        if !h.is_empty() && !hosts.contains(&h) {
            hosts.push(h);
        }
    };
    if let Some(h) = listener
        .hostname
        .as_deref()
        .filter(|h| !h.trim().is_empty())
    {
        add(h);
        return hosts;
    }
    for (route_ns, parents, names) in routes.attached() {
        if parents
            .iter()
            .any(|p| attaches(p, route_ns, kind, ns, name, listener))
        {
            for n in names {
                add(n);
            }
        }
    }
    hosts
}

fn certificates_of(
    source: ListenerSource,
    ns: &str,
    name: &str,
    listeners: &[Listener],
    routes: Routes<'_>,
    grants: &[&ReferenceGrant],
    out: &mut Vec<ListenerCertificate>,
) {
    for listener in listeners.iter().filter(|l| terminates_tls(l)) {
        let refs = listener
            .tls
            .as_ref()
            .map(|t| t.certificate_refs.as_slice())
            .unwrap_or_default();
        for r in refs.iter().filter(|r| r.is("", "Secret", "Secret")) {
            let secret_ns = r.namespace_from(ns).to_string();
            let access = if secret_ns == ns {
                RefAccess::Local
            } else if reference_granted(
                grants,
                (crate::api::gateway::GROUP, source.kind(), ns),
                ("", "Secret", &secret_ns, &r.name),
            ) {
                RefAccess::Granted
            } else {
                RefAccess::NotGranted
            };
            out.push(ListenerCertificate {
                source,
                namespace: ns.to_string(),
                name: name.to_string(),
                listener: listener.name.clone(),
                secret_namespace: secret_ns,
                secret: r.name.clone(),
                hosts: listener_hosts(listener, source.kind(), ns, name, routes),
                access,
            });
        }
    }
}

/// Whether ListenerSet `set` attaches to Gateway `ns/name`.
pub fn attached_to(set: &ListenerSet, ns: &str, name: &str) -> bool {
    let set_ns = set.metadata.namespace.as_deref().unwrap_or_default();
    let p = &set.spec.parent_ref;
    p.is_parent("Gateway") && p.name == name && p.namespace_from(set_ns) == ns
}

/// Every Secret the TLS listeners of `gw` and of the ListenerSets in `sets` attached to it
/// serve, with host names and access. `sets`, `routes` and `grants` may hold objects of any
/// namespace; what does not apply is filtered here.
pub fn listener_certificates(
    gw: &Gateway,
    sets: &[&ListenerSet],
    routes: Routes<'_>,
    grants: &[&ReferenceGrant],
) -> Vec<ListenerCertificate> {
    let ns = gw.metadata.namespace.as_deref().unwrap_or_default();
    let name = gw.metadata.name.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    certificates_of(
        ListenerSource::Gateway,
        ns,
        name,
        &gw.spec.listeners,
        routes,
        grants,
        &mut out,
    );
    for set in sets.iter().filter(|s| attached_to(s, ns, name)) {
        certificates_of(
            ListenerSource::ListenerSet,
            set.metadata.namespace.as_deref().unwrap_or_default(),
            set.metadata.name.as_deref().unwrap_or_default(),
            &set.spec.listeners,
            routes,
            grants,
            &mut out,
        );
    }
    out
}

/// Why a listener's Secret gets no certificate from a Gateway in `public` mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmanaged {
    /// In another namespace without a ReferenceGrant: the Gateway cannot read it.
    NotGranted,
    /// In another namespace (granted): the operator writes certificates only into the
    /// Gateway's namespace, where the certificate can be owned by the Gateway.
    OtherNamespace,
}

impl Unmanaged {
    /// What to tell people about `c`.
    pub fn message(&self, c: &ListenerCertificate) -> String {
        match self {
            Unmanaged::NotGranted => format!(
                "{} names Secret {}/{}, but no ReferenceGrant in namespace {} allows a {} from namespace {} to refer to it: the Gateway cannot use it, and the operator issues nothing into a namespace the Gateway cannot read. Add a ReferenceGrant in {} (from: group gateway.networking.k8s.io, kind {}, namespace {}; to: group \"\", kind Secret, name {}) or move the Secret",
                c.describe(),
                c.secret_namespace,
                c.secret,
                c.secret_namespace,
                c.source.kind(),
                c.namespace,
                c.secret_namespace,
                c.source.kind(),
                c.namespace,
                c.secret
            ),
            Unmanaged::OtherNamespace => format!(
                "{} names Secret {}/{} in another namespace; the operator keeps certificates only for Secrets in the Gateway's own namespace (a certificate there is owned by the Gateway and goes with it). Keep the certificate with a ServiceCertificate in namespace {} or move the Secret",
                c.describe(),
                c.secret_namespace,
                c.secret,
                c.secret_namespace
            ),
        }
    }
}

/// The TLS entries a Gateway in `gateway_ns` in `public` mode keeps certificates for (its own
/// and its ListenerSets' listeners whose Secret is in the Gateway's namespace), and the
/// listener Secrets that get none with the reason.
pub fn public_entries(
    gateway_ns: &str,
    certs: &[ListenerCertificate],
) -> (Vec<TlsEntry>, Vec<(ListenerCertificate, Unmanaged)>) {
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for c in certs {
        match c.access {
            RefAccess::NotGranted => skipped.push((c.clone(), Unmanaged::NotGranted)),
            _ if c.secret_namespace != gateway_ns => {
                skipped.push((c.clone(), Unmanaged::OtherNamespace))
            }
            _ => entries.push(TlsEntry {
                hosts: c.hosts.clone(),
                secret_name: Some(c.secret.clone()),
            }),
        }
    }
    (entries, skipped)
}

/// The ConfigMaps (or other objects) a Gateway validates client certificates against
/// (`spec.tls.frontend`, default and per port), with the namespace each is in.
pub fn frontend_ca_refs(gw: &Gateway) -> Vec<(String, ObjectReference)> {
    let ns = gw.metadata.namespace.as_deref().unwrap_or_default();
    let Some(frontend) = gw.spec.tls.as_ref().and_then(|t| t.frontend.as_ref()) else {
        return Vec::new();
    };
    let mut refs = Vec::new();
    let scopes = std::iter::once(&frontend.default).chain(frontend.per_port.iter().map(|p| &p.tls));
    for scope in scopes {
        for r in scope.validation.iter().flat_map(|v| &v.ca_certificate_refs) {
            if !refs.iter().any(|(_, x)| x == r) {
                refs.push((r.namespace_from(ns).to_string(), r.clone()));
            }
        }
    }
    refs
}

/// The Secret a Gateway presents to backends as its client certificate, as (namespace,
/// name), when it names a Secret.
pub fn client_certificate_secret(gw: &Gateway) -> Option<(String, String)> {
    let ns = gw.metadata.namespace.as_deref().unwrap_or_default();
    let r = gw
        .spec
        .tls
        .as_ref()?
        .backend
        .as_ref()?
        .client_certificate_ref
        .as_ref()?;
    r.is("", "Secret", "Secret")
        .then(|| (r.namespace_from(ns).to_string(), r.name.clone()))
}

/// The Services (names, in the policy's namespace) a BackendTLSPolicy targets.
pub fn policy_services(policy: &BackendTLSPolicy) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in &policy.spec.target_refs {
        if t.is("", "Service", "Service") && !out.contains(&t.name) {
            out.push(t.name.clone());
        }
    }
    out
}

/// What a BackendTLSPolicy's CA references hold: per reference (in order), `None` when the
/// object is missing (or not a ConfigMap), else the PEM text of its `ca.crt` (`None` inside
/// when it has no `ca.crt`).
pub type CaContents = Vec<(ObjectReference, Option<Option<String>>)>;

/// Why a BackendTLSPolicy does not let the Gateway verify the SITHS certificate its backend
/// serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendTrustProblem {
    /// `wellKnownCACertificates: System`: public roots, which never include SITHS.
    SystemTrust,
    /// No CA references at all.
    NoCaRefs,
    /// A reference names a kind other than a core ConfigMap.
    UnsupportedKind {
        /// The kind named.
        kind: String,
        /// Its name.
        name: String,
    },
    /// A referenced ConfigMap does not exist.
    Missing {
        /// Its name.
        name: String,
    },
    /// A referenced ConfigMap has no `ca.crt` key.
    NoCaCrt {
        /// Its name.
        name: String,
    },
    /// The CA certificates do not verify the backend's certificate (no SITHS CA, or a stale
    /// copy without the CA that issued it).
    NotTrusted {
        /// The ConfigMaps.
        names: Vec<String>,
        /// Why verification failed.
        detail: String,
    },
    /// `validation.hostname` is not a name the backend's certificate carries.
    HostnameMismatch {
        /// The policy's hostname.
        hostname: String,
        /// The certificate's DNS names.
        dns_names: Vec<String>,
    },
}

impl BackendTrustProblem {
    /// A stable key (the same problem is reported once).
    pub fn key(&self) -> String {
        match self {
            BackendTrustProblem::SystemTrust => "system".into(),
            BackendTrustProblem::NoCaRefs => "no-ca-refs".into(),
            BackendTrustProblem::UnsupportedKind { kind, name } => format!("kind/{kind}/{name}"),
            BackendTrustProblem::Missing { name } => format!("missing/{name}"),
            BackendTrustProblem::NoCaCrt { name } => format!("no-ca-crt/{name}"),
            BackendTrustProblem::NotTrusted { names, .. } => {
                format!("not-trusted/{}", names.join(","))
            }
            BackendTrustProblem::HostnameMismatch { hostname, .. } => {
                format!("hostname/{hostname}")
            }
        }
    }

    /// What is wrong and how to fix it, for a policy on Service `service` whose backend serves
    /// the SITHS certificate of `served` (for example `Secret team/api-tls`).
    pub fn message(&self, service: &str, served: &str) -> String {
        let fix = "Name the ConfigMap of a SithsTrustBundle (it holds ca.crt with the SITHS CA certificates of its environments and is kept current) in spec.validation.caCertificateRefs (group \"\", kind ConfigMap)";
        let what = match self {
            BackendTrustProblem::SystemTrust => "validates with wellKnownCACertificates: System, the public roots, which do not include SITHS".to_string(),
            BackendTrustProblem::NoCaRefs => "names no CA certificates".to_string(),
            BackendTrustProblem::UnsupportedKind { kind, name } => format!("names {kind} {name}; only ConfigMaps are read"),
            BackendTrustProblem::Missing { name } => format!("names ConfigMap {name}, which does not exist"),
            BackendTrustProblem::NoCaCrt { name } => format!("names ConfigMap {name}, which has no ca.crt"),
            BackendTrustProblem::NotTrusted { names, detail } => format!(
                "names {}, whose CA certificates do not verify the backend's SITHS certificate ({detail}): the SITHS CA is missing or the copy is stale",
                names.iter().map(|n| format!("ConfigMap {n}")).collect::<Vec<_>>().join(", ")
            ),
            BackendTrustProblem::HostnameMismatch { hostname, dns_names } => {
                return format!(
                    "the BackendTLSPolicy for Service {service} expects hostname {hostname}, but the SITHS certificate of {served} is for {}; set spec.validation.hostname to one of its names",
                    if dns_names.is_empty() { "no DNS name".to_string() } else { dns_names.join(", ") }
                );
            }
        };
        format!(
            "Service {service} serves a SITHS certificate ({served}), but its BackendTLSPolicy {what}; the Gateway cannot verify it. {fix}"
        )
    }
}

/// Whether `policy` lets the Gateway verify `chain` (leaf first), the SITHS certificate the
/// policy's Service serves, at `now`: its CA references (`cas`, read by the caller) must be
/// ConfigMaps with a `ca.crt` whose certificates verify the chain, and `validation.hostname`
/// must be one of the certificate's DNS names.
pub fn backend_trust(
    policy: &BackendTLSPolicy,
    cas: &CaContents,
    chain: &[CertificateDer<'static>],
    now: jiff::Timestamp,
) -> Result<(), BackendTrustProblem> {
    let v = &policy.spec.validation;
    if v.well_known_ca_certificates
        .as_deref()
        .is_some_and(|w| !w.is_empty())
        && v.ca_certificate_refs.is_empty()
    {
        return Err(BackendTrustProblem::SystemTrust);
    }
    if v.ca_certificate_refs.is_empty() {
        return Err(BackendTrustProblem::NoCaRefs);
    }
    let mut pem = String::new();
    let mut names = Vec::new();
    for r in &v.ca_certificate_refs {
        if !r.is("", "ConfigMap", "ConfigMap") {
            return Err(BackendTrustProblem::UnsupportedKind {
                kind: r.kind.clone().unwrap_or_default(),
                name: r.name.clone(),
            });
        }
        match cas.iter().find(|(x, _)| x == r).map(|(_, c)| c) {
            None | Some(None) => {
                return Err(BackendTrustProblem::Missing {
                    name: r.name.clone(),
                });
            }
            Some(Some(None)) => {
                return Err(BackendTrustProblem::NoCaCrt {
                    name: r.name.clone(),
                });
            }
            Some(Some(Some(text))) => {
                pem.push_str(text);
                pem.push('\n');
                names.push(r.name.clone());
            }
        }
    }
    let verified = TrustAnchors::from_pem(&pem)
        .and_then(|anchors| pki::verify_chain(chain, &anchors, now, Usage::UserFacing));
    if let Err(e) = verified {
        return Err(BackendTrustProblem::NotTrusted {
            names,
            detail: e.to_string(),
        });
    }
    let hostname = v.hostname.trim().to_ascii_lowercase();
    if !hostname.is_empty()
        && let Some(leaf) = chain.first()
        && let Ok(info) = pki::CertInfo::parse(leaf)
        && !info.dns_names.iter().any(|d| san_matches(d, &hostname))
    {
        return Err(BackendTrustProblem::HostnameMismatch {
            hostname,
            dns_names: info.dns_names.clone(),
        });
    }
    Ok(())
}

/// Whether DNS SAN `san` (possibly `*.domain`) names `host` (RFC 6125: a wildcard stands for
/// exactly one label).
fn san_matches(san: &str, host: &str) -> bool {
    let san = san.to_ascii_lowercase();
    if san == host {
        return true;
    }
    san.strip_prefix("*.").is_some_and(|domain| {
        host.split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == domain)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::gateway::{GrantSide, ReferenceGrantSpec};

    fn gateway(json: serde_json::Value) -> Gateway {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "web", "namespace": "team"},
            "spec": json
        }))
        .unwrap()
    }

    fn route(ns: &str, parents: serde_json::Value, hosts: &[&str]) -> HTTPRoute {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": ns},
            "spec": {"parentRefs": parents, "hostnames": hosts}
        }))
        .unwrap()
    }

    fn grant(ns: &str, from_ns: &str, name: Option<&str>) -> ReferenceGrant {
        let mut g = ReferenceGrant::new(
            "g",
            ReferenceGrantSpec {
                from: vec![GrantSide {
                    group: "gateway.networking.k8s.io".into(),
                    kind: "Gateway".into(),
                    namespace: Some(from_ns.into()),
                    name: None,
                }],
                to: vec![GrantSide {
                    group: String::new(),
                    kind: "Secret".into(),
                    namespace: None,
                    name: name.map(str::to_string),
                }],
            },
        );
        g.metadata.namespace = Some(ns.into());
        g
    }

    fn listeners() -> Gateway {
        gateway(serde_json::json!({
            "gatewayClassName": "eg",
            "listeners": [
                {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "A.region.se",
                 "tls": {"certificateRefs": [{"name": "web-tls"}]}},
                {"name": "any", "port": 8443, "protocol": "HTTPS",
                 "tls": {"mode": "Terminate", "certificateRefs": [{"name": "any-tls"}]}},
                {"name": "pass", "port": 9443, "protocol": "TLS",
                 "tls": {"mode": "Passthrough"}},
                {"name": "shared", "port": 443, "protocol": "HTTPS", "hostname": "s.region.se",
                 "tls": {"certificateRefs": [{"name": "shared-tls", "namespace": "certs"}]}},
                {"name": "other", "port": 443, "protocol": "HTTPS", "hostname": "o.region.se",
                 "tls": {"certificateRefs": [{"name": "o-tls", "namespace": "elsewhere"},
                                             {"name": "cm", "kind": "ConfigMap"}]}},
                {"name": "http", "port": 80, "protocol": "HTTP"}
            ]
        }))
    }

    #[test]
    fn listeners_give_their_secrets_hosts_and_access() {
        let gw = listeners();
        let r1 = route(
            "team",
            serde_json::json!([{"name": "web", "sectionName": "any"}]),
            &["b.region.se", "c.region.se"],
        );
        // Attached to another listener, another Gateway, or from another namespace without
        // naming this one: not counted.
        let r2 = route(
            "team",
            serde_json::json!([{"name": "web", "sectionName": "https"}]),
            &["x.region.se"],
        );
        let r3 = route(
            "team",
            serde_json::json!([{"name": "api"}]),
            &["y.region.se"],
        );
        let r4 = route(
            "apps",
            serde_json::json!([{"name": "web", "namespace": "team"}]),
            &["C.region.se", "d.region.se"],
        );
        let routes = [&r1, &r2, &r3, &r4];
        let g = grant("certs", "team", Some("shared-tls"));
        let certs = listener_certificates(
            &gw,
            &[],
            Routes {
                http: &routes,
                tls: &[],
            },
            &[&g],
        );
        let got: Vec<(&str, &str, Vec<&str>, RefAccess)> = certs
            .iter()
            .map(|c| {
                (
                    c.listener.as_str(),
                    c.secret.as_str(),
                    c.hosts.iter().map(String::as_str).collect(),
                    c.access,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("https", "web-tls", vec!["a.region.se"], RefAccess::Local),
                (
                    "any",
                    "any-tls",
                    vec!["b.region.se", "c.region.se", "d.region.se"],
                    RefAccess::Local
                ),
                (
                    "shared",
                    "shared-tls",
                    vec!["s.region.se"],
                    RefAccess::Granted
                ),
                ("other", "o-tls", vec!["o.region.se"], RefAccess::NotGranted),
            ]
        );
        let (entries, skipped) = public_entries("team", &certs);
        assert_eq!(
            entries
                .iter()
                .map(|e| e.secret_name.as_deref().unwrap())
                .collect::<Vec<_>>(),
            ["web-tls", "any-tls"]
        );
        assert_eq!(skipped.len(), 2);
        assert_eq!(skipped[0].1, Unmanaged::OtherNamespace);
        assert_eq!(skipped[1].1, Unmanaged::NotGranted);
        let msg = skipped[1].1.message(&skipped[1].0);
        assert!(
            msg.contains("no ReferenceGrant in namespace elsewhere"),
            "{msg}"
        );
        assert!(msg.contains("Gateway team/web listener other"), "{msg}");
    }

    #[test]
    fn grants_must_match_namespace_kind_and_name() {
        let any = grant("certs", "team", None);
        let named = grant("certs", "team", Some("a"));
        let other_ns = grant("certs", "apps", None);
        let misplaced = grant("team", "team", None);
        let to = |n| ("", "Secret", "certs", n);
        let from = ("gateway.networking.k8s.io", "Gateway", "team");
        assert!(reference_granted(&[&any], from, to("x")));
        assert!(reference_granted(&[&named], from, to("a")));
        assert!(!reference_granted(&[&named], from, to("b")));
        assert!(!reference_granted(&[&other_ns], from, to("a")));
        assert!(!reference_granted(&[&misplaced], from, to("a")));
        assert!(!reference_granted(
            &[&any],
            ("gateway.networking.k8s.io", "ListenerSet", "team"),
            to("a")
        ));
        // The same namespace needs no grant.
        assert!(reference_granted(&[], from, ("", "Secret", "team", "a")));
    }

    #[test]
    fn listener_sets_add_listeners_to_their_gateway() {
        let gw = listeners();
        let set: ListenerSet = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet",
            "metadata": {"name": "extra", "namespace": "team"},
            "spec": {"parentRef": {"name": "web"},
                     "listeners": [{"name": "e", "port": 443, "protocol": "HTTPS", "hostname": "e.region.se",
                                    "tls": {"certificateRefs": [{"name": "e-tls"}]}}]}
        }))
        .unwrap();
        let mut elsewhere = set.clone();
        elsewhere.spec.parent_ref.name = "api".into();
        let certs = listener_certificates(&gw, &[&set, &elsewhere], Routes::default(), &[]);
        let e: Vec<_> = certs
            .iter()
            .filter(|c| c.source == ListenerSource::ListenerSet)
            .collect();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].name, "extra");
        assert_eq!(e[0].hosts, ["e.region.se"]);
        assert_eq!(e[0].describe(), "ListenerSet team/extra listener e");
    }

    #[test]
    fn frontend_and_client_certificate_references() {
        let gw = gateway(serde_json::json!({
            "gatewayClassName": "eg", "listeners": [],
            "tls": {"backend": {"clientCertificateRef": {"name": "gw-client"}},
                    "frontend": {"default": {"validation": {"caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "siths-ca"}]}},
                                 "perPort": [{"port": 8443, "tls": {"validation": {"caCertificateRefs": [
                                     {"group": "", "kind": "ConfigMap", "name": "siths-ca"},
                                     {"group": "", "kind": "ConfigMap", "name": "other", "namespace": "x"}]}}}]}}
        }));
        let refs = frontend_ca_refs(&gw);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].0, "team");
        assert_eq!(refs[1].0, "x");
        assert_eq!(
            client_certificate_secret(&gw),
            Some(("team".to_string(), "gw-client".to_string()))
        );
        assert!(frontend_ca_refs(&listeners()).is_empty());
        assert_eq!(client_certificate_secret(&listeners()), None);
    }

    #[test]
    fn only_terminated_tls_listeners_count() {
        let l = |protocol: &str, mode: Option<&str>| Listener {
            name: "l".into(),
            protocol: protocol.into(),
            tls: Some(crate::api::gateway::ListenerTls {
                mode: mode.map(str::to_string),
                certificate_refs: vec![],
            }),
            ..Default::default()
        };
        assert!(terminates_tls(&l("HTTPS", None)));
        assert!(terminates_tls(&l("TLS", Some("Terminate"))));
        assert!(!terminates_tls(&l("TLS", Some("Passthrough"))));
        assert!(!terminates_tls(&l("HTTP", None)));
        let mut no_tls = l("HTTPS", None);
        no_tls.tls = None;
        assert!(!terminates_tls(&no_tls));
    }

    fn policy(json: serde_json::Value) -> BackendTLSPolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "BackendTLSPolicy",
            "metadata": {"name": "api", "namespace": "team"},
            "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "api"}], "validation": json}
        }))
        .unwrap()
    }

    fn cm_ref(name: &str) -> ObjectReference {
        ObjectReference {
            group: Some(String::new()),
            kind: Some("ConfigMap".into()),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_backend_policy_must_verify_the_siths_certificate() {
        use crate::pki::testutil;
        let now = testutil::now();
        let ca = testutil::ca();
        let other =
            crate::pki::LocalCa::generate(&testutil::ca_options("Other Root", false)).unwrap();
        let chain = testutil::issue(&ca, &testutil::profile(), &testutil::rsa_2048(), now);
        let refs = serde_json::json!([{"group": "", "kind": "ConfigMap", "name": "siths-ca"}]);
        let p = policy(serde_json::json!({"caCertificateRefs": refs, "hostname": "api.region.se"}));
        assert_eq!(policy_services(&p), ["api"]);
        let with = |text: Option<Option<String>>| vec![(cm_ref("siths-ca"), text)];
        // The issuing CA's root verifies it.
        assert_eq!(
            backend_trust(&p, &with(Some(Some(ca.root_pem()))), &chain, now),
            Ok(())
        );
        // Another CA (a stale or wrong copy) does not.
        let err = backend_trust(&p, &with(Some(Some(other.root_pem()))), &chain, now).unwrap_err();
        assert!(
            matches!(err, BackendTrustProblem::NotTrusted { .. }),
            "{err:?}"
        );
        assert!(
            err.message("api", "Secret team/api-tls")
                .contains("SithsTrustBundle")
        );
        // Both anchors: verifies (a rollover keeps the old and the new).
        let both = format!("{}{}", other.root_pem(), ca.root_pem());
        assert_eq!(
            backend_trust(&p, &with(Some(Some(both))), &chain, now),
            Ok(())
        );
        assert_eq!(
            backend_trust(&p, &with(None), &chain, now),
            Err(BackendTrustProblem::Missing {
                name: "siths-ca".into()
            })
        );
        assert_eq!(
            backend_trust(&p, &with(Some(None)), &chain, now),
            Err(BackendTrustProblem::NoCaCrt {
                name: "siths-ca".into()
            })
        );
        // A hostname the certificate does not carry.
        let wrong =
            policy(serde_json::json!({"caCertificateRefs": refs, "hostname": "web.region.se"}));
        assert!(matches!(
            backend_trust(&wrong, &with(Some(Some(ca.root_pem()))), &chain, now),
            Err(BackendTrustProblem::HostnameMismatch { .. })
        ));
        // System trust or nothing at all.
        let system = policy(
            serde_json::json!({"wellKnownCACertificates": "System", "hostname": "api.region.se"}),
        );
        assert_eq!(
            backend_trust(&system, &vec![], &chain, now),
            Err(BackendTrustProblem::SystemTrust)
        );
        let secret = policy(
            serde_json::json!({"caCertificateRefs": [{"group": "", "kind": "Secret", "name": "s"}], "hostname": "api.region.se"}),
        );
        assert!(matches!(
            backend_trust(&secret, &vec![], &chain, now),
            Err(BackendTrustProblem::UnsupportedKind { .. })
        ));
    }

    #[test]
    fn wildcards_stand_for_one_label() {
        assert!(san_matches("api.region.se", "api.region.se"));
        assert!(san_matches("*.region.se", "api.region.se"));
        assert!(!san_matches("*.region.se", "a.b.region.se"));
        assert!(!san_matches("*.region.se", "region.se"));
        assert!(!san_matches("api.region.se", "web.region.se"));
    }
}
