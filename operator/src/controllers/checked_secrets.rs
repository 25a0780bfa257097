//! What the ServiceCertificate controller last found in each certificate Secret, so that a
//! pass over an unchanged Secret does not read it again.
//!
//! Two maps, both small (names and versions, never data):
//! - [`SecretVersions`]: the resourceVersion of every operator-labelled certificate Secret,
//!   as its metadata watch reports it (deletions and relists included);
//! - [`CheckedSecrets`]: per certificate, the Secret version a pass last read or wrote and
//!   what that pass concluded from it.
//!
//! A pass whose certificate (generation), issuer (the same resolved issuer) and Secret
//! (resourceVersion) are all unchanged since then reuses the conclusion; anything else (a
//! Secret the watch has not reported, one changed or deleted since, a relist in progress at
//! start-up, a new generation, a re-resolved issuer) reads the Secret as before.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
};

use jiff::Timestamp;
use kube::{Resource, ResourceExt, runtime::watcher::Event};

use super::siths_issuer::ResolvedIssuer;

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The resourceVersion of each watched Secret (`namespace/name`).
#[derive(Debug, Default)]
pub struct SecretVersions(Mutex<Versions>);

#[derive(Debug, Default)]
struct Versions {
    live: HashMap<String, String>,
    /// Filled during a relist; replaces `live` when the relist is done, so a Secret deleted
    /// while the watch was down is forgotten.
    relist: Option<HashMap<String, String>>,
}

impl SecretVersions {
    /// Applies one watch event.
    pub fn apply<K: Resource>(&self, event: &Event<K>) {
        let mut v = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = |o: &K| {
            (
                key(&o.namespace().unwrap_or_default(), &o.name_any()),
                o.resource_version().unwrap_or_default(),
            )
        };
        match event {
            Event::Apply(o) => {
                let (k, rv) = entry(o);
                v.live.insert(k, rv);
            }
            Event::Delete(o) => {
                let (k, _) = entry(o);
                v.live.remove(&k);
            }
            Event::Init => v.relist = Some(HashMap::new()),
            Event::InitApply(o) => {
                let (k, rv) = entry(o);
                match &mut v.relist {
                    Some(r) => {
                        r.insert(k, rv);
                    }
                    None => {
                        v.live.insert(k, rv);
                    }
                }
            }
            Event::InitDone => {
                if let Some(r) = v.relist.take() {
                    v.live = r;
                }
            }
        }
    }

    /// The version the watch last reported for Secret `name` in `namespace`.
    pub fn version(&self, namespace: &str, name: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .live
            .get(&key(namespace, name))
            .cloned()
    }
}

/// What a pass concluded from a certificate Secret it read or wrote.
#[derive(Debug)]
pub struct Checked<I = ResolvedIssuer> {
    /// The Secret's resourceVersion then.
    pub secret_version: String,
    /// The certificate's generation then.
    pub generation: Option<i64>,
    /// The resolved issuer the chain was checked against.
    pub issuer: Weak<I>,
    /// The revision the Secret holds.
    pub revision: u32,
    /// When that revision is to be renewed.
    pub renew_at: Timestamp,
    /// When that revision was issued (the Secret's annotation, or the leaf's notBefore).
    pub issued_at: Timestamp,
    /// The watched versions of the key store password Secrets, taken before the pass
    /// read them (empty without key stores).
    pub passwords: Vec<String>,
}

/// The last [`Checked`] per certificate (`namespace/name`).
#[derive(Debug)]
pub struct CheckedSecrets<I = ResolvedIssuer>(Mutex<HashMap<String, Checked<I>>>);

impl<I> Default for CheckedSecrets<I> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<I> CheckedSecrets<I> {
    /// Remembers what a pass concluded about `namespace/cert`'s Secret. When the map holds
    /// far more keys than `live` certificates exist, keys no longer `alive` are dropped.
    pub fn remember(
        &self,
        namespace: &str,
        cert: &str,
        checked: Checked<I>,
        live: usize,
        alive: impl Fn(&str) -> bool,
    ) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(key(namespace, cert), checked);
        if map.len() > 2 * live + 1024 {
            map.retain(|k, _| alive(k));
        }
    }

    /// Forgets `namespace/cert` (its Secret is to be read on the next pass).
    pub fn forget(&self, namespace: &str, cert: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key(namespace, cert));
    }

    /// The last conclusion about `namespace/cert`, if the certificate's generation, the
    /// issuer, the Secret's version (`watched`, from [`SecretVersions`]) and the password
    /// Secrets' versions (`passwords`; `None`: one is not watched) are what they were then.
    pub fn unchanged(
        &self,
        namespace: &str,
        cert: &str,
        generation: Option<i64>,
        issuer: &Arc<I>,
        watched: Option<&str>,
        passwords: Option<&[String]>,
    ) -> Option<Checked<I>> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let c = map.get(&key(namespace, cert))?;
        (c.generation == generation
            && std::ptr::eq(c.issuer.as_ptr(), Arc::as_ptr(issuer))
            && watched == Some(c.secret_version.as_str())
            && passwords == Some(c.passwords.as_slice()))
        .then(|| Checked {
            secret_version: c.secret_version.clone(),
            generation: c.generation,
            issuer: c.issuer.clone(),
            revision: c.revision,
            renew_at: c.renew_at,
            issued_at: c.issued_at,
            passwords: c.passwords.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::ObjectMeta;

    fn secret(name: &str, rv: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn versions_follow_applies_deletes_and_relists() {
        let v = SecretVersions::default();
        v.apply(&Event::Apply(secret("a", "1")));
        v.apply(&Event::Apply(secret("b", "2")));
        assert_eq!(v.version("ns", "a").as_deref(), Some("1"));
        v.apply(&Event::Apply(secret("a", "3")));
        assert_eq!(v.version("ns", "a").as_deref(), Some("3"));
        v.apply(&Event::Delete(secret("a", "3")));
        assert_eq!(v.version("ns", "a"), None);
        // A relist: the old view holds until it is done; a Secret deleted while the watch
        // was down is then gone.
        v.apply(&Event::<Secret>::Init);
        v.apply(&Event::InitApply(secret("c", "5")));
        assert_eq!(v.version("ns", "b").as_deref(), Some("2"));
        assert_eq!(v.version("ns", "c"), None);
        v.apply(&Event::<Secret>::InitDone);
        assert_eq!(v.version("ns", "b"), None, "deleted during the outage");
        assert_eq!(v.version("ns", "c").as_deref(), Some("5"));
    }

    /// Any value stands for a resolved issuer: only its identity counts.
    fn issuer() -> Arc<String> {
        Arc::new("issuer".to_string())
    }

    #[test]
    fn a_conclusion_holds_only_while_certificate_issuer_and_secret_are_unchanged() {
        let checked = CheckedSecrets::default();
        let first = issuer();
        let now = Timestamp::now();
        let versions = ["4".to_string()];
        let pw = Some(versions.as_slice());
        checked.remember(
            "ns",
            "c",
            Checked {
                secret_version: "7".into(),
                generation: Some(2),
                issuer: Arc::downgrade(&first),
                revision: 1,
                renew_at: now,
                issued_at: now,
                passwords: vec!["4".into()],
            },
            1,
            |_| true,
        );
        assert!(
            checked
                .unchanged("ns", "c", Some(2), &first, Some("7"), pw)
                .is_some()
        );
        assert!(
            checked
                .unchanged("ns", "c", Some(2), &first, Some("8"), pw)
                .is_none(),
            "the Secret changed"
        );
        assert!(
            checked
                .unchanged("ns", "c", Some(2), &first, None, pw)
                .is_none(),
            "the Secret is gone or not reported yet"
        );
        assert!(
            checked
                .unchanged("ns", "c", Some(3), &first, Some("7"), pw)
                .is_none(),
            "a new spec"
        );
        assert!(
            checked
                .unchanged("ns", "c", Some(2), &first, Some("7"), Some(&["5".into()]))
                .is_none(),
            "a password Secret changed"
        );
        assert!(
            checked
                .unchanged("ns", "c", Some(2), &first, Some("7"), None)
                .is_none(),
            "a password Secret is not watched"
        );
        let second = issuer();
        assert!(
            checked
                .unchanged("ns", "c", Some(2), &second, Some("7"), pw)
                .is_none(),
            "the issuer was resolved again"
        );
        assert!(
            checked
                .unchanged("ns", "d", Some(2), &first, Some("7"), pw)
                .is_none()
        );
        checked.forget("ns", "c");
        assert!(
            checked
                .unchanged("ns", "c", Some(2), &first, Some("7"), pw)
                .is_none()
        );
    }
}
