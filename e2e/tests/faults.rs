//! Faults, smoke size: conflicts, tampering, a CA returning the wrong certificate, and no
//! private key material anywhere people or other systems can read.

use std::time::Duration;

use anyhow::Result;
use e2e::k8s::{apply, condition, shared_operator, wait_condition};
use k8s_openapi::api::{core::v1::Secret, events::v1::Event};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use siths_operator::api::{
    CertificateOrder, DomainValidation, OrderPhase, ServiceCertificate, SithsIssuer,
};

const WAIT: Duration = Duration::from_secs(90);

struct Env {
    client: Client,
    ns: String,
}

impl Env {
    async fn new(prefix: &str, issuer_extra: &str) -> Result<Self> {
        let _ = shared_operator();
        let client = e2e::shared().client().await?;
        let ns = e2e::test_namespace(&client, prefix).await?;
        e2e::fixtures::local_ca_issuer(&client, &ns, &ns, issuer_extra).await?;
        e2e::fixtures::region_validation(&client, &ns, &format!("{ns}.region.se")).await?;
        Ok(Self { client, ns })
    }

    fn certs(&self) -> Api<ServiceCertificate> {
        Api::namespaced(self.client.clone(), &self.ns)
    }
    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.ns)
    }
    fn orders(&self) -> Api<CertificateOrder> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn certificate(&self, name: &str, secret: &str) -> Result<()> {
        let ns = &self.ns;
        e2e::fixtures::server_certificate(
            &self.client,
            ns,
            name,
            &format!("{name}.{ns}.region.se"),
            "SE2321000016-F1",
            ns,
            secret,
        )
        .await
    }

    /// Current length of the audit log (after a flush).
    async fn audit_len(&self) -> usize {
        e2e::shared()
            .audit_text()
            .await
            .map(|t| t.len())
            .unwrap_or(0)
    }

    /// Write requests by the operator in this namespace since `offset` of the audit log.
    async fn operator_writes_since(&self, offset: usize) -> Result<usize> {
        let log = e2e::shared().audit_text().await?.into_bytes();
        let tail = String::from_utf8_lossy(&log[offset.min(log.len())..]).to_string();
        Ok(tail
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["user"]["username"] == e2e::k8s::OPERATOR_USER
                    && v["objectRef"]["namespace"] == self.ns.as_str()
                    && matches!(
                        v["verb"].as_str(),
                        Some("create" | "patch" | "update" | "delete")
                    )
            })
            .count())
    }

    /// Writes by the operator to Secret `name`, from the apiserver's audit log.
    async fn secret_writes(&self, name: &str) -> Result<usize> {
        let log = e2e::shared().audit_text().await?;
        Ok(log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["objectRef"]["resource"] == "secrets"
                    && v["objectRef"]["namespace"] == self.ns.as_str()
                    && v["objectRef"]["name"] == name
                    && matches!(v["verb"].as_str(), Some("create" | "patch" | "update"))
                    && v["user"]["username"] == e2e::k8s::OPERATOR_USER
            })
            .count())
    }
}

#[tokio::test]
async fn two_certificates_naming_one_secret_the_older_wins_and_writes_once() -> Result<()> {
    let e = Env::new("conflict", "").await?;
    e.certificate("first", "shared-tls").await?;
    wait_condition(&e.certs(), "first", "Ready", "True", None, WAIT).await?;
    e.certificate("second", "shared-tls").await?;
    let second = wait_condition(
        &e.certs(),
        "second",
        "Ready",
        "False",
        Some("SecretConflict"),
        WAIT,
    )
    .await?;
    let (_, _, message) = condition(&second, "Ready").unwrap_or_default();
    assert!(message.contains("first"), "{message}");
    // Smoke: watch 10 s. Chaos: 10 minutes.
    let window = Duration::from_secs(e2e::size(10, 600));
    tokio::time::sleep(window).await;
    let writes = e.secret_writes("shared-tls").await?;
    e2e::reliability(
        "conflict",
        &format!(
            "two certificates naming one Secret: the Secret written {writes} time(s) in {window:?}"
        ),
    );
    assert_eq!(writes, 1, "the shared Secret was written {writes} times");
    assert!(
        e.orders().get_opt("second-1").await?.is_none(),
        "the newer certificate ordered"
    );
    Ok(())
}

#[tokio::test]
async fn tampering_is_repaired_with_backoff_not_in_a_loop() -> Result<()> {
    let e = Env::new("tamper", "").await?;
    e.certificate("svc", "svc-tls").await?;
    wait_condition(&e.certs(), "svc", "Ready", "True", None, WAIT).await?;
    let tamper = PatchParams::apply("e2e-tamper").force();
    let garbage = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "data": { "tls.crt": "Z2FyYmFnZQ==", "tls.key": "Z2FyYmFnZQ==" }
    });

    // 1. Garbage: re-issued as revision 2.
    e.secrets()
        .patch("svc-tls", &tamper, &Patch::Apply(&garbage))
        .await?;
    let repaired = e2e::eventually(WAIT, "revision 2", || {
        let certs = e.certs();
        async move {
            let c = certs.get("svc").await?;
            let ok = c.status.as_ref().is_some_and(|s| s.revision == Some(2))
                && condition(&c, "Ready").is_some_and(|(s, _, _)| s == "True");
            Ok(ok.then_some(c))
        }
    })
    .await?;
    assert_eq!(repaired.status.as_ref().unwrap().failed_attempts, Some(1));

    // 2. Garbage again at once: the second repair waits for the backoff (20 s).
    let started = std::time::Instant::now();
    e.secrets()
        .patch("svc-tls", &tamper, &Patch::Apply(&garbage))
        .await?;
    wait_condition(
        &e.certs(),
        "svc",
        "Ready",
        "False",
        Some("SecretMismatch"),
        WAIT,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(
        e.orders().get_opt("svc-3").await?.is_none(),
        "re-ordered without backing off"
    );
    e2e::eventually(WAIT, "revision 3", || {
        let certs = e.certs();
        async move {
            let c = certs.get("svc").await?;
            Ok(c.status.filter(|s| s.revision == Some(3)))
        }
    })
    .await?;
    let waited = started.elapsed();
    println!("second repair after {waited:?}");
    assert!(
        waited >= Duration::from_secs(15),
        "backoff too short: {waited:?}"
    );

    // 3. Deleted: re-issued (after its backoff).
    e.secrets()
        .delete("svc-tls", &DeleteParams::default())
        .await?;
    e2e::eventually(Duration::from_secs(150), "revision 4", || {
        let certs = e.certs();
        async move {
            let c = certs.get("svc").await?;
            Ok(c.status.filter(|s| s.revision == Some(4)))
        }
    })
    .await?;
    let writes = e.secret_writes("svc-tls").await?;
    println!("operator writes to the Secret across 3 tamperings: {writes}");
    assert!(writes <= 4, "{writes} writes for 3 tamperings");
    let orders = e.orders().list(&ListParams::default()).await?.items.len();
    assert_eq!(orders, 4);

    // Relentless tampering: garbage every 5 s. Writes stay bounded by the backoff.
    let window = Duration::from_secs(e2e::size(30, 600));
    let offset = e.audit_len().await;
    let until = std::time::Instant::now() + window;
    let mut tamperings = 0;
    while std::time::Instant::now() < until {
        e.secrets()
            .patch("svc-tls", &tamper, &Patch::Apply(&garbage))
            .await?;
        tamperings += 1;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let operator_writes = e.operator_writes_since(offset).await?;
    let per_hour = operator_writes as f64 * 3600.0 / window.as_secs_f64();
    e2e::reliability(
        "tampering",
        &format!(
            "{tamperings} tamperings in {window:?} (one every 5 s): {operator_writes} operator write requests, {per_hour:.0} per hour"
        ),
    );
    // Without backoff each tampering costs about eight writes (key, order, status, Secret,
    // events); with it the repairs thin out exponentially.
    assert!(
        (operator_writes as f64) < tamperings as f64 * 8.0 * 0.75,
        "{operator_writes} writes for {tamperings} tamperings: not backing off"
    );
    Ok(())
}

#[tokio::test]
async fn a_ca_returning_the_wrong_certificate_fails_the_order_and_backs_off() -> Result<()> {
    // The local CA signs, but the issuer only trusts another root: every certificate it
    // returns fails the chain check.
    let other = siths_operator::pki::LocalCa::generate(&siths_operator::pki::LocalCaOptions {
        common_name: "Unrelated root".into(),
        organization: "Elsewhere".into(),
        key: siths_operator::pki::KeySpec::ECDSA_P256,
        intermediate_common_name: None,
        not_before: jiff::Timestamp::now(),
        validity: Duration::from_secs(86_400 * 365),
    })?;
    let client = e2e::shared().client().await?;
    let ns_for_cm = e2e::test_namespace(&client, "wrongca-anchors").await?;
    apply(
        &Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &ns_for_cm),
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: anchors }}\ndata:\n  ca.crt: |\n{}",
            other.root_pem().lines().map(|l| format!("    {l}\n")).collect::<String>()
        ),
    )
    .await?;
    let e = Env::new(
        "wrongca",
        &format!("  trustAnchors: {{ configMap: {{ name: anchors, namespace: {ns_for_cm} }} }}"),
    )
    .await?;
    e.certificate("svc", "svc-tls").await?;
    wait_condition(
        &e.certs(),
        "svc",
        "Issuing",
        "False",
        Some("UntrustedChain"),
        WAIT,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let cert = e.certs().get("svc").await?;
    let attempts = cert.status.unwrap().failed_attempts.unwrap_or(0);
    println!("signing attempts in ~20 s: {attempts}");
    assert!(
        (1..=3).contains(&attempts),
        "{attempts} attempts: not backing off"
    );
    let orders = e.orders().list(&ListParams::default()).await?.items;
    assert_eq!(
        orders.len(),
        1,
        "one order for the revision, however often it fails"
    );
    assert_eq!(
        orders[0].status.as_ref().unwrap().phase,
        Some(OrderPhase::Failed)
    );
    assert!(
        e.secrets().get_opt("svc-tls").await?.is_none(),
        "a rejected certificate reached the Secret"
    );
    e2e::reliability(
        "wrong CA output",
        &format!(
            "a CA whose certificates do not chain: one order, Failed; {attempts} signing attempt(s) in 20 s (backoff); the Secret never written"
        ),
    );
    Ok(())
}

#[tokio::test]
async fn no_private_key_material_in_logs_events_status_or_specs() -> Result<()> {
    let e = Env::new("leaks", "").await?;
    e.certificate("svc", "svc-tls").await?;
    wait_condition(&e.certs(), "svc", "Ready", "True", None, WAIT).await?;
    let secret = e.secrets().get("svc-tls").await?;
    let key_pem = String::from_utf8(secret.data.unwrap()["tls.key"].0.clone())?;
    // Any 40-character run of the key's base64 body would betray it.
    let body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    // An RSA private key carries its public modulus, which the CSR and the certificate
    // rightly show: runs that are base64 of public-key bytes (at any alignment) are not
    // secrets and are left out.
    let public = siths_operator::pki::PrivateKey::from_pem(&key_pem)?.public_key_der();
    let public_b64: Vec<String> = (0..3)
        .map(|skip| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(&public[skip..])
        })
        .collect();
    let needles: Vec<&str> = (0..body.len().saturating_sub(40))
        .step_by(40)
        .map(|i| &body[i..i + 40])
        .filter(|n| !public_b64.iter().any(|p| p.contains(n)))
        .collect();
    assert!(
        needles.len() >= 10,
        "too few secret runs left to search for"
    );
    let mut haystacks = vec![(
        "operator log".to_string(),
        shared_operator().lock().expect("operator").output(),
    )];
    let events: Api<Event> = Api::all(e.client.clone());
    haystacks.push((
        "events".into(),
        serde_json::to_string(&events.list(&ListParams::default()).await?.items)?,
    ));
    haystacks.push((
        "ServiceCertificates".into(),
        serde_json::to_string(
            &Api::<ServiceCertificate>::all(e.client.clone())
                .list(&ListParams::default())
                .await?
                .items,
        )?,
    ));
    haystacks.push((
        "CertificateOrders".into(),
        serde_json::to_string(
            &Api::<CertificateOrder>::all(e.client.clone())
                .list(&ListParams::default())
                .await?
                .items,
        )?,
    ));
    haystacks.push((
        "SithsIssuers".into(),
        serde_json::to_string(
            &Api::<SithsIssuer>::all(e.client.clone())
                .list(&ListParams::default())
                .await?
                .items,
        )?,
    ));
    haystacks.push((
        "DomainValidations".into(),
        serde_json::to_string(
            &Api::<DomainValidation>::all(e.client.clone())
                .list(&ListParams::default())
                .await?
                .items,
        )?,
    ));
    for (what, text) in &haystacks {
        assert!(
            !text.is_empty() || what != "operator log",
            "empty operator log"
        );
        assert!(
            !text.contains("PRIVATE KEY"),
            "{what} contains a PEM private key header"
        );
        for n in &needles {
            assert!(
                !text.contains(n),
                "{what} contains bytes of the issued private key"
            );
        }
    }
    e2e::reliability(
        "key leaks",
        &format!(
            "no PEM private-key header and none of {} 40-character runs of the issued key in {}",
            needles.len(),
            haystacks
                .iter()
                .map(|(what, text)| format!("{what} ({} KiB)", text.len() / 1024))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    Ok(())
}
