//! The operator's identity in every test: the ServiceAccount the chart installs, bound to
//! exactly the chart's RBAC. The RBAC objects are rendered with the real `helm template`
//! from `charts/siths-operator` (default values, release [`RELEASE`] in
//! [`OPERATOR_NAMESPACE`]), once per chart content (cached by hash) and applied to each
//! control plane once. The operator authenticates with a client certificate carrying the
//! ServiceAccount's user name and groups, and nothing else: a permission missing from the
//! chart fails the test that needs it.

use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock},
};

use anyhow::{Context, Result};

use crate::{
    controlplane::{ControlPlane, KUBERNETES_VERSION, OPERATOR_NAMESPACE, cache_root},
    helm::{HELM_VERSION, RELEASE, chart_dir, helm},
};

/// The chart's ServiceAccount (default values: the release's full name).
pub const SERVICE_ACCOUNT: &str = "siths-operator";

/// The user name the apiserver gives [`SERVICE_ACCOUNT`] in [`OPERATOR_NAMESPACE`].
pub const OPERATOR_USER: &str = "system:serviceaccount:siths-operator:siths-operator";

/// The groups of that ServiceAccount, and no other.
pub const OPERATOR_GROUPS: [&str; 3] = [
    "system:serviceaccounts",
    "system:serviceaccounts:siths-operator",
    "system:authenticated",
];

/// The chart templates holding the operator's RBAC.
const RBAC_TEMPLATES: [&str; 2] = [
    "templates/serviceaccount.yaml",
    "templates/rbac-operator.yaml",
];

/// FNV-1a over every file of the chart (path and content, in path order) and the helm
/// version: the cache key of the rendered RBAC.
fn chart_hash() -> Result<String> {
    let root = chart_dir();
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut h: u64 = 0xcbf29ce484222325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
    };
    feed(HELM_VERSION.as_bytes());
    for f in files {
        feed(f.strip_prefix(&root)?.to_string_lossy().as_bytes());
        feed(&fs::read(&f)?);
    }
    Ok(format!("{h:016x}"))
}

/// The chart's operator RBAC as `helm template` renders it with default values: a
/// ServiceAccount, the ClusterRole and its binding, the leader-election Role and its
/// binding. Rendered once per chart content; later runs read the cached file.
pub fn chart_rbac_yaml() -> Result<String> {
    static RENDERED: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    RENDERED
        .get_or_init(|| render().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn render() -> Result<String> {
    let cached = cache_root()
        .join("chart-rbac")
        .join(format!("{}.yaml", chart_hash()?));
    if let Ok(text) = fs::read_to_string(&cached) {
        return Ok(text);
    }
    let chart = chart_dir();
    let chart = chart.to_string_lossy();
    let mut args = vec![
        "template",
        RELEASE,
        &chart,
        "--namespace",
        OPERATOR_NAMESPACE,
        "--kube-version",
        KUBERNETES_VERSION,
    ];
    for t in RBAC_TEMPLATES {
        args.extend(["--show-only", t]);
    }
    let text = helm(None, &args).context("rendering the chart's RBAC")?;
    fs::create_dir_all(cached.parent().context("cache folder")?)?;
    let partial = cached.with_extension(format!("{}.partial", std::process::id()));
    fs::write(&partial, &text)?;
    fs::rename(&partial, &cached)?;
    Ok(text)
}

/// The rendered objects, each marked as belonging to the Helm release (the annotations
/// `helm install` sets), so a later `helm install` of the chart into the same control
/// plane adopts them instead of refusing.
pub fn chart_rbac_objects() -> Result<Vec<serde_json::Value>> {
    use serde::Deserialize;
    let text = chart_rbac_yaml()?;
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = serde_json::Value::deserialize(doc)?;
        if v.is_null() {
            continue;
        }
        let mut v = v;
        let annotations = v
            .pointer_mut("/metadata")
            .and_then(|m| m.as_object_mut())
            .context("object without metadata")?
            .entry("annotations")
            .or_insert_with(|| serde_json::json!({}));
        if annotations.is_null() {
            *annotations = serde_json::json!({});
        }
        let a = annotations.as_object_mut().context("annotations")?;
        a.insert("meta.helm.sh/release-name".into(), RELEASE.into());
        a.insert(
            "meta.helm.sh/release-namespace".into(),
            OPERATOR_NAMESPACE.into(),
        );
        objects.push(v);
    }
    Ok(objects)
}

/// Server-side applies the chart's operator RBAC to the control plane of `admin`.
pub async fn apply_chart_rbac(admin: &kube::Client) -> Result<()> {
    use kube::{
        Api,
        api::{DynamicObject, Patch, PatchParams},
        core::GroupVersionKind,
        discovery::{Scope, pinned_kind},
    };
    for v in chart_rbac_objects()? {
        let obj: DynamicObject = serde_json::from_value(v)?;
        let types = obj
            .types
            .clone()
            .context("object without apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let (ar, caps) = pinned_kind(admin, &gvk).await?;
        let name = obj.metadata.name.clone().context("object without name")?;
        let api: Api<DynamicObject> = match (&caps.scope, &obj.metadata.namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(admin.clone(), ns, &ar),
            (Scope::Namespaced, None) => {
                Api::namespaced_with(admin.clone(), OPERATOR_NAMESPACE, &ar)
            }
            (Scope::Cluster, _) => Api::all_with(admin.clone(), &ar),
        };
        api.patch(
            &name,
            &PatchParams::apply("siths-e2e-rbac").force(),
            &Patch::Apply(&obj),
        )
        .await
        .with_context(|| format!("applying the chart's {} {name}", types.kind))?;
    }
    Ok(())
}

/// Writes `path`, a kubeconfig of the chart's ServiceAccount ([`OPERATOR_USER`] in
/// [`OPERATOR_GROUPS`]), after applying the chart's operator RBAC to `cp` (once per
/// control plane). Every operator a test starts uses one of these.
pub fn write_operator_kubeconfig(cp: &ControlPlane, path: &Path) -> Result<()> {
    static APPLIED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    // Held while applying: a second caller for the same control plane waits for the first.
    let mut applied = APPLIED.lock().unwrap_or_else(|e| e.into_inner());
    let applied = applied.get_or_insert_with(HashSet::new);
    if !applied.contains(&cp.dir) {
        crate::controlplane::block_on(async { apply_chart_rbac(&cp.client().await?).await })?;
        applied.insert(cp.dir.clone());
    }
    cp.write_kubeconfig(path, OPERATOR_USER, &OPERATOR_GROUPS)
}

/// [`write_operator_kubeconfig`] into `<control plane>/operator.kubeconfig`.
pub fn operator_kubeconfig(cp: &ControlPlane) -> Result<PathBuf> {
    let path = cp.dir.join("operator.kubeconfig");
    write_operator_kubeconfig(cp, &path)?;
    Ok(path)
}
