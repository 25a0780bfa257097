//! Small helpers for tests: apply YAML, wait for conditions, run `sithsctl`.

use std::{path::Path, process::Command, sync::OnceLock, time::Duration};

use anyhow::{Context as _, Result, bail};
use kube::{
    Api, Resource,
    api::{Patch, PatchParams},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::controlplane::ControlPlane;

/// Server-side applies `yaml` (one object) through `api`.
pub async fn apply<K>(api: &Api<K>, yaml: &str) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let obj: K = serde_yaml::from_str(yaml).with_context(|| format!("parsing\n{yaml}"))?;
    let name = obj
        .meta()
        .name
        .clone()
        .context("object without metadata.name")?;
    api.patch(
        &name,
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(&obj),
    )
    .await
    .with_context(|| format!("applying {name}"))
}

/// The condition `type_` of an object's `status.conditions`, as `(status, reason, message)`.
pub fn condition<K: Serialize>(obj: &K, type_: &str) -> Option<(String, String, String)> {
    let v = serde_json::to_value(obj).ok()?;
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Waits until `name` has condition `type_` with `status` (and `reason`, when given).
pub async fn wait_condition<K>(
    api: &Api<K>,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
    timeout: Duration,
) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let what = format!("{name} to have {type_}={status} {reason:?}");
    let last = std::sync::Arc::new(std::sync::Mutex::new(None));
    let res = crate::eventually(timeout, &what, || {
        let api = api.clone();
        let name = name.to_string();
        let last = last.clone();
        async move {
            let obj = api.get(&name).await?;
            let c = condition(&obj, type_);
            let ok = c
                .as_ref()
                .is_some_and(|(s, r, _)| s == status && reason.is_none_or(|want| want == r));
            *last.lock().expect("lock") = c;
            Ok(ok.then_some(obj))
        }
    })
    .await;
    res.map_err(|e| anyhow::anyhow!("{e:#}; last condition: {:?}", last.lock().expect("lock")))
}

/// Path of the `sithsctl` binary, built once per test binary.
pub fn sithsctl_binary() -> Result<std::path::PathBuf> {
    static BUILT: OnceLock<std::result::Result<std::path::PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| crate::operator::build("sithsctl").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Runs `sithsctl` with `args` against `kubeconfig`; returns stdout, fails on a non-zero exit.
pub fn sithsctl(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = sithsctl_output(kubeconfig, args)?;
    if !out.status.success() {
        bail!(
            "sithsctl {} failed: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Runs `sithsctl` and returns its whole output, whatever the exit code.
pub fn sithsctl_output(kubeconfig: &Path, args: &[&str]) -> Result<std::process::Output> {
    Ok(Command::new(sithsctl_binary()?)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()?)
}

/// The real SITHS CA certificates from `../shared/siths-ca/` as one PEM bundle in the
/// control plane's folder (the project pins them and never carries a copy).
pub fn siths_ca_bundle(cp: &ControlPlane) -> Result<std::path::PathBuf> {
    let dir = crate::controlplane::workspace_root().join("../shared/siths-ca");
    let mut bundle = String::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        if e.path().extension().is_some_and(|x| x == "pem") {
            bundle.push_str(&std::fs::read_to_string(e.path())?);
        }
    }
    let path = cp.dir.join("siths-ca.pem");
    std::fs::write(&path, bundle)?;
    Ok(path)
}

/// The user every operator of the tests authenticates as: the chart's ServiceAccount
/// (see [`crate::rbac`]).
pub use crate::rbac::OPERATOR_USER;

/// The operator shared by the tests of one test binary.
pub fn shared_operator() -> &'static std::sync::Mutex<crate::operator::OperatorProcess> {
    static OP: OnceLock<std::sync::Mutex<crate::operator::OperatorProcess>> = OnceLock::new();
    OP.get_or_init(|| {
        let cp = crate::shared();
        let ca = siths_ca_bundle(cp).expect("SITHS CA bundle");
        // The chart's ServiceAccount with exactly the chart's RBAC; its own identity also
        // tells its writes from the tests' writes in the audit log.
        let kubeconfig = crate::rbac::operator_kubeconfig(cp).expect("operator kubeconfig");
        let op = crate::operator::OperatorProcess::start(
            cp,
            &kubeconfig,
            &["--siths-ca-file", &ca.to_string_lossy()],
        )
        .expect("operator");
        std::sync::Mutex::new(op)
    })
}

/// Server-side applies every object of every `.yaml` file below `dir` (multi-document
/// files and `List`s included), in path order. Returns `(kind, namespace, name)` of each.
pub async fn apply_manifests(
    client: &kube::Client,
    dir: &Path,
) -> Result<Vec<(String, Option<String>, String)>> {
    use kube::{
        api::DynamicObject,
        core::GroupVersionKind,
        discovery::{Scope, pinned_kind},
    };
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut applied = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc)?;
            if value.is_null() {
                continue;
            }
            // A `kind: List` (what `kubectl get -o yaml` prints) applies item by item.
            let values = match (value.get("kind"), value.get("items")) {
                (Some(k), Some(serde_yaml::Value::Sequence(items))) if k == "List" => items.clone(),
                _ => vec![value],
            };
            for value in values {
                let obj: DynamicObject = serde_yaml::from_value(value)
                    .with_context(|| format!("reading {}", file.display()))?;
                let types = obj
                    .types
                    .clone()
                    .context("object without apiVersion/kind")?;
                let gvk = GroupVersionKind::try_from(&types)?;
                let (ar, caps) = pinned_kind(client, &gvk).await?;
                let name = obj.metadata.name.clone().context("object without name")?;
                let ns = obj.metadata.namespace.clone();
                let api: Api<DynamicObject> = match (&caps.scope, &ns) {
                    (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
                    (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &ar),
                    (Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
                };
                api.patch(
                    &name,
                    &PatchParams::apply("examples").force(),
                    &Patch::Apply(&obj),
                )
                .await
                .with_context(|| {
                    format!("applying {} {name} from {}", types.kind, file.display())
                })?;
                applied.push((types.kind.clone(), ns, name));
            }
        }
    }
    Ok(applied)
}

/// How often an event was announced: a repeat raises its series count (events.k8s.io) or
/// its count (the older core API) instead of making a new object.
pub fn times_announced(e: &k8s_openapi::api::core::v1::Event) -> u32 {
    e.series
        .as_ref()
        .and_then(|s| s.count)
        .or(e.count)
        .unwrap_or(1)
        .max(1) as u32
}
