//! The Argo CD health checks of `docs/argocd.md`, run exactly as documented (Lua 5.1, as
//! Argo CD runs them) against objects the operator wrote on the real API server.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::k8s::{apply, shared_operator, wait_condition};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use mlua::{LuaSerdeExt, SerializeOptions};
use serde::Serialize;
use siths_operator::api::{CertificateOrder, DomainValidation, ServiceCertificate, SithsIssuer};

/// The Lua blocks of docs/argocd.md: ServiceCertificate first, CertificateOrder second.
fn scripts() -> Result<(String, String)> {
    let doc = std::fs::read_to_string(e2e::controlplane::workspace_root().join("docs/argocd.md"))?;
    let blocks: Vec<String> = doc
        .split("```lua\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default().to_string())
        .collect();
    ensure!(
        blocks.len() == 2,
        "docs/argocd.md has {} Lua blocks",
        blocks.len()
    );
    Ok((blocks[0].clone(), blocks[1].clone()))
}

/// Runs `script` with `obj` as Argo CD does; returns `(status, message)`.
fn health<K: Serialize>(script: &str, obj: &K) -> Result<(String, String)> {
    let lua = mlua::Lua::new();
    let json = serde_json::to_value(obj)?;
    let value = lua
        .to_value_with(
            &json,
            SerializeOptions::new()
                .serialize_none_to_null(false)
                .serialize_unit_to_null(false),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    lua.globals()
        .set("obj", value)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let hs: mlua::Table = lua
        .load(script)
        .eval()
        .map_err(|e| anyhow::anyhow!("Lua: {e}"))?;
    let status: String = hs.get("status").map_err(|e| anyhow::anyhow!("{e}"))?;
    let message: String = hs.get("message").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((status, message))
}

#[tokio::test]
async fn argocd_health_checks_follow_the_operator() -> Result<()> {
    let (cert_lua, order_lua) = scripts()?;
    let cp = e2e::shared();
    let _ = shared_operator();
    let client = cp.client().await?;
    let ns = e2e::test_namespace(&client, "argocd").await?;
    let issuers: Api<SithsIssuer> = Api::all(client.clone());
    // A test issuer that signs at once, and a production issuer whose orders wait for a
    // person.
    apply(
        &issuers,
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsIssuer
metadata: {{ name: {ns}-test }}
spec:
  organization: {{ name: Region Exempel, organizationNumber: "232100-0016", locality: Stockholm }}
  connection: {{ type: Direct }}
  environment: Test
  backend: {{ localCA: {{ secretRef: {{ name: ca, namespace: {ns} }}, generate: true }} }}
"#
        ),
    )
    .await?;
    apply(
        &issuers,
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsIssuer
metadata: {{ name: {ns}-prod }}
spec:
  organization: {{ name: Region Exempel, organizationNumber: "232100-0016", locality: Stockholm }}
  connection: {{ type: Direct }}
  environment: Production
  backend: {{ manual: {{}} }}
  approval: Required
"#
        ),
    )
    .await?;
    apply(
        &Api::<DomainValidation>::all(client.clone()),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: DomainValidation
metadata: {{ name: {ns} }}
spec:
  domain: {ns}.region.se
  includeSubdomains: true
  owner: {{ name: Region Exempel, organizationNumber: "232100-0016" }}
  validatedFor: "232100-0016"
  evidence: {{ formReference: DV-3, submittedBy: Anna, approvedOn: "2026-01-10" }}
  validUntil: "2030-12-31"
"#
        ),
    )
    .await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    for (name, issuer, domain) in [
        (
            "ready",
            format!("{ns}-test"),
            format!("ready.{ns}.region.se"),
        ),
        (
            "waiting",
            format!("{ns}-prod"),
            format!("waiting.{ns}.region.se"),
        ),
        (
            "blocked",
            format!("{ns}-test"),
            "api.not-validated.se".to_string(),
        ),
    ] {
        apply(
            &certs,
            &format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: {name} }}
spec:
  purpose: ServerToServer
  hsaId: SE2321000016-A{name}
  dnsNames: [{domain}]
  secretName: {name}-tls
  issuerRef: {{ kind: SithsIssuer, name: {issuer} }}
"#
            ),
        )
        .await?;
    }
    let t = Duration::from_secs(60);
    let ready = wait_condition(&certs, "ready", "Ready", "True", None, t).await?;
    let waiting = wait_condition(
        &certs,
        "waiting",
        "Issuing",
        "True",
        Some("WaitingForApproval"),
        t,
    )
    .await?;
    let blocked = wait_condition(
        &certs,
        "blocked",
        "Ready",
        "False",
        Some("DomainNotValidated"),
        t,
    )
    .await?;

    let (s, m) = health(&cert_lua, &ready)?;
    ensure!(s == "Healthy", "ready: {s} {m}");
    let (s, m) = health(&cert_lua, &waiting)?;
    ensure!(
        s == "Progressing" && m.starts_with("WaitingForApproval"),
        "waiting: {s} {m}"
    );
    let (s, m) = health(&cert_lua, &blocked)?;
    ensure!(
        s == "Degraded" && m.starts_with("DomainNotValidated"),
        "blocked: {s} {m}"
    );
    let mut fresh = ready.clone();
    fresh.status = None;
    ensure!(
        health(&cert_lua, &fresh)?.0 == "Progressing",
        "no status yet"
    );

    let orders: Api<CertificateOrder> = Api::namespaced(client.clone(), &ns);
    let issued = orders.get("ready-1").await?;
    let (s, m) = health(&order_lua, &issued)?;
    ensure!(s == "Healthy", "issued order: {s} {m}");
    let pending = e2e::eventually(t, "the order to wait for approval", || async {
        let o = orders.get("waiting-1").await?;
        let phase = o.status.as_ref().and_then(|s| s.phase);
        Ok((phase == Some(siths_operator::api::OrderPhase::PendingApproval)).then_some(o))
    })
    .await?;
    let (s, m) = health(&order_lua, &pending)?;
    ensure!(
        s == "Suspended" && m.starts_with("PendingApproval"),
        "pending order: {s} {m}"
    );

    // Denied by a person: Degraded, and the certificate says why.
    orders
        .patch(
            "waiting-1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": { "approval": {
                "decision": "Denied", "by": "admin", "at": "2026-05-01T10:00:00Z"
            } } })),
        )
        .await
        .context("deny")?;
    let denied = e2e::eventually(t, "the order to be denied", || async {
        let o = orders.get("waiting-1").await?;
        let phase = o.status.as_ref().and_then(|s| s.phase);
        Ok((phase == Some(siths_operator::api::OrderPhase::Denied)).then_some(o))
    })
    .await?;
    let (s, m) = health(&order_lua, &denied)?;
    ensure!(
        s == "Degraded" && m.starts_with("Denied"),
        "denied order: {s} {m}"
    );
    Ok(())
}
