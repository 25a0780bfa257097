//! Controllers: one module per reconciled kind. They gather inputs, ask `policy` and `pki`,
//! and apply the outcome; decisions live in those pure modules.

pub mod cert_manager;
mod cert_status;
mod certificate_secret;
mod checked_secrets;
pub mod domain_validation;
pub mod front_door;
pub mod gateway;
pub mod ingress;
pub mod public_issuer;
mod public_route;
pub mod ready_store;
pub mod secret_claims;
pub mod service_certificate;
pub mod shared_watch;
pub mod siths_issuer;
pub mod trust_bundle;

use std::{fmt::Debug, path::PathBuf, sync::Arc};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    Client, Resource, ResourceExt,
    api::{Api, Patch, PatchParams},
    runtime::{
        controller::Action,
        reflector::{self, ObjectRef, Store, store::Writer},
    },
};

use crate::{
    api::{DomainValidation, PublicIssuer, ServiceCertificate, SithsIssuer},
    metrics::Metrics,
};
use serde::{Serialize, de::DeserializeOwned};
use tracing::warn;

pub use crate::policy::ingress::IngressMode;

/// Operator-wide settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// PEM file with the SITHS CA certificates (checked against the pinned fingerprints).
    pub siths_ca_file: Option<PathBuf>,
    /// The operator's own namespace: ACME HTTP-01 solver objects and pending tokens live
    /// here.
    pub namespace: String,
    /// Mode of Ingresses without the `siths-operator.io/tls` annotation.
    pub ingress_mode: IngressMode,
    /// PublicIssuer used by Ingresses in `public` mode that do not name one with the
    /// `siths-operator.io/public-issuer` annotation.
    pub default_public_issuer: Option<String>,
    /// Port the operator serves ACME HTTP-01 challenges on (the solver Service targets it).
    pub acme_http01_port: u16,
    /// How often the operator looks for Gateway API while it is not served.
    pub gateway_api_recheck: std::time::Duration,
    /// Nameservers and timeout of the live DNS TXT check of DomainValidations.
    pub dns_lookup: crate::dns::LookupSettings,
    /// How often the live check looks again, and its grace period.
    pub dns_schedule: crate::policy::dns_check::Schedule,
}

/// Shared state of the controllers.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Event publisher.
    pub events: crate::events::Publisher,
    /// Settings from flags.
    pub settings: Settings,
    /// Metrics of the process.
    pub metrics: Arc<Metrics>,
    validations: Store<DomainValidation>,
    certificates: Store<ServiceCertificate>,
    secret_claims: Arc<secret_claims::SecretClaims>,
    issuer_objects: IssuerCaches,
    issuers: IssuerCache,
    /// Per issuer name, held while that issuer is resolved (see
    /// [`Context::resolved_issuer`]); one issuer's resolution never waits for another's.
    resolving: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Newest ServiceCertificate versions seen (see [`SeenVersions`]).
    pub(crate) certificate_versions: SeenVersions,
    /// Certificate Secrets' versions from their watch (see [`checked_secrets`]).
    secret_versions: checked_secrets::WatchedVersions,
    /// Key store password Secrets' versions from their watch.
    password_versions: checked_secrets::WatchedVersions,
    /// CertificateOrders' versions from their metadata watch: whether an order may exist
    /// before it is read.
    order_versions: checked_secrets::WatchedVersions,
    /// What the last pass of each certificate concluded from its Secret.
    checked_secrets: checked_secrets::CheckedSecrets,
    siths_anchors: std::sync::OnceLock<Vec<crate::pki::SithsAnchors>>,
    /// ACME accounts and orders of PublicIssuers with `acme`.
    pub acme: Arc<crate::acme::Acme>,
}

/// The ServiceCertificate cache and its index by the Secret each certificate names, both
/// kept from one watch.
#[derive(Debug)]
pub struct CertificateCache {
    /// The certificates.
    pub store: Store<ServiceCertificate>,
    /// Which of them name each Secret.
    pub claims: Arc<secret_claims::SecretClaims>,
}

/// The SithsIssuers and PublicIssuers, as the ServiceCertificate controller's issuer
/// watches see them: each watch writes a change into its cache before it maps the change to
/// certificates, so the pass a change starts reads the changed issuer.
pub struct IssuerCaches {
    siths: ready_store::ReadyStore<SithsIssuer>,
    public: ready_store::ReadyStore<PublicIssuer>,
}

/// The halves of [`IssuerCaches`] the watches write into.
pub struct IssuerCacheWriters {
    pub(crate) siths: Writer<SithsIssuer>,
    pub(crate) public: Writer<PublicIssuer>,
}

impl IssuerCaches {
    /// Empty caches and their writers.
    pub fn new() -> (Self, IssuerCacheWriters) {
        let (siths, siths_writer) = reflector::store();
        let (public, public_writer) = reflector::store();
        (
            Self {
                siths: ready_store::ReadyStore::new(siths),
                public: ready_store::ReadyStore::new(public),
            },
            IssuerCacheWriters {
                siths: siths_writer,
                public: public_writer,
            },
        )
    }
}

impl Debug for IssuerCaches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerCaches")
            .field("siths", &self.siths)
            .field("public", &self.public)
            .finish()
    }
}

impl Debug for IssuerCacheWriters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerCacheWriters").finish_non_exhaustive()
    }
}

/// The object `name` of a cache, once the cache has been filled.
async fn cached<K>(
    store: &ready_store::ReadyStore<K>,
    name: &str,
    kind: &'static str,
) -> Result<Option<Arc<K>>, Error>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let store = store.ready().await.ok_or(Error::CacheStopped(kind))?;
    Ok(store.get(&ObjectRef::new(name)))
}

/// Resolved issuers by name, valid for one spec (UID and generation: the issuer's status
/// changes every few seconds while orders flow) and at most [`ISSUER_TTL`], so a thousand
/// certificates on one issuer do not read its CA Secret a thousand times.
type IssuerCache = std::sync::Mutex<
    std::collections::HashMap<
        String,
        (
            String,
            std::time::Instant,
            Arc<siths_issuer::ResolvedIssuer>,
        ),
    >,
>;

/// How long a resolved issuer is reused before its Secrets and ConfigMaps are read again.
const ISSUER_TTL: std::time::Duration = std::time::Duration::from_secs(30);

impl Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context for `client` with the caches of validations, certificates and issuers.
    pub fn new(
        client: Client,
        settings: Settings,
        validations: Store<DomainValidation>,
        certificates: CertificateCache,
        issuer_objects: IssuerCaches,
        metrics: Arc<Metrics>,
        acme: Arc<crate::acme::Acme>,
    ) -> Arc<Self> {
        let events = crate::events::Publisher::new(
            client.clone(),
            "siths-operator",
            std::env::var("POD_NAME").ok(),
        );
        Arc::new(Self {
            client,
            events,
            settings,
            metrics,
            validations,
            certificates: certificates.store,
            secret_claims: certificates.claims,
            issuer_objects,
            issuers: Default::default(),
            resolving: Default::default(),
            certificate_versions: Default::default(),
            secret_versions: Default::default(),
            password_versions: Default::default(),
            order_versions: Default::default(),
            checked_secrets: Default::default(),
            siths_anchors: Default::default(),
            acme,
        })
    }

    /// The SithsIssuer `name` from the cache, once the cache has been filled.
    pub async fn siths_issuer(&self, name: &str) -> Result<Option<Arc<SithsIssuer>>, Error> {
        cached(&self.issuer_objects.siths, name, "SithsIssuer").await
    }

    /// The PublicIssuer `name` from the cache, once the cache has been filled.
    pub async fn public_issuer(&self, name: &str) -> Result<Option<Arc<PublicIssuer>>, Error> {
        cached(&self.issuer_objects.public, name, "PublicIssuer").await
    }

    /// The resolved issuer, from the cache when it is fresh. Problems are not cached, so a
    /// fix is seen at the next reconcile.
    pub async fn resolved_issuer(
        &self,
        issuer: &crate::api::SithsIssuer,
    ) -> Result<Result<Arc<siths_issuer::ResolvedIssuer>, siths_issuer::IssuerProblem>, Error> {
        let name = issuer.name_any();
        let version = format!(
            "{}/{}",
            issuer.uid().unwrap_or_default(),
            issuer.metadata.generation.unwrap_or_default()
        );
        let fresh = || {
            let cache = self
                .issuers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            cache
                .get(&name)
                .filter(|(v, at, _)| *v == version && at.elapsed() < ISSUER_TTL)
                .map(|(_, _, resolved)| resolved.clone())
        };
        if let Some(resolved) = fresh() {
            return Ok(Ok(resolved));
        }
        // One resolution per issuer at a time: the passes that found the cache empty together (a
        // burst of new certificates, the start-up pass) wait for it instead of each reading
        // the issuer's CA Secret (and racing to create it) again.
        let turn = self
            .resolving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name.clone())
            .or_default()
            .clone();
        let _turn = turn.lock().await;
        if let Some(resolved) = fresh() {
            return Ok(Ok(resolved));
        }
        Ok(match siths_issuer::resolve(self, issuer).await? {
            Ok(r) => {
                let r = Arc::new(r);
                self.issuers
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(name, (version, std::time::Instant::now(), r.clone()));
                Ok(r)
            }
            Err(p) => Err(p),
        })
    }

    /// The SITHS CA certificates of `--siths-ca-file` that match the pinned fingerprints,
    /// per environment: what the public route refuses. Read once.
    pub fn siths_anchors(&self) -> &[crate::pki::SithsAnchors] {
        self.siths_anchors.get_or_init(|| {
            let Some(path) = self.settings.siths_ca_file.as_ref() else {
                return Vec::new();
            };
            match std::fs::read_to_string(path) {
                Ok(pem) => crate::pki::SithsAnchors::per_environment(&pem),
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "cannot read the SITHS CA file");
                    Vec::new()
                }
            }
        })
    }

    /// Every DomainValidation (a watch cache; they are few).
    pub fn validations(&self) -> &Store<DomainValidation> {
        &self.validations
    }

    /// Every ServiceCertificate (the controller's own cache).
    pub fn certificates(&self) -> &Store<ServiceCertificate> {
        &self.certificates
    }

    /// The cached certificates in `namespace` that name Secret `secret`, from the index
    /// (see [`secret_claims`]), not a scan of the cache.
    pub fn certificates_naming(
        &self,
        namespace: &str,
        secret: &str,
    ) -> Vec<Arc<ServiceCertificate>> {
        self.secret_claims
            .candidates(namespace, secret)
            .into_iter()
            .filter_map(|(ns, name)| self.certificates.get(&ObjectRef::new(&name).within(&ns)))
            .filter(|c| {
                c.spec.secret_name == secret && c.metadata.namespace.as_deref() == Some(namespace)
            })
            .collect()
    }

    /// Publishes an event on `obj`. Failing to publish is logged, never fatal: an event is
    /// a courtesy to people, not state.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        notice: crate::vocabulary::Notice<'_>,
    ) {
        let reference: ObjectReference = obj.object_ref(&());
        let published = self
            .events
            .publish(
                &reference,
                crate::events::Note {
                    warning: notice.warning,
                    reason: notice.reason,
                    action: notice.action,
                    note: &notice.note,
                    related: None,
                },
            )
            .await;
        if let Err(e) = published {
            warn!(error = %e, reason = notice.reason, "could not publish event");
        }
    }
}

/// Errors of a reconcile. Each has a stable label for metrics and logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API failed. Shown without response bodies or decoded values.
    #[error("Kubernetes API: {}", crate::telemetry::kube_error(.0))]
    Kube(#[from] kube::Error),
    /// Serialising an object failed.
    #[error("serialisation: {0}")]
    Json(#[from] serde_json::Error),
    /// A certificate or key operation failed.
    #[error("PKI: {0}")]
    Pki(#[from] crate::pki::PkiError),
    /// An object lacks a field the API server always sets.
    #[error("object without {0}")]
    Incomplete(&'static str),
    /// A cache's watch ended before it was filled (the controllers are stopping).
    #[error("the {0} cache stopped before it was filled")]
    CacheStopped(&'static str),
}

impl Error {
    /// Label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Json(_) => "json",
            Error::Pki(_) => "pki",
            Error::Incomplete(_) => "incomplete",
            Error::CacheStopped(_) => "cache",
        }
    }
}

/// Runs one reconcile of `controller` and records its count, duration and error reason.
pub async fn measured(
    ctx: Arc<Context>,
    controller: &'static str,
    reconcile: impl std::future::Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    tracing::debug!(controller, "pass started");
    let result = reconcile.await;
    tracing::debug!(
        controller,
        ms = started.elapsed().as_millis(),
        ok = result.is_ok(),
        "pass finished"
    );
    ctx.metrics.reconciled(
        controller,
        started.elapsed(),
        result.as_ref().err().map(Error::metric_label),
    );
    result
}

/// A watch that waits before each retry: `watcher` with kube-runtime's default backoff
/// (0.8 s doubling to 30 s, like client-go). A watcher without one retries at once, in a
/// tight loop while the apiserver is away: tens of thousands of failed requests a second
/// (the outage e2e test counts the operator's warnings). `watcher`, `Controller::new`,
/// `owns` and `watches` (which make such watches) are disallowed methods (`clippy.toml`).
pub fn watch<K>(
    api: Api<K>,
    config: kube::runtime::watcher::Config,
) -> impl futures::Stream<Item = kube::runtime::watcher::Result<kube::runtime::watcher::Event<K>>>
+ Send
+ 'static
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    use kube::runtime::WatchStreamExt as _;
    #[allow(clippy::disallowed_methods)] // the one place a watch is made
    kube::runtime::watcher(api, config).default_backoff()
}

/// A controller of `K` whose own watch backs off ([`watch`]), in place of `Controller::new`.
pub fn controller<K>(
    api: Api<K>,
    config: kube::runtime::watcher::Config,
) -> kube::runtime::Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    use kube::runtime::WatchStreamExt as _;
    let (store, writer) = reflector::store();
    kube::runtime::Controller::for_stream(
        reflector::reflector(writer, watch(api, config)).applied_objects(),
        store,
    )
}

/// What a controller's output stream is run with (`.for_each(log_output(..))`). Each pass's
/// own failure was already handled by the controller's error policy. What else comes out
/// is logged instead of being dropped: a trigger watch that failed as a warning, an object
/// deleted before its pass at debug level. The text goes through
/// [`crate::telemetry::redact_values`]: a decoder's error quotes the value it failed on.
pub fn log_output<T, R: std::fmt::Display, Q: std::fmt::Display>(
    controller: &'static str,
) -> impl FnMut(Result<T, kube::runtime::controller::Error<R, Q>>) -> std::future::Ready<()> {
    move |r| {
        match r {
            Ok(_) => {}
            Err(kube::runtime::controller::Error::QueueError(e)) => {
                warn!(controller, error = %crate::telemetry::redact_values(&e.to_string()), "controller watch failed");
            }
            Err(e) => {
                tracing::debug!(controller, error = %crate::telemetry::redact_values(&e.to_string()), "controller output");
            }
        }
        std::future::ready(())
    }
}

/// Server-side applies `status` to the status subresource of `obj` when it differs from
/// `current`. Returns the object's new resourceVersion when a write happened.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    obj: &K,
    current: Option<&S>,
    status: &S,
) -> Result<Option<String>, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(None);
    }
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let written = api
        .patch_status(
            &obj.name_any(),
            &PatchParams::apply(crate::vocabulary::FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(Some(written.resource_version().unwrap_or_default()))
}

/// The newest resourceVersion this process has seen of each object, from its own writes
/// and fresh reads. The watch cache can lag a status write by a moment; a pass that
/// started from the older cached copy would recompute the status from stale input, write
/// it again and trigger one more pass. With this, such a pass reads the object first.
#[derive(Default, Debug)]
pub struct SeenVersions(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl SeenVersions {
    /// Whether this process has seen a different (newer) version of `key` than the
    /// cached `version`. Unknown objects are never behind.
    pub fn is_behind(&self, key: &str, version: Option<&str>) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .is_some_and(|seen| Some(seen.as_str()) != version)
    }

    /// Records `version` of `key` as the newest seen. When the map holds far more keys
    /// than `live` objects exist, keys no longer `alive` are dropped.
    pub fn saw(
        &self,
        key: String,
        version: Option<String>,
        live: usize,
        alive: impl Fn(&str) -> bool,
    ) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match version {
            Some(v) => {
                map.insert(key, v);
            }
            None => {
                map.remove(&key);
            }
        }
        if map.len() > 2 * live + 1024 {
            map.retain(|k, _| alive(k));
        }
    }

    /// Forgets `key` (the object is gone).
    pub fn forget(&self, key: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

/// The current time. Controllers read the clock here and pass it to pure decisions.
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::SeenVersions;

    #[test]
    fn a_cached_copy_older_than_a_write_is_behind() {
        let seen = SeenVersions::default();
        // Nothing known: the cache is trusted.
        assert!(!seen.is_behind("ns/a", Some("10")));
        seen.saw("ns/a".into(), Some("12".into()), 1, |_| true);
        assert!(
            seen.is_behind("ns/a", Some("10")),
            "cache older than the write"
        );
        assert!(seen.is_behind("ns/a", None));
        assert!(!seen.is_behind("ns/a", Some("12")), "cache caught up");
        assert!(
            !seen.is_behind("ns/b", Some("1")),
            "other objects unaffected"
        );
        seen.forget("ns/a");
        assert!(!seen.is_behind("ns/a", Some("10")));
    }

    #[test]
    fn keys_of_deleted_objects_are_dropped_when_the_map_outgrows_the_live_objects() {
        let seen = SeenVersions::default();
        for i in 0..1100 {
            seen.saw(format!("ns/c{i}"), Some("1".into()), 10, |k| k == "ns/c5");
        }
        // Pruned on the way: far fewer than 1100 keys, and the live one is kept.
        assert!(seen.0.lock().unwrap().len() < 1100);
        assert!(seen.is_behind("ns/c5", Some("0")));
    }
}
