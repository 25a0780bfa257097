//! `sithsctl` subcommands.

pub mod audit;
pub mod fleet;
pub mod manifests;
pub mod orders;
pub mod output;
pub mod renew;
pub mod status;

use anyhow::Context as _;
use kube::{Api, Client, api::PostParams};

/// Runs `sithsctl audit`; returns the exit status: 1 when `--fail-on` tripped, 2 when a
/// cluster of a fleet did not answer ([`fleet`]), else 0.
pub async fn run_audit(
    kubeconfig: Option<&std::path::Path>,
    args: &audit::AuditArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<i32> {
    if args.fleet.active() {
        fleet::run(kubeconfig, args, out).await
    } else {
        audit::run_single(kubeconfig, args, out).await
    }
}

/// Who the current kubeconfig authenticates as (from a SelfSubjectReview).
pub async fn whoami(client: &Client) -> anyhow::Result<String> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review: SelfSubjectReview = serde_json::from_value(serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {},
    }))?;
    let got = api
        .create(&PostParams::default(), &review)
        .await
        .context("asking the API server who I am (SelfSubjectReview)")?;
    Ok(got
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .unwrap_or_else(|| "unknown".into()))
}

/// A client from `--kubeconfig` or the usual places (KUBECONFIG, ~/.kube/config, in-cluster).
pub async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}
