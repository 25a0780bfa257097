//! `sithsctl status` against the real apiserver and operator, and `sithsctl` installed as
//! the kubectl plugin `kubectl-siths`.

use std::{process::Command, time::Duration};

use anyhow::Result;
use e2e::k8s::{apply, shared_operator, sithsctl, sithsctl_binary, wait_condition};
use k8s_openapi::api::core::v1::Event;
use kube::{Api, api::ListParams};
use siths_operator::api::{DomainValidation, ServiceCertificate, SithsIssuer};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn status_shows_certificate_issuer_secret_order_and_events() -> Result<()> {
    let _ = shared_operator();
    let cp = e2e::shared();
    let client = cp.client().await?;
    let ns = e2e::test_namespace(&client, "status").await?;
    let issuer = format!("{ns}-prod");
    apply(
        &Api::<SithsIssuer>::all(client.clone()),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsIssuer
metadata: {{ name: {issuer} }}
spec:
  organization: {{ name: Region Exempel, organizationNumber: "232100-0016" }}
  connection: {{ type: Direct }}
  environment: Production
  backend: {{ manual: {{}} }}
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
  evidence: {{ formReference: DV-1, submittedBy: Anna, approvedOn: "2026-01-10" }}
  validUntil: "2099-12-31"
"#
        ),
    )
    .await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    apply(
        &certs,
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: api, namespace: {ns} }}
spec:
  purpose: ServerToServer
  hsaId: SE2321000016-API1
  dnsNames: [api.{ns}.region.se]
  secretName: api-tls
  issuerRef: {{ kind: SithsIssuer, name: {issuer} }}
"#
        ),
    )
    .await?;
    wait_condition(
        &certs,
        "api",
        "Issuing",
        "True",
        Some("WaitingForApproval"),
        WAIT,
    )
    .await?;

    // The issuer's status is written once per burst of changes (debounced): wait for it.
    wait_condition(
        &Api::<siths_operator::api::SithsIssuer>::all(client.clone()),
        &issuer,
        "Ready",
        "True",
        None,
        WAIT,
    )
    .await?;
    let out = sithsctl(&cp.kubeconfig, &["status", "-n", &ns, "api"])?;
    assert!(
        out.contains(&format!("ServiceCertificate {ns}/api")),
        "{out}"
    );
    assert!(out.contains("Route:      SITHS"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("Issuing") && l.contains("WaitingForApproval")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("Ready") && l.contains("True")),
        "issuer Ready: {out}"
    );
    assert!(
        out.contains(&format!("Secret {ns}/api-tls\n  does not exist")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.contains("api-1")
            && l.contains("PendingApproval")
            && l.contains("3500 SEK")
            && l.contains("(current)")),
        "{out}"
    );
    // Every event the apiserver holds for the certificate is shown (up to ten).
    let events = Api::<Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().fields("involvedObject.name=api"))
        .await?;
    for e in events.items.iter().take(10) {
        let reason = e.reason.clone().unwrap_or_default();
        assert!(out.contains(&reason), "event {reason} missing: {out}");
    }
    assert!(!out.contains("PRIVATE KEY"));

    // As a kubectl plugin: the same program under the name kubectl-siths.
    let dir = tempfile::tempdir()?;
    let plugin = dir.path().join("kubectl-siths");
    std::os::unix::fs::symlink(sithsctl_binary()?, &plugin)?;
    let direct = Command::new(&plugin)
        .env("KUBECONFIG", &cp.kubeconfig)
        .args(["status", "-n", &ns, "api"])
        .output()?;
    assert!(direct.status.success());
    assert_eq!(String::from_utf8(direct.stdout)?, out);
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok()
    {
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let via = Command::new("kubectl")
            .env("PATH", path)
            .env("KUBECONFIG", &cp.kubeconfig)
            .args(["siths", "plan", "-f"])
            .arg(e2e::controlplane::workspace_root().join("examples/test-environment"))
            .output()?;
        assert!(
            via.status.success(),
            "{}",
            String::from_utf8_lossy(&via.stderr)
        );
        assert!(String::from_utf8(via.stdout)?.contains("journal-api"));
    }
    Ok(())
}
