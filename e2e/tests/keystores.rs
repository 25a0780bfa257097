//! Java key and trust stores against the real apiserver and the real Java tools: the
//! operator writes `keystore.p12`/`.jks` and `truststore.p12`/`.jks` into a
//! ServiceCertificate's Secret; `keytool -list` reads each with the right entry type,
//! OpenSSL 3 reads the default profile without `-legacy`, and a Java client (`java
//! Client.java`, e2e/java/) makes a mutual-TLS connection with them to a rustls server
//! holding another operator-issued certificate, which reads the client's HSA-id. A
//! truststore without the CA fails the handshake. A changed password rebuilds the stores
//! with one write; a second anchor in a SithsTrustBundle rebuilds its truststore; an idle
//! pass writes nothing; no password or key appears in logs, events or status.
//!
//! Skipped (with a message) when `java`/`keytool`/`openssl` are not installed; `.ci/run`
//! installs them.

use std::{io::Write, net::TcpListener, path::Path, process::Command, sync::Arc, time::Duration};

use anyhow::{Context as _, Result, bail};
use e2e::{
    eventually,
    k8s::{OPERATOR_USER, apply, condition, shared_operator, wait_condition},
};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Secret};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
};
use siths_operator::{
    api::{ServiceCertificate, SithsTrustBundle},
    pki::{self, KeySpec, LocalCa, LocalCaOptions, keystore},
    vocabulary::KEYSTORE_DIGEST_KEY,
};

const WAIT: Duration = Duration::from_secs(90);
const CLIENT_HSA: &str = "SE2321000016-JCLI1";
const SERVER_HSA: &str = "SE2321000016-JSRV1";

fn tools_present() -> bool {
    let ok = |tool: &str, arg: &str| Command::new(tool).arg(arg).output().is_ok();
    let present = ok("java", "-version") && ok("keytool", "-help") && ok("openssl", "version");
    if !present {
        eprintln!("java, keytool or openssl missing: keystore e2e skipped (.ci/run installs them)");
    }
    present
}

fn client_java() -> std::path::PathBuf {
    e2e::controlplane::workspace_root().join("e2e/java/Client.java")
}

async fn secret_data(client: &Client, ns: &str, name: &str) -> Result<Option<Secret>> {
    Ok(Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?)
}

fn bytes(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    secret.data.as_ref()?.get(key).map(|b| b.0.clone())
}

fn write(dir: &Path, name: &str, data: &[u8]) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, data)?;
    Ok(path)
}

/// `keytool -list` of a store: (success, output).
fn keytool_list(path: &Path, password: &str) -> Result<(bool, String)> {
    let out = Command::new("keytool")
        .args(["-list", "-keystore"])
        .arg(path)
        .args(["-storepass:env", "STORE_PASS"])
        .env("STORE_PASS", password)
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    ))
}

/// The operator's writes (create/patch/update/delete) in `ns` after byte `offset` of the
/// audit log, as `verb resource/name`, events excluded.
async fn operator_writes_since(ns: &str, offset: usize) -> Result<Vec<String>> {
    let log = e2e::shared().audit_text().await?.into_bytes();
    let tail = String::from_utf8_lossy(&log[offset.min(log.len())..]).to_string();
    Ok(tail
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["user"]["username"] == OPERATOR_USER
                && v["objectRef"]["namespace"] == ns
                && v["objectRef"]["resource"] != "events"
                && v["stage"] == "ResponseComplete"
                && matches!(
                    v["verb"].as_str(),
                    Some("create" | "patch" | "update" | "delete")
                )
        })
        .map(|v| {
            format!(
                "{} {}/{}{}",
                v["verb"].as_str().unwrap_or_default(),
                v["objectRef"]["resource"].as_str().unwrap_or_default(),
                v["objectRef"]["name"].as_str().unwrap_or_default(),
                v["objectRef"]["subresource"]
                    .as_str()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default()
            )
        })
        .collect())
}

async fn audit_offset() -> Result<usize> {
    Ok(e2e::shared().audit_text().await?.len())
}

struct Setup {
    client: Client,
    ns: String,
}

async fn setup(prefix: &str) -> Result<Setup> {
    let _ = shared_operator();
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, prefix).await?;
    e2e::fixtures::local_ca_scenario(&client, &ns).await?;
    Ok(Setup { client, ns })
}

impl Setup {
    async fn password_secret(&self, name: &str, password: &str) -> Result<()> {
        apply(
            &Api::<Secret>::namespaced(self.client.clone(), &self.ns),
            &format!(
                r#"
apiVersion: v1
kind: Secret
metadata:
  name: {name}
  labels: {{ siths-operator.io/keystore-password: "true" }}
stringData: {{ password: "{password}" }}
"#
            ),
        )
        .await?;
        Ok(())
    }

    async fn certificates(&self) -> Result<()> {
        let ns = &self.ns;
        let certs: Api<ServiceCertificate> = Api::namespaced(self.client.clone(), ns);
        apply(
            &certs,
            &format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: client }}
spec:
  purpose: ServerToServer
  hsaId: {CLIENT_HSA}
  dnsNames: [client.{ns}.region.se]
  secretName: client-tls
  issuerRef: {{ kind: SithsIssuer, name: {ns} }}
  keystores:
    pkcs12: {{ passwordSecretRef: {{ name: client-keystore-password }} }}
    jks: {{ passwordSecretRef: {{ name: client-keystore-password }} }}
    truststore: true
"#
            ),
        )
        .await?;
        e2e::fixtures::server_certificate(
            &self.client,
            ns,
            "server",
            &format!("server.{ns}.region.se"),
            SERVER_HSA,
            ns,
            "server-tls",
        )
        .await?;
        for name in ["client", "server"] {
            wait_condition(&certs, name, "Ready", "True", None, WAIT).await?;
        }
        wait_condition(&certs, "client", "Keystores", "True", None, WAIT).await?;
        Ok(())
    }

    /// The client Secret once it holds every store, with the digest recorded.
    async fn client_secret(&self) -> Result<Secret> {
        eventually(WAIT, "client-tls to hold the Java stores", || async {
            let s = secret_data(&self.client, &self.ns, "client-tls").await?;
            Ok(s.filter(|s| {
                [
                    "keystore.p12",
                    "keystore.jks",
                    "truststore.p12",
                    "truststore.jks",
                ]
                .iter()
                .all(|k| bytes(s, k).is_some())
            }))
        })
        .await
    }
}

/// A rustls server with `server-tls` that requires a client certificate from the CA in
/// its `ca.crt`, answers each connection with the HSA-id of the client's certificate,
/// and reports each connection's outcome.
fn start_server(secret: &Secret) -> Result<(u16, std::sync::mpsc::Receiver<String>)> {
    let text = |k: &str| String::from_utf8(bytes(secret, k).unwrap_or_default());
    let chain: Vec<rustls_pki_types::CertificateDer<'static>> =
        pki::parse_pem_chain(&text("tls.crt")?)?;
    let key = pki::PrivateKey::from_pem(&text("tls.key")?)?;
    let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(
        rustls_pki_types::PrivatePkcs8KeyDer::from(pem_body(&key.to_pem()).context("server key")?),
    );
    let mut roots = rustls::RootCertStore::empty();
    for der in pki::parse_pem_chain(&text("ca.crt")?)? {
        roots.add(der)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key_der)?,
    );
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut tcp) = stream else { continue };
            let mut conn = match rustls::ServerConnection::new(config.clone()) {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(format!("error: {e}"));
                    continue;
                }
            };
            let outcome = (|| -> Result<String> {
                while conn.is_handshaking() {
                    conn.complete_io(&mut tcp)?;
                }
                let peer = conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .context("no client certificate")?;
                let hsa = pki::CertInfo::parse(peer)?
                    .hsa_id
                    .context("client certificate without HSA-id")?;
                let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
                tls.write_all(format!("client HSA-id {hsa}\n").as_bytes())?;
                tls.flush()?;
                conn.send_close_notify();
                let _ = conn.complete_io(&mut tcp);
                Ok(hsa)
            })();
            let _ = tx.send(match outcome {
                Ok(hsa) => format!("ok {hsa}"),
                Err(e) => format!("error: {e:#}"),
            });
        }
    });
    Ok((port, rx))
}

/// The DER inside a single PEM block.
fn pem_body(pem_text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Runs `java Client.java` against 127.0.0.1:`port`: (exit code, output).
fn java_client(
    port: u16,
    keystore: &Path,
    key_password: &str,
    truststore: &Path,
    trust_password: &str,
) -> Result<(i32, String)> {
    let out = Command::new("java")
        .arg(client_java())
        .arg("127.0.0.1")
        .arg(port.to_string())
        .arg(keystore)
        .arg("KEY_PASS")
        .arg(truststore)
        .arg("TRUST_PASS")
        .env("KEY_PASS", key_password)
        .env("TRUST_PASS", trust_password)
        .output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    ))
}

#[tokio::test]
async fn java_mutual_tls_with_the_operators_keystores() -> Result<()> {
    if !tools_present() {
        return Ok(());
    }
    let env = setup("ks-java").await?;
    let password = "first-Pass-7";
    env.password_secret("client-keystore-password", password)
        .await?;
    env.certificates().await?;
    let secret = env.client_secret().await?;
    let dir = tempfile::tempdir()?;

    // keytool reads every store with the right entry type, and not with a wrong password.
    for (key, entry) in [
        ("keystore.p12", "PrivateKeyEntry"),
        ("keystore.jks", "PrivateKeyEntry"),
        ("truststore.p12", "trustedCertEntry"),
        ("truststore.jks", "trustedCertEntry"),
    ] {
        let path = write(dir.path(), key, &bytes(&secret, key).unwrap())?;
        let (ok, out) = keytool_list(&path, password)?;
        assert!(ok && out.contains(entry), "{key}: {out}");
        let (ok, _) = keytool_list(&path, "not-the-password")?;
        assert!(!ok, "{key} opened with a wrong password");
    }
    // OpenSSL 3 reads the default profile without -legacy: PBES2/AES-256, SHA-256 MAC.
    let out = Command::new("openssl")
        .args(["pkcs12", "-info", "-nokeys", "-in"])
        .arg(dir.path().join("keystore.p12"))
        .args(["-passin", "env:STORE_PASS"])
        .env("STORE_PASS", password)
        .output()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("PBES2, PBKDF2, AES-256-CBC") && text.contains("MAC: sha256"),
        "{text}"
    );
    assert!(
        text.contains(CLIENT_HSA),
        "the chain is in the keystore: {text}"
    );

    // Java mutual TLS to a server with another operator-issued certificate.
    let server = secret_data(&env.client, &env.ns, "server-tls")
        .await?
        .context("server-tls")?;
    let (port, outcomes) = start_server(&server)?;
    let (code, out) = java_client(
        port,
        &dir.path().join("keystore.p12"),
        password,
        &dir.path().join("truststore.p12"),
        password,
    )?;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("client HSA-id {CLIENT_HSA}")),
        "{out}"
    );
    let seen = outcomes.recv_timeout(Duration::from_secs(30))?;
    assert_eq!(seen, format!("ok {CLIENT_HSA}"), "server side");

    // The JKS pair works the same.
    let (code, out) = java_client(
        port,
        &dir.path().join("keystore.jks"),
        password,
        &dir.path().join("truststore.jks"),
        password,
    )?;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        outcomes.recv_timeout(Duration::from_secs(30))?,
        format!("ok {CLIENT_HSA}")
    );

    // Negative: a truststore without the operator's CA (another CA only) fails the handshake.
    let other = LocalCa::generate(&LocalCaOptions {
        common_name: "Some Other CA".into(),
        organization: "Elsewhere".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: None,
        not_before: jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        validity: Duration::from_secs(86_400 * 30),
    })?;
    let wrong = write(
        dir.path(),
        "other-truststore.p12",
        &keystore::pkcs12_truststore(
            &[other.root_der()],
            "changeit",
            keystore::StoreProfile::Modern,
        )?,
    )?;
    let (code, out) = java_client(
        port,
        &dir.path().join("keystore.p12"),
        password,
        &wrong,
        "changeit",
    )?;
    assert_eq!(code, 2, "the handshake must fail without the CA: {out}");
    assert!(out.contains("handshake failed"), "{out}");
    let seen = outcomes.recv_timeout(Duration::from_secs(30))?;
    assert!(seen.starts_with("error"), "server side: {seen}");

    // sithsctl finds the SITHS certificate inside a Java store (a Secret holding only
    // keystore.p12, opened with the namespace's labelled password Secret) and reports a
    // store it cannot open.
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let store_secret = |name: &str, key: &str, data: Vec<u8>| {
        serde_json::to_string(&serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {key: base64_encode(&data)},
        }))
    };
    apply(
        &secrets,
        &store_secret(
            "java-only",
            "keystore.p12",
            bytes(&secret, "keystore.p12").unwrap(),
        )?,
    )
    .await?;
    let locked = keystore::jks_truststore(&[other.root_der()], "nobody-knows-it", 0)?;
    apply(
        &secrets,
        &store_secret("locked-store", "truststore.jks", locked)?,
    )
    .await?;
    let ca = write(dir.path(), "ca.pem", &bytes(&secret, "ca.crt").unwrap())?;
    let cp = e2e::shared();
    let run = |cmd: &str| -> Result<String> {
        let out = e2e::k8s::sithsctl_output(
            &cp.kubeconfig,
            &[
                cmd,
                "-n",
                &env.ns,
                "--siths-test-ca",
                &ca.to_string_lossy(),
                "-o",
                "json",
            ],
        )?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!stdout.contains(password), "the password in sithsctl {cmd}");
        Ok(stdout + &String::from_utf8_lossy(&out.stderr))
    };
    let inventory = run("inventory")?;
    let found: Vec<&str> = inventory
        .lines()
        .filter(|l| l.contains("java-only"))
        .collect();
    assert!(
        inventory.contains("java-only") && inventory.contains("keystore.p12 (certificate)"),
        "{inventory}"
    );
    assert!(!found.is_empty());
    let audit = run("audit")?;
    assert!(
        audit.contains("UNPARSEABLE_CERTIFICATE") && audit.contains("locked-store"),
        "{audit}"
    );
    Ok(())
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::test]
async fn a_new_password_rebuilds_the_stores_once_and_is_never_shown() -> Result<()> {
    if !tools_present() {
        return Ok(());
    }
    let env = setup("ks-pass").await?;
    let (first, second) = ("first-Pass-8a", "second-Pass-8b");
    env.password_secret("client-keystore-password", first)
        .await?;
    env.certificates().await?;
    let before = env.client_secret().await?;
    let digest_before = before.metadata.annotations.as_ref().unwrap()[KEYSTORE_DIGEST_KEY].clone();
    assert!(!digest_before.contains(first));

    // Idle: nudging the certificate (a label: a pass without change) writes nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let offset = audit_offset().await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(env.client.clone(), &env.ns);
    certs
        .patch(
            "client",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"nudge": "1"}}})),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = operator_writes_since(&env.ns, offset).await?;
    assert!(idle.is_empty(), "an idle pass wrote: {idle:?}");

    // A new password: the stores are rebuilt with one write to the Secret, nothing else.
    let offset = audit_offset().await?;
    env.password_secret("client-keystore-password", second)
        .await?;
    let dir = tempfile::tempdir()?;
    let after = eventually(WAIT, "the stores to be rebuilt", || async {
        let s = secret_data(&env.client, &env.ns, "client-tls").await?;
        Ok(s.filter(|s| {
            s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(KEYSTORE_DIGEST_KEY))
                != Some(&digest_before)
        }))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let writes = operator_writes_since(&env.ns, offset).await?;
    assert_eq!(
        writes,
        vec!["patch secrets/client-tls".to_string()],
        "{writes:?}"
    );
    for key in [
        "keystore.p12",
        "keystore.jks",
        "truststore.p12",
        "truststore.jks",
    ] {
        let path = write(dir.path(), key, &bytes(&after, key).unwrap())?;
        let (ok, out) = keytool_list(&path, second)?;
        assert!(ok, "{key} with the new password: {out}");
        let (ok, _) = keytool_list(&path, first)?;
        assert!(!ok, "{key} still opens with the old password");
    }
    // tls.crt and tls.key are untouched by the rebuild.
    assert_eq!(bytes(&before, "tls.crt"), bytes(&after, "tls.crt"));
    assert_eq!(bytes(&before, "tls.key"), bytes(&after, "tls.key"));

    // No password and no key bytes in events, status or the operator's log.
    let events = Api::<Event>::namespaced(env.client.clone(), &env.ns)
        .list(&ListParams::default())
        .await?;
    let events = serde_json::to_string(&events.items)?;
    assert!(
        events.contains("KeystoresWritten"),
        "an event says the stores were rebuilt"
    );
    let status = serde_json::to_string(&certs.get("client").await?.status)?;
    let log = shared_operator().lock().unwrap().output();
    let key_pem = String::from_utf8(bytes(&after, "tls.key").unwrap())?;
    let key_body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for (what, text) in [("events", &events), ("status", &status), ("log", &log)] {
        for secret in [first, second] {
            assert!(!text.contains(secret), "the password is in the {what}");
        }
        assert!(!text.contains("PRIVATE KEY"), "key text in the {what}");
        assert!(!text.contains(&key_body[..40]), "key bytes in the {what}");
    }
    let (s, reason, _) = condition(&certs.get("client").await?, "Keystores").unwrap();
    assert_eq!((s.as_str(), reason.as_str()), ("True", "KeystoresWritten"));

    // keystores removed from the spec: the stores the operator wrote go, the PEM stays.
    certs
        .patch(
            "client",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"keystores": null}})),
        )
        .await?;
    let gone = eventually(WAIT, "the stores to be removed", || async {
        let s = secret_data(&env.client, &env.ns, "client-tls").await?;
        Ok(s.filter(|s| {
            bytes(s, "keystore.p12").is_none()
                && s.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(KEYSTORE_DIGEST_KEY))
                    .is_none()
        }))
    })
    .await?;
    assert!(bytes(&gone, "truststore.jks").is_none());
    assert_eq!(bytes(&gone, "tls.crt"), bytes(&after, "tls.crt"));
    Ok(())
}

fn ca_pem(name: &str) -> Result<String> {
    let ca = LocalCa::generate(&LocalCaOptions {
        common_name: name.into(),
        organization: "Region Exempel".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: None,
        not_before: jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        validity: Duration::from_secs(86_400 * 365),
    })?;
    Ok(ca.root_pem())
}

#[tokio::test]
async fn trust_bundle_truststore_follows_its_anchors() -> Result<()> {
    if !tools_present() {
        return Ok(());
    }
    let _ = shared_operator();
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, "ks-trust").await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for (name, cn) in [
        ("anchor-one", "Anchor One CA"),
        ("anchor-two", "Anchor Two CA"),
    ] {
        apply(
            &cms,
            &serde_json::to_string(&serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": {"ca.crt": ca_pem(cn)?},
            }))?,
        )
        .await?;
    }
    Api::<Namespace>::all(client.clone())
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"ks-trust": &ns}}})),
        )
        .await?;
    let bundles: Api<SithsTrustBundle> = Api::all(client.clone());
    let bundle = |additional: &str| {
        format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsTrustBundle
metadata: {{ name: {ns} }}
spec:
  sources:
    additional: [{additional}]
  target:
    configMapName: java-trust
    namespaceSelector: {{ matchLabels: {{ ks-trust: {ns} }} }}
    truststore: {{ jksKey: truststore.jks }}
"#
        )
    };
    let one = format!("{{name: anchor-one, namespace: {ns}}}");
    let two = format!("{{name: anchor-two, namespace: {ns}}}");
    apply(&bundles, &bundle(&one)).await?;
    wait_condition(&bundles, &ns, "Synced", "True", None, WAIT).await?;
    let dir = tempfile::tempdir()?;
    let entries = |cm: &ConfigMap, key: &str| -> Result<(usize, String)> {
        let data = cm
            .binary_data
            .as_ref()
            .and_then(|b| b.get(key))
            .with_context(|| format!("{key} in the ConfigMap"))?;
        let path = write(dir.path(), key, &data.0)?;
        let (ok, out) = keytool_list(&path, "changeit")?;
        if !ok {
            bail!("keytool cannot read {key}: {out}");
        }
        Ok((out.matches("trustedCertEntry").count(), out))
    };
    let cm = cms.get("java-trust").await?;
    for key in ["truststore.p12", "truststore.jks"] {
        let (n, out) = entries(&cm, key)?;
        assert_eq!(n, 1, "{key}: {out}");
    }

    // Idle: a pass of the bundle without change writes no ConfigMap (random salts do not
    // count as a change).
    let offset = audit_offset().await?;
    bundles
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"nudge": "1"}}})),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle: Vec<String> = operator_writes_since(&ns, offset)
        .await?
        .into_iter()
        .filter(|w| w.contains("configmaps"))
        .collect();
    assert!(idle.is_empty(), "an idle pass wrote: {idle:?}");

    // Trust rollover: a second anchor rebuilds the truststores with both.
    apply(&bundles, &bundle(&format!("{one}, {two}"))).await?;
    let cm = eventually(WAIT, "the truststore to hold both anchors", || async {
        let cm = cms.get("java-trust").await?;
        Ok((entries(&cm, "truststore.p12")?.0 == 2).then_some(cm))
    })
    .await?;
    let (n, out) = entries(&cm, "truststore.jks")?;
    assert_eq!(n, 2, "{out}");
    let pem = cm.data.as_ref().unwrap()["ca.crt"].clone();
    assert_eq!(pki::parse_pem_chain(&pem)?.len(), 2);

    // A truststore password from a labelled Secret; changing it rebuilds the truststores.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let password_secret = |pw: &str| {
        format!(
            r#"
apiVersion: v1
kind: Secret
metadata:
  name: trust-password
  labels: {{ siths-operator.io/keystore-password: "true" }}
stringData: {{ password: "{pw}" }}
"#
        )
    };
    apply(&secrets, &password_secret("trust-Pass-1")).await?;
    let with_password = bundle(&format!("{one}, {two}")).replace(
        "truststore: { jksKey: truststore.jks }",
        &format!("truststore: {{ jksKey: truststore.jks, passwordSecretRef: {{ name: trust-password, namespace: {ns} }} }}"),
    );
    apply(&bundles, &with_password).await?;
    let opens_with = |cm: &ConfigMap, pw: &str| -> Result<bool> {
        let data = &cm.binary_data.as_ref().context("binaryData")?["truststore.p12"];
        let path = write(dir.path(), "pw.p12", &data.0)?;
        Ok(keytool_list(&path, pw)?.0)
    };
    eventually(
        WAIT,
        "the truststore under the Secret's password",
        || async {
            let cm = cms.get("java-trust").await?;
            Ok(opens_with(&cm, "trust-Pass-1")?.then_some(()))
        },
    )
    .await?;
    let offset = audit_offset().await?;
    apply(&secrets, &password_secret("trust-Pass-2")).await?;
    let cm = eventually(WAIT, "the truststore under the new password", || async {
        let cm = cms.get("java-trust").await?;
        Ok(opens_with(&cm, "trust-Pass-2")?.then_some(cm))
    })
    .await?;
    assert!(!opens_with(&cm, "trust-Pass-1")?);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes: Vec<String> = operator_writes_since(&ns, offset)
        .await?
        .into_iter()
        .filter(|w| w.contains("configmaps"))
        .collect();
    assert_eq!(writes, ["patch configmaps/java-trust"], "{writes:?}");
    let status = serde_json::to_string(&bundles.get(&ns).await?.status)?;
    assert!(!status.contains("trust-Pass"), "a password in the status");
    Ok(())
}
