//! Building a test tool from its upstream Go module into the version-keyed cache: the
//! fingerprint of the module files (a changed go.mod rebuilds) and `go build` to a
//! temporary name, renamed when complete. Shared by helm, Pebble and cert-manager.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::controlplane::workspace_root;

/// Plain FNV-1a over `files` of the module folder `module` (relative to the workspace),
/// as the stamp text `"{label} {hash}\n"`.
pub fn fingerprint(module: &str, files: &[&str], label: &str) -> Result<String> {
    let dir = workspace_root().join(module);
    let mut h: u64 = 0xcbf29ce484222325;
    for f in files {
        for b in fs::read(dir.join(f))? {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    Ok(format!("{label} {h:016x}\n"))
}

/// Whether every one of `outputs` exists and `stamp` says `want`.
pub fn is_cached(outputs: &[&Path], stamp: &Path, want: &str) -> bool {
    outputs.iter().all(|p| p.is_file()) && fs::read_to_string(stamp).is_ok_and(|s| s == want)
}

/// `go build` of `package` in module folder `module` (relative to the workspace) with
/// `ldflags` into `out`, through a temporary name so a concurrent build never sees half a
/// file. `tag` prefixes the progress lines.
pub fn go_build(tag: &str, module: &str, package: &str, ldflags: &str, out: &Path) -> Result<()> {
    let dir = out.parent().context("output has a folder")?;
    fs::create_dir_all(dir)?;
    let name = out
        .file_name()
        .context("output has a name")?
        .to_string_lossy()
        .into_owned();
    eprintln!(
        "[{tag}] building {name} from {package} (cached in {}; the first build takes minutes)",
        dir.display()
    );
    let started = Instant::now();
    let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
    let status = Command::new("go")
        .current_dir(workspace_root().join(module))
        .env("CGO_ENABLED", "0")
        .env("GOFLAGS", "-mod=mod")
        .args(["build", "-trimpath", "-ldflags", ldflags, "-o"])
        .arg(&partial)
        .arg(package)
        .status()
        .context("running `go build` (is Go 1.26+ installed?)")?;
    if !status.success() {
        bail!("go build of {name} failed with {status}");
    }
    fs::rename(&partial, out)?;
    eprintln!(
        "[{tag}] built {name} in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Download {
    version: String,
    dir: Option<String>,
    error: Option<String>,
}

/// `go mod download` of `module` as required by the go.mod in folder `pin` (relative to the
/// workspace): the module's folder in the Go module cache (read-only). Fails unless the
/// go.mod requires `version`.
pub fn module_download(pin: &str, module: &str, version: &str) -> Result<PathBuf> {
    let out = Command::new("go")
        .current_dir(workspace_root().join(pin))
        .args(["mod", "download", "-json", module])
        .output()
        .context("running `go mod download` (is Go 1.26+ installed?)")?;
    let d: Download = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "reading `go mod download -json {module}` output:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(e) = d.error {
        bail!("go mod download {module}: {e}");
    }
    if !out.status.success() {
        bail!(
            "go mod download {module} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if d.version != version {
        bail!(
            "{pin}/go.mod requires {module} {}, expected {version}",
            d.version
        );
    }
    Ok(PathBuf::from(d.dir.context("go mod download gave no Dir")?))
}
