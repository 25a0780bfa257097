//! Ingresses (`networking.k8s.io/v1`): every TLS entry is a user-facing endpoint.
//!
//! The mode of an Ingress comes from its `siths-operator.io/tls` annotation, else the
//! operator's `--ingress-mode`:
//! - `audit`: reads the certificate of each TLS Secret and classifies it with the audit's
//!   classifier ([`crate::audit::AnchorSet`]); a SITHS certificate gets a Warning event
//!   `SithsCertificateOnUserFacingIngress`, one that is not publicly trusted
//!   `NotPubliclyTrustedOnIngress`, and the `siths_ingress_tls_certificates{kind="Ingress"}`
//!   gauge counts them by class.
//! - `public`: keeps one `UserFacing` ServiceCertificate per Secret, owned by the Ingress,
//!   writing into the Secret the Ingress already names. The Ingress is never written.
//! - `ignore`: nothing (certificates it owned are removed).
//!
//! Watches are narrow: Ingresses; Secrets by metadata only (no content, no cache), mapped to
//! the Ingresses naming them; the ServiceCertificates this controller labelled. A Secret's
//! content is read with a `get` only when an Ingress in `audit` mode names it. What is shared
//! with the Gateway controller is in [`super::front_door`].

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::{core::v1::Secret, networking::v1::Ingress};
use kube::{
    Api, Resource, ResourceExt,
    core::PartialObjectMeta,
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use tracing::{info, warn};

use super::{
    Context, Error, IngressMode,
    front_door::{self, DoorContext, Served},
    measured,
    shared_watch::SharedWatch,
};
use crate::{
    audit::ObjectRef as AuditRef,
    policy::ingress::{Door, INGRESS_LABEL, Owner, ingress_entries},
};

/// How often an Ingress in `audit` mode is looked at again without a change (certificates
/// expire, issuers and anchors change). Reads only.
pub(super) const AUDIT_RESYNC: Duration = Duration::from_secs(3600);

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
/// `secrets` is the Secret watch it shares (see [`super::shared_watch`]).
pub async fn run(
    ctx: Arc<Context>,
    secrets: &SharedWatch<PartialObjectMeta<Secret>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (ingresses, ingress_writer) = reflector::store::<Ingress>();
    let (owned, owned_stream) = front_door::owned_watch(client.clone(), INGRESS_LABEL);
    let (issuer_stream, issuers, reaudit) = front_door::issuer_watch(client.clone(), "Ingress");
    let state = Arc::new(DoorContext::new(ctx, Door::Ingress, owned, issuers));

    // Ingresses, with deletions seen so that the memory of a deleted Ingress goes too.
    let on_event = state.clone();
    let reader = ingresses.clone();
    let ingress_stream = reflector::reflector(
        ingress_writer,
        super::watch(
            Api::<Ingress>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        ),
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

    // Secrets by metadata only (the watch shared with the other controllers): a trigger,
    // never a cache.
    let mapper_store = ingresses.clone();
    let secret_stream = secrets.subscribe().touched_objects();

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

async fn reconcile(ing: Arc<Ingress>, c: Arc<DoorContext>) -> Result<Action, Error> {
    let ns = ing
        .namespace()
        .ok_or(Error::Incomplete("metadata.namespace"))?;
    let name = ing.name_any();
    let uid = ing.uid().ok_or(Error::Incomplete("metadata.uid"))?;
    if ing.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let (choice, mut notes) = front_door::mode_of(&c, ing.annotations());
    let tls = ing
        .spec
        .as_ref()
        .and_then(|s| s.tls.as_deref())
        .unwrap_or_default();
    let entries = ingress_entries(tls);
    let mut classes = BTreeMap::new();
    let owner = Owner {
        door: Door::Ingress,
        name: &name,
        uid: &uid,
    };
    match choice.mode {
        IngressMode::Public => {
            let issuer = front_door::issuer_of(&c, ing.annotations());
            front_door::public(&c, &ns, owner, issuer, &entries, &mut notes).await?
        }
        mode => {
            // Certificates kept while the Ingress was public go when it leaves `public`.
            front_door::remove_owned(&c, &ns, &uid, &BTreeSet::new()).await?;
            if mode == IngressMode::Audit {
                let endpoint = AuditRef::namespaced("Ingress", &ns, &name);
                let served: Vec<Served> = entries
                    .iter()
                    .filter_map(|e| {
                        let secret = e.secret_name.as_deref().filter(|s| !s.is_empty())?;
                        Some(Served {
                            endpoint: endpoint.clone(),
                            namespace: ns.clone(),
                            secret: secret.to_string(),
                            hosts: e.hosts.clone(),
                        })
                    })
                    .collect();
                classes = front_door::audit(&c, &ns, &served, &mut notes).await?;
            }
        }
    }
    let fresh = c.remember((ns, name), &uid, classes, notes);
    let target = ing.object_ref(&());
    for n in fresh {
        front_door::publish(&c.ctx, &target, n).await;
    }
    Ok(match choice.mode {
        IngressMode::Audit => Action::requeue(AUDIT_RESYNC),
        _ => Action::await_change(),
    })
}
