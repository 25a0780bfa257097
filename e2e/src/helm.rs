//! `helm`, built from its upstream Go module (`e2e/helm/go.mod`) into the test cache, and
//! the project's chart installed with it.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use anyhow::{Context, Result, bail};

use crate::{
    controlplane::{ControlPlane, OPERATOR_NAMESPACE, cache_root, workspace_root},
    gobuild,
};

/// Version of `helm.sh/helm/v3` built; also the cache key.
pub const HELM_VERSION: &str = "v3.22.0";
/// Release name the tests install the chart as.
pub const RELEASE: &str = "siths-operator";

/// The chart's folder.
pub fn chart_dir() -> PathBuf {
    workspace_root().join("charts/siths-operator")
}

/// Where the built `helm` is cached: `<cache>/helm/<version>/helm`.
pub fn helm_path() -> PathBuf {
    cache_root().join("helm").join(HELM_VERSION).join("helm")
}

/// Builds `helm` unless the cache holds it for this version. Prints progress; the first
/// build takes a few minutes.
pub fn ensure_helm() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build() -> Result<PathBuf> {
    let path = helm_path();
    let stamp = path.with_file_name(".complete");
    let want = gobuild::fingerprint(
        "e2e/helm",
        &["go.mod", "go.sum"],
        &format!("helm {HELM_VERSION} modules"),
    )?;
    if gobuild::is_cached(&[&path], &stamp, &want) {
        return Ok(path);
    }
    gobuild::go_build(
        "helm",
        "e2e/helm",
        "helm.sh/helm/v3/cmd/helm",
        &format!("-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"),
        &path,
    )?;
    fs::write(&stamp, want)?;
    Ok(path)
}

/// Runs `helm args` (against `kubeconfig`, when given) with its own config and cache
/// folders, so nothing outside the test cache is touched. Returns stdout; fails with
/// stderr on a non-zero exit.
pub fn helm(kubeconfig: Option<&Path>, args: &[&str]) -> Result<String> {
    let bin = ensure_helm()?;
    let home = cache_root().join("helm").join("home");
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG");
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    let out = cmd.output().context("running helm")?;
    if !out.status.success() {
        bail!(
            "helm {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Installs (or upgrades) the chart as [`RELEASE`] into [`OPERATOR_NAMESPACE`] of `cp`, once
/// per test binary. Returns helm's output of the first install.
pub fn install_chart(cp: &ControlPlane) -> Result<String> {
    static INSTALLED: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let chart = chart_dir();
            helm(
                Some(&cp.kubeconfig),
                &[
                    "upgrade",
                    "--install",
                    RELEASE,
                    &chart.to_string_lossy(),
                    "--namespace",
                    OPERATOR_NAMESPACE,
                    "--create-namespace",
                ],
            )
            .map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}
