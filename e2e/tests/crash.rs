//! Killing the operator (SIGKILL) at random moments during issuance never produces a second
//! order for a revision, and every Secret's key matches its certificate.

use std::time::Duration;

use anyhow::Result;
use e2e::{
    k8s::{siths_ca_bundle, wait_condition},
    operator::OperatorProcess,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, api::ListParams};
use siths_operator::{
    api::{CertificateOrder, ServiceCertificate},
    pki::{CertInfo, PrivateKey, key_matches, parse_pem_chain},
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

#[tokio::test]
async fn sigkill_during_issuance_never_orders_twice() -> Result<()> {
    let cp = e2e::shared();
    let client = cp.client().await?;
    let ns = e2e::test_namespace(&client, "crash").await?;
    let ca = siths_ca_bundle(cp)?;
    let args = ["--siths-ca-file", &ca.to_string_lossy()].map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Smoke: 40 certificates, 10 kills. Chaos: 200 certificates, 30 kills.
    let (certificates, kills) = (e2e::size(40, 200), e2e::size(10, 30));
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
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    // New certificates arrive before every restart, so each kill lands mid-issuance.
    let per_round = certificates / kills;
    let mut interrupted = 0;
    for round in 0..kills {
        for i in round * per_round..(round + 1) * per_round {
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
        let mut op = OperatorProcess::start(cp, &cp.kubeconfig, &args)?;
        let after = Duration::from_millis(150 + rng.next() % 700);
        tokio::time::sleep(after).await;
        op.kill();
        let ready = certs
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|c| e2e::k8s::condition(*c, "Ready").is_some_and(|(s, _, _)| s == "True"))
            .count();
        let created = (round + 1) * per_round;
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
            "{kills} SIGKILLs at random moments while {certificates} certificates were issued; {interrupted} landed mid-issuance"
        ),
    );

    let _op = OperatorProcess::start(cp, &cp.kubeconfig, &args)?;
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

    let orders: Api<CertificateOrder> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let all_orders = orders.list(&ListParams::default()).await?.items;
    for i in 0..certificates {
        let name = format!("svc-{i}");
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
            "afterwards: {} orders for {certificates} certificates (one per revision), every key matches, {} staged keys left",
            all_orders.len(),
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
