//! Killing the operator (SIGKILL) at random moments during issuance never produces a second
//! order for a revision, and every Secret's key matches its certificate: for local-CA
//! certificates and for certificates that go through the manual order flow (a person
//! imports the signed certificate while the operator keeps being killed).

use std::time::Duration;

use anyhow::Result;
use e2e::{
    k8s::{apply, siths_ca_bundle, wait_condition},
    operator::OperatorProcess,
};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use siths_operator::{
    api::{CertificateOrder, OrderPhase, ServiceCertificate, SithsIssuer},
    pki::{
        CertInfo, KeySpec, LocalCa, LocalCaOptions, PrivateKey, chain_to_pem, key_matches,
        parse_csr, parse_pem_chain, random_serial,
    },
};

/// A small deterministic pseudo-random sequence (xorshift), seeded from the clock and
/// printed so a failing run can be repeated.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The person on the manual route: signs the CSR of every order waiting for its
/// certificate with `hierarchy` and imports it (as `sithsctl orders import` does).
/// Returns how many were imported.
async fn import_waiting(orders: &Api<CertificateOrder>, hierarchy: &LocalCa) -> Result<usize> {
    let mut imported = 0;
    for o in orders.list(&ListParams::default()).await?.items {
        let waiting =
            o.status.as_ref().and_then(|s| s.phase) == Some(OrderPhase::AwaitingCertificate);
        if !waiting || o.spec.certificate.is_some() {
            continue;
        }
        let csr = parse_csr(&o.spec.csr)?;
        let chain = hierarchy.sign_csr(
            &csr,
            Timestamp::now(),
            Duration::from_secs(365 * 86_400),
            &random_serial()?,
        )?;
        let patch = serde_json::json!({ "spec": { "certificate": chain_to_pem(&chain) } });
        orders
            .patch(
                o.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        imported += 1;
    }
    Ok(imported)
}

/// A `Test` SithsIssuer `name` on the manual route whose certificates must chain to
/// `hierarchy` (a stand-in for the SITHS CA a person orders from).
async fn manual_issuer(
    client: &kube::Client,
    ns: &str,
    name: &str,
    hierarchy: &LocalCa,
) -> Result<()> {
    apply(
        &Api::<ConfigMap>::namespaced(client.clone(), ns),
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: manual-anchors }}\ndata:\n  ca.crt: |\n{}",
            hierarchy
                .root_pem()
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        ),
    )
    .await?;
    apply(
        &Api::<SithsIssuer>::all(client.clone()),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsIssuer
metadata: {{ name: {name} }}
spec:
  organization: {{ name: Region Exempel, organizationNumber: "{}", locality: Stockholm }}
  connection: {{ type: Direct }}
  environment: Test
  backend: {{ manual: {{}} }}
  trustAnchors: {{ configMap: {{ name: manual-anchors, namespace: {ns} }} }}
"#,
            e2e::fixtures::REGION
        ),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn sigkill_during_issuance_never_orders_twice() -> Result<()> {
    let cp = e2e::shared();
    let client = cp.client().await?;
    let ns = e2e::test_namespace(&client, "crash").await?;
    let ca = siths_ca_bundle(cp)?;
    let args = ["--siths-ca-file", &ca.to_string_lossy()].map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let operator_kubeconfig = e2e::rbac::operator_kubeconfig(cp)?;
    // Smoke: 40 certificates + 4 manual, 10 kills. Chaos: 200 + 20 manual, 30 kills.
    let (certificates, kills) = (e2e::size(40, 200), e2e::size(10, 30));
    let manual = e2e::size(4, 20);
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(88172645463325252)
        });
    eprintln!("crash test seed: CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    e2e::fixtures::local_ca_scenario(&client, &ns).await?;
    let hierarchy = LocalCa::generate(&LocalCaOptions {
        common_name: "Crash test Root CA".into(),
        organization: "Test hierarchy".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: Some("Crash test Function CA".into()),
        not_before: Timestamp::now() - jiff::SignedDuration::from_hours(1),
        validity: Duration::from_secs(3 * 365 * 86_400),
    })?;
    let manual_issuer_name = format!("{ns}-manual");
    manual_issuer(&client, &ns, &manual_issuer_name, &hierarchy).await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    let orders: Api<CertificateOrder> = Api::namespaced(client.clone(), &ns);
    let mut imported = 0;
    // New certificates arrive before every restart, so each kill lands mid-issuance; the
    // rounds share them out evenly (200 over 30 kills: 6 or 7 a round, all 200 created).
    let mut interrupted = 0;
    for round in 0..kills {
        for i in round * certificates / kills..(round + 1) * certificates / kills {
            e2e::fixtures::server_certificate(
                &client,
                &ns,
                &format!("svc-{i}"),
                &format!("svc-{i}.{ns}.region.se"),
                &format!("SE2321000016-C{i}"),
                &ns,
                &format!("svc-{i}-tls"),
            )
            .await?;
        }
        for j in round * manual / kills..(round + 1) * manual / kills {
            e2e::fixtures::server_certificate(
                &client,
                &ns,
                &format!("manual-{j}"),
                &format!("manual-{j}.{ns}.region.se"),
                &format!("SE2321000016-M{j}"),
                &manual_issuer_name,
                &format!("manual-{j}-tls"),
            )
            .await?;
        }
        let mut op = OperatorProcess::start(cp, &operator_kubeconfig, &args)?;
        let after = Duration::from_millis(150 + rng.next() % 700);
        let started = std::time::Instant::now();
        // The person imports whatever waits, while the operator runs and is then killed.
        imported += import_waiting(&orders, &hierarchy).await?;
        tokio::time::sleep(after.saturating_sub(started.elapsed())).await;
        op.kill();
        let ready = certs
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|c| e2e::k8s::condition(*c, "Ready").is_some_and(|(s, _, _)| s == "True"))
            .count();
        let created = (round + 1) * certificates / kills + (round + 1) * manual / kills;
        if ready < created {
            interrupted += 1;
        }
        eprintln!(
            "round {round}: SIGKILL after {after:?}; {ready} of {created} certificates Ready"
        );
    }
    assert!(
        interrupted > 0,
        "no kill landed during issuance; the test proved nothing"
    );
    e2e::reliability(
        "crash",
        &format!(
            "{kills} SIGKILLs at random moments while {certificates} certificates were issued by the local CA and {manual} went through the manual order flow ({imported} imported between kills); {interrupted} kills landed mid-issuance"
        ),
    );

    let _op = OperatorProcess::start(cp, &operator_kubeconfig, &args)?;
    // The person goes on importing until every manual certificate is Ready.
    let deadline = std::time::Instant::now() + Duration::from_secs(e2e::size(120, 600));
    loop {
        imported += import_waiting(&orders, &hierarchy).await?;
        let ready = certs
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|c| {
                c.spec.issuer_ref.name == manual_issuer_name
                    && e2e::k8s::condition(*c, "Ready").is_some_and(|(s, _, _)| s == "True")
            })
            .count();
        if ready == manual {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{ready} of {manual} manual certificates Ready after {imported} imports"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // One import per manual order: an order the person already answered is never asked
    // again, however often the operator died in between.
    assert_eq!(imported, manual, "manual imports");
    for i in 0..certificates {
        wait_condition(
            &certs,
            &format!("svc-{i}"),
            "Ready",
            "True",
            None,
            Duration::from_secs(e2e::size(120, 600)),
        )
        .await?;
    }

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let all_orders = orders.list(&ListParams::default()).await?.items;
    let names = (0..certificates)
        .map(|i| format!("svc-{i}"))
        .chain((0..manual).map(|j| format!("manual-{j}")));
    for name in names {
        let cert = certs.get(&name).await?;
        let revision = cert.status.and_then(|s| s.revision).unwrap_or(0);
        let mut mine: Vec<(u32, String)> = all_orders
            .iter()
            .filter(|o| o.spec.certificate_name == name)
            .map(|o| (o.spec.revision, o.metadata.name.clone().unwrap_or_default()))
            .collect();
        mine.sort();
        let expected: Vec<(u32, String)> =
            (1..=revision).map(|r| (r, format!("{name}-{r}"))).collect();
        assert_eq!(mine, expected, "orders of {name} at revision {revision}");
        let secret = secrets.get(&format!("{name}-tls")).await?;
        let data = secret.data.unwrap_or_default();
        let crt = String::from_utf8(data["tls.crt"].0.clone())?;
        let key = PrivateKey::from_pem(&String::from_utf8(data["tls.key"].0.clone())?)?;
        let leaf = CertInfo::parse(&parse_pem_chain(&crt)?[0])?;
        assert!(
            key_matches(&leaf, &key),
            "{name}: key does not match certificate"
        );
    }
    let staged = secrets
        .list_metadata(&ListParams::default().labels("siths-operator.io/role=staged-key"))
        .await?;
    e2e::reliability(
        "crash",
        &format!(
            "afterwards: {} orders for {} certificates (one per revision; {imported} manual imports for {manual} manual orders), every key matches, {} staged keys left",
            all_orders.len(),
            certificates + manual,
            staged.items.len()
        ),
    );
    assert!(
        staged.items.is_empty(),
        "orphaned staged keys: {:?}",
        staged
            .items
            .iter()
            .map(|s| s.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    Ok(())
}
