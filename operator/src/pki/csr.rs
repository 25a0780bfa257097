//! PKCS#10 certificate signing requests with the SITHS profile, and reading them back.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_LOCALITY_NAME,
    OID_X509_ORGANIZATION_NAME, OID_X509_SERIALNUMBER,
};
use x509_parser::prelude::FromDer;

use super::cert::{dn_to_string, first_attr};
use super::error::PkiError;
use super::keys::{KeySpec, PrivateKey, spec_of};
use super::pem;
use super::profile::{CertificateProfile, Usage};

/// Builds a PEM PKCS#10 request (`-----BEGIN CERTIFICATE REQUEST-----`) for `profile`,
/// signed with `key`. The request carries the subject, the SANs, the key usage and the
/// extended key usage of the profile as requested extensions.
pub fn build_csr(profile: &CertificateProfile, key: &PrivateKey) -> Result<String, PkiError> {
    let params = profile.to_params(key.spec().algorithm)?;
    let csr = params
        .serialize_request(key.key_pair())
        .map_err(|e| PkiError::Signing(e.to_string()))?;
    Ok(pem::encode(pem::CERTIFICATE_REQUEST, csr.der()))
}

/// What a certificate signing request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCsr {
    /// Subject, RFC 4514 style.
    pub subject: String,
    /// Subject CN.
    pub common_name: Option<String>,
    /// Subject serialNumber (HSA-id).
    pub hsa_id: Option<String>,
    /// Subject O.
    pub organization: Option<String>,
    /// Subject L.
    pub locality: Option<String>,
    /// Subject C.
    pub country: Option<String>,
    /// Requested SAN dNSName entries, in request order.
    pub dns_names: Vec<String>,
    /// Whether an extendedKeyUsage extension is requested.
    pub has_extended_key_usage: bool,
    /// serverAuth requested.
    pub server_auth: bool,
    /// clientAuth requested.
    pub client_auth: bool,
    /// Key algorithm and size.
    pub key_spec: KeySpec,
    /// DER SubjectPublicKeyInfo of the request.
    pub public_key_der: Vec<u8>,
    /// The DER request.
    pub der: Vec<u8>,
}

impl ParsedCsr {
    /// The use the requested EKUs mean: both serverAuth and clientAuth is
    /// [`Usage::ServerToServer`]; serverAuth alone is [`Usage::UserFacing`].
    pub fn requested_usage(&self) -> Option<Usage> {
        match (self.server_auth, self.client_auth) {
            (true, true) => Some(Usage::ServerToServer),
            (true, false) => Some(Usage::UserFacing),
            _ => None,
        }
    }

    /// The profile the request asks for, so that a signer can issue exactly that.
    /// Fails when the request has no DNS names, when its CN is not its first DNS name,
    /// or when its EKUs name no supported use.
    pub fn to_profile(&self) -> Result<CertificateProfile, PkiError> {
        let usage = self.requested_usage().ok_or_else(|| {
            PkiError::InvalidProfile(
                "the request asks for neither serverAuth nor serverAuth + clientAuth".into(),
            )
        })?;
        if let Some(cn) = &self.common_name
            && self.dns_names.first() != Some(cn)
        {
            return Err(PkiError::InvalidProfile(format!(
                "the request's CN {cn:?} is not its first DNS name ({:?})",
                self.dns_names.first()
            )));
        }
        let profile = CertificateProfile {
            dns_names: self.dns_names.clone(),
            hsa_id: self.hsa_id.clone(),
            organization: self.organization.clone().unwrap_or_default(),
            locality: self.locality.clone(),
            usage,
        };
        profile.validate()?;
        Ok(profile)
    }

    /// The request as PEM.
    pub fn to_pem(&self) -> String {
        pem::encode(pem::CERTIFICATE_REQUEST, &self.der)
    }
}

/// Reads a PEM request and checks its self-signature (proof of possession of the key).
pub fn parse_csr(pem_text: &str) -> Result<ParsedCsr, PkiError> {
    let blocks = pem::parse_only(pem_text, pem::CERTIFICATE_REQUEST)?;
    let [block] = blocks.as_slice() else {
        return Err(PkiError::BadCsr(format!(
            "expected one request, found {}",
            blocks.len()
        )));
    };
    parse_csr_der(&block.der)
}

/// Reads a DER request and checks its self-signature.
pub fn parse_csr_der(der: &[u8]) -> Result<ParsedCsr, PkiError> {
    let (rest, csr) =
        X509CertificationRequest::from_der(der).map_err(|e| PkiError::BadCsr(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::BadCsr("trailing bytes after the request".into()));
    }
    csr.verify_signature()
        .map_err(|e| PkiError::BadCsr(format!("the request's signature does not verify ({e})")))?;
    let info = &csr.certification_request_info;
    let subject = &info.subject;
    let mut parsed = ParsedCsr {
        subject: dn_to_string(subject),
        common_name: first_attr(subject, &OID_X509_COMMON_NAME),
        hsa_id: first_attr(subject, &OID_X509_SERIALNUMBER),
        organization: first_attr(subject, &OID_X509_ORGANIZATION_NAME),
        locality: first_attr(subject, &OID_X509_LOCALITY_NAME),
        country: first_attr(subject, &OID_X509_COUNTRY_NAME),
        dns_names: Vec::new(),
        has_extended_key_usage: false,
        server_auth: false,
        client_auth: false,
        key_spec: spec_of(&info.subject_pki)?,
        public_key_der: info.subject_pki.raw.to_vec(),
        der: der.to_vec(),
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    if let GeneralName::DNSName(dns) = name {
                        parsed.dns_names.push((*dns).to_string());
                    }
                }
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                parsed.has_extended_key_usage = true;
                parsed.server_auth |= eku.server_auth;
                parsed.client_auth |= eku.client_auth;
            }
            _ => {}
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil;

    /// The requested extensions of a DER request, for checking key usage bits.
    fn requested_key_usage(der: &[u8]) -> (bool, bool, bool) {
        let (_, csr) = X509CertificationRequest::from_der(der).unwrap();
        let mut found = (false, false, false);
        for ext in csr.requested_extensions().unwrap() {
            if let ParsedExtension::KeyUsage(ku) = ext {
                found = (true, ku.digital_signature(), ku.key_encipherment());
            }
        }
        found
    }

    #[test]
    fn csr_carries_the_siths_profile() {
        let key = testutil::rsa_2048();
        let profile = testutil::profile();
        let pem_text = build_csr(&profile, &key).unwrap();
        assert!(pem_text.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
        let csr = parse_csr(&pem_text).unwrap();
        assert_eq!(
            csr.subject,
            "SERIALNUMBER=SE2321000016-ABC1, CN=api.region.se, O=Region Exempel, L=Stockholm, C=SE"
        );
        assert_eq!(csr.common_name.as_deref(), Some("api.region.se"));
        assert_eq!(csr.hsa_id.as_deref(), Some("SE2321000016-ABC1"));
        assert_eq!(csr.organization.as_deref(), Some("Region Exempel"));
        assert_eq!(csr.locality.as_deref(), Some("Stockholm"));
        assert_eq!(csr.country.as_deref(), Some("SE"));
        assert_eq!(csr.dns_names, vec!["api.region.se", "api2.region.se"]);
        assert!(csr.has_extended_key_usage && csr.server_auth && csr.client_auth);
        assert_eq!(csr.requested_usage(), Some(Usage::ServerToServer));
        assert_eq!(csr.key_spec, KeySpec::RSA_2048);
        assert_eq!(csr.public_key_der, key.public_key_der());
        assert_eq!(requested_key_usage(&csr.der), (true, true, true));
        assert_eq!(csr.to_profile().unwrap(), profile);
        assert_eq!(csr.to_pem(), pem_text);
    }

    #[test]
    fn ecdsa_user_facing_csr_has_no_key_encipherment_and_no_client_auth() {
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let profile = CertificateProfile {
            usage: Usage::UserFacing,
            hsa_id: None,
            ..testutil::profile()
        };
        let csr = parse_csr(&build_csr(&profile, &key).unwrap()).unwrap();
        assert_eq!(requested_key_usage(&csr.der), (true, true, false));
        assert!(csr.server_auth && !csr.client_auth);
        assert_eq!(csr.requested_usage(), Some(Usage::UserFacing));
        assert_eq!(
            csr.subject,
            "CN=api.region.se, O=Region Exempel, L=Stockholm, C=SE"
        );
        assert_eq!(csr.to_profile().unwrap(), profile);
    }

    #[test]
    fn subject_strings_use_printable_for_c_and_serial_number() {
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let csr = parse_csr(&build_csr(&testutil::profile(), &key).unwrap()).unwrap();
        let (_, req) = X509CertificationRequest::from_der(&csr.der).unwrap();
        let tags: Vec<_> = req
            .certification_request_info
            .subject
            .iter_attributes()
            .map(|a| a.attr_value().tag())
            .collect();
        use x509_parser::der_parser::asn1_rs::Tag;
        assert_eq!(
            tags,
            vec![
                Tag::PrintableString, // C
                Tag::Utf8String,      // L
                Tag::Utf8String,      // O
                Tag::Utf8String,      // CN
                Tag::PrintableString, // serialNumber
            ]
        );
    }

    #[test]
    fn tampered_or_wrong_input_is_refused() {
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let csr = parse_csr(&build_csr(&testutil::profile(), &key).unwrap()).unwrap();
        // Flip a byte inside the subject: the signature no longer verifies.
        let mut der = csr.der.clone();
        let pos = der
            .windows(b"Stockholm".len())
            .position(|w| w == b"Stockholm")
            .unwrap();
        der[pos] = b's';
        let err = parse_csr_der(&der).unwrap_err();
        assert!(
            err.to_string().contains("signature does not verify"),
            "{err}"
        );

        assert!(matches!(
            parse_csr(&testutil::siths_pem("sithseidrootcav2.pem")).unwrap_err(),
            PkiError::UnexpectedPemBlock { index: 1, .. }
        ));
        assert!(matches!(
            parse_csr(&pem::encode(pem::CERTIFICATE_REQUEST, b"\x30\x00")).unwrap_err(),
            PkiError::BadCsr(_)
        ));
        let two = format!("{}{}", csr.to_pem(), csr.to_pem());
        assert!(parse_csr(&two).unwrap_err().to_string().contains("found 2"));
    }

    #[test]
    fn profile_of_a_request_without_usage_or_with_stray_cn_is_refused() {
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let mut csr = parse_csr(&build_csr(&testutil::profile(), &key).unwrap()).unwrap();
        csr.common_name = Some("other.region.se".into());
        assert!(
            csr.to_profile()
                .unwrap_err()
                .to_string()
                .contains("not its first DNS name")
        );
        csr.common_name = None;
        csr.server_auth = false;
        assert_eq!(csr.requested_usage(), None);
        assert!(csr.to_profile().is_err());
    }
}
