//! Wiring of the operator process: client, endpoints, leader election, caches, controllers,
//! shutdown.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt};
use kube::{
    Api, Client,
    client::ClientBuilder,
    runtime::{Controller, WatchStreamExt, reflector, watcher},
};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::{
    api::{DomainValidation, ServiceCertificate},
    controllers::{self, Context, Settings},
    leader::{Election, Leadership, LeaseSettings},
    metrics::Metrics,
    server::{self, Health},
    telemetry::LogFormat,
};

/// Command-line flags of `siths-operator`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    version,
    about = "Kubernetes operator for SITHS function certificates and their publicly trusted replacements"
)]
pub struct Args {
    /// Log format.
    #[arg(long, env = "SITHS_LOG_FORMAT", value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    /// PEM file with the SITHS CA certificates; each is checked against the pinned
    /// fingerprints before use. Used by issuers without trustAnchors.
    #[arg(long, env = "SITHS_CA_FILE")]
    pub siths_ca_file: Option<PathBuf>,
    /// Port of /metrics, /healthz and /readyz (all interfaces).
    #[arg(long, env = "SITHS_HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,
    /// Elect a leader with a coordination Lease: only the leader reconciles and writes.
    #[arg(long, env = "SITHS_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the Lease.
    #[arg(long, env = "SITHS_LEASE_NAME", default_value = "siths-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (the operator's own namespace in a cluster).
    #[arg(long, env = "POD_NAMESPACE", default_value = "siths-operator")]
    pub lease_namespace: String,
    /// Identity of this replica in the Lease; defaults to the host name and process id.
    #[arg(long, env = "POD_NAME")]
    pub leader_identity: Option<String>,
    /// Seconds the lease stays valid after a renewal; a standby takes over this long after
    /// the leader's last renewal.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Seconds before expiry the leader renews; also the clock skew tolerated between nodes.
    #[arg(long, default_value_t = 5)]
    pub lease_grace_seconds: u64,
    /// Mode of Ingresses without the `siths-operator.io/tls` annotation.
    #[arg(long, env = "SITHS_INGRESS_MODE", value_enum, default_value = "audit")]
    pub ingress_mode: controllers::IngressMode,
    /// PublicIssuer for Ingresses in `public` mode without a
    /// `siths-operator.io/public-issuer` annotation.
    #[arg(long, env = "SITHS_DEFAULT_PUBLIC_ISSUER")]
    pub default_public_issuer: Option<String>,
    /// Port of the ACME HTTP-01 challenge responder (all interfaces).
    #[arg(long, env = "SITHS_ACME_HTTP01_PORT", default_value_t = 8089)]
    pub acme_http01_port: u16,
    /// Seconds between checks for Gateway API while it is not served: Gateways are watched
    /// from the first check that finds it, without a restart.
    #[arg(long, env = "SITHS_GATEWAY_API_RECHECK_SECONDS", default_value_t = 60)]
    pub gateway_api_recheck_seconds: u64,
    /// Nameservers the live DNS TXT check of DomainValidations asks (`ip` or `ip:port`,
    /// comma-separated); empty: the system resolver.
    #[arg(long, env = "SITHS_DNS_NAMESERVERS", value_delimiter = ',', value_parser = crate::dns::parse_nameserver)]
    pub dns_nameservers: Vec<std::net::SocketAddr>,
    /// Seconds one DNS TXT lookup may take.
    #[arg(long, env = "SITHS_DNS_CHECK_TIMEOUT_SECONDS", default_value_t = 5)]
    pub dns_check_timeout_seconds: u64,
    /// Seconds between live checks of a TXT record that was found (jittered ±10% per
    /// object; a missing record is looked up again within the hour, a failed lookup within
    /// five minutes).
    #[arg(
        long,
        env = "SITHS_DNS_CHECK_INTERVAL_SECONDS",
        default_value_t = 86400
    )]
    pub dns_check_interval_seconds: u64,
    /// Seconds the last definite answer of a live check counts while lookups fail.
    #[arg(long, env = "SITHS_DNS_CHECK_GRACE_SECONDS", default_value_t = 259200)]
    pub dns_check_grace_seconds: u64,
    /// Keys generated in advance per key type, in memory only, while no issuance waits for
    /// a generation; a burst takes them first. 0: no pool (keys are generated when needed).
    #[arg(long, env = "SITHS_KEY_POOL_SIZE", default_value_t = crate::keypool::DEFAULT_SIZE)]
    pub key_pool_size: usize,
    /// Key types the pool keeps (comma-separated): rsa-2048, rsa-3072, rsa-4096,
    /// ecdsa-p256, ecdsa-p384, and `recent` (the types asked for in the last hour).
    #[arg(
        long,
        env = "SITHS_KEY_POOL_TYPES",
        value_delimiter = ',',
        default_values = ["rsa-2048", "recent"]
    )]
    pub key_pool_types: Vec<crate::keypool::PoolType>,
}

impl Args {
    fn lease_settings(&self) -> LeaseSettings {
        LeaseSettings {
            name: self.lease_name.clone(),
            namespace: self.lease_namespace.clone(),
            identity: self
                .leader_identity
                .clone()
                .unwrap_or_else(default_identity),
            duration_seconds: self.lease_duration_seconds,
            grace_seconds: self.lease_grace_seconds,
        }
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "siths-operator".into());
    format!("{host}-{}", std::process::id())
}

/// Resolves when `rx` turns true (the stop signal).
fn until_stopped(
    rx: &watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// The annotation in which client-side `kubectl apply` keeps the object as last applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the ServiceCertificate cache leaves out of each object: its managedFields and
/// [`LAST_APPLIED`].
fn trim_for_cache(c: &mut ServiceCertificate) {
    c.metadata.managed_fields = None;
    if let Some(a) = c.metadata.annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// Age after which an ACME HTTP-01 solver object belongs to no live order.
const STALE_SOLVER_AGE: Duration = Duration::from_secs(600);

/// Longest wait for the controllers after SIGTERM or SIGINT.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = kube::Config::infer()
        .await
        .context("no Kubernetes configuration (KUBECONFIG or in-cluster)")?;
    let client = Client::try_from(config.clone())?;
    let version = client
        .apiserver_version()
        .await
        .context("cannot reach the Kubernetes API")?;
    info!(server_version = %version.git_version, "siths-operator starting");

    // One signal, many listeners.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let listener = server::bind(SocketAddr::from(([0, 0, 0, 0], args.http_port))).await?;
    let http = tokio::spawn(server::serve(
        listener,
        metrics.clone(),
        health.clone(),
        until_stopped(&stop_rx),
    ));
    // Every replica answers ACME HTTP-01 challenges (the tokens are in the API), leader
    // or not, so the solver Service may route to any of them.
    match tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], args.acme_http01_port)))
        .await
    {
        Ok(l) => {
            tokio::spawn(crate::acme::serve_http01(
                l,
                client.clone(),
                args.lease_namespace.clone(),
                until_stopped(&stop_rx),
            ));
        }
        Err(e) => {
            warn!(port = args.acme_http01_port, error = %e, "cannot serve ACME HTTP-01 challenges; ACME issuance from this replica will fail validation")
        }
    }

    let election = if args.leader_election {
        let lease = args.lease_settings();
        let e = Election::start(client.clone(), &lease).await?;
        info!(lease = %format!("{}/{}", lease.namespace, lease.name), identity = %lease.identity, "leader election: standing by until this replica holds the lease");
        Some(e)
    } else {
        info!("leader election is off: this replica reconciles at once");
        None
    };
    let leadership = election
        .as_ref()
        .map(|e| e.leadership.clone())
        .unwrap_or_else(Leadership::always);
    // The controllers write only through this client, which refuses writes the moment
    // leadership ends.
    let fenced = ClientBuilder::try_from(config)?
        .with_layer(&leadership.fence())
        .build();
    let settings = Settings {
        siths_ca_file: args.siths_ca_file.clone(),
        namespace: args.lease_namespace.clone(),
        ingress_mode: args.ingress_mode,
        default_public_issuer: args.default_public_issuer.clone(),
        acme_http01_port: args.acme_http01_port,
        gateway_api_recheck: std::time::Duration::from_secs(
            args.gateway_api_recheck_seconds.max(1),
        ),
        dns_lookup: crate::dns::LookupSettings {
            nameservers: args.dns_nameservers.clone(),
            timeout: Duration::from_secs(args.dns_check_timeout_seconds.max(1)),
        },
        dns_schedule: crate::policy::dns_check::Schedule {
            interval: Duration::from_secs(args.dns_check_interval_seconds.max(1)),
            grace: Duration::from_secs(args.dns_check_grace_seconds),
        },
    };
    crate::keypool::global().configure(crate::keypool::PoolSettings {
        size: args.key_pool_size,
        types: args.key_pool_types.clone(),
    });
    if args.key_pool_size > 0 {
        info!(
            size = args.key_pool_size,
            types = ?args.key_pool_types,
            "key pool: keys generated in advance while no issuance waits, in memory only"
        );
    }
    health.set_ready();

    let mut result = Ok(());
    loop {
        tokio::select! {
            _ = leadership.acquired() => {}
            _ = until_stopped(&stop_rx) => break,
            _ = election_failed(election.as_ref()) => {
                result = Err(anyhow::anyhow!("leader election stopped working"));
                break;
            }
        }
        info!("leading: starting the controllers");
        metrics.set_leader(true);
        let mut task = tokio::spawn(run_controllers(
            fenced.clone(),
            settings.clone(),
            metrics.clone(),
            stop_rx.clone(),
        ));
        let lost = tokio::select! {
            _ = leadership.lost() => {
                // Dropping the controllers cancels every request in flight; the fence
                // refuses any write issued before the abort takes effect.
                task.abort();
                true
            }
            _ = &mut task => false,
            _ = async {
                until_stopped(&stop_rx).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                // kube's graceful shutdown waits for in-flight reconciles, but never ends if
                // the stop comes before a controller's cache has synced (its watch is stopped
                // first, so the cache never becomes ready).
                warn!("controllers did not stop within {SHUTDOWN_GRACE:?} of the stop signal; aborting them");
                task.abort();
                false
            }
        };
        metrics.set_leader(false);
        metrics.detach();
        if !lost {
            break;
        }
        let _ = task.await;
        warn!("lost the leader lease: controllers stopped, standing by");
    }
    // The controllers emptied it when they stopped; once more, whatever stopped them.
    crate::keypool::global().empty();
    if let Some(e) = election {
        e.release().await;
    }
    if let Ok(Err(e)) = http.await {
        warn!(error = %e, "HTTP endpoints failed");
    }
    info!("siths-operator stopped");
    result
}

/// Resolves when the election machinery has stopped (never, when there is none).
async fn election_failed(election: Option<&Election>) {
    let Some(e) = election else {
        return std::future::pending().await;
    };
    while e.is_running() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs the caches and controllers until the stop signal (or until aborted).
async fn run_controllers(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (validations, writer) = reflector::store();
    let dv_stream = reflector(
        writer,
        crate::controllers::watch(
            Api::<DomainValidation>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        ),
    )
    .applied_objects()
    .for_each(|_| async {});
    let controllers = async {
        crate::controllers::ready_store::ReadyStore::new(validations.clone())
            .ready()
            .await
            .context("DomainValidation cache: its watch stopped before it listed")?;
        // The cache holds every ServiceCertificate without its managedFields (as JSON trees
        // they were the larger part of each cached object) and without the copy of itself
        // a client-side `kubectl apply` leaves in an annotation (as large as the object).
        // Nothing reads them, and no write sends a cached object back whole. Beside the
        // cache, the same events keep the index of which certificates name each Secret.
        let (certificate_store, certificate_writer) = reflector::store();
        let claims = Arc::new(controllers::secret_claims::SecretClaims::default());
        let index = claims.clone();
        let certificate_stream = reflector(
            certificate_writer,
            crate::controllers::watch(
                Api::<ServiceCertificate>::all(client.clone()),
                watcher::Config::default().any_semantic(),
            )
            .modify(trim_for_cache)
            .inspect_ok(move |event| index.apply(event)),
        )
        .applied_objects();
        let certificates = Controller::for_stream(certificate_stream, certificate_store)
            .graceful_shutdown_on(until_stopped(&stop));
        metrics.attach_certificates(certificates.store());
        let acme = crate::acme::Acme::new(
            client.clone(),
            settings.namespace.clone(),
            settings.acme_http01_port,
        )
        .with_requests_counter(metrics.acme_requests())
        .with_dns_update_failures(metrics.dns_update_failures());
        // Solver objects a crashed process left behind in the middle of an order.
        match acme.remove_stale_solvers(STALE_SOLVER_AGE).await {
            Ok(0) => {}
            Ok(n) => info!(removed = n, "removed stale ACME HTTP-01 solver objects"),
            Err(e) => warn!(error = %e, "could not look for stale ACME HTTP-01 solver objects"),
        }
        // DNS-01 records a crashed process left behind in the middle of an order.
        match acme.remove_stale_dns01().await {
            Ok(0) => {}
            Ok(n) => info!(record_sets = n, "removed stale ACME DNS-01 records"),
            Err(e) => warn!(error = %e, "could not look for stale ACME DNS-01 records"),
        }
        let (issuers, issuer_writers) = controllers::IssuerCaches::new();
        let ctx = Context::new(
            client.clone(),
            settings,
            validations,
            controllers::CertificateCache {
                store: certificates.store(),
                claims,
            },
            issuers,
            metrics,
            Arc::new(acme),
        );
        info!("watching ServiceCertificates, SithsIssuers, PublicIssuers and DomainValidations");
        // One watch of Secrets and one of CertificateOrders, each read by several
        // controllers. The readers that need the whole list subscribe here, before the
        // watches run; the others when they start.
        let shared = controllers::shared_watch::SharedWatches::default();
        let certificate_readers = controllers::shared_watch::SharedReaders {
            secrets: shared.secrets.subscribe(),
            orders: shared.orders.subscribe(),
        };
        let issuer_orders = shared.orders.subscribe();
        let secrets = shared.secrets.clone();
        tokio::join!(
            controllers::service_certificate::run(
                ctx.clone(),
                certificates,
                issuer_writers,
                certificate_readers,
            ),
            controllers::siths_issuer::run(ctx.clone(), issuer_orders, until_stopped(&stop)),
            controllers::public_issuer::run(ctx.clone(), until_stopped(&stop)),
            controllers::trust_bundle::run(ctx.clone(), until_stopped(&stop)),
            controllers::domain_validation::run(ctx.clone(), until_stopped(&stop)),
            controllers::ingress::run(ctx.clone(), &secrets, until_stopped(&stop)),
            controllers::gateway::run(ctx.clone(), secrets.clone(), until_stopped(&stop)),
            // The shared watches, until the stop signal.
            async {
                tokio::select! {
                    () = shared.run(ctx.client.clone()) => {}
                    () = until_stopped(&stop) => {}
                }
            },
            // Emptied when it returns, or when dropped with the controllers (lease lost).
            crate::keypool::global().fill(until_stopped(&stop)),
        );
        anyhow::Ok(())
    };
    tokio::select! {
        r = controllers => r,
        _ = dv_stream => Ok(()),
    }
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received, shutting down"),
        _ = int.recv() => info!("SIGINT received, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_leaves_out_managed_fields_and_the_last_applied_copy_only() {
        let mut c: ServiceCertificate = serde_json::from_value(serde_json::json!({
            "apiVersion": "siths-operator.io/v1alpha1", "kind": "ServiceCertificate",
            "metadata": {
                "name": "api", "namespace": "team",
                "annotations": {
                    LAST_APPLIED: "{\"spec\":{}}",
                    crate::vocabulary::RENEW_REQUESTED_KEY: "2026-12-01T00:00:00Z"
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {
                "purpose": "ServerToServer", "dnsNames": ["api.region.se"],
                "secretName": "api-tls", "issuerRef": {"kind": "SithsIssuer", "name": "region"}
            }
        }))
        .expect("certificate");
        let spec = serde_json::to_value(&c.spec).expect("spec");
        trim_for_cache(&mut c);
        assert!(c.metadata.managed_fields.is_none());
        let annotations = c.metadata.annotations.clone().unwrap_or_default();
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert!(annotations.contains_key(crate::vocabulary::RENEW_REQUESTED_KEY));
        assert_eq!(serde_json::to_value(&c.spec).expect("spec"), spec);
    }
}
