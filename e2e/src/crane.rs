//! `crane` and `registry` from go-containerregistry (`e2e/crane/go.mod`), built into the
//! version-keyed cache: `cargo xtask image` assembles the operator's OCI image with crane,
//! and the tests push and pull it through a real OCI registry on loopback.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{
    controlplane::{cache_root, watchdog},
    gobuild,
};

/// Version of `github.com/google/go-containerregistry` built; also the cache key.
pub const GGCR_VERSION: &str = "v0.22.1";

const BINARIES: [(&str, &str); 2] = [
    ("crane", "github.com/google/go-containerregistry/cmd/crane"),
    (
        "registry",
        "github.com/google/go-containerregistry/cmd/registry",
    ),
];

/// Where the built binaries are cached: `<cache>/crane/<version>/`.
pub fn crane_dir() -> PathBuf {
    cache_root().join("crane").join(GGCR_VERSION)
}

/// Builds `crane` and `registry` unless the cache holds them for this version. Returns the
/// path of `crane` (`registry` is beside it).
pub fn ensure_crane() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build() -> Result<PathBuf> {
    let dir = crane_dir();
    let stamp = dir.join(".complete");
    let want = gobuild::fingerprint(
        "e2e/crane",
        &["go.mod", "go.sum"],
        &format!("go-containerregistry {GGCR_VERSION} modules"),
    )?;
    let outputs: Vec<PathBuf> = BINARIES.iter().map(|(b, _)| dir.join(b)).collect();
    let refs: Vec<&Path> = outputs.iter().map(PathBuf::as_path).collect();
    if !gobuild::is_cached(&refs, &stamp, &want) {
        for ((_, package), out) in BINARIES.iter().zip(&outputs) {
            gobuild::go_build("crane", "e2e/crane", package, "-s -w", out)?;
        }
        fs::write(&stamp, want)?;
    }
    Ok(dir.join("crane"))
}

/// Runs `crane args`; returns stdout, fails with stderr. Registries on loopback are spoken
/// to over plain HTTP (`--insecure`).
pub fn crane(args: &[&str]) -> Result<String> {
    let out = Command::new(ensure_crane()?)
        .args(args)
        // No credentials of the machine's user: the test registry needs none.
        .env(
            "DOCKER_CONFIG",
            cache_root().join("crane").join("docker-config"),
        )
        .output()
        .context("running crane")?;
    if !out.status.success() {
        bail!(
            "crane {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A running in-memory OCI registry (go-containerregistry's `registry`) on 127.0.0.1.
/// Killed when dropped, and by a watchdog when the test process dies.
#[derive(Debug)]
pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub host: String,
    child: Child,
}

impl Registry {
    /// Starts the registry on a port the kernel picks; returns once it serves.
    pub fn start() -> Result<Self> {
        let bin = ensure_crane()?.with_file_name("registry");
        let mut child = Command::new(bin)
            .args(["-port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting registry")?;
        watchdog(&[child.id()], None)?;
        let stderr = child.stderr.take().context("registry stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(port) = line.split("serving on port ").nth(1) {
                    let _ = tx.send(port.trim().to_string());
                    sent = true;
                }
                // Keep draining so the registry never blocks on a full pipe.
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .context("registry did not report its port")?;
        let host = format!("127.0.0.1:{port}");
        let me = Self { host, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&me.host).is_err() {
            if Instant::now() > deadline {
                bail!("registry at {} does not accept connections", me.host);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(me)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
