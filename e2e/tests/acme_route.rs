//! The operator's ACME route end to end: a `UserFacing` ServiceCertificate on an `acme`
//! PublicIssuer becomes `Ready` through External Account Binding and HTTP-01 answered by
//! the operator, against the real Pebble and the real apiserver; a restart reuses the
//! account; a wrong EAB key backs off with a bounded number of ACME requests.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use e2e::{
    controlplane::free_port,
    fixtures::region_validation,
    k8s::{apply, siths_ca_bundle, wait_condition},
    operator::OperatorProcess,
    pebble::Pebble,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use siths_operator::{
    api::{PublicIssuer, ServiceCertificate},
    pki::{self, Expected, PrivateKey, TrustAnchors, Usage},
};

const WAIT: Duration = Duration::from_secs(120);

/// The tests of this binary run one at a time: each starts its own operator, and two
/// operators would both reconcile every PublicIssuer of the cluster (and race to
/// register its account).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One Pebble, one operator answering its HTTP-01 challenges, one namespace with an ACME
/// PublicIssuer named after it (EAB with `hmac`, the domain-validation gate on).
struct Env {
    client: Client,
    pebble: Pebble,
    ns: String,
    operator: OperatorProcess,
    args: Vec<String>,
    kubeconfig: std::path::PathBuf,
}

impl Env {
    async fn start(prefix: &str, hmac: &str) -> Result<Self> {
        let cp = e2e::shared();
        // Issuers of earlier tests point at Pebbles that are gone: remove them, so this
        // operator does not keep retrying them.
        let client = cp.client().await?;
        let issuers: Api<PublicIssuer> = Api::all(client.clone());
        for i in issuers.list(&Default::default()).await?.items {
            if let Some(name) = i.metadata.name {
                let _ = issuers.delete(&name, &Default::default()).await;
            }
        }
        let port = free_port()?;
        let pebble = Pebble::start(port).await?;
        let ns = e2e::test_namespace(&client, prefix).await?;
        e2e::fixtures::pebble_objects(&client, &ns, &pebble, Some(hmac)).await?;
        region_validation(&client, &ns, &format!("{ns}.region.se")).await?;
        apply(
            &Api::<PublicIssuer>::all(client.clone()),
            &e2e::fixtures::pebble_issuer_yaml(&ns, &ns, &pebble),
        )
        .await?;
        // Its own identity and lease, so the operators of this binary do not contend.
        let kubeconfig = cp.dir.join(format!("{ns}.kubeconfig"));
        e2e::rbac::write_operator_kubeconfig(cp, &kubeconfig)?;
        let ca = siths_ca_bundle(cp)?;
        let args = vec![
            "--siths-ca-file".to_string(),
            ca.to_string_lossy().into_owned(),
            "--acme-http01-port".into(),
            port.to_string(),
            "--lease-name".into(),
            ns.clone(),
        ];
        let operator = OperatorProcess::start(cp, &kubeconfig, &strs(&args))?;
        Ok(Self {
            client,
            pebble,
            ns,
            operator,
            args,
            kubeconfig,
        })
    }

    fn certificates(&self) -> Api<ServiceCertificate> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn certificate(&self, name: &str, host: &str) -> Result<String> {
        let dns = format!("{host}.{}.region.se", self.ns);
        apply(
            &self.certificates(),
            &format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: {name} }}
spec:
  purpose: UserFacing
  dnsNames: [{dns}]
  secretName: {name}-tls
  issuerRef: {{ kind: PublicIssuer, name: {ns} }}
"#,
                ns = self.ns
            ),
        )
        .await?;
        Ok(dns)
    }

    /// `siths_acme_requests_total` from the operator's /metrics.
    async fn acme_requests(&self) -> Result<u64> {
        let (_, body) = self.operator.http_get("/metrics").await?;
        body.lines()
            .find_map(|l| l.strip_prefix("siths_acme_requests_total "))
            .and_then(|v| v.trim().parse().ok())
            .context("no siths_acme_requests_total in /metrics")
    }
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn a_user_facing_certificate_is_issued_over_acme_and_a_restart_reuses_the_account()
-> Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut env = Env::start("acme-route", e2e::pebble::EAB_HMAC).await?;
    let certs = env.certificates();
    let started = Instant::now();
    let dns = env.certificate("web", "www").await?;
    let cert = wait_condition(&certs, "web", "Ready", "True", Some("Issued"), WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}\n{}", env.operator.output(), env.pebble.log()))?;
    println!(
        "ACME route | apply -> Ready through EAB + HTTP-01 | {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let st = cert.status.clone().unwrap_or_default();
    ensure!(st.route.as_deref() == Some("Public"), "{st:?}");
    ensure!(st.revision == Some(1), "{st:?}");
    // The pass after the issuing one (its own status write and the Secret's start it at
    // once) finds the status it would write already there: one status write per issuance.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = certs.get("web").await?;
    ensure!(
        again.metadata.resource_version == cert.metadata.resource_version,
        "the status was written again after the issuance: {:?}",
        again.status
    );

    // The Secret: Pebble's chain for our key and names, verified against Pebble's root,
    // which is also ca.crt.
    let secret = Api::<Secret>::namespaced(env.client.clone(), &env.ns)
        .get("web-tls")
        .await?;
    let data = secret.data.clone().unwrap_or_default();
    let text = |k: &str| String::from_utf8(data.get(k).map(|b| b.0.clone()).unwrap_or_default());
    let (crt, key, ca) = (text("tls.crt")?, text("tls.key")?, text("ca.crt")?);
    let root = env.pebble.root_pem().await?;
    ensure!(ca == root, "ca.crt is not Pebble's root");
    let key = PrivateKey::from_pem(&key)?;
    let accepted = pki::check_public(
        &crt,
        &Expected {
            dns_names: vec![dns],
            hsa_id: None,
            public_key_der: key.public_key_der(),
            usage: Usage::UserFacing,
            subject: None,
        },
        Some(&TrustAnchors::from_pem(&root)?),
        &[],
        jiff::Timestamp::now(),
    )?;
    ensure!(
        !accepted.leaf.client_auth,
        "a public certificate has no clientAuth"
    );
    ensure!(key.spec().to_string().contains("P-256"), "{}", key.spec());

    // The issuer shows its account; the solver objects are gone.
    let issuers: Api<PublicIssuer> = Api::all(env.client.clone());
    let issuer = wait_condition(&issuers, &env.ns, "Ready", "True", None, WAIT).await?;
    let account = issuer.status.and_then(|s| s.acme_account_uri);
    ensure!(account.is_some(), "no account URL in the issuer status");
    ensure!(
        env.pebble.accounts_registered() == 1,
        "{}\n{}",
        env.pebble.log(),
        env.operator.output()
    );

    // Restart, then ask for a new revision: ordered with the same account.
    env.operator.terminate(Duration::from_secs(10)).await?;
    env.operator = OperatorProcess::start(e2e::shared(), &env.kubeconfig, &strs(&env.args))?;
    certs
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
                "siths-operator.io/renew-requested-at": jiff::Timestamp::now().to_string()
            }}})),
        )
        .await?;
    e2e::eventually(WAIT, "revision 2", || {
        let certs = certs.clone();
        async move {
            let c = certs.get("web").await?;
            Ok(c.status.and_then(|s| s.revision).filter(|r| *r == 2))
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", env.operator.output()))?;
    ensure!(
        env.pebble.accounts_registered() == 1,
        "a restart registered a second ACME account\n{}\n{}",
        env.pebble.log(),
        env.operator.output()
    );
    let issuer = issuers.get(&env.ns).await?;
    ensure!(issuer.status.and_then(|s| s.acme_account_uri) == account);
    Ok(())
}

#[tokio::test]
async fn a_wrong_eab_key_backs_off_with_a_bounded_number_of_acme_requests() -> Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let env = Env::start(
        "acme-bad-eab",
        "d3JvbmctaG1hYy1rZXktdGhhdC1wZWJibGUtZG9lcy1ub3Qta25vdw",
    )
    .await?;
    let certs = env.certificates();
    env.certificate("web", "www").await?;
    let cert = wait_condition(
        &certs,
        "web",
        "Ready",
        "False",
        Some("AcmeUnauthorized"),
        WAIT,
    )
    .await?;
    let message = e2e::k8s::condition(&cert, "Ready")
        .map(|c| c.2)
        .unwrap_or_default();
    ensure!(message.contains("externalAccountBinding"), "{message}");
    let issuers: Api<PublicIssuer> = Api::all(env.client.clone());
    wait_condition(
        &issuers,
        &env.ns,
        "Ready",
        "False",
        Some("AcmeUnauthorized"),
        WAIT,
    )
    .await?;

    // Five minutes of a persistent failure.
    let window = Duration::from_secs(300);
    let before = env.acme_requests().await?;
    tokio::time::sleep(window).await;
    let requests = env.acme_requests().await? - before;
    let cert = certs.get("web").await?;
    let attempts = cert
        .status
        .as_ref()
        .and_then(|s| s.failed_attempts)
        .unwrap_or(0);
    println!(
        "ACME route | wrong EAB key | {requests} ACME requests in {} s | {attempts} failed issuance attempts so far | reason AcmeUnauthorized",
        window.as_secs()
    );
    // Exponential backoff (10 s doubling) allows about six attempts in five minutes;
    // a retry loop would send thousands of requests.
    ensure!((2..=8).contains(&attempts), "{attempts} attempts");
    ensure!(requests <= 60, "{requests} ACME requests in five minutes");
    ensure!(env.pebble.accounts_registered() == 0);
    e2e::reliability(
        "Wrong EAB key (ACME)",
        &format!("{requests} ACME requests and {attempts} failed attempts in 300 s"),
    );
    Ok(())
}

#[tokio::test]
async fn an_ingress_in_public_mode_gets_a_certificate_over_acme_and_stays_unchanged() -> Result<()>
{
    let _serial = ONE_AT_A_TIME.lock().await;
    use k8s_openapi::api::networking::v1::Ingress;
    let env = Env::start("acme-ingress", e2e::pebble::EAB_HMAC).await?;
    let host = format!("shop.{}.region.se", env.ns);
    let ingresses: Api<Ingress> = Api::namespaced(env.client.clone(), &env.ns);
    apply(
        &ingresses,
        &format!(
            r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations: {{ siths-operator.io/tls: public, siths-operator.io/public-issuer: {ns} }}
spec:
  tls: [{{ hosts: [{host}], secretName: shop-tls }}]
  rules:
    - host: {host}
      http: {{ paths: [{{ path: /, pathType: Prefix, backend: {{ service: {{ name: shop, port: {{ number: 80 }} }} }} }}] }}
"#,
            ns = env.ns
        ),
    )
    .await?;
    let before = serde_json::to_value(ingresses.get("shop").await?)?;
    let certs = env.certificates();
    let cert = wait_condition(
        &certs,
        "shop-shop-tls",
        "Ready",
        "True",
        Some("Issued"),
        WAIT,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", env.operator.output()))?;
    ensure!(cert.spec.dns_names == std::slice::from_ref(&host));
    // The Secret the Ingress names holds Pebble's certificate for the Ingress's host.
    let secret = Api::<Secret>::namespaced(env.client.clone(), &env.ns)
        .get("shop-tls")
        .await?;
    let data = secret.data.unwrap_or_default();
    let crt = String::from_utf8(data.get("tls.crt").map(|b| b.0.clone()).unwrap_or_default())?;
    let key = PrivateKey::from_pem(&String::from_utf8(
        data.get("tls.key").map(|b| b.0.clone()).unwrap_or_default(),
    )?)?;
    pki::check_public(
        &crt,
        &Expected {
            dns_names: vec![host],
            hsa_id: None,
            public_key_der: key.public_key_der(),
            usage: Usage::UserFacing,
            subject: None,
        },
        Some(&TrustAnchors::from_pem(&env.pebble.root_pem().await?)?),
        &[],
        jiff::Timestamp::now(),
    )?;
    // Tampering with the Secret: re-issued over ACME, counted as a failure so that
    // tampering which keeps coming back backs off.
    Api::<Secret>::namespaced(env.client.clone(), &env.ns)
        .patch(
            "shop-tls",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"tls.crt": "Z2FyYmFnZQ=="}})),
        )
        .await?;
    let cert = e2e::eventually(WAIT, "revision 2 after tampering", || {
        let certs = certs.clone();
        async move {
            let c = certs.get("shop-shop-tls").await?;
            let ready = e2e::k8s::condition(&c, "Ready").is_some_and(|(s, _, _)| s == "True");
            Ok((ready && c.status.as_ref().and_then(|s| s.revision) == Some(2)).then_some(c))
        }
    })
    .await;
    let cert = match cert {
        Ok(c) => c,
        Err(e) => {
            let status = certs.get("shop-shop-tls").await.map(|c| c.status);
            anyhow::bail!("{e:#}\nstatus: {status:?}\n{}", env.operator.output())
        }
    };
    let st = cert.status.clone().unwrap_or_default();
    // The tampering counts as one failure, and the repair is the next attempt. (Two runs in
    // five counted 2 and took 20 s longer: the freshly issued certificate was checked as of
    // the start of its pass, before Pebble's notBefore, and refused as NotYetValid.)
    ensure!(
        st.failed_attempts == Some(1),
        "tampering counted {:?} failed attempts, want 1: {st:?}\n{}",
        st.failed_attempts,
        env.operator.output()
    );
    println!(
        "ACME route | tampered Secret repaired as revision 2 | failed attempts counted: {:?}",
        st.failed_attempts
    );
    // The Ingress is byte-for-byte what was applied.
    let after = serde_json::to_value(ingresses.get("shop").await?)?;
    ensure!(before == after, "the Ingress changed:\n{before}\n{after}");
    Ok(())
}
