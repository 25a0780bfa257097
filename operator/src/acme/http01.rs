//! HTTP-01 challenges. The pending key authorizations live in the API (one labelled
//! ConfigMap per challenge in the operator namespace), not in one process's memory, so
//! whichever replica the Ingress routes the CA's request to can answer it. Per challenge
//! the operator also creates a Service in front of its own pods and an Ingress rule for
//! `http://<name>/.well-known/acme-challenge/<token>`, and removes all three afterwards.
//!
//! The replica that presented a challenge also keeps its answer in memory until the order
//! is done: its responder answers the CA without reading the API, and tells the waiting
//! order that the CA came for the answer (so it looks at the order right after instead of
//! at the next poll). Challenges of other replicas are read from the API as before.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::{Arc, LazyLock, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use k8s_openapi::api::{
    core::v1::{ConfigMap, Service},
    networking::v1::Ingress,
};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use tracing::{debug, warn};

use super::error::AcmeError;
use crate::vocabulary::{MANAGED_BY, ROLE_LABEL};

/// Value of `siths-operator.io/role` on the ConfigMaps, Services and Ingresses of pending
/// HTTP-01 challenges.
pub const ROLE_ACME_HTTP01: &str = "acme-http01";
/// Path prefix the CA fetches (RFC 8555 §8.3).
pub const CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";
/// Label on the solver objects: the namespace of the certificate being issued.
pub const OWNER_NAMESPACE_LABEL: &str = "siths-operator.io/owner-namespace";
/// Pod labels of the operator the solver Service selects (the chart's selector label).
pub const OPERATOR_POD_SELECTOR: (&str, &str) = ("app.kubernetes.io/name", "siths-operator");
const TOKEN_KEY: &str = "token";
const KEY_AUTHORIZATION_KEY: &str = "keyAuthorization";

/// Name of the ConfigMap, Service and Ingress of the challenge with `token`: derived
/// from a hash of the token, so every replica finds it from the request path alone and
/// the name is a valid DNS-1035 label whatever the CA's token looks like.
pub fn solver_name(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let hex: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("acme-http01-{hex}")
}

/// Whether `token` can be an ACME token (base64url, RFC 8555 §8.1): anything else is
/// answered with 404 without asking the API.
pub fn is_token(token: &str) -> bool {
    (16..=256).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A challenge this process presented and has not cleaned up: its key authorization and,
/// once the CA was told to validate, the signal its first fetch gives.
struct Presented {
    key_authorization: String,
    fetched: Option<Arc<tokio::sync::Notify>>,
}

/// The challenges this process presented, by (operator namespace, token). An entry lives
/// exactly as long as the [`Solver`] that presented it.
static PRESENTED: LazyLock<Mutex<HashMap<(String, String), Presented>>> =
    LazyLock::new(Mutex::default);

fn presented() -> std::sync::MutexGuard<'static, HashMap<(String, String), Presented>> {
    PRESENTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The key authorization of a challenge this process presented in `namespace`, and a
/// signal to the order waiting for the CA's fetch.
fn answer_presented(namespace: &str, token: &str) -> Option<String> {
    let map = presented();
    let p = map.get(&(namespace.to_string(), token.to_string()))?;
    if let Some(n) = &p.fetched {
        n.notify_one();
    }
    Some(p.key_authorization.clone())
}

/// One pending challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub name: String,
    pub token: String,
    pub key_authorization: String,
}

fn labels(owner_namespace: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (ROLE_LABEL.to_string(), ROLE_ACME_HTTP01.to_string()),
        (
            OWNER_NAMESPACE_LABEL.to_string(),
            owner_namespace.to_string(),
        ),
    ])
}

/// The three objects of one challenge.
pub(crate) fn solver_objects(
    c: &Challenge,
    namespace: &str,
    owner_namespace: &str,
    http01_port: u16,
    ingress_class: Option<&str>,
) -> Result<(ConfigMap, Service, Ingress), serde_json::Error> {
    let name = solver_name(&c.token);
    let meta = serde_json::json!({
        "name": name,
        "namespace": namespace,
        "labels": labels(owner_namespace),
        "annotations": { "siths-operator.io/acme-identifier": c.name },
    });
    let cm = serde_json::from_value(serde_json::json!({
        "metadata": meta,
        // Key authorizations are not secret: the CA fetches them over plain HTTP.
        "data": { TOKEN_KEY: c.token, KEY_AUTHORIZATION_KEY: c.key_authorization },
    }))?;
    let svc = serde_json::from_value(serde_json::json!({
        "metadata": meta,
        "spec": {
            "selector": { OPERATOR_POD_SELECTOR.0: OPERATOR_POD_SELECTOR.1 },
            "ports": [{ "name": "http", "port": 80, "targetPort": http01_port, "protocol": "TCP" }],
        },
    }))?;
    let mut ingress_spec = serde_json::json!({
        "rules": [{
            "host": c.name,
            "http": { "paths": [{
                "path": format!("{CHALLENGE_PATH}{}", c.token),
                "pathType": "Exact",
                "backend": { "service": { "name": name, "port": { "number": 80 } } },
            }]},
        }],
    });
    if let Some(class) = ingress_class {
        ingress_spec["ingressClassName"] = class.into();
    }
    let ingress = serde_json::from_value(serde_json::json!({
        "metadata": meta,
        "spec": ingress_spec,
    }))?;
    Ok((cm, svc, ingress))
}

/// How the CA's HTTP request reaches the responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via<'a> {
    /// An Ingress rule (of `class`, else the cluster's default class).
    Ingress {
        /// `spec.ingressClassName`.
        class: Option<&'a str>,
    },
    /// An HTTPRoute attached to the Gateway `namespace/name` (the certificate is kept for a
    /// listener of that Gateway). The route lives in the operator namespace, next to the
    /// responder Service, so the Gateway's HTTP listener must allow routes from there.
    Gateway {
        /// The Gateway's namespace.
        namespace: &'a str,
        /// Its name.
        name: &'a str,
    },
}

/// The HTTPRoute of one challenge: `http://<name>/.well-known/acme-challenge/<token>` on the
/// Gateway `gateway_ns/gateway`, to the challenge's Service.
pub(crate) fn solver_http_route(
    c: &Challenge,
    namespace: &str,
    owner_namespace: &str,
    gateway_ns: &str,
    gateway: &str,
) -> serde_json::Value {
    let name = solver_name(&c.token);
    serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(owner_namespace),
            "annotations": { "siths-operator.io/acme-identifier": c.name },
        },
        "spec": {
            "parentRefs": [{ "group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": gateway_ns, "name": gateway }],
            "hostnames": [c.name],
            "rules": [{
                "matches": [{ "path": { "type": "Exact", "value": format!("{CHALLENGE_PATH}{}", c.token) } }],
                "backendRefs": [{ "group": "", "kind": "Service", "name": name, "port": 80 }],
            }],
        },
    })
}

fn http_routes(client: &Client, namespace: &str) -> Api<kube::api::DynamicObject> {
    let resource = kube::api::ApiResource::erase::<crate::api::gateway::HTTPRoute>(&());
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Which object routes a challenge's request to the responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    Ingress,
    HttpRoute,
}

/// Creates and removes the solver objects of one order; [`Solver::cleanup`] must run
/// whatever the outcome. Its challenges are answered from memory while it lives.
pub(crate) struct Solver {
    client: Client,
    namespace: String,
    created: Vec<(String, RouteKind)>,
    /// Tokens of this solver in [`PRESENTED`].
    tokens: Vec<String>,
    /// Signals of the challenges the CA was told to validate.
    fetches: Vec<Arc<tokio::sync::Notify>>,
}

impl Drop for Solver {
    fn drop(&mut self) {
        let mut map = presented();
        for t in &self.tokens {
            map.remove(&(self.namespace.clone(), t.clone()));
        }
    }
}

impl Solver {
    pub fn new(client: Client, namespace: String) -> Self {
        Self {
            client,
            namespace,
            created: Vec::new(),
            tokens: Vec::new(),
            fetches: Vec::new(),
        }
    }

    /// Call right before telling the CA that `c` is ready: from then on the responder's
    /// first answer to it is signalled to [`Self::wait_fetched`] (a self-check's fetch
    /// before does not count).
    pub fn expect_fetch(&mut self, c: &Challenge) {
        let notify = Arc::new(tokio::sync::Notify::new());
        if let Some(p) = presented().get_mut(&(self.namespace.clone(), c.token.clone())) {
            p.fetched = Some(notify.clone());
            self.fetches.push(notify);
        }
    }

    /// Waits until this process's responder has answered the CA for every challenge passed
    /// to [`Self::expect_fetch`], at most `timeout`. False when it did not (the CA asked
    /// another replica, or has not asked yet), or when no challenge is expected.
    pub async fn wait_fetched(&self, timeout: Duration) -> bool {
        if self.fetches.is_empty() {
            tokio::time::sleep(timeout).await;
            return false;
        }
        let all = async {
            for n in &self.fetches {
                n.notified().await;
            }
        };
        tokio::time::timeout(timeout, all).await.is_ok()
    }

    /// Creates the ConfigMap, Service and Ingress of `c` (an existing object of the same
    /// name, left by an earlier attempt at the same token, is reused).
    pub async fn present(
        &mut self,
        c: &Challenge,
        owner_namespace: &str,
        http01_port: u16,
        via: Via<'_>,
    ) -> Result<(), AcmeError> {
        let ingress_class = match via {
            Via::Ingress { class } => class,
            Via::Gateway { .. } => None,
        };
        let (cm, svc, ing) = solver_objects(
            c,
            &self.namespace,
            owner_namespace,
            http01_port,
            ingress_class,
        )
        .map_err(|e| AcmeError::config(format!("building HTTP-01 solver objects: {e}")))?;
        let name = solver_name(&c.token);
        let kind = match via {
            Via::Ingress { .. } => RouteKind::Ingress,
            Via::Gateway { .. } => RouteKind::HttpRoute,
        };
        self.created.push((name.clone(), kind));
        let pp = PostParams::default();
        let ns = &self.namespace;
        let fail = |what: &str, e: kube::Error| {
            AcmeError::new(
                super::error::ACME_CHALLENGE_FAILED,
                format!("creating the HTTP-01 {what} {ns}/{name} failed: {e}"),
            )
        };
        // The three objects do not depend on each other: one round trip, not three.
        let config_map = async {
            create(
                &Api::<ConfigMap>::namespaced(self.client.clone(), ns),
                &pp,
                &cm,
            )
            .await
            .map_err(|e| fail("ConfigMap", e))
        };
        let service = async {
            create(
                &Api::<Service>::namespaced(self.client.clone(), ns),
                &pp,
                &svc,
            )
            .await
            .map_err(|e| fail("Service", e))
        };
        let route = async {
            match via {
                Via::Ingress { .. } => create(
                    &Api::<Ingress>::namespaced(self.client.clone(), ns),
                    &pp,
                    &ing,
                )
                .await
                .map_err(|e| fail("Ingress", e)),
                Via::Gateway { namespace, name } => {
                    let route: kube::api::DynamicObject = serde_json::from_value(
                        solver_http_route(c, ns, owner_namespace, namespace, name),
                    )
                    .map_err(|e| {
                        AcmeError::config(format!("building the HTTP-01 HTTPRoute: {e}"))
                    })?;
                    create(&http_routes(&self.client, ns), &pp, &route)
                        .await
                        .map_err(|e| fail("HTTPRoute", e))
                }
            }
        };
        tokio::try_join!(config_map, service, route)?;
        presented().insert(
            (self.namespace.clone(), c.token.clone()),
            Presented {
                key_authorization: c.key_authorization.clone(),
                fetched: None,
            },
        );
        self.tokens.push(c.token.clone());
        Ok(())
    }

    /// Deletes every object this solver created. Failures are logged, not returned: a
    /// leftover is labelled and harmless, and must not hide the order's own outcome.
    pub async fn cleanup(self) {
        let dp = DeleteParams::default();
        for (name, kind) in &self.created {
            let ns = &self.namespace;
            // Only the kind of route this solver created; the three deletes at once.
            let route = async {
                match kind {
                    RouteKind::Ingress => Api::<Ingress>::namespaced(self.client.clone(), ns)
                        .delete(name, &dp)
                        .await
                        .map(|_| ()),
                    RouteKind::HttpRoute => http_routes(&self.client, ns)
                        .delete(name, &dp)
                        .await
                        .map(|_| ()),
                }
            };
            let service = async {
                Api::<Service>::namespaced(self.client.clone(), ns)
                    .delete(name, &dp)
                    .await
                    .map(|_| ())
            };
            let config_map = async {
                Api::<ConfigMap>::namespaced(self.client.clone(), ns)
                    .delete(name, &dp)
                    .await
                    .map(|_| ())
            };
            let (route, service, config_map) = tokio::join!(route, service, config_map);
            for r in [route, service, config_map] {
                match r {
                    Ok(()) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => {
                        warn!(namespace = %ns, name = %name, error = %e, "removing an HTTP-01 solver object failed")
                    }
                }
            }
        }
    }
}

/// Whether a solver object created at `created` is left over from an order that cannot
/// still be running at `now` (orders give up after a few minutes; `max_age` is longer).
pub fn is_stale(
    created: jiff::Timestamp,
    now: jiff::Timestamp,
    max_age: std::time::Duration,
) -> bool {
    now.duration_since(created)
        >= jiff::SignedDuration::try_from(max_age).unwrap_or(jiff::SignedDuration::MAX)
}

/// Deletes the solver objects (labelled [`ROLE_ACME_HTTP01`]) in `namespace` older than
/// `max_age`: what a process that died in the middle of an order left behind. Returns
/// how many objects it deleted.
pub(crate) async fn remove_stale(
    client: &Client,
    namespace: &str,
    max_age: std::time::Duration,
) -> Result<usize, kube::Error> {
    let lp = kube::api::ListParams::default().labels(&format!(
        "{}={},{ROLE_LABEL}={ROLE_ACME_HTTP01}",
        MANAGED_BY.0, MANAGED_BY.1
    ));
    let now = jiff::Timestamp::now();
    let stale = |m: &kube::api::ObjectMeta| {
        m.creation_timestamp
            .as_ref()
            .is_some_and(|t| is_stale(t.0, now, max_age))
    };
    let dp = DeleteParams::default();
    let mut removed = 0;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    for o in cms.list_metadata(&lp).await?.items {
        if stale(&o.metadata) {
            ignore_missing(
                cms.delete(&o.metadata.name.unwrap_or_default(), &dp)
                    .await
                    .map(|_| ()),
            )?;
            removed += 1;
        }
    }
    let svcs = Api::<Service>::namespaced(client.clone(), namespace);
    for o in svcs.list_metadata(&lp).await?.items {
        if stale(&o.metadata) {
            ignore_missing(
                svcs.delete(&o.metadata.name.unwrap_or_default(), &dp)
                    .await
                    .map(|_| ()),
            )?;
            removed += 1;
        }
    }
    let ings = Api::<Ingress>::namespaced(client.clone(), namespace);
    for o in ings.list_metadata(&lp).await?.items {
        if stale(&o.metadata) {
            ignore_missing(
                ings.delete(&o.metadata.name.unwrap_or_default(), &dp)
                    .await
                    .map(|_| ()),
            )?;
            removed += 1;
        }
    }
    let routes = http_routes(client, namespace);
    let listed = match routes.list_metadata(&lp).await {
        Ok(l) => l.items,
        // Gateway API not served: no routes.
        Err(kube::Error::Api(e)) if e.code == 404 => Vec::new(),
        Err(e) => return Err(e),
    };
    for o in listed {
        if stale(&o.metadata) {
            ignore_missing(
                routes
                    .delete(&o.metadata.name.unwrap_or_default(), &dp)
                    .await
                    .map(|_| ()),
            )?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn ignore_missing(r: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match r {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other,
    }
}

/// The operator's own check of a challenge answer before it tells the CA to validate:
/// an ingress controller takes a moment to serve a new Ingress, and a validation the CA
/// tries too early fails the whole order (and counts against the CA's failed-validation
/// limits).
#[derive(Debug, Clone)]
pub struct SelfCheck {
    /// Connect here instead of resolving the name on port 80 (tests, or a cluster whose
    /// own DNS does not resolve its public names). The `Host` header is always the name.
    pub connect_to: Option<std::net::SocketAddr>,
    /// How long to keep trying before giving up on the order.
    pub timeout: std::time::Duration,
}

impl Default for SelfCheck {
    fn default() -> Self {
        Self {
            connect_to: None,
            timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// Fetches `http://<name>/.well-known/acme-challenge/<token>` until it returns the key
/// authorization, or fails after `check.timeout`.
pub(crate) async fn self_check(c: &Challenge, check: &SelfCheck) -> Result<(), AcmeError> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let path = format!("{CHALLENGE_PATH}{}", c.token);
    let authority = match check.connect_to {
        Some(addr) => addr.to_string(),
        None => c.name.clone(),
    };
    let url = format!("http://{}{path}", c.name);
    let deadline = tokio::time::Instant::now() + check.timeout;
    loop {
        let attempt = async {
            let req = http::Request::get(format!("http://{authority}{path}"))
                .header(http::header::HOST, &c.name)
                .header(http::header::USER_AGENT, "siths-operator-http01-self-check")
                .body(Empty::new())
                .map_err(|e| e.to_string())?;
            let rsp = client.request(req).await.map_err(|e| e.to_string())?;
            let status = rsp.status();
            let body = rsp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if !status.is_success() {
                return Err(format!("HTTP {status}"));
            }
            if body.trim_ascii() != c.key_authorization.as_bytes() {
                return Err("a different answer than the key authorization".to_string());
            }
            Ok(())
        };
        let last = match tokio::time::timeout(std::time::Duration::from_secs(5), attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => "no answer within 5 s".to_string(),
        };
        if tokio::time::Instant::now() + std::time::Duration::from_secs(1) > deadline {
            return Err(AcmeError::new(
                super::error::ACME_CHALLENGE_FAILED,
                format!(
                    "the operator's own check of {url} did not get the key authorization within {} s (last: {last}); the CA was not asked to validate. Check that DNS for {} points at the ingress controller and that it serves the Ingress {} in the operator namespace",
                    check.timeout.as_secs(),
                    c.name,
                    solver_name(&c.token)
                ),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn create<K>(api: &Api<K>, pp: &PostParams, obj: &K) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(pp, obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[derive(Clone)]
struct Responder {
    config_maps: Api<ConfigMap>,
    namespace: String,
}

/// Serves `GET /.well-known/acme-challenge/<token>` on `listener` until `shutdown`
/// completes: a challenge this process presented in `namespace` from memory, any other
/// from its challenge ConfigMap in `namespace` (read from the API on each request, so any
/// replica answers any challenge).
pub async fn serve_http01(
    listener: tokio::net::TcpListener,
    client: Client,
    namespace: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = Responder {
        config_maps: Api::namespaced(client, &namespace),
        namespace,
    };
    let app = Router::new()
        .route("/.well-known/acme-challenge/{token}", get(answer))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn answer(State(r): State<Responder>, Path(token): Path<String>) -> Response {
    if !is_token(&token) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let name = solver_name(&token);
    if let Some(ka) = answer_presented(&r.namespace, &token) {
        debug!(%name, "answered an HTTP-01 challenge this process presented");
        return ([(header::CONTENT_TYPE, "application/octet-stream")], ka).into_response();
    }
    match r.config_maps.get_opt(&name).await {
        Ok(Some(cm)) => {
            let data = cm.data.unwrap_or_default();
            match (data.get(TOKEN_KEY), data.get(KEY_AUTHORIZATION_KEY)) {
                (Some(t), Some(ka)) if *t == token => {
                    debug!(%name, "answered an HTTP-01 challenge");
                    (
                        [(header::CONTENT_TYPE, "application/octet-stream")],
                        ka.clone(),
                    )
                        .into_response()
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            warn!(%name, error = %e, "reading an HTTP-01 challenge failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solver_names_are_stable_short_dns_labels() {
        let a = solver_name("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0");
        assert_eq!(
            a,
            solver_name("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
        );
        assert_ne!(
            a,
            solver_name("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX1")
        );
        assert!(a.len() <= 63);
        assert!(a.starts_with("acme-http01-"));
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
    }

    #[tokio::test]
    async fn presented_challenges_are_answered_from_memory_and_signal_the_fetch() {
        let key = (
            "ops-memory".to_string(),
            "tokenOfThisProcess0123".to_string(),
        );
        assert_eq!(answer_presented(&key.0, &key.1), None);
        let fetched = Arc::new(tokio::sync::Notify::new());
        presented().insert(
            key.clone(),
            Presented {
                key_authorization: "tokenOfThisProcess0123.thumb".into(),
                fetched: Some(fetched.clone()),
            },
        );
        // Another namespace's responder does not answer it.
        assert_eq!(answer_presented("other", &key.1), None);
        assert_eq!(
            tokio::time::timeout(Duration::from_millis(20), fetched.notified())
                .await
                .ok(),
            None,
            "signalled before the CA asked"
        );
        assert_eq!(
            answer_presented(&key.0, &key.1).as_deref(),
            Some("tokenOfThisProcess0123.thumb")
        );
        tokio::time::timeout(Duration::from_secs(1), fetched.notified())
            .await
            .expect("the fetch is signalled");
        presented().remove(&key);
        assert_eq!(answer_presented(&key.0, &key.1), None);
    }

    #[test]
    fn solver_objects_are_stale_only_past_max_age() {
        let t = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).unwrap();
        let ten_min = std::time::Duration::from_secs(600);
        assert!(!is_stale(t(0), t(599), ten_min));
        assert!(is_stale(t(0), t(600), ten_min));
        assert!(
            !is_stale(t(10), t(0), ten_min),
            "clock skew: created in the future"
        );
        assert!(is_stale(t(0), t(0), std::time::Duration::ZERO));
        assert!(!is_stale(t(0), t(600), std::time::Duration::MAX));
    }

    #[test]
    fn only_base64url_tokens_are_looked_up() {
        assert!(is_token("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"));
        assert!(is_token("abc-DEF_0123456789"));
        assert!(!is_token("short"));
        assert!(!is_token("../../../../etc/passwd-abcdefgh"));
        assert!(!is_token("a b c d e f g h i j k"));
        assert!(!is_token(&"a".repeat(257)));
    }

    #[test]
    fn solver_objects_route_exactly_the_challenge_path() {
        let c = Challenge {
            name: "www.region.example".into(),
            token: "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0".into(),
            key_authorization: "LoqX.thumb".into(),
        };
        let (cm, svc, ing) = solver_objects(&c, "ops", "team-a", 8089, Some("nginx")).unwrap();
        let name = solver_name(&c.token);
        for m in [&cm.metadata, &svc.metadata, &ing.metadata] {
            assert_eq!(m.name.as_deref(), Some(name.as_str()));
            assert_eq!(m.namespace.as_deref(), Some("ops"));
            let l = m.labels.as_ref().unwrap();
            assert_eq!(l[ROLE_LABEL], ROLE_ACME_HTTP01);
            assert_eq!(l[OWNER_NAMESPACE_LABEL], "team-a");
        }
        let data = cm.data.unwrap();
        assert_eq!(data[TOKEN_KEY], c.token);
        assert_eq!(data[KEY_AUTHORIZATION_KEY], "LoqX.thumb");
        let port = &svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        assert_eq!(
            port.target_port,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8089))
        );
        let spec = ing.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("www.region.example"));
        let path = &rule.http.as_ref().unwrap().paths[0];
        assert_eq!(
            path.path.as_deref(),
            Some(&*format!("{CHALLENGE_PATH}{}", c.token))
        );
        assert_eq!(path.path_type, "Exact");
        let (_, _, ing) = solver_objects(&c, "ops", "team-a", 8089, None).unwrap();
        assert_eq!(ing.spec.unwrap().ingress_class_name, None);
        // Through a Gateway: an HTTPRoute in the operator namespace attached to it.
        let r = solver_http_route(&c, "ops", "team-a", "team-a", "web");
        assert_eq!(r["metadata"]["name"], name.as_str());
        assert_eq!(r["metadata"]["labels"][ROLE_LABEL], ROLE_ACME_HTTP01);
        assert_eq!(r["spec"]["parentRefs"][0]["name"], "web");
        assert_eq!(r["spec"]["parentRefs"][0]["namespace"], "team-a");
        assert_eq!(r["spec"]["hostnames"][0], "www.region.example");
        assert_eq!(
            r["spec"]["rules"][0]["matches"][0]["path"]["value"],
            format!("{CHALLENGE_PATH}{}", c.token).as_str()
        );
        assert_eq!(
            r["spec"]["rules"][0]["backendRefs"][0]["name"],
            name.as_str()
        );
    }
}
