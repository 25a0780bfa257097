//! The objects an audit looks at, reduced to what the findings need.
//!
//! Objects come from a live cluster or from manifests; both paths end in
//! [`Inventory::add_value`] or the typed `add_*` methods, so the same objects give the same
//! inventory. Private keys are dropped on the way in: only `CERTIFICATE` PEM blocks of a
//! Secret are kept.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, StatefulSet},
    batch::v1::{CronJob, Job},
    core::v1::{ConfigMap, Namespace, Pod, PodSpec, Secret},
    networking::v1::Ingress,
};
use kube::ResourceExt;
use rustls_pki_types::CertificateDer;
use serde::Serialize;

use crate::{
    api::{
        DomainValidation, ServiceCertificate, SithsIssuer,
        gateway::{BackendTLSPolicy, Gateway, HTTPRoute, ListenerSet, ReferenceGrant, TLSRoute},
    },
    pki::{self, CertInfo},
    policy::gateway::{self as gw_policy, ListenerCertificate, Routes},
    vocabulary::KEYSTORE_PASSWORD_LABEL,
};

/// The label the apiserver puts on every namespace, with its name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Namespace of a namespaced object that names none (as `kubectl apply` would use).
pub const DEFAULT_NAMESPACE: &str = "default";

/// The object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    /// Kind, for example `Secret`.
    pub kind: String,
    /// Namespace; absent for cluster-scoped objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// A namespaced object.
    pub fn namespaced(kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// `kind/namespace/name`, or `kind/name` when cluster-scoped.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// A certificate found in one key of a Secret.
#[derive(Debug, Clone)]
pub struct FoundCertificate {
    /// The data key, for example `tls.crt`.
    pub key: String,
    /// The chain as stored, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's fields.
    pub leaf: CertInfo,
}

/// A Secret key that should hold a certificate but does not hold a parseable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unparseable {
    /// The data key.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// A Secret that holds (or should hold) a certificate.
#[derive(Debug, Clone)]
pub struct CertSecret {
    /// The Secret.
    pub object: ObjectRef,
    /// Leaf certificates found, one per key.
    pub certificates: Vec<FoundCertificate>,
    /// Keys that should hold a certificate and do not.
    pub unparseable: Vec<Unparseable>,
}

/// One TLS entry of an Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressTls {
    /// The Ingress.
    pub ingress: ObjectRef,
    /// Secret in the Ingress's namespace.
    pub secret: String,
    /// Hosts of the entry.
    pub hosts: Vec<String>,
}

/// A workload and the Secrets its pod template mounts or reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The Deployment, StatefulSet, DaemonSet, Job, CronJob or Pod.
    pub object: ObjectRef,
    /// Names of Secrets in its namespace it uses.
    pub secrets: BTreeSet<String>,
    /// Labels of its pods (the pod template's, or the Pod's own).
    pub pod_labels: BTreeMap<String, String>,
}

/// How an OpenShift Route terminates TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Termination {
    /// The router terminates TLS and talks plain HTTP to the back end.
    Edge,
    /// The router terminates TLS and opens a new TLS connection to the back end,
    /// verified with `destinationCACertificate`.
    Reencrypt,
    /// The router passes TLS through: the back end's own certificate is served.
    Passthrough,
}

/// The TLS of an OpenShift Route (`route.openshift.io/v1`). Only certificates are kept:
/// `spec.tls.key` is never read.
#[derive(Debug, Clone)]
pub struct RouteTls {
    /// The Route.
    pub route: ObjectRef,
    /// `spec.host`, when set.
    pub host: Option<String>,
    /// `spec.tls.termination`.
    pub termination: Termination,
    /// The Service `spec.to` names.
    pub service: Option<String>,
    /// `spec.tls.certificate`, parsed (CERTIFICATE blocks only).
    pub certificate: Option<FoundCertificate>,
    /// `spec.tls.certificate` that does not parse.
    pub unparseable: Option<Unparseable>,
    /// SHA-256 fingerprints of the certificates in `spec.tls.destinationCACertificate`.
    pub destination_ca: BTreeSet<String>,
}

/// A store found in a Secret or ConfigMap key, not opened yet.
#[derive(Clone)]
pub struct FoundStore {
    /// The Secret or ConfigMap.
    pub object: ObjectRef,
    /// The data key, for example `keystore.p12`.
    pub key: String,
    /// The store's bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for FoundStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FoundStore({} {}, {} bytes)",
            self.object.display(),
            self.key,
            self.bytes.len()
        )
    }
}

/// Candidate store passwords by namespace and Secret name, then key. `Debug` shows none.
#[derive(Clone, Default)]
pub struct Passwords(pub(crate) BTreeMap<(String, String), BTreeMap<String, String>>);

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Passwords(<{} Secrets, redacted>)", self.0.len())
    }
}

/// Whether data key `key` holding `bytes` is a key store worth opening: by name
/// (`.p12`, `.pfx`, `.jks`, `keystore`, `truststore`) and by its first bytes.
pub fn is_store(key: &str, bytes: &[u8]) -> bool {
    let k = key.to_ascii_lowercase();
    let named = [".p12", ".pfx", ".jks", ".keystore", ".truststore"]
        .iter()
        .any(|s| k.ends_with(s))
        || k.contains("keystore")
        || k.contains("truststore");
    named && pki::keystore::store_format(bytes).is_some()
}

/// Whether a Secret key may hold a store password worth trying.
pub fn is_password_key(key: &str) -> bool {
    key.to_ascii_lowercase().contains("password")
}

/// The Gateway API objects an audit reads.
#[derive(Debug, Default, Clone)]
pub struct GatewayApi {
    /// Gateways.
    pub gateways: Vec<Gateway>,
    /// ListenerSets.
    pub listener_sets: Vec<ListenerSet>,
    /// HTTPRoutes (their host names give a listener without a hostname its hosts).
    pub http_routes: Vec<HTTPRoute>,
    /// TLSRoutes (likewise).
    pub tls_routes: Vec<TLSRoute>,
    /// BackendTLSPolicies.
    pub backend_tls_policies: Vec<BackendTLSPolicy>,
    /// ReferenceGrants (whether a listener may read a Secret in another namespace).
    pub reference_grants: Vec<ReferenceGrant>,
}

/// Gives a namespaced object the default namespace when it names none.
fn defaulted<K: kube::Resource>(mut o: K) -> K {
    let ns = namespace_of(o.meta_mut().namespace.take());
    o.meta_mut().namespace = Some(ns);
    o
}

/// Everything an audit or a plan looks at.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    /// Secrets holding certificates (others are not kept).
    pub secrets: Vec<CertSecret>,
    /// TLS entries of Ingresses, and of OpenShift Routes whose certificate comes from a
    /// Secret (`spec.tls.externalCertificate`), with the Route as the `ingress`.
    pub ingress_tls: Vec<IngressTls>,
    /// OpenShift Routes with TLS.
    pub routes: Vec<RouteTls>,
    /// Gateway API objects (`gateway.networking.k8s.io`), as read; their listeners' TLS
    /// entries are derived with [`Inventory::gateway_listeners`].
    pub gateway_api: GatewayApi,
    /// `ca.crt` of every ConfigMap seen (CERTIFICATE blocks only; `None`: the ConfigMap has
    /// no `ca.crt`), by namespace and name: what a BackendTLSPolicy names.
    pub config_map_ca_crt: BTreeMap<(String, String), Option<String>>,
    /// Pod selectors of Services, by namespace and name.
    pub service_selectors: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Workloads that use at least one Secret.
    pub workloads: Vec<Workload>,
    /// SHA-256 fingerprints of the certificates held in ConfigMaps, by namespace.
    pub config_map_certificates: BTreeMap<String, BTreeSet<String>>,
    /// Labels of the Namespaces seen.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// ServiceCertificates.
    pub service_certificates: Vec<ServiceCertificate>,
    /// DomainValidations.
    pub domain_validations: Vec<DomainValidation>,
    /// SithsIssuers.
    pub siths_issuers: Vec<SithsIssuer>,
    /// PublicIssuers.
    pub public_issuers: Vec<crate::api::PublicIssuer>,
    /// Objects of kinds the audit does not look at.
    pub skipped: usize,
    /// Java key stores found in Secrets and ConfigMaps, until [`Inventory::open_stores`].
    pub stores: Vec<FoundStore>,
    /// Candidate store passwords (see the `stores` module); never shown.
    pub store_passwords: Passwords,
}

/// Why an object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// No `apiVersion` or `kind`.
    #[error("an object without apiVersion or kind")]
    NoKind,
    /// The object does not match its kind's schema.
    #[error("{kind} {name}: {source}")]
    Malformed {
        /// Kind.
        kind: String,
        /// Name, or `?`.
        name: String,
        /// The deserialisation error.
        source: serde_json::Error,
    },
}

fn namespace_of(ns: Option<String>) -> String {
    ns.unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
}

impl Inventory {
    /// Adds one object given as JSON (from a manifest or a list). A `List` (or any
    /// `*List` kind with `items`) adds each item. Unknown kinds are counted and skipped.
    pub fn add_value(&mut self, mut value: serde_json::Value) -> Result<(), ObjectError> {
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or(ObjectError::NoKind)?
            .to_string();
        let api_version = value
            .get("apiVersion")
            .and_then(|k| k.as_str())
            .ok_or(ObjectError::NoKind)?
            .to_string();
        if kind.ends_with("List") && value.get("items").is_some_and(|i| i.is_array()) {
            for item in list_items(value) {
                self.add_value(item)?;
            }
            return Ok(());
        }
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        let name = value
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or("?")
            .to_string();
        macro_rules! typed {
            ($t:ty) => {
                serde_json::from_value::<$t>(value).map_err(|source| ObjectError::Malformed {
                    kind: kind.clone(),
                    name: name.clone(),
                    source,
                })?
            };
        }
        match (group, kind.as_str()) {
            ("", "Secret") => {
                // A data value that is not base64 is a finding for its key, not an error
                // for the whole run: take such values out before reading the Secret.
                let bad = take_bad_base64(&mut value);
                let secret = typed!(Secret);
                self.add_secret(&secret);
                if !bad.is_empty() {
                    self.add_unparseable(&secret, bad);
                }
            }
            ("", "ConfigMap") => self.add_config_map(&typed!(ConfigMap)),
            ("", "Namespace") => self.add_namespace(&typed!(Namespace)),
            ("", "Pod") => self.add_pod(&typed!(Pod)),
            ("networking.k8s.io", "Ingress") => self.add_ingress(&typed!(Ingress)),
            ("route.openshift.io", "Route") => self.add_route(&value),
            ("", "Service") => self.add_service(&typed!(k8s_openapi::api::core::v1::Service)),
            ("apps", "Deployment") => self.add_deployment(&typed!(Deployment)),
            ("apps", "StatefulSet") => self.add_stateful_set(&typed!(StatefulSet)),
            ("apps", "DaemonSet") => self.add_daemon_set(&typed!(DaemonSet)),
            ("batch", "Job") => self.add_job(&typed!(Job)),
            ("batch", "CronJob") => self.add_cron_job(&typed!(CronJob)),
            (crate::api::gateway::GROUP, "Gateway") => {
                self.add_gateway(typed!(Gateway));
            }
            (crate::api::gateway::GROUP, "ListenerSet") => {
                let o = defaulted(typed!(ListenerSet));
                self.gateway_api.listener_sets.push(o);
            }
            (crate::api::gateway::GROUP, "HTTPRoute") => {
                let o = defaulted(typed!(HTTPRoute));
                self.gateway_api.http_routes.push(o);
            }
            (crate::api::gateway::GROUP, "TLSRoute") => {
                let o = defaulted(typed!(TLSRoute));
                self.gateway_api.tls_routes.push(o);
            }
            (crate::api::gateway::GROUP, "BackendTLSPolicy") => {
                let o = defaulted(typed!(BackendTLSPolicy));
                self.gateway_api.backend_tls_policies.push(o);
            }
            (crate::api::gateway::GROUP, "ReferenceGrant") => {
                let o = defaulted(typed!(ReferenceGrant));
                self.gateway_api.reference_grants.push(o);
            }
            (crate::api::GROUP, "ServiceCertificate") => {
                let mut c = typed!(ServiceCertificate);
                c.metadata.namespace = Some(namespace_of(c.metadata.namespace.take()));
                self.service_certificates.push(c);
            }
            (crate::api::GROUP, "DomainValidation") => {
                self.domain_validations.push(typed!(DomainValidation))
            }
            (crate::api::GROUP, "SithsIssuer") => self.siths_issuers.push(typed!(SithsIssuer)),
            (crate::api::GROUP, "PublicIssuer") => {
                self.public_issuers.push(typed!(crate::api::PublicIssuer))
            }
            _ => self.skipped += 1,
        }
        Ok(())
    }

    /// Adds a Secret: keeps the certificates of each key, never a private key.
    pub fn add_secret(&mut self, secret: &Secret) {
        let ns = namespace_of(secret.namespace());
        let is_tls = secret.type_.as_deref() == Some("kubernetes.io/tls");
        let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (k, v) in secret.data.iter().flatten() {
            entries.insert(k.clone(), v.0.clone());
        }
        for (k, v) in secret.string_data.iter().flatten() {
            entries.insert(k.clone(), v.clone().into_bytes());
        }
        let mut certificates = Vec::new();
        let mut unparseable = Vec::new();
        let labelled = secret
            .labels()
            .get(KEYSTORE_PASSWORD_LABEL)
            .map(String::as_str)
            == Some("true");
        for (key, bytes) in &entries {
            if is_store(key, bytes) {
                self.stores.push(FoundStore {
                    object: ObjectRef::namespaced("Secret", &ns, &secret.name_any()),
                    key: key.clone(),
                    bytes: bytes.clone(),
                });
                continue;
            }
            if (labelled || is_password_key(key))
                && bytes.len() <= 256
                && let Ok(p) = std::str::from_utf8(bytes)
            {
                self.store_passwords
                    .0
                    .entry((ns.clone(), secret.name_any()))
                    .or_default()
                    .insert(key.clone(), p.to_string());
                continue;
            }
            let text = String::from_utf8_lossy(bytes);
            let blocks = certificate_blocks(&text);
            let required = is_tls && key == "tls.crt";
            if blocks.is_empty() {
                if required {
                    unparseable.push(Unparseable {
                        key: key.clone(),
                        reason: "holds no PEM certificate".into(),
                    });
                }
                continue;
            }
            let parsed = pki::parse_pem_chain(&blocks)
                .and_then(|chain| CertInfo::parse(&chain[0]).map(|leaf| (chain, leaf)));
            match parsed {
                // A bundle of CA certificates (`ca.crt`) is trust, not an endpoint.
                Ok((_, leaf)) if leaf.is_ca && !required => {}
                Ok((chain, leaf)) => certificates.push(FoundCertificate {
                    key: key.clone(),
                    chain,
                    leaf,
                }),
                Err(e) => unparseable.push(Unparseable {
                    key: key.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        if certificates.is_empty() && unparseable.is_empty() {
            return;
        }
        self.secrets.push(CertSecret {
            object: ObjectRef::namespaced("Secret", &ns, &secret.name_any()),
            certificates,
            unparseable,
        });
    }

    /// Records keys of a Secret that could not be read at all (not base64).
    fn add_unparseable(&mut self, secret: &Secret, bad: Vec<Unparseable>) {
        let object = ObjectRef::namespaced(
            "Secret",
            &namespace_of(secret.namespace()),
            &secret.name_any(),
        );
        match self.secrets.iter_mut().find(|s| s.object == object) {
            Some(s) => s.unparseable.extend(bad),
            None => self.secrets.push(CertSecret {
                object,
                certificates: Vec::new(),
                unparseable: bad,
            }),
        }
    }

    /// Adds the certificates a ConfigMap holds (trust bundles), by fingerprint, and its
    /// `ca.crt` (certificates only) by name.
    pub fn add_config_map(&mut self, cm: &ConfigMap) {
        let ns = namespace_of(cm.namespace());
        for (key, bytes) in cm.binary_data.iter().flatten() {
            if is_store(key, &bytes.0) {
                self.stores.push(FoundStore {
                    object: ObjectRef::namespaced("ConfigMap", &ns, &cm.name_any()),
                    key: key.clone(),
                    bytes: bytes.0.clone(),
                });
            }
        }
        let ca_crt = cm
            .data
            .as_ref()
            .and_then(|d| d.get("ca.crt"))
            .map(|text| certificate_blocks(text));
        self.config_map_ca_crt
            .insert((namespace_of(cm.namespace()), cm.name_any()), ca_crt);
        let mut found = BTreeSet::new();
        for v in cm.data.iter().flat_map(|d| d.values()) {
            let blocks = certificate_blocks(v);
            if let Ok(chain) = pki::parse_pem_chain(&blocks) {
                found.extend(chain.iter().map(|der| pki::sha256_fingerprint(der)));
            }
        }
        if !found.is_empty() {
            self.config_map_certificates
                .entry(namespace_of(cm.namespace()))
                .or_default()
                .extend(found);
        }
    }

    /// Adds a Namespace's labels.
    pub fn add_namespace(&mut self, ns: &Namespace) {
        self.namespaces.insert(ns.name_any(), ns.labels().clone());
    }

    /// Labels of namespace `ns` as the apiserver would have them: those seen, plus the
    /// `kubernetes.io/metadata.name` label it sets on every namespace.
    pub fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        let mut labels = self.namespaces.get(ns).cloned().unwrap_or_default();
        labels.insert(NAME_LABEL.into(), ns.into());
        labels
    }

    /// Adds the TLS entries of an Ingress.
    pub fn add_ingress(&mut self, ing: &Ingress) {
        let ns = namespace_of(ing.namespace());
        let object = ObjectRef::namespaced("Ingress", &ns, &ing.name_any());
        for tls in ing.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
            if let Some(secret) = &tls.secret_name {
                self.ingress_tls.push(IngressTls {
                    ingress: object.clone(),
                    secret: secret.clone(),
                    hosts: tls.hosts.clone().unwrap_or_default(),
                });
            }
        }
    }

    /// Adds the TLS of an OpenShift Route (`route.openshift.io/v1`, read as JSON: no
    /// typed client exists for it). `spec.tls.key` is never read; of
    /// `spec.tls.certificate` only the CERTIFICATE blocks are kept.
    pub fn add_route(&mut self, value: &serde_json::Value) {
        let str_at = |p: &str| value.pointer(p).and_then(|v| v.as_str());
        let Some(tls) = value.pointer("/spec/tls").filter(|t| t.is_object()) else {
            return;
        };
        let termination = match tls.get("termination").and_then(|t| t.as_str()) {
            Some("reencrypt") => Termination::Reencrypt,
            Some("passthrough") => Termination::Passthrough,
            _ => Termination::Edge,
        };
        let ns = namespace_of(str_at("/metadata/namespace").map(String::from));
        let route = ObjectRef::namespaced("Route", &ns, str_at("/metadata/name").unwrap_or("?"));
        let host = str_at("/spec/host").map(String::from);
        let mut certificate = None;
        let mut unparseable = None;
        if let Some(text) = tls.get("certificate").and_then(|c| c.as_str()) {
            let key = "spec.tls.certificate".to_string();
            let blocks = certificate_blocks(text);
            let parsed = if blocks.is_empty() {
                Err("holds no PEM certificate".to_string())
            } else {
                pki::parse_pem_chain(&blocks)
                    .and_then(|chain| CertInfo::parse(&chain[0]).map(|leaf| (chain, leaf)))
                    .map_err(|e| e.to_string())
            };
            match parsed {
                Ok((chain, leaf)) => certificate = Some(FoundCertificate { key, chain, leaf }),
                Err(reason) => unparseable = Some(Unparseable { key, reason }),
            }
        }
        let mut destination_ca = BTreeSet::new();
        if let Some(text) = tls.get("destinationCACertificate").and_then(|c| c.as_str())
            && let Ok(chain) = pki::parse_pem_chain(&certificate_blocks(text))
        {
            destination_ca.extend(chain.iter().map(|der| pki::sha256_fingerprint(der)));
        }
        if termination != Termination::Passthrough
            && let Some(secret) = tls
                .pointer("/externalCertificate/name")
                .and_then(|n| n.as_str())
        {
            self.ingress_tls.push(IngressTls {
                ingress: route.clone(),
                secret: secret.to_string(),
                hosts: host.iter().cloned().collect(),
            });
        }
        self.routes.push(RouteTls {
            route,
            host,
            termination,
            service: str_at("/spec/to/name").map(String::from),
            certificate,
            unparseable,
            destination_ca,
        });
    }

    /// Adds a Gateway (its namespace defaulted like any namespaced object). The Secret of
    /// its client certificate towards back ends (`spec.tls.backend.clientCertificateRef`,
    /// in its own namespace) makes it a workload using that Secret, like a pod mounting it.
    pub fn add_gateway(&mut self, gw: Gateway) {
        let gw = defaulted(gw);
        let ns = namespace_of(gw.namespace());
        if let Some((secret_ns, secret)) = gw_policy::client_certificate_secret(&gw)
            && secret_ns == ns
        {
            self.workloads.push(Workload {
                object: ObjectRef::namespaced("Gateway", &ns, &gw.name_any()),
                secrets: BTreeSet::from([secret]),
                pod_labels: BTreeMap::new(),
            });
        }
        self.gateway_api.gateways.push(gw);
    }

    /// Adds the Gateway API objects of a live listing (namespaces defaulted).
    pub fn add_gateway_api(&mut self, objects: GatewayApi) {
        for gw in objects.gateways {
            self.add_gateway(gw);
        }
        let g = &mut self.gateway_api;
        g.listener_sets
            .extend(objects.listener_sets.into_iter().map(defaulted));
        g.http_routes
            .extend(objects.http_routes.into_iter().map(defaulted));
        g.tls_routes
            .extend(objects.tls_routes.into_iter().map(defaulted));
        g.backend_tls_policies
            .extend(objects.backend_tls_policies.into_iter().map(defaulted));
        g.reference_grants
            .extend(objects.reference_grants.into_iter().map(defaulted));
    }

    /// The Secret each TLS-terminating listener of every Gateway (and of the ListenerSets
    /// attached to it) serves, with its hosts and whether the Gateway may read it: the
    /// operator's own rule ([`gw_policy::listener_certificates`]).
    pub fn gateway_listeners(&self) -> Vec<ListenerCertificate> {
        let g = &self.gateway_api;
        let sets: Vec<&ListenerSet> = g.listener_sets.iter().collect();
        let http: Vec<&HTTPRoute> = g.http_routes.iter().collect();
        let tls: Vec<&TLSRoute> = g.tls_routes.iter().collect();
        let grants: Vec<&ReferenceGrant> = g.reference_grants.iter().collect();
        g.gateways
            .iter()
            .flat_map(|gw| {
                gw_policy::listener_certificates(
                    gw,
                    &sets,
                    Routes {
                        http: &http,
                        tls: &tls,
                    },
                    &grants,
                )
            })
            .collect()
    }

    /// The user-facing endpoints serving Secret `ns/name`: Ingresses (and Routes) by TLS
    /// entry, Gateways and ListenerSets by listener (those that may read it), as
    /// `Kind/name` (`Kind/namespace/name` from another namespace), sorted, once each.
    /// `listeners` is [`Inventory::gateway_listeners`], computed once by the caller.
    pub fn user_facing_users(
        &self,
        listeners: &[ListenerCertificate],
        ns: &str,
        name: &str,
    ) -> Vec<String> {
        let mut out: Vec<String> = self
            .ingress_tls
            .iter()
            .filter(|t| t.ingress.namespace.as_deref() == Some(ns) && t.secret == name)
            .map(|t| format!("{}/{}", t.ingress.kind, t.ingress.name))
            .collect();
        for c in listeners {
            if c.access != gw_policy::RefAccess::NotGranted
                && c.secret_namespace == ns
                && c.secret == name
            {
                out.push(if c.namespace == ns {
                    format!("{}/{}", c.source.kind(), c.name)
                } else {
                    format!("{}/{}/{}", c.source.kind(), c.namespace, c.name)
                });
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Adds a Service's pod selector.
    pub fn add_service(&mut self, svc: &k8s_openapi::api::core::v1::Service) {
        if let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.clone()) {
            self.service_selectors
                .insert((namespace_of(svc.namespace()), svc.name_any()), selector);
        }
    }

    /// The workloads whose pods the Service `ns/name` selects.
    pub fn service_workloads(&self, ns: &str, name: &str) -> Vec<&Workload> {
        let Some(selector) = self
            .service_selectors
            .get(&(ns.to_string(), name.to_string()))
        else {
            return Vec::new();
        };
        self.workloads
            .iter()
            .filter(|w| {
                w.object.namespace.as_deref() == Some(ns)
                    && !selector.is_empty()
                    && selector.iter().all(|(k, v)| w.pod_labels.get(k) == Some(v))
            })
            .collect()
    }

    /// Adds a Pod, unless a controller owns it (its owner stands for it).
    pub fn add_pod(&mut self, pod: &Pod) {
        if controlled(pod) {
            return;
        }
        self.add_workload("Pod", pod, pod.spec.as_ref(), Some(pod.labels()));
    }

    /// Adds a Deployment.
    pub fn add_deployment(&mut self, d: &Deployment) {
        let spec = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        let labels = d.spec.as_ref().and_then(|s| template_labels(&s.template));
        self.add_workload("Deployment", d, spec, labels);
    }

    /// Adds a StatefulSet.
    pub fn add_stateful_set(&mut self, s: &StatefulSet) {
        let labels = s.spec.as_ref().and_then(|s| template_labels(&s.template));
        let spec = s.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        self.add_workload("StatefulSet", s, spec, labels);
    }

    /// Adds a DaemonSet.
    pub fn add_daemon_set(&mut self, d: &DaemonSet) {
        let spec = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        let labels = d.spec.as_ref().and_then(|s| template_labels(&s.template));
        self.add_workload("DaemonSet", d, spec, labels);
    }

    /// Adds a Job, unless a CronJob (or another controller) owns it.
    pub fn add_job(&mut self, j: &Job) {
        if controlled(j) {
            return;
        }
        let spec = j.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        let labels = j.spec.as_ref().and_then(|s| template_labels(&s.template));
        self.add_workload("Job", j, spec, labels);
    }

    /// Adds a CronJob.
    pub fn add_cron_job(&mut self, c: &CronJob) {
        let spec = c
            .spec
            .as_ref()
            .and_then(|s| s.job_template.spec.as_ref())
            .and_then(|s| s.template.spec.as_ref());
        self.add_workload("CronJob", c, spec, None);
    }

    /// Keeps only the namespaced objects of `ns` (cluster-scoped ones stay).
    pub fn restrict_to_namespace(&mut self, ns: &str) {
        let here = |o: &ObjectRef| o.namespace.as_deref() == Some(ns);
        self.secrets.retain(|s| here(&s.object));
        self.stores.retain(|s| here(&s.object));
        self.store_passwords.0.retain(|(n, _), _| n == ns);
        self.ingress_tls.retain(|t| here(&t.ingress));
        self.routes.retain(|r| here(&r.route));
        self.service_selectors.retain(|(n, _), _| n == ns);
        self.workloads.retain(|w| here(&w.object));
        self.config_map_certificates.retain(|k, _| k == ns);
        self.config_map_ca_crt.retain(|(n, _), _| n == ns);
        let here_meta = |m: &kube::api::ObjectMeta| m.namespace.as_deref() == Some(ns);
        let g = &mut self.gateway_api;
        g.gateways.retain(|o| here_meta(&o.metadata));
        g.listener_sets.retain(|o| here_meta(&o.metadata));
        g.http_routes.retain(|o| here_meta(&o.metadata));
        g.tls_routes.retain(|o| here_meta(&o.metadata));
        g.backend_tls_policies.retain(|o| here_meta(&o.metadata));
        g.reference_grants.retain(|o| here_meta(&o.metadata));
        self.service_certificates
            .retain(|c| c.metadata.namespace.as_deref() == Some(ns));
    }

    fn add_workload<K: ResourceExt>(
        &mut self,
        kind: &str,
        obj: &K,
        spec: Option<&PodSpec>,
        pod_labels: Option<&BTreeMap<String, String>>,
    ) {
        let secrets = spec.map(secrets_used).unwrap_or_default();
        if secrets.is_empty() {
            return;
        }
        self.workloads.push(Workload {
            object: ObjectRef::namespaced(kind, &namespace_of(obj.namespace()), &obj.name_any()),
            secrets,
            pod_labels: pod_labels.cloned().unwrap_or_default(),
        });
    }
}

fn template_labels(
    t: &k8s_openapi::api::core::v1::PodTemplateSpec,
) -> Option<&BTreeMap<String, String>> {
    t.metadata.as_ref().and_then(|m| m.labels.as_ref())
}

/// The items of a `List` (or any `*List` kind with `items`), each with the kind and
/// apiVersion a typed list (`SecretList`) leaves out; any other value as it is.
pub fn list_items(value: serde_json::Value) -> Vec<serde_json::Value> {
    let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let api_version = value.get("apiVersion").and_then(|k| k.as_str());
    let (true, Some(api_version), Some(items)) = (
        kind.ends_with("List"),
        api_version,
        value.get("items").and_then(|i| i.as_array()),
    ) else {
        return vec![value];
    };
    let item_kind = kind.trim_end_matches("List").to_string();
    let api_version = api_version.to_string();
    let mut out = Vec::new();
    for item in items.clone() {
        let mut item = item;
        if let Some(obj) = item.as_object_mut()
            && !item_kind.is_empty()
        {
            obj.entry("kind")
                .or_insert_with(|| item_kind.clone().into());
            obj.entry("apiVersion")
                .or_insert_with(|| api_version.clone().into());
        }
        out.extend(list_items(item));
    }
    out
}

/// Removes the `data` values of a Secret that are not valid base64 and says which, so that
/// the rest of the Secret can be read. Never quotes the value (it may be a key).
fn take_bad_base64(secret: &mut serde_json::Value) -> Vec<Unparseable> {
    use base64::Engine as _;
    let mut bad = Vec::new();
    if let Some(data) = secret.get_mut("data").and_then(|d| d.as_object_mut()) {
        data.retain(|key, v| {
            let problem = match v {
                serde_json::Value::String(s) => base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .err()
                    .map(|e| format!("data.{key} is not valid base64 ({e}); Secret data must be base64-encoded (kubectl create secret tls does it), or put plain text under stringData")),
                serde_json::Value::Null => None,
                _ => Some(format!("data.{key} is not a base64 string")),
            };
            match problem {
                Some(reason) => {
                    bad.push(Unparseable { key: key.clone(), reason });
                    false
                }
                None => true,
            }
        });
    }
    bad
}

fn controlled<K: ResourceExt>(obj: &K) -> bool {
    obj.owner_references()
        .iter()
        .any(|o| o.controller == Some(true))
}

/// Names of the Secrets a pod spec mounts (volumes, projected volumes) or reads
/// (`env`, `envFrom`), in every kind of container.
pub fn secrets_used(spec: &PodSpec) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for v in spec.volumes.iter().flatten() {
        if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            out.insert(name);
        }
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(s) = &source.secret {
                out.insert(s.name.clone());
            }
        }
    }
    let env_sources = spec
        .containers
        .iter()
        .map(|c| (&c.env, &c.env_from))
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| (&c.env, &c.env_from)),
        )
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| (&c.env, &c.env_from)),
        );
    for (env, env_from) in env_sources {
        for e in env.iter().flatten() {
            if let Some(r) = e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
            {
                out.insert(r.name.clone());
            }
        }
        for e in env_from.iter().flatten() {
            if let Some(r) = &e.secret_ref {
                out.insert(r.name.clone());
            }
        }
    }
    out
}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// Only the `CERTIFICATE` blocks of a PEM text, so that a combined certificate-and-key
/// file yields its certificates and nothing of the key. A block left open is kept as is,
/// for the parser to report.
pub fn certificate_blocks(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let from = &rest[start..];
        match from.find(END) {
            Some(end) => {
                out.push_str(&from[..end + END.len()]);
                out.push('\n');
                rest = &from[end + END.len()..];
            }
            None => {
                // Up to the next block of another type, never into it.
                let cut = from[BEGIN.len()..]
                    .find("-----BEGIN")
                    .map_or(from.len(), |i| i + BEGIN.len());
                out.push_str(&from[..cut]);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn certificate_blocks_leave_keys_out() {
        // Spelled in pieces so that no committed file looks like it holds a key.
        let key_type = "PRIVATE KEY";
        let text = format!(
            "-----BEGIN {key_type}-----\nAAAA\n-----END {key_type}-----\n-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"
        );
        let text = text.as_str();
        let blocks = certificate_blocks(text);
        assert_eq!(
            blocks,
            "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"
        );
        assert!(!blocks.contains("AAAA"));
        assert_eq!(certificate_blocks("no pem here"), "");
        let open = certificate_blocks(&format!(
            "-----BEGIN CERTIFICATE-----\nCCCC\n-----BEGIN {key_type}-----\nKKKK\n"
        ));
        assert!(open.contains("CCCC") && !open.contains("KKKK"), "{open}");
    }

    #[test]
    fn routes_keep_certificates_never_keys() {
        let ca = crate::pki::testutil::ca();
        let key = crate::pki::KeySpec::ECDSA_P256.generate().unwrap();
        let chain = crate::pki::testutil::issue(
            &ca,
            &crate::pki::testutil::profile(),
            &key,
            crate::pki::testutil::now(),
        );
        let mut inv = Inventory::default();
        // A typed list: its items inherit kind and apiVersion.
        inv.add_value(json!({"apiVersion": "route.openshift.io/v1", "kind": "RouteList", "items": [
            {"metadata": {"name": "edge"},
             "spec": {"host": "a.se", "to": {"name": "web"}, "tls": {"termination": "edge",
                "certificate": pki::chain_to_pem(&chain), "key": key.to_pem(),
                "destinationCACertificate": ca.root_pem()}}},
            {"metadata": {"name": "broken", "namespace": "n"},
             "spec": {"to": {"name": "web"}, "tls": {"termination": "reencrypt", "certificate": "garbage"}}},
            {"metadata": {"name": "through", "namespace": "n"},
             "spec": {"to": {"name": "web"}, "tls": {"termination": "passthrough", "externalCertificate": {"name": "x"}}}},
            {"metadata": {"name": "plain", "namespace": "n"}, "spec": {"to": {"name": "web"}}}
        ]}))
        .unwrap();
        assert_eq!(inv.routes.len(), 3, "a Route without TLS is not kept");
        let edge = &inv.routes[0];
        assert_eq!(edge.route.display(), "Route/default/edge");
        assert_eq!(edge.termination, Termination::Edge);
        assert_eq!(edge.certificate.as_ref().unwrap().chain, chain);
        assert_eq!(edge.destination_ca.len(), 1);
        assert_eq!(edge.service.as_deref(), Some("web"));
        let broken = &inv.routes[1];
        assert_eq!(broken.termination, Termination::Reencrypt);
        assert_eq!(
            broken.unparseable.as_ref().unwrap().reason,
            "holds no PEM certificate"
        );
        assert_eq!(inv.routes[2].termination, Termination::Passthrough);
        // A passthrough Route serves no certificate of its own: its externalCertificate is
        // not an endpoint.
        assert!(inv.ingress_tls.is_empty());
        assert!(!format!("{inv:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn gateway_api_objects_are_kept_typed_and_namespaced() {
        let mut inv = Inventory::default();
        let gw = "gateway.networking.k8s.io/v1";
        inv.add_value(json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": gw, "kind": "Gateway", "metadata": {"name": "web"},
             "spec": {"gatewayClassName": "eg",
                "listeners": [{"name": "https", "port": 443, "protocol": "HTTPS",
                    "tls": {"certificateRefs": [{"name": "web-tls"}]}}],
                "tls": {"backend": {"clientCertificateRef": {"name": "gw-client"}}}}},
            {"apiVersion": gw, "kind": "HTTPRoute", "metadata": {"name": "r"},
             "spec": {"parentRefs": [{"name": "web"}], "hostnames": ["a.region.se"]}},
            {"apiVersion": gw, "kind": "ListenerSet", "metadata": {"name": "s", "namespace": "x"}, "spec": {"parentRef": {"name": "web", "namespace": "default"}}},
            {"apiVersion": gw, "kind": "TLSRoute", "metadata": {"name": "t", "namespace": "x"}, "spec": {}},
            {"apiVersion": gw, "kind": "BackendTLSPolicy", "metadata": {"name": "p", "namespace": "x"}, "spec": {}},
            {"apiVersion": gw, "kind": "ReferenceGrant", "metadata": {"name": "g", "namespace": "x"}, "spec": {}},
            {"apiVersion": gw, "kind": "GRPCRoute", "metadata": {"name": "ignored"}, "spec": {}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "no-ca", "namespace": "x"}, "data": {"other": "x"}}
        ]}))
        .unwrap();
        let g = &inv.gateway_api;
        assert_eq!(
            (
                g.gateways.len(),
                g.listener_sets.len(),
                g.http_routes.len(),
                g.tls_routes.len()
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(
            (g.backend_tls_policies.len(), g.reference_grants.len()),
            (1, 1)
        );
        assert_eq!(
            inv.skipped, 1,
            "a GRPCRoute serves no certificate of its own"
        );
        assert_eq!(g.gateways[0].metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            g.http_routes[0].metadata.namespace.as_deref(),
            Some("default")
        );
        // The listener, with its hosts from the route defaulted to the same namespace.
        let l = inv.gateway_listeners();
        assert_eq!(l.len(), 1);
        assert_eq!(
            (l[0].secret.as_str(), l[0].hosts.clone()),
            ("web-tls", vec!["a.region.se".to_string()])
        );
        // The client certificate makes the Gateway a workload using its Secret.
        assert_eq!(inv.workloads.len(), 1);
        assert_eq!(inv.workloads[0].object.display(), "Gateway/default/web");
        assert!(inv.workloads[0].secrets.contains("gw-client"));
        assert_eq!(
            inv.config_map_ca_crt
                .get(&("x".to_string(), "no-ca".to_string())),
            Some(&None)
        );
        let mut only_x = inv.clone();
        only_x.restrict_to_namespace("x");
        assert!(only_x.gateway_api.gateways.is_empty() && only_x.workloads.is_empty());
        assert_eq!(only_x.gateway_api.listener_sets.len(), 1);
        assert_eq!(only_x.config_map_ca_crt.len(), 1);
        let err = inv
            .add_value(json!({"apiVersion": gw, "kind": "Gateway", "metadata": {"name": "bad"}, "spec": {"listeners": 3}}))
            .unwrap_err();
        assert!(err.to_string().starts_with("Gateway bad:"), "{err}");
    }

    #[test]
    fn pod_templates_name_the_secrets_they_use() {
        let mut inv = Inventory::default();
        inv.add_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "a"},
            "spec": {"selector": {}, "template": {"spec": {
                "volumes": [
                    {"name": "v1", "secret": {"secretName": "mounted"}},
                    {"name": "v2", "projected": {"sources": [{"secret": {"name": "projected"}}]}}
                ],
                "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "env-from"}}]}],
                "containers": [{"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "env-ref", "key": "k"}}}]}]
            }}}
        }))
        .unwrap();
        assert_eq!(inv.workloads.len(), 1);
        assert_eq!(
            inv.workloads[0]
                .secrets
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["env-from", "env-ref", "mounted", "projected"]
        );
        // A workload that uses no Secret is not kept; an owned Pod is its owner's.
        inv.add_value(json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "quiet", "namespace": "a"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}}}))
            .unwrap();
        inv.add_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "api-1", "namespace": "a", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-x", "uid": "u", "controller": true}]},
            "spec": {"volumes": [{"name": "v", "secret": {"secretName": "mounted"}}], "containers": [{"name": "c"}]}}))
            .unwrap();
        assert_eq!(inv.workloads.len(), 1);
    }

    #[test]
    fn lists_unknown_kinds_and_malformed_objects() {
        let mut inv = Inventory::default();
        inv.add_value(json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "s"}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
             "spec": {"tls": [{"hosts": ["a.se"], "secretName": "web-tls"}, {"hosts": ["b.se"]}]}}
        ]}))
        .unwrap();
        assert_eq!(inv.skipped, 1);
        assert_eq!(
            inv.ingress_tls,
            vec![IngressTls {
                ingress: ObjectRef::namespaced("Ingress", "default", "web"),
                secret: "web-tls".into(),
                hosts: vec!["a.se".into()],
            }]
        );
        // Typed lists leave the items' kind out.
        inv.add_value(
            json!({"apiVersion": "v1", "kind": "NamespaceList", "items": [
                {"metadata": {"name": "x", "labels": {"a": "b"}}}
            ]}),
        )
        .unwrap();
        assert_eq!(inv.namespaces["x"]["a"], "b");
        let err = inv
            .add_value(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"}, "type": 3}))
            .unwrap_err();
        assert!(err.to_string().starts_with("Secret bad:"), "{err}");
        assert!(matches!(
            inv.add_value(json!({"metadata": {}})),
            Err(ObjectError::NoKind)
        ));
    }

    #[test]
    fn secrets_keep_certificates_and_report_what_does_not_parse() {
        let ca = crate::pki::testutil::ca();
        let key = crate::pki::KeySpec::ECDSA_P256.generate().unwrap();
        let chain = crate::pki::testutil::issue(
            &ca,
            &crate::pki::testutil::profile(),
            &key,
            crate::pki::testutil::now(),
        );
        let pem = pki::chain_to_pem(&chain);
        let b64 = |s: &str| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(s)
        };
        let mut inv = Inventory::default();
        inv.add_value(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "ok", "namespace": "n"},
            "data": {"tls.crt": b64(&pem), "tls.key": b64(&key.to_pem()), "ca.crt": b64(&ca.root_pem())}}))
            .unwrap();
        inv.add_value(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "broken", "namespace": "n"},
            "data": {"tls.crt": b64("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"), "tls.key": ""}}))
            .unwrap();
        inv.add_value(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "combined", "namespace": "n"},
            "stringData": {"server.pem": format!("{}{}", key.to_pem(), pem)}}))
            .unwrap();
        inv.add_value(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "password", "namespace": "n"}, "stringData": {"password": "hunter2"}}))
            .unwrap();
        assert_eq!(inv.secrets.len(), 3, "the password Secret is not kept");
        let ok = &inv.secrets[0];
        assert_eq!(ok.certificates.len(), 1, "ca.crt is trust, not an endpoint");
        assert_eq!(ok.certificates[0].key, "tls.crt");
        assert_eq!(ok.certificates[0].chain, chain);
        assert!(ok.unparseable.is_empty());
        assert_eq!(inv.secrets[1].unparseable[0].key, "tls.crt");
        assert_eq!(inv.secrets[2].certificates[0].key, "server.pem");
        assert!(format!("{inv:?}").find("PRIVATE KEY").is_none());
    }
}
