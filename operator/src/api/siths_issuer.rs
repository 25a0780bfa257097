//! `SithsIssuer`: one connection to SITHS for one organisation.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, ConfigMapKeyRef, NamespacedSecretRef, Organization};

/// One SITHS connection: which organisation certificates are issued for, how (manual CSR
/// through Inera's portal, or a local CA for test clusters), and which trust anchors the
/// returned certificates must chain to.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "siths-operator.io",
    version = "v1alpha1",
    kind = "SithsIssuer",
    shortname = "si",
    category = "siths",
    status = "SithsIssuerStatus",
    printcolumn(
        json_path = ".spec.organization.name",
        name = "Organization",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".spec.environment",
        name = "Environment",
        type_ = "string"
    ),
    printcolumn(json_path = ".status.backend", name = "Backend", type_ = "string"),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        name = "Ready",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".status.ordersPending",
        name = "Pending",
        type_ = "integer"
    ),
    printcolumn(
        json_path = ".status.estimatedSpendSek",
        name = "Spend SEK",
        type_ = "integer"
    ),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    )
)]
#[x_kube(validation = Rule::new("!(self.environment == 'Production' && has(self.backend.localCA))").message("backend.localCA is for test and development clusters only; a Production issuer must use backend.manual (CSR through Inera's portal)"))]
#[x_kube(validation = Rule::new("self.environment == oldSelf.environment").message("environment cannot be changed after creation; create a new SithsIssuer instead"))]
#[x_kube(validation = Rule::new("self.organization.organizationNumber == oldSelf.organization.organizationNumber").message("organization.organizationNumber cannot be changed after creation; create a new SithsIssuer instead"))]
#[serde(rename_all = "camelCase")]
pub struct SithsIssuerSpec {
    /// The organisation the certificates are issued for (subject O= and L=).
    pub organization: Organization,
    /// How the organisation is connected to SITHS.
    pub connection: Connection,
    /// `Production` (the SITHS e-id Function CA v1 chain) or `Test` (pre-production, the
    /// TEST SITHS e-id chain).
    pub environment: Environment,
    /// How certificates are obtained. Exactly one of `manual` or `localCA`.
    pub backend: Backend,
    /// Trust anchors that returned certificates must chain to. Defaults to the pinned SITHS
    /// chain of the issuer's environment, loaded from the operator's SITHS CA ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_anchors: Option<TrustAnchors>,
    /// Whether every order needs a person's approval before it is placed. Defaults to
    /// `Required` for `Production` (each order costs money) and `NotRequired` for `Test`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// Price of one certificate in SEK, used for spend estimates. Defaults to the SITHS price
    /// list: 3500 for Production; for Test 750 for the first and 150 for each following.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 0, max = 1000000u32))]
    pub price_per_certificate_sek: Option<u32>,
    /// Days between placing an order and receiving the certificate. Renewal starts at least
    /// this long (plus a margin) before expiry. Defaults to 28 for `manual`, 0 for `localCA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 0, max = 365u32))]
    pub lead_time_days: Option<u32>,
    /// Namespaces whose ServiceCertificates may use this issuer. Empty or absent: all
    /// namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::label_selector_schema")]
    pub allowed_namespaces: Option<LabelSelector>,
}

/// How an organisation reaches SITHS.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("self.type == 'ThirdParty' ? has(self.agent) : !has(self.agent)").message("connection.agent is required for type ThirdParty (the agent organisation, ombud) and must be absent for Direct"))]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// `Direct` (direktanslutning: the organisation runs its own issuance) or `ThirdParty`
    /// (tredjepartsanslutning: certificates come through an agent; the only way for private
    /// care providers).
    #[serde(rename = "type")]
    pub type_: ConnectionType,
    /// The agent (ombud) organisation, for `ThirdParty` connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Organization>,
}

/// Kind of SITHS connection.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConnectionType {
    /// The organisation is connected directly.
    Direct,
    /// The organisation is connected through an agent.
    ThirdParty,
}

/// SITHS environment.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Environment {
    /// The production SITHS e-id Function CA v1.
    Production,
    /// Pre-production: TEST SITHS e-id Function CA v1.
    Test,
}

/// How certificates are obtained; exactly one member is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("[has(self.manual), has(self.localCA)].filter(x, x).size() == 1").message("set exactly one of backend.manual or backend.localCA"))]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// The operator makes the key and CSR; a person submits the CSR through Inera's portal
    /// (or to the agent) and imports the signed certificate with `sithsctl orders import`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<ManualBackend>,
    /// Sign with a CA key pair from a Secret, for test and development clusters. Not
    /// allowed with `environment: Production`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "localCA")]
    pub local_ca: Option<LocalCaBackend>,
}

/// Manual CSR backend.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManualBackend {
    /// Free text shown to the person who submits the CSR, for example where to submit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 1024))]
    pub instructions: Option<String>,
}

/// Local CA backend.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalCaBackend {
    /// Secret of type `kubernetes.io/tls` holding the CA certificate (`tls.crt`, followed by
    /// any intermediates up to the root) and its key (`tls.key`).
    pub secret_ref: NamespacedSecretRef,
    /// Create a self-signed test CA in `secretRef` when the Secret does not exist (for
    /// development clusters and demos). Never replaces an existing Secret.
    #[serde(default)]
    pub generate: bool,
    /// Lifetime of the certificates it signs, in days (`365d`), hours (`24h`) or minutes
    /// (`10m`). Defaults to 365 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 2, max = 8))]
    #[x_kube(validation = Rule::new("self.matches('^[1-9][0-9]{0,5}(d|h|m)$')").message("certificateLifetime must be a number of days, hours or minutes, for example 365d, 24h or 10m"))]
    pub certificate_lifetime: Option<String>,
}

/// Trust anchors for verifying returned certificates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("[has(self.pinned), has(self.configMap)].filter(x, x).size() == 1").message("set exactly one of trustAnchors.pinned or trustAnchors.configMap"))]
#[serde(rename_all = "camelCase")]
pub struct TrustAnchors {
    /// Use the SITHS chain of the issuer's environment, verified against the fingerprints
    /// pinned in the operator before use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<PinnedAnchors>,
    /// An explicit ConfigMap of PEM roots (and intermediates), for a `localCA` hierarchy or
    /// a test hierarchy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapKeyRef>,
}

/// Where the pinned SITHS CA certificates are loaded from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PinnedAnchors {
    /// ConfigMap holding the SITHS CA certificates (PEM). Each is checked against the pinned
    /// SHA-256 fingerprints; a mismatch makes the issuer not Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapKeyRef>,
}

/// Approval policy for orders.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Approval {
    /// Every order waits in `PendingApproval` until a person allowed to approve approves it.
    Required,
    /// Orders proceed without approval.
    NotRequired,
}

/// Observed state of a SithsIssuer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SithsIssuerStatus {
    /// `Ready` says whether the issuer can issue, and if not, what to fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The backend in use (`Manual` or `LocalCA`), for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Orders waiting for approval or for the certificate.
    #[serde(default)]
    #[validate(range(min = 0, max = 4294967295u32))]
    pub orders_pending: u32,
    /// Estimated cost in SEK of the orders placed and pending on this issuer.
    #[serde(default)]
    #[validate(range(min = 0, max = 9007199254740991u64))]
    pub estimated_spend_sek: u64,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 0, max = 9007199254740991i64))]
    pub observed_generation: Option<i64>,
}
