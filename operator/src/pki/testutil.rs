//! Shared helpers for the `pki` unit tests.

use std::sync::OnceLock;
use std::time::Duration;

use jiff::Timestamp;
use rcgen::{CertificateParams, IsCa};
use rustls_pki_types::CertificateDer;

use super::local_ca::{BACKDATE, LocalCa, LocalCaOptions, random_serial};
use super::profile::{CertificateProfile, Usage};
use super::{KeySpec, PrivateKey};

const DAY: Duration = Duration::from_secs(86_400);

/// A public SITHS CA certificate from `shared/siths-ca/` (never copied into the project).
pub(crate) fn siths_pem(file: &str) -> String {
    let path = format!(
        "{}/../../shared/siths-ca/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The fixed "now" of the tests.
pub(crate) fn now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

/// RSA generation is slow: one key per size per test run, handed out as fresh copies.
fn cached_rsa(cell: &'static OnceLock<String>, spec: KeySpec) -> PrivateKey {
    let pem_text = cell.get_or_init(|| spec.generate().unwrap().to_pem());
    PrivateKey::from_pem(pem_text).unwrap()
}

pub(crate) fn rsa_2048() -> PrivateKey {
    static CELL: OnceLock<String> = OnceLock::new();
    cached_rsa(&CELL, KeySpec::RSA_2048)
}

pub(crate) fn rsa_3072() -> PrivateKey {
    static CELL: OnceLock<String> = OnceLock::new();
    cached_rsa(&CELL, KeySpec::RSA_3072)
}

/// A typical server-to-server SITHS profile.
pub(crate) fn profile() -> CertificateProfile {
    CertificateProfile {
        dns_names: vec!["api.region.se".into(), "api2.region.se".into()],
        hsa_id: Some("SE2321000016-ABC1".into()),
        organization: "Region Exempel".into(),
        locality: Some("Stockholm".into()),
        usage: Usage::ServerToServer,
    }
}

/// Options for an ECDSA test CA valid from a day before [`now`] for ten years.
pub(crate) fn ca_options(common_name: &str, with_intermediate: bool) -> LocalCaOptions {
    LocalCaOptions {
        common_name: common_name.into(),
        organization: "Test Org".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: with_intermediate.then(|| "Test Issuing CA".into()),
        not_before: now() - jiff::SignedDuration::from_hours(24),
        validity: 3650 * DAY,
    }
}

/// A root "Test Root CA" with an issuing CA "Test Issuing CA".
pub(crate) fn ca() -> LocalCa {
    LocalCa::generate(&ca_options("Test Root CA", true)).unwrap()
}

/// Issues a 90-day leaf for `profile` and `key` at `now`.
pub(crate) fn issue(
    ca: &LocalCa,
    profile: &CertificateProfile,
    key: &PrivateKey,
    now: Timestamp,
) -> Vec<CertificateDer<'static>> {
    ca.sign(
        profile,
        &key.public_key_der(),
        now,
        90 * DAY,
        &random_serial().unwrap(),
    )
    .unwrap()
}

/// Issues a leaf for [`profile`] whose parameters `tweak` may alter (to craft bad ones).
pub(crate) fn issue_custom(
    ca: &LocalCa,
    key: &PrivateKey,
    now: Timestamp,
    tweak: impl FnOnce(&mut CertificateParams),
) -> Vec<CertificateDer<'static>> {
    let mut params = profile().to_params(key.spec().algorithm).unwrap();
    params.not_before =
        time::OffsetDateTime::from_unix_timestamp((now - BACKDATE).as_second()).unwrap();
    params.not_after =
        time::OffsetDateTime::from_unix_timestamp((now + 90 * DAY).as_second()).unwrap();
    params.is_ca = IsCa::ExplicitNoCa;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&random_serial().unwrap()));
    tweak(&mut params);
    ca.sign_params(params, &key.public_key_der()).unwrap()
}
