//! The operator as a separate process, so tests can kill it and benchmarks can measure it.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::controlplane::{ControlPlane, watchdog, workspace_root};

/// Path of the `siths-operator` binary, built once per test binary so it is never stale.
pub fn binary() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build("siths-operator").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Builds one binary of the operator package with the cargo running the tests.
pub fn build(bin: &str) -> Result<PathBuf> {
    build_profile(bin, false)
}

/// Builds one binary of the operator package, optimised when `release`.
pub fn build_profile(bin: &str, release: bool) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root()).args([
        "build",
        "--quiet",
        "-p",
        "siths-operator",
        "--bin",
        bin,
    ]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of {bin} failed: {status}");
    }
    let path = target_dir()
        .join(if release { "release" } else { "debug" })
        .join(bin);
    if !path.is_file() {
        bail!("{} missing after build", path.display());
    }
    Ok(path)
}

/// Cargo's target folder: `$CARGO_TARGET_DIR` or `target/` of the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A running operator process. Killed on drop and when the test process dies.
#[derive(Debug)]
pub struct OperatorProcess {
    child: Child,
    /// File receiving the operator's stdout and stderr.
    pub log: PathBuf,
    /// Port of the operator's /metrics, /healthz and /readyz.
    pub http_port: u16,
}

impl OperatorProcess {
    /// Starts the operator against `kubeconfig` with extra `args`; it dies with this process.
    pub fn start(cp: &ControlPlane, kubeconfig: &Path, args: &[&str]) -> Result<Self> {
        let me = Self::start_detached(cp, kubeconfig, args)?;
        watchdog(&[me.child.id()], None)?;
        Ok(me)
    }

    /// Starts the operator so that it outlives this process (`cargo xtask demo --keep`).
    pub fn start_detached(cp: &ControlPlane, kubeconfig: &Path, args: &[&str]) -> Result<Self> {
        Self::spawn(
            cp,
            &binary()?,
            kubeconfig,
            args,
            // SITHS_E2E_OPERATOR_LOG overrides the filter (kube_client=debug shows every
            // request, for a test that hangs).
            &std::env::var("SITHS_E2E_OPERATOR_LOG")
                .unwrap_or_else(|_| "info,siths_operator=debug".into()),
        )
    }

    /// Starts a given operator binary (a release build, for benchmarks) with `rust_log`;
    /// it dies with this process.
    pub fn start_with(
        cp: &ControlPlane,
        bin: &Path,
        kubeconfig: &Path,
        args: &[&str],
        rust_log: &str,
    ) -> Result<Self> {
        let me = Self::spawn(cp, bin, kubeconfig, args, rust_log)?;
        watchdog(&[me.child.id()], None)?;
        Ok(me)
    }

    fn spawn(
        cp: &ControlPlane,
        bin: &Path,
        kubeconfig: &Path,
        args: &[&str],
        rust_log: &str,
    ) -> Result<Self> {
        // Never the admin: every operator runs as the chart's ServiceAccount
        // (crate::rbac) or another identity bound to the chart's roles.
        if kubeconfig == cp.kubeconfig {
            bail!(
                "the operator must not run as the admin (system:masters); use e2e::rbac::operator_kubeconfig"
            );
        }
        let log = cp.dir.join(format!(
            "operator-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ));
        let out = fs::File::create(&log)?;
        // A free port unless the caller chose one: operators of one test binary run side
        // by side.
        let http_port = match args.iter().position(|a| *a == "--http-port") {
            Some(i) => args
                .get(i + 1)
                .and_then(|p| p.parse().ok())
                .context("--http-port needs a port")?,
            None => crate::controlplane::free_port()?,
        };
        // SITHS_E2E_OPERATOR_WRAPPER runs the operator under a profiler, for example
        // `heaptrack -o /tmp/operator`: the command and its arguments, then the binary.
        let mut cmd = match std::env::var("SITHS_E2E_OPERATOR_WRAPPER") {
            Ok(wrapper) if !wrapper.trim().is_empty() => {
                let mut words = wrapper.split_whitespace();
                let mut cmd = Command::new(words.next().unwrap_or_default());
                cmd.args(words).arg(bin);
                cmd
            }
            _ => Command::new(bin),
        };
        if !args.contains(&"--http-port") {
            cmd.args(["--http-port", &http_port.to_string()]);
        }
        // The same for the ACME HTTP-01 responder; a test that needs it passes the port
        // its Pebble validates on.
        if !args.contains(&"--acme-http01-port") {
            cmd.args([
                "--acme-http01-port",
                &crate::controlplane::free_port()?.to_string(),
            ]);
        }
        let child = cmd
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            // One leader identity per test binary, as one pod keeps its name across
            // container restarts: a restarted operator resumes its own lease at once.
            // Tests of leader election pass --leader-identity.
            .env("POD_NAME", format!("e2e-{}", std::process::id()))
            .env("RUST_LOG", rust_log)
            .env("SITHS_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting siths-operator")?;
        Ok(Self {
            child,
            log,
            http_port,
        })
    }

    /// GETs `path` from the operator's HTTP endpoints: `(status code, body)`.
    pub async fn http_get(&self, path: &str) -> Result<(u16, String)> {
        use http_body_util::BodyExt;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let uri: http::Uri = format!("http://127.0.0.1:{}{path}", self.http_port).parse()?;
        let response = client.get(uri).await?;
        let code = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((code, String::from_utf8(body.to_vec())?))
    }

    /// Sends SIGSTOP: the process freezes, as a stalled node or a long GC pause would.
    pub fn pause(&self) -> Result<()> {
        self.signal("STOP")
    }

    /// Sends SIGCONT to a paused process.
    pub fn resume(&self) -> Result<()> {
        self.signal("CONT")
    }

    /// Everything the operator has logged so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub async fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.output().contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "operator exited with {status} before logging {needle:?}:\n{}",
                    self.output()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "operator did not log {needle:?} within {timeout:?}:\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.signal("TERM")?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let log = self.output();
                let lines: Vec<&str> = log.lines().collect();
                bail!(
                    "operator did not exit within {timeout:?} of SIGTERM; last log lines:\n{}",
                    lines[lines.len().saturating_sub(15)..].join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) -> Result<()> {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -{sig} failed");
        }
        Ok(())
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
