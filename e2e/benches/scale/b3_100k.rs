//! B8: B3 at 100 000 certificates, seeded. Issuing 100 000 certificates through the
//! operator would take hours, so the bench (as the admin) writes the state the operator
//! leaves behind an issued certificate: the ServiceCertificate with its Ready status, its
//! CertificateOrder with the status of an issued order, and its `kubernetes.io/tls` Secret
//! with a certificate the issuer's local CA signed for it. One certificate (`ctmpl`) is
//! issued by the operator first; the statuses of the seeded ones are that one's with its
//! names, serial, validity and renewal time replaced, so every field the operator writes is
//! there. A seeding mistake shows as writes during the start-up pass (target 0, checked).
//!
//! All certificates live in one namespace: what is per namespace (the staged-key list, the
//! namespace's labels) then meets its worst case, and it is the shape of the existing B3.
//!
//! Each size is measured with the baseline operator (`SITHS_BENCH_BASELINE_BIN`, when set)
//! and the worktree's build back to back on the same seeded state; sizes are cumulative.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, Seek as _},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use e2e::operator::OperatorProcess;
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};
use siths_operator::{
    api::{CertificateOrder, ServiceCertificate},
    pki::{self, CertificateProfile, Expected, KeySpec, LocalCa, PrivateKey, Usage},
    policy::{
        self,
        renewal::{RenewalInput, renewal_time},
        rfc3339,
        routing::Route,
    },
    vocabulary::{
        CERTIFICATE_LABEL, FIELD_MANAGER, ISSUED_AT_KEY, ISSUER_LABEL, MANAGED_BY, REVISION_KEY,
        ROLE_CERTIFICATE, ROLE_LABEL,
    },
};

use super::{Bench, Report, cpu_seconds, namespace, rss_kib};

/// Name of the certificate the operator issues itself; its statuses are the templates.
const TEMPLATE: &str = "ctmpl";
/// RSA keys reused across the seeded certificates (each still gets its own CSR and
/// certificate): generating 100 000 RSA keys would take over an hour.
const KEYS: usize = 8;
/// Seeded certificates written at once.
const CONCURRENCY: usize = 48;

fn certificate_yaml(name: &str, hsa: &str, ns: &str, issuer: &str) -> String {
    format!(
        r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: {name} }}
spec:
  purpose: ServerToServer
  hsaId: SE2321000016-B{hsa}
  dnsNames: [{name}.{ns}.bench.se]
  secretName: {name}-tls
  issuerRef: {{ kind: SithsIssuer, name: {issuer} }}
"#
    )
}

/// What every seeded certificate copies from the template.
struct Template {
    ns: String,
    issuer: String,
    ca: LocalCa,
    lifetime: Duration,
    lead_time: jiff::SignedDuration,
    organization: String,
    locality: Option<String>,
    keys: Vec<PrivateKey>,
    /// The template certificate's status and its order's, as JSON text.
    cert_status: String,
    order_status: String,
    order_spec_cost: u32,
    /// Strings of the template that differ per certificate.
    serial: String,
    not_after: String,
    not_before: String,
    renewal: String,
    checked_sha: String,
    checked_at: String,
}

/// Issues the template certificate through `op`, and reads what the operator wrote.
async fn template(b: &Bench<'_>, ns: &str, issuer: &str) -> Result<Template> {
    let certs: Api<ServiceCertificate> = Api::namespaced(b.client.clone(), ns);
    let obj: ServiceCertificate =
        serde_yaml::from_str(&certificate_yaml(TEMPLATE, TEMPLATE, ns, issuer))?;
    certs.create(&PostParams::default(), &obj).await?;
    b.wait_ready(ns, 1, Duration::from_secs(120)).await?;
    // Let the operator finish its passes (the status of the order, the last status write).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cert = certs.get(TEMPLATE).await?;
    let st = cert.status.clone().context("template status")?;
    let orders: Api<CertificateOrder> = Api::namespaced(b.client.clone(), ns);
    let order = orders.get(&policy::names::order_name(TEMPLATE, 1)).await?;
    let ost = order.status.clone().context("template order status")?;
    let ca_secret = Api::<Secret>::namespaced(b.client.clone(), ns)
        .get("ca")
        .await?;
    let text = |k: &str| {
        ca_secret
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .unwrap_or_default()
    };
    let ca = LocalCa::from_pem(&text("tls.crt"), &text("tls.key"))?;
    let issuer_obj = Api::<siths_operator::api::SithsIssuer>::all(b.client.clone())
        .get(issuer)
        .await?;
    let lifetime = policy::issuers::local_ca_lifetime(&issuer_obj.spec)
        .map_err(|p| anyhow::anyhow!("{p:?}"))?
        .unwrap_or(policy::issuers::DEFAULT_LOCAL_LIFETIME);
    let keys = (0..KEYS)
        .map(|_| KeySpec::RSA_2048.generate())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Template {
        ns: ns.into(),
        issuer: issuer.into(),
        ca,
        lifetime,
        lead_time: policy::cost::lead_time(issuer_obj.spec.lead_time_days, false),
        organization: issuer_obj.spec.organization.name.clone(),
        locality: issuer_obj.spec.organization.locality.clone(),
        keys,
        cert_status: serde_json::to_string(&st)?,
        order_status: serde_json::to_string(&ost)?,
        order_spec_cost: order.spec.estimated_cost_sek,
        serial: st.serial_number.clone().context("serial")?,
        not_after: st.not_after.clone().context("notAfter")?,
        not_before: st.not_before.clone().context("notBefore")?,
        renewal: st.renewal_time.clone().context("renewalTime")?,
        checked_sha: ost.checked_certificate_sha256.clone().context("sha")?,
        checked_at: ost.checked_at.clone().context("checkedAt")?,
    })
}

/// Writes certificate `i` with its Secret and issued order, as the operator would have.
async fn seed_one(client: &kube::Client, t: Arc<Template>, i: usize) -> Result<()> {
    let ns = &t.ns;
    let name = format!("c{i}");
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), ns);
    let obj: ServiceCertificate =
        serde_yaml::from_str(&certificate_yaml(&name, &i.to_string(), ns, &t.issuer))?;
    let cert = match certs.create(&PostParams::default(), &obj).await {
        Ok(c) => c,
        // A retried run: the certificate is there already.
        Err(kube::Error::Api(e)) if e.code == 409 => certs.get(&name).await?,
        Err(e) => return Err(e.into()),
    };
    let uid = cert.metadata.uid.clone().context("uid")?;
    // Key, CSR, signature and the operator's own check, off the async workers.
    let (t2, cert2) = (t.clone(), cert.clone());
    let (key_pem, csr, subject, accepted, pem) = tokio::task::spawn_blocking(move || {
        let t = t2;
        let key = &t.keys[i % t.keys.len()];
        let profile = CertificateProfile {
            dns_names: cert2.spec.dns_names.clone(),
            hsa_id: cert2.spec.hsa_id.clone(),
            organization: t.organization.clone(),
            locality: t.locality.clone(),
            usage: Usage::ServerToServer,
        };
        let csr = pki::build_csr(&profile, key)?;
        let parsed = pki::parse_csr(&csr)?;
        let chain = t.ca.sign_csr(
            &parsed,
            Timestamp::now(),
            t.lifetime,
            &pki::random_serial()?,
        )?;
        let pem = pki::chain_to_pem(&chain);
        let accepted = pki::check_issued(
            &pem,
            &Expected {
                dns_names: cert2.spec.dns_names.clone(),
                hsa_id: cert2.spec.hsa_id.clone(),
                public_key_der: key.public_key_der(),
                usage: Usage::ServerToServer,
                subject: Some(pki::ExpectedSubject::from_csr_pem(&csr)?),
            },
            t.ca.trust_anchors(),
            Timestamp::now(),
        )
        .map_err(|r| anyhow::anyhow!("{}: {}", r.reason(), r.message()))?;
        anyhow::Ok((key.to_pem(), csr.clone(), parsed.subject, accepted, pem))
    })
    .await??;
    let leaf = &accepted.leaf;
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let labels = |role: Option<&str>| -> BTreeMap<String, String> {
        let mut l: BTreeMap<String, String> = [
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            (CERTIFICATE_LABEL.to_string(), name.clone()),
        ]
        .into();
        if let Some(r) = role {
            l.insert(ROLE_LABEL.into(), r.into());
        }
        l
    };
    // The Secret as write_secret applies it.
    let mut data: BTreeMap<String, ByteString> = [
        (
            "tls.crt".to_string(),
            ByteString(accepted.chain_pem().into_bytes()),
        ),
        ("tls.key".to_string(), ByteString(key_pem.into_bytes())),
    ]
    .into();
    if accepted.root.is_some() {
        data.insert(
            "ca.crt".into(),
            ByteString(accepted.root_pem().into_bytes()),
        );
    }
    let issued_at = Timestamp::now().to_string();
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": cert.spec.secret_name,
            "labels": labels(Some(ROLE_CERTIFICATE)),
            "annotations": {
                REVISION_KEY: "1",
                ISSUED_AT_KEY: issued_at,
            },
        },
        "type": "kubernetes.io/tls",
        "data": data,
    });
    let written = Api::<Secret>::namespaced(client.clone(), ns)
        .patch(&cert.spec.secret_name, &apply, &Patch::Apply(&secret))
        .await?;
    // The order as issue() creates it, then its status as advance_order leaves it.
    let order_name = policy::names::order_name(&name, 1);
    let mut order_labels = labels(None);
    order_labels.insert(ISSUER_LABEL.into(), t.issuer.clone());
    order_labels.insert(REVISION_KEY.into(), "1".into());
    let owner = kube::Resource::controller_owner_ref(&cert, &());
    let order = CertificateOrder {
        metadata: ObjectMeta {
            name: Some(order_name.clone()),
            namespace: Some(ns.clone()),
            labels: Some(order_labels),
            owner_references: Some(owner.into_iter().collect()),
            ..Default::default()
        },
        spec: siths_operator::api::CertificateOrderSpec {
            certificate_name: name.clone(),
            revision: 1,
            issuer_name: t.issuer.clone(),
            dns_names: cert.spec.dns_names.clone(),
            hsa_id: cert.spec.hsa_id.clone(),
            subject,
            csr,
            estimated_cost_sek: t.order_spec_cost,
            approval: None,
            certificate: None,
        },
        status: None,
    };
    let orders: Api<CertificateOrder> = Api::namespaced(client.clone(), ns);
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match orders.create(&pp, &order).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let renew_at = renewal_time(&RenewalInput {
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        renew_before: None,
        lead_time: t.lead_time,
        kind: Route::Siths,
        uid: &uid,
    });
    let now = Timestamp::now().to_string();
    let swap = |text: &str| -> Result<serde_json::Value> {
        let replaced = text
            .replace(TEMPLATE, &name)
            .replace(&t.serial, &leaf.serial_hex)
            .replace(&t.not_after, &rfc3339(leaf.not_after))
            .replace(&t.not_before, &rfc3339(leaf.not_before))
            .replace(&t.renewal, &rfc3339(renew_at))
            .replace(&t.checked_sha, &pki::sha256_fingerprint(pem.as_bytes()))
            .replace(&t.checked_at, &now);
        Ok(serde_json::from_str(&replaced)?)
    };
    let status = |kind: &str, st: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "siths-operator.io/v1alpha1", "kind": kind, "status": st,
        })
    };
    orders
        .patch_status(
            &order_name,
            &apply,
            &Patch::Apply(status("CertificateOrder", swap(&t.order_status)?)),
        )
        .await?;
    // The check of the Secret the operator records (status.secretCheck), for this Secret.
    let mut cert_status = swap(&t.cert_status)?;
    if let Some(check) = cert_status.get_mut("secretCheck") {
        check["secretVersion"] = written.metadata.resource_version.clone().into();
        check["issuedAt"] = issued_at.into();
    }
    certs
        .patch_status(
            &name,
            &apply,
            &Patch::Apply(status("ServiceCertificate", cert_status)),
        )
        .await?;
    Ok(())
}

/// The operator's requests in the audit log after byte `offset` (every request when
/// `reads`, else writes), read from `offset` on: the seeding makes the log large.
fn requests_after(
    audit_log: &Path,
    offset: u64,
    reads: bool,
) -> Result<(u64, BTreeMap<String, u64>)> {
    let mut f = std::fs::File::open(audit_log)?;
    f.seek(std::io::SeekFrom::Start(offset))?;
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        // Cheap filter first: most lines are the admin's seeding.
        if !line.contains(e2e::k8s::OPERATOR_USER) {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["user"]["username"] != e2e::k8s::OPERATOR_USER {
            continue;
        }
        if v["objectRef"]["resource"] == "leases" {
            continue;
        }
        let verb = v["verb"].as_str().unwrap_or_default();
        if !reads && matches!(verb, "get" | "list" | "watch") {
            continue;
        }
        let resource = v["objectRef"]["resource"].as_str().unwrap_or_default();
        let sub = v["objectRef"]["subresource"].as_str().unwrap_or_default();
        let key = if sub.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource}/{sub}")
        };
        *by_kind.entry(key).or_insert(0) += 1;
        total += 1;
    }
    Ok((total, by_kind))
}

/// A counter or histogram sum of `controller` from the operator's /metrics.
async fn metric(op: &OperatorProcess, family: &str, controller: &str) -> Option<f64> {
    let Ok((200, text)) = op.http_get("/metrics").await else {
        return None;
    };
    let prefix = format!("{family}{{controller=\"{controller}\"}}");
    Some(
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0),
    )
}

/// Waits for the start-up pass: until the operator has made a pass over each of the `n`
/// certificates and then used under [`IDLE_CPU`] of CPU in [`IDLE_WINDOW`]. Idleness is read
/// from /proc every second, and /metrics (for the pass count) only when the process is
/// idle: a scrape with 100 000 certificates is some 80 MB of text, and scraping it every
/// 2 s (as this bench did) was load of the bench's own. Returns the passes, the time from
/// the process start until the idle window began and the CPU seconds used until then.
async fn wait_startup(
    op: &OperatorProcess,
    n: usize,
    timeout: Duration,
) -> Result<(u64, Duration, f64)> {
    let start = Instant::now();
    let mut samples: std::collections::VecDeque<(Instant, f64)> = Default::default();
    let mut passes = 0.0;
    loop {
        let now = Instant::now();
        samples.push_back((now, cpu_seconds(op.pid())));
        while samples.len() > 1 && now.duration_since(samples[1].0) >= IDLE_WINDOW {
            samples.pop_front();
        }
        let (since, cpu_then) = samples[0];
        let cpu_now = samples.back().map_or(cpu_then, |s| s.1);
        if now.duration_since(since) >= IDLE_WINDOW && cpu_now - cpu_then < IDLE_CPU {
            passes = metric(op, "siths_reconcile_total", "ServiceCertificate")
                .await
                .unwrap_or(0.0);
            if passes >= n as f64 {
                return Ok((passes as u64, since.duration_since(start), cpu_then));
            }
            // The scrape's own CPU is not the operator's work: start a new window.
            samples.clear();
        }
        if start.elapsed() > timeout {
            bail!("the operator was not idle after {timeout:?} (passes: {passes})");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How long the operator must stay (nearly) idle for its start-up pass to count as over.
const IDLE_WINDOW: Duration = Duration::from_secs(4);
/// The CPU seconds an idle operator may use in [`IDLE_WINDOW`] (its periodic issuer
/// status pass and lease renewals are milliseconds).
const IDLE_CPU: f64 = 0.1;

/// What one operator build did on one seeded size.
struct Startup {
    op: OperatorProcess,
}

/// Starts `bin` on the seeded state and measures its start-up pass, RSS and one
/// SithsIssuer status pass.
#[allow(clippy::too_many_arguments)]
async fn measure(
    b: &Bench<'_>,
    report: &mut Report,
    results: &mut BTreeMap<String, f64>,
    bin: &Path,
    label: &str,
    ns: &str,
    n: usize,
    smoke: bool,
) -> Result<Startup> {
    let offset = b.audit_offset().await;
    let op = OperatorProcess::start_with(b.cp, bin, &b.kubeconfig, &[], "warn")?;
    let (passes, from_start, cpu) =
        wait_startup(&op, n, Duration::from_secs(if smoke { 120 } else { 1800 })).await?;
    let end = b.audit_offset().await;
    let _ = end;
    let (requests, kinds) = requests_after(&b.cp.audit_log, offset, true)?;
    let (all_writes, write_kinds) = requests_after(&b.cp.audit_log, offset, false)?;
    // The issuer's status counts the seeded orders the first time an operator sees them:
    // one write per issuer, not per certificate.
    let writes = all_writes
        - write_kinds
            .get("patch sithsissuers/status")
            .copied()
            .unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss, hwm) = rss_kib(op.pid())?;
    report.say(format!(
        "B8 {label} {n}: start-up pass {:.1} s from process start ({cpu:.1} CPU s), {passes} ServiceCertificate passes; RSS {:.1} MiB (peak {:.1} MiB); {requests} requests ({:.2} per certificate), {writes} writes besides the issuer's status {write_kinds:?}",
        from_start.as_secs_f64(),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        requests as f64 / n as f64,
    ));
    report.say(format!(
        "    B8 {label} {n} start-up requests by kind: {kinds:?}"
    ));
    results.insert(
        format!("B8 {label} {n} start-up s"),
        from_start.as_secs_f64(),
    );
    results.insert(format!("B8 {label} {n} RSS MiB"), rss as f64 / 1024.0);
    results.insert(format!("B8 {label} {n} start-up writes"), writes as f64);
    // One SithsIssuer status pass while orders flow: touch one order (as a new order's
    // status would), wait for the pass, count what it asked for.
    let issuer_passes = metric(&op, "siths_reconcile_total", "SithsIssuer")
        .await
        .unwrap_or(0.0);
    let issuer_seconds = metric(&op, "siths_reconcile_duration_seconds_sum", "SithsIssuer")
        .await
        .unwrap_or(0.0);
    let offset = b.audit_offset().await;
    let orders: Api<CertificateOrder> = Api::namespaced(b.client.clone(), ns);
    let touched = policy::names::order_name("c0", 1);
    let target = if orders.get_opt(&touched).await?.is_some() {
        touched
    } else {
        policy::names::order_name(TEMPLATE, 1)
    };
    orders
        .patch(
            &target,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"bench/touch": Timestamp::now().to_string()}}})),
        )
        .await?;
    let waited = Instant::now();
    loop {
        let now = metric(&op, "siths_reconcile_total", "SithsIssuer")
            .await
            .unwrap_or(0.0);
        if now > issuer_passes {
            break;
        }
        if waited.elapsed() > Duration::from_secs(300) {
            bail!("no SithsIssuer pass within 300 s of an order change");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Let a pass that is still listing finish before counting.
    let mut seconds;
    let mut stable = 0;
    let mut prev = -1.0;
    loop {
        seconds = metric(&op, "siths_reconcile_duration_seconds_sum", "SithsIssuer")
            .await
            .unwrap_or(0.0);
        if seconds == prev {
            stable += 1;
            if stable >= 2 {
                break;
            }
        } else {
            stable = 0;
        }
        prev = seconds;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let after_passes = metric(&op, "siths_reconcile_total", "SithsIssuer")
        .await
        .unwrap_or(0.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The order changed is the one of c0: its certificate's pass is in these requests too.
    b.audit_offset().await;
    let (_, pass_kinds) = requests_after(&b.cp.audit_log, offset, true)?;
    let pass_count = (after_passes - issuer_passes).max(1.0);
    let lists = pass_kinds
        .get("list certificateorders")
        .copied()
        .unwrap_or(0) as f64
        / pass_count;
    let pass_ms = 1000.0 * (seconds - issuer_seconds) / pass_count;
    results.insert(format!("B8 {label} {n} issuer pass lists"), lists);
    results.insert(format!("B8 {label} {n} issuer pass ms"), pass_ms);
    report.say(format!(
        "    B8 {label} {n} SithsIssuer status pass (one order changed): {lists:.0} LISTs of orders per pass, {pass_ms:.0} ms per pass ({} pass(es)); requests after the change {pass_kinds:?}",
        after_passes - issuer_passes
    ));
    Ok(Startup { op })
}

/// Runs B8 over `targets` (cumulative sizes), then adds the unrelated Secrets.
pub(super) async fn b8_seeded(
    b: &Bench<'_>,
    report: &mut Report,
    targets: &[usize],
    sizes: super::Sizes,
    smoke: bool,
    results: &mut BTreeMap<String, f64>,
) -> Result<()> {
    let baseline = std::env::var_os("SITHS_BENCH_BASELINE_BIN").map(std::path::PathBuf::from);
    let ns = namespace(&b.client, "b8").await?;
    let issuer = b.setup_issuer(&ns).await?;
    let mut op = b.start_operator()?;
    let t = Arc::new(template(b, &ns, &issuer).await?);
    op.terminate(Duration::from_secs(30)).await?;
    drop(op);
    let mut seeded = 0;
    let mut last = None;
    for &target in targets {
        if let Some(mut s) = last.take() {
            let s: &mut Startup = &mut s;
            s.op.terminate(Duration::from_secs(60)).await?;
        }
        let start = Instant::now();
        futures::stream::iter(seeded..target)
            .map(|i| seed_one(&b.client, t.clone(), i))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        let took = start.elapsed().as_secs_f64();
        report.say(format!(
            "B8 seeded {} certificates (with order and Secret) in {took:.1} s ({:.0}/s), {target} in all",
            target - seeded,
            (target - seeded) as f64 / took
        ));
        seeded = target;
        let n = target + 1;
        if let Some(bin) = &baseline {
            let mut s = measure(b, report, results, bin, "before", &ns, n, smoke).await?;
            s.op.terminate(Duration::from_secs(60)).await?;
        }
        // The target folder may be shared with other builds: a copy taken right after
        // building (`SITHS_BENCH_BIN`) is the binary measured.
        let bin = std::env::var_os("SITHS_BENCH_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| b.bin.clone());
        let s = measure(b, report, results, &bin, "after", &ns, n, smoke).await?;
        let writes = results
            .get(&format!("B8 after {n} start-up writes"))
            .copied()
            .unwrap_or(0.0);
        if writes > 0.0 {
            bail!(
                "the operator wrote {writes} times in its start-up pass over {n} seeded certificates: the seeding is not what the operator writes (or a pass writes without a change)"
            );
        }
        last = Some(s);
    }
    let Some(s) = last else { return Ok(()) };
    let pid = s.op.pid();
    let (rss_before, _) = rss_kib(pid)?;
    super::unrelated_objects(&b.client, sizes).await?;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (rss_after, hwm) = rss_kib(pid)?;
    let delta = (rss_after as f64 - rss_before as f64) / 1024.0;
    results.insert("B8 unrelated Secrets delta MiB".into(), delta);
    report.say(format!(
        "B8 after {} unrelated Secrets with {seeded} seeded certificates: RSS {:.1} MiB (peak {:.1} MiB), difference {delta:+.1} MiB (target < 5 MiB)",
        sizes.b3_secrets,
        rss_after as f64 / 1024.0,
        hwm as f64 / 1024.0
    ));
    drop(s);
    Ok(())
}
