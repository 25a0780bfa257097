//! `CertificateOrder`: one issuance attempt, the paper trail a security officer audits.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    Condition, DNS1123_SUBDOMAIN_RULE, HSA_ID_MESSAGE, HSA_ID_RULE, OBJECT_NAME_MESSAGE,
    RFC3339_RULE,
};

/// CEL: one PEM certificate signing request and nothing else (not a certificate, not a
/// key, not free text). The operator reads it with `pki::parse_csr`.
pub const CSR_RULE: &str = r"self.matches('^\\s*-----BEGIN CERTIFICATE REQUEST-----\\s+[A-Za-z0-9+/=\\s]+-----END CERTIFICATE REQUEST-----\\s*$')";
/// Message for [`CSR_RULE`].
pub const CSR_MESSAGE: &str = "csr must be one PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST----- ... -----END CERTIFICATE REQUEST-----); a certificate, a key or other text does not belong here. Orders are created by the operator; people approve, deny and import";

/// One issuance attempt for one revision of a ServiceCertificate, created by the operator
/// with a deterministic name so that it exists at most once. People approve or deny it and
/// import the signed certificate into it (`sithsctl orders`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "siths-operator.io",
    version = "v1alpha1",
    kind = "CertificateOrder",
    namespaced,
    shortname = "corder",
    category = "siths",
    status = "CertificateOrderStatus",
    printcolumn(
        json_path = ".spec.certificateName",
        name = "Certificate",
        type_ = "string"
    ),
    printcolumn(json_path = ".spec.revision", name = "Revision", type_ = "integer"),
    printcolumn(json_path = ".spec.issuerName", name = "Issuer", type_ = "string"),
    printcolumn(json_path = ".status.phase", name = "Phase", type_ = "string"),
    printcolumn(
        json_path = ".spec.estimatedCostSek",
        name = "Cost SEK",
        type_ = "integer"
    ),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    )
)]
#[x_kube(validation = Rule::new("self.certificateName == oldSelf.certificateName && self.revision == oldSelf.revision && self.issuerName == oldSelf.issuerName && self.csr == oldSelf.csr && self.dnsNames == oldSelf.dnsNames && self.estimatedCostSek == oldSelf.estimatedCostSek && self.subject == oldSelf.subject && (has(self.hsaId) ? has(oldSelf.hsaId) && self.hsaId == oldSelf.hsaId : !has(oldSelf.hsaId))").message("the request part of an order (certificateName, revision, issuerName, csr, dnsNames, hsaId, subject, estimatedCostSek) cannot be changed; only approval and certificate may be set"))]
#[x_kube(validation = Rule::new("!has(oldSelf.approval) || (has(self.approval) && self.approval == oldSelf.approval)").message("an approval record (decision, by, at, reason) cannot be changed or removed once made"))]
#[serde(rename_all = "camelCase")]
pub struct CertificateOrderSpec {
    /// The ServiceCertificate (same namespace) this order is for.
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS1123_SUBDOMAIN_RULE).message(OBJECT_NAME_MESSAGE))]
    pub certificate_name: String,
    /// Revision of the certificate this order issues.
    #[validate(range(min = 0, max = 4294967295u32))]
    pub revision: u32,
    /// The SithsIssuer the order is placed with.
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS1123_SUBDOMAIN_RULE).message(OBJECT_NAME_MESSAGE))]
    pub issuer_name: String,
    /// Names requested (SAN dNSName).
    #[schemars(schema_with = "super::common::dns_names_schema")]
    pub dns_names: Vec<String>,
    /// HSA-id requested (subject serialNumber).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new(HSA_ID_RULE).message(HSA_ID_MESSAGE))]
    pub hsa_id: Option<String>,
    /// Subject distinguished name requested.
    #[validate(length(max = 1024))]
    pub subject: String,
    /// PKCS#10 certificate signing request (PEM) to submit to SITHS. Contains only the
    /// public key; the private key stays in the cluster.
    #[validate(length(max = 16384))]
    #[x_kube(validation = Rule::new(CSR_RULE).message(CSR_MESSAGE))]
    pub csr: String,
    /// Estimated cost of the order in SEK (from the issuer's price). Set by the operator
    /// when it creates the order; cannot be changed afterwards.
    #[serde(default)]
    #[validate(range(min = 0, max = 4294967295u32))]
    pub estimated_cost_sek: u32,
    /// A person's decision on the order. Set with `sithsctl orders approve|deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<OrderApproval>,
    /// The signed certificate chain (PEM, leaf first) as returned by SITHS. Set with
    /// `sithsctl orders import`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 65536))]
    pub certificate: Option<String>,
}

impl CertificateOrder {
    /// Whether the operator made this order for the ServiceCertificate with UID
    /// `certificate_uid`: it creates each order with a controller owner reference to its
    /// certificate. An order a person wrote by hand under the same name (its own CSR, its
    /// own cost) is not one, and the operator ignores it with a reason.
    pub fn made_for(&self, certificate_uid: &str) -> bool {
        self.metadata.owner_references.iter().flatten().any(|r| {
            r.controller == Some(true)
                && r.kind == "ServiceCertificate"
                && r.api_version.starts_with("siths-operator.io/")
                && r.uid == certificate_uid
        })
    }
}

/// A decision on an order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderApproval {
    /// `Approved` or `Denied`.
    pub decision: ApprovalDecision,
    /// Who decided.
    #[validate(length(min = 1, max = 256))]
    pub by: String,
    /// When (RFC 3339), for example `2026-05-04T09:30:00Z`.
    #[validate(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new(RFC3339_RULE).message("approval.at must be an RFC 3339 time, for example 2026-05-04T09:30:00Z (sithsctl orders approve writes it)"))]
    pub at: String,
    /// Why, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 1024))]
    pub reason: Option<String>,
}

/// Decision on an order.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ApprovalDecision {
    /// Place the order.
    Approved,
    /// Do not place the order.
    Denied,
}

/// Phase of an order.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum OrderPhase {
    /// Waiting for a person allowed to approve.
    PendingApproval,
    /// Approved; about to be placed.
    Approved,
    /// Placed; waiting for the signed certificate.
    AwaitingCertificate,
    /// The certificate was accepted and written to the Secret.
    Issued,
    /// A person denied the order.
    Denied,
    /// The order failed; see reason.
    Failed,
}

/// Observed state of a CertificateOrder.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateOrderStatus {
    /// Current phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<OrderPhase>,
    /// Machine-readable reason for the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What happened and what to do next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Conditions of the order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Serial number (hex) of the issued certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// End of validity of the issued certificate (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// SHA-256 of the imported certificate last checked, so a rejected import is not
    /// checked again until a person imports another one, or imports the same one again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_certificate_sha256: Option<String>,
    /// When the imported certificate was last checked (RFC 3339). An import requested
    /// after it (`sithsctl orders import`, annotation `siths-operator.io/import-requested-at`)
    /// is checked again, the same bytes included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<String>,
    /// When the order was approved (RFC 3339) and by whom, copied from the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(owners: serde_json::Value) -> CertificateOrder {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "siths-operator.io/v1alpha1", "kind": "CertificateOrder",
            "metadata": {"name": "api-1", "namespace": "team", "ownerReferences": owners},
            "spec": {"certificateName": "api", "revision": 1, "issuerName": "region",
                "dnsNames": ["api.region.se"], "subject": "CN=api.region.se", "csr": "x"},
        }))
        .unwrap()
    }

    #[test]
    fn only_an_order_owned_by_its_certificate_is_the_operators() {
        let owner = |api: &str, kind: &str, uid: &str, controller: bool| {
            serde_json::json!([{"apiVersion": api, "kind": kind, "name": "api", "uid": uid,
                "controller": controller}])
        };
        let api = "siths-operator.io/v1alpha1";
        assert!(order(owner(api, "ServiceCertificate", "u1", true)).made_for("u1"));
        for o in [
            serde_json::json!([]),
            owner(api, "ServiceCertificate", "u2", true),
            owner(api, "ServiceCertificate", "u1", false),
            owner("v1", "ConfigMap", "u1", true),
        ] {
            assert!(!order(o.clone()).made_for("u1"), "{o}");
        }
        let mut none = order(serde_json::json!([]));
        none.metadata.owner_references = None;
        assert!(!none.made_for("u1"));
    }
}
