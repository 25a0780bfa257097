//! Pebble, Let's Encrypt's ACME test server, and its challenge test server used as a mock
//! DNS, built from their upstream Go module (`e2e/pebble/go.mod`) into the test cache and
//! started on loopback ports. External Account Binding is required; every name resolves
//! to 127.0.0.1, and Pebble really fetches
//! `http://<name>:<http_port>/.well-known/acme-challenge/<token>` (validation is on).

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Empty};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;

use crate::{
    controlplane::{cache_root, free_port, watchdog},
    gobuild,
};

/// Version of `github.com/letsencrypt/pebble/v2` built; also the cache key.
pub const PEBBLE_VERSION: &str = "v2.10.3";
const BINARIES: [(&str, &str); 2] = [
    ("pebble", "github.com/letsencrypt/pebble/v2/cmd/pebble"),
    (
        "pebble-challtestsrv",
        "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv",
    ),
];
/// The EAB key id Pebble is configured with.
pub const EAB_KID: &str = "siths-e2e";
/// The EAB HMAC key (base64url, as a CA's portal hands it out) Pebble is configured with.
pub const EAB_HMAC: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

/// Where the built binaries are cached: `<cache>/pebble/<version>/`.
pub fn pebble_dir() -> PathBuf {
    cache_root().join("pebble").join(PEBBLE_VERSION)
}

/// Builds `pebble` and `pebble-challtestsrv` unless the cache holds them for this
/// version. Returns their folder.
pub fn ensure_pebble() -> Result<PathBuf> {
    static BUILT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build() -> Result<PathBuf> {
    let dir = pebble_dir();
    let stamp = dir.join(".complete");
    let want = gobuild::fingerprint(
        "e2e/pebble",
        &["go.mod", "go.sum"],
        &format!("pebble {PEBBLE_VERSION} modules"),
    )?;
    let outputs: Vec<PathBuf> = BINARIES.iter().map(|(b, _)| dir.join(b)).collect();
    let refs: Vec<&Path> = outputs.iter().map(PathBuf::as_path).collect();
    if gobuild::is_cached(&refs, &stamp, &want) {
        return Ok(dir);
    }
    for ((_, package), out) in BINARIES.iter().zip(&outputs) {
        gobuild::go_build(
            "pebble",
            "e2e/pebble",
            package,
            &format!("-s -w -X main.version={PEBBLE_VERSION}"),
            out,
        )?;
    }
    fs::write(&stamp, want)?;
    Ok(dir)
}

/// A running Pebble with its mock DNS. Both processes are killed when it is dropped, and
/// by a watchdog when the test process dies in any other way.
#[derive(Debug)]
pub struct Pebble {
    /// `https://127.0.0.1:<port>/dir`.
    pub directory_url: String,
    /// `https://127.0.0.1:<port>` of the management interface (roots, intermediates).
    pub management_url: String,
    /// PEM of the CA that signed Pebble's own HTTPS certificate (for `acme.serverCa`).
    pub server_ca_pem: String,
    /// The EAB key id ([`EAB_KID`]).
    pub eab_kid: String,
    /// The EAB HMAC key, base64url ([`EAB_HMAC`]).
    pub eab_hmac: String,
    /// The port Pebble sends HTTP-01 validation requests to (on 127.0.0.1).
    pub http_port: u16,
    /// Working folder (config, certificates, logs).
    pub dir: tempfile::TempDir,
    children: Mutex<Vec<Child>>,
}

impl Pebble {
    /// Builds (if needed) and starts the mock DNS and Pebble; HTTP-01 validation requests
    /// go to 127.0.0.1:`http_port`. Returns once the directory answers.
    pub async fn start(http_port: u16) -> Result<Self> {
        Self::start_with_dns(http_port, None).await
    }

    /// As [`Self::start`], but Pebble's lookups (DNS-01 TXT records, addresses for HTTP-01)
    /// go to `dns` (BIND, see [`crate::bind`]) instead of the mock DNS when given.
    pub async fn start_with_dns(http_port: u16, dns: Option<std::net::SocketAddr>) -> Result<Self> {
        let bins = ensure_pebble()?;
        let dir = tempfile::Builder::new().prefix("siths-pebble-").tempdir()?;
        let (server_ca_pem, cert_pem, key_pem) = serving_certificate()?;
        fs::write(dir.path().join("cert.pem"), &cert_pem)?;
        fs::write(dir.path().join("key.pem"), &key_pem)?;
        let (acme_port, mgmt_port, dns_port, dns_mgmt_port) =
            (free_port()?, free_port()?, free_port()?, free_port()?);
        let config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port()?,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": true,
            "externalAccountMACKeys": { EAB_KID: EAB_HMAC },
            "retryAfter": { "authz": 1, "order": 1 },
            "keyAlgorithm": "ecdsa",
            "profiles": { "default": { "description": "90 days", "validityPeriod": 7_776_000 } },
        }});
        let config_path = dir.path().join("pebble-config.json");
        fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;

        let mut children = Vec::new();
        let log = |name: &str| -> Result<(fs::File, fs::File)> {
            let f = fs::File::create(dir.path().join(format!("{name}.log")))?;
            Ok((f.try_clone()?, f))
        };
        let (out, err) = log("challtestsrv")?;
        children.push(
            Command::new(bins.join("pebble-challtestsrv"))
                .args([
                    "-dnsserver",
                    &format!("127.0.0.1:{dns_port}"),
                    "-management",
                    &format!("127.0.0.1:{dns_mgmt_port}"),
                    "-defaultIPv4",
                    "127.0.0.1",
                    // Only A records: Pebble dials the first address it gets.
                    "-defaultIPv6",
                    "",
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                    "-doh",
                    "",
                ])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .context("starting pebble-challtestsrv")?,
        );
        let (out, err) = log("pebble")?;
        let pebble = Command::new(bins.join("pebble"))
            .arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(dns.map_or_else(|| format!("127.0.0.1:{dns_port}"), |a| a.to_string()))
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            // Every order validates its challenges: no authorization reuse.
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .context("starting pebble");
        match pebble {
            Ok(c) => children.push(c),
            Err(e) => {
                for mut c in children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(e);
            }
        }
        let pids: Vec<u32> = children.iter().map(Child::id).collect();
        watchdog(&pids, None)?;
        let p = Self {
            directory_url: format!("https://127.0.0.1:{acme_port}/dir"),
            management_url: format!("https://127.0.0.1:{mgmt_port}"),
            server_ca_pem,
            eab_kid: EAB_KID.to_string(),
            eab_hmac: EAB_HMAC.to_string(),
            http_port,
            dir,
            children: Mutex::new(children),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match p.get(&p.directory_url).await {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    bail!(
                        "Pebble did not answer at {} within 20 s: {e:#}\n{}",
                        p.directory_url,
                        p.log()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(p)
    }

    /// GET over HTTPS, trusting [`Self::server_ca_pem`]; the body as text.
    pub async fn get(&self, url: &str) -> Result<String> {
        https_get(url, &self.server_ca_pem).await
    }

    /// PEM of the root Pebble issues under (fresh for every Pebble process), for a
    /// PublicIssuer's `additionalTrustAnchors`.
    pub async fn root_pem(&self) -> Result<String> {
        self.get(&format!("{}/roots/0", self.management_url)).await
    }

    /// PEM of the intermediate Pebble signs certificates with.
    pub async fn intermediate_pem(&self) -> Result<String> {
        self.get(&format!("{}/intermediates/0", self.management_url))
            .await
    }

    /// Accounts Pebble has registered so far (from its log: "There are now N accounts in
    /// memory"; the same words count authorizations and orders).
    pub fn accounts_registered(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(" accounts in memory"))
            .filter_map(|l| l.split("There are now ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .max()
            .unwrap_or(0)
    }

    /// Process ids of `pebble` and `pebble-challtestsrv` (its mock DNS), by name, for
    /// benchmarks that measure their CPU.
    pub fn pids(&self) -> Vec<(String, u32)> {
        let children = self
            .children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ["pebble-challtestsrv", "pebble"]
            .iter()
            .zip(children.iter())
            .map(|(n, c)| ((*n).to_string(), c.id()))
            .collect()
    }

    /// The ACME requests Pebble has logged so far ("POST /order-plz -> calling
    /// handler()"), as "METHOD /path-pattern" lines in order.
    pub fn requests_logged(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.strip_suffix(" -> calling handler()"))
            .filter_map(|l| {
                let mut words = l.rsplitn(3, ' ');
                let path = words.next()?;
                let method = words.next()?;
                Some(format!("{method} {path}"))
            })
            .collect()
    }

    /// Pebble's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let mut children = self
            .children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for c in children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A CA and, signed by it, a certificate for `localhost` and 127.0.0.1: Pebble's HTTPS.
/// Returns (CA PEM, certificate PEM, key PEM).
fn serving_certificate() -> Result<(String, String, String)> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "siths-operator e2e Pebble HTTPS CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()])?;
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse()?));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &Issuer::from_params(&ca, &ca_key))?;
    Ok((ca_pem, cert.pem(), key.serialize_pem()))
}

async fn https_get(url: &str, ca_pem: &str) -> Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<bytes::Bytes>>(connector);
    // Pebble refuses requests without a User-Agent.
    let req = http::Request::get(url)
        .header(http::header::USER_AGENT, "siths-operator-e2e")
        .body(Empty::new())?;
    let rsp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .context("timed out")??;
    let status = rsp.status();
    let body = rsp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8(body.to_vec())?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {text}");
    }
    Ok(text)
}
