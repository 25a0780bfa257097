//! Wiring of the operator process: client, controllers, shutdown.

use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use kube::{
    Api, Client,
    runtime::{Controller, controller::Action, watcher},
};
use tracing::{info, warn};

use crate::{
    api::{DomainValidation, ServiceCertificate},
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
}

/// Shared state of the controllers.
#[derive(Clone)]
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("no Kubernetes configuration (KUBECONFIG or in-cluster)")?;
    let version = client
        .apiserver_version()
        .await
        .context("cannot reach the Kubernetes API")?;
    info!(server_version = %version.git_version, ?args, "siths-operator starting");
    let ctx = Arc::new(Context {
        client: client.clone(),
    });

    let certificates = Controller::new(
        Api::<ServiceCertificate>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .graceful_shutdown_on(shutdown_signal())
    .run(reconcile_certificate, error_policy, ctx.clone())
    .for_each(|res| async move {
        if let Err(e) = res {
            warn!(error = %e, "reconcile failed");
        }
    });
    let validations = Controller::new(
        Api::<DomainValidation>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .graceful_shutdown_on(shutdown_signal())
    .run(reconcile_validation, error_policy, ctx)
    .for_each(|res| async move {
        if let Err(e) = res {
            warn!(error = %e, "reconcile failed");
        }
    });
    info!("watching ServiceCertificates and DomainValidations");
    tokio::join!(certificates, validations);
    info!("siths-operator stopped");
    Ok(())
}

async fn reconcile_certificate(
    obj: Arc<ServiceCertificate>,
    _ctx: Arc<Context>,
) -> Result<Action, kube::Error> {
    info!(name = ?obj.metadata.name, namespace = ?obj.metadata.namespace, "ServiceCertificate seen");
    Ok(Action::await_change())
}

async fn reconcile_validation(
    obj: Arc<DomainValidation>,
    _ctx: Arc<Context>,
) -> Result<Action, kube::Error> {
    info!(name = ?obj.metadata.name, "DomainValidation seen");
    Ok(Action::await_change())
}

fn error_policy<K>(_obj: Arc<K>, _err: &kube::Error, _ctx: Arc<Context>) -> Action {
    Action::requeue(std::time::Duration::from_secs(30))
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
