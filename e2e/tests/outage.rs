//! Control-plane outages in the middle of issuance: kube-apiserver, then etcd, stopped for
//! a while and started again. The operator recovers by itself, orders once per revision,
//! and every Secret's key matches its certificate.

use std::time::{Duration, Instant};

use anyhow::Result;
use e2e::{
    k8s::{condition, siths_ca_bundle},
    operator::OperatorProcess,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt, api::ListParams};
use siths_operator::{
    api::{CertificateOrder, ServiceCertificate},
    pki::{CertInfo, PrivateKey, key_matches, parse_pem_chain},
};

const CERTIFICATES: usize = 10;

async fn create_certificates(client: &Client, ns: &str) -> Result<()> {
    for i in 0..CERTIFICATES {
        e2e::fixtures::server_certificate(
            client,
            ns,
            &format!("svc-{i}"),
            &format!("svc-{i}.{ns}.region.se"),
            &format!("SE2321000016-O{i}"),
            ns,
            &format!("svc-{i}-tls"),
        )
        .await?;
    }
    Ok(())
}

/// Waits until every certificate in `ns` is Ready; the client retries while the API is
/// still coming back.
async fn all_ready(client: &Client, ns: &str, timeout: Duration) -> Result<Duration> {
    let started = Instant::now();
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), ns);
    e2e::eventually(timeout, "every certificate Ready", || {
        let certs = certs.clone();
        async move {
            let list = certs.list(&ListParams::default()).await?;
            let ready = list
                .items
                .iter()
                .filter(|c| condition(*c, "Ready").is_some_and(|(s, _, _)| s == "True"))
                .count();
            Ok((ready == CERTIFICATES).then_some(()))
        }
    })
    .await?;
    Ok(started.elapsed())
}

async fn guarantees(client: &Client, ns: &str) -> Result<()> {
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), ns);
    let orders: Api<CertificateOrder> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let all = orders.list(&ListParams::default()).await?.items;
    for i in 0..CERTIFICATES {
        let name = format!("svc-{i}");
        let revision = certs
            .get(&name)
            .await?
            .status
            .and_then(|s| s.revision)
            .unwrap_or(0);
        let mut mine: Vec<u32> = all
            .iter()
            .filter(|o| o.spec.certificate_name == name)
            .map(|o| o.spec.revision)
            .collect();
        mine.sort();
        assert_eq!(mine, (1..=revision).collect::<Vec<_>>(), "orders of {name}");
        let data = secrets
            .get(&format!("{name}-tls"))
            .await?
            .data
            .unwrap_or_default();
        let leaf =
            CertInfo::parse(&parse_pem_chain(&String::from_utf8(data["tls.crt"].0.clone())?)?[0])?;
        let key = PrivateKey::from_pem(&String::from_utf8(data["tls.key"].0.clone())?)?;
        assert!(key_matches(&leaf, &key), "{name}: key does not match");
    }
    Ok(())
}

async fn outage_during_issuance(component: &str) -> Result<()> {
    let cp = e2e::shared();
    let client = cp.client().await?;
    let ns = e2e::test_namespace(&client, &format!("outage-{component}")).await?;
    e2e::fixtures::local_ca_scenario(&client, &ns).await?;
    let ca = siths_ca_bundle(cp)?;
    let kubeconfig = cp.dir.join(format!("operator-{component}.kubeconfig"));
    e2e::rbac::write_operator_kubeconfig(cp, &kubeconfig)?;
    let mut op =
        OperatorProcess::start(cp, &kubeconfig, &["--siths-ca-file", &ca.to_string_lossy()])?;
    op.wait_for_log("watching", Duration::from_secs(30)).await?;
    create_certificates(&client, &ns).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Smoke: 20 s. Chaos: 30 s.
    let outage = Duration::from_secs(e2e::size(20, 30));
    cp.stop_component(component)?;
    eprintln!("{component} stopped during issuance for {outage:?}");
    tokio::time::sleep(outage).await;
    cp.start_component(component)?;
    let recovered = match all_ready(&client, &ns, Duration::from_secs(90)).await {
        Ok(d) => d,
        Err(e) => {
            let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
            let waiting: Vec<String> = certs
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
                .iter()
                .filter_map(|c| {
                    let ready = condition(c, "Ready");
                    ready
                        .as_ref()
                        .is_none_or(|(s, _, _)| s != "True")
                        .then(|| format!("{}: {ready:?}", c.name_any()))
                })
                .collect();
            let output = op.output();
            let warnings: Vec<&str> = output
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .collect();
            anyhow::bail!(
                "{e:#}\nnot Ready: {waiting:#?}\nlast operator warnings:\n{}",
                warnings[warnings.len().saturating_sub(40)..].join("\n")
            );
        }
    };
    eprintln!("{component} back: every certificate Ready {recovered:.1?} after the restart");
    // Every watch retries with backoff: a watch retried in a tight loop writes tens of
    // thousands of warnings a second.
    let warnings = op
        .output()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    eprintln!("{component} outage: {warnings} operator warnings");
    assert!(
        warnings as u64 <= 10 * outage.as_secs() + 100,
        "{warnings} operator warnings for a {outage:?} outage: some retry runs without backoff"
    );
    guarantees(&client, &ns).await?;
    e2e::reliability(
        "outage",
        &format!(
            "{component} down {outage:?} mid-issuance: every certificate Ready {recovered:.1?} after it returned; one order per revision; keys match"
        ),
    );
    assert!(
        recovered <= Duration::from_secs(45),
        "recovery took {recovered:?} after {component} returned"
    );
    op.terminate(Duration::from_secs(20)).await?;
    Ok(())
}

// One test: the two outages must not overlap on the shared control plane.
#[tokio::test]
async fn operator_recovers_from_apiserver_and_etcd_outages_during_issuance() -> Result<()> {
    outage_during_issuance("kube-apiserver").await?;
    outage_during_issuance("etcd").await?;
    Ok(())
}
