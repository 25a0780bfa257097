//! Every certificate with the dates a calendar needs: validity, when renewal starts, and
//! the SITHS lead-time window before expiry. The dates come from the audit's own rules
//! (`findings::lead_time`, `policy::renewal::renewal_plan`); nothing is decided here.

use jiff::{SignedDuration, Timestamp};

use super::{AnchorSet, CertClass, Inventory, ObjectRef, findings, objects::Termination};
use crate::{
    api,
    policy::{
        renewal::{RenewalInput, parse_renew_before, renewal_plan},
        routing::Route,
    },
};

/// One certificate in one Secret key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineCert {
    /// The object holding it (a Secret).
    pub holder: ObjectRef,
    /// The data key, for example `tls.crt`.
    pub key: String,
    /// The first DNS name, else the subject CN, else the subject.
    pub name: String,
    /// Class by chain verification.
    pub class: CertClass,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// When renewal starts (the operator's rule; for an unmanaged certificate, as if a
    /// ServiceCertificate managed it).
    pub renewal: Timestamp,
    /// Lead time of the next order (zero unless SITHS).
    pub lead_time: SignedDuration,
    /// Served by an Ingress TLS entry or a Gateway listener.
    pub user_facing: bool,
}

impl TimelineCert {
    /// The SITHS environment of a SITHS certificate, as the price list names it.
    pub fn price_environment(&self) -> Option<api::Environment> {
        self.class.siths_environment().map(|e| match e {
            crate::pki::Environment::Production => api::Environment::Production,
            crate::pki::Environment::Test => api::Environment::Test,
        })
    }
}

/// Every certificate of `inv`, by holder and key.
pub fn certificates(inv: &Inventory, anchors: &AnchorSet, now: Timestamp) -> Vec<TimelineCert> {
    let mut out = Vec::new();
    let listeners = inv.gateway_listeners();
    for s in &inv.secrets {
        let ns = s.object.namespace.as_deref();
        let user_facing = !inv
            .user_facing_users(&listeners, ns.unwrap_or_default(), &s.object.name)
            .is_empty();
        let managers = findings::managing(inv, &s.object);
        for c in &s.certificates {
            let class = anchors.classify(&c.chain, &c.leaf, now).class;
            let lead_time = findings::lead_time(inv, &s.object, class);
            let manager = managers.first();
            let renew_before = manager
                .and_then(|m| m.spec.renew_before.as_deref())
                .and_then(|r| parse_renew_before(r).ok());
            let uid = manager
                .and_then(|m| m.metadata.uid.as_deref())
                .unwrap_or_default();
            let kind = if class.siths_environment().is_some() {
                Route::Siths
            } else {
                Route::Public
            };
            let renewal = renewal_plan(&RenewalInput {
                not_before: c.leaf.not_before,
                not_after: c.leaf.not_after,
                renew_before,
                lead_time,
                kind,
                uid,
            })
            .at;
            let name = c
                .leaf
                .dns_names
                .first()
                .cloned()
                .or_else(|| c.leaf.common_name.clone())
                .unwrap_or_else(|| c.leaf.subject.clone());
            out.push(TimelineCert {
                holder: s.object.clone(),
                key: c.key.clone(),
                name,
                class,
                not_before: c.leaf.not_before,
                not_after: c.leaf.not_after,
                renewal,
                lead_time,
                user_facing,
            });
        }
    }
    // Inline certificates of OpenShift Routes: user-facing unless passed through; nothing
    // orders their successor, so no lead time.
    for r in &inv.routes {
        let Some(c) = &r.certificate else {
            continue;
        };
        let class = anchors.classify(&c.chain, &c.leaf, now).class;
        let kind = if class.siths_environment().is_some() {
            Route::Siths
        } else {
            Route::Public
        };
        let renewal = renewal_plan(&RenewalInput {
            not_before: c.leaf.not_before,
            not_after: c.leaf.not_after,
            renew_before: None,
            lead_time: SignedDuration::ZERO,
            kind,
            uid: "",
        })
        .at;
        out.push(TimelineCert {
            holder: r.route.clone(),
            key: c.key.clone(),
            name: r
                .host
                .clone()
                .or_else(|| c.leaf.dns_names.first().cloned())
                .unwrap_or_else(|| c.leaf.subject.clone()),
            class,
            not_before: c.leaf.not_before,
            not_after: c.leaf.not_after,
            renewal,
            lead_time: SignedDuration::ZERO,
            user_facing: r.termination != Termination::Passthrough,
        });
    }
    out.sort_by(|a, b| (&a.holder, &a.key).cmp(&(&b.holder, &b.key)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{self, Environment, KeySpec, testutil};
    use base64::Engine as _;
    use serde_json::json;

    #[test]
    fn dates_come_from_the_renewal_rule_and_the_issuer_lead_time() {
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
        ] {
            inv.add_value(v).unwrap();
        }
        let siths = AnchorSet::new()
            .add_pem(&ca.cert_pem(), Environment::Production)
            .unwrap();
        let now = testutil::now();
        let certs = certificates(&inv, &siths, now);
        assert_eq!(certs.len(), 1);
        let c = &certs[0];
        assert_eq!(c.class, CertClass::SithsProduction);
        assert!(c.user_facing);
        assert_eq!(c.name, "api.region.se");
        // Unmanaged SITHS: the manual lead time, and renewal at lead time + margin
        // before expiry (capped by the lifetime rule), as the operator would.
        assert_eq!(c.lead_time, crate::policy::cost::MANUAL_LEAD_TIME);
        assert!(c.renewal < c.not_after - c.lead_time, "{c:?}");
        assert!(c.renewal > c.not_before);
        assert_eq!(c.price_environment(), Some(api::Environment::Production));
        // The same certificate without SITHS anchors: no lead time, renewal at two thirds.
        let other = &certificates(&inv, &AnchorSet::new(), now)[0];
        assert_eq!(other.class, CertClass::Other);
        assert_eq!(other.lead_time, SignedDuration::ZERO);
        assert_eq!(other.price_environment(), None);
        let lifetime = other.not_after.duration_since(other.not_before);
        let before = other.not_after.duration_since(other.renewal);
        assert!(before >= lifetime / 3 && before < lifetime / 2, "{other:?}");
    }
}
