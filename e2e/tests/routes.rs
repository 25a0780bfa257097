//! OpenShift Routes in `sithsctl audit`, live and offline with identical findings.
//!
//! The live half installs a Route CRD into the test apiserver. It is not OpenShift's own
//! generated CRD: `testdata/openshift-route-crd/` is written for this project from the
//! documented Route fields (see its header). The offline half reads the same objects as
//! an `oc get routes,secrets,services,deployments -o yaml` export (a `List` with uids,
//! resourceVersions and Route status).
//!
//! Cases: SITHS inline on an edge Route, SITHS through `externalCertificate`, re-encrypt
//! to a SITHS back end without the SITHS CA (and with it), passthrough to a SITHS back end.

use std::{path::Path, time::Duration};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use e2e::k8s::{apply_manifests, sithsctl_output};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use siths_operator::pki::{self, CertificateProfile, KeySpec, LocalCa, LocalCaOptions, Usage};

const NOW: &str = "2026-06-01T00:00:00Z";

struct Fixture {
    prod: LocalCa,
    private: LocalCa,
    ns: String,
}

impl Fixture {
    fn new(ns: &str) -> Result<Self> {
        let now: Timestamp = NOW.parse()?;
        let ca = |cn: &str| {
            LocalCa::generate(&LocalCaOptions {
                common_name: cn.into(),
                organization: "siths-operator route test".into(),
                key: KeySpec::ECDSA_P256,
                intermediate_common_name: None,
                not_before: now - SignedDuration::from_hours(24 * 30),
                validity: Duration::from_secs(86_400 * 3_650),
            })
        };
        Ok(Fixture {
            prod: ca("Stand-in SITHS production (route test)")?,
            private: ca("Internal CA (route test)")?,
            ns: ns.into(),
        })
    }

    /// A SITHS production leaf for `name`: (certificate PEM, key PEM).
    fn leaf(&self, name: &str) -> Result<(String, String)> {
        let key = KeySpec::ECDSA_P256.generate()?;
        let chain = self.prod.sign(
            &CertificateProfile {
                dns_names: vec![format!("{name}.vard.region-exempel.se")],
                hsa_id: Some("SE2321000016-RT01".into()),
                organization: "Region Exempel".into(),
                locality: None,
                usage: Usage::ServerToServer,
            },
            &key.public_key_der(),
            NOW.parse::<Timestamp>()? - SignedDuration::from_hours(24 * 10),
            Duration::from_secs(86_400 * 365),
            &pki::random_serial()?,
        )?;
        Ok((pki::chain_to_pem(&chain), key.to_pem()))
    }

    fn secret(&self, name: &str) -> Result<Value> {
        let (crt, _) = self.leaf(name)?;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        Ok(
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": format!("{name}-tls"), "namespace": self.ns},
            "data": {"tls.crt": b64(&crt), "tls.key": ""}}),
        )
    }

    /// A Service and a Deployment whose pods mount `NAME-tls`.
    fn backend(&self, name: &str) -> Vec<Value> {
        vec![
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": self.ns},
                "spec": {"selector": {"app": name}, "ports": [{"port": 8443}]}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": self.ns},
                "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"volumes": [{"name": "tls", "secret": {"secretName": format!("{name}-tls")}}],
                        "containers": [{"name": "app", "image": "registry.example/app:1"}]}}}}),
        ]
    }

    fn route(&self, name: &str, tls: Value) -> Value {
        json!({"apiVersion": "route.openshift.io/v1", "kind": "Route",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"host": format!("{name}.vard.region-exempel.se"),
                "to": {"kind": "Service", "name": name, "weight": 100}, "tls": tls}})
    }

    /// Every object, and the private key inlined in the edge Route.
    fn objects(&self) -> Result<(Vec<Value>, String)> {
        let mut out = Vec::new();
        // Edge with an inline SITHS certificate and its key.
        let (crt, key) = self.leaf("portal")?;
        out.push(self.route(
            "portal",
            json!({"termination": "edge", "certificate": crt, "key": key,
                "insecureEdgeTerminationPolicy": "Redirect"}),
        ));
        // SITHS through externalCertificate.
        out.push(self.secret("ext")?);
        out.push(self.route(
            "ext",
            json!({"termination": "edge", "externalCertificate": {"name": "ext-tls"}}),
        ));
        // Re-encrypt to a SITHS back end: with an internal CA only, and with the SITHS CA.
        for (name, ca) in [
            ("api", self.private.root_pem()),
            ("sync", self.prod.cert_pem()),
        ] {
            out.push(self.secret(name)?);
            out.extend(self.backend(name));
            out.push(self.route(
                name,
                json!({"termination": "reencrypt", "destinationCACertificate": ca}),
            ));
        }
        // Passthrough to a SITHS back end: mutual TLS end to end.
        out.push(self.secret("mtls")?);
        out.extend(self.backend("mtls"));
        out.push(self.route("mtls", json!({"termination": "passthrough"})));
        Ok((out, key))
    }
}

/// What `oc get routes,secrets,services,deployments -o yaml` prints for `objects`.
fn oc_export(objects: &[Value]) -> Value {
    let items: Vec<Value> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let mut o = o.clone();
            let m = o["metadata"].as_object_mut().unwrap();
            m.insert("uid".into(), json!(format!("00000000-0000-4000-8000-{i:012}")));
            m.insert("resourceVersion".into(), json!(format!("{}", 1000 + i)));
            m.insert("creationTimestamp".into(), json!("2026-05-01T08:00:00Z"));
            if o["kind"] == "Route" {
                let host = o["spec"]["host"].clone();
                o["status"] = json!({"ingress": [{"host": host, "routerName": "default",
                    "conditions": [{"type": "Admitted", "status": "True", "lastTransitionTime": "2026-05-01T08:00:01Z"}],
                    "wildcardPolicy": "None", "routerCanonicalHostname": "router-default.apps.example"}]});
            }
            o
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
}

fn audit(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = sithsctl_output(kubeconfig, args)?;
    anyhow::ensure!(
        out.status.success(),
        "sithsctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn route_findings(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["object"]["kind"] == "Route")
        .map(|f| {
            (
                f["object"]["name"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn routes_give_the_same_findings_live_and_offline() -> Result<()> {
    let cp = e2e::shared();
    let client = cp.client().await?;
    e2e::install_crds(
        &client,
        &e2e::controlplane::workspace_root().join("e2e/tests/testdata/openshift-route-crd"),
    )
    .await?;
    let ns = e2e::test_namespace(&client, "routes").await?;
    let fx = Fixture::new(&ns)?;
    let (objects, key) = fx.objects()?;

    let dir = tempfile::tempdir()?;
    let anchors = dir.path().join("siths-ca.pem");
    std::fs::write(&anchors, fx.prod.cert_pem())?;
    let apply = dir.path().join("apply");
    std::fs::create_dir(&apply)?;
    std::fs::write(
        apply.join("objects.yaml"),
        serde_yaml::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": objects}))?,
    )?;
    apply_manifests(&client, &apply)
        .await
        .context("applying the Route fixture")?;
    let export = dir.path().join("oc-get-export.yaml");
    std::fs::write(&export, serde_yaml::to_string(&oc_export(&objects))?)?;

    let anchors = anchors.display().to_string();
    let live = audit(
        &cp.kubeconfig,
        &[
            "audit",
            "-n",
            &ns,
            "--now",
            NOW,
            "-o",
            "json",
            "--siths-ca",
            &anchors,
        ],
    )?;
    let offline = audit(
        Path::new("/nonexistent"),
        &[
            "audit",
            "-f",
            &export.display().to_string(),
            "--now",
            NOW,
            "-o",
            "json",
            "--siths-ca",
            &anchors,
        ],
    )?;
    assert_eq!(
        live, offline,
        "live and offline audits of the Routes differ"
    );

    let report: Value = serde_json::from_str(&live)?;
    let mut routes = route_findings(&report);
    routes.sort();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        routes,
        [
            pair("api", "SITHS_CA_MISSING_ON_REENCRYPT_ROUTE"),
            pair("ext", "SITHS_ON_USER_FACING_INGRESS"),
            pair("portal", "SITHS_ON_USER_FACING_INGRESS"),
        ],
        "sync (SITHS CA given) and mtls (passthrough) have none"
    );
    assert_eq!(report["summary"]["userFacingSithsEndpoints"], 2);
    // Four Secrets and the inline certificate.
    assert_eq!(report["summary"]["certificates"]["sithsProduction"], 5);

    // The inline private key reaches no output, in any format.
    let key_body: String = key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let html = dir.path().join("routes.html");
    let html_arg = html.display().to_string();
    for format in ["table", "markdown", "json", "html"] {
        let out = audit(
            &cp.kubeconfig,
            &[
                "audit",
                "-n",
                &ns,
                "--now",
                NOW,
                "-o",
                format,
                "--siths-ca",
                &anchors,
                "--html",
                &html_arg,
            ],
        )?;
        let html = std::fs::read_to_string(&html)?;
        for text in [&out, &html] {
            assert!(!text.contains("PRIVATE KEY"), "{format}");
            assert!(!text.contains(&key_body[..40]), "{format}");
        }
    }
    Ok(())
}
