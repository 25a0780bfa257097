//! A small CA for tests, demos and development clusters: issues leaves with exactly the
//! SITHS function certificate profile from a request or profile and a public key.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer,
    KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::cert::{CertInfo, chain_to_pem, parse_pem_chain, same_public_key};
use super::csr::ParsedCsr;
use super::error::PkiError;
use super::keys::{KeySpec, PrivateKey, spec_of_spki};
use super::pem;
use super::profile::{COUNTRY, CertificateProfile};
use super::verify::TrustAnchors;

/// How far `not_before` of issued certificates is set before `now`, so that clients with
/// a slightly slow clock accept a fresh certificate.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Parameters of a new local CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCaOptions {
    /// CN of the root.
    pub common_name: String,
    /// O of the root (and intermediate); left out when empty.
    pub organization: String,
    /// Key of the root and of the intermediate.
    pub key: KeySpec,
    /// When set, an issuing CA with this CN is created under the root and signs leaves;
    /// the root key is then discarded.
    pub intermediate_common_name: Option<String>,
    /// Start of validity.
    pub not_before: Timestamp,
    /// Lifetime of the CA certificates.
    pub validity: Duration,
}

/// A CA that signs leaves: its signing certificate and key, the certificates above it,
/// and its root. `Debug` does not print the key.
pub struct LocalCa {
    key: PrivateKey,
    /// The signing certificate first, then each certificate above it, ending at the root.
    bundle: Vec<CertificateDer<'static>>,
    signer: CertInfo,
    anchors: TrustAnchors,
}

impl fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCa")
            .field("signer", &self.signer.subject)
            .field("chain_length", &self.bundle.len())
            .field("key", &self.key)
            .finish()
    }
}

impl LocalCa {
    /// Creates a self-signed root and, if asked, an issuing CA under it.
    pub fn generate(options: &LocalCaOptions) -> Result<Self, PkiError> {
        let not_after = add(options.not_before, options.validity)?;
        let root_key = options.key.generate()?;
        let mut root_params = ca_params(&options.common_name, &options.organization)?;
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root_params.not_before = to_offset(options.not_before)?;
        root_params.not_after = to_offset(not_after)?;
        root_params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
        let root = root_params
            .self_signed(root_key.key_pair())
            .map_err(|e| PkiError::Signing(e.to_string()))?;
        let root_der = root.der().clone();
        let (key, bundle) = match &options.intermediate_common_name {
            None => (root_key, vec![root_der]),
            Some(cn) => {
                let key = options.key.generate()?;
                let mut params = ca_params(cn, &options.organization)?;
                params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
                params.not_before = to_offset(options.not_before)?;
                params.not_after = to_offset(not_after)?;
                params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
                params.use_authority_key_identifier_extension = true;
                let issuer = Issuer::new(root_params, root_key.key_pair());
                let cert = params
                    .signed_by(key.key_pair(), &issuer)
                    .map_err(|e| PkiError::Signing(e.to_string()))?;
                (key, vec![cert.der().clone(), root_der])
            }
        };
        let signer = CertInfo::parse(&bundle[0])?;
        Self::assemble(key, bundle, signer)
    }

    /// Loads a CA from its certificate bundle (signing certificate first, ending with the
    /// self-signed root; [`LocalCa::cert_pem`] writes this) and its PKCS#8 key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let bundle = parse_pem_chain(cert_pem)?;
        let key = PrivateKey::from_pem(key_pem)?;
        let infos = bundle
            .iter()
            .map(|der| CertInfo::parse(der))
            .collect::<Result<Vec<_>, _>>()?;
        for info in &infos {
            if !info.is_ca {
                return Err(PkiError::NotACa {
                    subject: info.subject.clone(),
                });
            }
        }
        for pair in infos.windows(2) {
            if pair[0].issuer != pair[1].subject {
                return Err(PkiError::UntrustedChain(format!(
                    "{} is issued by {}, but the next certificate in the bundle is {}",
                    pair[0].subject, pair[0].issuer, pair[1].subject
                )));
            }
        }
        let last = infos.last().ok_or(PkiError::EmptyChain)?;
        if !last.self_issued {
            return Err(PkiError::UntrustedChain(format!(
                "the CA bundle must end with its self-signed root; it ends with {} issued by {}",
                last.subject, last.issuer
            )));
        }
        let signer = infos.into_iter().next().ok_or(PkiError::EmptyChain)?;
        if !same_public_key(&signer.public_key_der, &key.public_key_der()) {
            return Err(PkiError::KeyMismatch {
                subject: signer.subject,
            });
        }
        Self::assemble(key, bundle, signer)
    }

    fn assemble(
        key: PrivateKey,
        bundle: Vec<CertificateDer<'static>>,
        signer: CertInfo,
    ) -> Result<Self, PkiError> {
        let (root, intermediates) = bundle.split_last().ok_or(PkiError::EmptyChain)?;
        let anchors = TrustAnchors::new(vec![root.clone()], intermediates.to_vec())?;
        Ok(LocalCa {
            key,
            bundle,
            signer,
            anchors,
        })
    }

    /// Issues a leaf for `profile` and the DER SubjectPublicKeyInfo `public_key_der`,
    /// valid from `now` minus [`BACKDATE`] (at most a tenth of `lifetime`; not before the CA) for `lifetime`, with the
    /// given serial (1 to 20 bytes, big-endian, positive; see [`random_serial`]). Returns
    /// the leaf followed by the intermediates, without the root.
    pub fn sign(
        &self,
        profile: &CertificateProfile,
        public_key_der: &[u8],
        now: Timestamp,
        lifetime: Duration,
        serial: &[u8],
    ) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        check_serial(serial)?;
        let spec = spec_of_spki(public_key_der)?;
        let not_after = add(now, lifetime)?;
        if not_after > self.signer.not_after {
            return Err(PkiError::InvalidValidity(format!(
                "the certificate would be valid until {not_after}, after the CA {} expires at {}",
                self.signer.subject, self.signer.not_after
            )));
        }
        let backdated = now
            // Short-lived test certificates must not spend most of their life backdated.
            .checked_sub(BACKDATE.min(lifetime / 10))
            .map_err(|e| PkiError::InvalidValidity(e.to_string()))?;
        let not_before = backdated.max(self.signer.not_before);
        if now < self.signer.not_before {
            return Err(PkiError::InvalidValidity(format!(
                "the CA {} is not valid before {}",
                self.signer.subject, self.signer.not_before
            )));
        }
        let mut params = profile.to_params(spec.algorithm)?;
        params.not_before = to_offset(not_before)?;
        params.not_after = to_offset(not_after)?;
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params.is_ca = IsCa::ExplicitNoCa;
        self.sign_params(params, public_key_der)
    }

    /// Issues what a request asks for (its subject, SANs and EKUs, see
    /// [`ParsedCsr::to_profile`]) for its public key; otherwise like [`LocalCa::sign`].
    pub fn sign_csr(
        &self,
        csr: &ParsedCsr,
        now: Timestamp,
        lifetime: Duration,
        serial: &[u8],
    ) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        self.sign(
            &csr.to_profile()?,
            &csr.public_key_der,
            now,
            lifetime,
            serial,
        )
    }

    /// Signs `params` for `public_key_der` as they are; adds the authority key identifier.
    pub(crate) fn sign_params(
        &self,
        mut params: CertificateParams,
        public_key_der: &[u8],
    ) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(public_key_der)
            .map_err(|e| PkiError::UnsupportedKey(e.to_string()))?;
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_ca_cert_der(&self.bundle[0], self.key.key_pair())
            .map_err(|e| PkiError::Signing(e.to_string()))?;
        let leaf = params
            .signed_by(&public_key, &issuer)
            .map_err(|e| PkiError::Signing(e.to_string()))?;
        let mut chain = vec![leaf.der().clone()];
        chain.extend(self.intermediates().iter().cloned());
        Ok(chain)
    }

    /// The certificates between a leaf and the root (the signing certificate first), empty
    /// when the root signs directly.
    pub fn intermediates(&self) -> &[CertificateDer<'static>] {
        &self.bundle[..self.bundle.len() - 1]
    }

    /// The root certificate.
    pub fn root_der(&self) -> CertificateDer<'static> {
        self.bundle[self.bundle.len() - 1].clone()
    }

    /// The root certificate as PEM: the `ca.crt` for leaves of this CA.
    pub fn root_pem(&self) -> String {
        pem::encode(pem::CERTIFICATE, &self.root_der())
    }

    /// The signing certificate and everything above it up to the root, as PEM; with
    /// [`LocalCa::key_pem`] this is what [`LocalCa::from_pem`] reads.
    pub fn cert_pem(&self) -> String {
        chain_to_pem(&self.bundle)
    }

    /// The signing key as PKCS#8 PEM. Secret.
    pub fn key_pem(&self) -> String {
        self.key.to_pem()
    }

    /// The signing certificate's fields.
    pub fn signer(&self) -> &CertInfo {
        &self.signer
    }

    /// Trust anchors for leaves of this CA: its root, with its intermediates.
    pub fn trust_anchors(&self) -> &TrustAnchors {
        &self.anchors
    }
}

/// 16 random bytes, positive and non-zero: a serial number for [`LocalCa::sign`].
pub fn random_serial() -> Result<[u8; 16], PkiError> {
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial)
        .map_err(|_| PkiError::KeyGeneration("the random generator failed".into()))?;
    serial[0] = (serial[0] & 0x7f) | 0x01;
    Ok(serial)
}

fn check_serial(serial: &[u8]) -> Result<(), PkiError> {
    let ok = !serial.is_empty()
        && serial.len() <= 20
        && serial.iter().any(|&b| b != 0)
        && !(serial.len() == 20 && serial[0] & 0x80 != 0);
    if ok {
        Ok(())
    } else {
        Err(PkiError::InvalidProfile(
            "a serial number must be 1 to 20 bytes, non-zero and fit 20 bytes as a positive integer".into(),
        ))
    }
}

fn ca_params(common_name: &str, organization: &str) -> Result<CertificateParams, PkiError> {
    let mut dn = DistinguishedName::new();
    let country = rcgen::string::PrintableString::try_from(COUNTRY)
        .map_err(|e| PkiError::InvalidProfile(e.to_string()))?;
    dn.push(DnType::CountryName, DnValue::PrintableString(country));
    if !organization.is_empty() {
        dn.push(DnType::OrganizationName, organization);
    }
    if common_name.is_empty() {
        return Err(PkiError::InvalidProfile("a CA needs a common name".into()));
    }
    dn.push(DnType::CommonName, common_name);
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

fn add(start: Timestamp, lifetime: Duration) -> Result<Timestamp, PkiError> {
    start
        .checked_add(lifetime)
        .map_err(|e| PkiError::InvalidValidity(e.to_string()))
}

fn to_offset(ts: Timestamp) -> Result<OffsetDateTime, PkiError> {
    OffsetDateTime::from_unix_timestamp(ts.as_second())
        .map_err(|e| PkiError::InvalidValidity(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::csr::{build_csr, parse_csr};
    use crate::pki::profile::Usage;
    use crate::pki::testutil;
    use crate::pki::{KeyAlgorithm, verify_chain};

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn signs_a_csr_with_exactly_the_siths_profile() {
        let ca = testutil::ca();
        let key = testutil::rsa_2048();
        let profile = testutil::profile();
        let csr = parse_csr(&build_csr(&profile, &key).unwrap()).unwrap();
        let now = testutil::now();
        let chain = ca
            .sign_csr(&csr, now, 90 * DAY, &[0x01, 0x02, 0xAB])
            .unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1], ca.intermediates()[0]);
        let leaf = CertInfo::parse(&chain[0]).unwrap();
        assert_eq!(
            leaf.subject,
            "SERIALNUMBER=SE2321000016-ABC1, CN=api.region.se, O=Region Exempel, L=Stockholm, C=SE"
        );
        assert_eq!(leaf.issuer, "CN=Test Issuing CA, O=Test Org, C=SE");
        assert_eq!(leaf.hsa_id.as_deref(), Some("SE2321000016-ABC1"));
        assert_eq!(leaf.dns_names, vec!["api.region.se", "api2.region.se"]);
        assert_eq!(leaf.key_usage, vec!["digitalSignature", "keyEncipherment"]);
        assert!(leaf.has_extended_key_usage && leaf.server_auth && leaf.client_auth);
        assert!(!leaf.is_ca);
        assert_eq!(leaf.serial_hex, "0102AB");
        assert_eq!(leaf.key_spec, Some(KeySpec::RSA_2048));
        assert_eq!(leaf.public_key_der, key.public_key_der());
        assert_eq!(leaf.not_before, now - BACKDATE);
        assert_eq!(leaf.not_after, now + 90 * DAY);
        verify_chain(&chain, ca.trust_anchors(), now, Usage::ServerToServer).unwrap();
    }

    #[test]
    fn ecdsa_user_facing_leaf_has_digital_signature_and_server_auth_only() {
        let ca = LocalCa::generate(&testutil::ca_options("Flat Root", false)).unwrap();
        let key = KeySpec::ECDSA_P384.generate().unwrap();
        let profile = CertificateProfile {
            usage: Usage::UserFacing,
            hsa_id: None,
            locality: None,
            ..testutil::profile()
        };
        let now = testutil::now();
        let chain = ca
            .sign(&profile, &key.public_key_der(), now, DAY, &[7])
            .unwrap();
        assert_eq!(chain.len(), 1, "the root signs directly");
        let leaf = CertInfo::parse(&chain[0]).unwrap();
        assert_eq!(leaf.subject, "CN=api.region.se, O=Region Exempel, C=SE");
        assert_eq!(leaf.key_usage, vec!["digitalSignature"]);
        assert!(leaf.server_auth && !leaf.client_auth);
        assert_eq!(
            leaf.key_spec.map(|s| s.algorithm),
            Some(KeyAlgorithm::Ecdsa)
        );
        assert_eq!(leaf.public_key_der, key.public_key_der());
    }

    #[test]
    fn generated_ca_has_root_and_intermediate() {
        let ca = testutil::ca();
        let root = CertInfo::parse(&ca.root_der()).unwrap();
        assert_eq!(root.subject, "CN=Test Root CA, O=Test Org, C=SE");
        assert!(root.is_ca && root.self_issued);
        assert_eq!(root.key_usage, vec!["keyCertSign", "cRLSign"]);
        assert_eq!(ca.signer().subject, "CN=Test Issuing CA, O=Test Org, C=SE");
        assert!(ca.signer().is_ca && !ca.signer().self_issued);
        assert_eq!(ca.signer().issuer, root.subject);
        assert_eq!(ca.trust_anchors().roots(), &[ca.root_der()]);
        let debug = format!("{ca:?}");
        assert!(debug.contains("<redacted ECDSA P-256>"), "{debug}");
        assert!(!debug.contains(ca.key_pem().lines().nth(1).unwrap()));
    }

    #[test]
    fn round_trips_through_pem() {
        let ca = testutil::ca();
        let loaded = LocalCa::from_pem(&ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(loaded.root_der(), ca.root_der());
        assert_eq!(loaded.intermediates(), ca.intermediates());
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let now = testutil::now();
        let chain = loaded
            .sign(&testutil::profile(), &key.public_key_der(), now, DAY, &[1])
            .unwrap();
        verify_chain(&chain, ca.trust_anchors(), now, Usage::ServerToServer).unwrap();
    }

    #[test]
    fn from_pem_refuses_wrong_key_leaf_and_rootless_bundle() {
        let ca = testutil::ca();
        let other = KeySpec::ECDSA_P256.generate().unwrap();
        assert!(matches!(
            LocalCa::from_pem(&ca.cert_pem(), &other.to_pem()).unwrap_err(),
            PkiError::KeyMismatch { subject } if subject.contains("Test Issuing CA")
        ));
        let without_root = chain_to_pem(ca.intermediates());
        assert!(
            LocalCa::from_pem(&without_root, &ca.key_pem())
                .unwrap_err()
                .to_string()
                .contains("must end with its self-signed root")
        );
        let leaf = testutil::issue(&ca, &testutil::profile(), &other, testutil::now());
        assert!(matches!(
            LocalCa::from_pem(&chain_to_pem(&leaf[..1]), &other.to_pem()).unwrap_err(),
            PkiError::NotACa { .. }
        ));
    }

    #[test]
    fn validity_and_serial_are_checked() {
        let ca = testutil::ca();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let spki = key.public_key_der();
        let p = testutil::profile();
        let now = testutil::now();
        let err = ca.sign(&p, &spki, now, 20 * 365 * DAY, &[1]).unwrap_err();
        assert!(err.to_string().contains("after the CA"), "{err}");
        let long_ago = now - jiff::SignedDuration::from_hours(24 * 365);
        assert!(matches!(
            ca.sign(&p, &spki, long_ago, DAY, &[1]).unwrap_err(),
            PkiError::InvalidValidity(_)
        ));
        for bad in [&[][..], &[0, 0][..], &[0x80; 20][..], &[1; 21][..]] {
            assert!(matches!(
                ca.sign(&p, &spki, now, DAY, bad).unwrap_err(),
                PkiError::InvalidProfile(_)
            ));
        }
        let serial = random_serial().unwrap();
        assert!(serial[0] & 0x80 == 0 && serial[0] & 0x01 == 1);
        assert_ne!(random_serial().unwrap(), serial);
        // A key the profile does not support is refused.
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert!(matches!(
            ca.sign(
                &p,
                &rcgen::PublicKeyData::subject_public_key_info(&ed),
                now,
                DAY,
                &[1]
            )
            .unwrap_err(),
            PkiError::UnsupportedKey(_)
        ));
    }
}
