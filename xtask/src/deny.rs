//! The supply-chain policy (`deny.toml`) checked with cargo-deny: licences, bans and
//! sources offline in `cargo xtask test`; advisories (the RustSec database, network) on
//! request. cargo-deny is installed from crates.io once per version into the tool cache,
//! as the Go-built test tools are.

use std::{fs, path::PathBuf, process::Command, time::Instant};

use anyhow::{Context, Result, bail};
use e2e::controlplane::cache_root;

/// Version of cargo-deny installed; also the cache key.
pub const CARGO_DENY_VERSION: &str = "0.20.2";

/// `<cache>/cargo-deny/<version>/bin/cargo-deny`.
pub fn cargo_deny_path() -> PathBuf {
    cache_root()
        .join("cargo-deny")
        .join(CARGO_DENY_VERSION)
        .join("bin/cargo-deny")
}

/// Installs cargo-deny (`cargo install --locked`, a few minutes on a cold machine) unless
/// the cache holds this version.
pub fn ensure_cargo_deny() -> Result<PathBuf> {
    let path = cargo_deny_path();
    if path.is_file() {
        return Ok(path);
    }
    let base = cache_root().join("cargo-deny");
    let root = base.join(CARGO_DENY_VERSION);
    // Installed into a temporary root, renamed when complete.
    let partial = base.join(format!(
        "{CARGO_DENY_VERSION}.{}.partial",
        std::process::id()
    ));
    eprintln!(
        "[cargo-deny] installing cargo-deny {CARGO_DENY_VERSION} from crates.io into {} (the first install takes minutes)",
        root.display()
    );
    let started = Instant::now();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "--locked", "--quiet", "cargo-deny", "--version"])
        .arg(CARGO_DENY_VERSION)
        .arg("--root")
        .arg(&partial)
        .arg("--target-dir")
        .arg(base.join("build"))
        .status()
        .context("running cargo install cargo-deny")?;
    if !status.success() {
        bail!("cargo install cargo-deny {CARGO_DENY_VERSION} failed: {status}");
    }
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    fs::rename(&partial, &root)?;
    // The build folder is only needed for the install.
    let _ = fs::remove_dir_all(base.join("build"));
    eprintln!(
        "[cargo-deny] installed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// `cargo deny check` of `deny.toml`: licences, bans and sources with no network (the
/// lock file and the local registry cache are enough), or advisories, which fetch the
/// RustSec database.
pub fn check(workspace: &std::path::Path, advisories: bool) -> Result<()> {
    let bin = ensure_cargo_deny()?;
    let mut cmd = Command::new(bin);
    cmd.current_dir(workspace).arg("deny");
    if advisories {
        cmd.args(["--locked", "check", "--hide-inclusion-graph", "advisories"]);
    } else {
        cmd.args([
            "--offline",
            "--locked",
            "check",
            "--hide-inclusion-graph",
            "licenses",
            "bans",
            "sources",
        ]);
    }
    let status = cmd.status().context("running cargo-deny")?;
    if !status.success() {
        bail!("cargo deny check failed ({status}): see deny.toml for the policy");
    }
    Ok(())
}
