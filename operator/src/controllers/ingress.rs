//! Ingresses (`networking.k8s.io/v1`): every TLS entry is a user-facing endpoint.
//!
//! The mode of an Ingress comes from its `siths-operator.io/tls` annotation, else the
//! operator's `--ingress-mode`:
//! - `audit`: reads the certificate of each TLS Secret and classifies it with the audit's
//!   classifier ([`crate::audit::AnchorSet`], [`ingress_certificate_finding`]); a SITHS
//!   certificate gets a Warning event `SithsCertificateOnUserFacingIngress`, one that is
//!   not publicly trusted `NotPubliclyTrustedOnIngress`, and the
//!   `siths_ingress_tls_certificates` gauge counts them by class.
//! - `public`: keeps one `UserFacing` ServiceCertificate per Secret, owned by the Ingress,
//!   writing into the Secret the Ingress already names. The Ingress is never written.
//! - `ignore`: nothing (certificates it owned are removed).
//!
//! Watches are narrow: Ingresses; Secrets by metadata only (no content, no cache), mapped to
//! the Ingresses naming them; the ServiceCertificates this controller labelled. A Secret's
//! content is read with a `get` only when an Ingress in `audit` mode names it.
//!
//! Events are published when something changes (a class, a problem), not on every
//! reconcile: what was reported is remembered in memory per Ingress. A restarted operator
//! reports the current state once.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::{
    core::v1::{ObjectReference, Secret},
    networking::v1::Ingress,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
    core::PartialObjectMeta,
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use tracing::{debug, info, warn};

use super::{Context, Error, IngressMode, measured, now};
use crate::vocabulary::{FIELD_MANAGER, INGRESS_ISSUER_ANNOTATION, INGRESS_TLS_ANNOTATION};
use crate::{
    api::{self, ServiceCertificate, SithsIssuer},
    audit::{
        AnchorSet, Inventory, ObjectRef as AuditRef, findings::ingress_certificate_finding,
        objects::IngressTls,
    },
    pki::{self, SithsAnchors},
    policy::{
        conditions::is_true,
        ingress::{
            self as decide, INGRESS_LABEL, Owner, TlsClass, certificate_object, controlled_by,
            desired_certificates, needs_apply, shared_with_backend,
        },
    },
};

/// How often an Ingress in `audit` mode is looked at again without a change (certificates
/// expire, issuers and anchors change). Reads only.
const AUDIT_RESYNC: Duration = Duration::from_secs(3600);

/// How long a computed anchor set is reused.
const ANCHORS_TTL: Duration = Duration::from_secs(30);

/// What the controller remembers of one Ingress.
#[derive(Debug, Default)]
struct Memory {
    uid: String,
    /// Class of each TLS Secret (audit mode).
    classes: BTreeMap<String, TlsClass>,
    /// Keys of the Warning events already published for conditions that still hold.
    reported: BTreeSet<String>,
}

/// One Warning the Ingress should carry: a stable key (published once while it holds),
/// the reason and the message.
#[derive(Debug)]
struct Note {
    key: String,
    reason: &'static str,
    message: String,
    /// The object the note is also about (the Secret, the ServiceCertificate). Events of one
    /// reason on one Ingress are told apart by it.
    related: Option<ObjectReference>,
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

fn secret_ref(namespace: &str, name: &str) -> Option<ObjectReference> {
    Some(reference("v1", "Secret", namespace, name))
}

fn certificate_ref(namespace: &str, name: &str) -> Option<ObjectReference> {
    Some(reference(
        &ServiceCertificate::api_version(&()),
        "ServiceCertificate",
        namespace,
        name,
    ))
}

/// Publishes a Warning event on `ing`. Failing to publish is logged, never fatal.
async fn publish(ctx: &Context, ing: &Ingress, note: Note) {
    let published = ctx
        .events
        .publish(
            &ing.object_ref(&()),
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
struct Remembered {
    by_ingress: HashMap<(String, String), Memory>,
    counts: BTreeMap<TlsClass, i64>,
}

impl Remembered {
    /// Records the classes and the keys of the current notes of Ingress `key` with `uid`;
    /// returns the keys not reported before. Keys that no longer hold are forgotten, so
    /// that they are reported again if they come back.
    fn update(
        &mut self,
        key: (String, String),
        uid: &str,
        classes: BTreeMap<String, TlsClass>,
        notes: BTreeSet<String>,
    ) -> BTreeSet<String> {
        let m = self.by_ingress.entry(key).or_default();
        if m.uid != uid {
            // Another Ingress of the same name: nothing of the old one applies.
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

    /// Forgets the Ingresses for which `gone` holds.
    fn forget(&mut self, gone: impl Fn(&(String, String), &Memory) -> bool) {
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

/// State of the Ingress controller.
pub struct IngressContext {
    ctx: Arc<Context>,
    owned: Store<ServiceCertificate>,
    issuers: Store<SithsIssuer>,
    pinned: Vec<SithsAnchors>,
    remembered: Mutex<Remembered>,
    anchors: Mutex<CachedAnchors>,
}

impl std::fmt::Debug for IngressContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressContext")
            .field("pinned", &self.pinned.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl IngressContext {
    fn publish_counts(&self, counts: &BTreeMap<TlsClass, i64>) {
        for class in TlsClass::ALL {
            self.ctx
                .metrics
                .set_ingress_tls(class.label(), counts.get(&class).copied().unwrap_or(0));
        }
    }

    /// Records what the Ingress `key` (namespace, name) with `uid` is now; returns the
    /// notes not published yet.
    fn remember(
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

    /// Forgets the Ingresses for which `gone` holds.
    fn forget(&self, gone: impl Fn(&(String, String), &Memory) -> bool) {
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
    async fn anchors(&self) -> Result<Arc<AnchorSet>, Error> {
        let _ = self.issuers.wait_until_ready().await;
        let ready = ready_issuers(&self.issuers);
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
            "anchors for classifying Ingress certificates"
        );
        let set = Arc::new(set);
        *lock(&self.anchors) = Some((Instant::now(), key, set.clone()));
        Ok(set)
    }
}

fn tls_secret_names(ing: &Ingress) -> impl Iterator<Item = &str> {
    ing.spec
        .iter()
        .flat_map(|s| s.tls.iter().flatten())
        .filter_map(|t| t.secret_name.as_deref())
}

/// The Ingresses in `store` that name Secret `meta` in a TLS entry.
fn ingresses_naming(
    store: &Store<Ingress>,
    meta: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<Ingress>> {
    let (Some(ns), Some(name)) = (
        meta.metadata.namespace.as_deref(),
        meta.metadata.name.as_deref(),
    ) else {
        return Vec::new();
    };
    // Filtered under the store's lock: this runs for every Secret event in the cluster.
    store
        .state_filter(|i| {
            i.metadata.namespace.as_deref() == Some(ns) && tls_secret_names(i).any(|s| s == name)
        })
        .iter()
        .map(|i| ObjectRef::from_obj(&**i))
        .collect()
}

/// Runs the Ingress controller until `shutdown`.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (ingresses, ingress_writer) = reflector::store::<Ingress>();
    let (owned, owned_writer) = reflector::store::<ServiceCertificate>();
    let (issuers, issuer_writer) = reflector::store::<SithsIssuer>();
    let issuers_for_state = issuers.clone();
    let state = Arc::new(IngressContext {
        pinned: ctx.siths_anchors().to_vec(),
        ctx,
        owned: owned.clone(),
        issuers: issuers_for_state,
        remembered: Mutex::default(),
        anchors: Mutex::default(),
    });
    state.publish_counts(&BTreeMap::new());

    // Ingresses, with deletions seen so that the memory of a deleted Ingress goes too.
    let on_event = state.clone();
    let reader = ingresses.clone();
    let ingress_stream = reflector::reflector(
        ingress_writer,
        watcher(
            Api::<Ingress>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff(),
    )
    .inspect(move |ev| match ev {
        Ok(watcher::Event::Delete(ing)) => {
            let (ns, name) = (ing.namespace().unwrap_or_default(), ing.name_any());
            on_event.forget(|k, _| k.0 == ns && k.1 == name);
        }
        Ok(watcher::Event::InitDone) => {
            // After a re-list, Ingresses deleted meanwhile are absent from the store.
            on_event.forget(|k, m| {
                reader
                    .get(&ObjectRef::new(&k.1).within(&k.0))
                    .is_none_or(|i| i.uid().as_deref() != Some(m.uid.as_str()))
            });
        }
        _ => {}
    })
    .applied_objects();

    // The certificates this controller keeps, in a cache of their own (label selector).
    let owned_stream = reflector::reflector(
        owned_writer,
        watcher(
            Api::<ServiceCertificate>::all(client.clone()),
            watcher::Config::default()
                .labels(INGRESS_LABEL)
                .any_semantic(),
        )
        .default_backoff(),
    )
    .touched_objects();

    // Secrets by metadata only: a trigger, never a cache.
    let mapper_store = ingresses.clone();
    let secret_stream = watcher(
        Api::<PartialObjectMeta<Secret>>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .touched_objects();

    // SithsIssuers: a small cache for the anchors; when an issuer becomes Ready (or
    // changes its spec, or goes) every Ingress is audited again.
    let (anchors_changed, reaudit) = futures::channel::mpsc::unbounded::<()>();
    let issuer_reader = issuers.clone();
    let mut last_key = None;
    let issuer_stream = reflector::reflector(
        issuer_writer,
        watcher(
            Api::<SithsIssuer>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff(),
    )
    .for_each(move |ev| {
        if let Err(e) = &ev {
            warn!(error = %crate::telemetry::redact_values(&e.to_string()), "Ingress controller watch failed (SithsIssuers)");
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

    info!("watching Ingresses (and Secrets by metadata)");
    let controller = Controller::for_stream(ingress_stream, ingresses)
        .owns_stream(owned_stream)
        .watches_stream(secret_stream, move |meta| {
            ingresses_naming(&mapper_store, &meta)
        })
        .reconcile_all_on(reaudit)
        .graceful_shutdown_on(shutdown)
        .run(
            |ing, c| measured(c.ctx.clone(), "Ingress", reconcile(ing, c)),
            |_, e, _| {
                warn!(error = %e, label = e.metric_label(), "Ingress reconcile failed");
                Action::requeue(Duration::from_secs(30))
            },
            state,
        )
        .for_each(|r| async move {
            // Reconcile errors are logged by the error policy; a failing watch (missing
            // permission, for one) only shows up here.
            if let Err(kube::runtime::controller::Error::QueueError(e)) = r {
                warn!(error = %crate::telemetry::redact_values(&e.to_string()), "Ingress controller watch failed");
            }
        });
    tokio::select! {
        _ = controller => {}
        _ = issuer_stream => {}
    }
}

async fn reconcile(ing: Arc<Ingress>, c: Arc<IngressContext>) -> Result<Action, Error> {
    let ns = ing
        .namespace()
        .ok_or(Error::Incomplete("metadata.namespace"))?;
    let name = ing.name_any();
    let uid = ing.uid().ok_or(Error::Incomplete("metadata.uid"))?;
    if ing.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let choice = decide::mode(
        ing.annotations()
            .get(INGRESS_TLS_ANNOTATION)
            .map(String::as_str),
        c.ctx.settings.ingress_mode,
    );
    let mut notes = Vec::new();
    if let Some(message) = choice.message() {
        notes.push(Note {
            key: format!("mode/{}", choice.invalid.as_deref().unwrap_or_default()),
            reason: "InvalidIngressMode",
            message,
            related: None,
        });
    }
    let tls = ing
        .spec
        .as_ref()
        .and_then(|s| s.tls.as_deref())
        .unwrap_or_default();
    let mut classes = BTreeMap::new();
    let owner = Owner {
        name: &name,
        uid: &uid,
    };
    match choice.mode {
        IngressMode::Public => public(&c, &ing, &ns, owner, tls, &mut notes).await?,
        mode => {
            // Certificates kept while the Ingress was public go when it leaves `public`.
            remove_owned(&c, &ns, &uid, &BTreeSet::new()).await?;
            if mode == IngressMode::Audit {
                classes = audit(&c, &ns, &name, tls, &mut notes).await?;
            }
        }
    }
    let fresh = c.remember((ns, name), &uid, classes, notes);
    for n in fresh {
        publish(&c.ctx, &ing, n).await;
    }
    Ok(match choice.mode {
        IngressMode::Audit => Action::requeue(AUDIT_RESYNC),
        _ => Action::await_change(),
    })
}

/// Classifies the certificate of each TLS Secret; notes SITHS and untrusted ones.
async fn audit(
    c: &IngressContext,
    ns: &str,
    name: &str,
    tls: &[k8s_openapi::api::networking::v1::IngressTLS],
    notes: &mut Vec<Note>,
) -> Result<BTreeMap<String, TlsClass>, Error> {
    let mut classes = BTreeMap::new();
    if tls.is_empty() {
        return Ok(classes);
    }
    let secrets: Api<Secret> = Api::namespaced(c.ctx.client.clone(), ns);
    let anchors = c.anchors().await?;
    let at = now();
    for entry in tls {
        let Some(secret) = entry.secret_name.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        if classes.contains_key(secret) {
            continue;
        }
        let hosts: Vec<String> = tls
            .iter()
            .filter(|t| t.secret_name.as_deref() == Some(secret))
            .flat_map(|t| t.hosts.iter().flatten().cloned())
            .collect();
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
            classes.insert(secret.to_string(), TlsClass::Missing);
            continue;
        };
        let class = anchors.classify(&cert.chain, &cert.leaf, at).class;
        let tls_class = TlsClass::of(Some(class));
        classes.insert(secret.to_string(), tls_class);
        let entry = IngressTls {
            ingress: AuditRef::namespaced("Ingress", ns, name),
            secret: secret.to_string(),
            hosts,
        };
        if let (Some(reason), Some(finding)) = (
            tls_class.event_reason(),
            ingress_certificate_finding(&entry, cert, class),
        ) {
            let expiry = cert.leaf.not_after.strftime("%Y-%m-%d");
            notes.push(Note {
                key: format!("class/{secret}/{}", tls_class.label()),
                reason,
                related: secret_ref(ns, secret),
                message: format!(
                    "Ingress {name} {}, valid until {expiry}. {} To let the operator keep a publicly trusted certificate in Secret {secret}, set the annotation {INGRESS_TLS_ANNOTATION}: public on the Ingress (and {INGRESS_ISSUER_ANNOTATION}: <PublicIssuer>, unless the operator has a default).",
                    finding.message, finding.remediation
                ),
            });
        }
    }
    Ok(classes)
}

/// Keeps one UserFacing ServiceCertificate per TLS Secret; removes those of entries gone.
async fn public(
    c: &IngressContext,
    ing: &Ingress,
    ns: &str,
    owner: Owner<'_>,
    tls: &[k8s_openapi::api::networking::v1::IngressTLS],
    notes: &mut Vec<Note>,
) -> Result<(), Error> {
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
    let issuer = ing
        .annotations()
        .get(INGRESS_ISSUER_ANNOTATION)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| c.ctx.settings.default_public_issuer.clone());
    let api: Api<ServiceCertificate> = Api::namespaced(c.ctx.client.clone(), ns);
    let Some(issuer) = issuer else {
        if !desired.is_empty() {
            notes.push(Note {
                key: "no-issuer".into(),
                reason: "NoPublicIssuer",
                related: None,
                message: format!(
                    "the Ingress is in public mode but names no PublicIssuer: set the annotation {INGRESS_ISSUER_ANNOTATION}: <name> or start the operator with --default-public-issuer; no certificate is requested until then"
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
                    "ServiceCertificate {} exists and does not belong to this Ingress; the operator leaves it alone and requests no certificate for Secret {}",
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
                info!(namespace = ns, ingress = owner.name, certificate = %d.name, "applied UserFacing ServiceCertificate")
            }
            // Refused by admission (a host the schema does not take): say so, do not retry
            // until the Ingress changes.
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

/// Deletes the ServiceCertificates the Ingress `uid` controls whose names are not in `keep`.
async fn remove_owned(
    c: &IngressContext,
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
