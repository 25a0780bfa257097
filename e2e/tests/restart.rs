//! A restarted operator reads only the certificate Secrets that changed while it was away:
//! each certificate's status records the check of its Secret (`status.secretCheck`: the
//! Secret's version, the certificate's generation, the issuer's digest), and a start
//! trusts it once the Secrets' watch has listed them (issue #21, the start-up pass at
//! 100 000 certificates). Counted from the apiserver's audit log, which logs the operator's
//! reads.

use std::time::Duration;

use anyhow::{Result, ensure};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::Value;
use siths_operator::api::ServiceCertificate;

const CERTIFICATES: usize = 4;

/// The names of Secrets in `ns` the operator's user read (`get`) in `log`.
fn secret_reads(log: &str, ns: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for line in log.lines() {
        let v: Value = serde_json::from_str(line)?;
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default();
        if v["stage"] == "ResponseComplete"
            && s("/user/username") == e2e::k8s::OPERATOR_USER
            && s("/verb") == "get"
            && s("/objectRef/resource") == "secrets"
            && s("/objectRef/namespace") == ns
        {
            out.push(s("/objectRef/name").to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Waits until every certificate is Ready and its status records the check of its Secret
/// at the Secret's current version.
async fn checked(certs: &Api<ServiceCertificate>, secrets: &Api<Secret>) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut done = 0;
        for i in 0..CERTIFICATES {
            let c = certs.get(&format!("svc-{i}")).await?;
            let ready = e2e::k8s::condition(&c, "Ready").is_some_and(|(s, _, _)| s == "True");
            let stamp = c
                .status
                .as_ref()
                .and_then(|s| s.secret_check.as_ref())
                .map(|k| k.secret_version.clone());
            let version = secrets
                .get_opt(&format!("svc-{i}-tls"))
                .await?
                .and_then(|s| s.metadata.resource_version);
            if ready && stamp.is_some() && stamp == version {
                done += 1;
            }
        }
        if done == CERTIFICATES {
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "{done} of {CERTIFICATES} certificates Ready with a check of their Secret's version"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_restart_reads_only_the_secrets_that_changed_while_it_was_away() -> Result<()> {
    let cp = e2e::shared();
    let client = cp.client().await?;
    let ns = e2e::test_namespace(&client, "restart").await?;
    e2e::fixtures::local_ca_scenario(&client, &ns).await?;
    for i in 0..CERTIFICATES {
        e2e::fixtures::server_certificate(
            &client,
            &ns,
            &format!("svc-{i}"),
            &format!("svc-{i}.{ns}.region.se"),
            &format!("SE2321000016-R{i}"),
            &ns,
            &format!("svc-{i}-tls"),
        )
        .await?;
    }
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let kubeconfig = e2e::rbac::operator_kubeconfig(cp)?;

    let mut op = e2e::operator::OperatorProcess::start(cp, &kubeconfig, &[])?;
    checked(&certs, &secrets).await?;
    // Its last passes done (no Secret read is in flight when it stops).
    tokio::time::sleep(Duration::from_secs(2)).await;
    op.terminate(Duration::from_secs(20)).await?;
    drop(op);

    // While it is away, one Secret changes (a label: its certificate is still good).
    secrets
        .patch(
            "svc-1-tls",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"team": "integration"}}})),
        )
        .await?;
    let before = cp.audit_text().await?.len();

    let mut op = e2e::operator::OperatorProcess::start(cp, &kubeconfig, &[])?;
    // The changed Secret is read and checked again (its new version recorded), the
    // certificates stay Ready.
    checked(&certs, &secrets).await?;
    // Whatever else the start-up pass would read, it has done by now.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let log = cp.audit_text().await?;
    // The issuer's CA Secret ("ca") is read when the issuer is resolved; the certificates'
    // Secrets are "svc-N-tls".
    let reads: Vec<String> = secret_reads(&log[before..], &ns)?
        .into_iter()
        .filter(|n| n.ends_with("-tls"))
        .collect();
    ensure!(
        reads == ["svc-1-tls"],
        "after the restart the operator read {reads:?}; expected only svc-1-tls (the one that changed)\n{}",
        op.output()
    );

    // Nothing was ordered again: one order per certificate.
    let orders: Api<siths_operator::api::CertificateOrder> = Api::namespaced(client.clone(), &ns);
    let n = orders.list(&Default::default()).await?.items.len();
    ensure!(
        n == CERTIFICATES,
        "{n} orders for {CERTIFICATES} certificates"
    );
    op.terminate(Duration::from_secs(20)).await?;
    Ok(())
}
