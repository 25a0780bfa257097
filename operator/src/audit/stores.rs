//! Java key and trust stores (PKCS#12, JKS) found in Secrets and ConfigMaps: opened with
//! the password a ServiceCertificate's `keystores` references, a password Secret of the
//! namespace (labelled `siths-operator.io/keystore-password`, or a key named `password`),
//! or the Java default `changeit`; their certificates then count like PEM ones (a SITHS
//! certificate inside a `keystore.p12` is found, a SITHS CA in a `truststore.p12` is
//! installed trust). A store none of those passwords opens is reported as unparseable,
//! never skipped silently. Pure: the stores and passwords were gathered on the way in.

use std::collections::BTreeMap;

use super::objects::{CertSecret, FoundCertificate, Inventory, Unparseable};
use crate::{
    api::DEFAULT_TRUSTSTORE_PASSWORD,
    pki::{self, CertInfo, keystore},
};

impl Inventory {
    /// The passwords to try on a store of namespace `ns`, most specific first: those the
    /// namespace's ServiceCertificates reference, then the namespace's other password
    /// Secrets, then `changeit`.
    fn store_passwords(&self, ns: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for cert in &self.service_certificates {
            if cert.metadata.namespace.as_deref() != Some(ns) {
                continue;
            }
            let Some(ks) = &cert.spec.keystores else {
                continue;
            };
            let refs = ks
                .pkcs12
                .iter()
                .map(|p| &p.password_secret_ref)
                .chain(ks.jks.iter().map(|j| &j.password_secret_ref));
            for r in refs {
                if let Some(p) = self
                    .store_passwords
                    .0
                    .get(&(ns.to_string(), r.name.clone()))
                    .and_then(|keys| keys.get(&r.key))
                {
                    out.push(p);
                }
            }
        }
        for ((n, _), keys) in &self.store_passwords.0 {
            if n == ns {
                out.extend(keys.values().map(String::as_str));
            }
        }
        out.push(DEFAULT_TRUSTSTORE_PASSWORD);
        out.dedup();
        out
    }

    /// Opens every store found with the passwords available and adds what they hold: the
    /// certificates of key entries to their object's certificates (once: a leaf already
    /// found in PEM is not counted twice), trusted certificates to the namespace's trust.
    /// Call once, after every object was added.
    pub fn open_stores(&mut self) {
        let stores = std::mem::take(&mut self.stores);
        for store in stores {
            let ns = store.object.namespace.clone().unwrap_or_default();
            let opened = self
                .store_passwords(&ns)
                .into_iter()
                .find_map(|pw| keystore::read_store(&store.bytes, pw).ok());
            let entry_index = match self.secrets.iter().position(|s| s.object == store.object) {
                Some(i) => i,
                None => {
                    self.secrets.push(CertSecret {
                        object: store.object.clone(),
                        certificates: Vec::new(),
                        unparseable: Vec::new(),
                    });
                    self.secrets.len() - 1
                }
            };
            let Some(opened) = opened else {
                self.secrets[entry_index].unparseable.push(Unparseable {
                    key: store.key.clone(),
                    reason: "is a key store that opens with no password available (the Secret a ServiceCertificate's keystores references, a password Secret of the namespace, or changeit); its certificates could not be checked".into(),
                });
                continue;
            };
            let mut leaves: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
            for c in &opened.certificates {
                if c.trusted {
                    self.config_map_certificates
                        .entry(ns.clone())
                        .or_default()
                        .insert(pki::sha256_fingerprint(&c.der));
                } else {
                    leaves
                        .entry(c.alias.clone())
                        .or_default()
                        .push(c.der.clone());
                }
            }
            for (alias, chain) in leaves {
                let Some(leaf_der) = chain.first() else {
                    continue;
                };
                let secret = &mut self.secrets[entry_index];
                if secret.certificates.iter().any(|f| {
                    f.chain
                        .first()
                        .is_some_and(|d| d.as_ref() == leaf_der.as_slice())
                }) {
                    continue;
                }
                match CertInfo::parse(leaf_der) {
                    Ok(leaf) => secret.certificates.push(FoundCertificate {
                        key: format!("{} ({alias})", store.key),
                        chain: chain
                            .into_iter()
                            .map(rustls_pki_types::CertificateDer::from)
                            .collect(),
                        leaf,
                    }),
                    Err(e) => secret.unparseable.push(Unparseable {
                        key: store.key.clone(),
                        reason: e.to_string(),
                    }),
                }
            }
        }
        self.secrets
            .retain(|s| !s.certificates.is_empty() || !s.unparseable.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{KeySpec, LocalCa, testutil};

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn stores_are_opened_with_the_referenced_password_or_reported() {
        let ca = LocalCa::generate(&testutil::ca_options("Store CA", false)).unwrap();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let mut chain: Vec<Vec<u8>> =
            testutil::issue(&ca, &testutil::profile(), &key, testutil::now())
                .into_iter()
                .map(|c| c.to_vec())
                .collect();
        chain.push(ca.root_der().to_vec());
        let p12 =
            keystore::pkcs12_keystore(&key, &chain, "c", "s3cret", keystore::StoreProfile::Modern)
                .unwrap();
        let trust = keystore::pkcs12_truststore(
            &[ca.root_der()],
            "changeit",
            keystore::StoreProfile::Modern,
        )
        .unwrap();
        let locked = keystore::jks_truststore(&[ca.root_der()], "unknown", 0).unwrap();
        let mut inv = Inventory::default();
        for v in [
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app", "namespace": "a"},
                "data": {"keystore.p12": b64(&p12)}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pw", "namespace": "a"},
                "data": {"password": b64(b"s3cret")}}),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "trust", "namespace": "a"},
                "binaryData": {"truststore.p12": b64(&trust), "truststore.jks": b64(&locked)}}),
            serde_json::json!({"apiVersion": "siths-operator.io/v1alpha1", "kind": "ServiceCertificate",
                "metadata": {"name": "app", "namespace": "a"},
                "spec": {"purpose": "ServerToServer", "hsaId": "SE2321000016-ABC1", "dnsNames": ["api.region.se"],
                    "secretName": "app", "issuerRef": {"kind": "SithsIssuer", "name": "x"},
                    "keystores": {"pkcs12": {"passwordSecretRef": {"name": "pw"}}}}}),
        ] {
            inv.add_value(v).unwrap();
        }
        inv.open_stores();
        let app = inv
            .secrets
            .iter()
            .find(|s| s.object.name == "app")
            .expect("app");
        assert_eq!(app.certificates.len(), 1, "{app:?}");
        assert_eq!(
            app.certificates[0].leaf.hsa_id.as_deref(),
            Some("SE2321000016-ABC1")
        );
        let fp = pki::sha256_fingerprint(ca.root_der().as_ref());
        assert!(
            inv.config_map_certificates["a"].contains(&fp),
            "truststore with changeit"
        );
        let trust = inv
            .secrets
            .iter()
            .find(|s| s.object.name == "trust")
            .expect("reported");
        assert_eq!(trust.unparseable.len(), 1);
        assert_eq!(trust.unparseable[0].key, "truststore.jks");
        assert!(
            !format!("{inv:?}").contains("s3cret"),
            "Debug shows no password"
        );
    }
}
