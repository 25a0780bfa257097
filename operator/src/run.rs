//! Wiring of the operator process: client, caches, controllers, shutdown.

use std::path::PathBuf;

use anyhow::Context as _;
use futures::StreamExt;
use kube::{
    Api, Client,
    runtime::{Controller, WatchStreamExt, reflector, watcher},
};
use tokio::sync::watch;
use tracing::info;

use crate::{
    api::{DomainValidation, ServiceCertificate},
    controllers::{self, Context, Settings},
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
}

/// Longest wait for the controllers after SIGTERM or SIGINT.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("no Kubernetes configuration (KUBECONFIG or in-cluster)")?;
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
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let (validations, writer) = reflector::store();
    let dv_stream = reflector(
        writer,
        watcher(
            Api::<DomainValidation>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        ),
    )
    .applied_objects()
    .for_each(|_| async {});
    let dv_task = tokio::spawn({
        let stopped = stopped();
        async move {
            tokio::select! {
                _ = dv_stream => {},
                _ = stopped => {},
            }
        }
    });
    validations
        .wait_until_ready()
        .await
        .context("DomainValidation cache")?;

    let certificates = Controller::new(
        Api::<ServiceCertificate>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .graceful_shutdown_on(stopped());
    let ctx = Context::new(
        client.clone(),
        Settings {
            siths_ca_file: args.siths_ca_file.clone(),
        },
        validations,
        certificates.store(),
    );
    info!("watching ServiceCertificates, SithsIssuers and DomainValidations");
    // kube-runtime holds a controller's runner until its store has listed once; a signal
    // that arrives before that leaves the runner waiting forever. Reconciles get a grace
    // period after the signal; then the process exits (every write is idempotent).
    tokio::spawn({
        let stopped = stopped();
        async move {
            stopped.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::warn!(
                "controllers did not stop within {SHUTDOWN_GRACE:?} of the signal; exiting"
            );
            std::process::exit(0);
        }
    });
    tokio::join!(
        controllers::service_certificate::run(ctx.clone(), certificates),
        controllers::siths_issuer::run(ctx.clone(), stopped()),
        controllers::trust_bundle::run(ctx.clone(), stopped()),
        controllers::domain_validation::run(ctx, stopped()),
    );
    dv_task.abort();
    info!("siths-operator stopped");
    Ok(())
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
