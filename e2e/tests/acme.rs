//! The ACME backend against real Pebble (EAB required, HTTP-01 validated for real through
//! the operator's challenge responder) and the real apiserver (PublicIssuer, account and
//! EAB Secrets, the solver ConfigMaps, Services and Ingresses).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use e2e::{pebble::Pebble, test_namespace};
use k8s_openapi::api::{
    core::v1::{ConfigMap, Secret, Service},
    networking::v1::Ingress,
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, PostParams},
};
use siths_operator::{
    acme::{
        ACME_CHALLENGE_FAILED, ACME_CONFIG_INVALID, ACME_UNAUTHORIZED, Acme, ROLE_ACME_HTTP01,
        SelfCheck, serve_http01,
    },
    api::PublicIssuer,
    pki::{self, public_trust::verifies_to},
};
use tokio::sync::oneshot;

/// One Pebble, one responder on the port Pebble validates against, one namespace
/// standing in for the operator namespace (solver objects) and holding the Secrets.
struct Env {
    client: Client,
    pebble: Pebble,
    ns: String,
    issuer: PublicIssuer,
    _stop: Option<oneshot::Sender<()>>,
}

impl Env {
    /// `respond`: whether a challenge responder listens on the port Pebble validates.
    async fn start(prefix: &str, hmac: Option<&str>, respond: bool) -> Result<Self> {
        let client = e2e::shared().client().await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let pebble = Pebble::start(port).await?;
        let ns = test_namespace(&client, prefix).await?;
        let stop = if respond {
            let (tx, rx) = oneshot::channel::<()>();
            tokio::spawn(serve_http01(listener, client.clone(), ns.clone(), async {
                let _ = rx.await;
            }));
            Some(tx)
        } else {
            drop(listener);
            None
        };
        e2e::fixtures::pebble_objects(&client, &ns, &pebble, hmac).await?;
        let issuer: PublicIssuer = serde_json::from_value(serde_json::json!({
            "apiVersion": "siths-operator.io/v1alpha1",
            "kind": "PublicIssuer",
            "metadata": { "name": ns },
            "spec": {
                "acme": {
                    "server": pebble.directory_url,
                    "email": "pki@region.example",
                    "externalAccountBinding": {
                        "keyId": pebble.eab_kid,
                        "keySecretRef": { "name": "eab", "namespace": ns },
                    },
                    "privateKeySecretRef": { "name": "acme-account", "namespace": ns },
                    "serverCa": { "name": "pebble-https", "namespace": ns, "key": "ca.crt" },
                },
                "additionalTrustAnchors": { "name": "pebble-roots", "namespace": ns, "key": "ca.crt" },
                "domainValidation": "Disabled",
            },
        }))?;
        // Created in the apiserver (admission and CEL rules apply), used as it comes back.
        let issuer = Api::<PublicIssuer>::all(client.clone())
            .create(&PostParams::default(), &issuer)
            .await
            .context("creating the PublicIssuer")?;
        Ok(Self {
            client,
            pebble,
            ns,
            issuer,
            _stop: stop,
        })
    }

    fn acme(&self) -> Acme {
        Acme::new(self.client.clone(), self.ns.clone(), self.pebble.http_port)
    }

    /// Solver objects (ConfigMaps, Services, Ingresses labelled acme-http01) left.
    async fn solver_objects(&self) -> Result<usize> {
        let lp =
            ListParams::default().labels(&format!("siths-operator.io/role={ROLE_ACME_HTTP01}"));
        let cms = Api::<ConfigMap>::namespaced(self.client.clone(), &self.ns)
            .list(&lp)
            .await?
            .items
            .len();
        let svcs = Api::<Service>::namespaced(self.client.clone(), &self.ns)
            .list(&lp)
            .await?
            .items
            .len();
        let ings = Api::<Ingress>::namespaced(self.client.clone(), &self.ns)
            .list(&lp)
            .await?
            .items
            .len();
        Ok(cms + svcs + ings)
    }

    async fn cleanup(self) {
        let _ = Api::<PublicIssuer>::all(self.client.clone())
            .delete(&self.ns, &DeleteParams::default())
            .await;
    }
}

fn csr(names: &[String]) -> Result<Vec<u8>> {
    let key = rcgen::KeyPair::generate()?;
    let params = rcgen::CertificateParams::new(names.to_vec())?;
    Ok(params.serialize_request(&key)?.der().to_vec())
}

fn names(ns: &str, hosts: &[&str]) -> Vec<String> {
    hosts
        .iter()
        .map(|h| format!("{h}.{ns}.example.com"))
        .collect()
}

#[tokio::test]
async fn issues_for_two_names_with_eab_and_http01() -> Result<()> {
    let env = Env::start("acme-issue", Some(e2e::pebble::EAB_HMAC), true).await?;
    let metrics = siths_operator::metrics::Metrics::new();
    // The self-check fetches the answer as the CA will; the names resolve to the
    // responder only inside Pebble's mock DNS, so it connects there directly.
    let acme = env
        .acme()
        .with_requests_counter(metrics.acme_requests())
        .with_self_check(SelfCheck {
            connect_to: Some(([127, 0, 0, 1], env.pebble.http_port).into()),
            timeout: Duration::from_secs(20),
        });
    let names = names(&env.ns, &["www", "api"]);
    let started = Instant::now();
    let issued = acme
        .issue(&env.issuer, &env.ns, &names, &csr(&names)?, None)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}\n{}", e.reason, e.message, env.pebble.log()))?;
    let took = started.elapsed();
    println!(
        "ACME | issue for 2 names (EAB registration + 2 HTTP-01 validations) | {:.2} s | {} ACME requests",
        took.as_secs_f64(),
        acme.requests()
    );
    let scraped = metrics.encode()?;
    ensure!(
        scraped.contains(&format!("siths_acme_requests_total {}", acme.requests())),
        "{scraped}"
    );

    let chain = pki::parse_pem_chain(&issued.chain_pem)?;
    let root = pki::parse_pem_chain(&env.pebble.root_pem().await?)?;
    let anchor = webpki::anchor_from_trusted_cert(&root[0])?.to_owned();
    let now = jiff::Timestamp::now();
    ensure!(
        verifies_to(&chain, &[anchor], now),
        "chain does not verify to Pebble's root"
    );
    // The same chain is not publicly trusted: Pebble's root is only trusted when given.
    ensure!(!verifies_to(
        &chain,
        pki::public_trust::mozilla_roots(),
        now
    ));
    let leaf = pki::CertInfo::parse(&chain[0])?;
    for n in &names {
        ensure!(
            leaf.dns_names.contains(n),
            "{n} missing from {:?}",
            leaf.dns_names
        );
    }
    ensure!(leaf.server_auth);

    // ARI: Pebble offers renewalInfo; the window lies inside the certificate's validity.
    let (start, end) = issued
        .renewal_window
        .context("no ARI window with the certificate")?;
    ensure!(leaf.not_before <= start && start < end && end <= leaf.not_after);
    let again = acme
        .renewal_window(&env.issuer, &chain[0])
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.reason, e.message))?;
    ensure!(
        again == Some((start, end)),
        "{again:?} != {:?}",
        (start, end)
    );
    println!(
        "ACME | ARI window {start} .. {end} for a certificate valid {} .. {}",
        leaf.not_before, leaf.not_after
    );

    ensure!(
        env.solver_objects().await? == 0,
        "solver objects left behind"
    );
    let account = Api::<Secret>::namespaced(env.client.clone(), &env.ns)
        .get("acme-account")
        .await?;
    let labels = account.metadata.labels.unwrap_or_default();
    ensure!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str)
            == Some("siths-operator")
    );
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_restarted_process_reuses_the_account() -> Result<()> {
    let env = Env::start("acme-restart", Some(e2e::pebble::EAB_HMAC), true).await?;
    let first = env
        .acme()
        .ensure_account(&env.issuer)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.reason, e.message))?;
    ensure!(env.pebble.accounts_registered() == 1);

    // As after a restart: a new instance, nothing in memory, the account from the Secret.
    let restarted = env.acme();
    let second = restarted
        .ensure_account(&env.issuer)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}", e.reason, e.message))?;
    ensure!(first == second, "account changed: {first} -> {second}");
    let names = names(&env.ns, &["portal"]);
    restarted
        .issue(&env.issuer, &env.ns, &names, &csr(&names)?, None)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {}\n{}", e.reason, e.message, env.pebble.log()))?;
    ensure!(
        env.pebble.accounts_registered() == 1,
        "Pebble registered {} accounts",
        env.pebble.accounts_registered()
    );
    // A cached account costs nothing more.
    let before = restarted.requests();
    ensure!(restarted.ensure_account(&env.issuer).await.ok() == Some(first.clone()));
    ensure!(restarted.requests() == before);
    println!("ACME | account reused after restart: {first}");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn wrong_eab_key_is_unauthorized_with_a_clear_message() -> Result<()> {
    // A well-formed key that is not the one Pebble knows.
    let wrong = "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH";
    let env = Env::start("acme-bad-eab", Some(wrong), true).await?;
    let acme = env.acme();
    let names = names(&env.ns, &["www"]);
    let mut per_attempt = Vec::new();
    for _ in 0..2 {
        let before = acme.requests();
        let err = acme
            .issue(&env.issuer, &env.ns, &names, &csr(&names)?, None)
            .await
            .err()
            .context("issued with a wrong EAB key")?;
        per_attempt.push(acme.requests() - before);
        ensure!(
            err.reason == ACME_UNAUTHORIZED,
            "{}: {}",
            err.reason,
            err.message
        );
        ensure!(
            err.message
                .contains("check externalAccountBinding keyId and the HMAC key in Secret")
                && err.message.contains(&format!("{}/eab", env.ns)),
            "unclear message: {}",
            err.message
        );
        println!("ACME | wrong EAB key | {}: {}", err.reason, err.message);
    }
    println!("ACME | ACME requests per failed attempt (wrong EAB key) | {per_attempt:?}");
    ensure!(
        per_attempt.iter().all(|n| (1..=4).contains(n)),
        "{per_attempt:?}"
    );
    ensure!(env.pebble.accounts_registered() == 0);
    // No account Secret was written for a refused registration.
    ensure!(
        Api::<Secret>::namespaced(env.client.clone(), &env.ns)
            .get_opt("acme-account")
            .await?
            .is_none()
    );
    env.cleanup().await;

    // No EAB Secret at all: a configuration error, without asking the CA.
    let env = Env::start("acme-no-eab", None, true).await?;
    let acme = env.acme();
    let err = acme
        .ensure_account(&env.issuer)
        .await
        .err()
        .context("no error")?;
    ensure!(
        err.reason == ACME_CONFIG_INVALID,
        "{}: {}",
        err.reason,
        err.message
    );
    ensure!(
        err.message.contains(&format!("{}/eab", env.ns)),
        "{}",
        err.message
    );
    ensure!(acme.requests() == 0);
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn an_unanswered_challenge_fails_and_leaves_nothing_behind() -> Result<()> {
    // Nobody listens where Pebble validates: validation is real, so the order fails.
    let env = Env::start("acme-no-answer", Some(e2e::pebble::EAB_HMAC), false).await?;
    let acme = env.acme();
    let names = names(&env.ns, &["www"]);
    let started = Instant::now();
    let err = acme
        .issue(&env.issuer, &env.ns, &names, &csr(&names)?, None)
        .await
        .err()
        .context("issued without answering the challenge")?;
    ensure!(
        err.reason == ACME_CHALLENGE_FAILED,
        "{}: {}",
        err.reason,
        err.message
    );
    ensure!(err.message.contains(&names[0]), "{}", err.message);
    ensure!(started.elapsed() < Duration::from_secs(60));
    println!(
        "ACME | unanswered challenge | {}: {}",
        err.reason, err.message
    );
    ensure!(
        env.solver_objects().await? == 0,
        "solver objects left behind"
    );
    ensure!(
        env.pebble
            .log()
            .contains("set INVALID by completed challenge")
    );

    // With the self-check on, the same situation never reaches the CA's validation.
    let acme = env.acme().with_self_check(SelfCheck {
        connect_to: Some(([127, 0, 0, 1], env.pebble.http_port).into()),
        timeout: Duration::from_secs(3),
    });
    let validations = env.pebble.log().matches("Pulled a task").count();
    let err = acme
        .issue(&env.issuer, &env.ns, &names, &csr(&names)?, None)
        .await
        .err()
        .context("issued without answering the challenge")?;
    ensure!(
        err.reason == ACME_CHALLENGE_FAILED,
        "{}: {}",
        err.reason,
        err.message
    );
    ensure!(
        err.message.contains("the CA was not asked to validate"),
        "{}",
        err.message
    );
    ensure!(
        env.pebble.log().matches("Pulled a task").count() == validations,
        "Pebble validated although the self-check failed"
    );
    println!(
        "ACME | self-check failure | {}: {}",
        err.reason, err.message
    );
    ensure!(
        env.solver_objects().await? == 0,
        "solver objects left behind"
    );
    env.cleanup().await;
    Ok(())
}

/// GET `path` from 127.0.0.1:`port` with a plain HTTP/1.1 request; (status, body).
async fn http_get(port: u16, host: &str, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status line")?;
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    Ok((status, body))
}

#[tokio::test]
async fn every_replica_answers_a_pending_challenge_from_the_api() -> Result<()> {
    let client = e2e::shared().client().await?;
    let ns = test_namespace(&client, "acme-responders").await?;
    // Two responders, as two operator replicas would run.
    let mut ports = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        ports.push(listener.local_addr()?.port());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(serve_http01(listener, client.clone(), ns.clone(), async {
            let _ = rx.await;
        }));
        stops.push(tx);
    }
    let token = "Xk2v9QeJ0s7cLr1mWbT4yN8hGf5uDaZq3pRiOnEwKtA";
    let path = format!("{}{token}", siths_operator::acme::CHALLENGE_PATH);
    for &port in &ports {
        ensure!(http_get(port, "www.region.example", &path).await?.0 == 404);
    }
    // What Acme::issue writes for a pending challenge (same name, same data keys).
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": siths_operator::acme::solver_name(token),
            "labels": { "siths-operator.io/role": ROLE_ACME_HTTP01 },
        },
        "data": { "token": token, "keyAuthorization": format!("{token}.thumbprint") },
    }))?;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    cms.create(&PostParams::default(), &cm).await?;
    for &port in &ports {
        let (status, body) = http_get(port, "www.region.example", &path).await?;
        ensure!(status == 200, "{status} {body}");
        ensure!(body == format!("{token}.thumbprint"), "{body}");
    }
    // Another token, a malformed one, and a different path are not answered.
    let other = format!("{}{}", siths_operator::acme::CHALLENGE_PATH, "A".repeat(43));
    ensure!(http_get(ports[0], "x", &other).await?.0 == 404);
    ensure!(
        http_get(ports[0], "x", "/.well-known/acme-challenge/..%2f..%2fetc")
            .await?
            .0
            == 404
    );
    ensure!(http_get(ports[0], "x", "/metrics").await?.0 == 404);
    cms.delete(
        &siths_operator::acme::solver_name(token),
        &DeleteParams::default(),
    )
    .await?;
    for &port in &ports {
        ensure!(http_get(port, "www.region.example", &path).await?.0 == 404);
    }
    drop(stops);
    Ok(())
}

#[tokio::test]
async fn stale_solver_objects_are_removed_and_fresh_ones_kept() -> Result<()> {
    let client = e2e::shared().client().await?;
    let ns = test_namespace(&client, "acme-stale").await?;
    let labels = serde_json::json!({
        "app.kubernetes.io/managed-by": "siths-operator",
        "siths-operator.io/role": ROLE_ACME_HTTP01,
    });
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "acme-http01-left", "labels": labels },
        "data": { "token": "t", "keyAuthorization": "k" },
    }))?;
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "acme-http01-left", "labels": labels },
        "spec": { "ports": [{ "port": 80, "targetPort": 8089 }] },
    }))?;
    // Not a solver object: never touched.
    let other: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "unrelated" }, "data": { "a": "b" },
    }))?;
    let pp = PostParams::default();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    cms.create(&pp, &cm).await?;
    cms.create(&pp, &other).await?;
    Api::<Service>::namespaced(client.clone(), &ns)
        .create(&pp, &svc)
        .await?;
    let acme = Acme::new(client.clone(), ns.clone(), 8089);
    let removed = acme
        .remove_stale_solvers(Duration::from_secs(600))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    ensure!(removed == 0, "removed {removed} fresh objects");
    ensure!(cms.get_opt("acme-http01-left").await?.is_some());
    let removed = acme
        .remove_stale_solvers(Duration::ZERO)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    ensure!(removed == 2, "removed {removed}");
    ensure!(cms.get_opt("acme-http01-left").await?.is_none());
    ensure!(
        Api::<Service>::namespaced(client.clone(), &ns)
            .get_opt("acme-http01-left")
            .await?
            .is_none()
    );
    ensure!(cms.get_opt("unrelated").await?.is_some());
    Ok(())
}
