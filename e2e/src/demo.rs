//! What `cargo xtask demo` waits for and prints.

use std::time::Duration;

use anyhow::Result;
use kube::{Api, api::ListParams};
use siths_operator::api::ServiceCertificate;

use crate::controlplane::ControlPlane;

/// Resource kinds the demo prints with `kubectl get -A`.
pub const KINDS: [&str; 5] = [
    "sithsissuers",
    "publicissuers",
    "domainvalidations",
    "servicecertificates",
    "certificateorders",
];

/// Waits (at most a minute) until every ServiceCertificate has a `Ready` condition.
pub async fn settle(cp: &ControlPlane) -> Result<()> {
    let client = cp.client().await?;
    let api: Api<ServiceCertificate> = Api::all(client);
    let settled = crate::eventually(Duration::from_secs(60), "certificates to settle", || {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default()).await?;
            let done = list.items.iter().all(|c| {
                c.status
                    .as_ref()
                    .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready"))
            });
            Ok(done.then_some(()))
        }
    })
    .await;
    if let Err(e) = settled {
        eprintln!("note: {e:#}");
    }
    Ok(())
}
