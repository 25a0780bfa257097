//! Two replicas with leader election: one writes, the other stands by and serves health
//! and metrics; when the leader dies (SIGKILL) or freezes (SIGSTOP), the standby takes
//! over within the lease duration, no order is placed twice, and the apiserver's audit
//! log shows no write from the old leader after it lost the lease.
//!
//! Each replica runs as its own client-certificate user bound to the chart's operator
//! roles, so every write is attributable, and the chart's RBAC is shown to be enough.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use e2e::{
    controlplane::{ControlPlane, OPERATOR_NAMESPACE},
    helm::{RELEASE, install_chart},
    k8s::{apply, condition},
    operator::OperatorProcess,
};
use k8s_openapi::api::{
    coordination::v1::Lease,
    rbac::v1::{ClusterRoleBinding, RoleBinding},
};
use kube::{Api, Client, api::ListParams};
use serde_json::Value;
use siths_operator::api::{CertificateOrder, ServiceCertificate};

const LEASE_SECONDS: u64 = 6;
/// The tests take turns: the operator has no namespace scope, so two leader groups on one
/// control plane would both reconcile everything.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const GRACE_SECONDS: u64 = 2;

/// A kubeconfig for operator replica `user`, bound to the roles the chart gives the
/// operator's ServiceAccount.
async fn replica_identity(cp: &ControlPlane, admin: &Client, user: &str) -> Result<PathBuf> {
    install_chart(cp)?;
    apply(
        &Api::<ClusterRoleBinding>::all(admin.clone()),
        &format!(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{ name: e2e-{user} }}
roleRef: {{ apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {RELEASE} }}
subjects: [{{ kind: User, apiGroup: rbac.authorization.k8s.io, name: {user} }}]
"#
        ),
    )
    .await?;
    apply(
        &Api::<RoleBinding>::namespaced(admin.clone(), OPERATOR_NAMESPACE),
        &format!(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{ name: e2e-{user}, namespace: {OPERATOR_NAMESPACE} }}
roleRef: {{ apiGroup: rbac.authorization.k8s.io, kind: Role, name: {RELEASE}-leader-election }}
subjects: [{{ kind: User, apiGroup: rbac.authorization.k8s.io, name: {user} }}]
"#
        ),
    )
    .await?;
    let path = cp.dir.join(format!("kubeconfig-{user}"));
    cp.write_kubeconfig(&path, user, &[])?;
    Ok(path)
}

fn start_replica(
    cp: &ControlPlane,
    kubeconfig: &std::path::Path,
    identity: &str,
    lease: &str,
) -> Result<OperatorProcess> {
    OperatorProcess::start(
        cp,
        kubeconfig,
        &[
            "--leader-identity",
            identity,
            "--lease-name",
            lease,
            "--lease-duration-seconds",
            &LEASE_SECONDS.to_string(),
            "--lease-grace-seconds",
            &GRACE_SECONDS.to_string(),
        ],
    )
}

async fn holder(admin: &Client, lease: &str) -> Result<Option<String>> {
    Ok(Api::<Lease>::namespaced(admin.clone(), OPERATOR_NAMESPACE)
        .get_opt(lease)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity))
}

async fn wait_holder(
    admin: &Client,
    lease: &str,
    who: &str,
    timeout: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    e2e::eventually(timeout, &format!("{who} to hold lease {lease}"), || async {
        Ok((holder(admin, lease).await?.as_deref() == Some(who)).then_some(()))
    })
    .await?;
    Ok(started.elapsed())
}

/// An issuer with a local test CA, a domain validation and a namespace for certificates.
async fn scenario(admin: &Client, prefix: &str) -> Result<(String, Api<ServiceCertificate>)> {
    let ns = e2e::test_namespace(admin, prefix).await?;
    e2e::fixtures::local_ca_scenario(admin, &ns).await?;
    Ok((ns.clone(), Api::namespaced(admin.clone(), &ns)))
}

async fn add_certificates(
    certs: &Api<ServiceCertificate>,
    ns: &str,
    range: std::ops::Range<usize>,
) -> Result<()> {
    for i in range {
        e2e::fixtures::server_certificate(
            &certs.clone().into_client(),
            ns,
            &format!("svc-{i}"),
            &format!("svc-{i}.{ns}.region.se"),
            &format!("SE2321000016-L{i}"),
            ns,
            &format!("svc-{i}-tls"),
        )
        .await?;
    }
    Ok(())
}

fn is_ready(c: &ServiceCertificate) -> bool {
    condition(c, "Ready").is_some_and(|(s, _, _)| s == "True")
}

async fn wait_all_ready(
    certs: &Api<ServiceCertificate>,
    n: usize,
) -> Result<Vec<ServiceCertificate>> {
    e2e::eventually(
        Duration::from_secs(90),
        &format!("{n} certificates Ready"),
        || async {
            let list = certs.list(&ListParams::default()).await?.items;
            Ok((list.len() == n && list.iter().all(is_ready)).then_some(list))
        },
    )
    .await
}

/// Each certificate has exactly one order, for revision 1.
async fn one_order_each(admin: &Client, ns: &str, certs: &[ServiceCertificate]) -> Result<()> {
    let orders = Api::<CertificateOrder>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await?
        .items;
    for c in certs {
        let name = c.metadata.name.clone().unwrap_or_default();
        let mine: Vec<(String, u32)> = orders
            .iter()
            .filter(|o| o.spec.certificate_name == name)
            .map(|o| (o.metadata.name.clone().unwrap_or_default(), o.spec.revision))
            .collect();
        ensure!(
            mine == vec![(format!("{name}-1"), 1)],
            "orders of {name}: {mine:?}"
        );
        ensure!(
            c.status.as_ref().and_then(|s| s.revision) == Some(1),
            "{name} is at revision {:?}",
            c.status.as_ref().and_then(|s| s.revision)
        );
    }
    Ok(())
}

/// One write the apiserver audited.
#[derive(Debug)]
struct Write {
    user: String,
    verb: String,
    resource: String,
    namespace: String,
    name: String,
    code: i64,
    received: jiff::Timestamp,
}

/// Every audited write (the audit policy logs no reads). The log is written in batches
/// of at most a second.
async fn writes(cp: &ControlPlane) -> Result<Vec<Write>> {
    let text = cp.audit_text().await?;
    let mut out = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)?;
        if v["stage"] != "ResponseComplete" {
            continue;
        }
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut resource = s("/objectRef/resource");
        let sub = s("/objectRef/subresource");
        if !sub.is_empty() {
            resource = format!("{resource}/{sub}");
        }
        out.push(Write {
            user: s("/user/username"),
            verb: s("/verb"),
            resource,
            namespace: s("/objectRef/namespace"),
            name: s("/objectRef/name"),
            code: v
                .pointer("/responseStatus/code")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            received: s("/requestReceivedTimestamp").parse()?,
        });
    }
    Ok(out)
}

/// Every order in `ns` was created exactly once (by either replica).
/// The orders a create was attempted for in `ns`, checking that none was created (201)
/// twice. A create in flight when its leader is killed can be stored and still be
/// audited with an error code (the apiserver answers a cancelled request with one), so
/// attempts of any outcome name the orders; `one_order_each` checks the objects.
fn created_once(writes: &[Write], ns: &str) -> Result<usize> {
    let mut attempted: BTreeMap<&str, usize> = BTreeMap::new();
    for w in writes {
        if w.verb == "create" && w.resource == "certificateorders" && w.namespace == ns {
            let created = attempted.entry(w.name.as_str()).or_default();
            if w.code == 201 {
                *created += 1;
            }
        }
    }
    ensure!(
        attempted.values().all(|n| *n <= 1),
        "orders created more than once: {attempted:?}"
    );
    Ok(attempted.len())
}

/// The expiry gauge of every Ready certificate, with the value of its status.notAfter.
fn check_expiry_gauges(metrics: &str, ns: &str, certs: &[ServiceCertificate]) -> Result<()> {
    for c in certs.iter().filter(|c| is_ready(c)) {
        let name = c.metadata.name.clone().unwrap_or_default();
        let not_after: jiff::Timestamp = c
            .status
            .as_ref()
            .and_then(|s| s.not_after.clone())
            .context("Ready without notAfter")?
            .parse()?;
        let series = format!(
            "siths_certificate_expiration_timestamp_seconds{{namespace=\"{ns}\",name=\"{name}\",purpose=\"ServerToServer\",route=\"SITHS\",issuer=\"{ns}\"}} {}",
            not_after.as_second()
        );
        ensure!(metrics.contains(&series), "no {series} in\n{metrics}");
    }
    Ok(())
}

/// Metric names the chart's alerts use, all exported by the operator.
fn check_alert_metrics(metrics: &str) -> Result<()> {
    let chart = e2e::helm::chart_dir();
    let rendered = e2e::helm::helm(
        None,
        &[
            "template",
            RELEASE,
            chart.to_str().context("chart")?,
            "--kube-version",
            "1.35.4",
            "--set",
            "prometheusRule.enabled=true",
            "--show-only",
            "templates/prometheusrule.yaml",
        ],
    )?;
    let mut names: Vec<&str> = rendered
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("siths_"))
        .collect();
    names.sort();
    names.dedup();
    ensure!(names.len() >= 4, "alert expressions use {names:?}");
    for n in names {
        ensure!(
            metrics.contains(&format!("# TYPE {n} ")),
            "alert metric {n} is not exported"
        );
    }
    Ok(())
}

async fn scrape(op: &OperatorProcess) -> Result<String> {
    let (code, body) = op.http_get("/metrics").await?;
    ensure!(code == 200, "/metrics answered {code}");
    Ok(body)
}

/// Scrapes until the expiry gauges match (the operator's cache trails the API server by a
/// moment); returns the last scrape.
async fn scrape_expiry_gauges(
    op: &OperatorProcess,
    ns: &str,
    certs: &[ServiceCertificate],
) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = scrape(op).await?;
        match check_expiry_gauges(&metrics, ns, certs) {
            Ok(()) => return Ok(metrics),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test]
async fn standby_takes_over_when_the_leader_is_killed() -> Result<()> {
    const TOTAL: usize = 30;
    let _turn = ONE_AT_A_TIME.lock().await;
    let cp = e2e::shared();
    let admin = cp.client().await?;
    let lease = format!("failover-{}", std::process::id());
    let kc_a = replica_identity(cp, &admin, "operator-a").await?;
    let kc_b = replica_identity(cp, &admin, "operator-b").await?;
    let (ns, certs) = scenario(&admin, "failover").await?;

    let mut a = start_replica(cp, &kc_a, "operator-a", &lease)?;
    wait_holder(&admin, &lease, "operator-a", Duration::from_secs(30)).await?;
    let b = start_replica(cp, &kc_b, "operator-b", &lease)?;

    // The standby serves health and metrics, and leads nothing.
    e2e::eventually(
        Duration::from_secs(30),
        "the standby to be ready",
        || async { Ok(matches!(b.http_get("/readyz").await, Ok((200, _))).then_some(())) },
    )
    .await?;
    ensure!(b.http_get("/healthz").await?.0 == 200, "standby /healthz");

    add_certificates(&certs, &ns, 0..6).await?;
    let ready = wait_all_ready(&certs, 6).await?;
    let leader_metrics = scrape_expiry_gauges(&a, &ns, &ready).await?;
    ensure!(
        leader_metrics.contains("\nsiths_leader 1\n"),
        "leader metrics"
    );
    let standby_metrics = scrape(&b).await?;
    ensure!(
        standby_metrics.contains("\nsiths_leader 0\n"),
        "standby metrics"
    );
    ensure!(
        !standby_metrics.contains("siths_certificate_expiration_timestamp_seconds{"),
        "the standby reports certificates it does not reconcile"
    );
    ensure!(
        !b.output().contains("starting the controllers"),
        "the standby started its controllers"
    );
    // The Ingress controller runs with the chart's permissions too (its watches of
    // Ingresses, of Secrets by metadata, of its ServiceCertificates and SithsIssuers), with
    // no Ingress in the cluster.
    ensure!(
        leader_metrics
            .contains("siths_ingress_tls_certificates{classification=\"siths\",kind=\"Ingress\"}"),
        "no Ingress gauge on the leader"
    );
    // The Secret and CertificateOrder watches are shared by several controllers and log
    // their own failures.
    for failed in ["Ingress controller watch failed", "shared watch failed"] {
        ensure!(!a.output().contains(failed), "{}", a.output());
    }

    // New work arrives, and the leader dies in the middle of it. Eight certificates and
    // 300 ms were once the middle; with pooled keys and a 20 ms debounce the leader had
    // finished all eight by then, and the standby found nothing to do. Twenty-four, and
    // the kill as soon as the last is applied.
    add_certificates(&certs, &ns, 6..TOTAL).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.kill();
    let killed = jiff::Timestamp::now();
    let takeover = wait_holder(&admin, &lease, "operator-b", Duration::from_secs(30)).await?;
    eprintln!(
        "leader killed; operator-b took the lease after {:.1} s (lease duration {LEASE_SECONDS} s)",
        takeover.as_secs_f64()
    );
    // The lease manager waits for expiry, then up to a second of random back-off before
    // taking the lease.
    ensure!(
        takeover <= Duration::from_secs(LEASE_SECONDS + 2),
        "takeover took {takeover:?}"
    );

    let all = wait_all_ready(&certs, TOTAL).await?;
    one_order_each(&admin, &ns, &all).await?;
    let new_leader_metrics = scrape_expiry_gauges(&b, &ns, &all).await?;
    ensure!(
        new_leader_metrics.contains("\nsiths_leader 1\n"),
        "new leader metrics"
    );
    check_alert_metrics(&new_leader_metrics)?;

    let log = writes(cp).await?;
    let orders = created_once(&log, &ns)?;
    ensure!(orders == TOTAL, "{orders} orders created");
    let by_b = log
        .iter()
        .filter(|w| w.user == "operator-b" && w.namespace == ns)
        .count();
    eprintln!("operator-b wrote {by_b} times in {ns}");
    ensure!(by_b > 0, "operator-b wrote nothing in {ns}");
    let late: Vec<&Write> = log
        .iter()
        .filter(|w| w.user == "operator-a" && w.received > killed)
        .collect();
    ensure!(
        late.is_empty(),
        "writes by operator-a after it was killed: {late:#?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_paused_leader_writes_nothing_after_losing_the_lease() -> Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    let cp = e2e::shared();
    let admin = cp.client().await?;
    let lease = format!("pause-{}", std::process::id());
    let kc_c = replica_identity(cp, &admin, "operator-c").await?;
    let kc_d = replica_identity(cp, &admin, "operator-d").await?;
    let (ns, certs) = scenario(&admin, "pause").await?;

    let c = start_replica(cp, &kc_c, "operator-c", &lease)?;
    wait_holder(&admin, &lease, "operator-c", Duration::from_secs(30)).await?;
    let d = start_replica(cp, &kc_d, "operator-d", &lease)?;
    add_certificates(&certs, &ns, 0..4).await?;
    wait_all_ready(&certs, 4).await?;

    // The leader freezes (a stalled node, a long pause); work keeps arriving.
    c.pause()?;
    add_certificates(&certs, &ns, 4..10).await?;
    wait_holder(&admin, &lease, "operator-d", Duration::from_secs(30)).await?;
    let acquired = Api::<Lease>::namespaced(admin.clone(), OPERATOR_NAMESPACE)
        .get(&lease)
        .await?
        .spec
        .and_then(|s| s.acquire_time)
        .context("acquireTime")?
        .0;
    let all = wait_all_ready(&certs, 10).await?;

    // More work, then the old leader wakes up with every timer overdue and events queued.
    add_certificates(&certs, &ns, 10..12).await?;
    c.resume()?;
    e2e::eventually(
        Duration::from_secs(20),
        "the old leader to stand down",
        || async {
            let m = scrape(&c).await?;
            Ok(m.contains("\nsiths_leader 0\n").then_some(()))
        },
    )
    .await?;
    let all_after = wait_all_ready(&certs, 12).await?;
    ensure!(all_after.len() == all.len() + 2, "certificates");
    // Give the old leader time to do damage, if it could.
    tokio::time::sleep(Duration::from_secs(3)).await;
    one_order_each(&admin, &ns, &all_after).await?;
    ensure!(
        holder(&admin, &lease).await?.as_deref() == Some("operator-d"),
        "lease holder"
    );

    let log = writes(cp).await?;
    created_once(&log, &ns)?;
    let late: Vec<&Write> = log
        .iter()
        .filter(|w| w.user == "operator-c" && w.received >= acquired)
        .collect();
    ensure!(
        late.is_empty(),
        "writes by operator-c after operator-d acquired the lease at {acquired}: {late:#?}"
    );
    let refused = c.output().matches("not the leader: write refused").count();
    eprintln!(
        "operator-c resumed after losing the lease: 0 writes reached the API server; the write fence refused {refused} log line(s) worth of writes; its log says: {}",
        if c.output().contains("lost the leader lease") {
            "lost the leader lease"
        } else {
            "(no loss message)"
        }
    );
    ensure!(
        c.output().contains("lost the leader lease"),
        "operator-c did not notice the loss"
    );

    // A rolling update: the leader stops on SIGTERM and releases the lease; the standby
    // takes it at its next look.
    let mut d = d;
    let status = d.terminate(Duration::from_secs(20)).await?;
    ensure!(status.success(), "operator-d exited with {status}");
    ensure!(
        d.output().contains("leader lease released"),
        "operator-d did not release"
    );
    let handover = wait_holder(&admin, &lease, "operator-c", Duration::from_secs(30)).await?;
    eprintln!(
        "operator-d stopped on SIGTERM; operator-c took the lease after {:.1} s",
        handover.as_secs_f64()
    );
    ensure!(
        handover <= Duration::from_secs(LEASE_SECONDS + 2),
        "handover took {handover:?}"
    );
    Ok(())
}
