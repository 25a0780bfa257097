//! Upgrading the chart as the README says: the previous chart (the chart before the last
//! commit that changed `charts/` or `crds/`, from git history) is installed with its CRDs,
//! the operator runs as the ServiceAccount bound by that chart's RBAC and certificates are
//! issued; then the documented CRD step (`kubectl apply --server-side -f crds/`, here the
//! same server-side apply) and `helm upgrade` to the current chart, and the operator is
//! restarted as a rollout would. Nothing is ordered again (the CertificateOrders are the
//! same) and every certificate stays Ready at its revision.
//!
//! Needs git history. On a shallow clone without the previous chart's commit it says so
//! (with `git fetch --unshallow` as the fix) and checks nothing; `.ci/run` fetches the
//! history first where it can. A full clone without that commit fails.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use e2e::{
    controlplane::{OPERATOR_NAMESPACE, workspace_root},
    helm::{RELEASE, chart_dir, helm},
    k8s::condition,
    operator::OperatorProcess,
    rbac::{OPERATOR_GROUPS, OPERATOR_USER},
};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::{Api, api::ListParams};
use siths_operator::api::{CertificateOrder, ServiceCertificate};

fn git(args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .current_dir(workspace_root())
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// The commit holding the previous chart: HEAD when the chart or CRDs have uncommitted
/// changes, otherwise the parent of the last commit that changed them. `None` in a shallow
/// clone that lacks it.
fn previous_chart_rev() -> Result<Option<String>> {
    let paths = ["charts/siths-operator", "crds"];
    let dirty = !git(&["status", "--porcelain", "--", paths[0], paths[1]])?.is_empty();
    if dirty {
        return git(&["rev-parse", "HEAD"]).map(Some);
    }
    let last = git(&["log", "-1", "--format=%H", "--", paths[0], paths[1]])?;
    let parent = git(&["rev-parse", "--verify", "--quiet", &format!("{last}^")]);
    if parent.is_err() && git(&["rev-parse", "--is-shallow-repository"])? == "true" {
        return Ok(None);
    }
    parent.map(Some).map_err(|_| {
        anyhow::anyhow!(
            "the commit before {last} (the last change of the chart) is not in this clone; \
             the upgrade test needs git history: `git fetch --unshallow`"
        )
    })
}

/// `charts/siths-operator` and `crds/` as of `rev`, extracted into `dir`.
fn extract(rev: &str, dir: &Path) -> Result<PathBuf> {
    let archive = Command::new("git")
        .current_dir(workspace_root())
        .args([
            "archive",
            "--format=tar",
            rev,
            "charts/siths-operator",
            "crds",
        ])
        .output()?;
    ensure!(archive.status.success(), "git archive {rev} failed");
    let tar = dir.join("previous.tar");
    std::fs::write(&tar, archive.stdout)?;
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(dir)
        .status()?;
    ensure!(status.success(), "extracting the previous chart failed");
    Ok(dir.to_path_buf())
}

fn ready(c: &ServiceCertificate) -> bool {
    condition(c, "Ready").is_some_and(|(s, _, _)| s == "True")
}

#[tokio::test]
async fn chart_upgrade_keeps_every_certificate_and_orders_nothing_again() -> Result<()> {
    let cp = e2e::shared();
    let admin = cp.client().await?;
    let Some(rev) = previous_chart_rev()? else {
        eprintln!(
            "NOT CHECKED: this is a shallow clone without the previous chart's commit; run `git fetch --unshallow` for the upgrade test"
        );
        return Ok(());
    };
    let work = tempfile::Builder::new()
        .prefix("siths-upgrade-")
        .tempdir()?;
    let previous = extract(&rev, work.path())?;
    eprintln!("[upgrade] from the chart of {rev} to the working tree's");

    // The previous release, CRDs included.
    e2e::install_crds(&admin, &previous.join("crds")).await?;
    helm(
        Some(&cp.kubeconfig),
        &[
            "install",
            RELEASE,
            &previous.join("charts/siths-operator").to_string_lossy(),
            "--namespace",
            OPERATOR_NAMESPACE,
        ],
    )?;
    // The operator as the ServiceAccount, with what that release granted (nothing else is
    // applied here).
    let kubeconfig = cp.dir.join("upgrade-operator.kubeconfig");
    cp.write_kubeconfig(&kubeconfig, OPERATOR_USER, &OPERATOR_GROUPS)?;
    let mut operator = OperatorProcess::start(cp, &kubeconfig, &[])?;

    let ns = e2e::test_namespace(&admin, "upgrade").await?;
    e2e::fixtures::local_ca_scenario(&admin, &ns).await?;
    let n = 4;
    for i in 0..n {
        e2e::fixtures::server_certificate(
            &admin,
            &ns,
            &format!("svc-{i}"),
            &format!("svc-{i}.{ns}.region.se"),
            &format!("SE2321000016-U{i}"),
            &ns,
            &format!("svc-{i}-tls"),
        )
        .await?;
    }
    let certs = Api::<ServiceCertificate>::namespaced(admin.clone(), &ns);
    let orders = Api::<CertificateOrder>::namespaced(admin.clone(), &ns);
    let all_ready = || async {
        e2e::eventually(
            Duration::from_secs(90),
            "every certificate Ready",
            || async {
                let list = certs.list(&ListParams::default()).await?.items;
                Ok((list.len() == n && list.iter().all(ready)).then_some(list))
            },
        )
        .await
    };
    let revisions = |list: &[ServiceCertificate]| -> BTreeMap<String, Option<u32>> {
        list.iter()
            .map(|c| {
                (
                    c.metadata.name.clone().unwrap_or_default(),
                    c.status.as_ref().and_then(|s| s.revision),
                )
            })
            .collect()
    };
    let order_names = || async {
        let mut names: Vec<String> = orders
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect();
        names.sort();
        anyhow::Ok(names)
    };
    let before = match all_ready().await {
        Ok(list) => revisions(&list),
        Err(e) => bail!("{e:#}\noperator log:\n{}", operator.output()),
    };
    let orders_before = order_names().await?;
    ensure!(orders_before.len() == n, "orders before: {orders_before:?}");

    // The documented upgrade: new CRDs first (server-side apply), then helm upgrade; the
    // rollout restarts the operator.
    e2e::install_crds(&admin, &workspace_root().join("crds")).await?;
    helm(
        Some(&cp.kubeconfig),
        &[
            "upgrade",
            RELEASE,
            &chart_dir().to_string_lossy(),
            "--namespace",
            OPERATOR_NAMESPACE,
        ],
    )?;
    let history = helm(
        Some(&cp.kubeconfig),
        &[
            "history",
            RELEASE,
            "--namespace",
            OPERATOR_NAMESPACE,
            "-o",
            "json",
        ],
    )?;
    let history: serde_json::Value = serde_json::from_str(&history)?;
    ensure!(
        history
            .as_array()
            .and_then(|h| h.last())
            .is_some_and(|r| r["revision"] == 2 && r["status"] == "deployed"),
        "helm history: {history}"
    );
    // The ClusterRole is now the current chart's.
    let role = Api::<ClusterRole>::all(admin.clone()).get(RELEASE).await?;
    let current: Vec<serde_json::Value> = e2e::rbac::chart_rbac_objects()?
        .into_iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .collect();
    ensure!(
        serde_json::to_value(&role.rules)? == current[0]["rules"],
        "the ClusterRole was not upgraded"
    );

    operator.terminate(Duration::from_secs(20)).await?;
    let mut operator = OperatorProcess::start(cp, &kubeconfig, &[])?;
    operator
        .wait_for_log("watching", Duration::from_secs(60))
        .await?;
    // Time to reconcile everything again (a wrong decision would show as a new order).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = match all_ready().await {
        Ok(list) => revisions(&list),
        Err(e) => bail!("{e:#}\noperator log:\n{}", operator.output()),
    };
    ensure!(
        before == after,
        "revisions changed: {before:?} -> {after:?}"
    );
    let orders_after = order_names().await?;
    ensure!(
        orders_before == orders_after,
        "orders changed across the upgrade: {orders_before:?} -> {orders_after:?}"
    );
    operator.terminate(Duration::from_secs(20)).await?;
    Ok(())
}
