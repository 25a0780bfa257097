//! The real Gateway API CRDs (standard channel), taken from the upstream Go module
//! `sigs.k8s.io/gateway-api` (`e2e/gatewayapi/go.mod`, fetched with `go mod download` from
//! the Go module proxy into Go's module cache, which keeps them between runs) and installed
//! into a test control plane, where their schemas and CEL rules validate what tests apply.

use std::{path::PathBuf, sync::OnceLock};

use anyhow::{Context, Result, bail};
use kube::Client;

use crate::gobuild;

/// Module path of Gateway API.
pub const MODULE: &str = "sigs.k8s.io/gateway-api";
/// Version required by `e2e/gatewayapi/go.mod`.
pub const VERSION: &str = "v1.6.3";

/// The folder with the standard channel's CRD YAML (`config/crd/standard/` of the module).
pub fn crd_dir() -> Result<PathBuf> {
    static DIR: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    let module = DIR
        .get_or_init(|| {
            gobuild::module_download("e2e/gatewayapi", MODULE, VERSION)
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)?;
    let dir = module.join("config/crd/standard");
    if !dir
        .join("gateway.networking.k8s.io_gateways.yaml")
        .is_file()
    {
        bail!(
            "{} has no gateway.networking.k8s.io_gateways.yaml (did the module layout change?)",
            dir.display()
        );
    }
    Ok(dir)
}

/// The CRD file of `plural` (`gateways`, `httproutes`, ...).
pub fn crd_file(plural: &str) -> Result<PathBuf> {
    Ok(crd_dir()?.join(format!("gateway.networking.k8s.io_{plural}.yaml")))
}

/// Installs the standard channel's CRDs (Gateway, GatewayClass, HTTPRoute, GRPCRoute,
/// TLSRoute, TCPRoute, UDPRoute, ListenerSet, BackendTLSPolicy, ReferenceGrant) and waits
/// until they are established. The channel's ValidatingAdmissionPolicy (safe upgrades) is
/// not a CRD and is left out.
pub async fn install_crds(client: &Client) -> Result<()> {
    let dir = crd_dir()?;
    crate::install_crds_where(client, &dir, |name| !name.contains("_vap_"))
        .await
        .with_context(|| format!("installing the Gateway API CRDs from {}", dir.display()))
}
