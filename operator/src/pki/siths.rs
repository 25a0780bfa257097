//! SITHS trust: the pinned CA fingerprints, loading the CA certificates only when they
//! match a pin, and deciding whether a chain "is SITHS" by verification, never by name.

use std::fmt;

use jiff::Timestamp;
use rustls_pki_types::CertificateDer;

use super::cert::{CertInfo, parse_pem_chain, parse_x509, sha256_fingerprint};
use super::error::PkiError;
use super::verify::{TrustAnchors, verify_with_policy};

/// SHA-256 of `CN=SITHS e-id Root CA v2, O=Inera AB, C=SE`.
pub const PRODUCTION_ROOT_SHA256: &str =
    "8767260AC829D833C30AF23857CBF8A2304BFDA445303DFCE5043AFA73E584C1";
/// SHA-256 of `CN=SITHS e-id Function CA v1, O=Inera AB, C=SE`.
pub const PRODUCTION_ISSUING_SHA256: &str =
    "E388FC9CA3B63EA6C06F82856676F698EEAA25B7DBFC9670F2F7BB7FF100B8E4";
/// SHA-256 of `CN=TEST SITHS e-id Root CA v2, O=Inera AB, C=SE`.
pub const TEST_ROOT_SHA256: &str =
    "217EE0FAB01427C86988758E3A6B2297B18320D00E1FB7C75E52C41988755307";
/// SHA-256 of `CN=TEST SITHS e-id Function CA v1, O=Inera AB, C=SE`.
pub const TEST_ISSUING_SHA256: &str =
    "9205BCE83ECD2C466E69DFB94545BA19DEFCA809BBBFE436A753FA58E669A55E";

/// A SITHS environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Environment {
    /// Production: SITHS e-id Root CA v2 / Function CA v1.
    Production,
    /// Pre-production: TEST SITHS e-id Root CA v2 / Function CA v1.
    Test,
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Environment::Production => "production",
            Environment::Test => "test",
        })
    }
}

/// Place of a pinned CA in the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaRole {
    /// Self-signed root.
    Root,
    /// The function CA that signs function certificates.
    Issuing,
}

/// One pinned SITHS CA certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// Environment it belongs to.
    pub environment: Environment,
    /// Root or issuing CA.
    pub role: CaRole,
    /// Subject, RFC 4514 style.
    pub subject: &'static str,
    /// Subject CN.
    pub common_name: &'static str,
    /// SHA-256 of the DER certificate, uppercase hex.
    pub sha256: &'static str,
}

/// The four pinned SITHS CA certificates (DOMAIN.md).
pub const PINS: [Pin; 4] = [
    Pin {
        environment: Environment::Production,
        role: CaRole::Root,
        subject: "CN=SITHS e-id Root CA v2, O=Inera AB, C=SE",
        common_name: "SITHS e-id Root CA v2",
        sha256: PRODUCTION_ROOT_SHA256,
    },
    Pin {
        environment: Environment::Production,
        role: CaRole::Issuing,
        subject: "CN=SITHS e-id Function CA v1, O=Inera AB, C=SE",
        common_name: "SITHS e-id Function CA v1",
        sha256: PRODUCTION_ISSUING_SHA256,
    },
    Pin {
        environment: Environment::Test,
        role: CaRole::Root,
        subject: "CN=TEST SITHS e-id Root CA v2, O=Inera AB, C=SE",
        common_name: "TEST SITHS e-id Root CA v2",
        sha256: TEST_ROOT_SHA256,
    },
    Pin {
        environment: Environment::Test,
        role: CaRole::Issuing,
        subject: "CN=TEST SITHS e-id Function CA v1, O=Inera AB, C=SE",
        common_name: "TEST SITHS e-id Function CA v1",
        sha256: TEST_ISSUING_SHA256,
    },
];

/// The SITHS CA certificates of one environment, each checked against its pin.
#[derive(Debug, Clone)]
pub struct SithsAnchors {
    environment: Environment,
    anchors: TrustAnchors,
}

impl SithsAnchors {
    /// The anchors of each environment a PEM bundle holds pinned certificates for
    /// (production first): what `--siths-ca-file` gives the operator.
    pub fn per_environment(pem_bundle: &str) -> Vec<SithsAnchors> {
        [Environment::Production, Environment::Test]
            .into_iter()
            .filter_map(|env| SithsAnchors::from_pem(pem_bundle, env).ok())
            .collect()
    }

    /// Loads SITHS CA certificates from a PEM bundle for `environment`. See
    /// [`SithsAnchors::from_certs`].
    pub fn from_pem(pem_bundle: &str, environment: Environment) -> Result<Self, PkiError> {
        Self::from_certs(parse_pem_chain(pem_bundle)?, environment)
    }

    /// Accepts only certificates whose SHA-256 equals a pin. Genuine CA certificates of the
    /// other environment are left out; a certificate that claims a SITHS name without
    /// the pinned fingerprint is a [`PkiError::FingerprintMismatch`]; any other
    /// certificate is [`PkiError::NotPinned`]. The environment's root must be present;
    /// its function CA is optional (chains usually carry it).
    pub fn from_certs(
        certs: Vec<CertificateDer<'static>>,
        environment: Environment,
    ) -> Result<Self, PkiError> {
        let mut roots: Vec<CertificateDer<'static>> = Vec::new();
        let mut intermediates: Vec<CertificateDer<'static>> = Vec::new();
        for der in certs {
            let found = sha256_fingerprint(&der);
            let info = CertInfo::parse(&der)?;
            match PINS.iter().find(|p| p.sha256 == found) {
                Some(pin) if pin.environment == environment => {
                    let list = match pin.role {
                        CaRole::Root => &mut roots,
                        CaRole::Issuing => &mut intermediates,
                    };
                    if !list.contains(&der) {
                        list.push(der);
                    }
                }
                Some(_) => {}
                None => return Err(unpinned(info, found, environment)),
            }
        }
        if roots.is_empty() {
            return Err(PkiError::MissingRoot {
                environment: environment.to_string(),
                subject: pin_for(environment, CaRole::Root).subject,
            });
        }
        Ok(SithsAnchors {
            environment,
            anchors: TrustAnchors::new(roots, intermediates)?,
        })
    }

    /// The environment these anchors belong to.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The anchors, for [`crate::pki::verify_chain`] and [`crate::pki::check_issued`].
    pub fn trust_anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// Anchors a person names explicitly as SITHS of `environment` (a test hierarchy
    /// standing in for SITHS, a private pre-production CA), not checked against the pins.
    /// Callers must refuse certificates that impersonate a pinned CA first, see
    /// [`impersonates_pin`].
    pub fn explicit(anchors: TrustAnchors, environment: Environment) -> Self {
        SithsAnchors {
            environment,
            anchors,
        }
    }

    /// Anchors that skip the pins, so that tests can stand in a local CA for SITHS.
    #[cfg(test)]
    pub(crate) fn unpinned_for_tests(anchors: TrustAnchors, environment: Environment) -> Self {
        SithsAnchors {
            environment,
            anchors,
        }
    }
}

/// The pin of `environment` and `role`.
pub fn pin_for(environment: Environment, role: CaRole) -> &'static Pin {
    PINS.iter()
        .find(|p| p.environment == environment && p.role == role)
        .unwrap_or(&PINS[0])
}

fn unpinned(info: CertInfo, found: String, environment: Environment) -> PkiError {
    let same_name = info.common_name.as_deref().and_then(|cn| {
        PINS.iter()
            .find(|p| p.common_name.eq_ignore_ascii_case(cn.trim()))
    });
    if let Some(pin) = same_name {
        return PkiError::FingerprintMismatch {
            subject: info.subject,
            expected: pin.sha256.to_string(),
            found,
        };
    }
    if info.subject.to_ascii_lowercase().contains("siths") {
        let expected = PINS
            .iter()
            .filter(|p| p.environment == environment)
            .map(|p| p.sha256)
            .collect::<Vec<_>>()
            .join(" or ");
        return PkiError::FingerprintMismatch {
            subject: info.subject,
            expected,
            found,
        };
    }
    PkiError::NotPinned {
        subject: info.subject,
        fingerprint: found,
        environment: environment.to_string(),
    }
}

/// Whether `der` is one of the pinned SITHS CA certificates (by SHA-256).
pub fn is_pinned(der: &CertificateDer<'_>) -> bool {
    let found = sha256_fingerprint(der);
    PINS.iter().any(|p| p.sha256 == found)
}

/// If `der` carries the common name of a pinned SITHS CA but not its fingerprint, the
/// [`PkiError::FingerprintMismatch`] that says so: a forged or tampered SITHS CA.
pub fn impersonates_pin(der: &CertificateDer<'_>) -> Option<PkiError> {
    let found = sha256_fingerprint(der);
    if PINS.iter().any(|p| p.sha256 == found) {
        return None;
    }
    let info = CertInfo::parse(der).ok()?;
    let cn = info.common_name.as_deref()?.trim().to_string();
    PINS.iter()
        .find(|p| p.common_name.eq_ignore_ascii_case(&cn))
        .map(|pin| PkiError::FingerprintMismatch {
            subject: info.subject,
            expected: pin.sha256.to_string(),
            found,
        })
}

/// Whether a certificate chain belongs to SITHS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SithsVerdict {
    /// Verifies to the pinned production root.
    Production,
    /// Verifies to the pinned test root.
    Test,
    /// An issuer name claims SITHS but the chain does not verify to a pinned root (forged,
    /// expired, or the issuing CA is missing): treat as not SITHS, and say so.
    NameOnly,
    /// Neither verifies nor claims a SITHS name.
    NotSiths,
}

/// Decides whether `chain` (leaf first) is SITHS by verifying it at `now` against each of
/// `anchors`; a name alone only ever gives [`SithsVerdict::NameOnly`]. Any EKU is accepted.
pub fn is_siths(
    chain: &[CertificateDer<'_>],
    anchors: &[&SithsAnchors],
    now: Timestamp,
) -> SithsVerdict {
    for a in anchors {
        if verify_with_policy(chain, &a.anchors, now, None).is_ok() {
            return match a.environment {
                Environment::Production => SithsVerdict::Production,
                Environment::Test => SithsVerdict::Test,
            };
        }
    }
    // A SITHS CA's common name says SITHS; an organisation or unit that merely mentions
    // the word (a tool named after it) does not make a certificate SITHS.
    let claims = chain.iter().any(|der| {
        parse_x509(der, 1).is_ok_and(|cert| {
            cert.issuer()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .any(|v| v.to_ascii_lowercase().contains("siths"))
        })
    });
    if claims {
        SithsVerdict::NameOnly
    } else {
        SithsVerdict::NotSiths
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{self, siths_pem};
    use crate::pki::{KeySpec, LocalCa, LocalCaOptions};

    fn production_bundle() -> String {
        format!(
            "{}{}",
            siths_pem("sithseidrootcav2.pem"),
            siths_pem("sithseidfunctioncav1.pem")
        )
    }

    fn test_bundle() -> String {
        format!(
            "{}{}",
            siths_pem("testsithseidrootcav2.pem"),
            siths_pem("testsithseidfunctioncav1.pem")
        )
    }

    /// A CA whose subject is byte for byte the real production root's.
    fn forged_root() -> LocalCa {
        LocalCa::generate(&LocalCaOptions {
            common_name: "SITHS e-id Root CA v2".into(),
            organization: "Inera AB".into(),
            ..testutil::ca_options("unused", false)
        })
        .unwrap()
    }

    #[test]
    fn pins_match_the_real_files_and_the_table() {
        for (file, pin) in [
            ("sithseidrootcav2.pem", &PINS[0]),
            ("sithseidfunctioncav1.pem", &PINS[1]),
            ("testsithseidrootcav2.pem", &PINS[2]),
            ("testsithseidfunctioncav1.pem", &PINS[3]),
        ] {
            let der = &parse_pem_chain(&siths_pem(file)).unwrap()[0];
            assert_eq!(sha256_fingerprint(der), pin.sha256, "{file}");
            let info = CertInfo::parse(der).unwrap();
            assert_eq!(info.subject, pin.subject, "{file}");
            assert_eq!(info.common_name.as_deref(), Some(pin.common_name));
            assert_eq!(info.self_issued, pin.role == CaRole::Root);
        }
        assert_eq!(
            pin_for(Environment::Test, CaRole::Issuing).sha256,
            TEST_ISSUING_SHA256
        );
    }

    #[test]
    fn real_files_load_for_their_environment() {
        let prod = SithsAnchors::from_pem(&production_bundle(), Environment::Production).unwrap();
        assert_eq!(prod.environment(), Environment::Production);
        assert_eq!(prod.trust_anchors().roots().len(), 1);
        assert_eq!(
            sha256_fingerprint(&prod.trust_anchors().roots()[0]),
            PRODUCTION_ROOT_SHA256
        );
        assert_eq!(
            sha256_fingerprint(&prod.trust_anchors().intermediates()[0]),
            PRODUCTION_ISSUING_SHA256
        );
        let test = SithsAnchors::from_pem(&test_bundle(), Environment::Test).unwrap();
        assert_eq!(
            sha256_fingerprint(&test.trust_anchors().roots()[0]),
            TEST_ROOT_SHA256
        );
        assert_eq!(
            sha256_fingerprint(&test.trust_anchors().intermediates()[0]),
            TEST_ISSUING_SHA256
        );
        // The root alone is enough.
        let root_only =
            SithsAnchors::from_pem(&siths_pem("sithseidrootcav2.pem"), Environment::Production)
                .unwrap();
        assert!(root_only.trust_anchors().intermediates().is_empty());
    }

    #[test]
    fn a_combined_bundle_yields_only_the_requested_environment() {
        let all = format!("{}{}", production_bundle(), test_bundle());
        let prod = SithsAnchors::from_pem(&all, Environment::Production).unwrap();
        assert_eq!(
            sha256_fingerprint(&prod.trust_anchors().roots()[0]),
            PRODUCTION_ROOT_SHA256
        );
        assert_eq!(prod.trust_anchors().intermediates().len(), 1);
        let test = SithsAnchors::from_pem(&all, Environment::Test).unwrap();
        assert_eq!(
            sha256_fingerprint(&test.trust_anchors().roots()[0]),
            TEST_ROOT_SHA256
        );
        // The test bundle holds no production root.
        assert_eq!(
            SithsAnchors::from_pem(&test_bundle(), Environment::Production).unwrap_err(),
            PkiError::MissingRoot {
                environment: "production".into(),
                subject: "CN=SITHS e-id Root CA v2, O=Inera AB, C=SE",
            }
        );
    }

    #[test]
    fn a_forged_root_with_the_real_name_is_rejected() {
        let forged = forged_root();
        let real = &parse_pem_chain(&siths_pem("sithseidrootcav2.pem")).unwrap()[0];
        // The forgery really has the same subject, byte for byte.
        let real_subject = parse_x509(real, 1).unwrap().subject().as_raw().to_vec();
        let forged_der = forged.root_der();
        assert_eq!(
            parse_x509(&forged_der, 1).unwrap().subject().as_raw(),
            real_subject.as_slice()
        );
        let found = sha256_fingerprint(&forged_der);
        let expected_err = PkiError::FingerprintMismatch {
            subject: "CN=SITHS e-id Root CA v2, O=Inera AB, C=SE".into(),
            expected: PRODUCTION_ROOT_SHA256.into(),
            found: found.clone(),
        };
        assert_eq!(
            SithsAnchors::from_pem(&forged.root_pem(), Environment::Production).unwrap_err(),
            expected_err
        );
        // Mixed in with the genuine files it is still an error, not skipped.
        let mixed = format!("{}{}", production_bundle(), forged.root_pem());
        assert_eq!(
            SithsAnchors::from_pem(&mixed, Environment::Production).unwrap_err(),
            expected_err
        );
        // Loading for the test environment does not make it acceptable either.
        assert!(matches!(
            SithsAnchors::from_pem(&forged.root_pem(), Environment::Test).unwrap_err(),
            PkiError::FingerprintMismatch { .. }
        ));
        let msg = expected_err.to_string();
        assert!(
            msg.contains(PRODUCTION_ROOT_SHA256) && msg.contains(&found),
            "{msg}"
        );
    }

    #[test]
    fn siths_lookalike_and_unrelated_cas_are_rejected() {
        let lookalike = LocalCa::generate(&LocalCaOptions {
            common_name: "SITHS Type 3 CA v9".into(),
            ..testutil::ca_options("unused", false)
        })
        .unwrap();
        match SithsAnchors::from_pem(&lookalike.root_pem(), Environment::Test).unwrap_err() {
            PkiError::FingerprintMismatch { expected, .. } => {
                assert_eq!(
                    expected,
                    format!("{TEST_ROOT_SHA256} or {TEST_ISSUING_SHA256}")
                )
            }
            other => panic!("unexpected {other:?}"),
        }
        let unrelated = testutil::ca();
        assert!(matches!(
            SithsAnchors::from_pem(&unrelated.root_pem(), Environment::Production).unwrap_err(),
            PkiError::NotPinned { subject, .. } if subject.contains("Test Root CA")
        ));
    }

    #[test]
    fn a_leaf_from_a_forged_siths_ca_is_name_only() {
        let prod = SithsAnchors::from_pem(&production_bundle(), Environment::Production).unwrap();
        let test = SithsAnchors::from_pem(&test_bundle(), Environment::Test).unwrap();
        let forged = forged_root();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let now = testutil::now();
        let leaf = testutil::issue(&forged, &testutil::profile(), &key, now);
        assert_eq!(leaf.len(), 1);
        let info = CertInfo::parse(&leaf[0]).unwrap();
        assert_eq!(info.issuer, "CN=SITHS e-id Root CA v2, O=Inera AB, C=SE");
        assert_eq!(
            is_siths(&leaf, &[&prod, &test], now),
            SithsVerdict::NameOnly
        );
        let with_root = [leaf[0].clone(), forged.root_der()];
        assert_eq!(is_siths(&with_root, &[&prod], now), SithsVerdict::NameOnly);
    }

    #[test]
    fn verdicts_follow_verification() {
        let now = testutil::now();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        // Local CAs standing in for the two SITHS environments.
        let prod_ca = testutil::ca();
        let test_ca = testutil::ca();
        let prod = SithsAnchors::unpinned_for_tests(
            prod_ca.trust_anchors().clone(),
            Environment::Production,
        );
        let test =
            SithsAnchors::unpinned_for_tests(test_ca.trust_anchors().clone(), Environment::Test);
        let from_prod = testutil::issue(&prod_ca, &testutil::profile(), &key, now);
        let from_test = testutil::issue(&test_ca, &testutil::profile(), &key, now);
        assert_eq!(
            is_siths(&from_prod, &[&test, &prod], now),
            SithsVerdict::Production
        );
        assert_eq!(
            is_siths(&from_test, &[&test, &prod], now),
            SithsVerdict::Test
        );
        // Unrelated issuer name, no verification: not SITHS.
        assert_eq!(is_siths(&from_test, &[&prod], now), SithsVerdict::NotSiths);
        assert_eq!(is_siths(&[], &[&prod], now), SithsVerdict::NotSiths);
        // Real SITHS anchors with an unrelated chain.
        let real = SithsAnchors::from_pem(&production_bundle(), Environment::Production).unwrap();
        assert_eq!(is_siths(&from_prod, &[&real], now), SithsVerdict::NotSiths);
    }
}
