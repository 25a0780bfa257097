//! `sithsctl audit` over several clusters: `--context NAME` (repeatable), `--all-contexts`
//! (every context of the kubeconfig), or offline `--cluster NAME=PATH` (repeatable).
//!
//! Clusters are read concurrently, at most `--max-concurrent` at a time, each within
//! `--cluster-timeout`. A cluster that does not answer in time (or fails) is listed with
//! its error in every format and does not stop the others. Exit status: 1 when
//! `--fail-on` trips on any cluster's findings, else 2 when a cluster did not answer,
//! else 0.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use jiff::Timestamp;
use serde::Serialize;

use super::{
    audit::{AnchorArgs, AuditArgs, FleetArgs, anchors, live_inventory},
    manifests,
    output::{self, Format},
};
use crate::audit::{
    self, Finding, Inventory, Report, Severity,
    findings::{ClassCounts, SeverityCounts, Summary},
    html::ClusterAudit,
    timeline,
};

/// Exit status when a cluster did not answer (and `--fail-on` did not trip).
pub const EXIT_UNREACHABLE: i32 = 2;

enum Source {
    Context(String),
    Files(PathBuf),
}

fn sources(
    kubeconfig: Option<&std::path::Path>,
    args: &FleetArgs,
) -> anyhow::Result<Vec<(String, Source)>> {
    let mut out = Vec::new();
    for c in &args.clusters {
        let (name, path) = c
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            .with_context(|| format!("--cluster {c}: expected NAME=PATH"))?;
        out.push((name.to_string(), Source::Files(PathBuf::from(path))));
    }
    let mut contexts = args.contexts.clone();
    if args.all_contexts {
        contexts = read_kubeconfig(kubeconfig)?
            .contexts
            .into_iter()
            .map(|c| c.name)
            .collect();
        if contexts.is_empty() {
            bail!("--all-contexts: the kubeconfig has no contexts");
        }
    }
    out.extend(
        contexts
            .into_iter()
            .map(|c| (c.clone(), Source::Context(c))),
    );
    let mut names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("cluster {} named twice", w[0]);
    }
    Ok(out)
}

fn read_kubeconfig(path: Option<&std::path::Path>) -> anyhow::Result<kube::config::Kubeconfig> {
    match path {
        Some(p) => kube::config::Kubeconfig::read_from(p)
            .with_context(|| format!("reading {}", p.display())),
        None => kube::config::Kubeconfig::read().context("reading the kubeconfig"),
    }
}

async fn read_context(
    kubeconfig: Option<&std::path::Path>,
    context: &str,
    ns: Option<&str>,
    anchor_args: &AnchorArgs,
) -> anyhow::Result<(Inventory, audit::AnchorSet)> {
    let kc = read_kubeconfig(kubeconfig)?;
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options).await?;
    let client = kube::Client::try_from(config)?;
    let anchors = anchors(anchor_args, Some(&client)).await?;
    Ok((live_inventory(&client, ns).await?, anchors))
}

/// Reads and audits every cluster; one entry per cluster, in the order given.
async fn audit_all(
    kubeconfig: Option<&std::path::Path>,
    args: &AuditArgs,
    now: Timestamp,
) -> anyhow::Result<Vec<ClusterAudit>> {
    let list = sources(kubeconfig, &args.fleet)?;
    let ns = args.sources.namespace.as_deref();
    let timeout = Duration::from_secs(args.fleet.cluster_timeout);
    let offline_anchors = if list.iter().any(|(_, s)| matches!(s, Source::Files(_))) {
        Some(anchors(&args.anchors, None).await?)
    } else {
        None
    };
    let tasks = list.into_iter().map(|(name, source)| {
        let offline_anchors = offline_anchors.clone();
        async move {
            let read = async {
                match &source {
                    Source::Files(path) => {
                        let mut inv = Inventory::default();
                        manifests::load(std::slice::from_ref(path), &mut inv)?;
                        if let Some(ns) = ns {
                            inv.restrict_to_namespace(ns);
                        }
                        Ok((inv, offline_anchors.context("SITHS anchors")?))
                    }
                    Source::Context(c) => read_context(kubeconfig, c, ns, &args.anchors).await,
                }
            };
            let result = match tokio::time::timeout(timeout, read).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!(
                    "did not answer within {} s",
                    timeout.as_secs()
                )),
            };
            match result {
                Ok((inv, anchors)) => ClusterAudit {
                    certificates: timeline::certificates(&inv, &anchors, now),
                    report: Some(audit::audit(&inv, &anchors, now)),
                    name,
                    error: None,
                },
                Err(e) => ClusterAudit {
                    name,
                    report: None,
                    certificates: Vec::new(),
                    error: Some(format!("{e:#}")),
                },
            }
        }
    });
    Ok(futures::stream::iter(tasks)
        .buffered(usize::from(args.fleet.max_concurrent))
        .collect()
        .await)
}

/// A cluster in the JSON output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterStatus<'a> {
    name: &'a str,
    answered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a Summary>,
}

/// A finding labelled with its cluster.
#[derive(Debug, Serialize)]
struct ClusterFinding<'a> {
    cluster: &'a str,
    #[serde(flatten)]
    finding: &'a Finding,
}

/// The fleet report as JSON: every cluster with its status, every finding with its
/// cluster, and the summary over the clusters that answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FleetJson<'a> {
    evaluated_at: String,
    clusters: Vec<ClusterStatus<'a>>,
    findings: Vec<ClusterFinding<'a>>,
    summary: Summary,
}

/// The sum of the summaries of the clusters that answered.
pub fn total(clusters: &[ClusterAudit]) -> Summary {
    let mut t = Summary {
        certificates: ClassCounts::default(),
        findings: SeverityCounts::default(),
        ..Default::default()
    };
    for s in clusters
        .iter()
        .filter_map(|c| c.report.as_ref())
        .map(|r| &r.summary)
    {
        let c = &s.certificates;
        t.certificates.siths_production += c.siths_production;
        t.certificates.siths_test += c.siths_test;
        t.certificates.public += c.public;
        t.certificates.other += c.other;
        t.certificates.total += c.total;
        t.user_facing_siths_endpoints += s.user_facing_siths_endpoints;
        t.estimated_siths_spend_next_12_months_sek += s.estimated_siths_spend_next_12_months_sek;
        t.findings.error += s.findings.error;
        t.findings.warning += s.findings.warning;
        t.findings.info += s.findings.info;
    }
    t
}

fn write(
    clusters: &[ClusterAudit],
    format: Format,
    now: Timestamp,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    match format {
        Format::Html => out.write_all(audit::html::render(clusters, now)?.as_bytes())?,
        Format::Json => {
            let mut findings: Vec<ClusterFinding<'_>> = clusters
                .iter()
                .flat_map(|c| {
                    c.report
                        .iter()
                        .flat_map(|r| &r.findings)
                        .map(|f| ClusterFinding {
                            cluster: &c.name,
                            finding: f,
                        })
                })
                .collect();
            findings.sort_by_key(|f| f.finding.severity);
            let json = FleetJson {
                evaluated_at: crate::policy::rfc3339(now),
                clusters: clusters
                    .iter()
                    .map(|c| ClusterStatus {
                        name: &c.name,
                        answered: c.error.is_none(),
                        error: c.error.as_deref(),
                        summary: c.report.as_ref().map(|r| &r.summary),
                    })
                    .collect(),
                findings,
                summary: total(clusters),
            };
            serde_json::to_writer_pretty(&mut *out, &json)?;
            writeln!(out)?;
        }
        Format::Table | Format::Markdown => {
            let md = format == Format::Markdown;
            for c in clusters {
                match (&c.report, &c.error) {
                    (Some(r), _) => {
                        if md {
                            writeln!(out, "## Cluster `{}`\n", c.name)?;
                        } else {
                            writeln!(out, "=== cluster {} ===\n", c.name)?;
                        }
                        output::report(r, format, output::colour_stdout() && !md, out)?;
                        writeln!(out)?;
                    }
                    (None, e) => {
                        let e = e.as_deref().unwrap_or("no report");
                        if md {
                            writeln!(
                                out,
                                "## Cluster `{}`\n\n**Did not answer:** {}\n",
                                c.name,
                                e.replace('\n', " ")
                            )?;
                        } else {
                            writeln!(out, "=== cluster {} ===\n\nDID NOT ANSWER: {e}\n", c.name)?;
                        }
                    }
                }
            }
            let t = total(clusters);
            let down: Vec<&str> = clusters
                .iter()
                .filter(|c| c.error.is_some())
                .map(|c| c.name.as_str())
                .collect();
            let line = format!(
                "Fleet: {} clusters, {} answered{}; {} certificates, {} user-facing SITHS endpoints, {} error, {} warning, {} info, estimated SITHS spend {}",
                clusters.len(),
                clusters.len() - down.len(),
                if down.is_empty() {
                    String::new()
                } else {
                    format!(", not answering: {}", down.join(", "))
                },
                t.certificates.total,
                t.user_facing_siths_endpoints,
                t.findings.error,
                t.findings.warning,
                t.findings.info,
                output::sek(t.estimated_siths_spend_next_12_months_sek)
            );
            if md {
                writeln!(out, "**{line}**")?;
            } else {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

/// Runs a fleet audit; returns the exit status (see the module documentation).
pub async fn run(
    kubeconfig: Option<&std::path::Path>,
    args: &AuditArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<i32> {
    let now = args.sources.now.unwrap_or_else(Timestamp::now);
    let clusters = audit_all(kubeconfig, args, now).await?;
    if let Some(path) = &args.html {
        std::fs::write(path, audit::html::render(&clusters, now)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    write(&clusters, args.output, now, out)?;
    let fails = args.fail_on.is_some_and(|t| {
        let t: Severity = t.into();
        clusters
            .iter()
            .filter_map(|c| c.report.as_ref())
            .any(|r: &Report| r.fails(t))
    });
    Ok(if fails {
        1
    } else if clusters.iter().any(|c| c.error.is_some()) {
        EXIT_UNREACHABLE
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(clusters: &[&str]) -> FleetArgs {
        FleetArgs {
            contexts: Vec::new(),
            all_contexts: false,
            clusters: clusters.iter().map(|s| s.to_string()).collect(),
            cluster_timeout: 30,
            max_concurrent: 4,
        }
    }

    #[test]
    fn offline_clusters_are_name_equals_path_and_named_once() {
        let list = sources(None, &args(&["east=a.yaml", "west=dir/"])).unwrap();
        let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["east", "west"]);
        assert!(matches!(&list[1].1, Source::Files(p) if p == &PathBuf::from("dir/")));
        for bad in ["east", "=a.yaml", "east="] {
            let e = sources(None, &args(&[bad])).err().unwrap();
            assert!(e.to_string().contains("NAME=PATH"), "{e}");
        }
        let e = sources(None, &args(&["a=x", "a=y"])).err().unwrap();
        assert_eq!(e.to_string(), "cluster a named twice");
        assert!(args(&["a=x"]).active() && !args(&[]).active());
    }

    #[test]
    fn the_fleet_total_adds_the_clusters_that_answered() {
        let summary = |n: usize, sek: u64| Summary {
            certificates: ClassCounts {
                siths_production: n,
                total: n,
                ..Default::default()
            },
            user_facing_siths_endpoints: n,
            estimated_siths_spend_next_12_months_sek: sek,
            findings: SeverityCounts {
                error: n,
                warning: 1,
                info: 0,
            },
        };
        let cluster = |name: &str, s: Option<Summary>| ClusterAudit {
            name: name.into(),
            error: s.is_none().then(|| "down".to_string()),
            report: s.map(|summary| Report {
                evaluated_at: String::new(),
                findings: Vec::new(),
                summary,
            }),
            certificates: Vec::new(),
        };
        let t = total(&[
            cluster("a", Some(summary(2, 7_000))),
            cluster("b", Some(summary(3, 3_500))),
            cluster("c", None),
        ]);
        let mut want = summary(5, 10_500);
        want.findings.warning = 2;
        assert_eq!(t, want);
    }
}
