//! `sithsctl audit` and `sithsctl plan`: the migration example offline (golden JSON), the
//! same objects applied to a real apiserver (identical findings), and the CI gates.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use e2e::k8s::{apply_manifests, sithsctl_output};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, api::PostParams};
use serde_json::Value;
use siths_operator::audit::Code;

/// The time the example export describes (see `cargo xtask migration-example`).
const NOW: &str = "2026-06-01T00:00:00Z";

fn root() -> PathBuf {
    e2e::controlplane::workspace_root()
}

fn example() -> PathBuf {
    root().join("examples/migration")
}

fn anchors() -> Vec<String> {
    let a = example().join("anchors");
    vec![
        "--siths-ca".into(),
        a.join("stand-in-production-ca.pem").display().to_string(),
        "--siths-test-ca".into(),
        a.join("stand-in-test-ca.pem").display().to_string(),
    ]
}

/// Runs sithsctl with `args`; returns (exit code, stdout, stderr).
fn sithsctl(kubeconfig: &Path, args: &[String]) -> Result<(i32, String, String)> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sithsctl_output(kubeconfig, &args)?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn offline(extra: &[&str]) -> Result<(i32, String, String)> {
    let mut a = args(&["audit", "--now", NOW, "-f"]);
    a.push(example().join("cluster-export.yaml").display().to_string());
    a.extend(anchors());
    a.extend(args(extra));
    sithsctl(Path::new("/nonexistent-kubeconfig"), &a)
}

fn codes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn offline_audit_of_the_migration_example_matches_the_golden_json() -> Result<()> {
    let (code, json, stderr) = offline(&["-o", "json"])?;
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&json)?;
    // Every finding code of the issue shows up in the example.
    let found = codes(&report);
    // The OpenShift Route code has its own example (tests/routes.rs); the live DNS check's
    // needs a validation status the example does not carry (audit/findings.rs tests it).
    for c in Code::ALL
        .into_iter()
        .filter(|c| ![Code::SithsCaMissingOnReencryptRoute, Code::DnsCheckFailed].contains(c))
    {
        assert!(
            found.iter().any(|f| f == c.as_str()),
            "{} missing: {found:?}",
            c.as_str()
        );
    }
    assert_eq!(report["summary"]["certificates"]["sithsProduction"], 4);
    assert_eq!(report["summary"]["certificates"]["sithsTest"], 2);
    assert_eq!(report["summary"]["certificates"]["other"], 2);
    // Two Ingresses and the patientportal Gateway's listener.
    assert_eq!(report["summary"]["userFacingSithsEndpoints"], 3);
    assert_eq!(
        report["summary"]["estimatedSithsSpendNext12MonthsSek"],
        7300
    );
    assert!(!json.contains("PRIVATE KEY"));

    let golden = root().join("e2e/tests/testdata/migration-audit.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &json)?;
    }
    let expected = std::fs::read_to_string(&golden).with_context(|| {
        format!(
            "{}; run with UPDATE_GOLDEN=1 to create it",
            golden.display()
        )
    })?;
    assert_eq!(
        json,
        expected,
        "JSON output differs from {}",
        golden.display()
    );
    // Stable: a second run prints the same bytes.
    assert_eq!(offline(&["-o", "json"])?.1, json);
    Ok(())
}

#[test]
fn fail_on_sets_the_exit_code_and_formats_render() -> Result<()> {
    let (code, table, _) = offline(&["--fail-on", "error"])?;
    assert_eq!(code, 1);
    assert!(
        table.contains("ERROR (8)") && table.contains("SITHS_ON_USER_FACING_INGRESS"),
        "{table}"
    );
    assert!(table.contains("7 300 SEK"), "{table}");
    // Only the intranet namespace: warnings but no errors.
    let (code, _, _) = offline(&["-n", "intranet", "--fail-on", "error"])?;
    assert_eq!(code, 0);
    let (code, md, _) = offline(&["-n", "intranet", "--fail-on", "warning", "-o", "markdown"])?;
    assert_eq!(code, 1);
    assert!(
        md.contains("| warning | `SITHS_NAME_UNVERIFIED` | `Secret/intranet/bokning-tls` |"),
        "{md}"
    );
    assert!(!md.contains("remiss"), "{md}");
    // Without the stand-in anchors nothing is SITHS, and the tool says so.
    let mut a = args(&["audit", "--now", NOW, "-o", "json", "-f"]);
    a.push(example().join("cluster-export.yaml").display().to_string());
    let (_, json, stderr) = sithsctl(Path::new("/nonexistent"), &a)?;
    assert!(stderr.contains("no SITHS anchors"), "{stderr}");
    let report: Value = serde_json::from_str(&json)?;
    assert_eq!(report["summary"]["certificates"]["sithsProduction"], 0);
    assert!(!codes(&report).contains(&"SITHS_ON_USER_FACING_INGRESS".to_string()));
    // A forged anchor named like the real SITHS root is refused.
    let dir = tempfile::tempdir()?;
    let forged = siths_operator::pki::LocalCa::generate(&siths_operator::pki::LocalCaOptions {
        common_name: "SITHS e-id Root CA v2".into(),
        organization: "Inera AB".into(),
        key: siths_operator::pki::KeySpec::ECDSA_P256,
        intermediate_common_name: None,
        not_before: NOW.parse()?,
        validity: std::time::Duration::from_secs(86_400),
    })?;
    let path = dir.path().join("forged.pem");
    std::fs::write(&path, forged.root_pem())?;
    let mut a = args(&["audit", "-f"]);
    a.push(example().join("cluster-export.yaml").display().to_string());
    a.extend(args(&["--siths-ca", &path.display().to_string()]));
    let (code, _, stderr) = sithsctl(Path::new("/nonexistent"), &a)?;
    assert_ne!(code, 0);
    assert!(
        stderr.contains("8767260AC829D833C30AF23857CBF8A2304BFDA445303DFCE5043AFA73E584C1"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn live_audit_of_the_applied_export_gives_the_same_findings() -> Result<()> {
    let cp = e2e::shared();
    let client = cp.client().await?;
    // The export holds Gateway API objects: the real CRDs validate them, and the live
    // audit lists them.
    e2e::gatewayapi::install_crds(&client).await?;
    apply_manifests(&client, &example()).await?;
    // A Secret with a real private key: it must not reach the output.
    let key = siths_operator::pki::KeySpec::ECDSA_P256.generate()?;
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "with-key", "namespace": "intranet"},
        "type": "Opaque",
        "stringData": {"tls.key": key.to_pem()},
    }))?;
    Api::<Secret>::namespaced(client.clone(), "intranet")
        .create(&PostParams::default(), &secret)
        .await?;

    let (code, offline_json, stderr) = offline(&["-o", "json"])?;
    assert_eq!(code, 0, "{stderr}");
    let mut a = args(&["audit", "-A", "--now", NOW, "-o", "json"]);
    a.extend(anchors());
    let (code, live_json, stderr) = sithsctl(&cp.kubeconfig, &a)?;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(live_json, offline_json, "live and offline audits differ");
    assert!(!live_json.contains("PRIVATE KEY"));

    // One namespace, both ways.
    let mut a = args(&["audit", "-n", "remiss", "--now", NOW, "-o", "json"]);
    a.extend(anchors());
    let (_, live_ns, _) = sithsctl(&cp.kubeconfig, &a)?;
    let (_, offline_ns, _) = offline(&["-n", "remiss", "-o", "json"])?;
    assert_eq!(live_ns, offline_ns);
    let report: Value = serde_json::from_str(&live_ns)?;
    assert_eq!(
        codes(&report),
        [
            "SITHS_ON_USER_FACING_INGRESS",
            "SHARED_SECRET_USER_FACING_AND_BACKEND",
            "NO_DOMAIN_VALIDATION",
            "BACKEND_TLS_WITHOUT_SITHS_TRUST",
            "SITHS_TRUST_NOT_INSTALLED"
        ]
    );

    // The inventory too: the same certificates, uses and classes either way.
    let mut a = args(&["inventory", "-A", "--now", NOW, "-o", "json"]);
    a.extend(anchors());
    let (code, live_inv, stderr) = sithsctl(&cp.kubeconfig, &a)?;
    assert_eq!(code, 0, "{stderr}");
    let mut a = args(&["inventory", "--now", NOW, "-o", "json", "-f"]);
    a.push(example().join("cluster-export.yaml").display().to_string());
    a.extend(anchors());
    let (_, offline_inv, _) = sithsctl(Path::new("/nonexistent"), &a)?;
    assert_eq!(live_inv, offline_inv);
    let inv: Value = serde_json::from_str(&live_inv)?;
    let remiss = inv["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["secret"]["name"] == "remiss-tls")
        .unwrap();
    assert_eq!(remiss["class"], "sithsProduction");
    assert_eq!(
        remiss["usedBy"],
        serde_json::json!([
            "Deployment/remiss-api",
            "Ingress/remiss-web",
            "ServiceCertificate/remiss-api",
            "StatefulSet/remiss-queue"
        ])
    );
    assert_eq!(inv["certificates"].as_array().unwrap().len(), 8);

    // The anchors can come from a ConfigMap in the cluster instead of a file.
    let pem = std::fs::read_to_string(example().join("anchors/stand-in-production-ca.pem"))?;
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "siths-ca", "namespace": "default"},
        "data": {"ca.crt": pem},
    }))?;
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await?;
    let a = args(&[
        "audit",
        "-n",
        "remiss",
        "--now",
        NOW,
        "-o",
        "json",
        "--siths-ca-configmap",
        "default/siths-ca",
    ]);
    let (code, from_cm, stderr) = sithsctl(&cp.kubeconfig, &a)?;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(from_cm, live_ns);
    Ok(())
}

fn plan(files: &[PathBuf], extra: &[&str]) -> Result<(i32, String, String)> {
    let mut a = args(&["plan", "--now", NOW]);
    for f in files {
        a.push("-f".into());
        a.push(f.display().to_string());
    }
    a.extend(args(extra));
    sithsctl(Path::new("/nonexistent"), &a)
}

#[test]
fn plan_blocks_certificates_without_domain_validation() -> Result<()> {
    let ex = root().join("examples");
    let originals: Vec<PathBuf> = [
        "region-production",
        "test-environment",
        "private-care-provider",
    ]
    .iter()
    .map(|d| ex.join(d))
    .collect();
    // The examples as shipped: every certificate would be issued.
    let (code, json, stderr) = plan(&originals, &["--fail-on", "error", "-o", "json"])?;
    assert_eq!(code, 0, "{stderr}\n{json}");
    let p: Value = serde_json::from_str(&json)?;
    assert_eq!(p["summary"]["issue"], 4);
    let entry = |p: &Value, name: &str| {
        p["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["object"]["name"] == name)
            .cloned()
            .unwrap()
    };
    let link = entry(&p, "patientjournal-link");
    assert_eq!(link["decision"], "Issue");
    assert_eq!(link["estimatedCostSek"], 3500);
    assert_eq!(link["leadTimeDays"], 28);
    assert_eq!(entry(&p, "booking-backend")["estimatedCostSek"], 750);

    // Plus a certificate no validation covers: Blocked, with its names, and the gate fails.
    let dir = tempfile::tempdir()?;
    let extra = dir.path().join("unvalidated.yaml");
    std::fs::write(
        &extra,
        r#"apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {name: unvalidated, namespace: integration}
spec:
  purpose: ServerToServer
  hsaId: SE2321000016-UNV1
  dnsNames: [api.integration.region-exempel.se, api.not-validated.se]
  secretName: unvalidated-tls
  issuerRef: {kind: SithsIssuer, name: region-exempel}
"#,
    )?;
    let mut files = originals.clone();
    files.push(extra);
    let (code, json, _) = plan(&files, &["--fail-on", "error", "-o", "json"])?;
    assert_eq!(code, 1);
    let p: Value = serde_json::from_str(&json)?;
    let blocked = entry(&p, "unvalidated");
    assert_eq!(blocked["decision"], "Blocked");
    assert_eq!(blocked["reason"], "DomainNotValidated");
    assert_eq!(
        blocked["uncoveredNames"],
        serde_json::json!(["api.not-validated.se"])
    );

    // examples/ as a whole: the migration export's new integration is Blocked too.
    let (code, table, _) = plan(&[ex], &["--fail-on", "error"])?;
    assert_eq!(code, 1);
    assert!(table.contains("gateway.ehalsa-exempel.se"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("ehalsa-gateway") && l.contains("Blocked")),
        "{table}"
    );
    Ok(())
}

/// B6 in BENCHMARKS.md: 10 000 TLS Secrets (each its own SITHS certificate, a tenth on
/// Ingresses) audited offline by the debug `sithsctl` binary.
#[test]
fn offline_audit_of_10000_secrets_finishes_in_seconds() -> Result<()> {
    use base64::Engine as _;
    use siths_operator::pki::{
        CertificateProfile, KeySpec, LocalCa, LocalCaOptions, Usage, chain_to_pem, random_serial,
    };
    const N: usize = 10_000;
    let now: jiff::Timestamp = NOW.parse()?;
    let ca = LocalCa::generate(&LocalCaOptions {
        common_name: "Bench SITHS stand-in root".into(),
        organization: "bench".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: Some("Bench SITHS stand-in function CA".into()),
        not_before: now - jiff::SignedDuration::from_hours(24 * 400),
        validity: std::time::Duration::from_secs(10 * 365 * 86_400),
    })?;
    let key = KeySpec::ECDSA_P256.generate()?;
    let dir = tempfile::tempdir()?;
    let mut yaml = String::with_capacity(N * 2_000);
    for i in 0..N {
        let profile = CertificateProfile {
            dns_names: vec![format!("svc{i}.bench.region.se")],
            hsa_id: Some(format!("SE2321000016-B{i}")),
            organization: "Bench".into(),
            locality: None,
            usage: Usage::ServerToServer,
        };
        // Lifetimes spread over two years: some expired, some due, most fine.
        let start = now - jiff::SignedDuration::from_hours(24 * (i % 365) as i64);
        let life = std::time::Duration::from_secs(86_400 * (30 + (i % 700) as u64));
        let chain = ca.sign(
            &profile,
            &key.public_key_der(),
            start,
            life,
            &random_serial()?,
        )?;
        let crt = base64::engine::general_purpose::STANDARD.encode(chain_to_pem(&chain));
        let ns = format!("ns{}", i % 100);
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: {{name: s{i}, namespace: {ns}}}\ndata: {{tls.crt: {crt}, tls.key: \"\"}}\n"
        ));
        if i % 10 == 0 {
            yaml.push_str(&format!(
                "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: i{i}, namespace: {ns}}}\nspec: {{tls: [{{hosts: [svc{i}.bench.region.se], secretName: s{i}}}]}}\n"
            ));
        }
    }
    let file = dir.path().join("secrets.yaml");
    std::fs::write(&file, &yaml)?;
    let anchors = dir.path().join("ca.pem");
    std::fs::write(&anchors, ca.cert_pem())?;
    let a = args(&[
        "audit",
        "--now",
        NOW,
        "-o",
        "json",
        "-f",
        &file.display().to_string(),
        "--siths-ca",
        &anchors.display().to_string(),
    ]);
    sithsctl_binary_built()?;
    let started = std::time::Instant::now();
    let (code, json, stderr) = sithsctl(Path::new("/nonexistent"), &a)?;
    let took = started.elapsed();
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&json)?;
    assert_eq!(report["summary"]["certificates"]["sithsProduction"], N);
    assert_eq!(report["summary"]["userFacingSithsEndpoints"], N / 10);
    println!(
        "B6 audit: {N} Secrets ({} MB of YAML, {} findings) audited offline in {:.2} s (debug sithsctl)",
        yaml.len() / 1_000_000,
        report["findings"].as_array().unwrap().len(),
        took.as_secs_f64()
    );
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
    Ok(())
}

fn sithsctl_binary_built() -> Result<()> {
    e2e::k8s::sithsctl_binary().map(|_| ())
}
