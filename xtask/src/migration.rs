//! `cargo xtask migration-example`: writes `examples/migration/`, a before-migration
//! cluster export whose certificates come from stand-in CAs configured as SITHS anchors.
//!
//! Only public certificates are written: the stand-in CA keys are thrown away and the
//! export's `tls.key` values are empty, as in an export with private keys redacted.

use std::{path::Path, time::Duration};

use anyhow::Result;
use base64::Engine as _;
use jiff::Timestamp;
use serde_json::{Value, json};
use siths_operator::pki::{
    CertificateProfile, KeySpec, LocalCa, LocalCaOptions, Usage, chain_to_pem, random_serial,
};

/// The time the export describes; the README and the golden test evaluate at it.
pub const EXPORT_TIME: &str = "2026-06-01T00:00:00Z";
const ORG: &str = "Region Exempel";
const DOMAIN: &str = "vard.region-exempel.se";

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn ca(cn: &str, intermediate: Option<&str>, org: &str) -> Result<LocalCa> {
    Ok(LocalCa::generate(&LocalCaOptions {
        common_name: cn.into(),
        organization: org.into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: intermediate.map(String::from),
        not_before: ts("2024-01-01T00:00:00Z"),
        validity: Duration::from_secs(20 * 365 * 86_400),
    })?)
}

/// A leaf for `host` valid from `from` to `until`; server-to-server profile (SITHS
/// function certificates carry serverAuth and clientAuth).
fn leaf(ca: &LocalCa, host: &str, hsa: Option<&str>, from: &str, until: &str) -> Result<String> {
    let key = KeySpec::ECDSA_P256.generate()?;
    let profile = CertificateProfile {
        dns_names: vec![host.into()],
        hsa_id: hsa.map(String::from),
        organization: ORG.into(),
        locality: Some("Stockholm".into()),
        usage: Usage::ServerToServer,
    };
    let start = ts(from);
    let lifetime = ts(until).duration_since(start).unsigned_abs();
    Ok(chain_to_pem(&ca.sign(
        &profile,
        &key.public_key_der(),
        start,
        lifetime,
        &random_serial()?,
    )?))
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn tls_secret(ns: &str, name: &str, crt: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": ns},
        // Private keys redacted from the export: the audit never needs them.
        "data": {"tls.crt": b64(crt), "tls.key": ""}})
}

fn ingress(ns: &str, name: &str, host: &str, secret: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ingressClassName": "nginx",
            "tls": [{"hosts": [host], "secretName": secret}],
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": name, "port": {"number": 443}}}}]}}]}})
}

fn pod_template(app: &str, spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] =
            json!([{"name": app, "image": format!("registry.region-exempel.se/{app}:1.0")}]);
    }
    json!({"metadata": {"labels": {"app": app}}, "spec": spec})
}

fn mount(app: &str, secret: &str) -> Value {
    json!({"volumes": [{"name": "tls", "secret": {"secretName": secret}}],
        "containers": [{"name": app, "image": format!("registry.region-exempel.se/{app}:1.0"),
            "volumeMounts": [{"name": "tls", "mountPath": "/etc/tls", "readOnly": true}]}]})
}

fn deployment(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": pod_template(name, spec)}})
}

/// Writes the example under `dir` (`examples/migration`).
pub fn write(dir: &Path) -> Result<()> {
    let prod = ca(
        "Stand-in SITHS e-id Root CA (example)",
        Some("Stand-in SITHS e-id Function CA (example)"),
        "siths-operator examples",
    )?;
    let test = ca(
        "Stand-in TEST SITHS e-id Root CA (example)",
        Some("Stand-in TEST SITHS e-id Function CA (example)"),
        "siths-operator examples",
    )?;
    let internal = ca("Region Exempel Internal CA", None, ORG)?;
    // Named byte for byte like the real SITHS function CA, but not it.
    let forged = ca("SITHS e-id Function CA v1", None, "Inera AB")?;

    let host = |h: &str| format!("{h}.{DOMAIN}");
    let mut items: Vec<Value> = Vec::new();
    for ns in [
        "patientportal",
        "remiss",
        "labb",
        "journal-test",
        "intranet",
    ] {
        items.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    items.push(json!({"apiVersion": "siths-operator.io/v1alpha1", "kind": "DomainValidation",
        "metadata": {"name": "vard-region-exempel-se"},
        "spec": {"domain": DOMAIN, "includeSubdomains": true,
            "owner": {"name": ORG, "organizationNumber": "232100-0016"},
            "validatedFor": "232100-0016",
            "evidence": {"formReference": "DV-2025-0412", "submittedBy": "Anna Andersson (ansvarig utgivare)", "approvedOn": "2025-10-02"},
            "validUntil": "2027-10-01"}}));
    items.push(json!({"apiVersion": "siths-operator.io/v1alpha1", "kind": "SithsIssuer",
        "metadata": {"name": "region-exempel-vard"},
        "spec": {"organization": {"name": ORG, "organizationNumber": "232100-0016", "locality": "Stockholm"},
            "connection": {"type": "Direct"}, "environment": "Production",
            "backend": {"manual": {"instructions": "Submit the CSR in Inera's customer portal."}},
            "leadTimeDays": 28}}));
    // SITHS trust installed explicitly where back-end workloads need it, except in remiss.
    items.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "siths-ca", "namespace": "labb"},
        "data": {"ca.crt": prod.root_pem()}}));
    items.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "siths-test-ca", "namespace": "journal-test"},
        "data": {"ca.crt": test.root_pem()}}));

    // patientportal: a user-facing portal still on SITHS, nothing else uses the Secret.
    items.push(tls_secret(
        "patientportal",
        "patientportal-tls",
        &leaf(
            &prod,
            &host("patientportal"),
            Some("SE2321000016-PP01"),
            "2025-09-01T00:00:00Z",
            "2027-09-01T00:00:00Z",
        )?,
    ));
    items.push(ingress(
        "patientportal",
        "patientportal",
        &host("patientportal"),
        "patientportal-tls",
    ));
    items.push(deployment("patientportal", "patientportal-web", json!({})));

    // remiss: the same SITHS Secret serves browsers and the back-end (mutual TLS).
    items.push(tls_secret(
        "remiss",
        "remiss-tls",
        &leaf(
            &prod,
            &host("remiss"),
            Some("SE2321000016-RM01"),
            "2025-03-01T00:00:00Z",
            "2027-03-01T00:00:00Z",
        )?,
    ));
    items.push(ingress(
        "remiss",
        "remiss-web",
        &host("remiss"),
        "remiss-tls",
    ));
    items.push(deployment(
        "remiss",
        "remiss-api",
        mount("remiss-api", "remiss-tls"),
    ));
    items.push(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "remiss-queue", "namespace": "remiss"},
        "spec": {"serviceName": "remiss-queue", "selector": {"matchLabels": {"app": "remiss-queue"}},
            "template": pod_template("remiss-queue", json!({"containers": [{"name": "queue", "image": "registry.region-exempel.se/remiss-queue:1.0",
                "env": [{"name": "TLS_CERT", "valueFrom": {"secretKeyRef": {"name": "remiss-tls", "key": "tls.crt"}}}]}]}))}}));
    items.push(json!({"apiVersion": "siths-operator.io/v1alpha1", "kind": "ServiceCertificate",
        "metadata": {"name": "remiss-api", "namespace": "remiss"},
        "spec": {"purpose": "ServerToServer", "hsaId": "SE2321000016-RM01", "dnsNames": [host("remiss")],
            "secretName": "remiss-tls", "issuerRef": {"kind": "SithsIssuer", "name": "region-exempel-vard"}}}));
    // A new integration whose domain has no validation yet.
    items.push(json!({"apiVersion": "siths-operator.io/v1alpha1", "kind": "ServiceCertificate",
        "metadata": {"name": "ehalsa-gateway", "namespace": "remiss"},
        "spec": {"purpose": "ServerToServer", "hsaId": "SE2321000016-EH01", "dnsNames": ["gateway.ehalsa-exempel.se"],
            "secretName": "ehalsa-gateway-tls", "issuerRef": {"kind": "SithsIssuer", "name": "region-exempel-vard"}}}));

    // labb: back-end only; the mutual-TLS certificate expires within the lead time.
    items.push(tls_secret(
        "labb",
        "labbsvar-mtls",
        &leaf(
            &prod,
            &host("labbsvar"),
            Some("SE2321000016-LB01"),
            "2024-06-21T00:00:00Z",
            "2026-06-21T00:00:00Z",
        )?,
    ));
    items.push(json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "hl7-gateway-client", "namespace": "labb"},
        "data": {"client.pem": b64(&leaf(&prod, &host("hl7"), Some("SE2321000016-HL01"), "2025-11-01T00:00:00Z", "2027-11-01T00:00:00Z")?)}}));
    items.push(deployment("labb", "labbsvar-sync", json!({
        "volumes": [{"name": "tls", "secret": {"secretName": "labbsvar-mtls"}},
            {"name": "hl7", "projected": {"sources": [{"secret": {"name": "hl7-gateway-client"}}]}}],
        "containers": [{"name": "sync", "image": "registry.region-exempel.se/labbsvar-sync:1.0"}]})));
    items.push(json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "labb-agent", "namespace": "labb"},
        "spec": {"selector": {"matchLabels": {"app": "labb-agent"}}, "template": pod_template("labb-agent", mount("labb-agent", "labbsvar-mtls"))}}));

    // journal-test: pre-production, one expired and one nearly expired test certificate.
    items.push(tls_secret(
        "journal-test",
        "journal-test-tls",
        &leaf(
            &test,
            &host("journal.test"),
            Some("SE2321000016-JT01"),
            "2025-05-15T00:00:00Z",
            "2026-05-15T00:00:00Z",
        )?,
    ));
    items.push(tls_secret(
        "journal-test",
        "journal-test-next",
        &leaf(
            &test,
            &host("journal-next.test"),
            Some("SE2321000016-JT02"),
            "2025-06-20T00:00:00Z",
            "2026-06-20T00:00:00Z",
        )?,
    ));
    items.push(json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly-export", "namespace": "journal-test"},
        "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": pod_template("nightly-export", json!({
            "restartPolicy": "OnFailure",
            "volumes": [{"name": "tls", "projected": {"sources": [{"secret": {"name": "journal-test-tls"}}]}}],
            "containers": [{"name": "export", "image": "registry.region-exempel.se/journal-export:1.0"}]}))}}}}));
    items.push(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate-journal", "namespace": "journal-test"},
        "spec": {"template": pod_template("migrate-journal", json!({"restartPolicy": "Never",
            "containers": [{"name": "migrate", "image": "registry.region-exempel.se/journal-migrate:1.0",
                "envFrom": [{"secretRef": {"name": "journal-test-next"}}]}]}))}}));

    // intranet: a private CA, a forged SITHS name, and a broken Secret.
    items.push(tls_secret(
        "intranet",
        "wiki-tls",
        &leaf(
            &internal,
            &host("wiki"),
            None,
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        )?,
    ));
    items.push(ingress("intranet", "wiki", &host("wiki"), "wiki-tls"));
    items.push(tls_secret(
        "intranet",
        "bokning-tls",
        &leaf(
            &forged,
            &host("bokning"),
            Some("SE2321000016-BK01"),
            "2026-02-01T00:00:00Z",
            "2027-02-01T00:00:00Z",
        )?,
    ));
    items.push(ingress(
        "intranet",
        "bokning",
        &host("bokning"),
        "bokning-tls",
    ));
    let truncated = {
        let full = leaf(
            &internal,
            &host("gammal"),
            None,
            "2025-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        )?;
        full[..full.len() / 2].to_string()
    };
    items.push(tls_secret("intranet", "gammal-tls", &truncated));
    items.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cert-checker", "namespace": "intranet"},
        "spec": mount("cert-checker", "wiki-tls")}));

    // Gateway API (after everything else, so that the certificates above stay as they were).
    // patientportal: a Gateway in front of the portal, still on the SITHS Secret, verifying
    // staff's SITHS e-id client certificates, with a listener naming remiss's Secret that
    // no ReferenceGrant allows.
    let gw = "gateway.networking.k8s.io/v1";
    items.push(json!({"apiVersion": gw, "kind": "Gateway",
        "metadata": {"name": "portal", "namespace": "patientportal"},
        "spec": {"gatewayClassName": "region-gateways",
            "listeners": [
                {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": host("patientportal"),
                 "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": "patientportal-tls"}]}},
                {"name": "remiss", "port": 443, "protocol": "HTTPS", "hostname": host("remiss"),
                 "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": "remiss-tls", "namespace": "remiss"}]}}],
            "tls": {"frontend": {"default": {"validation": {"caCertificateRefs": [
                {"group": "", "kind": "ConfigMap", "name": "siths-ca", "namespace": "labb"}]}}}}}}));
    items.push(json!({"apiVersion": gw, "kind": "ReferenceGrant",
        "metadata": {"name": "portal-client-ca", "namespace": "labb"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "patientportal"}],
            "to": [{"group": "", "kind": "ConfigMap", "name": "siths-ca"}]}}));
    // intranet: the wiki behind a Gateway listener whose hosts come from its HTTPRoute.
    items.push(json!({"apiVersion": gw, "kind": "Gateway",
        "metadata": {"name": "intranet", "namespace": "intranet"},
        "spec": {"gatewayClassName": "region-gateways",
            "listeners": [{"name": "https", "port": 443, "protocol": "HTTPS",
                "tls": {"certificateRefs": [{"name": "wiki-tls"}]}}]}}));
    items.push(json!({"apiVersion": gw, "kind": "HTTPRoute",
        "metadata": {"name": "wiki", "namespace": "intranet"},
        "spec": {"parentRefs": [{"name": "intranet", "sectionName": "https"}], "hostnames": [host("wiki")],
            "rules": [{"backendRefs": [{"name": "wiki", "port": 443}]}]}}));
    // remiss: the Gateway verifies the SITHS back end with the public roots only.
    items.push(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "remiss-api", "namespace": "remiss"},
        "spec": {"selector": {"app": "remiss-api"}, "ports": [{"name": "https", "port": 8443, "targetPort": 8443}]}}));
    items.push(json!({"apiVersion": gw, "kind": "BackendTLSPolicy",
        "metadata": {"name": "remiss-api", "namespace": "remiss"},
        "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "remiss-api"}],
            "validation": {"wellKnownCACertificates": "System", "hostname": host("remiss")}}}));

    let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items});
    let header = format!(
        "# Before-migration export of a region's cluster (`kubectl get ... -A -o yaml`), {EXPORT_TIME}.\n\
         # Generated by `cargo xtask migration-example`; private keys (tls.key) redacted.\n"
    );
    std::fs::create_dir_all(dir.join("anchors"))?;
    std::fs::write(
        dir.join("cluster-export.yaml"),
        header + &serde_yaml::to_string(&list)?,
    )?;
    // Root and function CA of each stand-in hierarchy: what --siths-ca reads.
    std::fs::write(
        dir.join("anchors/stand-in-production-ca.pem"),
        prod.cert_pem(),
    )?;
    std::fs::write(dir.join("anchors/stand-in-test-ca.pem"), test.cert_pem())?;
    Ok(())
}
