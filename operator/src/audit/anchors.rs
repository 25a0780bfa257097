//! Which PKI a certificate comes from: SITHS (verified against SITHS anchors, never by
//! name), publicly trusted (Mozilla's store), or neither.

use std::collections::BTreeSet;

use jiff::Timestamp;
use rustls_pki_types::{CertificateDer, TrustAnchor};

use crate::pki::{
    self, CertInfo, Environment, PkiError, SithsAnchors, SithsVerdict, TrustAnchors, public_trust,
    siths,
};

pub use crate::pki::CertClass;

/// A certificate's class, and whether its issuer name claims SITHS without the chain
/// verifying to a SITHS anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// The class.
    pub class: CertClass,
    /// An issuer name says SITHS but the chain does not verify.
    pub siths_name_unverified: bool,
}

/// The anchors a certificate is classified against.
#[derive(Debug, Clone)]
pub struct AnchorSet {
    siths: Vec<SithsAnchors>,
    public_roots: Vec<TrustAnchor<'static>>,
}

impl Default for AnchorSet {
    fn default() -> Self {
        AnchorSet {
            siths: Vec::new(),
            public_roots: public_trust::mozilla_roots().to_vec(),
        }
    }
}

impl AnchorSet {
    /// No SITHS anchors; Mozilla's store for public trust.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds SITHS anchors.
    pub fn with_siths(mut self, anchors: SithsAnchors) -> Self {
        self.siths.push(anchors);
        self
    }

    /// Replaces the public roots (tests stand in a local CA for a public one).
    pub fn with_public_roots(mut self, roots: Vec<TrustAnchor<'static>>) -> Self {
        self.public_roots = roots;
        self
    }

    /// Loads a PEM bundle given with `--siths-ca`: certificates with a pinned fingerprint
    /// become anchors of their pinned environment; any other CA certificates become
    /// explicit anchors of `extra_environment` (a test hierarchy standing in for SITHS).
    /// A certificate that carries a pinned CA's name without its fingerprint is refused.
    pub fn add_pem(mut self, pem: &str, extra_environment: Environment) -> Result<Self, PkiError> {
        let certs = pki::parse_pem_chain(pem)?;
        let mut pinned: Vec<(Environment, CertificateDer<'static>)> = Vec::new();
        let mut extra = Vec::new();
        for der in certs {
            let fp = pki::sha256_fingerprint(&der);
            if let Some(pin) = siths::PINS.iter().find(|p| p.sha256 == fp) {
                pinned.push((pin.environment, der));
            } else if let Some(e) = siths::impersonates_pin(&der) {
                return Err(e);
            } else {
                extra.push(der);
            }
        }
        for env in [Environment::Production, Environment::Test] {
            let mine: Vec<_> = pinned
                .iter()
                .filter(|(e, _)| *e == env)
                .map(|(_, d)| d.clone())
                .collect();
            if !mine.is_empty() {
                self.siths.push(SithsAnchors::from_certs(mine, env)?);
            }
        }
        if !extra.is_empty() {
            self.siths.push(SithsAnchors::explicit(
                TrustAnchors::from_certs(extra)?,
                extra_environment,
            ));
        }
        Ok(self)
    }

    /// Whether any SITHS anchors are loaded.
    pub fn has_siths(&self) -> bool {
        !self.siths.is_empty()
    }

    /// SHA-256 fingerprints of the SITHS CA certificates of `environment` (roots and
    /// intermediates): a ConfigMap holding one of them installs SITHS trust.
    pub fn siths_fingerprints(&self, environment: Environment) -> BTreeSet<String> {
        self.siths
            .iter()
            .filter(|a| a.environment() == environment)
            .flat_map(|a| {
                let t = a.trust_anchors();
                t.roots().iter().chain(t.intermediates())
            })
            .map(|der| pki::sha256_fingerprint(der))
            .collect()
    }

    /// The SITHS environments whose CA certificates (root or intermediate) the PEM bundle
    /// `pem` holds: a trust store validating against SITHS. Unreadable PEM holds none.
    pub fn siths_environments_in(&self, pem: &str) -> Vec<Environment> {
        let held: BTreeSet<String> = pki::parse_pem_chain(pem)
            .map(|c| c.iter().map(|der| pki::sha256_fingerprint(der)).collect())
            .unwrap_or_default();
        [Environment::Production, Environment::Test]
            .into_iter()
            .filter(|env| !held.is_disjoint(&self.siths_fingerprints(*env)))
            .collect()
    }

    /// Classifies `chain` (leaf first). The chain is verified at `now` clamped into the
    /// leaf's validity, so that an expired SITHS certificate is still SITHS (and reported
    /// as expired on its own).
    pub fn classify(
        &self,
        chain: &[CertificateDer<'_>],
        leaf: &CertInfo,
        now: Timestamp,
    ) -> Classification {
        let at = now.clamp(leaf.not_before, leaf.not_after);
        let refs: Vec<&SithsAnchors> = self.siths.iter().collect();
        let verdict = pki::is_siths(chain, &refs, at);
        let class = match verdict {
            SithsVerdict::Production => CertClass::SithsProduction,
            SithsVerdict::Test => CertClass::SithsTest,
            SithsVerdict::NameOnly | SithsVerdict::NotSiths => {
                if public_trust::verifies_to(chain, &self.public_roots, at) {
                    CertClass::Public
                } else {
                    CertClass::Other
                }
            }
        };
        Classification {
            class,
            siths_name_unverified: verdict == SithsVerdict::NameOnly,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{self, siths_pem};
    use crate::pki::{KeySpec, LocalCa, LocalCaOptions};

    fn leaf(ca: &LocalCa) -> (Vec<CertificateDer<'static>>, CertInfo) {
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let chain = testutil::issue(ca, &testutil::profile(), &key, testutil::now());
        let info = CertInfo::parse(&chain[0]).unwrap();
        (chain, info)
    }

    #[test]
    fn classes_come_from_verification() {
        let prod = testutil::ca();
        let test = LocalCa::generate(&testutil::ca_options("Stand-in test root", false)).unwrap();
        let public = LocalCa::generate(&testutil::ca_options("Public root", false)).unwrap();
        let private = LocalCa::generate(&testutil::ca_options("Private root", false)).unwrap();
        let forged = LocalCa::generate(&LocalCaOptions {
            common_name: "SITHS e-id Function CA v1".into(),
            organization: "Inera AB".into(),
            ..testutil::ca_options("unused", false)
        })
        .unwrap();
        let anchors = AnchorSet::new()
            .add_pem(&prod.cert_pem(), Environment::Production)
            .unwrap()
            .add_pem(&test.root_pem(), Environment::Test)
            .unwrap()
            .with_public_roots(vec![
                webpki::anchor_from_trusted_cert(&public.root_der())
                    .unwrap()
                    .to_owned(),
            ]);
        let now = testutil::now();
        let cases = [
            (&prod, CertClass::SithsProduction, false),
            (&test, CertClass::SithsTest, false),
            (&public, CertClass::Public, false),
            (&private, CertClass::Other, false),
            (&forged, CertClass::Other, true),
        ];
        for (ca, class, unverified) in cases {
            let (chain, info) = leaf(ca);
            let c = anchors.classify(&chain, &info, now);
            assert_eq!(c.class, class, "{}", info.issuer);
            assert_eq!(c.siths_name_unverified, unverified, "{}", info.issuer);
            // Expired long ago: still the same class.
            let later = now + jiff::SignedDuration::from_hours(24 * 1000);
            assert_eq!(anchors.classify(&chain, &info, later).class, class);
        }
        // Without SITHS anchors nothing is SITHS.
        let (chain, info) = leaf(&prod);
        assert_eq!(
            AnchorSet::new().classify(&chain, &info, now).class,
            CertClass::Other
        );
    }

    #[test]
    fn real_pins_load_by_fingerprint_and_forgeries_are_refused() {
        let bundle = format!(
            "{}{}{}",
            siths_pem("sithseidrootcav2.pem"),
            siths_pem("testsithseidrootcav2.pem"),
            siths_pem("testsithseidfunctioncav1.pem"),
        );
        // The extra environment does not matter for pinned certificates.
        let set = AnchorSet::new()
            .add_pem(&bundle, Environment::Test)
            .unwrap();
        assert_eq!(
            set.siths_fingerprints(Environment::Production),
            [siths::PRODUCTION_ROOT_SHA256.to_string()].into()
        );
        assert_eq!(
            set.siths_fingerprints(Environment::Test),
            [
                siths::TEST_ROOT_SHA256.to_string(),
                siths::TEST_ISSUING_SHA256.to_string()
            ]
            .into()
        );
        assert_eq!(
            set.siths_environments_in(&siths_pem("testsithseidfunctioncav1.pem")),
            [Environment::Test]
        );
        assert_eq!(set.siths_environments_in(&bundle).len(), 2);
        assert!(set.siths_environments_in("not PEM").is_empty());
        let forged = LocalCa::generate(&LocalCaOptions {
            common_name: "SITHS e-id Root CA v2".into(),
            organization: "Inera AB".into(),
            ..testutil::ca_options("unused", false)
        })
        .unwrap();
        let err = AnchorSet::new()
            .add_pem(&forged.root_pem(), Environment::Production)
            .unwrap_err();
        assert!(
            matches!(&err, PkiError::FingerprintMismatch { expected, .. } if expected == siths::PRODUCTION_ROOT_SHA256),
            "{err}"
        );
        // The function CA without its root is not enough.
        let err = AnchorSet::new()
            .add_pem(
                &siths_pem("sithseidfunctioncav1.pem"),
                Environment::Production,
            )
            .unwrap_err();
        assert!(matches!(err, PkiError::MissingRoot { .. }), "{err}");
    }
}
