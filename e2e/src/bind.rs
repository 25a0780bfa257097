//! BIND 9 (`named` from the Debian package `bind9`), the real authoritative server of the
//! DNS tests: one primary zone on a loopback port, dynamic updates allowed with a TSIG key
//! (HMAC-SHA256) generated for each start, no recursion. Records are changed with
//! `nsupdate` (package `bind9-dnsutils`) signed by that key, as a DNS administrator would.
//! `named` is killed when the [`Bind`] is dropped, and by a watchdog when the test process
//! dies in any other way.

use std::{
    fs,
    io::{Read, Write},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;

use crate::controlplane::{free_port, watchdog};

/// Name of the TSIG key allowed to update the zone.
pub const KEY_NAME: &str = "siths-e2e-key";

/// A running `named` serving one zone.
#[derive(Debug)]
pub struct Bind {
    /// The zone, for example `region.se`.
    pub zone: String,
    /// Where `named` listens (UDP and TCP).
    pub addr: SocketAddr,
    /// The TSIG secret, base64 (random for each `Bind`).
    pub key_secret: String,
    /// Working folder: config, zone file, journal, log.
    pub dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

/// Whether `named` is installed (`.ci/run` installs it).
pub fn available() -> bool {
    std::path::Path::new("/usr/sbin/named").exists()
}

impl Bind {
    /// Writes the configuration of `zone` and starts `named` on a free loopback port.
    pub async fn start(zone: &str) -> Result<Self> {
        ensure!(
            available(),
            "/usr/sbin/named is missing: apt-get install bind9 bind9-utils bind9-dnsutils"
        );
        let dir = tempfile::Builder::new().prefix("siths-bind-").tempdir()?;
        let port = free_port()?;
        let mut secret = [0u8; 32];
        fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
        let key_secret = base64::engine::general_purpose::STANDARD.encode(secret);
        let d = dir.path().display();
        fs::write(
            dir.path().join("named.conf"),
            format!(
                r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{KEY_NAME}" {{
    algorithm hmac-sha256;
    secret "{key_secret}";
}};
zone "{zone}" {{
    type primary;
    file "{d}/{zone}.zone";
    allow-update {{ key "{KEY_NAME}"; }};
}};
"#
            ),
        )?;
        // Short TTLs: the operator asks without a cache anyway, but nothing should hold an
        // answer longer than a check interval of the tests.
        fs::write(
            dir.path().join(format!("{zone}.zone")),
            format!(
                "$TTL 2\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 60 60 3600 2\n@ IN NS ns.{zone}.\nns IN A 127.0.0.1\n"
            ),
        )?;
        let bind = Self {
            zone: zone.to_string(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            key_secret,
            dir,
            child: Mutex::new(None),
        };
        bind.run().await?;
        Ok(bind)
    }

    fn run_blocking(&self) -> Result<Child> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("named.log"))?;
        let child = Command::new("/usr/sbin/named")
            // Foreground, log to stderr; as the current user (root in CI: -u keeps it so,
            // named would otherwise try to switch to the user `bind`).
            .arg("-g")
            .arg("-c")
            .arg(self.dir.path().join("named.conf"))
            .args(user_args())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting named")?;
        watchdog(&[child.id()], None)?;
        Ok(child)
    }

    async fn run(&self) -> Result<()> {
        let child = self.run_blocking()?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.log().contains("running") && self.soa_answers() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("named did not start within 20 s:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn soa_answers(&self) -> bool {
        Command::new("dig")
            .args([
                "+short",
                "+time=1",
                "+tries=1",
                "-p",
                &self.addr.port().to_string(),
                "@127.0.0.1",
                &self.zone,
                "SOA",
            ])
            .output()
            .map(|o| o.status.success() && !o.stdout.is_empty())
            .unwrap_or(false)
    }

    /// Stops `named` (the zone and its journal stay for [`Self::restart`]).
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts `named` again on the same port with the same zone.
    pub async fn restart(&self) -> Result<()> {
        self.stop();
        self.run().await
    }

    /// `named`'s log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    /// Runs `nsupdate` with `commands` (without `server`/`send`), signed with the zone's key.
    pub fn nsupdate(&self, commands: &str) -> Result<()> {
        self.nsupdate_with_key(commands, &self.key_secret)
    }

    /// Runs `nsupdate` signed with `secret` under [`KEY_NAME`].
    pub fn nsupdate_with_key(&self, commands: &str, secret: &str) -> Result<()> {
        // The key goes through a file, not the command line (which `ps` shows).
        let key_file = self.dir.path().join("nsupdate.key");
        fs::write(
            &key_file,
            format!("key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n"),
        )?;
        let mut child = Command::new("nsupdate")
            .arg("-k")
            .arg(&key_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting nsupdate (package bind9-dnsutils)")?;
        let script = format!(
            "server 127.0.0.1 {}\nzone {}\n{}\nsend\n",
            self.addr.port(),
            self.zone,
            commands.trim_end()
        );
        child
            .stdin
            .take()
            .context("nsupdate stdin")?
            .write_all(script.as_bytes())?;
        let out = child.wait_with_output()?;
        let _ = fs::remove_file(&key_file);
        ensure!(
            out.status.success(),
            "nsupdate failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// Sets the TXT record `name` to the single string `value`.
    pub fn set_txt(&self, name: &str, value: &str) -> Result<()> {
        self.nsupdate(&format!(
            "update delete {name}. TXT\nupdate add {name}. 2 TXT \"{value}\""
        ))
    }

    /// Removes every TXT record at `name`.
    pub fn delete_txt(&self, name: &str) -> Result<()> {
        self.nsupdate(&format!("update delete {name}. TXT"))
    }

    /// The TXT strings at `name`, as `named` answers them now.
    pub fn txt(&self, name: &str) -> Result<Vec<String>> {
        let out = Command::new("dig")
            .args([
                "+short",
                "+time=1",
                "+tries=1",
                "-p",
                &self.addr.port().to_string(),
                "@127.0.0.1",
                name,
                "TXT",
            ])
            .output()
            .context("dig (package bind9-dnsutils)")?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().trim_matches('"').to_string())
            .filter(|l| !l.is_empty())
            .collect())
    }
}

fn user_args() -> Vec<String> {
    // named refuses nothing as root, but switches to `bind` unless told otherwise; that
    // user could not write the temporary folder.
    match Command::new("id").arg("-un").output() {
        Ok(o) if o.status.success() => {
            vec![
                "-u".into(),
                String::from_utf8_lossy(&o.stdout).trim().into(),
            ]
        }
        _ => vec![],
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        self.stop();
    }
}
