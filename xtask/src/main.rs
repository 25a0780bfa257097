//! Project tasks: `cargo xtask test | demo | cluster up|down | crdgen [--check] | image | deny [--advisories] | controlplane`.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use e2e::controlplane::{self, ControlPlane, Options};

mod deny;
mod migration;
mod modcheck;

#[derive(Debug, Parser)]
#[command(about = "siths-operator project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Every check: rustfmt, clippy, CRD drift, unit tests, e2e tests on a real control plane.
    Test {
        /// Arguments passed to the e2e test binaries (a test name filter, for example).
        #[arg(trailing_var_arg = true)]
        filter: Vec<String>,
    },
    /// Start a local control plane, the operator and the examples; print what happened.
    Demo {
        /// Leave the control plane and operator running and print the KUBECONFIG export.
        #[arg(long)]
        keep: bool,
    },
    /// Start or stop a local control plane in the background.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Write the CRD YAML under crds/ from the Rust types (or check it is current).
    Crdgen {
        /// Fail if the committed YAML differs from what the types generate.
        #[arg(long)]
        check: bool,
    },
    /// Build (or find in the cache) the Go-built test tools: the control plane, helm,
    /// Pebble and cert-manager.
    Controlplane,
    /// Fault scenarios at full size (crashes, outages, conflicts, tampering); writes
    /// RELIABILITY.md.
    Chaos,
    /// Benchmarks at scale (B0-B5, B7) against the real control plane; writes BENCHMARKS.md.
    Bench {
        /// Scenarios to run (B0 ... B5, B7; default all) and `--runs N`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check the module rules of the operator crate (no import cycles; the pure layers
    /// import no controllers).
    Modules,
    /// Regenerate examples/migration/ (certificates from stand-in SITHS CAs).
    MigrationExample,
    /// The operator's OCI image without Docker: a static release binary, one layer,
    /// assembled with crane into target/image/oci (OCI layout) with a CycloneDX SBOM.
    Image,
    /// The supply-chain policy of deny.toml with cargo-deny: licences, bans and sources
    /// (offline, part of `test`), or the RustSec advisories (needs the network).
    Deny {
        /// Check the advisories instead (fetches the RustSec database).
        #[arg(long)]
        advisories: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterAction {
    /// Start etcd, kube-apiserver and kube-controller-manager in the background.
    Up,
    /// Stop the background control plane.
    Down,
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Test { filter } => test(&filter),
        Task::Demo { keep } => demo(keep),
        Task::Cluster {
            action: ClusterAction::Up,
        } => cluster_up(),
        Task::Cluster {
            action: ClusterAction::Down,
        } => cluster_down(),
        Task::Crdgen { check } => crdgen(check),
        Task::Chaos => chaos(),
        Task::Bench { args } => run(
            "benchmarks",
            cargo()
                .args(["bench", "-p", "e2e", "--bench", "scale", "--"])
                .args(args),
        ),
        Task::Modules => modules(),
        Task::MigrationExample => migration::write(&root().join("examples/migration")),
        Task::Controlplane => ensure_tools(),
        Task::Deny { advisories } => supply_chain(advisories),
        Task::Image => image(),
    }
}

fn root() -> PathBuf {
    controlplane::workspace_root()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(step: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {step}");
    let started = Instant::now();
    let status = cmd.status().with_context(|| format!("running {step}"))?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    eprintln!("    {step}: ok in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Builds (or finds in the cache) the Go-built test tools, all four at once: on a cold
/// machine they are most of the first run, and Go's build cache is safe to share.
fn ensure_tools() -> Result<()> {
    eprintln!(
        "==> test tools (Go-built: control plane, helm, pebble, cert-manager, crane; cargo-deny)"
    );
    let started = Instant::now();
    type Build = fn() -> Result<PathBuf>;
    let builds: [(&str, Build); 6] = [
        ("control plane", controlplane::ensure_binaries),
        ("helm", e2e::helm::ensure_helm),
        ("pebble", e2e::pebble::ensure_pebble),
        ("cert-manager", e2e::certmanager::ensure_controller),
        ("crane", e2e::crane::ensure_crane),
        ("cargo-deny", deny::ensure_cargo_deny),
    ];
    let results: Vec<(&str, Result<PathBuf>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = builds
            .iter()
            .map(|(name, build)| (*name, scope.spawn(build)))
            .collect();
        handles
            .into_iter()
            .map(|(name, h)| {
                (
                    name,
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("the {name} build panicked"))),
                )
            })
            .collect()
    });
    for (name, result) in results {
        let path = result.with_context(|| format!("building {name}"))?;
        eprintln!("    {name}: {}", path.display());
    }
    eprintln!("    tools: ok in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn image() -> Result<()> {
    eprintln!("==> OCI image (static release binary, crane, no Docker)");
    let out = root().join("target/image");
    let built = e2e::image::build(&root(), &e2e::operator::target_dir(), &out)?;
    println!("image layout: {}", built.layout.display());
    println!("digest:       {}", built.digest);
    println!("sbom:         {}", built.sbom.display());
    println!(
        "push:         crane push {} <registry>/{}:{}",
        built.layout.display(),
        e2e::image::REPOSITORY,
        built.version
    );
    Ok(())
}

fn supply_chain(advisories: bool) -> Result<()> {
    if advisories {
        eprintln!("==> supply chain: RustSec advisories (network)");
    } else {
        eprintln!("==> supply chain: licences, bans, sources (deny.toml, offline)");
    }
    deny::check(&root(), advisories)
}

fn modules() -> Result<()> {
    eprintln!("==> module rules (no import cycles; policy, pki, api import no controllers)");
    let broken = modcheck::check(&root().join("operator/src"))?;
    if !broken.is_empty() {
        bail!("module rules broken:\n  {}", broken.join("\n  "));
    }
    Ok(())
}

fn test(filter: &[String]) -> Result<()> {
    run("rustfmt", cargo().args(["fmt", "--all", "--check"]))?;
    run(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    eprintln!("==> CRD drift check");
    crdgen(true)?;
    modules()?;
    ensure_tools()?;
    supply_chain(false)?;
    run(
        "unit tests",
        cargo().args(["test", "--workspace", "--exclude", "e2e", "--all-targets"]),
    )?;
    // Binaries the e2e tests run as separate processes.
    run(
        "build operator binaries",
        cargo().args(["build", "--quiet", "-p", "siths-operator", "--bins"]),
    )?;
    // The image's static release binary (e2e/tests/registry.rs runs it from the image).
    eprintln!("==> build the image's static release binary");
    e2e::image::build_static_binary(&root(), &e2e::operator::target_dir())?;
    let mut e2e = cargo();
    e2e.args(["test", "-p", "e2e", "--tests", "--"])
        .args(filter);
    let mut result = run("e2e tests (real kube-apiserver)", &mut e2e);
    if result.is_ok() && filter.is_empty() {
        result = run(
            "benchmark smoke run (small sizes; `cargo xtask bench` for figures)",
            cargo().args(["test", "-p", "e2e", "--bench", "scale", "--", "--smoke"]),
        );
    }
    let leftovers = wait_for_no_leftovers(Duration::from_secs(10));
    result?;
    leftovers?;
    eprintln!("==> all checks passed");
    Ok(())
}

/// Processes started from the control-plane or Pebble cache or the operator binary, from
/// this workspace, that are still running: after a test run there must be none.
fn leftover_processes() -> Vec<String> {
    let bin_dir = controlplane::bin_dir();
    let pebble_dir = e2e::pebble::pebble_dir();
    let cert_manager = e2e::certmanager::controller_path();
    let target = e2e::operator::target_dir()
        .join("debug")
        .join("siths-operator");
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(exe) = std::fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        // The binary caches may be shared by several worktrees on one machine: only
        // processes started from this workspace are this run's leftovers.
        let ours = std::fs::read_link(entry.path().join("cwd"))
            .is_ok_and(|cwd| cwd.starts_with(controlplane::workspace_root()));
        if ours
            && (exe.starts_with(&bin_dir)
                || exe.starts_with(&pebble_dir)
                || exe == cert_manager
                || exe == target)
        {
            found.push(format!(
                "{} ({})",
                entry.file_name().to_string_lossy(),
                exe.display()
            ));
        }
    }
    found
}

fn wait_for_no_leftovers(timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = leftover_processes();
        if left.is_empty() {
            eprintln!(
                "    no etcd, kube-apiserver, controller-manager, operator or pebble left running"
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("processes left running after the tests: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn chaos() -> Result<()> {
    controlplane::ensure_binaries()?;
    run(
        "build operator binaries",
        cargo().args(["build", "--quiet", "-p", "siths-operator", "--bins"]),
    )?;
    let started = Instant::now();
    eprintln!("==> fault scenarios at full size (this takes about half an hour)");
    let out = cargo()
        .env("SITHS_CHAOS", "1")
        .args([
            "test",
            "-p",
            "e2e",
            "--test",
            "crash",
            "--test",
            "outage",
            "--test",
            "faults",
            "--",
            "--nocapture",
            "--test-threads=1",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !out.status.success() {
        bail!("a fault scenario failed ({})", out.status);
    }
    let mut md = String::from(
        "# Reliability\n\nFault scenarios at full size against the real kube-apiserver, etcd and\nkube-controller-manager, with the operator as a separate process. Reproduce with\n`cargo xtask chaos`; `cargo xtask test` runs the same scenarios at smoke size.\n\n",
    );
    md.push_str(&format!(
        "Run on {} cores, took {:.0} minutes.\n\n| scenario | result |\n| --- | --- |\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        started.elapsed().as_secs_f64() / 60.0
    ));
    for line in stdout.lines() {
        // The test harness may print `test name ... ` before a test's first line.
        if let Some(rest) = line
            .find("RELIABILITY | ")
            .map(|at| &line[at + "RELIABILITY | ".len()..])
        {
            let mut parts = rest.splitn(2, " | ");
            let (scenario, figure) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            md.push_str(&format!("| {scenario} | {figure} |\n"));
        }
    }
    let path = root().join("RELIABILITY.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    // Sections written by hand (fuzzing) follow the generated table.
    if let Some(idx) = existing.find("\n## ") {
        md.push_str(&existing[idx..]);
    }
    std::fs::write(&path, md)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn crdgen(check: bool) -> Result<()> {
    let dir = root().join("crds");
    std::fs::create_dir_all(&dir)?;
    let mut stale = Vec::new();
    let mut expected_files = Vec::new();
    for (file, crd) in siths_operator::api::all_crds() {
        let yaml = siths_operator::api::crd_yaml(&crd)?;
        let path = dir.join(file);
        expected_files.push(file.to_string());
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != yaml {
            if check {
                stale.push(file.to_string());
            } else {
                std::fs::write(&path, yaml)?;
                println!("wrote {}", path.display());
            }
        }
    }
    for entry in std::fs::read_dir(&dir)? {
        let name = entry?.file_name().to_string_lossy().to_string();
        if name.ends_with(".yaml") && !expected_files.contains(&name) {
            if check {
                stale.push(format!("{name} (no longer generated)"));
            } else {
                std::fs::remove_file(dir.join(&name))?;
                println!("removed {name}");
            }
        }
    }
    if !stale.is_empty() {
        bail!(
            "crds/ differs from the Rust types in operator/src/api: {stale:?}; run `cargo xtask crdgen` and commit"
        );
    }
    if check {
        eprintln!("    crds/ matches the Rust types");
    }
    Ok(())
}

fn cluster_dir() -> PathBuf {
    controlplane::cache_root().join("cluster")
}

fn pid_file() -> PathBuf {
    controlplane::cache_root().join("cluster.pids")
}

fn operator_pid_file() -> PathBuf {
    controlplane::cache_root().join("operator.pid")
}

fn cluster_up() -> Result<()> {
    if pid_file().exists() {
        cluster_down()?;
    }
    let cp = ControlPlane::start(Options {
        dir: Some(cluster_dir()),
        detached: true,
        without_controller_manager: false,
    })?;
    let kubeconfig = controlplane::cache_root().join("kubeconfig");
    std::fs::copy(&cp.kubeconfig, &kubeconfig)?;
    let pids: Vec<String> = cp.pids().iter().map(|(_, p)| p.to_string()).collect();
    std::fs::write(pid_file(), pids.join("\n"))?;
    cp.detach();
    println!("control plane running; stop it with `cargo xtask cluster down`");
    println!("export KUBECONFIG={}", kubeconfig.display());
    Ok(())
}

fn cluster_down() -> Result<()> {
    if let Ok(pid) = std::fs::read_to_string(operator_pid_file()) {
        let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
        let _ = std::fs::remove_file(operator_pid_file());
    }
    let Ok(pids) = std::fs::read_to_string(pid_file()) else {
        println!("no control plane is running");
        return Ok(());
    };
    for pid in pids.lines().rev() {
        let _ = Command::new("kill").args(["-TERM", pid]).status();
    }
    std::thread::sleep(Duration::from_secs(1));
    for pid in pids.lines() {
        let _ = Command::new("kill")
            .args(["-KILL", pid])
            .stderr(std::process::Stdio::null())
            .status();
    }
    std::fs::remove_file(pid_file())?;
    println!("control plane stopped");
    Ok(())
}

fn demo(keep: bool) -> Result<()> {
    let cp = if keep {
        ControlPlane::start(Options {
            dir: Some(cluster_dir()),
            detached: true,
            without_controller_manager: false,
        })?
    } else {
        ControlPlane::start(Options::default())?
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(demo_steps(&cp, keep))?;
    if keep {
        let kubeconfig = controlplane::cache_root().join("kubeconfig");
        std::fs::copy(&cp.kubeconfig, &kubeconfig)?;
        let pids: Vec<String> = cp.pids().iter().map(|(_, p)| p.to_string()).collect();
        std::fs::write(pid_file(), pids.join("\n"))?;
        cp.detach();
        println!("\nleft running; stop it with `cargo xtask cluster down`");
        println!("export KUBECONFIG={}", kubeconfig.display());
    }
    Ok(())
}

async fn demo_steps(cp: &ControlPlane, keep: bool) -> Result<()> {
    // The real SITHS CA certificates sit beside the project (../shared/siths-ca); the
    // operator checks them against its pinned fingerprints. Without them the Production
    // example says so in its issuer's Ready condition.
    let mut args = Vec::new();
    if let Ok(bundle) = e2e::k8s::siths_ca_bundle(cp) {
        args.push("--siths-ca-file".to_string());
        args.push(bundle.to_string_lossy().to_string());
    }
    // Pebble, Let's Encrypt's ACME test server (built for the tests), stands in for Telia's
    // ACME: it validates HTTP-01 against the operator's responder on this port.
    let http01_port = controlplane::free_port()?;
    let pebble = e2e::pebble::Pebble::start(http01_port).await?;
    println!(
        "\n==> Pebble started as the local stand-in for Telia's ACME ({})",
        pebble.directory_url
    );
    args.push("--acme-http01-port".to_string());
    args.push(http01_port.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Gateway API's CRDs (standard channel, from its Go module), for examples/gateway; before
    // the operator starts, so that it watches Gateways from the start.
    e2e::gatewayapi::install_crds(&cp.client().await?).await?;
    // As installed: the chart's ServiceAccount with the chart's RBAC, never an admin.
    let kubeconfig = e2e::rbac::operator_kubeconfig(cp)?;
    let mut operator = if keep {
        e2e::operator::OperatorProcess::start_detached(cp, &kubeconfig, &args)?
    } else {
        e2e::operator::OperatorProcess::start(cp, &kubeconfig, &args)?
    };
    operator
        .wait_for_log("watching", Duration::from_secs(60))
        .await?;
    println!("\n==> operator started and watching");
    let client = cp.client().await?;
    let applied = e2e::k8s::apply_manifests(&client, &root().join("examples")).await?;
    println!("==> applied {} objects from examples/", applied.len());
    e2e::demo::use_pebble_for_telia(&client, &pebble).await?;
    println!("==> PublicIssuer telia now orders from Pebble (EAB key in siths-operator/telia-eab)");
    e2e::demo::settle(cp).await?;
    e2e::demo::wait_user_facing(cp).await?;
    println!("\n==> what the operator did");
    for kind in e2e::demo::KINDS {
        println!("\n$ kubectl get {kind} -A");
        kubectl(cp, &["get", kind, "-A"])?;
    }
    println!("\n==> orders for the human step");
    let anchors = root().join("examples/migration/anchors");
    let production = anchors.join("stand-in-production-ca.pem");
    let test = anchors.join("stand-in-test-ca.pem");
    // The same audit as a self-contained HTML report, for the people who decide.
    let report = e2e::operator::target_dir().join("demo").join("audit.html");
    std::fs::create_dir_all(report.parent().context("report folder")?)?;
    let report = std::path::absolute(&report)?;
    let audit = [
        "audit",
        "-A",
        "--siths-ca",
        &production.to_string_lossy(),
        "--siths-test-ca",
        &test.to_string_lossy(),
        "--html",
        &report.to_string_lossy(),
    ]
    .map(String::from);
    for args in [
        vec!["orders".to_string(), "list".into(), "-A".into()],
        audit.to_vec(),
    ] {
        if args[0] == "audit" {
            println!(
                "\n==> where do we stand: the migration audit (the examples/migration export uses stand-in SITHS CAs)"
            );
        }
        println!("$ sithsctl {}", args.join(" "));
        // The audit exits 1 when --fail-on trips; without it, 0. Anything else is a failure.
        let status = Command::new(e2e::k8s::sithsctl_binary()?)
            .env("KUBECONFIG", &cp.kubeconfig)
            .args(&args)
            .status()?;
        if !status.success() {
            bail!("sithsctl {} failed", args.join(" "));
        }
    }
    println!(
        "\n==> HTML report of this cluster (open it in a browser): {}",
        report.display()
    );
    if keep {
        // The operator keeps running with the control plane; `cluster down` stops both.
        std::fs::write(operator_pid_file(), operator.pid().to_string())?;
        std::mem::forget(operator);
    } else {
        let status = operator.terminate(Duration::from_secs(20)).await?;
        println!("\n==> operator stopped on SIGTERM ({status})");
    }
    Ok(())
}

fn kubectl(cp: &ControlPlane, args: &[&str]) -> Result<()> {
    let status = Command::new("kubectl")
        .env("KUBECONFIG", &cp.kubeconfig)
        .args(args)
        .status()
        .context("running kubectl")?;
    if !status.success() {
        bail!("kubectl {} failed", args.join(" "));
    }
    Ok(())
}
