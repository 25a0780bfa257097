//! The SITHS function certificate profile: subject, SANs, key usage and EKU.
//!
//! Subject (RFC 4514 order, most specific first):
//! `SERIALNUMBER=<hsaId>, CN=<first DNS name>, O=<organisation>, L=<locality>, C=SE`;
//! a SAN dNSName for every name; key usage digitalSignature (+ keyEncipherment for RSA);
//! EKU serverAuth + clientAuth for server-to-server use, serverAuth only for user-facing.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose,
    KeyUsagePurpose, SanType,
};

use super::error::PkiError;
use super::keys::KeyAlgorithm;

/// OID of the X.520 `serialNumber` attribute, which carries the HSA-id.
pub const SERIAL_NUMBER_OID: [u64; 4] = [2, 5, 4, 5];
/// The country written into every subject.
pub const COUNTRY: &str = "SE";
/// Longest value of an X.520 `serialNumber` attribute.
const SERIAL_NUMBER_MAX_LEN: usize = 64;

/// What a certificate is for, which decides its extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Usage {
    /// Mutual TLS between systems: serverAuth **and** clientAuth (stays on SITHS).
    ServerToServer,
    /// A service browsers connect to: serverAuth only (moves to a public CA).
    UserFacing,
}

impl Usage {
    /// Whether the use needs the clientAuth EKU as well as serverAuth.
    pub fn needs_client_auth(self) -> bool {
        matches!(self, Usage::ServerToServer)
    }

    /// The EKUs the use needs, in words.
    pub fn required_eku(self) -> &'static str {
        match self {
            Usage::ServerToServer => "serverAuth and clientAuth",
            Usage::UserFacing => "serverAuth",
        }
    }
}

/// The identity and use of a certificate to request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateProfile {
    /// DNS names; the first is also the subject CN. At least one.
    pub dns_names: Vec<String>,
    /// HSA-id of the function, written as subject `serialNumber`.
    pub hsa_id: Option<String>,
    /// Organisation name (subject O); omitted from the subject when empty.
    pub organization: String,
    /// Locality (subject L).
    pub locality: Option<String>,
    /// Intended use, which decides the EKU.
    pub usage: Usage,
}

impl CertificateProfile {
    /// The subject common name: the first DNS name.
    pub fn common_name(&self) -> Option<&str> {
        self.dns_names.first().map(String::as_str)
    }

    /// Checks that the profile can be encoded: at least one DNS name, each a syntactically
    /// valid DNS name (not an IP address) and none repeated; an HSA-id of printable
    /// characters. Policy (domain validation, HSA-id format) is checked elsewhere.
    pub fn validate(&self) -> Result<(), PkiError> {
        if self.dns_names.is_empty() {
            return Err(PkiError::InvalidProfile(
                "at least one DNS name is required".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in &self.dns_names {
            // A wildcard is allowed as the whole leftmost label (`*.region.se`).
            let base = name.strip_prefix("*.").unwrap_or(name);
            if name.parse::<std::net::IpAddr>().is_ok()
                || rustls_pki_types::DnsName::try_from(base).is_err()
                || base.contains('*')
                || name.ends_with('.')
            {
                return Err(PkiError::InvalidProfile(format!(
                    "{name:?} is not a valid DNS name"
                )));
            }
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(PkiError::InvalidProfile(format!(
                    "DNS name {name:?} is listed twice"
                )));
            }
        }
        if let Some(hsa_id) = &self.hsa_id
            && (hsa_id.is_empty()
                || hsa_id.len() > SERIAL_NUMBER_MAX_LEN
                || rcgen::string::PrintableString::try_from(hsa_id.as_str()).is_err())
        {
            return Err(PkiError::InvalidProfile(format!(
                "HSA-id {hsa_id:?} must be 1 to {SERIAL_NUMBER_MAX_LEN} letters, digits or hyphens"
            )));
        }
        if self.locality.as_deref() == Some("") {
            return Err(PkiError::InvalidProfile(
                "locality must not be empty when given".into(),
            ));
        }
        Ok(())
    }

    /// The subject distinguished name, in DER order C, L, O, CN, serialNumber.
    pub(crate) fn subject(&self) -> Result<DistinguishedName, PkiError> {
        self.validate()?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, printable(COUNTRY)?);
        if let Some(locality) = &self.locality {
            dn.push(DnType::LocalityName, locality.as_str());
        }
        if !self.organization.is_empty() {
            dn.push(DnType::OrganizationName, self.organization.as_str());
        }
        if let Some(cn) = self.common_name() {
            dn.push(DnType::CommonName, cn);
        }
        if let Some(hsa_id) = &self.hsa_id {
            dn.push(
                DnType::CustomDnType(SERIAL_NUMBER_OID.to_vec()),
                printable(hsa_id)?,
            );
        }
        Ok(dn)
    }

    /// rcgen parameters carrying the full profile for a key of `algorithm`. Validity,
    /// serial and CA flags are left for the signer to set.
    pub(crate) fn to_params(&self, algorithm: KeyAlgorithm) -> Result<CertificateParams, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = self.subject()?;
        params.subject_alt_names = self
            .dns_names
            .iter()
            .map(|name| {
                rcgen::string::Ia5String::try_from(name.as_str())
                    .map(SanType::DnsName)
                    .map_err(|e| PkiError::InvalidProfile(format!("{name:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        params.key_usages = match algorithm {
            KeyAlgorithm::Rsa => vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
            KeyAlgorithm::Ecdsa => vec![KeyUsagePurpose::DigitalSignature],
        };
        params.extended_key_usages = match self.usage {
            Usage::ServerToServer => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Usage::UserFacing => vec![ExtendedKeyUsagePurpose::ServerAuth],
        };
        Ok(params)
    }
}

fn printable(value: &str) -> Result<DnValue, PkiError> {
    rcgen::string::PrintableString::try_from(value)
        .map(DnValue::PrintableString)
        .map_err(|e| PkiError::InvalidProfile(format!("{value:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn profile() -> CertificateProfile {
        CertificateProfile {
            dns_names: vec!["api.region.se".into(), "api2.region.se".into()],
            hsa_id: Some("SE2321000016-ABC1".into()),
            organization: "Region Exempel".into(),
            locality: Some("Stockholm".into()),
            usage: Usage::ServerToServer,
        }
    }

    #[test]
    fn subject_is_written_in_siths_order() {
        let dn = profile().subject().unwrap();
        let types: Vec<_> = dn.iter().map(|(t, _)| t.clone()).collect();
        assert_eq!(
            types,
            vec![
                DnType::CountryName,
                DnType::LocalityName,
                DnType::OrganizationName,
                DnType::CommonName,
                DnType::CustomDnType(vec![2, 5, 4, 5]),
            ]
        );
        assert_eq!(
            dn.get(&DnType::CommonName),
            Some(&DnValue::Utf8String("api.region.se".into()))
        );
    }

    #[test]
    fn optional_parts_are_left_out() {
        let p = CertificateProfile {
            hsa_id: None,
            locality: None,
            organization: String::new(),
            ..profile()
        };
        let types: Vec<_> = p
            .subject()
            .unwrap()
            .iter()
            .map(|(t, _)| t.clone())
            .collect();
        assert_eq!(types, vec![DnType::CountryName, DnType::CommonName]);
    }

    #[test]
    fn key_usage_depends_on_the_key_and_eku_on_the_usage() {
        let rsa = profile().to_params(KeyAlgorithm::Rsa).unwrap();
        assert_eq!(
            rsa.key_usages,
            vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment
            ]
        );
        assert_eq!(
            rsa.extended_key_usages,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth
            ]
        );
        let user_facing = CertificateProfile {
            usage: Usage::UserFacing,
            ..profile()
        };
        let ec = user_facing.to_params(KeyAlgorithm::Ecdsa).unwrap();
        assert_eq!(ec.key_usages, vec![KeyUsagePurpose::DigitalSignature]);
        assert_eq!(
            ec.extended_key_usages,
            vec![ExtendedKeyUsagePurpose::ServerAuth]
        );
        assert_eq!(ec.subject_alt_names.len(), 2);
    }

    #[test]
    fn invalid_profiles_are_refused() {
        let cases: Vec<(CertificateProfile, &str)> = vec![
            (
                CertificateProfile {
                    dns_names: vec![],
                    ..profile()
                },
                "at least one DNS name",
            ),
            (
                CertificateProfile {
                    dns_names: vec!["10.0.0.1".into()],
                    ..profile()
                },
                "not a valid DNS name",
            ),
            (
                CertificateProfile {
                    dns_names: vec!["bad name.se".into()],
                    ..profile()
                },
                "not a valid DNS name",
            ),
            (
                CertificateProfile {
                    dns_names: vec!["a.se".into(), "A.se".into()],
                    ..profile()
                },
                "listed twice",
            ),
            (
                CertificateProfile {
                    hsa_id: Some("SE2321000016@X".into()),
                    ..profile()
                },
                "HSA-id",
            ),
            (
                CertificateProfile {
                    locality: Some(String::new()),
                    ..profile()
                },
                "locality",
            ),
        ];
        for (p, needle) in cases {
            let err = p.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
        profile().validate().unwrap();
    }

    #[test]
    fn a_wildcard_is_valid_only_as_the_whole_leftmost_label() {
        let profile = |n: &str| CertificateProfile {
            dns_names: vec![n.to_string()],
            hsa_id: None,
            organization: "R".into(),
            locality: None,
            usage: Usage::ServerToServer,
        };
        assert!(profile("*.region.se").validate().is_ok());
        assert!(profile("a.*.region.se").validate().is_err());
        assert!(profile("*a.region.se").validate().is_err());
        assert!(profile("*.*.region.se").validate().is_err());
    }
}
