//! What the Ingress and Gateway controllers share: the memory of what was reported per
//! object (an event is published when something changes, not on every reconcile), the
//! anchors certificates are classified against, the classification of the Secrets a
//! user-facing endpoint serves (`audit` mode), and the UserFacing ServiceCertificates it
//! keeps (`public` mode). The controllers gather their TLS entries (an Ingress's
//! `spec.tls`, a Gateway's listeners) and call these.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use tracing::{debug, info, warn};

use super::{Context, Error, now};
use crate::vocabulary::{FIELD_MANAGER, INGRESS_ISSUER_ANNOTATION, INGRESS_TLS_ANNOTATION};
use crate::{
    api::{self, ServiceCertificate, SithsIssuer},
    audit::{AnchorSet, Inventory, ObjectRef as AuditRef, findings::endpoint_certificate_finding},
    pki::{self, SithsAnchors},
    policy::{
        conditions::is_true,
        ingress::{
            self as decide, Door, Owner, TlsClass, TlsEntry, certificate_object, controlled_by,
            desired_certificates, needs_apply, shared_with_backend,
        },
    },
};

/// How long a computed anchor set is reused.
const ANCHORS_TTL: Duration = Duration::from_secs(30);

/// What a controller remembers of one Ingress or Gateway.
#[derive(Debug, Default)]
pub(super) struct Memory {
    pub(super) uid: String,
    /// Class of each TLS Secret (audit mode).
    classes: BTreeMap<String, TlsClass>,
    /// Keys of the Warning events already published for conditions that still hold.
    reported: BTreeSet<String>,
}

/// One Warning the Ingress or Gateway should carry: a stable key (published once while it holds),
/// the reason and the message.
#[derive(Debug)]
pub(super) struct Note {
    pub(super) key: String,
    pub(super) reason: &'static str,
    pub(super) message: String,
    /// The object the note is also about (the Secret, the ServiceCertificate). Events of one
    /// reason on one object are told apart by it.
    pub(super) related: Option<ObjectReference>,
}

/// A reference to `kind` `name` in `namespace` (for an event's `related`).
fn reference(api_version: &str, kind: &str, namespace: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        ..Default::default()
    }
}

pub(super) fn secret_ref(namespace: &str, name: &str) -> Option<ObjectReference> {
    Some(reference("v1", "Secret", namespace, name))
}

pub(super) fn certificate_ref(namespace: &str, name: &str) -> Option<ObjectReference> {
    Some(reference(
        &ServiceCertificate::api_version(&()),
        "ServiceCertificate",
        namespace,
        name,
    ))
}

/// Publishes a Warning event on `target`. Failing to publish is logged, never fatal.
pub(super) async fn publish(ctx: &Context, target: &ObjectReference, note: Note) {
    let published = ctx
        .events
        .publish(
            target,
            crate::events::Note {
                warning: true,
                reason: note.reason,
                action: "Reconcile",
                note: &note.message,
                related: note.related.as_ref(),
            },
        )
        .await;
    if let Err(e) = published {
        warn!(error = %e, reason = note.reason, "could not publish event");
    }
}

#[derive(Default)]
pub(super) struct Remembered {
    by_ingress: HashMap<(String, String), Memory>,
    counts: BTreeMap<TlsClass, i64>,
}

impl Remembered {
    /// Records the classes and the keys of the current notes of the object `key` with `uid`;
    /// returns the keys not reported before. Keys that no longer hold are forgotten, so
    /// that they are reported again if they come back.
    pub(super) fn update(
        &mut self,
        key: (String, String),
        uid: &str,
        classes: BTreeMap<String, TlsClass>,
        notes: BTreeSet<String>,
    ) -> BTreeSet<String> {
        let m = self.by_ingress.entry(key).or_default();
        if m.uid != uid {
            // Another object of the same name: nothing of the old one applies.
            m.reported.clear();
            m.uid = uid.to_string();
        }
        for c in m.classes.values() {
            *self.counts.entry(*c).or_default() -= 1;
        }
        for c in classes.values() {
            *self.counts.entry(*c).or_default() += 1;
        }
        m.classes = classes;
        let fresh = notes.difference(&m.reported).cloned().collect();
        m.reported = notes;
        fresh
    }

    /// How many objects have notes that still hold.
    pub(super) fn with_notes(&self) -> usize {
        self.by_ingress
            .values()
            .filter(|m| !m.reported.is_empty())
            .count()
    }

    /// Forgets the objects for which `gone` holds.
    pub(super) fn forget(&mut self, gone: impl Fn(&(String, String), &Memory) -> bool) {
        let counts = &mut self.counts;
        self.by_ingress.retain(|k, m| {
            if gone(k, m) {
                for c in m.classes.values() {
                    *counts.entry(*c).or_default() -= 1;
                }
                false
            } else {
                true
            }
        });
    }
}

type CachedAnchors = Option<(Instant, Vec<(String, i64)>, Arc<AnchorSet>)>;

/// The Ready SithsIssuers, by name.
fn ready_issuers(store: &Store<SithsIssuer>) -> Vec<Arc<SithsIssuer>> {
    let mut ready: Vec<Arc<SithsIssuer>> = store
        .state()
        .into_iter()
        .filter(|i| {
            i.status
                .as_ref()
                .is_some_and(|s| is_true(&s.conditions, crate::vocabulary::condition::READY))
        })
        .collect();
    ready.sort_by_key(|i| i.name_any());
    ready
}

/// What the anchors depend on: the Ready issuers and their spec generations (status
/// updates, frequent on a busy issuer, do not count).
fn anchor_key(ready: &[Arc<SithsIssuer>]) -> Vec<(String, i64)> {
    ready
        .iter()
        .map(|i| (i.name_any(), i.metadata.generation.unwrap_or_default()))
        .collect()
}

/// State of the Ingress or Gateway controller.
pub struct DoorContext {
    pub(super) ctx: Arc<Context>,
    pub(super) door: Door,
    pub(super) owned: Store<ServiceCertificate>,
    issuers: super::ready_store::ReadyStore<SithsIssuer>,
    pinned: Vec<SithsAnchors>,
    remembered: Mutex<Remembered>,
    anchors: Mutex<CachedAnchors>,
}

impl std::fmt::Debug for DoorContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorContext")
            .field("door", &self.door)
            .field("pinned", &self.pinned.len())
            .finish_non_exhaustive()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DoorContext {
    /// A new state for `door`, classifying against the issuers in `issuers` and keeping the
    /// certificates in `owned`; the gauge starts at zero.
    pub(super) fn new(
        ctx: Arc<Context>,
        door: Door,
        owned: Store<ServiceCertificate>,
        issuers: super::ready_store::ReadyStore<SithsIssuer>,
    ) -> Self {
        let state = DoorContext {
            pinned: ctx.siths_anchors().to_vec(),
            ctx,
            door,
            owned,
            issuers,
            remembered: Mutex::default(),
            anchors: Mutex::default(),
        };
        state.publish_counts(&BTreeMap::new());
        state
    }

    fn publish_counts(&self, counts: &BTreeMap<TlsClass, i64>) {
        for class in TlsClass::ALL {
            self.ctx.metrics.set_ingress_tls(
                self.door.kind(),
                class.label(),
                counts.get(&class).copied().unwrap_or(0),
            );
        }
    }

    /// Records what the object `key` (namespace, name) with `uid` is now; returns the
    /// notes not published yet.
    pub(super) fn remember(
        &self,
        key: (String, String),
        uid: &str,
        classes: BTreeMap<String, TlsClass>,
        notes: Vec<Note>,
    ) -> Vec<Note> {
        let keys: BTreeSet<String> = notes.iter().map(|n| n.key.clone()).collect();
        let (fresh, counts) = {
            let mut r = lock(&self.remembered);
            let fresh = r.update(key, uid, classes, keys);
            (fresh, r.counts.clone())
        };
        self.publish_counts(&counts);
        notes
            .into_iter()
            .filter(|n| fresh.contains(&n.key))
            .collect()
    }

    /// Forgets the objects for which `gone` holds.
    pub(super) fn forget(&self, gone: impl Fn(&(String, String), &Memory) -> bool) {
        let counts = {
            let mut r = lock(&self.remembered);
            r.forget(gone);
            r.counts.clone()
        };
        self.publish_counts(&counts);
    }

    /// The anchors certificates are classified against: the pinned SITHS CAs of
    /// `--siths-ca-file`, and the anchors of every Ready SithsIssuer (what it issues is
    /// SITHS by definition, including a local CA standing in for SITHS).
    pub(super) async fn anchors(&self) -> Result<Arc<AnchorSet>, Error> {
        let _ = self.issuers.ready().await;
        let ready = ready_issuers(self.issuers.now());
        let key = anchor_key(&ready);
        if let Some((at, k, set)) = &*lock(&self.anchors)
            && *k == key
            && at.elapsed() < ANCHORS_TTL
        {
            return Ok(set.clone());
        }
        let mut set = AnchorSet::new();
        for p in &self.pinned {
            set = set.with_siths(p.clone());
        }
        for issuer in &ready {
            match self.ctx.resolved_issuer(issuer).await? {
                Ok(r) => {
                    let env = match r.environment {
                        api::Environment::Production => pki::Environment::Production,
                        api::Environment::Test => pki::Environment::Test,
                    };
                    set = set.with_siths(SithsAnchors::explicit(r.anchors.clone(), env));
                }
                Err(p) => {
                    debug!(issuer = %issuer.name_any(), reason = p.reason, "issuer not usable for classification")
                }
            }
        }
        debug!(
            pinned = self.pinned.len(),
            ready_issuers = key.len(),
            door = self.door.kind(),
            "anchors for classifying the certificates of user-facing endpoints"
        );
        let set = Arc::new(set);
        *lock(&self.anchors) = Some((Instant::now(), key, set.clone()));
        Ok(set)
    }
}

/// The SithsIssuers, in a small cache for the anchors: the stream to run, the store, and a
/// channel that ticks when the Ready issuers (or their specs) change, so that every object
/// is audited again.
pub(super) fn issuer_watch(
    client: kube::Client,
    what: &'static str,
) -> (
    impl std::future::Future<Output = ()> + Send,
    super::ready_store::ReadyStore<SithsIssuer>,
    futures::channel::mpsc::UnboundedReceiver<()>,
) {
    let (issuers, issuer_writer) = reflector::store::<SithsIssuer>();
    let (anchors_changed, reaudit) = futures::channel::mpsc::unbounded::<()>();
    let issuer_reader = issuers.clone();
    let mut last_key = None;
    let stream = reflector::reflector(
        issuer_writer,
        super::watch(
            Api::<SithsIssuer>::all(client),
            watcher::Config::default().any_semantic(),
        ),
    )
    .for_each(move |ev| {
        if let Err(e) = &ev {
            warn!(error = %crate::telemetry::redact_values(&e.to_string()), controller = what, "watch failed (SithsIssuers)");
        }
        if matches!(
            ev,
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone)
        ) {
            let key = anchor_key(&ready_issuers(&issuer_reader));
            if last_key.as_ref() != Some(&key) {
                if last_key.is_some() {
                    let _ = anchors_changed.unbounded_send(());
                }
                last_key = Some(key);
            }
        }
        async {}
    });
    (
        stream,
        super::ready_store::ReadyStore::new(issuers),
        reaudit,
    )
}

/// The ServiceCertificates a controller keeps (label `label`), in a cache of their own:
/// the store and the stream of changes.
pub(super) fn owned_watch(
    client: kube::Client,
    label: &'static str,
) -> (
    Store<ServiceCertificate>,
    impl futures::Stream<Item = Result<ServiceCertificate, watcher::Error>> + Send,
) {
    let (owned, owned_writer) = reflector::store::<ServiceCertificate>();
    let stream = reflector::reflector(
        owned_writer,
        super::watch(
            Api::<ServiceCertificate>::all(client),
            watcher::Config::default().labels(label).any_semantic(),
        ),
    )
    .touched_objects();
    (owned, stream)
}

/// A Secret a user-facing endpoint serves, to classify in `audit` mode.
#[derive(Debug, Clone)]
pub(super) struct Served {
    /// The Ingress, or the Gateway or ListenerSet of the listener (for the finding).
    pub(super) endpoint: AuditRef,
    /// The Secret's namespace.
    pub(super) namespace: String,
    /// The Secret.
    pub(super) secret: String,
    /// The host names it serves.
    pub(super) hosts: Vec<String>,
}

/// Classifies the certificate of each Secret in `served` (the TLS Secrets of one Ingress or
/// Gateway in `ns`); notes SITHS and untrusted ones. Classes are keyed by Secret name (by
/// `namespace/name` for a Secret in another namespace).
pub(super) async fn audit(
    c: &DoorContext,
    ns: &str,
    served: &[Served],
    notes: &mut Vec<Note>,
) -> Result<BTreeMap<String, TlsClass>, Error> {
    let mut classes = BTreeMap::new();
    if served.is_empty() {
        return Ok(classes);
    }
    let anchors = c.anchors().await?;
    let at = now();
    for entry in served {
        let secret = entry.secret.as_str();
        let class_key = if entry.namespace == ns {
            secret.to_string()
        } else {
            format!("{}/{secret}", entry.namespace)
        };
        if classes.contains_key(&class_key) {
            continue;
        }
        let hosts: Vec<String> = served
            .iter()
            .filter(|t| t.secret == entry.secret && t.namespace == entry.namespace)
            .flat_map(|t| t.hosts.iter().cloned())
            .collect();
        let secrets: Api<Secret> = Api::namespaced(c.ctx.client.clone(), &entry.namespace);
        let found = secrets.get_opt(secret).await?;
        let mut inv = Inventory::default();
        if let Some(s) = &found {
            // Keeps certificates only: the private key is dropped here.
            inv.add_secret(s);
        }
        drop(found);
        let cert = inv
            .secrets
            .first()
            .and_then(|cs| cs.certificates.iter().find(|f| f.key == "tls.crt"));
        let Some(cert) = cert else {
            classes.insert(class_key, TlsClass::Missing);
            continue;
        };
        let class = anchors.classify(&cert.chain, &cert.leaf, at).class;
        let tls_class = TlsClass::of(Some(class));
        classes.insert(class_key.clone(), tls_class);
        let served_text = if entry.namespace == ns {
            format!("Secret {secret}")
        } else {
            format!("Secret {}/{secret}", entry.namespace)
        };
        if let (Some(reason), Some(finding)) = (
            tls_class.event_reason(c.door),
            endpoint_certificate_finding(&entry.endpoint, &served_text, &hosts, cert, class),
        ) {
            let expiry = cert.leaf.not_after.strftime("%Y-%m-%d");
            let kind = c.door.kind();
            notes.push(Note {
                key: format!("class/{class_key}/{}", tls_class.label()),
                reason,
                related: secret_ref(&entry.namespace, secret),
                message: format!(
                    "{} {}, valid until {expiry}. {} To let the operator keep a publicly trusted certificate in {served_text}, set the annotation {INGRESS_TLS_ANNOTATION}: public on the {kind} (and {INGRESS_ISSUER_ANNOTATION}: <PublicIssuer>, unless the operator has a default).",
                    entry.endpoint.display(),
                    finding.message,
                    finding.remediation
                ),
            });
        }
    }
    Ok(classes)
}

/// The mode of an Ingress or Gateway with `annotations`, and the note about an annotation
/// value that is not a mode (`InvalidIngressMode`, `InvalidGatewayMode`).
pub(super) fn mode_of(
    c: &DoorContext,
    annotations: &BTreeMap<String, String>,
) -> (decide::ModeChoice, Vec<Note>) {
    let choice = decide::mode(
        annotations.get(INGRESS_TLS_ANNOTATION).map(String::as_str),
        c.ctx.settings.ingress_mode,
    );
    let mut notes = Vec::new();
    if let Some(message) = choice.message() {
        notes.push(Note {
            key: format!("mode/{}", choice.invalid.as_deref().unwrap_or_default()),
            reason: match c.door {
                Door::Ingress => "InvalidIngressMode",
                Door::Gateway => "InvalidGatewayMode",
            },
            message,
            related: None,
        });
    }
    (choice, notes)
}

/// The PublicIssuer an Ingress or Gateway names (annotation), else the operator's default.
pub(super) fn issuer_of(c: &DoorContext, annotations: &BTreeMap<String, String>) -> Option<String> {
    annotations
        .get(INGRESS_ISSUER_ANNOTATION)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| c.ctx.settings.default_public_issuer.clone())
}

/// Keeps one UserFacing ServiceCertificate per TLS Secret of `owner` in `ns` on `issuer`;
/// removes those of entries gone.
pub(super) async fn public(
    c: &DoorContext,
    ns: &str,
    owner: Owner<'_>,
    issuer: Option<String>,
    tls: &[TlsEntry],
    notes: &mut Vec<Note>,
) -> Result<(), Error> {
    let kind = owner.door.kind();
    let (desired, problems) = desired_certificates(owner.name, tls);
    for p in problems {
        notes.push(Note {
            key: format!("entry/{}", p.key()),
            reason: "TlsEntrySkipped",
            message: p.message(),
            related: match &p {
                decide::EntryProblem::NoHosts { secret }
                | decide::EntryProblem::TooManyHosts { secret, .. } => secret_ref(ns, secret),
                decide::EntryProblem::NoSecret { .. } => None,
            },
        });
    }
    let keep: BTreeSet<String> = desired.iter().map(|d| d.name.clone()).collect();
    remove_owned(c, ns, owner.uid, &keep).await?;
    let api: Api<ServiceCertificate> = Api::namespaced(c.ctx.client.clone(), ns);
    let Some(issuer) = issuer else {
        if !desired.is_empty() {
            notes.push(Note {
                key: "no-issuer".into(),
                reason: "NoPublicIssuer",
                related: None,
                message: format!(
                    "the {kind} is in public mode but names no PublicIssuer: set the annotation {INGRESS_ISSUER_ANNOTATION}: <name> or start the operator with --default-public-issuer; no certificate is requested until then"
                ),
            });
        }
        return Ok(());
    };
    for d in &desired {
        let obj = certificate_object(ns, owner, d, &issuer);
        let cached = c
            .owned
            .get(&ObjectRef::new(&d.name).within(ns))
            .filter(|e| controlled_by(e, owner.uid));
        let existing = match cached {
            Some(e) => Some(e),
            // Not in the cache: created just now, or someone else's object of that name.
            None => api.get_opt(&d.name).await?.map(Arc::new),
        };
        if let Some(e) = &existing
            && !controlled_by(e, owner.uid)
        {
            notes.push(Note {
                key: format!("taken/{}", d.name),
                reason: "CertificateNameTaken",
                related: certificate_ref(ns, &d.name),
                message: format!(
                    "ServiceCertificate {} exists and does not belong to this {kind}; the operator leaves it alone and requests no certificate for Secret {}",
                    d.name, d.secret_name
                ),
            });
            continue;
        }
        if let Some(e) = &existing
            && let Some(message) = shared_with_backend(e)
        {
            notes.push(Note {
                key: format!("shared/{}/{message}", d.name),
                reason: "SharedWithBackend",
                related: certificate_ref(ns, &d.name),
                message: format!("ServiceCertificate {}: {message}", d.name),
            });
        }
        if existing.as_ref().is_some_and(|e| !needs_apply(e, &obj)) {
            continue;
        }
        let patch = serde_json::json!({
            "apiVersion": ServiceCertificate::api_version(&()),
            "kind": ServiceCertificate::kind(&()),
            "metadata": obj.metadata,
            "spec": obj.spec,
        });
        match api
            .patch(
                &d.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => {
                info!(namespace = ns, kind, owner = owner.name, certificate = %d.name, "applied UserFacing ServiceCertificate")
            }
            // Refused by admission (a host the schema does not take): say so, do not retry
            // until the owner changes.
            Err(kube::Error::Api(s)) if s.code == 422 => notes.push(Note {
                key: format!("rejected/{}/{}", d.name, s.message),
                reason: "CertificateRejected",
                related: certificate_ref(ns, &d.name),
                message: format!(
                    "ServiceCertificate {} for Secret {} was refused: {}",
                    d.name, d.secret_name, s.message
                ),
            }),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Deletes the ServiceCertificates the object `uid` controls whose names are not in `keep`.
pub(super) async fn remove_owned(
    c: &DoorContext,
    ns: &str,
    uid: &str,
    keep: &BTreeSet<String>,
) -> Result<(), Error> {
    let stale: Vec<String> = c
        .owned
        .state_filter(|o| o.metadata.namespace.as_deref() == Some(ns) && controlled_by(o, uid))
        .iter()
        .map(|o| o.name_any())
        .filter(|n| !keep.contains(n))
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let api: Api<ServiceCertificate> = Api::namespaced(c.ctx.client.clone(), ns);
    for name in stale {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                info!(namespace = ns, certificate = %name, "deleted ServiceCertificate of a TLS entry that is gone")
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> (String, String) {
        ("team".into(), name.into())
    }

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn notes_are_reported_once_while_they_hold() {
        let mut r = Remembered::default();
        let classes = BTreeMap::from([("web-tls".to_string(), TlsClass::Siths)]);
        let n = set(&["class/web-tls/siths"]);
        assert_eq!(r.update(key("web"), "u1", classes.clone(), n.clone()), n);
        // A resync with nothing changed reports nothing.
        assert!(
            r.update(key("web"), "u1", classes.clone(), n.clone())
                .is_empty()
        );
        assert_eq!(r.counts[&TlsClass::Siths], 1);
        // The class changes: the new one is reported, and the old one again once it is
        // back.
        let public = BTreeMap::from([("web-tls".to_string(), TlsClass::Public)]);
        assert!(r.update(key("web"), "u1", public, set(&[])).is_empty());
        assert_eq!(r.counts[&TlsClass::Siths], 0);
        assert_eq!(r.counts[&TlsClass::Public], 1);
        assert_eq!(r.update(key("web"), "u1", classes.clone(), n.clone()), n);
        // A new Ingress of the same name starts afresh.
        assert_eq!(r.update(key("web"), "u2", classes.clone(), n.clone()), n);
        assert_eq!(r.counts[&TlsClass::Siths], 1);
        assert_eq!(r.counts[&TlsClass::Public], 0);
    }

    #[test]
    fn forgetting_an_ingress_removes_its_counts() {
        let mut r = Remembered::default();
        let two = BTreeMap::from([
            ("a".to_string(), TlsClass::Siths),
            ("b".to_string(), TlsClass::Missing),
        ]);
        r.update(key("web"), "u1", two, set(&[]));
        r.update(
            key("api"),
            "u2",
            BTreeMap::from([("c".to_string(), TlsClass::Siths)]),
            set(&[]),
        );
        assert_eq!(r.counts[&TlsClass::Siths], 2);
        r.forget(|k, _| k.1 == "web");
        assert_eq!(r.counts[&TlsClass::Siths], 1);
        assert_eq!(r.counts[&TlsClass::Missing], 0);
        assert_eq!(r.by_ingress.len(), 1);
    }
}
