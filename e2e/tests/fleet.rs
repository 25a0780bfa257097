//! `sithsctl audit` over a fleet: two real control planes and a third context whose
//! server accepts connections and never answers. One report with both clusters'
//! findings (each labelled with its cluster), the third listed as not answering, exit
//! status 2 (1 with `--fail-on` tripping), in JSON, table and HTML.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use e2e::{
    ControlPlane, Options,
    k8s::{apply_manifests, sithsctl_output},
};
use serde_json::{Value, json};

const NOW: &str = "2026-06-01T00:00:00Z";

fn example() -> PathBuf {
    e2e::controlplane::workspace_root().join("examples/migration")
}

fn anchor_args() -> Vec<String> {
    let a = example().join("anchors");
    vec![
        "--siths-ca".into(),
        a.join("stand-in-production-ca.pem").display().to_string(),
        "--siths-test-ca".into(),
        a.join("stand-in-test-ca.pem").display().to_string(),
    ]
}

fn run(kubeconfig: &Path, args: &[&str]) -> Result<(i32, String, String)> {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(anchor_args());
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = sithsctl_output(kubeconfig, &all)?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

/// One context of `kubeconfig` (as the harness writes it), renamed `name`, with its
/// server replaced when `server` is given.
fn context_of(
    kubeconfig: &Path,
    name: &str,
    server: Option<&str>,
) -> Result<(Value, Value, Value)> {
    let kc: Value = serde_yaml::from_str(&std::fs::read_to_string(kubeconfig)?)?;
    let mut cluster = kc["clusters"][0].clone();
    let mut user = kc["users"][0].clone();
    cluster["name"] = json!(name);
    if let Some(s) = server {
        cluster["cluster"]["server"] = json!(s);
    }
    user["name"] = json!(name);
    let context = json!({"name": name, "context": {"cluster": name, "user": name}});
    Ok((cluster, user, context))
}

/// The migration export reduced to namespace `ns` (and that Namespace).
fn export_of_namespace(ns: &str, dir: &Path) -> Result<PathBuf> {
    let export: Value = serde_yaml::from_str(&std::fs::read_to_string(
        example().join("cluster-export.yaml"),
    )?)?;
    let items: Vec<Value> = export["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|i| {
            i["metadata"]["namespace"] == ns
                || (i["kind"] == "Namespace" && i["metadata"]["name"] == ns)
        })
        .cloned()
        .collect();
    let path = dir.join(format!("{ns}.yaml"));
    std::fs::write(
        &path,
        serde_yaml::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": items}))?,
    )?;
    Ok(path)
}

/// The findings of an offline audit of `file`, each labelled with `cluster`.
fn offline_findings(file: &Path, cluster: &str) -> Result<Vec<Value>> {
    let (code, json, stderr) = run(
        Path::new("/nonexistent"),
        &[
            "audit",
            "--now",
            NOW,
            "-o",
            "json",
            "-f",
            &file.display().to_string(),
        ],
    )?;
    anyhow::ensure!(code == 0, "{stderr}");
    let report: Value = serde_json::from_str(&json)?;
    Ok(report["findings"]
        .as_array()
        .context("findings")?
        .iter()
        .map(|f| {
            let mut f = f.clone();
            f["cluster"] = json!(cluster);
            f
        })
        .collect())
}

#[tokio::test]
async fn two_clusters_and_one_that_does_not_answer() -> Result<()> {
    let east = e2e::shared();
    let west = ControlPlane::start(Options {
        without_controller_manager: true,
        ..Options::default()
    })?;
    let dir = tempfile::tempdir()?;
    // east: the whole migration export; west: only its remiss namespace. Both hold
    // Gateway API objects.
    e2e::gatewayapi::install_crds(&east.client().await?).await?;
    e2e::gatewayapi::install_crds(&west.client().await?).await?;
    apply_manifests(&east.client().await?, &example()).await?;
    let remiss_dir = dir.path().join("west");
    std::fs::create_dir(&remiss_dir)?;
    let remiss = export_of_namespace("remiss", &remiss_dir)?;
    apply_manifests(&west.client().await?, &remiss_dir).await?;

    // A server that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let silent_url = format!("https://{}", silent.local_addr()?);
    let mut clusters = Vec::new();
    let mut users = Vec::new();
    let mut contexts = Vec::new();
    for (kc, name, server) in [
        (&east.kubeconfig, "east", None),
        (&west.kubeconfig, "west", None),
        (&east.kubeconfig, "gone", Some(silent_url.as_str())),
    ] {
        let (c, u, x) = context_of(kc, name, server)?;
        clusters.push(c);
        users.push(u);
        contexts.push(x);
    }
    let fleet_kc = dir.path().join("fleet-kubeconfig");
    std::fs::write(
        &fleet_kc,
        serde_yaml::to_string(&json!({"apiVersion": "v1", "kind": "Config",
            "clusters": clusters, "users": users, "contexts": contexts, "current-context": "east"}))?,
    )?;

    let html = dir.path().join("fleet.html");
    let html_arg = html.display().to_string();
    let fleet = [
        "audit",
        "--context",
        "east",
        "--context",
        "west",
        "--context",
        "gone",
        "--cluster-timeout",
        "5",
        "--now",
        NOW,
    ];
    let started = Instant::now();
    let mut args = fleet.to_vec();
    args.extend(["-o", "json", "--html", &html_arg]);
    let (code, json, stderr) = run(&fleet_kc, &args)?;
    let took = started.elapsed();
    assert_eq!(code, 2, "a cluster did not answer: exit 2\n{stderr}");
    println!(
        "fleet of 3 (one silent, timeout 5 s) audited in {:.1} s",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let report: Value = serde_json::from_str(&json)?;

    let status: Vec<(String, bool)> = report["clusters"]
        .as_array()
        .context("clusters")?
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["answered"] == true,
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            ("east".into(), true),
            ("west".into(), true),
            ("gone".into(), false)
        ]
    );
    let gone = &report["clusters"][2]["error"];
    assert!(
        gone.as_str().unwrap().contains("did not answer within 5 s"),
        "{gone}"
    );

    // Both clusters' findings, each labelled, the same as their offline audits.
    let mut want = offline_findings(&example().join("cluster-export.yaml"), "east")?;
    want.extend(offline_findings(&remiss, "west")?);
    let mut got: Vec<Value> = report["findings"].as_array().unwrap().clone();
    let key = |f: &Value| serde_json::to_string(f).unwrap();
    want.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, want);
    assert!(got.iter().any(|f| f["cluster"] == "west"));
    assert_eq!(report["summary"]["certificates"]["total"], 8 + 1);

    // The table and the HTML say it too.
    let mut args = fleet.to_vec();
    args.extend(["--fail-on", "error"]);
    let (code, table, _) = run(&fleet_kc, &args)?;
    assert_eq!(
        code, 1,
        "--fail-on tripping wins over the unreachable cluster"
    );
    assert!(table.contains("=== cluster west ==="), "{table}");
    assert!(
        table.contains("DID NOT ANSWER: did not answer within 5 s"),
        "{table}"
    );
    assert!(table.contains("not answering: gone"), "{table}");
    let page = std::fs::read_to_string(&html)?;
    assert!(page.contains("did not answer:</span> did not answer within 5 s"));
    assert!(page.contains("<td class=\"cluster\">west</td>"));

    // --all-contexts: the same three.
    let (code, json, _) = run(
        &fleet_kc,
        &[
            "audit",
            "--all-contexts",
            "--cluster-timeout",
            "5",
            "--now",
            NOW,
            "-o",
            "json",
        ],
    )?;
    assert_eq!(code, 2);
    let all: Value = serde_json::from_str(&json)?;
    assert_eq!(all["clusters"].as_array().unwrap().len(), 3);
    drop(silent);
    Ok(())
}
