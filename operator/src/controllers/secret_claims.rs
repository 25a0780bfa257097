//! Which ServiceCertificates name each Secret: an index beside the ServiceCertificate
//! cache, kept from the same watch events.
//!
//! The gate "one Secret, one owner" ([`crate::policy::gates`]) needs every certificate in
//! the namespace that names the pass's Secret. A pass used to scan the whole cache for
//! them; with 100 000 certificates in one namespace the start-up pass made 10^10
//! comparisons (446 CPU seconds, 294 s until idle, in B8). The index answers from a hash
//! of `namespace/secretName`; callers compare the objects they get (a hash may collide).

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
    sync::{Arc, Mutex, PoisonError},
};

use kube::runtime::watcher::Event;

use crate::api::ServiceCertificate;

/// The index (see the module documentation).
#[derive(Debug, Default)]
pub struct SecretClaims(Mutex<Claims>);

#[derive(Debug, Default)]
struct Claims {
    live: Index,
    /// Filled during a relist; replaces `live` when the relist is done, so a certificate
    /// deleted while the watch was down is forgotten.
    relist: Option<Index>,
}

#[derive(Debug, Default)]
struct Index {
    /// Each certificate (`namespace/name`) and the hash of the Secret it names.
    secret_of: HashMap<Arc<str>, u64>,
    /// Each Secret's hash and the certificates naming it.
    certificates_of: HashMap<u64, Vec<Arc<str>>>,
}

fn secret_hash(namespace: &str, secret: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (namespace, secret).hash(&mut h);
    h.finish()
}

fn certificate_key(c: &ServiceCertificate) -> String {
    super::checked_secrets::key(
        c.metadata.namespace.as_deref().unwrap_or_default(),
        c.metadata.name.as_deref().unwrap_or_default(),
    )
}

impl Index {
    fn set(&mut self, c: &ServiceCertificate) {
        let key = certificate_key(c);
        let hash = secret_hash(
            c.metadata.namespace.as_deref().unwrap_or_default(),
            &c.spec.secret_name,
        );
        if self.secret_of.get(key.as_str()) == Some(&hash) {
            return;
        }
        self.remove(&key);
        let key: Arc<str> = key.into();
        self.certificates_of
            .entry(hash)
            .or_default()
            .push(key.clone());
        self.secret_of.insert(key, hash);
    }

    fn remove(&mut self, key: &str) {
        let Some(old) = self.secret_of.remove(key) else {
            return;
        };
        if let Some(names) = self.certificates_of.get_mut(&old) {
            names.retain(|n| n.as_ref() != key);
            if names.is_empty() {
                self.certificates_of.remove(&old);
            }
        }
    }
}

impl SecretClaims {
    /// Applies one event of the ServiceCertificate watch.
    pub fn apply(&self, event: &Event<ServiceCertificate>) {
        let mut claims = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::Apply(c) => claims.live.set(c),
            Event::Delete(c) => claims.live.remove(&certificate_key(c)),
            Event::Init => claims.relist = Some(Index::default()),
            Event::InitApply(c) => match &mut claims.relist {
                Some(r) => r.set(c),
                None => claims.live.set(c),
            },
            Event::InitDone => {
                if let Some(r) = claims.relist.take() {
                    claims.live = r;
                }
            }
        }
    }

    /// The certificates (namespace, name) that may name Secret `secret` in `namespace`:
    /// every one that does, and rarely one whose Secret's hash is the same.
    pub fn candidates(&self, namespace: &str, secret: &str) -> Vec<(String, String)> {
        let claims = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        claims
            .live
            .certificates_of
            .get(&secret_hash(namespace, secret))
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.split_once('/'))
                    .map(|(ns, name)| (ns.to_string(), name.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(ns: &str, name: &str, secret: &str) -> ServiceCertificate {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "siths-operator.io/v1alpha1", "kind": "ServiceCertificate",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "purpose": "ServerToServer", "dnsNames": ["a.region.se"],
                "secretName": secret, "issuerRef": {"kind": "SithsIssuer", "name": "region"}
            }
        }))
        .expect("certificate")
    }

    fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
        v.sort();
        v
    }

    fn pair(ns: &str, name: &str) -> (String, String) {
        (ns.into(), name.into())
    }

    #[test]
    fn certificates_are_found_by_the_secret_they_name_through_changes_and_relists() {
        let claims = SecretClaims::default();
        claims.apply(&Event::Apply(cert("team", "a", "tls")));
        claims.apply(&Event::Apply(cert("team", "b", "tls")));
        claims.apply(&Event::Apply(cert("other", "c", "tls")));
        claims.apply(&Event::Apply(cert("team", "d", "d-tls")));
        assert_eq!(
            sorted(claims.candidates("team", "tls")),
            vec![pair("team", "a"), pair("team", "b")]
        );
        assert_eq!(claims.candidates("other", "tls"), vec![pair("other", "c")]);
        assert!(claims.candidates("team", "none").is_empty());

        // A certificate that names another Secret leaves the old one's claims.
        claims.apply(&Event::Apply(cert("team", "b", "b-tls")));
        assert_eq!(claims.candidates("team", "tls"), vec![pair("team", "a")]);
        assert_eq!(claims.candidates("team", "b-tls"), vec![pair("team", "b")]);
        // The same again changes nothing.
        claims.apply(&Event::Apply(cert("team", "b", "b-tls")));
        assert_eq!(claims.candidates("team", "b-tls"), vec![pair("team", "b")]);

        claims.apply(&Event::Delete(cert("team", "a", "tls")));
        assert!(claims.candidates("team", "tls").is_empty());

        // A relist: what it does not report is forgotten when it is done, and until then
        // the index answers as before.
        claims.apply(&Event::Init);
        claims.apply(&Event::InitApply(cert("team", "d", "d-tls")));
        assert_eq!(claims.candidates("team", "b-tls"), vec![pair("team", "b")]);
        claims.apply(&Event::InitDone);
        assert!(claims.candidates("team", "b-tls").is_empty());
        assert!(claims.candidates("other", "tls").is_empty());
        assert_eq!(claims.candidates("team", "d-tls"), vec![pair("team", "d")]);
    }
}
