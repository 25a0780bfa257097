//! A real Kubernetes control plane for tests: etcd, kube-apiserver and
//! kube-controller-manager built from their upstream Go modules (see
//! `e2e/controlplane/go.mod`) and started on free loopback ports.

use std::{
    fs,
    io::Write,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Kubernetes version of the control plane; also the cache key of the built binaries.
pub const KUBERNETES_VERSION: &str = "v1.35.4";
/// The etcd the Kubernetes release requires (`go.etcd.io/etcd/server/v3`).
pub const ETCD_VERSION: &str = "v3.6.5";
/// Namespace of the operator (and its leader Lease), created with the control plane.
pub const OPERATOR_NAMESPACE: &str = "siths-operator";
const BINARIES: [&str; 3] = ["etcd", "kube-apiserver", "kube-controller-manager"];

/// Root of the Cargo workspace.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e has a parent")
        .to_path_buf()
}

/// Where built control-plane binaries are cached: `$SITHS_CONTROLPLANE_CACHE` or
/// `target/controlplane/`, one folder per Kubernetes version.
pub fn cache_root() -> PathBuf {
    std::env::var_os("SITHS_CONTROLPLANE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("controlplane"))
}

/// The folder holding the binaries for [`KUBERNETES_VERSION`].
pub fn bin_dir() -> PathBuf {
    cache_root().join(KUBERNETES_VERSION)
}

fn stamp_path() -> PathBuf {
    bin_dir().join(".complete")
}

fn stamp_contents() -> Result<String> {
    let go_sum = fs::read(workspace_root().join("e2e/controlplane/go.sum"))?;
    let go_mod = fs::read(workspace_root().join("e2e/controlplane/go.mod"))?;
    // Plain FNV-1a: a stable fingerprint of the module files, so a changed go.mod rebuilds.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in go_mod.iter().chain(go_sum.iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    Ok(format!(
        "{KUBERNETES_VERSION} etcd {ETCD_VERSION} modules {h:016x}\n"
    ))
}

/// Builds etcd, kube-apiserver and kube-controller-manager unless the cache already holds
/// them for this version. Prints progress; the first build takes several minutes.
pub fn ensure_binaries() -> Result<PathBuf> {
    let dir = bin_dir();
    let want = stamp_contents()?;
    let complete = fs::read_to_string(stamp_path()).is_ok_and(|s| s == want)
        && BINARIES.iter().all(|b| dir.join(b).is_file());
    if complete {
        return Ok(dir);
    }
    fs::create_dir_all(&dir)?;
    let module = workspace_root().join("e2e/controlplane");
    let ldflags = format!(
        "-s -w -X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION} \
         -X k8s.io/component-base/version.gitMajor=1 \
         -X k8s.io/component-base/version.gitMinor=35 \
         -X k8s.io/component-base/version.gitTreeState=clean"
    );
    let builds: [(&str, &str); 3] = [
        ("etcd", "go.etcd.io/etcd/server/v3"),
        ("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
        (
            "kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
        ),
    ];
    for (name, package) in builds {
        let started = Instant::now();
        eprintln!(
            "[controlplane] building {name} {} from {package} (cached in {}; the first build takes minutes)",
            if name == "etcd" {
                ETCD_VERSION
            } else {
                KUBERNETES_VERSION
            },
            dir.display()
        );
        // `-v` prints each package as it compiles: progress rather than silence.
        let status = Command::new("go")
            .current_dir(&module)
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-mod=mod")
            .args([
                "build",
                "-v",
                "-trimpath",
                "-pgo=off",
                "-tags",
                "selinux,notest",
            ])
            .arg("-ldflags")
            .arg(&ldflags)
            .arg("-o")
            .arg(dir.join(name))
            .arg(package)
            .status()
            .context("running `go build` (is Go installed?)")?;
        if !status.success() {
            bail!("go build of {name} failed with {status}");
        }
        eprintln!(
            "[controlplane] built {name} in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    fs::write(stamp_path(), want)?;
    Ok(dir)
}

/// A port that was free a moment ago on 127.0.0.1, for a server another process binds.
///
/// It is drawn at random from below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`), not from `bind(0)`: a port from that range can be
/// taken by any outgoing connection between this check and the server's bind (a CI run
/// lost kube-apiserver's port that way), or while a component is stopped for an outage
/// test. A port is never handed out twice by one process.
pub fn free_port() -> Result<u16> {
    static GIVEN: Mutex<std::collections::BTreeSet<u16>> =
        Mutex::new(std::collections::BTreeSet::new());
    let (low, high) = port_pool();
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..500 {
        let port = low + (random_u64() % u64::from(high - low)) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    bail!("no free port in {low}..{high} after 500 tries")
}

/// Ports `[low, high)` below the ephemeral range, at most 12 000 of them, never below 1024.
fn port_pool() -> (u16, u16) {
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    port_pool_below(ephemeral_low)
}

fn port_pool_below(ephemeral_low: u16) -> (u16, u16) {
    if ephemeral_low >= 2048 {
        (
            ephemeral_low.saturating_sub(12_000).max(1024),
            ephemeral_low,
        )
    } else {
        // The ephemeral range starts low: use the ports above the usual one instead.
        (61_000, 65_535)
    }
}

/// A random number from the standard library's per-process random hash keys.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

/// Certificates of a running control plane: its CA signs serving and client certificates.
pub struct Pki {
    ca_key: KeyPair,
    ca_params: CertificateParams,
    /// The CA certificate (PEM), trusted by kubeconfigs.
    pub ca_pem: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

impl Pki {
    fn new() -> Result<Self> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "siths-operator e2e control plane CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_pem = ca_params.self_signed(&ca_key)?.pem();
        Ok(Self {
            ca_key,
            ca_params,
            ca_pem,
        })
    }

    fn issue(&self, params: CertificateParams) -> Result<(String, String)> {
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    fn serving(&self) -> Result<(String, String)> {
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse()?));
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate for `user` in `groups` (`system:masters` makes an admin).
    pub fn client(&self, user: &str, groups: &[&str]) -> Result<(String, String)> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, user);
        for g in groups {
            params.distinguished_name.push(DnType::OrganizationName, *g);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }
}

/// A running control plane. Processes are killed when it is dropped, and by a watchdog
/// process when the owning process dies in any other way (panic, SIGKILL, Ctrl-C).
#[derive(Debug)]
pub struct ControlPlane {
    /// Working folder (certificates, etcd data, logs, kubeconfig).
    pub dir: PathBuf,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// The apiserver's audit log (JSON lines, write requests only).
    pub audit_log: PathBuf,
    /// Seconds from start to a ready apiserver with CRDs installed.
    pub startup_seconds: f64,
    pki: Pki,
    children: Mutex<Vec<(String, Child)>>,
    commands:
        Mutex<std::collections::HashMap<String, (std::ffi::OsString, Vec<std::ffi::OsString>)>>,
    remove_dir: bool,
    detached: bool,
}

/// How to start a control plane.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Use this folder instead of a fresh temporary one (kept after stop).
    pub dir: Option<PathBuf>,
    /// Do not start a watchdog: processes outlive this process (`cargo xtask cluster up`).
    pub detached: bool,
    /// Skip kube-controller-manager.
    pub without_controller_manager: bool,
}

/// Writes by everyone; reads (not watches) by the operator's user too, so benchmarks can
/// count what the operator asks for.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [\"RequestReceived\"]
rules:
- level: Metadata
  users: [\"system:serviceaccount:siths-operator:siths-operator\"]
  verbs: [\"get\", \"list\"]
- level: None
  verbs: [\"get\", \"list\", \"watch\"]
- level: Metadata
";

impl ControlPlane {
    /// Builds (if needed) and starts etcd, kube-apiserver and kube-controller-manager,
    /// waits for `/readyz`, installs the CRDs from `crds/` and creates the operator's
    /// namespace ([`OPERATOR_NAMESPACE`]).
    ///
    /// A start whose component lost its port to another process before binding it
    /// ("address already in use") is retried on fresh ports, up to three times.
    pub fn start(opts: Options) -> Result<Self> {
        let mut attempt = 1;
        loop {
            match Self::start_once(&opts) {
                Err(e) if attempt < 3 && format!("{e:#}").contains("address already in use") => {
                    eprintln!(
                        "[controlplane] a port was taken before it was bound, starting again on others: {e:#}"
                    );
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn start_once(opts: &Options) -> Result<Self> {
        let bins = ensure_binaries()?;
        let started = Instant::now();
        let (dir, remove_dir) = match &opts.dir {
            Some(d) => {
                if d.exists() {
                    fs::remove_dir_all(d)?;
                }
                fs::create_dir_all(d)?;
                (d.clone(), false)
            }
            None => (
                tempfile::Builder::new()
                    .prefix("siths-e2e-")
                    .tempdir()?
                    .keep(),
                true,
            ),
        };
        let pki = Pki::new()?;
        let (serving_crt, serving_key) = pki.serving()?;
        let sa = KeyPair::generate()?;
        let write = |name: &str, body: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            fs::write(&p, body)?;
            Ok(p)
        };
        let ca_file = write("ca.crt", &pki.ca_pem)?;
        let serving_crt = write("apiserver.crt", &serving_crt)?;
        let serving_key = write("apiserver.key", &serving_key)?;
        let sa_file = write("sa.key", &sa.serialize_pem())?;
        let sa_pub = write("sa.pub", &sa.public_key_pem())?;
        let audit_policy = write("audit-policy.yaml", AUDIT_POLICY)?;
        let audit_log = dir.join("audit.log");

        let etcd_client = free_port()?;
        let etcd_peer = free_port()?;
        let api_port = free_port()?;
        let server = format!("https://127.0.0.1:{api_port}");

        let mut cp = Self {
            kubeconfig: dir.join("kubeconfig"),
            dir: dir.clone(),
            server: server.clone(),
            audit_log: audit_log.clone(),
            startup_seconds: 0.0,
            pki,
            children: Mutex::new(Vec::new()),
            commands: Mutex::new(Default::default()),
            remove_dir,
            detached: opts.detached,
        };
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        cp.spawn(
            "etcd",
            Command::new(bins.join("etcd")).args([
                "--data-dir",
                &dir.join("etcd").to_string_lossy(),
                "--listen-client-urls",
                &etcd_url,
                "--advertise-client-urls",
                &etcd_url,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &format!("default={peer_url}"),
                "--unsafe-no-fsync",
                // 8 GiB instead of 2: B8 at 100 000 certificates keeps 300 000 objects
                // (certificate, order, Secret) and their revisions.
                "--quota-backend-bytes",
                "8589934592",
                "--log-level",
                "warn",
            ]),
        )?;
        cp.spawn(
            "kube-apiserver",
            Command::new(bins.join("kube-apiserver")).args([
                &format!("--etcd-servers={etcd_url}"),
                &format!("--cert-dir={}", dir.join("certs").display()),
                &format!("--secure-port={api_port}"),
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount",
                "--authorization-mode=RBAC",
                &format!("--service-account-issuer={server}/"),
                &format!("--service-account-key-file={}", sa_pub.display()),
                &format!("--service-account-signing-key-file={}", sa_file.display()),
                &format!("--client-ca-file={}", ca_file.display()),
                &format!("--tls-cert-file={}", serving_crt.display()),
                &format!("--tls-private-key-file={}", serving_key.display()),
                &format!("--audit-policy-file={}", audit_policy.display()),
                &format!("--audit-log-path={}", audit_log.display()),
                "--audit-log-format=json",
                "--audit-log-mode=batch",
                "--audit-log-batch-max-wait=1s",
                "--v=0",
            ]),
        )?;
        if !opts.detached {
            cp.spawn_watchdog()?;
        }
        cp.write_kubeconfig(&cp.kubeconfig, "admin", &["system:masters"])?;
        cp.wait_ready(Duration::from_secs(120))?;
        if !opts.without_controller_manager {
            let kcm_port = free_port()?;
            cp.spawn(
                "kube-controller-manager",
                Command::new(bins.join("kube-controller-manager")).args([
                    &format!("--kubeconfig={}", cp.kubeconfig.display()),
                    "--controllers=garbagecollector,namespace,clusterrole-aggregation",
                    "--leader-elect=false",
                    "--bind-address=127.0.0.1",
                    &format!("--secure-port={kcm_port}"),
                    &format!("--cert-dir={}", dir.join("kcm-certs").display()),
                    "--v=0",
                ]),
            )?;
            if !opts.detached {
                // The watchdog must know about the late child too.
                cp.spawn_watchdog()?;
            }
        }
        cp.install_crds()?;
        cp.startup_seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "[controlplane] Kubernetes {KUBERNETES_VERSION} ready at {} in {:.1} s (etcd, kube-apiserver{}; CRDs installed)",
            cp.server,
            cp.startup_seconds,
            if opts.without_controller_manager {
                ""
            } else {
                ", kube-controller-manager"
            }
        );
        Ok(cp)
    }

    fn spawn(&self, name: &str, cmd: &mut Command) -> Result<()> {
        self.commands
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                name.to_string(),
                (
                    cmd.get_program().to_owned(),
                    cmd.get_args().map(ToOwned::to_owned).collect(),
                ),
            );
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.lock_children().push((name.to_string(), child));
        Ok(())
    }

    /// Stops one component (`etcd`, `kube-apiserver`, `kube-controller-manager`) with
    /// SIGTERM, to simulate an outage; [`ControlPlane::start_component`] brings it back.
    pub fn stop_component(&self, name: &str) -> Result<()> {
        let mut children = self.lock_children();
        let idx = children
            .iter()
            .position(|(n, _)| n == name)
            .with_context(|| format!("{name} is not running"))?;
        let (_, mut child) = children.remove(idx);
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(())
    }

    /// Starts a stopped component again with the arguments it had.
    pub fn start_component(&self, name: &str) -> Result<()> {
        let (program, args) = self
            .commands
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
            .with_context(|| format!("{name} was never started"))?;
        self.spawn(name, Command::new(program).args(args))?;
        if !self.detached {
            let pid = self
                .pids()
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p)
                .context("just started")?;
            watchdog(&[pid], None)?;
        }
        Ok(())
    }

    fn spawn_watchdog(&self) -> Result<()> {
        let pids: Vec<u32> = self.pids().into_iter().map(|(_, p)| p).collect();
        watchdog(&pids, self.remove_dir.then_some(self.dir.as_path()))
    }

    /// Writes a kubeconfig for `user` in `groups`, authenticated by a client certificate.
    pub fn write_kubeconfig(&self, path: &Path, user: &str, groups: &[&str]) -> Result<()> {
        let (crt, key) = self.pki.client(user, groups)?;
        let b64 = |s: &str| base64_encode(s.as_bytes());
        let body = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    client-certificate-data: {crt}
    client-key-data: {key}
contexts:
- name: e2e
  context:
    cluster: e2e
    user: {user}
current-context: e2e
",
            server = self.server,
            ca = b64(&self.pki.ca_pem),
            crt = b64(&crt),
            key = b64(&key),
        );
        let mut f = fs::File::create(path)?;
        f.write_all(body.as_bytes())?;
        Ok(())
    }

    /// A client for the admin user.
    pub async fn client(&self) -> Result<kube::Client> {
        client_from_kubeconfig(&self.kubeconfig).await
    }

    /// The audit log holding every request answered before this call: writes a marker
    /// ConfigMap and reads the log until the marker is in it. The batch backend flushes at
    /// its own pace; a fixed wait of two seconds lost the last entries on a loaded machine.
    pub async fn audit_text(&self) -> Result<String> {
        use kube::api::{Api, PostParams};
        let name = format!(
            "audit-marker-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        );
        let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(self.client().await?, "default");
        let marker = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        cms.create(&PostParams::default(), &marker).await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = String::from_utf8_lossy(&std::fs::read(&self.audit_log)?).into_owned();
            if text.contains(&name) {
                return Ok(text);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the audit log lacks {name} after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        block_on(async {
            let client = self.client().await?;
            loop {
                let req = http::Request::get("/readyz").body(Vec::new())?;
                match client.request_text(req).await {
                    Ok(body) if body.trim() == "ok" => return Ok(()),
                    _ if Instant::now() > deadline => {
                        bail!(
                            "kube-apiserver not ready after {timeout:?}; logs:\n{}",
                            self.log_tail("kube-apiserver", 30)
                        )
                    }
                    _ => {
                        self.check_alive()?;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })
    }

    fn check_alive(&self) -> Result<()> {
        let mut children = self.lock_children();
        for (name, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{name} exited with {status}; last log lines:\n{}",
                    self.log_tail(name, 30)
                );
            }
        }
        Ok(())
    }

    /// The last `n` lines of a component's log.
    pub fn log_tail(&self, name: &str, n: usize) -> String {
        let text = fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn install_crds(&self) -> Result<()> {
        block_on(async {
            let client = self.client().await?;
            crate::install_crds(&client, &workspace_root().join("crds")).await?;
            // The operator's own namespace: its leader Lease lives there.
            crate::ensure_namespace(&client, OPERATOR_NAMESPACE).await
        })
    }

    fn lock_children(&self) -> std::sync::MutexGuard<'_, Vec<(String, Child)>> {
        // A poisoned lock only means a test panicked while holding it; the list is intact.
        self.children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pids of the running processes, by component.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.lock_children()
            .iter()
            .map(|(n, c)| (n.clone(), c.id()))
            .collect()
    }

    /// Stops every process (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(&self) {
        let mut children = self.lock_children();
        // Reverse order: controller-manager and apiserver before etcd.
        for (_, child) in children.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, child) in children.iter_mut().rev() {
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        children.clear();
    }

    /// Leaves the processes running after this value is dropped (`cluster up`).
    pub fn detach(self) {
        let mut me = std::mem::ManuallyDrop::new(self);
        me.children.get_mut().expect("children lock").clear();
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
        if self.remove_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts a shell that waits for this process to end, then kills `pids` and removes
/// `remove`. It covers the exits `Drop` never sees: statics shared by a test binary, panics
/// in other threads, SIGKILL, Ctrl-C.
pub fn watchdog(pids: &[u32], remove: Option<&Path>) -> Result<()> {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let pids = pids.join(" ");
    let cleanup = remove
        .map(|d| format!("rm -rf '{}'", d.display()))
        .unwrap_or_default();
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; \
         kill -TERM {pids} 2>/dev/null; sleep 2; kill -KILL {pids} 2>/dev/null; {cleanup}",
        parent = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting a watchdog")?;
    Ok(())
}

/// Runs `fut` to completion on a runtime of its own in a thread of its own, so that
/// start-up works both from plain code and from inside a test's runtime.
pub(crate) fn block_on<F: std::future::Future<Output = Result<()>> + Send>(fut: F) -> Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(fut)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("control-plane start-up thread panicked"))?
    })
}

/// A kube client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(path)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_below_the_ephemeral_range() {
        assert_eq!(port_pool_below(32768), (20768, 32768));
        assert_eq!(port_pool_below(10000), (1024, 10000));
        assert_eq!(port_pool_below(1024), (61_000, 65_535));
        let (low, high) = port_pool();
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        assert!(ports.iter().all(|p| (low..high).contains(p)), "{ports:?}");
        let unique: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(
            unique.len(),
            ports.len(),
            "a port was handed out twice: {ports:?}"
        );
    }
}
