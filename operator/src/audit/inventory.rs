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
    /// Ingresses, Gateways and ListenerSets (by listener), workloads (a Gateway by its
    /// client certificate too) and ServiceCertificates that use the Secret (`Kind/name`).
    pub used_by: Vec<String>,
}

/// Every certificate of `inv`, by namespace, Secret and key.
pub fn inventory(inv: &Inventory, anchors: &AnchorSet, now: Timestamp) -> Vec<Row> {
    let mut rows = Vec::new();
    let listeners = inv.gateway_listeners();
    for s in &inv.secrets {
        let ns = s.object.namespace.as_deref();
        let name = s.object.name.as_str();
        let mut used_by: Vec<String> = inv
            .user_facing_users(&listeners, ns.unwrap_or_default(), name)
            .into_iter()
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
                not_after: crate::policy::rfc3339(c.leaf.not_after),
                days_left: c.leaf.not_after.duration_since(now).as_secs() / 86_400,
                used_by: used_by.clone(),
            });
        }
    }
    rows.sort_by(|a, b| (&a.secret, &a.key).cmp(&(&b.secret, &b.key)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{self, Environment, KeySpec, testutil};
    use base64::Engine as _;
    use serde_json::json;

    #[test]
    fn rows_carry_class_expiry_and_every_use() {
        let ca = testutil::ca();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let chain = testutil::issue(&ca, &testutil::profile(), &key, testutil::now());
        let crt = base64::engine::general_purpose::STANDARD.encode(pki::chain_to_pem(&chain));
        let mut inv = Inventory::default();
        for v in [
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": "api-tls", "namespace": "a"}, "data": {"tls.crt": crt, "tls.key": ""}}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "a"},
                "spec": {"tls": [{"secretName": "api-tls"}]}}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "elsewhere", "namespace": "b"},
                "spec": {"tls": [{"secretName": "api-tls"}]}}),
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "a"},
                "spec": {"selector": {}, "serviceName": "db", "template": {"spec": {"containers": [{"name": "c",
                    "envFrom": [{"secretRef": {"name": "api-tls"}}]}]}}}}),
        ] {
            inv.add_value(v).unwrap();
        }
        let anchors = AnchorSet::new()
            .add_pem(&ca.cert_pem(), Environment::Production)
            .unwrap();
        let rows = inventory(&inv, &anchors, testutil::now());
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.class, CertClass::SithsProduction);
        assert_eq!(r.used_by, ["Ingress/web", "StatefulSet/db"]);
        assert_eq!(r.days_left, 90, "valid for 90 days from now");
        assert_eq!(r.dns_names, ["api.region.se", "api2.region.se"]);
        assert_eq!(
            inventory(&inv, &AnchorSet::new(), testutil::now())[0].class,
            CertClass::Other
        );
    }
}
