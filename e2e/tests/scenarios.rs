//! One rule, one place: `sithsctl plan` and the controller run the same gate chain, so for
//! every scenario the reason `plan` prints from the manifests is the reason the certificate
//! settles at in the real apiserver with the operator running
//! (`policy::conditions::settled_reason`). The manifests are written once, planned offline,
//! then applied; the test fails if either side changes alone. The peers are real: Pebble
//! for ACME, cert-manager with a CA ClusterIssuer for delegation.

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{Context as _, Result, ensure};
use e2e::{
    controlplane::free_port,
    fixtures::{REGION, pebble_issuer_yaml, pebble_objects},
    k8s::{apply_manifests, siths_ca_bundle, sithsctl_output},
    operator::OperatorProcess,
    pebble::Pebble,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, PostParams},
};
use serde_json::Value;
use siths_operator::{
    api::ServiceCertificate,
    pki::{KeySpec, LocalCa, LocalCaOptions},
    policy::conditions::settled_reason,
};

const WAIT: Duration = Duration::from_secs(150);

/// Another organisation (for a validation whose power of attorney has lapsed).
const OTHER_ORG: &str = "202100-4185";

/// The scenarios: `(certificate name, the reason both sides must give)`. The expected
/// reason is written here too, so a change of the shared gate chain that moves both sides
/// together is still seen.
const EXPECTED: &[(&str, &str)] = &[
    ("local-ca", "Issued"),
    ("subdomain-covered", "Issued"),
    ("manual-approval", "WaitingForApproval"),
    ("manual-no-approval", "AwaitingCertificate"),
    ("production-manual", "WaitingForApproval"),
    ("not-covered", "DomainNotValidated"),
    ("apex-only-validation", "DomainNotValidated"),
    ("expired-validation", "DomainNotValidated"),
    ("lapsed-power-of-attorney", "DomainNotValidated"),
    ("issuer-missing", "IssuerNotFound"),
    ("issuer-not-ready", "IssuerNotReady"),
    ("namespace-not-allowed", "NamespaceNotAllowed"),
    ("conflict-a-first", "Issued"),
    ("conflict-b-second", "SecretConflict"),
    ("shared-a-backend", "Issued"),
    ("shared-b-web", "SharedWithBackend"),
    ("public-manual", "AwaitingCertificate"),
    ("public-gate-disabled", "AwaitingCertificate"),
    ("public-not-covered", "DomainNotValidated"),
    ("public-issuer-missing", "IssuerNotFound"),
    ("public-namespace-not-allowed", "NamespaceNotAllowed"),
    ("public-acme", "Issued"),
    ("public-cert-manager", "Verified"),
];

fn s2s(name: &str, dns: &str, secret: &str, issuer: &str) -> String {
    format!(
        "apiVersion: siths-operator.io/v1alpha1\nkind: ServiceCertificate\nmetadata: {{ name: {name} }}\nspec:\n  purpose: ServerToServer\n  hsaId: SE2321000016-{id}\n  dnsNames: [{dns}]\n  secretName: {secret}\n  issuerRef: {{ kind: SithsIssuer, name: {issuer} }}\n",
        id = name
            .to_uppercase()
            .replace('-', "")
            .chars()
            .take(10)
            .collect::<String>(),
    )
}

fn user_facing(name: &str, dns: &str, secret: &str, issuer: &str) -> String {
    format!(
        "apiVersion: siths-operator.io/v1alpha1\nkind: ServiceCertificate\nmetadata: {{ name: {name} }}\nspec:\n  purpose: UserFacing\n  dnsNames: [{dns}]\n  secretName: {secret}\n  issuerRef: {{ kind: PublicIssuer, name: {issuer} }}\n"
    )
}

fn siths_issuer(name: &str, environment: &str, backend: &str, extra: &str) -> String {
    format!(
        "apiVersion: siths-operator.io/v1alpha1\nkind: SithsIssuer\nmetadata: {{ name: {name} }}\nspec:\n  organization: {{ name: Region Exempel, organizationNumber: \"{REGION}\", locality: Stockholm }}\n  connection: {{ type: Direct }}\n  environment: {environment}\n  backend: {backend}\n{extra}"
    )
}

fn validation(name: &str, domain: &str, subdomains: bool, extra: &str) -> String {
    format!(
        "apiVersion: siths-operator.io/v1alpha1\nkind: DomainValidation\nmetadata: {{ name: {name} }}\nspec:\n  domain: {domain}\n  includeSubdomains: {subdomains}\n  evidence: {{ formReference: DV-1, submittedBy: Anna, approvedOn: \"2026-01-10\" }}\n{extra}"
    )
}

/// Every object of the scenarios in namespace `ns`, one YAML stream per file.
fn manifests(ns: &str, pebble: &Pebble, cluster_issuer: &str) -> BTreeMap<&'static str, String> {
    let d = format!("{ns}.region.se");
    let region_owner = format!(
        "  owner: {{ name: Region Exempel, organizationNumber: \"{REGION}\" }}\n  validatedFor: \"{REGION}\"\n"
    );
    let local =
        format!("{{ localCA: {{ secretRef: {{ name: ca, namespace: {ns} }}, generate: true }} }}");
    let mut files = BTreeMap::new();
    files.insert(
        "10-issuers.yaml",
        [
            siths_issuer(&format!("{ns}-local"), "Test", &local, ""),
            siths_issuer(&format!("{ns}-manual"), "Test", "{ manual: {} }", "  approval: Required\n"),
            siths_issuer(&format!("{ns}-manual-free"), "Test", "{ manual: {} }", "  approval: NotRequired\n"),
            siths_issuer(&format!("{ns}-production"), "Production", "{ manual: {} }", ""),
            // Its CA Secret does not exist. Exported with the status the operator gives it,
            // as `kubectl get -o yaml` does (the apiserver ignores status on apply).
            siths_issuer(
                &format!("{ns}-broken"),
                "Test",
                &format!("{{ localCA: {{ secretRef: {{ name: missing-ca, namespace: {ns} }} }} }}"),
                "status:\n  conditions:\n  - { type: Ready, status: \"False\", reason: LocalCaSecretNotFound, message: \"Secret does not exist\", lastTransitionTime: \"2026-12-01T00:00:00Z\" }\n",
            ),
            siths_issuer(
                &format!("{ns}-limited"),
                "Test",
                &local,
                "  allowedNamespaces: { matchLabels: { siths-scenario: allowed } }\n",
            ),
            format!(
                "apiVersion: siths-operator.io/v1alpha1\nkind: PublicIssuer\nmetadata: {{ name: {ns}-manual }}\nspec:\n  manual: {{ instructions: Buy it }}\n  organizationNumber: \"{REGION}\"\n"
            ),
            format!(
                "apiVersion: siths-operator.io/v1alpha1\nkind: PublicIssuer\nmetadata: {{ name: {ns}-ungated }}\nspec:\n  manual: {{}}\n  domainValidation: Disabled\n"
            ),
            format!(
                "apiVersion: siths-operator.io/v1alpha1\nkind: PublicIssuer\nmetadata: {{ name: {ns}-limited }}\nspec:\n  manual: {{}}\n  organizationNumber: \"{REGION}\"\n  allowedNamespaces: {{ matchLabels: {{ siths-scenario: allowed }} }}\n"
            ),
            pebble_issuer_yaml(&format!("{ns}-acme"), ns, pebble),
            format!(
                "apiVersion: siths-operator.io/v1alpha1\nkind: PublicIssuer\nmetadata: {{ name: {ns}-cm }}\nspec:\n  certManager: {{ issuerRef: {{ name: {cluster_issuer}, kind: ClusterIssuer }} }}\n  additionalTrustAnchors: {{ name: cm-root, namespace: {ns}, key: ca.crt }}\n  organizationNumber: \"{REGION}\"\n"
            ),
        ]
        .join("---\n"),
    );
    files.insert(
        "20-validations.yaml",
        [
            validation(&format!("{ns}-main"), &d, true, &format!("{region_owner}  validUntil: \"2030-12-31\"\n")),
            validation(
                &format!("{ns}-apex"),
                &format!("apex-{ns}.se"),
                false,
                &format!("{region_owner}  validUntil: \"2030-12-31\"\n"),
            ),
            validation(
                &format!("{ns}-expired"),
                &format!("expired-{ns}.se"),
                true,
                &format!("{region_owner}  validUntil: \"2026-01-31\"\n"),
            ),
            validation(
                &format!("{ns}-poa"),
                &format!("partner-{ns}.se"),
                true,
                &format!(
                    "  owner: {{ name: Partner AB, organizationNumber: \"{OTHER_ORG}\" }}\n  validatedFor: \"{REGION}\"\n  powerOfAttorney: {{ grantedBy: \"{OTHER_ORG}\", reference: FM-1, validUntil: \"2026-02-28\" }}\n  validUntil: \"2030-12-31\"\n"
                ),
            ),
        ]
        .join("---\n"),
    );
    let local_name = format!("{ns}-local");
    files.insert(
        "30-certificates.yaml",
        [
            s2s("local-ca", &format!("api.{d}"), "local-ca-tls", &local_name),
            s2s(
                "subdomain-covered",
                &format!("x.deep.{d}"),
                "subdomain-tls",
                &local_name,
            ),
            s2s(
                "manual-approval",
                &format!("m1.{d}"),
                "m1-tls",
                &format!("{ns}-manual"),
            ),
            s2s(
                "manual-no-approval",
                &format!("m2.{d}"),
                "m2-tls",
                &format!("{ns}-manual-free"),
            ),
            s2s(
                "production-manual",
                &format!("p.{d}"),
                "p-tls",
                &format!("{ns}-production"),
            ),
            s2s("not-covered", "api.not-validated.se", "nc-tls", &local_name),
            s2s(
                "apex-only-validation",
                &format!("www.apex-{ns}.se"),
                "apex-tls",
                &local_name,
            ),
            s2s(
                "expired-validation",
                &format!("api.expired-{ns}.se"),
                "exp-tls",
                &local_name,
            ),
            s2s(
                "lapsed-power-of-attorney",
                &format!("api.partner-{ns}.se"),
                "poa-tls",
                &local_name,
            ),
            s2s(
                "issuer-missing",
                &format!("im.{d}"),
                "im-tls",
                &format!("{ns}-nowhere"),
            ),
            s2s(
                "issuer-not-ready",
                &format!("nr.{d}"),
                "nr-tls",
                &format!("{ns}-broken"),
            ),
            s2s(
                "namespace-not-allowed",
                &format!("na.{d}"),
                "na-tls",
                &format!("{ns}-limited"),
            ),
            s2s(
                "conflict-a-first",
                &format!("c.{d}"),
                "conflict-tls",
                &local_name,
            ),
            s2s(
                "conflict-b-second",
                &format!("c2.{d}"),
                "conflict-tls",
                &local_name,
            ),
            s2s(
                "shared-a-backend",
                &format!("b.{d}"),
                "shared-tls",
                &local_name,
            ),
            user_facing(
                "shared-b-web",
                &format!("www.{d}"),
                "shared-tls",
                &format!("{ns}-manual"),
            ),
            user_facing(
                "public-manual",
                &format!("web.{d}"),
                "web-tls",
                &format!("{ns}-manual"),
            ),
            user_facing(
                "public-gate-disabled",
                "www.ungated.example",
                "ungated-tls",
                &format!("{ns}-ungated"),
            ),
            user_facing(
                "public-not-covered",
                "www.not-validated.se",
                "pnc-tls",
                &format!("{ns}-manual"),
            ),
            user_facing(
                "public-issuer-missing",
                &format!("pm.{d}"),
                "pm-tls",
                &format!("{ns}-nowhere"),
            ),
            user_facing(
                "public-namespace-not-allowed",
                &format!("pn.{d}"),
                "pn-tls",
                &format!("{ns}-limited"),
            ),
            user_facing(
                "public-acme",
                &format!("acme.{d}"),
                "acme-tls",
                &format!("{ns}-acme"),
            ),
            user_facing(
                "public-cert-manager",
                &format!("cm.{d}"),
                "cm-tls",
                &format!("{ns}-cm"),
            ),
        ]
        .iter()
        .map(|c| {
            c.replace(
                "metadata: { name: ",
                &format!("metadata: {{ namespace: {ns}, name: "),
            )
        })
        .collect::<Vec<_>>()
        .join("---\n"),
    );
    files
}

/// The reason `sithsctl plan` gives each certificate of `dir`.
fn planned(dir: &Path) -> Result<BTreeMap<String, String>> {
    let out = sithsctl_output(
        Path::new("/nonexistent"),
        &["plan", "-o", "json", "-f", &dir.to_string_lossy()],
    )?;
    let plan: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "plan output: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok(plan["certificates"]
        .as_array()
        .context("certificates")?
        .iter()
        .map(|e| {
            (
                e["object"]["name"].as_str().unwrap_or_default().to_string(),
                e["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

#[tokio::test]
async fn plan_and_controller_give_every_scenario_the_same_reason() -> Result<()> {
    let cp = e2e::shared();
    let client = cp.client().await?;
    let ns = e2e::test_namespace(&client, "scenario").await?;
    let port = free_port()?;
    let pebble = Pebble::start(port).await?;
    // What the ACME issuer reads: the EAB key, Pebble's HTTPS CA and its roots.
    pebble_objects(&client, &ns, &pebble, Some(&pebble.eab_hmac)).await?;

    // The real cert-manager with a CA ClusterIssuer whose root the cert-manager
    // PublicIssuer trusts through additionalTrustAnchors (as a public root would be).
    e2e::certmanager::install_crds(&client).await?;
    let ca = LocalCa::generate(&LocalCaOptions {
        common_name: format!("{ns} cert-manager Root CA"),
        organization: "siths-operator e2e".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: None,
        not_before: jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        validity: Duration::from_secs(365 * 86_400),
    })?;
    let pp = PostParams::default();
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(
            &pp,
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "cm-ca"}, "type": "kubernetes.io/tls",
                "stringData": {"tls.crt": ca.cert_pem(), "tls.key": ca.key_pem()},
            }))?,
        )
        .await?;
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(
            &pp,
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "cm-root"}, "data": {"ca.crt": ca.root_pem()},
            }))?,
        )
        .await?;
    let cluster_issuer = format!("{ns}-ca");
    let gvk = GroupVersionKind::gvk("cert-manager.io", "v1", "ClusterIssuer");
    Api::<DynamicObject>::all_with(client.clone(), &ApiResource::from_gvk(&gvk))
        .create(
            &pp,
            &serde_json::from_value(serde_json::json!({
                "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
                "metadata": {"name": cluster_issuer}, "spec": {"ca": {"secretName": "cm-ca"}},
            }))?,
        )
        .await?;
    let cert_manager = e2e::certmanager::Controller::start(cp, &ns)?;

    let dir = tempfile::tempdir()?;
    for (file, text) in manifests(&ns, &pebble, &cluster_issuer) {
        std::fs::write(dir.path().join(file), text)?;
    }
    // Offline first, from the manifests alone.
    let plan = planned(dir.path())?;
    for (name, want) in EXPECTED {
        ensure!(
            plan.get(*name).map(String::as_str) == Some(*want),
            "sithsctl plan gives {name} {:?}, the scenario expects {want}",
            plan.get(*name)
        );
    }
    ensure!(plan.len() == EXPECTED.len(), "plan: {plan:?}");

    // Then the real thing: apply and let the operator settle each certificate.
    let kubeconfig = cp.dir.join(format!("{ns}.kubeconfig"));
    e2e::rbac::write_operator_kubeconfig(cp, &kubeconfig)?;
    let ca = siths_ca_bundle(cp)?;
    let operator = OperatorProcess::start(
        cp,
        &kubeconfig,
        &[
            "--siths-ca-file",
            &ca.to_string_lossy(),
            "--acme-http01-port",
            &port.to_string(),
            "--lease-name",
            &ns,
        ],
    )?;
    apply_manifests(&client, dir.path()).await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    let settled = e2e::eventually(WAIT, "every certificate at its planned reason", || {
        let certs = certs.clone();
        let plan = plan.clone();
        async move {
            let list = certs.list(&Default::default()).await?;
            let now: BTreeMap<String, String> = list
                .items
                .iter()
                .map(|c| {
                    (
                        c.metadata.name.clone().unwrap_or_default(),
                        c.status
                            .as_ref()
                            .and_then(|s| settled_reason(&s.conditions))
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect();
            Ok((now == plan).then_some(now))
        }
    })
    .await;
    if settled.is_err() {
        let list = certs.list(&Default::default()).await?;
        let mut differ = Vec::new();
        for c in &list.items {
            let name = c.metadata.name.clone().unwrap_or_default();
            let got = c
                .status
                .as_ref()
                .and_then(|s| settled_reason(&s.conditions))
                .unwrap_or_default()
                .to_string();
            if plan.get(&name) != Some(&got) {
                differ.push(format!(
                    "{name}: plan {:?}, controller {got:?} ({})",
                    plan.get(&name),
                    e2e::k8s::condition(c, "Ready")
                        .map(|(_, _, m)| m)
                        .unwrap_or_default()
                ));
            }
        }
        anyhow::bail!(
            "plan and controller disagree:\n{}\noperator log:\n{}\ncert-manager log:\n{}",
            differ.join("\n"),
            last_lines(&operator.output(), 40),
            last_lines(&cert_manager.logs(), 20)
        );
    }
    drop(operator);
    drop(cert_manager);
    Ok(())
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
