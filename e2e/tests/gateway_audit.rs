//! `sithsctl audit` on Gateway API objects: applied to a real apiserver with the upstream
//! CRDs (whose validation the objects pass), the live audit finds what the offline audit of
//! the same objects finds: listener certificates (Gateway and ListenerSet, hosts from a
//! TLSRoute), a Secret in another namespace with and without a ReferenceGrant,
//! BackendTLSPolicies with and without SITHS trust, SITHS client validation and the
//! Gateway's SITHS client certificate.

use std::{path::Path, time::Duration};

use anyhow::Result;
use base64::Engine as _;
use e2e::k8s::{apply_manifests, sithsctl_output};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use siths_operator::pki::{self, CertificateProfile, KeySpec, LocalCa, LocalCaOptions, Usage};

const NOW: &str = "2026-06-01T00:00:00Z";
const NAMESPACES: [&str; 3] = ["gw-web", "gw-certs", "gw-other"];

fn leaf(ca: &LocalCa, name: &str) -> Result<String> {
    let key = KeySpec::ECDSA_P256.generate()?;
    let chain = ca.sign(
        &CertificateProfile {
            dns_names: vec![format!("{name}.vard.region-exempel.se")],
            hsa_id: Some("SE2321000016-GW01".into()),
            organization: "Region Exempel".into(),
            locality: None,
            usage: Usage::ServerToServer,
        },
        &key.public_key_der(),
        NOW.parse::<Timestamp>()? - SignedDuration::from_hours(24 * 10),
        Duration::from_secs(86_400 * 365),
        &pki::random_serial()?,
    )?;
    Ok(pki::chain_to_pem(&chain))
}

fn secret(ns: &str, name: &str, crt: &str) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD.encode(crt);
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": ns}, "data": {"tls.crt": b64, "tls.key": ""}})
}

fn https(name: &str, host: Option<&str>, secret: Value) -> Value {
    let mut l = json!({"name": name, "port": 443, "protocol": "HTTPS",
        "tls": {"mode": "Terminate", "certificateRefs": [secret]}});
    if let Some(h) = host {
        l["hostname"] = json!(h);
    }
    l
}

fn objects(prod: &LocalCa) -> Result<Vec<Value>> {
    let gw = "gateway.networking.k8s.io/v1";
    let host = |h: &str| format!("{h}.vard.region-exempel.se");
    let mut items: Vec<Value> = NAMESPACES
        .iter()
        .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .collect();
    items.extend([
        secret("gw-web", "portal-tls", &leaf(prod, "portal")?),
        secret("gw-web", "extra-tls", &leaf(prod, "extra")?),
        secret("gw-web", "gw-client", &leaf(prod, "gw-client")?),
        secret("gw-web", "api-tls", &leaf(prod, "api")?),
        secret("gw-certs", "shared-tls", &leaf(prod, "shared")?),
        secret("gw-other", "lost-tls", &leaf(prod, "lost")?),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "siths-ca", "namespace": "gw-web"},
            "data": {"ca.crt": prod.root_pem()}}),
        json!({"apiVersion": gw, "kind": "Gateway", "metadata": {"name": "front", "namespace": "gw-web"},
            "spec": {"gatewayClassName": "eg", "listeners": [
                https("portal", None, json!({"name": "portal-tls"})),
                https("shared", Some(&host("shared")), json!({"name": "shared-tls", "namespace": "gw-certs"})),
                https("lost", Some(&host("lost")), json!({"name": "lost-tls", "namespace": "gw-other"}))],
                "tls": {"backend": {"clientCertificateRef": {"group": "", "kind": "Secret", "name": "gw-client"}},
                    "frontend": {"default": {"validation": {"caCertificateRefs": [
                        {"group": "", "kind": "ConfigMap", "name": "siths-ca"}]}}}}}}),
        json!({"apiVersion": gw, "kind": "ListenerSet", "metadata": {"name": "extra", "namespace": "gw-web"},
            "spec": {"parentRef": {"name": "front"}, "listeners": [
                https("extra", Some(&host("extra")), json!({"name": "extra-tls"}))]}}),
        json!({"apiVersion": gw, "kind": "TLSRoute", "metadata": {"name": "portal", "namespace": "gw-web"},
            "spec": {"parentRefs": [{"name": "front", "sectionName": "portal"}], "hostnames": [host("portal")],
                "rules": [{"backendRefs": [{"name": "api", "port": 8443}]}]}}),
        json!({"apiVersion": gw, "kind": "ReferenceGrant", "metadata": {"name": "front", "namespace": "gw-certs"},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "gw-web"}],
                "to": [{"group": "", "kind": "Secret", "name": "shared-tls"}]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "gw-web"},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 8443}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "gw-web"},
            "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}},
                "spec": {"volumes": [{"name": "tls", "secret": {"secretName": "api-tls"}}],
                    "containers": [{"name": "api", "image": "registry.region-exempel.se/api:1.0"}]}}}}),
        json!({"apiVersion": gw, "kind": "BackendTLSPolicy", "metadata": {"name": "system", "namespace": "gw-web"},
            "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "api"}],
                "validation": {"wellKnownCACertificates": "System", "hostname": host("api")}}}),
        json!({"apiVersion": gw, "kind": "BackendTLSPolicy", "metadata": {"name": "siths", "namespace": "gw-web"},
            "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "api"}],
                "validation": {"caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "siths-ca"}], "hostname": host("api")}}}),
    ]);
    Ok(items)
}

/// (code, object, message) of the findings about the test's namespaces, sorted.
fn findings(json: &str) -> Result<Vec<(String, String, String)>> {
    let report: Value = serde_json::from_str(json)?;
    let mut out: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let o = &f["object"];
            NAMESPACES
                .iter()
                .any(|ns| o["namespace"] == *ns || o["name"] == *ns)
        })
        .map(|f| {
            let o = &f["object"];
            (
                f["code"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["name"].as_str().unwrap()
                ),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

fn run(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = sithsctl_output(kubeconfig, args)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[tokio::test]
async fn live_and_offline_audits_of_gateways_agree() -> Result<()> {
    let cp = e2e::shared();
    let client = cp.client().await?;
    e2e::gatewayapi::install_crds(&client).await?;
    let prod = LocalCa::generate(&LocalCaOptions {
        common_name: "Stand-in SITHS production (gateway test)".into(),
        organization: "siths-operator gateway test".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: None,
        not_before: NOW.parse::<Timestamp>()? - SignedDuration::from_hours(24 * 30),
        validity: Duration::from_secs(86_400 * 3_650),
    })?;
    let dir = tempfile::tempdir()?;
    let export = dir.path().join("export.yaml");
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects(&prod)?});
    std::fs::write(&export, serde_yaml::to_string(&list)?)?;
    apply_manifests(&client, dir.path()).await?;
    let anchor = dir.path().join("anchor.pem");
    std::fs::write(&anchor, prod.root_pem())?;
    let anchor = anchor.display().to_string();
    let export = export.display().to_string();

    let base = ["audit", "--now", NOW, "-o", "json", "--siths-ca", &anchor];
    let live = findings(&run(&cp.kubeconfig, &[&base[..], &["-A"]].concat())?)?;
    let offline = findings(&run(
        Path::new("/nonexistent"),
        &[&base[..], &["-f", &export]].concat(),
    )?)?;
    // Messages too: the hosts a listener gets from its TLSRoute, the grant, the policy's
    // problem are read the same way live and from the file.
    assert_eq!(live, offline, "live and offline audits differ");
    let portal = live
        .iter()
        .find(|f| f.2.starts_with("serves Secret portal-tls"))
        .unwrap();
    assert!(
        portal.2.contains("(portal.vard.region-exempel.se)"),
        "{}",
        portal.2
    );
    let live: Vec<(String, String)> = live.into_iter().map(|f| (f.0, f.1)).collect();
    let pair = |c: &str, o: &str| (c.to_string(), o.to_string());
    let mut want = vec![
        pair("SITHS_ON_USER_FACING_GATEWAY", "Gateway/front"),
        pair("SITHS_ON_USER_FACING_GATEWAY", "Gateway/front"),
        pair("SITHS_ON_USER_FACING_GATEWAY", "ListenerSet/extra"),
        pair("GATEWAY_REF_NOT_GRANTED", "Gateway/front"),
        pair("BACKEND_TLS_WITHOUT_SITHS_TRUST", "BackendTLSPolicy/system"),
        pair("SITHS_CLIENT_AUTH_TERMINATED_AT_GATEWAY", "Gateway/front"),
        // Trust is installed in gw-web (siths-ca), not in gw-certs and gw-other, where no
        // workload uses SITHS: no SITHS_TRUST_NOT_INSTALLED.
    ];
    for s in [
        "portal-tls",
        "extra-tls",
        "gw-client",
        "api-tls",
        "shared-tls",
        "lost-tls",
    ] {
        want.push(pair("UNMANAGED_SITHS_CERTIFICATE", &format!("Secret/{s}")));
    }
    want.sort();
    assert_eq!(live, want);

    // The inventory names the Gateway as a user of its listener and client Secrets.
    let inv: Value = serde_json::from_str(&run(
        &cp.kubeconfig,
        &[
            "inventory",
            "-n",
            "gw-web",
            "--now",
            NOW,
            "-o",
            "json",
            "--siths-ca",
            &anchor,
        ],
    )?)?;
    let used = |name: &str| {
        inv["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["secret"]["name"] == name)
            .map(|r| r["usedBy"].clone())
    };
    assert_eq!(used("portal-tls"), Some(json!(["Gateway/front"])));
    assert_eq!(used("gw-client"), Some(json!(["Gateway/front"])));
    assert_eq!(used("extra-tls"), Some(json!(["ListenerSet/extra"])));
    Ok(())
}
