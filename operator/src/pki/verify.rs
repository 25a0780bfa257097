//! Chain verification against explicit trust anchors, with rustls-webpki and a caller-given
//! time (so that verification is deterministic and testable).

use std::time::Duration;

use jiff::Timestamp;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter};

use super::cert::{CertInfo, chain_to_pem, parse_pem_chain};
use super::error::PkiError;
use super::profile::Usage;

/// DER content of the serverAuth OID 1.3.6.1.5.5.7.3.1.
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// DER content of the clientAuth OID 1.3.6.1.5.5.7.3.2.
const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// Root CA certificates to verify against, plus intermediates that may complete a chain.
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    roots: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
}

impl TrustAnchors {
    /// Trusts `roots`; `intermediates` are only used to complete chains, never trusted on
    /// their own. Every certificate must be a CA; at least one root is needed.
    pub fn new(
        roots: Vec<CertificateDer<'static>>,
        intermediates: Vec<CertificateDer<'static>>,
    ) -> Result<Self, PkiError> {
        if roots.is_empty() {
            return Err(PkiError::EmptyChain);
        }
        for der in roots.iter().chain(&intermediates) {
            let info = CertInfo::parse(der)?;
            if !info.is_ca {
                return Err(PkiError::NotACa {
                    subject: info.subject,
                });
            }
        }
        let anchors = roots
            .iter()
            .map(|der| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|a| a.to_owned())
                    .map_err(|e| PkiError::BadCertificate {
                        index: 1,
                        detail: format!("not usable as a trust anchor: {e:?}"),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustAnchors {
            roots,
            anchors,
            intermediates,
        })
    }

    /// Sorts CA certificates into roots (self-issued) and intermediates (the rest).
    pub fn from_certs(certs: Vec<CertificateDer<'static>>) -> Result<Self, PkiError> {
        let mut roots = Vec::new();
        let mut intermediates = Vec::new();
        for der in certs {
            if CertInfo::parse(&der)?.self_issued {
                roots.push(der);
            } else {
                intermediates.push(der);
            }
        }
        Self::new(roots, intermediates)
    }

    /// Reads a PEM bundle of CA certificates; see [`TrustAnchors::from_certs`].
    pub fn from_pem(pem_text: &str) -> Result<Self, PkiError> {
        Self::from_certs(parse_pem_chain(pem_text)?)
    }

    /// The trusted roots.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// The intermediates offered for chain building.
    pub fn intermediates(&self) -> &[CertificateDer<'static>] {
        &self.intermediates
    }

    /// The roots as a PEM bundle (for a `ca.crt`).
    pub fn roots_pem(&self) -> String {
        chain_to_pem(&self.roots)
    }
}

/// A chain that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The leaf followed by the intermediates used, towards the root (root excluded).
    pub chain: Vec<CertificateDer<'static>>,
    /// The root the chain ends at: the content of `ca.crt`.
    pub root: CertificateDer<'static>,
}

/// Verifies that `chain` (leaf first, then any intermediates, in any order) leads to one
/// of the roots in `anchors` at time `now`, and that the leaf is fit for `usage`: it must
/// carry an extendedKeyUsage with serverAuth, and for [`Usage::ServerToServer`] also
/// clientAuth. Intermediates that carry an EKU must allow the same purposes.
pub fn verify_chain(
    chain: &[CertificateDer<'_>],
    anchors: &TrustAnchors,
    now: Timestamp,
    usage: Usage,
) -> Result<VerifiedChain, PkiError> {
    let verified = verify_with_policy(chain, anchors, now, Some(usage))?;
    let leaf = CertInfo::parse(&chain[0])?;
    let fit = leaf.has_extended_key_usage
        && leaf.server_auth
        && (leaf.client_auth || !usage.needs_client_auth());
    if !fit {
        return Err(PkiError::MissingExtendedKeyUsage {
            required: usage.required_eku(),
            found: leaf.eku_description(),
        });
    }
    Ok(verified)
}

/// Chain building with an EKU policy: `None` accepts any EKU.
pub(crate) fn verify_with_policy(
    chain: &[CertificateDer<'_>],
    anchors: &TrustAnchors,
    now: Timestamp,
    usage: Option<Usage>,
) -> Result<VerifiedChain, PkiError> {
    let (leaf_der, rest) = chain.split_first().ok_or(PkiError::EmptyChain)?;
    let leaf = EndEntityCert::try_from(leaf_der).map_err(|e| PkiError::BadCertificate {
        index: 1,
        detail: format!("{e:?}"),
    })?;
    let intermediates: Vec<CertificateDer<'_>> = rest
        .iter()
        .chain(&anchors.intermediates)
        .map(|c| CertificateDer::from(c.as_ref()))
        .collect();
    let seconds = u64::try_from(now.as_second()).unwrap_or(0);
    let time = UnixTime::since_unix_epoch(Duration::from_secs(seconds));
    let policy = EkuPolicy(usage);
    let path = leaf
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors.anchors,
            &intermediates,
            time,
            &policy,
            None,
            None,
        )
        .map_err(|e| PkiError::UntrustedChain(describe(&e)))?;
    let anchor = path.anchor();
    let root_index = anchors
        .anchors
        .iter()
        .position(|a| {
            a.subject == anchor.subject
                && a.subject_public_key_info == anchor.subject_public_key_info
        })
        .ok_or_else(|| PkiError::UntrustedChain("verified against an unknown anchor".into()))?;
    let mut out = vec![leaf_der.clone().into_owned()];
    out.extend(
        path.intermediate_certificates()
            .map(|c| c.der().into_owned()),
    );
    Ok(VerifiedChain {
        chain: out,
        root: anchors.roots[root_index].clone(),
    })
}

/// "If an EKU is present it must allow the use": applied by webpki to every certificate
/// of the path; that the leaf carries an EKU at all is checked separately.
struct EkuPolicy(Option<Usage>);

impl ExtendedKeyUsageValidator for EkuPolicy {
    fn validate(&self, mut iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let Some(usage) = self.0 else {
            return iter.try_for_each(|r| r.map(|_| ()));
        };
        let server = KeyPurposeId::new(EKU_SERVER_AUTH);
        let client = KeyPurposeId::new(EKU_CLIENT_AUTH);
        let (mut has_server, mut has_client) = (false, false);
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            has_server |= id == server;
            has_client |= id == client;
            present.push(id.to_decoded_oid());
        }
        let missing = if !has_server {
            EKU_SERVER_AUTH
        } else if usage.needs_client_auth() && !has_client {
            EKU_CLIENT_AUTH
        } else {
            return Ok(());
        };
        if present.is_empty() {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            webpki::RequiredEkuNotFoundContext {
                required: webpki::KeyUsage::required(missing),
                present,
            },
        ))
    }
}

/// A person-readable reason for a webpki error.
fn describe(e: &webpki::Error) -> String {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => {
            "no path to a trusted root CA (unknown issuer; is an intermediate missing?)".into()
        }
        E::CertExpired { .. } => "a certificate in the chain has expired".into(),
        E::CertNotValidYet { .. } => "a certificate in the chain is not valid yet".into(),
        E::InvalidSignatureForPublicKey => "a signature in the chain does not verify".into(),
        E::CaUsedAsEndEntity => "the first certificate is a CA, not a leaf".into(),
        E::RequiredEkuNotFoundContext(_) => {
            "a certificate in the chain does not allow the required extended key usage".into()
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::profile::CertificateProfile;
    use crate::pki::testutil;
    use crate::pki::{KeySpec, LocalCa};

    #[test]
    fn issued_chain_verifies_to_its_root() {
        let ca = testutil::ca();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let now = testutil::now();
        let chain = testutil::issue(&ca, &testutil::profile(), &key, now);
        assert_eq!(chain.len(), 2, "leaf + intermediate");
        let anchors = ca.trust_anchors();
        let verified = verify_chain(&chain, anchors, now, Usage::ServerToServer).unwrap();
        assert_eq!(verified.chain, chain);
        assert_eq!(verified.root, ca.root_der());
        // Without the intermediate in the chain it is found among the anchors' intermediates.
        let with_intermediate =
            TrustAnchors::new(vec![ca.root_der()], vec![chain[1].clone()]).unwrap();
        let verified =
            verify_chain(&chain[..1], &with_intermediate, now, Usage::ServerToServer).unwrap();
        assert_eq!(verified.chain, chain);
        // Without it anywhere the chain is broken.
        let root_only = TrustAnchors::new(vec![ca.root_der()], vec![]).unwrap();
        let err = verify_chain(&chain[..1], &root_only, now, Usage::ServerToServer).unwrap_err();
        assert!(err.to_string().contains("unknown issuer"), "{err}");
    }

    #[test]
    fn time_is_the_callers() {
        let ca = testutil::ca();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let now = testutil::now();
        let chain = testutil::issue(&ca, &testutil::profile(), &key, now);
        let anchors = ca.trust_anchors();
        let later = now + jiff::SignedDuration::from_hours(24 * 400);
        let err = verify_chain(&chain, anchors, later, Usage::ServerToServer).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
        let earlier = now - jiff::SignedDuration::from_hours(1);
        let err = verify_chain(&chain, anchors, earlier, Usage::ServerToServer).unwrap_err();
        assert!(err.to_string().contains("not valid yet"), "{err}");
    }

    #[test]
    fn server_to_server_needs_both_ekus() {
        let ca = testutil::ca();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let now = testutil::now();
        let user_facing = CertificateProfile {
            usage: Usage::UserFacing,
            ..testutil::profile()
        };
        let chain = testutil::issue(&ca, &user_facing, &key, now);
        let anchors = ca.trust_anchors();
        verify_chain(&chain, anchors, now, Usage::UserFacing).unwrap();
        let err = verify_chain(&chain, anchors, now, Usage::ServerToServer).unwrap_err();
        assert!(
            err.to_string().contains("required extended key usage"),
            "{err}"
        );
        // Any EKU policy accepts it.
        verify_with_policy(&chain, anchors, now, None).unwrap();
    }

    #[test]
    fn leaf_without_eku_is_not_fit_for_tls() {
        let ca = testutil::ca();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let now = testutil::now();
        let chain = testutil::issue_custom(&ca, &key, now, |p| p.extended_key_usages.clear());
        let err = verify_chain(&chain, ca.trust_anchors(), now, Usage::UserFacing).unwrap_err();
        assert_eq!(
            err,
            PkiError::MissingExtendedKeyUsage {
                required: "serverAuth",
                found: "no extendedKeyUsage extension".into()
            }
        );
    }

    #[test]
    fn a_different_root_is_not_trusted() {
        let ca = testutil::ca();
        let other = LocalCa::generate(&testutil::ca_options("Other CA", false)).unwrap();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let now = testutil::now();
        let chain = testutil::issue(&ca, &testutil::profile(), &key, now);
        let err =
            verify_chain(&chain, other.trust_anchors(), now, Usage::ServerToServer).unwrap_err();
        assert!(matches!(err, PkiError::UntrustedChain(_)));
        // Picks the right root among several.
        let both = TrustAnchors::new(vec![other.root_der(), ca.root_der()], vec![]).unwrap();
        let verified = verify_chain(&chain, &both, now, Usage::ServerToServer).unwrap();
        assert_eq!(verified.root, ca.root_der());
    }

    #[test]
    fn anchors_must_be_cas_and_are_sorted_by_self_issuance() {
        let ca = testutil::ca();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let chain = testutil::issue(&ca, &testutil::profile(), &key, testutil::now());
        let err = TrustAnchors::new(vec![chain[0].clone()], vec![]).unwrap_err();
        assert!(
            matches!(err, PkiError::NotACa { subject } if subject.contains("CN=api.region.se"))
        );
        let bundle = chain_to_pem(&[chain[1].clone(), ca.root_der()]);
        let anchors = TrustAnchors::from_pem(&bundle).unwrap();
        assert_eq!(anchors.roots(), &[ca.root_der()]);
        assert_eq!(anchors.intermediates(), &[chain[1].clone()]);
        assert_eq!(anchors.roots_pem(), ca.root_pem());
        assert_eq!(
            TrustAnchors::new(vec![], vec![]).unwrap_err(),
            PkiError::EmptyChain
        );
        assert_eq!(
            verify_chain(&[], &anchors, testutil::now(), Usage::UserFacing).unwrap_err(),
            PkiError::EmptyChain
        );
    }

    #[test]
    fn real_siths_issuing_ca_verifies_to_its_root_as_a_ca_chain() {
        // The real production function CA chains to the real root (checked as a path,
        // with the issuing CA in leaf position webpki refuses it as an end entity).
        let root = parse_pem_chain(&testutil::siths_pem("sithseidrootcav2.pem")).unwrap();
        let issuing = parse_pem_chain(&testutil::siths_pem("sithseidfunctioncav1.pem")).unwrap();
        let anchors = TrustAnchors::new(root.clone(), vec![]).unwrap();
        let err =
            verify_chain(&issuing, &anchors, testutil::now(), Usage::ServerToServer).unwrap_err();
        assert!(err.to_string().contains("is a CA, not a leaf"), "{err}");
    }
}
