//! B7: the public route. `UserFacing` certificates (ECDSA P-256, the default key of the
//! public route) ordered from the real Pebble over ACME with External Account Binding and
//! HTTP-01 answered by the operator's own responder: certificates/s, requests per
//! certificate to the ACME server (the operator's `siths_acme_requests_total`, and what
//! Pebble itself logged) and to the apiserver (audit log), and the CPU of every process.
//!
//! Pebble runs with `PEBBLE_VA_NOSLEEP=1` (no random 0-15 s sleep before validating),
//! `PEBBLE_WFE_NONCEREJECT=0` (no random bad-nonce rejections) and `PEBBLE_AUTHZREUSE=0`
//! (every order validates its own HTTP-01 challenge), as [`Pebble::start`] always
//! does. Its mock DNS resolves every name to 127.0.0.1 and it validates on the port the
//! operator's responder listens on, so the solver Service and Ingress are created and
//! removed as in a cluster but no ingress controller sits between (there is none here).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use e2e::{
    fixtures::{pebble_issuer_yaml, pebble_objects, region_validation},
    k8s::{apply, siths_ca_bundle, wait_condition},
    operator::OperatorProcess,
    pebble::{EAB_HMAC, Pebble},
};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use siths_operator::api::{PublicIssuer, ServiceCertificate};

use super::{Bench, Report, Sizes, cpu_seconds, median, namespace, percentile, wait_idle};

/// `siths_acme_requests_total` from the operator's /metrics.
async fn acme_requests(op: &OperatorProcess) -> Result<f64> {
    let (_, body) = op.http_get("/metrics").await?;
    body.lines()
        .find_map(|l| l.strip_prefix("siths_acme_requests_total "))
        .and_then(|v| v.trim().parse().ok())
        .context("no siths_acme_requests_total in /metrics")
}

/// ServiceCertificate passes so far and the seconds they took, from /metrics.
async fn passes(op: &OperatorProcess) -> Result<(f64, f64)> {
    let (_, body) = op.http_get("/metrics").await?;
    let value = |name: &str| {
        body.lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "siths_reconcile_duration_seconds_{name}{{controller=\"ServiceCertificate\"}} "
                ))
            })
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((value("count"), value("sum")))
}

/// CPU seconds used so far by the control plane's processes, Pebble's and the operator.
fn cpu(pids: &[(String, u32)]) -> Vec<(String, f64)> {
    pids.iter()
        .map(|(n, p)| (n.clone(), cpu_seconds(*p)))
        .collect()
}

/// Seconds from creation to the Ready condition's last transition of every Ready
/// certificate in `ns` (second precision, as the apiserver keeps both).
async fn issue_seconds(api: &Api<ServiceCertificate>) -> Result<Vec<f64>> {
    let list = api.list(&ListParams::default()).await?;
    Ok(list
        .items
        .iter()
        .filter_map(|c| {
            let created = c.metadata.creation_timestamp.as_ref()?.0;
            let v = serde_json::to_value(c).ok()?;
            let ready = v
                .pointer("/status/conditions")?
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready" && c["status"] == "True")?;
            let at: jiff::Timestamp = ready["lastTransitionTime"].as_str()?.parse().ok()?;
            Some(at.duration_since(created).as_secs_f64())
        })
        .collect())
}

/// One run's figures.
struct Run {
    rate: f64,
    acme_per_cert: f64,
    pebble_per_cert: f64,
    requests_per_cert: f64,
    writes_per_cert: f64,
    cpu_ms_per_cert: BTreeMap<String, f64>,
}

pub(super) async fn b7_public_route(
    b: &Bench<'_>,
    report: &mut Report,
    sizes: Sizes,
    results: &mut BTreeMap<String, f64>,
) -> Result<()> {
    let n = sizes.b7_certificates;
    let ca = siths_ca_bundle(b.cp)?;
    let mut runs = Vec::new();
    for run in 0..sizes.runs.max(1) {
        let r = b7_run(b, report, n, run + 1, &ca).await?;
        runs.push(r);
    }
    let med = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
    let rate = med(&|r| r.rate);
    results.insert("B7 certificates/s".into(), rate);
    results.insert(
        "B7 ACME requests per certificate".into(),
        med(&|r| r.acme_per_cert),
    );
    results.insert(
        "B7 ACME requests per certificate (Pebble's log)".into(),
        med(&|r| r.pebble_per_cert),
    );
    results.insert(
        "B7 apiserver requests per certificate".into(),
        med(&|r| r.requests_per_cert),
    );
    results.insert(
        "B7 apiserver writes per certificate".into(),
        med(&|r| r.writes_per_cert),
    );
    for process in ["operator", "pebble", "kube-apiserver", "etcd"] {
        results.insert(
            format!("B7 CPU ms per certificate {process}"),
            med(&|r| r.cpu_ms_per_cert.get(process).copied().unwrap_or(f64::NAN)),
        );
    }
    report.say(format!(
        "B7 public route: median {rate:.1} certificates/s over {} run(s) of {n} UserFacing ECDSA P-256 certificates through Pebble (EAB, HTTP-01; VA_NOSLEEP, no nonce rejection, no authz reuse)",
        runs.len()
    ));
    Ok(())
}

async fn b7_run(
    b: &Bench<'_>,
    report: &mut Report,
    n: usize,
    run: usize,
    ca: &std::path::Path,
) -> Result<Run> {
    // Issuers of earlier runs point at Pebbles that are gone.
    let issuers: Api<PublicIssuer> = Api::all(b.client.clone());
    for i in issuers.list(&ListParams::default()).await?.items {
        if let Some(name) = i.metadata.name {
            let _ = issuers.delete(&name, &Default::default()).await;
        }
    }
    let port = e2e::controlplane::free_port()?;
    let pebble = Pebble::start(port).await?;
    let ns = namespace(&b.client, "b7").await?;
    pebble_objects(&b.client, &ns, &pebble, Some(EAB_HMAC)).await?;
    region_validation(&b.client, &ns, &format!("{ns}.region.se")).await?;
    apply(&issuers, &pebble_issuer_yaml(&ns, &ns, &pebble)).await?;
    let port_arg = port.to_string();
    let ca_arg = ca.to_string_lossy().into_owned();
    let op = OperatorProcess::start_with(
        b.cp,
        &b.bin,
        &b.kubeconfig,
        &["--siths-ca-file", &ca_arg, "--acme-http01-port", &port_arg],
        "warn",
    )?;
    // The account is registered before the clock starts, and the start-up pass over the
    // certificates of earlier scenarios is over.
    wait_condition(
        &issuers,
        &ns,
        "Ready",
        "True",
        None,
        Duration::from_secs(120),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}\n{}", op.output(), pebble.log()))?;
    wait_idle(&op).await?;

    let mut pids = b.cp.pids();
    pids.extend(pebble.pids());
    pids.push(("operator".into(), op.pid()));
    let cpu_before = cpu(&pids);
    let acme_before = acme_requests(&op).await?;
    let passes_before = passes(&op).await?;
    let pebble_before = pebble.requests_logged().len();
    let audit_from = b.audit_offset().await;
    let start = Instant::now();
    create_certificates(b, &ns, n).await?;
    let applied = start.elapsed();
    b.wait_ready(&ns, n, Duration::from_secs(1800))
        .await
        .map_err(|e| {
            let log = op.output();
            let lines: Vec<&str> = log.lines().collect();
            anyhow::anyhow!(
                "{e:#}; last operator log lines:\n{}",
                lines[lines.len().saturating_sub(20)..].join("\n")
            )
        })?;
    let total = start.elapsed().as_secs_f64();
    let rate = n as f64 / total;
    let cpu_after = cpu(&pids);
    let acme = acme_requests(&op).await? - acme_before;
    let passes_after = passes(&op).await?;
    let (pass_count, pass_seconds) = (
        passes_after.0 - passes_before.0,
        passes_after.1 - passes_before.1,
    );
    let pebble_requests: Vec<String> = pebble.requests_logged().split_off(pebble_before);
    let per = |v: f64| v / n as f64;

    let spent: BTreeMap<String, f64> = cpu_after
        .iter()
        .zip(&cpu_before)
        .map(|((name, a), (_, b))| (name.clone(), a - b))
        .collect();
    report.say(format!(
        "B7 run {run}: {n} certificates applied in {:.1} s, all Ready after {total:.1} s: {rate:.1} certificates/s; CPU used: {}",
        applied.as_secs_f64(),
        spent
            .iter()
            .map(|(name, s)| format!("{name} {s:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let secs = issue_seconds(&Api::namespaced(b.client.clone(), &ns)).await?;
    if !secs.is_empty() {
        report.say(format!(
            "B7 run {run} apply -> Ready per certificate (while all {n} are in flight): p50 {:.1} s, p90 {:.1} s, max {:.1} s",
            percentile(secs.clone(), 0.5),
            percentile(secs.clone(), 0.9),
            percentile(secs, 1.0)
        ));
    }
    // Little's law: the passes in flight on average, against the controller's limit of
    // concurrent passes (an ACME pass holds its place for the whole order).
    report.say(format!(
        "B7 run {run} passes: {:.2} ServiceCertificate passes per certificate, {:.0} ms each on average, {:.1} in flight on average over the run",
        per(pass_count),
        1000.0 * pass_seconds / pass_count.max(1.0),
        pass_seconds / total
    ));

    // ACME: what the operator counted, and what Pebble logged, by endpoint.
    let mut by_endpoint: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &pebble_requests {
        *by_endpoint.entry(r.as_str()).or_default() += 1;
    }
    let orders = pebble
        .log()
        .lines()
        .filter_map(|l| l.split("There are now ").nth(1))
        .filter(|rest| rest.contains(" orders in the db"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    report.say(format!(
        "B7 run {run} ACME: {acme:.0} requests counted by the operator ({:.1} per certificate), {} logged by Pebble ({:.1} per certificate); {orders} orders at Pebble; per certificate: {}",
        per(acme),
        pebble_requests.len(),
        per(pebble_requests.len() as f64),
        by_endpoint
            .iter()
            .map(|(k, v)| format!("{k} {:.2}", per(*v as f64)))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // The apiserver: every request of the operator (reads and writes), by kind.
    let (requests, kinds) = b.requests_since(audit_from, true)?;
    let writes: u64 = kinds
        .iter()
        .filter(|(k, _)| {
            [
                "create ",
                "update ",
                "patch ",
                "delete ",
                "deletecollection ",
            ]
            .iter()
            .any(|v| k.starts_with(v))
        })
        .map(|(_, v)| *v)
        .sum();
    let mut sorted: Vec<(&String, &u64)> = kinds.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    report.say(format!(
        "B7 run {run} apiserver: {requests} requests by the operator ({:.1} per certificate, {:.1} of them writes); per certificate: {}",
        per(requests as f64),
        per(writes as f64),
        sorted
            .iter()
            .map(|(k, v)| format!("{k} {:.2}", per(**v as f64)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Every solver object is gone once its order is done.
    let left =
        Api::<ConfigMap>::namespaced(b.client.clone(), e2e::controlplane::OPERATOR_NAMESPACE)
            .list_metadata(&ListParams::default().labels("siths-operator.io/role=acme-http01"))
            .await?
            .items
            .len();
    if left > 0 {
        report.say(format!(
            "B7 run {run}: {left} HTTP-01 challenge ConfigMaps left behind"
        ));
    }
    let lost = op.output().matches("lost the leader lease").count();
    if lost > 0 {
        report.say(format!(
            "B7 run {run}: the operator lost its leader lease {lost} time(s) while issuing"
        ));
    }
    drop(op);
    drop(pebble);
    Ok(Run {
        rate,
        acme_per_cert: per(acme),
        pebble_per_cert: per(pebble_requests.len() as f64),
        requests_per_cert: per(requests as f64),
        writes_per_cert: per(writes as f64),
        cpu_ms_per_cert: spent
            .into_iter()
            .map(|(name, s)| (name, 1000.0 * s / n as f64))
            .collect(),
    })
}

async fn create_certificates(b: &Bench<'_>, ns: &str, n: usize) -> Result<()> {
    let api: Api<ServiceCertificate> = Api::namespaced(b.client.clone(), ns);
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let yaml = format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: w{i} }}
spec:
  purpose: UserFacing
  dnsNames: [w{i}.{ns}.region.se]
  secretName: w{i}-tls
  issuerRef: {{ kind: PublicIssuer, name: {ns} }}
"#
            );
            async move {
                let obj: ServiceCertificate = serde_yaml::from_str(&yaml)?;
                api.create(&PostParams::default(), &obj).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}
