//! The Ingress controller against the real apiserver, the operator as a process:
//! - `audit` (the default): a SITHS-chained TLS Secret gets `SithsCertificateOnUserFacingIngress`,
//!   a self-signed one `NotPubliclyTrustedOnIngress`, each once (no repetition when the
//!   Ingress or the Secret changes without changing the class), and the gauge counts them;
//! - `public`: one owned, labelled UserFacing ServiceCertificate per TLS Secret; the Ingress
//!   is never written (resourceVersion, full JSON and the apiserver's audit log); a removed
//!   TLS entry's certificate is deleted, and all of them when the mode leaves `public`;
//!   no write when nothing changed;
//! - `ignore`: nothing; an invalid mode value and a public Ingress without an issuer get a
//!   Warning.

use std::time::Duration;

use anyhow::{Context as _, Result};
use e2e::k8s::{OPERATOR_USER, apply, shared_operator, wait_condition};
use k8s_openapi::api::{
    core::v1::{Event, Secret},
    networking::v1::Ingress,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use siths_operator::api::{PublicIssuer, ServiceCertificate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(90);

struct Env {
    client: Client,
    ns: String,
}

async fn env(prefix: &str) -> Result<Env> {
    let _ = shared_operator();
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, prefix).await?;
    Ok(Env { client, ns })
}

impl Env {
    fn ingresses(&self) -> Api<Ingress> {
        Api::namespaced(self.client.clone(), &self.ns)
    }
    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.ns)
    }
    fn certs(&self) -> Api<ServiceCertificate> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// An Ingress `name` with `annotations` (YAML flow mapping entries) and TLS entries
    /// `(hosts, secret)`.
    async fn ingress(
        &self,
        name: &str,
        annotations: &str,
        tls: &[(Vec<String>, &str)],
    ) -> Result<Ingress> {
        let entries: Vec<String> = tls
            .iter()
            .map(|(hosts, secret)| {
                format!(
                    "  - {{ hosts: [{}], secretName: {secret} }}",
                    hosts.join(", ")
                )
            })
            .collect();
        let tls = if entries.is_empty() {
            "  tls: []".to_string()
        } else {
            format!("  tls:\n{}", entries.join("\n"))
        };
        apply(
            &self.ingresses(),
            &format!(
                r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  annotations: {{ {annotations} }}
spec:
  defaultBackend: {{ service: {{ name: web, port: {{ number: 80 }} }} }}
{tls}
"#
            ),
        )
        .await
    }

    /// A `kubernetes.io/tls` Secret with a self-signed certificate (neither SITHS nor
    /// publicly trusted).
    async fn self_signed_secret(&self, name: &str, host: &str) -> Result<()> {
        let ck = rcgen::generate_simple_self_signed(vec![host.to_string()])?;
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": ck.cert.pem(), "tls.key": ck.signing_key.serialize_pem()},
        }))?;
        self.secrets()
            .create(&PostParams::default(), &secret)
            .await?;
        Ok(())
    }

    /// Warning events on Ingress `name`, as `(reason, message, count)`.
    async fn events(&self, name: &str) -> Result<Vec<(String, String, i32)>> {
        let list = Api::<Event>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default().fields(&format!(
                "involvedObject.name={name},involvedObject.kind=Ingress"
            )))
            .await?;
        Ok(list
            .items
            .into_iter()
            .map(|e| {
                let count = e2e::k8s::times_announced(&e) as i32;
                (
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default(),
                    count,
                )
            })
            .collect())
    }

    async fn wait_event(&self, ingress: &str, reason: &str) -> Result<String> {
        self.wait_event_about(ingress, reason, "").await
    }

    /// Waits for a Warning `reason` on Ingress `ingress` whose message contains `about`.
    async fn wait_event_about(&self, ingress: &str, reason: &str, about: &str) -> Result<String> {
        let found = e2e::eventually(WAIT, &format!("event {reason} on {ingress}"), || async {
            Ok(self
                .events(ingress)
                .await?
                .into_iter()
                .find(|(r, m, _)| r == reason && m.contains(about))
                .map(|(_, m, _)| m))
        })
        .await;
        match found {
            Ok(m) => Ok(m),
            Err(e) => {
                let log = shared_operator()
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .output();
                let tail: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("ngress") || l.contains("ERROR") || l.contains("WARN"))
                    .rev()
                    .take(30)
                    .collect();
                Err(e.context(format!(
                    "events: {:?}\noperator log (Ingress lines, newest first):\n{}",
                    self.events(ingress).await?,
                    tail.join("\n")
                )))
            }
        }
    }

    async fn wait_cert(&self, name: &str) -> Result<ServiceCertificate> {
        e2e::eventually(WAIT, &format!("ServiceCertificate {name}"), || async {
            Ok(self.certs().get_opt(name).await?)
        })
        .await
    }

    /// Write requests (create, patch, update, delete) by the operator in this namespace
    /// to `resource` (no subresource), from the apiserver's audit log.
    async fn operator_writes(&self, resource: &str) -> Result<Vec<String>> {
        let log = e2e::shared().audit_text().await?;
        Ok(log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["user"]["username"] == OPERATOR_USER
                    && v["objectRef"]["namespace"] == self.ns.as_str()
                    && v["objectRef"]["resource"] == resource
                    && v["objectRef"]["subresource"].is_null()
                    && matches!(
                        v["verb"].as_str(),
                        Some("create" | "patch" | "update" | "delete")
                    )
            })
            .map(|v| {
                format!(
                    "{} {}",
                    v["verb"].as_str().unwrap_or_default(),
                    v["objectRef"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect())
    }

    /// Labels `obj` of `api` (a change that is not about TLS), as a test client.
    async fn touch<K>(&self, api: &Api<K>, name: &str, value: &str) -> Result<()>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"touched": value}}})),
        )
        .await?;
        Ok(())
    }
}

/// The operator's `/metrics` text.
async fn metrics() -> Result<String> {
    let port = shared_operator()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .http_port;
    // The operator may still be starting.
    let mut s = e2e::eventually(WAIT, "the operator's HTTP port", || async {
        Ok(tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok())
    })
    .await?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

/// A sample of `/metrics`: the value of the line starting with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn ingress_reconciles() -> Result<f64> {
    Ok(sample(
        &metrics().await?,
        "siths_reconcile_total{controller=\"Ingress\"}",
    )
    .unwrap_or(0.0))
}

/// Waits until the operator has reconciled Ingresses at least `n` more times than `from`,
/// then a little longer for the events of that reconcile.
async fn reconciled_since(from: f64, n: f64) -> Result<()> {
    e2e::eventually(WAIT, "Ingress reconciles", || async {
        Ok((ingress_reconciles().await? >= from + n).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

#[tokio::test]
async fn audit_mode_warns_once_about_siths_and_untrusted_certificates() -> Result<()> {
    let e = env("ing-audit").await?;
    let ns = &e.ns;
    // A SITHS-chained certificate: issued by the operator through a local-CA SithsIssuer
    // (a stand-in for SITHS Test) for back-end traffic.
    e2e::fixtures::local_ca_scenario(&e.client, ns).await?;
    e2e::fixtures::server_certificate(
        &e.client,
        ns,
        "backend",
        &format!("api.{ns}.region.se"),
        "SE2321000016-IN1",
        ns,
        "backend-tls",
    )
    .await?;
    wait_condition(&e.certs(), "backend", "Ready", "True", None, WAIT).await?;
    e.self_signed_secret("selfsigned-tls", &format!("self.{ns}.region.se"))
        .await?;

    e.ingress(
        "portal",
        "",
        &[
            (vec![format!("portal.{ns}.region.se")], "backend-tls"),
            (vec![format!("self.{ns}.region.se")], "selfsigned-tls"),
            (vec![format!("gone.{ns}.region.se")], "missing-tls"),
        ],
    )
    .await?;
    // (The operator audits with the anchors of the issuers it has seen Ready; should it
    // see the Ingress before the issuer's Ready status, it reports the certificate as
    // untrusted first and as SITHS once the issuer is Ready: a change, so a new event.)
    let siths = e
        .wait_event_about(
            "portal",
            "SithsCertificateOnUserFacingIngress",
            "Secret backend-tls",
        )
        .await?;
    assert!(siths.contains("Secret backend-tls"), "{siths}");
    assert!(siths.contains("SITHS test certificate"), "{siths}");
    assert!(siths.contains("issued by"), "{siths}");
    assert!(siths.contains("valid until 20"), "{siths}");
    assert!(siths.contains("siths-operator.io/tls: public"), "{siths}");
    let untrusted = e
        .wait_event_about(
            "portal",
            "NotPubliclyTrustedOnIngress",
            "Secret selfsigned-tls",
        )
        .await?;
    assert!(untrusted.contains("Secret selfsigned-tls"), "{untrusted}");
    assert!(
        untrusted.contains("neither SITHS nor publicly trusted"),
        "{untrusted}"
    );
    assert!(!untrusted.contains("PRIVATE KEY") && !siths.contains("PRIVATE KEY"));

    // The gauge counts audited TLS Secrets by class (other tests run beside this one, so
    // at least ours).
    let text = metrics().await?;
    for class in ["siths", "untrusted", "missing"] {
        let v = sample(
            &text,
            &format!(
                "siths_ingress_tls_certificates{{classification=\"{class}\",kind=\"Ingress\"}}"
            ),
        )
        .with_context(|| format!("no {class} sample in\n{text}"))?;
        assert!(v >= 1.0, "{class}: {v}");
    }

    // Resyncs without a change of class: the Ingress and both Secrets change (labels), the
    // operator reconciles, and publishes nothing new.
    let before = e.events("portal").await?;
    assert!(before.iter().all(|(_, _, count)| *count == 1), "{before:?}");
    let from = ingress_reconciles().await?;
    e.touch(&e.ingresses(), "portal", "1").await?;
    e.touch(&e.secrets(), "backend-tls", "1").await?;
    e.touch(&e.secrets(), "selfsigned-tls", "1").await?;
    reconciled_since(from, 3.0).await?;
    let after = e.events("portal").await?;
    assert_eq!(after, before, "events repeated on a resync");
    assert!(after.iter().all(|(_, _, count)| *count == 1), "{after:?}");
    // No write to the Ingress, ever.
    assert_eq!(e.operator_writes("ingresses").await?, Vec::<String>::new());

    // The class changes (the self-signed Secret now holds the SITHS certificate): a new
    // event for it.
    let backend = e.secrets().get("backend-tls").await?;
    let mut replaced = e.secrets().get("selfsigned-tls").await?;
    replaced.data = backend.data.clone();
    e.secrets()
        .replace("selfsigned-tls", &PostParams::default(), &replaced)
        .await?;
    e2e::eventually(WAIT, "a SITHS event for selfsigned-tls", || async {
        Ok(e.events("portal").await?.into_iter().find(|(r, m, _)| {
            r == "SithsCertificateOnUserFacingIngress" && m.contains("Secret selfsigned-tls")
        }))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn public_mode_keeps_owned_certificates_and_never_writes_the_ingress() -> Result<()> {
    let e = env("ing-public").await?;
    let ns = &e.ns;
    let shop = format!("shop.{ns}.region.se");
    let www = format!("www.{ns}.region.se");
    let api = format!("api.{ns}.region.se");
    let created = e
        .ingress(
            "shop",
            "siths-operator.io/tls: public, siths-operator.io/public-issuer: e2e-public",
            &[
                (vec![shop.clone(), www.clone()], "shop-tls"),
                (vec![api.clone()], "api-tls"),
                (vec![shop.clone()], "shop-tls"),
            ],
        )
        .await?;
    let uid = created.uid().context("uid")?;

    let cert = e.wait_cert("shop-shop-tls").await?;
    let other = e.wait_cert("shop-api-tls").await?;
    let v = serde_json::to_value(&cert)?;
    assert_eq!(v["spec"]["purpose"], "UserFacing");
    assert_eq!(v["spec"]["secretName"], "shop-tls");
    assert_eq!(v["spec"]["dnsNames"], serde_json::json!([shop, www]));
    assert_eq!(
        v["spec"]["issuerRef"],
        serde_json::json!({"kind": "PublicIssuer", "name": "e2e-public"})
    );
    assert_eq!(v["metadata"]["labels"]["siths-operator.io/ingress"], "shop");
    let owner = &v["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Ingress");
    assert_eq!(owner["name"], "shop");
    assert_eq!(owner["uid"], uid.as_str());
    assert_eq!(owner["controller"], true);
    assert_eq!(other.spec.secret_name, "api-tls");
    assert_eq!(other.spec.dns_names, vec![api.clone()]);

    // Nothing changed: a resync (the Secret the Ingress names changes, which triggers the
    // Ingress) writes no certificate.
    let writes = e.operator_writes("servicecertificates").await?;
    assert_eq!(writes.len(), 2, "{writes:?}");
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "shop-tls"}, "stringData": {"note": "placeholder"}
    }))?;
    if e.secrets().get_opt("shop-tls").await?.is_none() {
        e.secrets().create(&PostParams::default(), &secret).await?;
    }
    let from = ingress_reconciles().await?;
    e.touch(&e.secrets(), "shop-tls", "1").await?;
    reconciled_since(from, 1.0).await?;
    assert_eq!(e.operator_writes("servicecertificates").await?, writes);

    // The Ingress is exactly as the test wrote it.
    let now = e.ingresses().get("shop").await?;
    assert_eq!(now.resource_version(), created.resource_version());
    assert_eq!(serde_json::to_value(&now)?, serde_json::to_value(&created)?);
    assert_eq!(e.operator_writes("ingresses").await?, Vec::<String>::new());

    // The api-tls entry goes: its certificate goes; shop-tls's stays.
    e.ingress(
        "shop",
        "siths-operator.io/tls: public, siths-operator.io/public-issuer: e2e-public",
        &[(vec![shop.clone(), www.clone()], "shop-tls")],
    )
    .await?;
    e2e::eventually(WAIT, "shop-api-tls deleted", || async {
        Ok(e.certs()
            .get_opt("shop-api-tls")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    assert!(e.certs().get_opt("shop-shop-tls").await?.is_some());

    // The issuer changes: the certificate follows.
    e.ingress(
        "shop",
        "siths-operator.io/tls: public, siths-operator.io/public-issuer: e2e-other",
        &[(vec![shop.clone(), www.clone()], "shop-tls")],
    )
    .await?;
    e2e::eventually(WAIT, "issuer e2e-other", || async {
        Ok(e.certs()
            .get("shop-shop-tls")
            .await?
            .spec
            .issuer_ref
            .name
            .eq("e2e-other")
            .then_some(()))
    })
    .await?;

    // Leaving public mode removes what the operator kept.
    e.ingress(
        "shop",
        "siths-operator.io/tls: audit",
        &[(vec![shop.clone(), www.clone()], "shop-tls")],
    )
    .await?;
    e2e::eventually(WAIT, "shop-shop-tls deleted", || async {
        Ok(e.certs()
            .get_opt("shop-shop-tls")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    assert_eq!(e.operator_writes("ingresses").await?, Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn ignore_mode_does_nothing_and_bad_annotations_are_reported() -> Result<()> {
    let e = env("ing-ignore").await?;
    let ns = &e.ns;
    e.self_signed_secret("quiet-tls", &format!("quiet.{ns}.region.se"))
        .await?;
    let from = ingress_reconciles().await?;
    e.ingress(
        "quiet",
        "siths-operator.io/tls: ignore, siths-operator.io/public-issuer: e2e-public",
        &[(vec![format!("quiet.{ns}.region.se")], "quiet-tls")],
    )
    .await?;
    // An invalid mode: a Warning naming the allowed values, then the default (audit).
    e.ingress(
        "typo",
        "siths-operator.io/tls: publik",
        &[(vec![format!("typo.{ns}.region.se")], "quiet-tls")],
    )
    .await?;
    let invalid = e.wait_event("typo", "InvalidIngressMode").await?;
    assert!(
        invalid.contains("\"publik\"") && invalid.contains("public, audit and ignore"),
        "{invalid}"
    );
    e.wait_event("typo", "NotPubliclyTrustedOnIngress").await?;
    // Public without an issuer (this operator has no default): a Warning, no certificate.
    e.ingress(
        "orphan",
        "siths-operator.io/tls: public",
        &[
            (vec![format!("orphan.{ns}.region.se")], "orphan-tls"),
            (vec![], "nohosts-tls"),
        ],
    )
    .await?;
    let none = e.wait_event("orphan", "NoPublicIssuer").await?;
    assert!(none.contains("siths-operator.io/public-issuer"), "{none}");
    let skipped = e.wait_event("orphan", "TlsEntrySkipped").await?;
    assert!(skipped.contains("nohosts-tls"), "{skipped}");

    reconciled_since(from, 3.0).await?;
    assert_eq!(e.events("quiet").await?, vec![]);
    assert!(
        e.certs()
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
    );
    assert_eq!(e.operator_writes("ingresses").await?, Vec::<String>::new());
    assert_eq!(
        e.operator_writes("servicecertificates").await?,
        Vec::<String>::new()
    );
    Ok(())
}

/// The issue's "Must show 4", last part: the Secret of a public Ingress also carries a
/// ServerToServer (SITHS) certificate. The UserFacing certificate's own controller refuses
/// to overwrite it (`Ready=False`, `SharedWithBackend`); this controller repeats that on
/// the Ingress, once.
#[tokio::test]
async fn a_secret_shared_with_a_backend_certificate_is_reported_on_the_ingress() -> Result<()> {
    let e = env("ing-shared").await?;
    let ns = &e.ns;
    e2e::fixtures::local_ca_scenario(&e.client, ns).await?;
    e2e::fixtures::server_certificate(
        &e.client,
        ns,
        "backend",
        &format!("api.{ns}.region.se"),
        "SE2321000016-IN2",
        ns,
        "backend-tls",
    )
    .await?;
    wait_condition(&e.certs(), "backend", "Ready", "True", None, WAIT).await?;
    let before = e.secrets().get("backend-tls").await?;
    // A manual PublicIssuer (the certificate is bought elsewhere and placed in the Secret).
    let issuer = format!("{ns}-manual");
    apply(
        &Api::<PublicIssuer>::all(e.client.clone()),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: PublicIssuer
metadata: {{ name: {issuer} }}
spec:
  manual: {{ instructions: "Buy it in the CA's portal" }}
  organizationNumber: "{}"
"#,
            e2e::fixtures::REGION
        ),
    )
    .await?;
    e.ingress(
        "portal",
        &format!("siths-operator.io/tls: public, siths-operator.io/public-issuer: {issuer}"),
        &[(vec![format!("portal.{ns}.region.se")], "backend-tls")],
    )
    .await?;
    wait_condition(
        &e.certs(),
        "portal-backend-tls",
        "Ready",
        "False",
        Some("SharedWithBackend"),
        WAIT,
    )
    .await?;
    let message = e.wait_event("portal", "SharedWithBackend").await?;
    assert!(message.contains("portal-backend-tls"), "{message}");
    // Nothing overwrote the back-end's certificate.
    let after = e.secrets().get("backend-tls").await?;
    assert_eq!(after.data, before.data);
    let from = ingress_reconciles().await?;
    e.touch(&e.ingresses(), "portal", "1").await?;
    reconciled_since(from, 1.0).await?;
    let shared: Vec<_> = e
        .events("portal")
        .await?
        .into_iter()
        .filter(|(r, _, _)| r == "SharedWithBackend")
        .collect();
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(shared[0].2, 1, "{shared:?}");
    Ok(())
}

/// Resident memory of the shared operator process, in KiB.
fn operator_rss_kib() -> Result<u64> {
    let pid = shared_operator()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")
}

/// Secrets no Ingress names reach the operator as metadata only and are not kept: its
/// memory does not grow with them (a cache of Secrets would hold all of their data).
#[tokio::test]
async fn unrelated_secrets_do_not_grow_the_operator_memory() -> Result<()> {
    const COUNT: usize = 300;
    const SIZE: usize = 64 * 1024;
    let e = env("ing-memory").await?;
    // Let the operator start and settle before the first sample.
    metrics().await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = operator_rss_kib()?;
    let payload = "x".repeat(SIZE);
    for i in 0..COUNT {
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("unrelated-{i}")},
            "stringData": {"blob": payload},
        }))?;
        e.secrets().create(&PostParams::default(), &secret).await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = operator_rss_kib()?;
    let data_kib = (COUNT * SIZE / 1024) as u64;
    let growth = after.saturating_sub(before);
    eprintln!(
        "operator RSS {before} KiB -> {after} KiB (+{growth} KiB) after {COUNT} unrelated Secrets holding {data_kib} KiB"
    );
    assert!(
        growth < data_kib / 2,
        "the operator grew by {growth} KiB with {data_kib} KiB of unrelated Secrets"
    );
    Ok(())
}
