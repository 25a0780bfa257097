//! `sithsctl renew`: ask for a new revision now.

use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};

use crate::{api::ServiceCertificate, vocabulary::RENEW_REQUESTED_KEY};

/// Arguments of `sithsctl renew`.
#[derive(Debug, clap::Args)]
pub struct RenewArgs {
    /// Namespace of the ServiceCertificate.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Name of the ServiceCertificate.
    pub name: String,
}

/// Records the request on the certificate; the operator issues one new revision (through
/// an order, which waits for approval where the issuer requires it).
pub async fn run(
    client: &Client,
    args: &RenewArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let api: Api<ServiceCertificate> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::default_namespaced(client.clone()),
    };
    // Full precision: a request made in the same second as the last issuance still counts.
    let at = jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({ "metadata": { "annotations": { RENEW_REQUESTED_KEY: at } } });
    api.patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    writeln!(
        out,
        "renewal of {} requested at {at}; the current certificate stays in place until the new one is accepted (sithsctl status {})",
        args.name, args.name
    )?;
    Ok(())
}
