//! What the ServiceCertificate controller last found in each certificate Secret, so that a
//! pass over an unchanged Secret does not read it again.
//!
//! Two maps, both small (names and versions, never data):
//! - [`WatchedVersions`]: the resourceVersion of every operator-labelled certificate Secret,
//!   as its metadata watch reports it (deletions and relists included; the same type keeps
//!   the versions of key store password Secrets and of CertificateOrders);
//! - [`CheckedSecrets`]: per certificate, the Secret version a pass last read or wrote and
//!   what that pass concluded from it.
//!
//! A pass whose certificate (generation), issuer (the digest of the resolved issuer) and
//! Secret (resourceVersion) are all unchanged since then reuses the conclusion; anything
//! else (a Secret the watch has not reported, one changed or deleted since, a new
//! generation, an issuer that resolves differently) reads the Secret as before.
//!
//! The conclusion is also written to the certificate's status (`status.secretCheck`,
//! [`Checked::to_status`]; certificates without key stores), so that a restarted operator reads only the Secrets that changed
//! while it was away ([`Checked::from_status`]), once the Secrets' watch has listed them
//! ([`WatchedVersions::wait_listed`]). Both copies are judged by one rule, [`Checked::holds`].

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use jiff::Timestamp;
use kube::{Resource, ResourceExt, runtime::watcher::Event};

use crate::api::{SecretCheck, ServiceCertificateStatus};

/// The key of object `name` in `namespace` in the maps of this module and of
/// [`super::secret_claims`].
pub(super) fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The resourceVersion of each object a watch reports (`namespace/name`).
#[derive(Debug, Default)]
pub struct WatchedVersions {
    versions: Mutex<Versions>,
    /// Woken when a list of the watch is complete.
    listed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Versions {
    live: HashMap<String, String>,
    /// Filled during a relist; replaces `live` when the relist is done, so a Secret deleted
    /// while the watch was down is forgotten.
    relist: Option<HashMap<String, String>>,
    /// Whether a list has completed since the process started.
    listed: bool,
}

impl WatchedVersions {
    /// Applies one watch event.
    pub fn apply<K: Resource>(&self, event: &Event<K>) {
        let mut v = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
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
                v.listed = true;
                self.listed.notify_waiters();
            }
        }
    }

    /// Applies one event of a watch of every object as the event a watch of the `selected`
    /// ones (a label selector) would have sent, and returns that event; `None` where such a
    /// watch would have sent nothing. An object that stops being selected is deleted, as the
    /// apiserver reports it to a watch with a selector. This lets the ServiceCertificate
    /// controller read the one Secret watch it shares (see [`super::shared_watch`]).
    pub fn apply_selected<K: Resource>(
        &self,
        event: Event<K>,
        selected: impl Fn(&K) -> bool,
    ) -> Option<Event<K>> {
        let known = |o: &K| {
            self.version(&o.namespace().unwrap_or_default(), &o.name_any())
                .is_some()
        };
        let event = match event {
            Event::Apply(o) if selected(&o) => Event::Apply(o),
            Event::Apply(o) | Event::Delete(o) if known(&o) || selected(&o) => Event::Delete(o),
            Event::Apply(_) | Event::Delete(_) => return None,
            Event::InitApply(o) if !selected(&o) => return None,
            event => event,
        };
        self.apply(&event);
        Some(event)
    }

    /// Whether the watch has listed every Secret once (before, a Secret missing from the
    /// map may just not be reported yet).
    pub fn listed(&self) -> bool {
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .listed
    }

    /// Waits until the watch has listed every Secret once, at most `timeout`; whether it has.
    pub async fn wait_listed(&self, timeout: Duration) -> bool {
        let notified = self.listed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.listed() {
            return true;
        }
        tokio::time::timeout(timeout, notified).await.is_ok() || self.listed()
    }

    /// The version the watch last reported for Secret `name` in `namespace`.
    pub fn version(&self, namespace: &str, name: &str) -> Option<String> {
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .live
            .get(&key(namespace, name))
            .cloned()
    }
}

/// What a pass concluded from a certificate Secret it read or wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The Secret's resourceVersion then.
    pub secret_version: String,
    /// The certificate's generation then.
    pub generation: Option<i64>,
    /// The digest of the resolved issuer the chain was checked against.
    pub issuer_digest: String,
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

impl Checked {
    /// Whether this conclusion still holds: the certificate's generation, the issuer's
    /// digest, the Secret's version (`watched`, from [`WatchedVersions`]) and the password
    /// Secrets' versions (`passwords`; `None`: one is not watched) are what they were then.
    pub fn holds(
        &self,
        generation: Option<i64>,
        issuer_digest: &str,
        watched: Option<&str>,
        passwords: Option<&[String]>,
    ) -> bool {
        self.generation == generation
            && self.issuer_digest == issuer_digest
            && watched == Some(self.secret_version.as_str())
            && passwords == Some(self.passwords.as_slice())
    }

    /// The conclusion as the certificate's status records it (`status.secretCheck`; the
    /// controller records it only for certificates without key stores, so it carries no
    /// password versions).
    pub fn to_status(&self) -> Option<SecretCheck> {
        Some(SecretCheck {
            secret_version: self.secret_version.clone(),
            generation: self.generation?,
            issuer_digest: self.issuer_digest.clone(),
            issued_at: self.issued_at.to_string(),
        })
    }

    /// The conclusion a status records: its `secretCheck` with the revision and renewal
    /// time beside it. `None` when any of them is missing or unreadable.
    pub fn from_status(status: &ServiceCertificateStatus) -> Option<Checked> {
        let stamp = status.secret_check.as_ref()?;
        Some(Checked {
            secret_version: stamp.secret_version.clone(),
            generation: Some(stamp.generation),
            issuer_digest: stamp.issuer_digest.clone(),
            revision: status.revision?,
            renew_at: status.renewal_time.as_deref()?.parse().ok()?,
            issued_at: stamp.issued_at.parse().ok()?,
            passwords: Vec::new(),
        })
    }
}

/// The last [`Checked`] per certificate (`namespace/name`).
#[derive(Debug, Default)]
pub struct CheckedSecrets(Mutex<HashMap<String, Checked>>);

impl CheckedSecrets {
    /// Remembers what a pass concluded about `namespace/cert`'s Secret. When the map holds
    /// far more keys than `live` certificates exist, keys no longer `alive` are dropped.
    pub fn remember(
        &self,
        namespace: &str,
        cert: &str,
        checked: Checked,
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

    /// The last conclusion about `namespace/cert`, if it still [holds](Checked::holds).
    pub fn unchanged(
        &self,
        namespace: &str,
        cert: &str,
        generation: Option<i64>,
        issuer_digest: &str,
        watched: Option<&str>,
        passwords: Option<&[String]>,
    ) -> Option<Checked> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&key(namespace, cert))
            .filter(|c| c.holds(generation, issuer_digest, watched, passwords))
            .cloned()
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

    fn labelled(name: &str, rv: &str) -> Secret {
        let mut s = secret(name, rv);
        s.metadata.labels = Some([("picked".to_string(), "yes".to_string())].into());
        s
    }

    fn picked(s: &Secret) -> bool {
        s.labels().contains_key("picked")
    }

    /// What each event came out as: `None`, or its kind and object name.
    fn outcome(v: &WatchedVersions, event: Event<Secret>) -> Option<(&'static str, String)> {
        v.apply_selected(event, picked).map(|e| match e {
            Event::Apply(s) => ("Apply", s.name_any()),
            Event::Delete(s) => ("Delete", s.name_any()),
            Event::InitApply(s) => ("InitApply", s.name_any()),
            Event::Init => ("Init", String::new()),
            Event::InitDone => ("InitDone", String::new()),
        })
    }

    #[test]
    fn a_watch_of_everything_reads_as_a_watch_with_a_selector() {
        let v = WatchedVersions::default();
        let ev = |kind: &'static str, name: &str| Some((kind, name.to_string()));
        assert_eq!(outcome(&v, Event::Init), ev("Init", ""));
        assert_eq!(
            outcome(&v, Event::InitApply(labelled("a", "1"))),
            ev("InitApply", "a")
        );
        assert_eq!(outcome(&v, Event::InitApply(secret("other", "2"))), None);
        assert_eq!(outcome(&v, Event::InitDone), ev("InitDone", ""));
        assert!(v.listed());
        assert_eq!(v.version("ns", "a").as_deref(), Some("1"));
        assert_eq!(v.version("ns", "other"), None);
        // Changes of an object never selected, and its deletion: nothing.
        assert_eq!(outcome(&v, Event::Apply(secret("other", "3"))), None);
        assert_eq!(outcome(&v, Event::Delete(secret("other", "3"))), None);
        // A selected object changes, then loses its label: deleted, and forgotten.
        assert_eq!(
            outcome(&v, Event::Apply(labelled("a", "4"))),
            ev("Apply", "a")
        );
        assert_eq!(v.version("ns", "a").as_deref(), Some("4"));
        assert_eq!(
            outcome(&v, Event::Apply(secret("a", "5"))),
            ev("Delete", "a")
        );
        assert_eq!(v.version("ns", "a"), None);
        assert_eq!(outcome(&v, Event::Apply(secret("a", "6"))), None);
        // It gets the label again, then is deleted.
        assert_eq!(
            outcome(&v, Event::Apply(labelled("a", "7"))),
            ev("Apply", "a")
        );
        assert_eq!(
            outcome(&v, Event::Delete(labelled("a", "7"))),
            ev("Delete", "a")
        );
        assert_eq!(v.version("ns", "a"), None);
    }

    #[test]
    fn versions_follow_applies_deletes_and_relists() {
        let v = WatchedVersions::default();
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

    #[test]
    fn a_conclusion_holds_only_while_certificate_issuer_and_secret_are_unchanged() {
        let checked = CheckedSecrets::default();
        let first = "DIGEST1";
        let now = Timestamp::now();
        let versions = ["4".to_string()];
        let pw = Some(versions.as_slice());
        checked.remember(
            "ns",
            "c",
            Checked {
                secret_version: "7".into(),
                generation: Some(2),
                issuer_digest: first.into(),
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
                .unchanged("ns", "c", Some(2), first, Some("7"), pw)
                .is_some()
        );
        assert!(
            checked
                .unchanged("ns", "c", Some(2), first, Some("8"), pw)
                .is_none(),
            "the Secret changed"
        );
        assert!(
            checked
                .unchanged("ns", "c", Some(2), first, None, pw)
                .is_none(),
            "the Secret is gone or not reported yet"
        );
        assert!(
            checked
                .unchanged("ns", "c", Some(3), first, Some("7"), pw)
                .is_none(),
            "a new spec"
        );
        assert!(
            checked
                .unchanged("ns", "c", Some(2), first, Some("7"), Some(&["5".into()]))
                .is_none(),
            "a password Secret changed"
        );
        assert!(
            checked
                .unchanged("ns", "c", Some(2), first, Some("7"), None)
                .is_none(),
            "a password Secret is not watched"
        );
        let second = "DIGEST2";
        assert!(
            checked
                .unchanged("ns", "c", Some(2), second, Some("7"), pw)
                .is_none(),
            "the issuer resolves differently"
        );
        assert!(
            checked
                .unchanged("ns", "d", Some(2), first, Some("7"), pw)
                .is_none()
        );
        checked.forget("ns", "c");
        assert!(
            checked
                .unchanged("ns", "c", Some(2), first, Some("7"), pw)
                .is_none()
        );
    }

    #[test]
    fn the_status_keeps_a_conclusion_across_a_restart_under_the_same_rule() {
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let checked = Checked {
            secret_version: "7".into(),
            generation: Some(2),
            issuer_digest: "D".into(),
            revision: 3,
            renew_at: now,
            issued_at: now,
            passwords: Vec::new(),
        };
        let mut status = ServiceCertificateStatus {
            revision: Some(3),
            renewal_time: Some(now.to_string()),
            secret_check: checked.to_status(),
            ..Default::default()
        };
        let back = Checked::from_status(&status).expect("read back");
        assert_eq!(back, checked);
        let pw: [String; 0] = [];
        assert!(back.holds(Some(2), "D", Some("7"), Some(&pw)));
        assert!(
            !back.holds(Some(2), "E", Some("7"), Some(&pw)),
            "another issuer"
        );
        assert!(
            !back.holds(Some(2), "D", Some("8"), Some(&pw)),
            "the Secret changed"
        );
        assert!(!back.holds(Some(2), "D", None, Some(&pw)), "not listed yet");
        // Without the revision or the renewal time beside it, a stamp says nothing.
        status.revision = None;
        assert_eq!(Checked::from_status(&status), None);
        status.revision = Some(3);
        status.renewal_time = Some("not a time".into());
        assert_eq!(Checked::from_status(&status), None);
        // A certificate without a generation is not stamped.
        assert_eq!(
            Checked {
                generation: None,
                ..checked
            }
            .to_status(),
            None
        );
    }

    #[tokio::test]
    async fn waiting_for_the_first_list_ends_when_it_is_done_or_times_out() {
        let v = std::sync::Arc::new(WatchedVersions::default());
        assert!(!v.listed());
        assert!(!v.wait_listed(Duration::from_millis(20)).await);
        let waiter = tokio::spawn({
            let v = v.clone();
            async move { v.wait_listed(Duration::from_secs(10)).await }
        });
        v.apply(&Event::<Secret>::Init);
        v.apply(&Event::InitApply(secret("a", "1")));
        tokio::task::yield_now().await;
        assert!(!v.listed(), "listed before the list was done");
        v.apply(&Event::<Secret>::InitDone);
        assert!(waiter.await.unwrap());
        assert!(v.wait_listed(Duration::ZERO).await);
    }
}
