//! `sithsctl audit -o html` in a real browser: headless Chromium (Debian's `chromium` on
//! PATH, or `$CHROMIUM`) loads the report from a file, takes a screenshot (kept under
//! `<target>/report-artefacts/`) and dumps the rendered DOM, which must hold every finding
//! of the golden JSON, one timeline bar per certificate and the date markers where they
//! belong; the network log must show no request leaving the page. Once on the migration
//! example, once on a generated fixture of 2 000 certificates (render time and file size
//! printed).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use e2e::k8s::sithsctl_output;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use siths_operator::pki::{self, CertificateProfile, KeySpec, LocalCa, LocalCaOptions, Usage};

const NOW: &str = "2026-06-01T00:00:00Z";

fn root() -> PathBuf {
    e2e::controlplane::workspace_root()
}

fn artefacts(name: &str) -> Result<PathBuf> {
    let dir = e2e::operator::target_dir()
        .join("report-artefacts")
        .join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn sithsctl(args: &[&str]) -> Result<(i32, String, String)> {
    let out = sithsctl_output(Path::new("/nonexistent-kubeconfig"), args)?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

fn chromium() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Ok(PathBuf::from(p));
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!("chromium is not on PATH (Debian: apt-get install chromium; .ci/run installs it)")
}

/// What the browser made of the page.
struct Rendered {
    dom: String,
    screenshot: PathBuf,
    /// URLs the page asked for, from the network log.
    page_requests: Vec<String>,
}

/// The requests of `netlog` (Chromium's `--log-net-log` JSON) that a page started: every
/// URL request whose initiator is an origin. Chromium's own background requests
/// (component updates, time, accounts) have the initiator `not an origin`; a page's
/// requests carry the page's origin (`null` for a file).
fn page_requests(netlog: &str) -> Result<Vec<String>> {
    let log: Value = serde_json::from_str(netlog).context("net log JSON")?;
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .context("net log without URL_REQUEST_START_JOB")?;
    Ok(log["events"]
        .as_array()
        .context("net log without events")?
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .filter(|e| e["params"]["initiator"].as_str() != Some("not an origin"))
        // The job's start carries the URL; its end event has none.
        .filter_map(|e| e["params"]["url"].as_str().map(String::from))
        .collect())
}

fn run_chromium(args: &[String], what: &str) -> Result<std::process::Output> {
    let out = Command::new(chromium()?)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--hide-scrollbars",
        ])
        .args(args)
        .output()
        .with_context(|| format!("running chromium ({what})"))?;
    ensure!(
        out.status.success(),
        "chromium ({what}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

fn render(html: &Path, width: u32, height: u32) -> Result<Rendered> {
    let dir = html.parent().context("report folder")?;
    let url = format!("file://{}", html.display());
    let screenshot = html.with_extension("png");
    let netlog = dir.join("netlog.json");
    let profile = dir.join("chromium-profile");
    let common = |extra: Vec<String>| -> Vec<String> {
        let mut a = vec![format!("--user-data-dir={}", profile.display())];
        a.extend(extra);
        a.push(url.clone());
        a
    };
    let _ = std::fs::remove_file(&screenshot);
    run_chromium(
        &common(vec![
            format!("--screenshot={}", screenshot.display()),
            format!("--window-size={width},{height}"),
        ]),
        "screenshot",
    )?;
    let out = run_chromium(
        &common(vec![
            "--dump-dom".into(),
            format!("--log-net-log={}", netlog.display()),
            "--net-log-capture-mode=Default".into(),
        ]),
        "dump-dom",
    )?;
    let dom = String::from_utf8(out.stdout)?;
    let log = std::fs::read_to_string(&netlog).context("chromium wrote no net log")?;
    Ok(Rendered {
        dom,
        screenshot,
        page_requests: page_requests(&log)?,
    })
}

/// Text as Chromium serialises it in a text node.
fn text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

/// Value of attribute `name` in each element of `dom` that has the marker string.
fn attrs<'a>(dom: &'a str, marker: &str, name: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    for (i, _) in dom.match_indices(marker) {
        let start = dom[..i].rfind('<').unwrap_or(0);
        let end = i + dom[i..].find('>').unwrap_or(0);
        let tag = &dom[start..end];
        let key = format!(" {name}=\"");
        if let Some(j) = tag.find(&key) {
            let v = &tag[j + key.len()..];
            out.push(&v[..v.find('"').unwrap_or(v.len())]);
        }
    }
    out
}

fn days_between(a: Timestamp, b: Timestamp) -> f64 {
    b.duration_since(a).as_secs_f64() / 86_400.0
}

/// Checks shared by both reports: bars, markers, nothing loaded from elsewhere, a
/// screenshot.
fn check_rendered(r: &Rendered, certificates: usize, now: Timestamp) -> Result<()> {
    let dom = &r.dom;
    ensure!(dom.contains("<h1>SITHS migration audit</h1>"), "no page");
    // One bar per certificate, each with its dates.
    let bars = attrs(dom, "class=\"bar ", "data-not-after");
    assert_eq!(bars.len(), certificates, "one bar per certificate");
    // The overview counts every certificate once, by the month it expires.
    let months: usize = attrs(dom, "class=\"month\"", "data-total")
        .iter()
        .map(|t| t.parse::<usize>().unwrap())
        .sum();
    assert_eq!(
        months, certificates,
        "the overview counts every certificate"
    );
    // Markers where their dates put them, on every chart's axis.
    let starts = attrs(dom, "class=\"timeline\"", "data-axis-start");
    let ends = attrs(dom, "class=\"timeline\"", "data-axis-end");
    let lefts = attrs(dom, "class=\"timeline\"", "data-plot-left");
    let rights = attrs(dom, "class=\"timeline\"", "data-plot-right");
    ensure!(!starts.is_empty(), "no timeline chart");
    let (start, end): (Timestamp, Timestamp) = (starts[0].parse()?, ends[0].parse()?);
    let (left, right): (f64, f64) = (lefts[0].parse()?, rights[0].parse()?);
    let charts = starts.len();
    for (id, date) in [
        ("today", now),
        ("public-100", "2027-03-15T00:00:00Z".parse()?),
        ("public-47", "2029-03-15T00:00:00Z".parse()?),
    ] {
        let xs = attrs(dom, &format!("class=\"marker {id}\""), "x1");
        assert_eq!(xs.len(), charts, "{id} on every chart");
        let want = left + days_between(start, date) / days_between(start, end) * (right - left);
        for x in xs {
            let x: f64 = x.parse()?;
            assert!((x - want).abs() < 0.06, "{id} at {x}, expected {want}");
        }
    }
    // Nothing from elsewhere: no attribute or style pointing out of the file, and the
    // browser's network log saw only the file itself.
    for bad in [
        " src=\"", "url(http", "url(//", "@import", "<script", "<link",
    ] {
        ensure!(!dom.contains(bad), "the page holds {bad:?}");
    }
    for href in attrs(dom, " href=\"", "href") {
        ensure!(href.starts_with('#'), "link out of the page: {href}");
    }
    assert!(
        r.page_requests.is_empty(),
        "requests leaving the page: {:?}",
        r.page_requests
    );
    // A real picture.
    let png = std::fs::read(&r.screenshot)?;
    ensure!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot {} is not a PNG of a page ({} bytes)",
        r.screenshot.display(),
        png.len()
    );
    println!(
        "screenshot: {} ({} KiB)",
        r.screenshot.display(),
        png.len() / 1024
    );
    Ok(())
}

/// The network check can fail: a page that loads an image from elsewhere is caught.
#[test]
fn the_request_check_sees_a_page_that_loads_from_elsewhere() -> Result<()> {
    let dir = artefacts("control")?;
    let html = dir.join("loads-an-image.html");
    // Port 9 (discard) on loopback: refused at once, but the request is made.
    std::fs::write(
        &html,
        "<!DOCTYPE html><html><body><h1>control</h1><img src=\"http://127.0.0.1:9/x.png\" alt=\"\"></body></html>",
    )?;
    let r = render(&html, 400, 300)?;
    assert_eq!(r.page_requests, ["http://127.0.0.1:9/x.png"]);
    Ok(())
}

#[test]
fn the_migration_report_renders_every_finding_in_chromium() -> Result<()> {
    let dir = artefacts("migration")?;
    let html = dir.join("migration.html");
    let ex = root().join("examples/migration");
    let file = |p: &str| ex.join(p).display().to_string();
    let export = file("cluster-export.yaml");
    let prod = file("anchors/stand-in-production-ca.pem");
    let test = file("anchors/stand-in-test-ca.pem");
    let html_arg = html.display().to_string();
    let base = [
        "audit",
        "--now",
        NOW,
        "-f",
        &export,
        "--siths-ca",
        &prod,
        "--siths-test-ca",
        &test,
    ];
    // --html alongside JSON: the JSON is the golden one, byte for byte.
    let mut a = base.to_vec();
    a.extend(["-o", "json", "--html", &html_arg]);
    let (code, json, stderr) = sithsctl(&a)?;
    assert_eq!(code, 0, "{stderr}");
    let golden = std::fs::read_to_string(root().join("e2e/tests/testdata/migration-audit.json"))?;
    assert_eq!(json, golden, "JSON next to --html is the golden JSON");
    // -o html prints the same page.
    let mut a = base.to_vec();
    a.extend(["-o", "html"]);
    let (code, page, stderr) = sithsctl(&a)?;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(page, std::fs::read_to_string(&html)?);

    let r = render(&html, 1280, 2400)?;
    let golden: Value = serde_json::from_str(&golden)?;
    check_rendered(&r, 8, NOW.parse()?)?;
    // Every finding of the golden JSON, in a row of its severity with its fix.
    let findings = golden["findings"].as_array().context("findings")?;
    let rows: Vec<&str> = r.dom.split("<tr class=\"finding ").skip(1).collect();
    assert_eq!(rows.len(), findings.len(), "one row per finding");
    for f in findings {
        let o = &f["object"];
        let object = match o["namespace"].as_str() {
            Some(ns) => format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap(),
                ns,
                o["name"].as_str().unwrap()
            ),
            None => format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            ),
        };
        let message = text(f["message"].as_str().unwrap());
        let fix = text(f["remediation"].as_str().unwrap());
        let sev = f["severity"].as_str().unwrap();
        let code = f["code"].as_str().unwrap();
        let found = rows.iter().any(|row| {
            row.starts_with(&format!("sev-{sev}\""))
                && row.contains(&format!("<code>{code}</code>"))
                && row.contains(&format!(">{}</code>", text(&object)))
                && row.contains(&message)
                && row.contains(&fix)
        });
        assert!(
            found,
            "finding {code} on {object} is not in the rendered table"
        );
    }
    // Summary cards, from the same report.
    let s = &golden["summary"];
    for (card, want) in [
        ("card-certificates", s["certificates"]["total"].to_string()),
        ("card-endpoints", s["userFacingSithsEndpoints"].to_string()),
        ("card-spend", "7 300 SEK".to_string()),
    ] {
        let at = r.dom.find(&format!("id=\"{card}\"")).context(card)?;
        let big = &r.dom[at..];
        let big = &big[big.find("class=\"big\">").context("big")? + 12..];
        assert_eq!(&big[..big.find('<').unwrap()], want, "{card}");
    }
    // Spend by month: the twelve months add up to the summary.
    let spend = &r.dom[r.dom.find("id=\"spend\"").context("spend table")?..];
    let spend = &spend[..spend.find("</table>").unwrap()];
    let months: Vec<u64> = spend
        .split("<td class=\"num\">")
        .skip(1)
        .filter_map(|c| c.split_once(" SEK</td>"))
        .map(|(n, _)| n.replace(' ', "").parse().unwrap())
        .collect();
    assert_eq!(months.len(), 12);
    assert_eq!(
        months.iter().sum::<u64>(),
        s["estimatedSithsSpendNext12MonthsSek"].as_u64().unwrap()
    );
    // Keys never reach the page.
    assert!(!r.dom.contains("PRIVATE KEY"));
    Ok(())
}

/// 2 000 certificates in 40 namespaces: SITHS production, SITHS test and a private CA,
/// expiring over three years.
fn fleet_fixture(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let now: Timestamp = NOW.parse()?;
    let ca = |cn: &str| {
        LocalCa::generate(&LocalCaOptions {
            common_name: cn.into(),
            organization: "siths-operator report test".into(),
            key: KeySpec::ECDSA_P256,
            intermediate_common_name: None,
            not_before: now - SignedDuration::from_hours(24 * 800),
            validity: Duration::from_secs(86_400 * 3_650),
        })
    };
    let prod = ca("Stand-in SITHS production (report test)")?;
    let test = ca("Stand-in SITHS test (report test)")?;
    let private = ca("Internal CA (report test)")?;
    let key = KeySpec::ECDSA_P256.generate()?;
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let mut items = Vec::new();
    for i in 0..2_000u64 {
        let ns = format!("team-{:02}", i % 40);
        // Namespaces mix the classes.
        let (signer, usage) = match (i / 40) % 5 {
            0 | 1 => (&prod, Usage::ServerToServer),
            2 => (&test, Usage::ServerToServer),
            _ => (&private, Usage::UserFacing),
        };
        let name = format!("svc-{i:04}");
        let profile = CertificateProfile {
            dns_names: vec![format!("{name}.{ns}.region-exempel.se")],
            hsa_id: None,
            organization: "Region Exempel".into(),
            locality: None,
            usage,
        };
        // Issued over the last two years, for one or two years.
        let start = now - SignedDuration::from_hours(24 * (i as i64 * 7 % 700));
        let lifetime = Duration::from_secs(86_400 * (365 + (i % 2) * 365));
        let chain = signer.sign(
            &profile,
            &key.public_key_der(),
            start,
            lifetime,
            &pki::random_serial()?,
        )?;
        items.push(
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": format!("{name}-tls"), "namespace": ns},
            "data": {"tls.crt": b64(pki::chain_to_pem(&chain)), "tls.key": ""}}),
        );
        if (i / 40) % 5 >= 3 || i % 50 == 0 {
            items.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"tls": [{"hosts": [format!("{name}.{ns}.region-exempel.se")], "secretName": format!("{name}-tls")}]}}));
        }
    }
    let export = dir.join("export.json");
    std::fs::write(
        &export,
        serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": items}))?,
    )?;
    let prod_pem = dir.join("prod-ca.pem");
    std::fs::write(&prod_pem, prod.cert_pem())?;
    let test_pem = dir.join("test-ca.pem");
    std::fs::write(&test_pem, test.cert_pem())?;
    Ok((export, prod_pem, test_pem))
}

#[test]
fn a_report_of_2000_certificates_stays_small_and_readable() -> Result<()> {
    let dir = artefacts("fleet-2000")?;
    let (export, prod, test) = fleet_fixture(&dir)?;
    let html = dir.join("report-2000.html");
    let (export, prod, test, html_arg) = (
        export.display().to_string(),
        prod.display().to_string(),
        test.display().to_string(),
        html.display().to_string(),
    );
    e2e::k8s::sithsctl_binary()?; // built before the clock starts
    let started = Instant::now();
    let (code, json, stderr) = sithsctl(&[
        "audit",
        "--now",
        NOW,
        "-f",
        &export,
        "--siths-ca",
        &prod,
        "--siths-test-ca",
        &test,
        "-o",
        "json",
        "--html",
        &html_arg,
    ])?;
    let took = started.elapsed();
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&json)?;
    assert_eq!(report["summary"]["certificates"]["total"], 2_000);
    assert_eq!(report["summary"]["certificates"]["sithsProduction"], 800);
    let size = std::fs::metadata(&html)?.len();
    println!(
        "2 000 certificates: sithsctl audit (read, classify, JSON and HTML) {:.2} s, report {} KiB",
        took.as_secs_f64(),
        size / 1024
    );
    assert!(size < 4 * 1024 * 1024, "report is {size} bytes");

    let started = Instant::now();
    let r = render(&html, 1280, 2400)?;
    println!(
        "chromium screenshot and DOM: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    check_rendered(&r, 2_000, NOW.parse()?)?;
    // Grouped and paged: 40 namespaces of 50, closed so the page opens short; no chart
    // taller than a page of rows.
    let groups = r.dom.matches("<details class=\"group\"").count();
    assert_eq!(groups, 40);
    assert_eq!(r.dom.matches("<details class=\"group\" open").count(), 0);
    let rows = r.dom.matches("<tr class=\"finding ").count();
    let findings = report["findings"].as_array().unwrap().len();
    assert_eq!(rows, findings);
    Ok(())
}
