//! End-to-end harness: a real control plane shared by the tests of one test binary,
//! namespaces that isolate tests, and the operator run as a separate process.

pub mod bind;
pub mod certmanager;
pub mod controlplane;
pub mod crane;
pub mod demo;
pub mod fixtures;
pub mod gatewayapi;
pub mod gobuild;
pub mod helm;
pub mod image;
pub mod k8s;
pub mod operator;
pub mod pebble;
pub mod rbac;

use std::{
    path::Path,
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};

pub use controlplane::{ControlPlane, Options};

/// The control plane shared by every test of this test binary, started on first use.
/// Its processes end with the test binary (see the watchdog in [`ControlPlane`]).
pub fn shared() -> &'static ControlPlane {
    static CP: OnceLock<ControlPlane> = OnceLock::new();
    CP.get_or_init(|| {
        ControlPlane::start(Options::default()).unwrap_or_else(|e| panic!("control plane: {e:#}"))
    })
}

/// Server-side applies every CRD in `dir` and waits until each is established.
pub async fn install_crds(client: &Client, dir: &Path) -> Result<()> {
    install_crds_where(client, dir, |_| true).await
}

/// Installs the CRDs of the `.yaml` files in `dir` whose file name `take` accepts, and
/// waits until they are established.
pub async fn install_crds_where(
    client: &Client,
    dir: &Path,
    take: impl Fn(&str) -> bool,
) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "yaml")
            || !take(&path.file_name().unwrap_or_default().to_string_lossy())
        {
            continue;
        }
        let crd: CustomResourceDefinition = serde_yaml::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        let name = crd.metadata.name.clone().context("CRD without name")?;
        api.patch(
            &name,
            &PatchParams::apply("siths-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("applying {}", path.display()))?;
        names.push(name);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in names {
        loop {
            let crd = api.get(&name).await?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if Instant::now() > deadline {
                bail!("CRD {name} not established after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Creates namespace `name` unless it exists.
pub async fn ensure_namespace(client: &Client, name: &str) -> Result<()> {
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": name } }))?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates a namespace with a unique name starting with `prefix`, so tests sharing one
/// control plane do not see each other's objects.
pub async fn test_namespace(client: &Client, prefix: &str) -> Result<String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": { "siths-operator.io/e2e": "true" } }
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(name)
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            match last_err {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the tests run at full (chaos) size: `cargo xtask chaos` sets `SITHS_CHAOS=1`.
pub fn chaos() -> bool {
    std::env::var("SITHS_CHAOS").is_ok_and(|v| v == "1")
}

/// Picks the smoke or the chaos size.
pub fn size<T>(smoke: T, chaos_size: T) -> T {
    if chaos() { chaos_size } else { smoke }
}

/// Prints one figure for RELIABILITY.md (`cargo xtask chaos` collects these lines).
pub fn reliability(scenario: &str, figure: &str) {
    println!("RELIABILITY | {scenario} | {figure}");
}
