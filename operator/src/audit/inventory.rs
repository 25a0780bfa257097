//! `sithsctl inventory`: every certificate found, where it is used, its class and expiry.

use jiff::Timestamp;
use serde::Serialize;

use super::{AnchorSet, CertClass, Inventory, ObjectRef};

/// One certificate in one Secret key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// The Secret.
    pub secret: ObjectRef,
    /// The data key.
    pub key: String,
    /// Subject of the leaf.
    pub subject: String,
    /// SAN DNS names.
    pub dns_names: Vec<String>,
    /// Issuer of the leaf.
    pub issuer: String,
    /// Class by chain verification.
    pub class: CertClass,
    /// End of validity (RFC 3339).
    pub not_after: String,
    /// Whole days left (negative when expired).
    pub days_left: i64,
    /// Ingresses, workloads and ServiceCertificates that use the Secret (`Kind/name`).
    pub used_by: Vec<String>,
}

/// Every certificate of `inv`, by namespace, Secret and key.
pub fn inventory(inv: &Inventory, anchors: &AnchorSet, now: Timestamp) -> Vec<Row> {
    let mut rows = Vec::new();
    for s in &inv.secrets {
        let ns = s.object.namespace.as_deref();
        let name = s.object.name.as_str();
        let mut used_by: Vec<String> = inv
            .ingress_tls
            .iter()
            .filter(|t| t.ingress.namespace.as_deref() == ns && t.secret == name)
            .map(|t| format!("Ingress/{}", t.ingress.name))
            .chain(
                inv.workloads
                    .iter()
                    .filter(|w| w.object.namespace.as_deref() == ns && w.secrets.contains(name))
                    .map(|w| format!("{}/{}", w.object.kind, w.object.name)),
            )
            .chain(
                inv.service_certificates
                    .iter()
                    .filter(|c| c.metadata.namespace.as_deref() == ns && c.spec.secret_name == name)
                    .map(|c| {
                        format!(
                            "ServiceCertificate/{}",
                            c.metadata.name.as_deref().unwrap_or_default()
                        )
                    }),
            )
            .collect();
        used_by.sort();
        used_by.dedup();
        for c in &s.certificates {
            rows.push(Row {
                secret: s.object.clone(),
                key: c.key.clone(),
                subject: c.leaf.subject.clone(),
                dns_names: c.leaf.dns_names.clone(),
                issuer: c.leaf.issuer.clone(),
                class: anchors.classify(&c.chain, &c.leaf, now).class,
                not_after: crate::controllers::rfc3339(c.leaf.not_after),
                days_left: c.leaf.not_after.duration_since(now).as_secs() / 86_400,
                used_by: used_by.clone(),
            });
        }
    }
    rows.sort_by(|a, b| (&a.secret, &a.key).cmp(&(&b.secret, &b.key)));
    rows
}
