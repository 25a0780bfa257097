//! Gateway API (`gateway.networking.k8s.io/v1`): the TLS listeners of Gateways (and of the
//! ListenerSets attached to them) are user-facing endpoints, as Ingress TLS entries are;
//! BackendTLSPolicies carry the trust a Gateway needs to reach SITHS-serving back ends.
//!
//! Per Gateway, the mode comes from its `siths-operator.io/tls` annotation, else the
//! operator's `--ingress-mode` (the same modes as for Ingresses):
//! - `audit`: each listener Secret's certificate is classified; SITHS gives the Warning
//!   event `SithsCertificateOnUserFacingGateway`, not publicly trusted
//!   `NotPubliclyTrustedOnGateway`, and `siths_ingress_tls_certificates{kind="Gateway"}`
//!   counts them.
//! - `public`: one owned UserFacing ServiceCertificate per listener Secret in the Gateway's
//!   namespace, for the listener's host name or, without one, the host names of the routes
//!   attached to it. The Gateway is never written.
//! - `ignore`: nothing.
//!
//! In every mode: a listener naming a Secret in another namespace without a ReferenceGrant
//! is reported (`ListenerReferenceNotGranted`); a SITHS certificate the Gateway presents to
//! back ends (`spec.tls.backend.clientCertificateRef`) that no ServiceCertificate manages is
//! reported for adoption; a Gateway validating client certificates against SITHS anchors is
//! reported (`SithsClientAuthTerminatedAtGateway`): mutual TLS ends there.
//!
//! BackendTLSPolicies: when a targeted Service's pods mount a Secret holding a SITHS
//! certificate, the policy's CA references must verify it
//! ([`crate::policy::gateway::backend_trust`]); if not, a Warning event
//! `BackendTrustMissing` on the policy.
//!
//! Clusters without Gateway API: the operator checks API discovery every
//! `--gateway-api-recheck-seconds` (default 60) and starts these watches once the
//! Gateway and HTTPRoute kinds are served, without a restart. ListenerSets, TLSRoutes,
//! ReferenceGrants and BackendTLSPolicies are watched when served at that moment.
//!
//! Watches are narrow, as for Ingresses: Secrets by metadata only (a trigger, never a
//! cache); a Secret's content is read with a `get` when a Gateway in `audit` mode names it.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use futures::{StreamExt, future::BoxFuture};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::ListParams,
    core::PartialObjectMeta,
    discovery::ApiGroup,
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use super::{
    Context, Error, IngressMode,
    front_door::{self, DoorContext, Note, Served, secret_ref},
    ingress::AUDIT_RESYNC,
    measured, now,
    shared_watch::SharedWatch,
};
use crate::{
    api::{
        Purpose,
        gateway::{
            BackendTLSPolicy, GROUP, Gateway, HTTPRoute, ListenerSet, ReferenceGrant, TLSRoute,
        },
    },
    audit::{Inventory, ObjectRef as AuditRef},
    pki::CertClass,
    policy::{
        gateway::{
            self as decide, CaContents, RefAccess, Routes, Unmanaged, listener_certificates,
            public_entries,
        },
        ingress::{Door, GATEWAY_LABEL, Owner},
    },
};

/// How often a BackendTLSPolicy is checked again without a change to it (the pods behind its
/// Service and the trust bundles change too). Reads only.
const POLICY_RESYNC: Duration = Duration::from_secs(300);

/// Which Gateway API kinds the apiserver serves (`v1`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GatewayApi {
    /// Gateways and HTTPRoutes: without both nothing is watched.
    pub core: bool,
    /// ListenerSets.
    pub listener_sets: bool,
    /// TLSRoutes.
    pub tls_routes: bool,
    /// ReferenceGrants.
    pub reference_grants: bool,
    /// BackendTLSPolicies.
    pub backend_tls_policies: bool,
}

/// What discovery says about `gateway.networking.k8s.io/v1`.
pub async fn discover(client: &Client) -> Result<GatewayApi, kube::Error> {
    let group: ApiGroup = match kube::discovery::group(client, GROUP).await {
        Ok(g) => g,
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(GatewayApi::default()),
        Err(kube::Error::Discovery(_)) => return Ok(GatewayApi::default()),
        Err(e) => return Err(e),
    };
    let kinds: BTreeSet<String> = group
        .versioned_resources(decide_version())
        .into_iter()
        .map(|(r, _)| r.kind)
        .collect();
    let has = |k: &str| kinds.contains(k);
    Ok(GatewayApi {
        core: has("Gateway") && has("HTTPRoute"),
        listener_sets: has("ListenerSet"),
        tls_routes: has("TLSRoute"),
        reference_grants: has("ReferenceGrant"),
        backend_tls_policies: has("BackendTLSPolicy"),
    })
}

fn decide_version() -> &'static str {
    crate::api::gateway::VERSION
}

/// A reflector over every object of `K` when `on`, else an empty store and no stream.
fn optional_store<K>(
    client: &Client,
    on: bool,
) -> (
    Store<K>,
    futures::stream::BoxStream<'static, Result<K, watcher::Error>>,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    if !on {
        return (store, futures::stream::pending().boxed());
    }
    let stream = reflector::reflector(
        writer,
        super::watch(
            Api::<K>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .modify(|o| o.meta_mut().managed_fields = None),
    )
    .touched_objects()
    .boxed();
    (store, stream)
}

/// State of the Gateway controller.
pub struct GatewayContext {
    door: DoorContext,
    sets: Store<ListenerSet>,
    http_routes: Store<HTTPRoute>,
    tls_routes: Store<TLSRoute>,
    grants: Store<ReferenceGrant>,
    /// What was reported per BackendTLSPolicy.
    policies: std::sync::Mutex<front_door::Remembered>,
}

impl std::fmt::Debug for GatewayContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayContext").finish_non_exhaustive()
    }
}

/// Runs the Gateway and BackendTLSPolicy controllers until `shutdown`, once Gateway API is
/// served (checked every `recheck`).
///
/// `secrets` is the Secret watch it shares (see [`super::shared_watch`]); it reads it from
/// when Gateway API is served.
pub async fn run(
    ctx: Arc<Context>,
    secrets: SharedWatch<PartialObjectMeta<Secret>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let recheck = ctx.settings.gateway_api_recheck;
    let mut shutdown = Box::pin(shutdown);
    let mut told = false;
    let served = loop {
        match discover(&ctx.client).await {
            Ok(s) if s.core => break s,
            Ok(_) => {
                if !told {
                    info!(
                        recheck_seconds = recheck.as_secs(),
                        "Gateway API (gateway.networking.k8s.io/v1 Gateways and HTTPRoutes) is not served; Gateways are not watched until it is"
                    );
                    told = true;
                }
            }
            Err(e) => {
                warn!(error = %crate::telemetry::kube_error(&e), "Gateway API discovery failed")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(recheck) => {}
            _ = &mut shutdown => return,
        }
    };
    info!(
        listener_sets = served.listener_sets,
        tls_routes = served.tls_routes,
        reference_grants = served.reference_grants,
        backend_tls_policies = served.backend_tls_policies,
        "watching Gateways (Gateway API is served)"
    );
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let shutdown_all = async move {
        shutdown.await;
        let _ = tx.send(());
    };
    let second = async move {
        let _ = rx.await;
    };
    tokio::join!(shutdown_all, run_served(ctx, served, &secrets, second),);
}

fn gateway_refs<'a>(
    gateways: &'a Store<Gateway>,
    pick: impl Fn(&Gateway) -> bool + 'a,
) -> Vec<ObjectRef<Gateway>> {
    gateways
        .state_filter(|g| pick(g))
        .iter()
        .map(|g| ObjectRef::from_obj(&**g))
        .collect()
}

/// The Gateways a route in `route_ns` with `parents` attaches to.
fn routed_gateways(
    gateways: &Store<Gateway>,
    route_ns: &str,
    parents: &[crate::api::gateway::ObjectReference],
) -> Vec<ObjectRef<Gateway>> {
    gateway_refs(gateways, |g| {
        let (ns, name) = (g.namespace().unwrap_or_default(), g.name_any());
        parents
            .iter()
            .any(|p| p.is_parent("Gateway") && p.name == name && p.namespace_from(route_ns) == ns)
    })
}

async fn run_served(
    ctx: Arc<Context>,
    served: GatewayApi,
    secrets: &SharedWatch<PartialObjectMeta<Secret>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (gateways, gateway_writer) = reflector::store::<Gateway>();
    let (owned, owned_stream) = front_door::owned_watch(client.clone(), GATEWAY_LABEL);
    let (issuer_stream, issuers, reaudit) = front_door::issuer_watch(client.clone(), "Gateway");
    let (sets, set_stream) = optional_store::<ListenerSet>(&client, served.listener_sets);
    let (http_routes, http_stream) = optional_store::<HTTPRoute>(&client, true);
    let (tls_routes, tls_stream) = optional_store::<TLSRoute>(&client, served.tls_routes);
    let (grants, grant_stream) = optional_store::<ReferenceGrant>(&client, served.reference_grants);
    let state = Arc::new(GatewayContext {
        door: DoorContext::new(ctx.clone(), Door::Gateway, owned, issuers),
        sets,
        http_routes,
        tls_routes,
        grants,
        policies: std::sync::Mutex::default(),
    });

    let on_event = state.clone();
    let reader = gateways.clone();
    let gateway_stream = reflector::reflector(
        gateway_writer,
        super::watch(
            Api::<Gateway>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .modify(|o| o.meta_mut().managed_fields = None),
    )
    .inspect(move |ev| match ev {
        Ok(watcher::Event::Delete(g)) => {
            let (ns, name) = (g.namespace().unwrap_or_default(), g.name_any());
            on_event.door.forget(|k, _| k.0 == ns && k.1 == name);
        }
        Ok(watcher::Event::InitDone) => {
            on_event.door.forget(|k, m| {
                reader
                    .get(&ObjectRef::new(&k.1).within(&k.0))
                    .is_none_or(|g| g.uid().as_deref() != Some(m.uid.as_str()))
            });
        }
        _ => {}
    })
    .applied_objects();

    // Secrets by metadata, from the watch shared with the other controllers.
    let secret_stream = secrets.subscribe().touched_objects();

    // Secrets map to the Gateways whose listeners (or ListenerSets) or client certificate
    // name them. This runs for every Secret event in the cluster: no routes or grants are
    // read (only which Secrets are named matters), the ListenerSets once per event.
    let for_secrets = (gateways.clone(), state.clone());
    let secret_map = move |meta: PartialObjectMeta<Secret>| {
        let (store, st) = &for_secrets;
        let (Some(ns), Some(name)) = (meta.metadata.namespace.clone(), meta.metadata.name.clone())
        else {
            return Vec::new();
        };
        let sets = st.sets.state();
        let sets: Vec<&ListenerSet> = sets.iter().map(|s| &**s).collect();
        gateway_refs(store, |g| {
            listener_certificates(g, &sets, Routes::default(), &[])
                .iter()
                .any(|c| c.secret_namespace == ns && c.secret == name)
                || decide::client_certificate_secret(g) == Some((ns.clone(), name.clone()))
        })
    };
    // Routes and ListenerSets map to the Gateways they attach to; ReferenceGrants to every
    // Gateway (they are few and change rarely).
    let for_routes = gateways.clone();
    let route_map = move |r: HTTPRoute| {
        let ns = r.namespace().unwrap_or_default();
        routed_gateways(&for_routes, &ns, &r.spec.parent_refs)
    };
    let for_tls = gateways.clone();
    let tls_map = move |r: TLSRoute| {
        let ns = r.namespace().unwrap_or_default();
        routed_gateways(&for_tls, &ns, &r.spec.parent_refs)
    };
    let for_sets = gateways.clone();
    let set_map = move |s: ListenerSet| {
        gateway_refs(&for_sets, |g| {
            decide::attached_to(&s, &g.namespace().unwrap_or_default(), &g.name_any())
        })
    };
    let for_grants = gateways.clone();
    let grant_map = move |_: ReferenceGrant| gateway_refs(&for_grants, |_| true);

    // A change of the Ready issuers (the anchors) audits Gateways and policies again.
    let (gateways_again, reaudit_gateways) = futures::channel::mpsc::unbounded::<()>();
    let (policies_again, reaudit_policies) = futures::channel::mpsc::unbounded::<()>();
    let fan_out = reaudit.for_each(move |()| {
        let _ = gateways_again.unbounded_send(());
        let _ = policies_again.unbounded_send(());
        async {}
    });
    let (shutdown_tx, shutdown_rx) = futures::channel::oneshot::channel::<()>();
    let policies = run_policies(
        state.clone(),
        served.backend_tls_policies,
        reaudit_policies,
        async move {
            let _ = shutdown_rx.await;
        },
    );
    let controller = Controller::for_stream(gateway_stream, gateways)
        .owns_stream(owned_stream)
        .watches_stream(secret_stream, secret_map)
        .watches_stream(http_stream, route_map)
        .watches_stream(tls_stream, tls_map)
        .watches_stream(set_stream, set_map)
        .watches_stream(grant_stream, grant_map)
        .reconcile_all_on(reaudit_gateways)
        .graceful_shutdown_on(async move {
            shutdown.await;
            let _ = shutdown_tx.send(());
        })
        .run(
            |g, c| measured(c.door.ctx.clone(), "Gateway", reconcile(g, c)),
            |_, e, _| {
                warn!(error = %e, label = e.metric_label(), "Gateway reconcile failed");
                Action::requeue(Duration::from_secs(30))
            },
            state,
        )
        .for_each(super::log_output("Gateway"));
    tokio::select! {
        _ = async { tokio::join!(controller, policies) } => {}
        _ = issuer_stream => {}
        _ = fan_out => {}
    }
}

/// The listener Secrets of `gw` from the caches.
fn gather_listeners(c: &GatewayContext, gw: &Gateway) -> Vec<decide::ListenerCertificate> {
    let sets = c.sets.state();
    let http = c.http_routes.state();
    let tls = c.tls_routes.state();
    let grants = c.grants.state();
    let sets: Vec<&ListenerSet> = sets.iter().map(|s| &**s).collect();
    let http: Vec<&HTTPRoute> = http.iter().map(|s| &**s).collect();
    let tls: Vec<&TLSRoute> = tls.iter().map(|s| &**s).collect();
    let grants: Vec<&ReferenceGrant> = grants.iter().map(|s| &**s).collect();
    listener_certificates(
        gw,
        &sets,
        Routes {
            http: &http,
            tls: &tls,
        },
        &grants,
    )
}

async fn reconcile(gw: Arc<Gateway>, c: Arc<GatewayContext>) -> Result<Action, Error> {
    let ns = gw
        .namespace()
        .ok_or(Error::Incomplete("metadata.namespace"))?;
    let name = gw.name_any();
    let uid = gw.uid().ok_or(Error::Incomplete("metadata.uid"))?;
    if gw.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let door = &c.door;
    let (choice, mut notes) = front_door::mode_of(door, gw.annotations());
    let certs = gather_listeners(&c, &gw);
    for lc in certs.iter().filter(|l| l.access == RefAccess::NotGranted) {
        notes.push(Note {
            key: format!(
                "not-granted/{}/{}/{}",
                lc.listener, lc.secret_namespace, lc.secret
            ),
            reason: "ListenerReferenceNotGranted",
            message: Unmanaged::NotGranted.message(lc),
            related: secret_ref(&lc.secret_namespace, &lc.secret),
        });
    }
    let mut classes = std::collections::BTreeMap::new();
    let owner = Owner {
        door: Door::Gateway,
        name: &name,
        uid: &uid,
    };
    match choice.mode {
        IngressMode::Public => {
            let (entries, skipped) = public_entries(&ns, &certs);
            for (lc, why) in skipped
                .iter()
                .filter(|(_, why)| *why == Unmanaged::OtherNamespace)
            {
                notes.push(Note {
                    key: format!("other-namespace/{}/{}", lc.secret_namespace, lc.secret),
                    reason: "ListenerSecretNotManaged",
                    message: why.message(lc),
                    related: secret_ref(&lc.secret_namespace, &lc.secret),
                });
            }
            let issuer = front_door::issuer_of(door, gw.annotations());
            front_door::public(door, &ns, owner, issuer, &entries, &mut notes).await?;
        }
        mode => {
            front_door::remove_owned(door, &ns, &uid, &BTreeSet::new()).await?;
            if mode == IngressMode::Audit {
                let served: Vec<Served> = certs
                    .iter()
                    .filter(|l| l.access != RefAccess::NotGranted)
                    .map(|l| Served {
                        endpoint: AuditRef::namespaced(l.source.kind(), &l.namespace, &l.name),
                        namespace: l.secret_namespace.clone(),
                        secret: l.secret.clone(),
                        hosts: l.hosts.clone(),
                    })
                    .collect();
                classes = front_door::audit(door, &ns, &served, &mut notes).await?;
            }
        }
    }
    if choice.mode != IngressMode::Ignore {
        client_certificate(door, &gw, &mut notes).await?;
        frontend_validation(door, &gw, &mut notes).await?;
    }
    let fresh = door.remember((ns, name), &uid, classes, notes);
    let target = gw.object_ref(&());
    for n in fresh {
        front_door::publish(&door.ctx, &target, n).await;
    }
    Ok(match choice.mode {
        IngressMode::Audit => Action::requeue(AUDIT_RESYNC),
        IngressMode::Public => Action::requeue(AUDIT_RESYNC),
        IngressMode::Ignore => Action::await_change(),
    })
}

/// The certificates of the Secret `ns/name` (only certificates are kept), with the SITHS
/// class of its `tls.crt`, when it holds one.
async fn secret_certificate(
    c: &DoorContext,
    ns: &str,
    name: &str,
) -> Result<Option<(crate::audit::objects::FoundCertificate, CertClass)>, Error> {
    let found = Api::<Secret>::namespaced(c.ctx.client.clone(), ns)
        .get_opt(name)
        .await?;
    let mut inv = Inventory::default();
    if let Some(s) = &found {
        inv.add_secret(s);
    }
    drop(found);
    let Some(cert) = inv
        .secrets
        .into_iter()
        .next()
        .and_then(|cs| cs.certificates.into_iter().find(|f| f.key == "tls.crt"))
    else {
        return Ok(None);
    };
    let anchors = c.anchors().await?;
    let class = anchors.classify(&cert.chain, &cert.leaf, now()).class;
    Ok(Some((cert, class)))
}

/// A SITHS client certificate the Gateway presents to back ends: reported when no
/// ServiceCertificate keeps it (nothing renews it then).
async fn client_certificate(
    c: &DoorContext,
    gw: &Gateway,
    notes: &mut Vec<Note>,
) -> Result<(), Error> {
    let Some((ns, name)) = decide::client_certificate_secret(gw) else {
        return Ok(());
    };
    let Some((cert, class)) = secret_certificate(c, &ns, &name).await? else {
        return Ok(());
    };
    if class.siths_environment().is_none() {
        return Ok(());
    }
    // The ServiceCertificate controller's cache and its Secret index, not a list per pass.
    let managed = c
        .ctx
        .certificates_naming(&ns, &name)
        .iter()
        .any(|sc| sc.spec.purpose == Purpose::ServerToServer);
    if !managed {
        let expiry = cert.leaf.not_after.strftime("%Y-%m-%d");
        notes.push(Note {
            key: format!("client-certificate/{ns}/{name}/{}", cert.leaf.serial_hex),
            reason: "UnmanagedSithsClientCertificate",
            related: secret_ref(&ns, &name),
            message: format!(
                "the Gateway presents the SITHS certificate in Secret {ns}/{name} ({}, valid until {expiry}) to back ends, and no ServiceCertificate keeps it: nothing renews it. Adopt it with a ServerToServer ServiceCertificate naming Secret {name} (adoption costs nothing; renewal then starts in time)",
                cert.leaf.subject
            ),
        });
    }
    Ok(())
}

/// A Gateway validating client certificates against SITHS anchors ends the national
/// platforms' mutual TLS: the back end never sees the caller's certificate.
async fn frontend_validation(
    c: &DoorContext,
    gw: &Gateway,
    notes: &mut Vec<Note>,
) -> Result<(), Error> {
    let refs = decide::frontend_ca_refs(gw);
    if refs.is_empty() {
        return Ok(());
    }
    let anchors = c.anchors().await?;
    for (ns, r) in refs {
        if !r.is("", "ConfigMap", "ConfigMap") {
            continue;
        }
        let Some(cm) = Api::<ConfigMap>::namespaced(c.ctx.client.clone(), &ns)
            .get_opt(&r.name)
            .await?
        else {
            continue;
        };
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get("ca.crt"))
            .cloned()
            .unwrap_or_default();
        if !anchors.siths_environments_in(&text).is_empty() {
            notes.push(Note {
                key: format!("frontend/{ns}/{}", r.name),
                reason: "SithsClientAuthTerminatedAtGateway",
                related: Some(k8s_openapi::api::core::v1::ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("ConfigMap".into()),
                    namespace: Some(ns.clone()),
                    name: Some(r.name.clone()),
                    ..Default::default()
                }),
                message: format!(
                    "the Gateway verifies client certificates against the SITHS CA certificates in ConfigMap {ns}/{}: mutual TLS from the national platforms ends at the Gateway and the back end never sees the caller's certificate or HSA-id. {}",
                    r.name,
                    crate::audit::Code::SithsClientAuthTerminatedAtGateway.remediation()
                ),
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// BackendTLSPolicies

/// Runs the BackendTLSPolicy check until `shutdown` (nothing when the kind is not served).
fn run_policies(
    state: Arc<GatewayContext>,
    on: bool,
    reaudit: futures::channel::mpsc::UnboundedReceiver<()>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> BoxFuture<'static, ()> {
    if !on {
        return Box::pin(async {});
    }
    let client = state.door.ctx.client.clone();
    let (store, writer) = reflector::store::<BackendTLSPolicy>();
    let on_event = state.clone();
    let stream = reflector::reflector(
        writer,
        super::watch(
            Api::<BackendTLSPolicy>::all(client),
            watcher::Config::default().any_semantic(),
        )
        .modify(|o| o.meta_mut().managed_fields = None),
    )
    .inspect(move |ev| {
        if let Ok(watcher::Event::Delete(p)) = ev {
            let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
            let mut remembered = front_door::lock(&on_event.policies);
            remembered.forget(|k, _| k.0 == ns && k.1 == name);
            on_event
                .door
                .ctx
                .metrics
                .set_backend_tls_untrusted(i64::try_from(remembered.with_notes()).unwrap_or(0));
        }
    })
    .applied_objects();
    Box::pin(
        Controller::for_stream(stream, store)
            .reconcile_all_on(reaudit)
            .graceful_shutdown_on(shutdown)
            .run(
                |p, c| {
                    measured(
                        c.door.ctx.clone(),
                        "BackendTLSPolicy",
                        reconcile_policy(p, c),
                    )
                },
                |_, e, _| {
                    warn!(error = %e, label = e.metric_label(), "BackendTLSPolicy check failed");
                    Action::requeue(Duration::from_secs(60))
                },
                state,
            )
            .for_each(super::log_output("BackendTLSPolicy")),
    )
}

/// The first SITHS certificate a pod behind Service `svc` serves (a mounted Secret whose
/// `tls.crt` chains to SITHS), as `(Secret name, certificate)`.
async fn siths_behind(
    c: &DoorContext,
    ns: &str,
    svc: &str,
) -> Result<Option<(String, crate::audit::objects::FoundCertificate)>, Error> {
    let Some(service) = Api::<Service>::namespaced(c.ctx.client.clone(), ns)
        .get_opt(svc)
        .await?
    else {
        return Ok(None);
    };
    let Some(selector) = service
        .spec
        .and_then(|s| s.selector)
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let labels = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods = Api::<Pod>::namespaced(c.ctx.client.clone(), ns)
        .list(&ListParams::default().labels(&labels))
        .await?;
    let mut secrets = BTreeSet::new();
    for pod in &pods.items {
        if let Some(spec) = &pod.spec {
            secrets.extend(crate::audit::objects::secrets_used(spec));
        }
    }
    for name in secrets {
        if let Some((cert, class)) = secret_certificate(c, ns, &name).await?
            && class.siths_environment().is_some()
        {
            return Ok(Some((name, cert)));
        }
    }
    Ok(None)
}

async fn reconcile_policy(
    policy: Arc<BackendTLSPolicy>,
    c: Arc<GatewayContext>,
) -> Result<Action, Error> {
    let ns = policy
        .namespace()
        .ok_or(Error::Incomplete("metadata.namespace"))?;
    let name = policy.name_any();
    let uid = policy.uid().unwrap_or_default();
    let door = &c.door;
    let mut notes = Vec::new();
    for svc in decide::policy_services(&policy) {
        let Some((secret, cert)) = siths_behind(door, &ns, &svc).await? else {
            continue;
        };
        let mut cas: CaContents = Vec::new();
        for r in &policy.spec.validation.ca_certificate_refs {
            if !r.is("", "ConfigMap", "ConfigMap") {
                continue;
            }
            let cm = Api::<ConfigMap>::namespaced(door.ctx.client.clone(), &ns)
                .get_opt(&r.name)
                .await?;
            let content = cm.map(|cm| cm.data.and_then(|mut d| d.remove("ca.crt")));
            cas.push((r.clone(), content));
        }
        if let Err(problem) = decide::backend_trust(&policy, &cas, &cert.chain, now()) {
            notes.push(Note {
                key: format!("{svc}/{}", problem.key()),
                reason: "BackendTrustMissing",
                related: Some(k8s_openapi::api::core::v1::ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Service".into()),
                    namespace: Some(ns.clone()),
                    name: Some(svc.clone()),
                    ..Default::default()
                }),
                message: problem.message(&svc, &format!("Secret {ns}/{secret}")),
            });
        }
    }
    let keys: BTreeSet<String> = notes.iter().map(|n| n.key.clone()).collect();
    let (fresh, untrusted) = {
        let mut remembered = front_door::lock(&c.policies);
        let fresh = remembered.update((ns, name), &uid, Default::default(), keys);
        (fresh, remembered.with_notes())
    };
    door.ctx
        .metrics
        .set_backend_tls_untrusted(i64::try_from(untrusted).unwrap_or(i64::MAX));
    let target = policy.object_ref(&());
    for n in notes.into_iter().filter(|n| fresh.contains(&n.key)) {
        front_door::publish(&door.ctx, &target, n).await;
    }
    Ok(Action::requeue(POLICY_RESYNC))
}
