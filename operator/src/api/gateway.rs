//! Read-only views of the Gateway API kinds the operator reads (`gateway.networking.k8s.io/v1`,
//! standard channel): Gateway, ListenerSet, HTTPRoute, TLSRoute, BackendTLSPolicy and
//! ReferenceGrant.
//!
//! Not ours: the upstream project owns these CRDs. The `gateway-api` crate does not build with
//! kube 5 / k8s-openapi 0.29, so these are minimal serde types holding only the fields the
//! operator reads (every field optional or defaulted, unknown fields ignored), written by hand
//! from the upstream CRDs. The e2e test `gateway_types` checks every field path named here
//! against the real CRDs' schema (v1.6.3), so a rename upstream fails a test instead of
//! reading as "absent". The operator never writes Gateways, ListenerSets or policies; the one
//! kind it creates, a temporary HTTPRoute for an ACME HTTP-01 challenge, is built as JSON.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// API group of Gateway API.
pub const GROUP: &str = "gateway.networking.k8s.io";
/// The API version read (`v1`).
pub const VERSION: &str = "v1";

/// A reference to an object (`certificateRefs`, `caCertificateRefs`, `clientCertificateRef`,
/// `parentRef(s)`, `backendRefs`, `targetRefs`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// API group; `""` (or absent) is the core group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind; what is absent depends on the field (Secret for certificates, Gateway for parents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace; absent is the referring object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Listener name (`parentRefs`) or port name (`targetRefs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// Port (`parentRefs`, `backendRefs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

impl ObjectReference {
    /// Whether this names `kind` of core group `group` (`""` is the core group), where `kind`
    /// and `group` default to `default_kind` and `""`.
    pub fn is(&self, group: &str, kind: &str, default_kind: &str) -> bool {
        self.group.as_deref().unwrap_or("") == group
            && self.kind.as_deref().unwrap_or(default_kind) == kind
    }

    /// Whether this parent reference names a `kind` of Gateway API (group and kind default
    /// to `gateway.networking.k8s.io` and `Gateway`).
    pub fn is_parent(&self, kind: &str) -> bool {
        self.group.as_deref().unwrap_or(GROUP) == GROUP
            && self.kind.as_deref().unwrap_or("Gateway") == kind
    }

    /// The namespace of the object named, seen from an object in `from`.
    pub fn namespace_from<'a>(&'a self, from: &'a str) -> &'a str {
        self.namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(from)
    }
}

/// TLS of a listener.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// `Terminate` (the default) or `Passthrough`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Secrets (by default) holding the listener's certificate and key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_refs: Vec<ObjectReference>,
}

/// One listener of a Gateway or ListenerSet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Unique within its Gateway or ListenerSet.
    pub name: String,
    /// Host name (may be a wildcard); absent: every host name of attached routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Port.
    #[serde(default)]
    pub port: i32,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP` or an implementation's own.
    #[serde(default)]
    pub protocol: String,
    /// TLS, for `HTTPS` and `TLS` listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
}

/// Client-certificate validation of a Gateway's frontend (`spec.tls.frontend`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FrontendValidation {
    /// ConfigMaps (typically) holding the CA certificates clients are verified against.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certificate_refs: Vec<ObjectReference>,
    /// `AllowValidOnly` (default) or `AllowInsecureFallback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// Frontend TLS settings of one scope (`default` or a port).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FrontendTlsConfig {
    /// Client-certificate validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<FrontendValidation>,
}

/// Per-port frontend TLS settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FrontendPerPort {
    /// The port.
    #[serde(default)]
    pub port: i32,
    /// Its settings.
    #[serde(default)]
    pub tls: FrontendTlsConfig,
}

/// `spec.tls.frontend` of a Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Frontend {
    /// Settings for every HTTPS listener without a per-port entry.
    #[serde(default)]
    pub default: FrontendTlsConfig,
    /// Per-port settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_port: Vec<FrontendPerPort>,
}

/// `spec.tls.backend` of a Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// The client certificate the Gateway presents to backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_ref: Option<ObjectReference>,
}

/// `spec.tls` of a Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayTls {
    /// Towards backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// Towards clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend: Option<Frontend>,
}

/// The fields of a Gateway the operator reads.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "Gateway",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Its GatewayClass.
    #[serde(default)]
    pub gateway_class_name: String,
    /// Listeners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
    /// Gateway-wide TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<GatewayTls>,
}

/// The fields of a ListenerSet the operator reads.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "ListenerSet",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSetSpec {
    /// The Gateway it adds listeners to.
    #[serde(default)]
    pub parent_ref: ObjectReference,
    /// Its listeners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
}

/// The fields of an HTTPRoute the operator reads.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteSpec {
    /// Gateways (or ListenerSets) it attaches to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ObjectReference>,
    /// Host names it serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Rules (only their backends are read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RouteRule>,
}

/// A rule of an HTTPRoute or TLSRoute; only its backends are read.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    /// Backends (Services by default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<ObjectReference>,
}

/// The fields of a TLSRoute the operator reads.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "TLSRoute",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct TLSRouteSpec {
    /// Gateways it attaches to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ObjectReference>,
    /// SNI host names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RouteRule>,
}

/// `spec.validation` of a BackendTLSPolicy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BackendValidation {
    /// ConfigMaps (typically) with `ca.crt`, in the policy's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certificate_refs: Vec<ObjectReference>,
    /// `System`: the implementation's own trust store instead.
    #[serde(
        default,
        rename = "wellKnownCACertificates",
        skip_serializing_if = "Option::is_none"
    )]
    pub well_known_ca_certificates: Option<String>,
    /// The name the backend's certificate must carry.
    #[serde(default)]
    pub hostname: String,
}

/// The fields of a BackendTLSPolicy the operator reads.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "BackendTLSPolicy",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct BackendTLSPolicySpec {
    /// The Services it applies to (same namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<ObjectReference>,
    /// How the backend's certificate is verified.
    #[serde(default)]
    pub validation: BackendValidation,
}

/// One side of a ReferenceGrant.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GrantSide {
    /// API group (`""`: core).
    #[serde(default)]
    pub group: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
    /// Namespace (`from` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name (`to` only; absent: every object of the kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The fields of a ReferenceGrant the operator reads.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "ReferenceGrant",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceGrantSpec {
    /// Who may refer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<GrantSide>,
    /// To what in this namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<GrantSide>,
}

/// The field paths (below `spec`) these types read, per kind and CRD file: checked against
/// the upstream CRDs' schema by the e2e test `gateway_types`.
pub const READ_FIELDS: &[(&str, &[&str])] = &[
    (
        "Gateway",
        &[
            "gatewayClassName",
            "listeners[].name",
            "listeners[].hostname",
            "listeners[].port",
            "listeners[].protocol",
            "listeners[].tls.mode",
            "listeners[].tls.certificateRefs[].group",
            "listeners[].tls.certificateRefs[].kind",
            "listeners[].tls.certificateRefs[].name",
            "listeners[].tls.certificateRefs[].namespace",
            "tls.backend.clientCertificateRef.group",
            "tls.backend.clientCertificateRef.kind",
            "tls.backend.clientCertificateRef.name",
            "tls.backend.clientCertificateRef.namespace",
            "tls.frontend.default.validation.caCertificateRefs[].group",
            "tls.frontend.default.validation.caCertificateRefs[].kind",
            "tls.frontend.default.validation.caCertificateRefs[].name",
            "tls.frontend.default.validation.caCertificateRefs[].namespace",
            "tls.frontend.default.validation.mode",
            "tls.frontend.perPort[].port",
            "tls.frontend.perPort[].tls.validation.caCertificateRefs[].name",
        ],
    ),
    (
        "ListenerSet",
        &[
            "parentRef.group",
            "parentRef.kind",
            "parentRef.name",
            "parentRef.namespace",
            "listeners[].name",
            "listeners[].hostname",
            "listeners[].port",
            "listeners[].protocol",
            "listeners[].tls.mode",
            "listeners[].tls.certificateRefs[].name",
            "listeners[].tls.certificateRefs[].namespace",
        ],
    ),
    (
        "HTTPRoute",
        &[
            "parentRefs[].group",
            "parentRefs[].kind",
            "parentRefs[].name",
            "parentRefs[].namespace",
            "parentRefs[].sectionName",
            "parentRefs[].port",
            "hostnames",
            "rules[].backendRefs[].name",
            "rules[].backendRefs[].namespace",
            "rules[].backendRefs[].kind",
            "rules[].backendRefs[].group",
            "rules[].backendRefs[].port",
        ],
    ),
    (
        "TLSRoute",
        &[
            "parentRefs[].name",
            "parentRefs[].namespace",
            "parentRefs[].sectionName",
            "hostnames",
            "rules[].backendRefs[].name",
            "rules[].backendRefs[].namespace",
            "rules[].backendRefs[].port",
        ],
    ),
    (
        "BackendTLSPolicy",
        &[
            "targetRefs[].group",
            "targetRefs[].kind",
            "targetRefs[].name",
            "targetRefs[].sectionName",
            "validation.caCertificateRefs[].group",
            "validation.caCertificateRefs[].kind",
            "validation.caCertificateRefs[].name",
            "validation.wellKnownCACertificates",
            "validation.hostname",
        ],
    ),
    (
        "ReferenceGrant",
        &[
            "from[].group",
            "from[].kind",
            "from[].namespace",
            "to[].group",
            "to[].kind",
            "to[].name",
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_reads_its_listeners_and_tls() {
        let g: Gateway = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {
                "gatewayClassName": "eg",
                "listeners": [
                    {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "a.region.se",
                     "tls": {"mode": "Terminate", "certificateRefs": [{"name": "web-tls"}]},
                     "allowedRoutes": {"namespaces": {"from": "Same"}}},
                    {"name": "http", "port": 80, "protocol": "HTTP"}
                ],
                "tls": {"backend": {"clientCertificateRef": {"name": "gw-client"}},
                        "frontend": {"default": {"validation": {"caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "siths-ca"}]}}}},
                "infrastructure": {"labels": {"a": "b"}}
            }
        }))
        .unwrap();
        assert_eq!(g.spec.listeners.len(), 2);
        let r = &g.spec.listeners[0].tls.as_ref().unwrap().certificate_refs[0];
        assert!(r.is("", "Secret", "Secret"));
        assert!(!r.is("", "ConfigMap", "Secret"));
        assert_eq!(r.namespace_from("team"), "team");
        let tls = g.spec.tls.unwrap();
        assert_eq!(
            tls.backend.unwrap().client_certificate_ref.unwrap().name,
            "gw-client"
        );
        let ca = &tls
            .frontend
            .unwrap()
            .default
            .validation
            .unwrap()
            .ca_certificate_refs[0];
        assert!(ca.is("", "ConfigMap", "Secret"));
    }
}
