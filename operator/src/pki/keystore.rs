//! Java key and trust stores: PKCS#12 (written with `p12-keystore`) and JKS (small enough
//! to write here), and a reader of both for the audit.
//!
//! - [`pkcs12_keystore`]: the private key and its full chain as one `PrivateKeyEntry`.
//! - [`pkcs12_truststore`]: CA certificates as `trustedCertEntry`s, each carrying the
//!   Java trusted-key-usage attribute (OID 2.16.840.1.113894.746875.1.1) without which
//!   Java ignores a certificate in a PKCS#12 truststore.
//! - [`jks_keystore`], [`jks_truststore`]: the same in the JKS format (magic `0xFEEDFEED`,
//!   version 2, a SHA-1 integrity digest keyed by the password; a private key is protected
//!   with Sun's key protector, which is what `keytool` itself writes for JKS).
//! - [`read_store`]: the certificates of a PKCS#12 or JKS store opened with a password.
//! - [`content_digest`]: what a store holds, as one SHA-256, so a writer can tell "same
//!   content" without comparing bytes (PKCS#12 and JKS use random salts and IVs).
//!
//! Passwords are never part of an error message.

use aws_lc_rs::digest;
use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12ImportPolicy,
    PrivateKeyChain,
};

use super::{PkiError, PrivateKey};

/// Encryption profile of a PKCS#12 store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StoreProfile {
    /// PBES2 with AES-256-CBC and PBKDF2-HMAC-SHA256, HMAC-SHA256 MAC: read by Java 11.0.12+
    /// / 17 and by OpenSSL 3 without `-legacy`.
    #[default]
    Modern,
    /// pbeWithSHAAnd3-KeyTripleDES-CBC and an HMAC-SHA1 MAC, for old Java 8 runtimes that
    /// cannot read PBES2. Weaker; use only where asked.
    Legacy,
}

impl StoreProfile {
    /// The name in the API and in the content digest.
    pub fn name(self) -> &'static str {
        match self {
            StoreProfile::Modern => "modern",
            StoreProfile::Legacy => "legacy",
        }
    }
}

/// PBKDF2 / PKCS#12 KDF iterations, as the JDK writes them.
const ITERATIONS: u32 = 10_000;

fn store_error(what: &str, e: impl std::fmt::Display) -> PkiError {
    // The library's messages name ASN.1 and algorithm problems, never the password.
    PkiError::Keystore(format!("{what}: {e}"))
}

fn write_pkcs12(
    store: &KeyStore,
    password: &str,
    profile: StoreProfile,
) -> Result<Vec<u8>, PkiError> {
    let writer = store.writer(password);
    let writer = match profile {
        StoreProfile::Modern => writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
            .mac_algorithm(MacAlgorithm::HmacSha256),
        StoreProfile::Legacy => writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1),
    };
    writer
        .encryption_iterations(ITERATIONS)
        .mac_iterations(ITERATIONS)
        .write()
        .map_err(|e| store_error("writing the PKCS#12 store", e))
}

fn p12_cert(der: &[u8]) -> Result<Certificate, PkiError> {
    Certificate::from_der(der).map_err(|e| store_error("certificate for the store", e))
}

/// A PKCS#12 keystore with one `PrivateKeyEntry` under `alias`: `key` and `chain` (leaf
/// first, up to and including the root when the chain has one).
pub fn pkcs12_keystore(
    key: &PrivateKey,
    chain: &[impl AsRef<[u8]>],
    alias: &str,
    password: &str,
    profile: StoreProfile,
) -> Result<Vec<u8>, PkiError> {
    let leaf = chain.first().ok_or(PkiError::EmptyChain)?;
    let certs = chain
        .iter()
        .map(|c| p12_cert(c.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let p12_key = p12_keystore::PrivateKey::from_der(key.pkcs8_der())
        .map_err(|_| PkiError::Keystore("the private key is not PKCS#8".into()))?;
    // The local key id ties key and leaf together: a digest of the leaf, as the JDK does.
    let local_key_id = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, leaf.as_ref())
        .as_ref()
        .to_vec();
    let mut store = KeyStore::new();
    store.add_entry(
        alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, p12_key, certs)),
    );
    write_pkcs12(&store, password, profile)
}

/// Alias of the `index`th (from 0) anchor of a truststore.
pub fn anchor_alias(index: usize) -> String {
    format!("ca-{}", index + 1)
}

/// A PKCS#12 truststore: every certificate of `anchors` as a `trustedCertEntry`
/// (aliases `ca-1`, `ca-2`, ...).
pub fn pkcs12_truststore(
    anchors: &[impl AsRef<[u8]>],
    password: &str,
    profile: StoreProfile,
) -> Result<Vec<u8>, PkiError> {
    let mut store = KeyStore::new();
    for (i, der) in anchors.iter().enumerate() {
        store.add_entry(
            &anchor_alias(i),
            KeyStoreEntry::Certificate(p12_cert(der.as_ref())?),
        );
    }
    write_pkcs12(&store, password, profile)
}

// ---- JKS ----

const JKS_MAGIC: u32 = 0xFEED_FEED;
const JKS_VERSION: u32 = 2;
const JKS_PRIVATE_KEY: u32 = 1;
const JKS_TRUSTED_CERT: u32 = 2;
/// The fixed text of the JKS integrity digest.
const JKS_WHITENER: &[u8] = b"Mighty Aphrodite";
/// Sun's proprietary key protector (`sun.security.provider.KeyProtector`).
const SUN_KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];

fn utf16be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().to_vec()
}

/// Java's `DataOutput.writeUTF` for the ASCII aliases and type names written here.
fn put_utf(out: &mut Vec<u8>, s: &str) -> Result<(), PkiError> {
    if !s.is_ascii() || s.len() > usize::from(u16::MAX) {
        return Err(PkiError::Keystore(format!(
            "JKS alias {s:?} must be short ASCII"
        )));
    }
    out.extend_from_slice(&u16::try_from(s.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<(), PkiError> {
    let len = u32::try_from(b.len()).map_err(|_| PkiError::Keystore("entry too large".into()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
    Ok(())
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// Sun's key protector: the PKCS#8 key XORed with a SHA-1 keystream of password and a
/// random salt, then a SHA-1 check over password and key; wrapped as an
/// EncryptedPrivateKeyInfo.
fn sun_protect(pkcs8: &[u8], password: &str) -> Result<Vec<u8>, PkiError> {
    let pw = utf16be(password);
    let mut salt = [0u8; 20];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| PkiError::Keystore("no randomness".into()))?;
    let mut stream = Vec::with_capacity(pkcs8.len() + 20);
    let mut block = salt.to_vec();
    while stream.len() < pkcs8.len() {
        block = sha1(&[&pw, &block]);
        stream.extend_from_slice(&block);
    }
    let mut protected = salt.to_vec();
    protected.extend(pkcs8.iter().zip(&stream).map(|(k, s)| k ^ s));
    protected.extend(sha1(&[&pw, pkcs8]));
    let mut algorithm = der(0x06, SUN_KEY_PROTECTOR_OID);
    algorithm.extend_from_slice(&[0x05, 0x00]);
    let mut info = der(0x30, &algorithm);
    info.extend(der(0x04, &protected));
    Ok(der(0x30, &info))
}

fn finish_jks(mut body: Vec<u8>, count: usize, password: &str) -> Result<Vec<u8>, PkiError> {
    let count = u32::try_from(count).map_err(|_| PkiError::Keystore("too many entries".into()))?;
    body[8..12].copy_from_slice(&count.to_be_bytes());
    let check = sha1(&[&utf16be(password), JKS_WHITENER, &body]);
    body.extend(check);
    Ok(body)
}

fn jks_header() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&JKS_MAGIC.to_be_bytes());
    out.extend_from_slice(&JKS_VERSION.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

/// A JKS keystore with one private key entry under `alias` (lowercase ASCII), key
/// protected with the store password as `keytool` does.
pub fn jks_keystore(
    key: &PrivateKey,
    chain: &[impl AsRef<[u8]>],
    alias: &str,
    password: &str,
    created_ms: u64,
) -> Result<Vec<u8>, PkiError> {
    if chain.is_empty() {
        return Err(PkiError::EmptyChain);
    }
    let mut out = jks_header();
    out.extend_from_slice(&JKS_PRIVATE_KEY.to_be_bytes());
    put_utf(&mut out, &alias.to_ascii_lowercase())?;
    out.extend_from_slice(&created_ms.to_be_bytes());
    put_bytes(&mut out, &sun_protect(key.pkcs8_der(), password)?)?;
    let n = u32::try_from(chain.len()).map_err(|_| PkiError::Keystore("chain too long".into()))?;
    out.extend_from_slice(&n.to_be_bytes());
    for c in chain {
        put_utf(&mut out, "X.509")?;
        put_bytes(&mut out, c.as_ref())?;
    }
    finish_jks(out, 1, password)
}

/// A JKS truststore: every certificate of `anchors` as a `trustedCertEntry` (aliases
/// `ca-1`, `ca-2`, ...).
pub fn jks_truststore(
    anchors: &[impl AsRef<[u8]>],
    password: &str,
    created_ms: u64,
) -> Result<Vec<u8>, PkiError> {
    let mut out = jks_header();
    for (i, der) in anchors.iter().enumerate() {
        out.extend_from_slice(&JKS_TRUSTED_CERT.to_be_bytes());
        put_utf(&mut out, &anchor_alias(i))?;
        out.extend_from_slice(&created_ms.to_be_bytes());
        put_utf(&mut out, "X.509")?;
        put_bytes(&mut out, der.as_ref())?;
    }
    finish_jks(out, anchors.len(), password)
}

// ---- reading ----

/// Format of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFormat {
    /// PKCS#12.
    Pkcs12,
    /// Java KeyStore.
    Jks,
}

/// One certificate found in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCert {
    /// Alias of its entry.
    pub alias: String,
    /// Whether it is a trusted certificate (not part of a private key entry).
    pub trusted: bool,
    /// DER.
    pub der: Vec<u8>,
}

/// What a store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedStore {
    /// Its format.
    pub format: StoreFormat,
    /// Number of private key entries.
    pub private_keys: usize,
    /// Certificates, trusted ones and those of key entries.
    pub certificates: Vec<StoredCert>,
}

/// The format of `bytes` by its first bytes, if it looks like a key store.
pub fn store_format(bytes: &[u8]) -> Option<StoreFormat> {
    if bytes.len() >= 4 && u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == JKS_MAGIC
    {
        Some(StoreFormat::Jks)
    } else if bytes.first() == Some(&0x30) {
        Some(StoreFormat::Pkcs12)
    } else {
        None
    }
}

/// Opens a PKCS#12 or JKS store with `password` and lists its certificates. Private keys
/// are not decrypted (JKS) or kept (PKCS#12).
pub fn read_store(bytes: &[u8], password: &str) -> Result<OpenedStore, PkiError> {
    match store_format(bytes) {
        Some(StoreFormat::Jks) => read_jks(bytes, password),
        Some(StoreFormat::Pkcs12) => {
            let store = KeyStore::from_pkcs12(bytes, password, Pkcs12ImportPolicy::Relaxed)
                .map_err(|_| {
                    PkiError::Keystore(
                        "the PKCS#12 store cannot be opened: wrong password, or not a PKCS#12 store".into(),
                    )
                })?;
            let mut opened = OpenedStore {
                format: StoreFormat::Pkcs12,
                private_keys: 0,
                certificates: Vec::new(),
            };
            for (alias, entry) in store.entries() {
                match entry {
                    KeyStoreEntry::PrivateKeyChain(chain) => {
                        opened.private_keys += 1;
                        opened
                            .certificates
                            .extend(chain.certs().iter().map(|c| StoredCert {
                                alias: alias.clone(),
                                trusted: false,
                                der: c.as_der().to_vec(),
                            }));
                    }
                    KeyStoreEntry::Certificate(c) => opened.certificates.push(StoredCert {
                        alias: alias.clone(),
                        trusted: true,
                        der: c.as_der().to_vec(),
                    }),
                    KeyStoreEntry::Secret(_) => {}
                }
            }
            Ok(opened)
        }
        None => Err(PkiError::Keystore("not a PKCS#12 or JKS store".into())),
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], PkiError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| PkiError::Keystore("the JKS store is truncated".into()))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, PkiError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, PkiError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn utf(&mut self) -> Result<String, PkiError> {
        let n = self.u16()?;
        Ok(String::from_utf8_lossy(self.take(usize::from(n))?).into_owned())
    }
    fn bytes(&mut self) -> Result<Vec<u8>, PkiError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

fn read_jks(bytes: &[u8], password: &str) -> Result<OpenedStore, PkiError> {
    if bytes.len() < 32 {
        return Err(PkiError::Keystore("the JKS store is truncated".into()));
    }
    let (body, check) = bytes.split_at(bytes.len() - 20);
    if sha1(&[&utf16be(password), JKS_WHITENER, body]) != check {
        return Err(PkiError::Keystore(
            "the JKS store cannot be opened: wrong password, or the store was altered".into(),
        ));
    }
    let mut r = Reader { data: body, pos: 0 };
    r.u32()?;
    if r.u32()? != JKS_VERSION {
        return Err(PkiError::Keystore("unsupported JKS version".into()));
    }
    let count = r.u32()?;
    let mut opened = OpenedStore {
        format: StoreFormat::Jks,
        private_keys: 0,
        certificates: Vec::new(),
    };
    for _ in 0..count {
        let tag = r.u32()?;
        let alias = r.utf()?;
        r.take(8)?;
        match tag {
            JKS_PRIVATE_KEY => {
                r.bytes()?;
                opened.private_keys += 1;
                let n = r.u32()?;
                for _ in 0..n {
                    r.utf()?;
                    let der = r.bytes()?;
                    opened.certificates.push(StoredCert {
                        alias: alias.clone(),
                        trusted: false,
                        der,
                    });
                }
            }
            JKS_TRUSTED_CERT => {
                r.utf()?;
                let der = r.bytes()?;
                opened.certificates.push(StoredCert {
                    alias,
                    trusted: true,
                    der,
                });
            }
            _ => return Err(PkiError::Keystore(format!("unknown JKS entry type {tag}"))),
        }
    }
    Ok(opened)
}

// ---- content digest ----

/// A one-way digest of a store password, for the content digest (never the password).
fn password_digest(password: &str) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"siths-operator keystore password\0");
    ctx.update(password.as_bytes());
    ctx.finish().as_ref().to_vec()
}

/// What a set of stores holds, as `sha256:<hex>`: the kinds of store asked for (`parts`,
/// for example `pkcs12:modern`), the certificates, the SubjectPublicKeyInfo of the key (a
/// fingerprint of the key without the key), and a digest of the password. Equal digests
/// mean equal content; the stores are rebuilt exactly when it changes.
pub fn content_digest(
    parts: &[&str],
    certificates: &[impl AsRef<[u8]>],
    public_key_der: Option<&[u8]>,
    password: &str,
) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut field = |tag: &[u8], value: &[u8]| {
        ctx.update(tag);
        ctx.update(&(value.len() as u64).to_be_bytes());
        ctx.update(value);
    };
    for p in parts {
        field(b"part", p.as_bytes());
    }
    for c in certificates {
        field(b"cert", c.as_ref());
    }
    if let Some(k) = public_key_der {
        field(b"spki", k);
    }
    field(b"pass", &password_digest(password));
    let hex: String = ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil;
    use std::process::Command;

    fn chain_and_key() -> (Vec<Vec<u8>>, PrivateKey, Vec<u8>) {
        let ca = testutil::ca();
        let key = testutil::rsa_2048();
        let mut chain: Vec<Vec<u8>> =
            testutil::issue(&ca, &testutil::profile(), &key, testutil::now())
                .into_iter()
                .map(|c| c.to_vec())
                .collect();
        let root = ca.root_der().to_vec();
        chain.push(root.clone());
        (chain, key, root)
    }

    fn have(tool: &str) -> bool {
        Command::new(tool).arg("-version").output().is_ok()
    }

    fn keytool_list(path: &std::path::Path, password: &str) -> (bool, String) {
        let out = Command::new("keytool")
            .args(["-list", "-keystore"])
            .arg(path)
            .args(["-storepass", password])
            .output()
            .expect("keytool runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    #[test]
    fn stores_read_back_with_the_password_only() {
        let (chain, key, root) = chain_and_key();
        for profile in [StoreProfile::Modern, StoreProfile::Legacy] {
            let p12 = pkcs12_keystore(&key, &chain, "server", "s3cret", profile).unwrap();
            let opened = read_store(&p12, "s3cret").unwrap();
            assert_eq!(opened.format, StoreFormat::Pkcs12);
            assert_eq!(opened.private_keys, 1);
            assert_eq!(opened.certificates.len(), 3);
            assert!(read_store(&p12, "wrong").is_err());
            let trust = pkcs12_truststore(&[&root], "changeit", profile).unwrap();
            let opened = read_store(&trust, "changeit").unwrap();
            assert_eq!(opened.certificates.len(), 1);
            assert!(opened.certificates[0].trusted);
        }
        let jks = jks_keystore(&key, &chain, "server", "s3cret", 0).unwrap();
        let opened = read_store(&jks, "s3cret").unwrap();
        assert_eq!((opened.format, opened.private_keys), (StoreFormat::Jks, 1));
        assert!(read_store(&jks, "wrong").is_err());
        let jks = jks_truststore(&[&root, &chain[0]], "changeit", 0).unwrap();
        let opened = read_store(&jks, "changeit").unwrap();
        assert_eq!(opened.certificates.len(), 2);
        assert!(read_store(b"not a store", "x").is_err());
    }

    #[test]
    fn digest_changes_with_each_part_and_hides_the_password() {
        let (chain, key, _) = chain_and_key();
        let spki = key.public_key_der();
        let base = content_digest(&["pkcs12:modern"], &chain, Some(&spki), "pw");
        assert_eq!(
            base,
            content_digest(&["pkcs12:modern"], &chain, Some(&spki), "pw")
        );
        assert_ne!(
            base,
            content_digest(&["pkcs12:legacy"], &chain, Some(&spki), "pw")
        );
        assert_ne!(
            base,
            content_digest(&["pkcs12:modern"], &chain[..1], Some(&spki), "pw")
        );
        assert_ne!(base, content_digest(&["pkcs12:modern"], &chain, None, "pw"));
        assert_ne!(
            base,
            content_digest(&["pkcs12:modern"], &chain, Some(&spki), "pw2")
        );
        assert!(!base.contains("pw"));
    }

    /// keytool (the real Java reader) lists every store kind with the right entry types,
    /// and refuses a wrong password.
    #[test]
    fn keytool_reads_every_store() {
        if !have("keytool") {
            eprintln!("keytool not installed; skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (chain, key, root) = chain_and_key();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "k.p12",
                pkcs12_keystore(&key, &chain, "server", "s3cret", StoreProfile::Modern).unwrap(),
                "PrivateKeyEntry",
            ),
            (
                "kl.p12",
                pkcs12_keystore(&key, &chain, "server", "s3cret", StoreProfile::Legacy).unwrap(),
                "PrivateKeyEntry",
            ),
            (
                "t.p12",
                pkcs12_truststore(&[&root], "s3cret", StoreProfile::Modern).unwrap(),
                "trustedCertEntry",
            ),
            (
                "k.jks",
                jks_keystore(&key, &chain, "server", "s3cret", 1_700_000_000_000).unwrap(),
                "PrivateKeyEntry",
            ),
            (
                "t.jks",
                jks_truststore(&[&root], "s3cret", 1_700_000_000_000).unwrap(),
                "trustedCertEntry",
            ),
        ];
        for (name, bytes, entry) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let (ok, out) = keytool_list(&path, "s3cret");
            assert!(ok, "{name}: {out}");
            assert!(out.contains(entry), "{name}: {out}");
            assert!(out.contains("contains 1 entry"), "{name}: {out}");
            let (ok, _) = keytool_list(&path, "wrong-password");
            assert!(!ok, "{name} opened with a wrong password");
        }
        // The JKS private key decrypts with keytool: export it to PKCS#12 and compare.
        let jks = dir.path().join("k.jks");
        let out = Command::new("keytool")
            .args(["-importkeystore", "-srckeystore"])
            .arg(&jks)
            .args([
                "-srcstorepass",
                "s3cret",
                "-deststoretype",
                "PKCS12",
                "-destkeystore",
            ])
            .arg(dir.path().join("back.p12"))
            .args(["-deststorepass", "s3cret", "-noprompt"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// OpenSSL 3 reads the modern profile without `-legacy`.
    #[test]
    fn openssl_reads_the_modern_profile() {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("openssl not installed; skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (chain, key, _) = chain_and_key();
        let path = dir.path().join("k.p12");
        std::fs::write(
            &path,
            pkcs12_keystore(&key, &chain, "server", "s3cret", StoreProfile::Modern).unwrap(),
        )
        .unwrap();
        let out = Command::new("openssl")
            .args(["pkcs12", "-info", "-nokeys", "-in"])
            .arg(&path)
            .args(["-passin", "pass:s3cret"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("PBES2, PBKDF2, AES-256-CBC"), "{text}");
        assert!(text.contains("MAC: sha256"), "{text}");
        assert!(text.contains("BEGIN CERTIFICATE"), "{text}");
    }
}
