//! Reading certificates: PEM chains, the fields the operator looks at, fingerprints.

use jiff::Timestamp;
use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::oid::Oid;
use x509_parser::oid_registry::{
    OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_LOCALITY_NAME,
    OID_X509_ORGANIZATION_NAME, OID_X509_SERIALNUMBER,
};
use x509_parser::prelude::{FromDer, GeneralName};
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use super::error::PkiError;
use super::keys::{KeySpec, PrivateKey, spec_of};
use super::pem;

/// Reads a PEM bundle of certificates, in the order given. Every block must be a
/// `CERTIFICATE` holding a well-formed X.509 certificate; anything else (a key, a CSR,
/// a truncated block, DER garbage) is an error naming the block.
pub fn parse_pem_chain(pem_text: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    pem::parse_only(pem_text, pem::CERTIFICATE)?
        .into_iter()
        .map(|block| {
            parse_x509(&block.der, block.index)?;
            Ok(CertificateDer::from(block.der))
        })
        .collect()
}

/// Whether `bytes` look like DER: an ASN.1 SEQUENCE whose length covers the input (a
/// certificate, key or CSR saved in binary form instead of PEM).
pub fn looks_like_der(bytes: &[u8]) -> bool {
    let (Some(&0x30), Some(&first)) = (bytes.first(), bytes.get(1)) else {
        return false;
    };
    let (header, len) = match first {
        0..=0x7f => (2, usize::from(first)),
        0x81 => (3, bytes.get(2).map_or(0, |&b| usize::from(b))),
        0x82 => (
            4,
            bytes
                .get(2..4)
                .map_or(0, |b| usize::from(b[0]) << 8 | usize::from(b[1])),
        ),
        0x83 => (
            5,
            bytes.get(2..5).map_or(0, |b| {
                usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2])
            }),
        ),
        _ => return false,
    };
    len > 0 && header + len <= bytes.len() && bytes.len() <= header + len + 2
}

/// Certificates given as a file's bytes, as PEM text: PEM as it is, or one DER certificate
/// converted to PEM (what `openssl x509 -inform der` would print). Anything else binary is
/// an error that says what it looks like; the bytes are never echoed.
pub fn certificates_pem_from_bytes(bytes: &[u8]) -> Result<String, PkiError> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_string());
    }
    if looks_like_der(bytes) {
        return match parse_x509(bytes, 1) {
            Ok(_) => Ok(pem::encode(pem::CERTIFICATE, bytes)),
            Err(_) => Err(PkiError::NotACertificateFile(
                "the file is binary DER but not an X.509 certificate (a DER key or CSR?); give the certificate, in PEM or DER".into(),
            )),
        };
    }
    Err(PkiError::NotACertificateFile(
        "the file is binary but not a DER certificate; give the certificate in PEM (-----BEGIN CERTIFICATE-----) or DER".into(),
    ))
}

/// Encodes certificates as a PEM bundle, in the order given.
pub fn chain_to_pem(chain: &[CertificateDer<'_>]) -> String {
    chain
        .iter()
        .map(|der| pem::encode(pem::CERTIFICATE, der))
        .collect()
}

/// SHA-256 of `der`, as uppercase hex without separators (the form DOMAIN.md pins).
pub fn sha256_fingerprint(der: &[u8]) -> String {
    hex_upper(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref())
}

/// The fields of a certificate the operator reads and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject, RFC 4514 style (`SERIALNUMBER=…, CN=…, O=…, L=…, C=SE`).
    pub subject: String,
    /// Subject CN.
    pub common_name: Option<String>,
    /// Subject serialNumber: the HSA-id in SITHS function certificates.
    pub hsa_id: Option<String>,
    /// Subject O.
    pub organization: Option<String>,
    /// Subject L.
    pub locality: Option<String>,
    /// Subject C.
    pub country: Option<String>,
    /// SAN dNSName entries, in certificate order.
    pub dns_names: Vec<String>,
    /// SAN entries of any other type, in words (`iPAddress 10.0.0.1`, `URI https://…`).
    pub other_subject_alt_names: Vec<String>,
    /// Issuer, RFC 4514 style.
    pub issuer: String,
    /// Serial number as uppercase hex.
    pub serial_hex: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    /// Key algorithm and size, when RSA >= 2048 or ECDSA P-256/P-384.
    pub key_spec: Option<KeySpec>,
    /// Key algorithm in words, for example `RSA 2048`, or why it is unsupported.
    pub key_description: String,
    /// Whether a keyUsage extension is present.
    pub has_key_usage: bool,
    /// Key usage bits set, by RFC 5280 name (`digitalSignature`, `keyEncipherment`, …).
    pub key_usage: Vec<&'static str>,
    /// Extended key usages other than serverAuth and clientAuth (`codeSigning`, an OID, …).
    pub other_extended_key_usages: Vec<String>,
    /// Whether an extendedKeyUsage extension is present.
    pub has_extended_key_usage: bool,
    /// EKU serverAuth present.
    pub server_auth: bool,
    /// EKU clientAuth present.
    pub client_auth: bool,
    /// basicConstraints cA is set.
    pub is_ca: bool,
    /// Subject and issuer are the same name (a root, or a self-signed leaf).
    pub self_issued: bool,
    /// SHA-256 of the DER certificate, uppercase hex.
    pub sha256_fingerprint: String,
}

impl CertInfo {
    /// Reads a DER certificate.
    pub fn parse(der: &[u8]) -> Result<Self, PkiError> {
        let cert = parse_x509(der, 1)?;
        let bad = |detail: String| PkiError::BadCertificate { index: 1, detail };
        let subject = cert.subject();
        let mut dns_names = Vec::new();
        let mut other_subject_alt_names = Vec::new();
        if let Some(san) = cert
            .subject_alternative_name()
            .map_err(|e| bad(format!("subjectAltName: {e}")))?
        {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => dns_names.push((*dns).to_string()),
                    other => other_subject_alt_names.push(describe_general_name(other)),
                }
            }
        }
        let eku = cert
            .extended_key_usage()
            .map_err(|e| bad(format!("extendedKeyUsage: {e}")))?;
        let key_usage_ext = cert
            .key_usage()
            .map_err(|e| bad(format!("keyUsage: {e}")))?;
        let has_key_usage = key_usage_ext.is_some();
        let key_usage = key_usage_ext
            .map(|ku| {
                let ku = ku.value;
                [
                    (ku.digital_signature(), "digitalSignature"),
                    (ku.non_repudiation(), "nonRepudiation"),
                    (ku.key_encipherment(), "keyEncipherment"),
                    (ku.data_encipherment(), "dataEncipherment"),
                    (ku.key_agreement(), "keyAgreement"),
                    (ku.key_cert_sign(), "keyCertSign"),
                    (ku.crl_sign(), "cRLSign"),
                ]
                .into_iter()
                .filter_map(|(set, name)| set.then_some(name))
                .collect()
            })
            .unwrap_or_default();
        let is_ca = cert
            .basic_constraints()
            .map_err(|e| bad(format!("basicConstraints: {e}")))?
            .is_some_and(|bc| bc.value.ca);
        let (key_spec, key_description) = match spec_of(cert.public_key()) {
            Ok(spec) => (Some(spec), spec.to_string()),
            Err(e) => (None, e.to_string()),
        };
        let validity = cert.validity();
        Ok(CertInfo {
            subject: dn_to_string(subject),
            common_name: first_attr(subject, &OID_X509_COMMON_NAME),
            hsa_id: first_attr(subject, &OID_X509_SERIALNUMBER),
            organization: first_attr(subject, &OID_X509_ORGANIZATION_NAME),
            locality: first_attr(subject, &OID_X509_LOCALITY_NAME),
            country: first_attr(subject, &OID_X509_COUNTRY_NAME),
            dns_names,
            other_subject_alt_names,
            issuer: dn_to_string(cert.issuer()),
            serial_hex: hex_upper(cert.raw_serial()),
            not_before: timestamp(validity.not_before.timestamp())?,
            not_after: timestamp(validity.not_after.timestamp())?,
            public_key_der: cert.public_key().raw.to_vec(),
            key_spec,
            key_description,
            has_key_usage,
            key_usage,
            other_extended_key_usages: eku
                .as_ref()
                .map(|e| other_ekus(e.value))
                .unwrap_or_default(),
            has_extended_key_usage: eku.is_some(),
            server_auth: eku.as_ref().is_some_and(|e| e.value.server_auth),
            client_auth: eku.as_ref().is_some_and(|e| e.value.client_auth),
            is_ca,
            self_issued: subject.as_raw() == cert.issuer().as_raw(),
            sha256_fingerprint: sha256_fingerprint(der),
        })
    }

    /// Whether `now` lies within the validity period (both ends inclusive).
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// The EKUs present, in words: `serverAuth and clientAuth`, `serverAuth`, …
    pub fn eku_description(&self) -> String {
        match (
            self.has_extended_key_usage,
            self.server_auth,
            self.client_auth,
        ) {
            (false, _, _) => "no extendedKeyUsage extension".into(),
            (true, true, true) => "serverAuth and clientAuth".into(),
            (true, true, false) => "serverAuth only".into(),
            (true, false, true) => "clientAuth only".into(),
            (true, false, false) => "neither serverAuth nor clientAuth".into(),
        }
    }
}

/// A SAN entry other than dNSName, in words; short, and never more than 80 characters of
/// its value.
fn describe_general_name(name: &GeneralName<'_>) -> String {
    let short = |v: &str| v.chars().take(80).collect::<String>();
    match name {
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => format!(
                "iPAddress {}",
                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).unwrap_or_default())
            ),
            16 => format!(
                "iPAddress {}",
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default())
            ),
            _ => "iPAddress (malformed)".to_string(),
        },
        GeneralName::RFC822Name(v) => format!("rfc822Name {}", short(v)),
        GeneralName::URI(v) => format!("URI {}", short(v)),
        GeneralName::DirectoryName(n) => format!("directoryName {}", short(&n.to_string())),
        GeneralName::OtherName(oid, _) => format!("otherName {oid}"),
        GeneralName::RegisteredID(oid) => format!("registeredID {oid}"),
        GeneralName::X400Address(_) => "x400Address".to_string(),
        GeneralName::EDIPartyName(_) => "ediPartyName".to_string(),
        GeneralName::DNSName(v) => format!("dNSName {}", short(v)),
        GeneralName::Invalid(..) => "an unreadable entry".to_string(),
    }
}

fn other_ekus(eku: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> Vec<String> {
    let mut out: Vec<String> = [
        (eku.any, "anyExtendedKeyUsage"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| name.to_string())
    .collect();
    out.extend(eku.other.iter().map(|oid| oid.to_id_string()));
    out
}

/// Whether the certificate's public key is the public half of `key`.
pub fn key_matches(info: &CertInfo, key: &PrivateKey) -> bool {
    same_public_key(&info.public_key_der, &key.public_key_der())
}

/// Compares two DER SubjectPublicKeyInfos by algorithm, curve and key bits, so that an
/// absent versus NULL RSA parameter does not matter.
pub(crate) fn same_public_key(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let (Ok((_, a)), Ok((_, b))) = (
        SubjectPublicKeyInfo::from_der(a),
        SubjectPublicKeyInfo::from_der(b),
    ) else {
        return false;
    };
    let params = |s: &SubjectPublicKeyInfo<'_>| {
        s.algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string())
    };
    a.algorithm.algorithm == b.algorithm.algorithm
        && params(&a) == params(&b)
        && a.subject_public_key.data == b.subject_public_key.data
}

/// Parses DER as X.509, rejecting trailing bytes; `index` names the certificate in errors.
pub(crate) fn parse_x509(der: &[u8], index: usize) -> Result<X509Certificate<'_>, PkiError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::BadCertificate {
        index,
        detail: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(PkiError::BadCertificate {
            index,
            detail: format!("{} trailing bytes after the certificate", rest.len()),
        });
    }
    Ok(cert)
}

/// A name RFC 4514 style: last RDN first, `SERIALNUMBER=…, CN=…, O=…, C=SE`.
pub(crate) fn dn_to_string(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let key = attr_name(atv.attr_type());
                    let value = match atv.as_str() {
                        Ok(s) => escape_dn_value(s),
                        Err(_) => format!("#{}", hex_upper(atv.attr_value().data)),
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(", ")
}

/// The first value of attribute `oid` in `name`, as text.
pub(crate) fn first_attr(name: &X509Name<'_>, oid: &Oid<'_>) -> Option<String> {
    name.iter_by_oid(oid)
        .next()
        .and_then(|atv| atv.as_str().ok())
        .map(str::to_string)
}

fn attr_name(oid: &Oid<'_>) -> String {
    match oid.to_id_string().as_str() {
        "2.5.4.3" => "CN".into(),
        "2.5.4.5" => "SERIALNUMBER".into(),
        "2.5.4.6" => "C".into(),
        "2.5.4.7" => "L".into(),
        "2.5.4.8" => "ST".into(),
        "2.5.4.10" => "O".into(),
        "2.5.4.11" => "OU".into(),
        "2.5.4.97" => "organizationIdentifier".into(),
        "0.9.2342.19200300.100.1.25" => "DC".into(),
        "1.2.840.113549.1.9.1" => "emailAddress".into(),
        other => other.to_string(),
    }
}

fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let needs = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, ' ' | '#'))
            || (i + 1 == value.chars().count() && c == ' ');
        if needs {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

fn timestamp(seconds: i64) -> Result<Timestamp, PkiError> {
    Timestamp::from_second(seconds).map_err(|e| PkiError::BadCertificate {
        index: 1,
        detail: format!("validity date out of range: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil;

    #[test]
    fn reads_the_real_siths_root() {
        let chain = parse_pem_chain(&testutil::siths_pem("sithseidrootcav2.pem")).unwrap();
        assert_eq!(chain.len(), 1);
        let info = CertInfo::parse(&chain[0]).unwrap();
        assert_eq!(info.subject, "CN=SITHS e-id Root CA v2, O=Inera AB, C=SE");
        assert_eq!(info.issuer, info.subject);
        assert_eq!(info.common_name.as_deref(), Some("SITHS e-id Root CA v2"));
        assert_eq!(info.organization.as_deref(), Some("Inera AB"));
        assert_eq!(info.country.as_deref(), Some("SE"));
        assert_eq!(info.hsa_id, None);
        assert_eq!(info.serial_hex, "016ABA6D5D708A279471A6200B593B");
        assert_eq!(info.not_before.to_string(), "2019-05-15T07:51:29Z");
        assert_eq!(info.not_after.to_string(), "2049-09-15T20:00:00Z");
        assert_eq!(info.key_description, "RSA 4096");
        assert_eq!(info.key_usage, vec!["keyCertSign", "cRLSign"]);
        assert!(info.is_ca && info.self_issued && !info.has_extended_key_usage);
        assert_eq!(
            info.sha256_fingerprint,
            "8767260AC829D833C30AF23857CBF8A2304BFDA445303DFCE5043AFA73E584C1"
        );
    }

    #[test]
    fn reads_a_chain_in_order_and_writes_it_back() {
        let text = format!(
            "{}\n{}",
            testutil::siths_pem("sithseidfunctioncav1.pem"),
            testutil::siths_pem("sithseidrootcav2.pem")
        );
        let chain = parse_pem_chain(&text).unwrap();
        assert_eq!(chain.len(), 2);
        let issuing = CertInfo::parse(&chain[0]).unwrap();
        assert_eq!(
            issuing.subject,
            "CN=SITHS e-id Function CA v1, O=Inera AB, C=SE"
        );
        assert_eq!(issuing.issuer, "CN=SITHS e-id Root CA v2, O=Inera AB, C=SE");
        assert!(!issuing.self_issued);
        let again = parse_pem_chain(&chain_to_pem(&chain)).unwrap();
        assert_eq!(again, chain);
    }

    #[test]
    fn chain_errors_say_what_is_wrong() {
        assert_eq!(
            parse_pem_chain("").unwrap_err(),
            PkiError::NoPemBlock {
                expected: "CERTIFICATE"
            }
        );
        let root = testutil::siths_pem("sithseidrootcav2.pem");
        let truncated = &root[..root.len() / 2];
        assert!(matches!(
            parse_pem_chain(truncated).unwrap_err(),
            PkiError::TruncatedPem { index: 1, .. }
        ));
        let key = crate::pki::KeySpec::ECDSA_P256.generate().unwrap();
        let with_key = format!("{root}{}", key.to_pem());
        let err = parse_pem_chain(&with_key).unwrap_err();
        assert_eq!(
            err,
            PkiError::UnexpectedPemBlock {
                index: 2,
                label: "PRIVATE KEY".into(),
                expected: "CERTIFICATE"
            }
        );
        // The message names the block, never its content.
        assert!(
            !err.to_string()
                .contains(key.to_pem().lines().nth(1).unwrap())
        );
        let garbage = pem::encode(pem::CERTIFICATE, b"\x30\x03\x02\x01\x01");
        assert!(matches!(
            parse_pem_chain(&format!("{root}{garbage}")).unwrap_err(),
            PkiError::BadCertificate { index: 2, .. }
        ));
        let mut der = parse_pem_chain(&root).unwrap()[0].to_vec();
        der.push(0);
        let err = parse_pem_chain(&pem::encode(pem::CERTIFICATE, &der)).unwrap_err();
        assert!(err.to_string().contains("1 trailing bytes"), "{err}");
    }

    #[test]
    fn fingerprint_is_uppercase_hex_sha256() {
        assert_eq!(
            sha256_fingerprint(b"abc"),
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        );
    }

    #[test]
    fn key_matching_compares_public_keys() {
        let key = crate::pki::KeySpec::ECDSA_P256.generate().unwrap();
        let other = crate::pki::KeySpec::ECDSA_P256.generate().unwrap();
        let ca = testutil::ca();
        let chain = testutil::issue(&ca, &testutil::profile(), &key, testutil::now());
        let info = CertInfo::parse(&chain[0]).unwrap();
        assert!(key_matches(&info, &key));
        assert!(!key_matches(&info, &other));
        assert!(!same_public_key(&info.public_key_der, b"junk"));
    }

    #[test]
    fn dn_values_are_escaped() {
        assert_eq!(escape_dn_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_dn_value(" x "), "\\ x\\ ");
        assert_eq!(escape_dn_value("#1"), "\\#1");
    }

    #[test]
    fn certificate_files_may_be_pem_or_one_der_certificate() {
        let ca = crate::pki::testutil::ca();
        let der = ca.root_der();
        assert!(looks_like_der(der.as_ref()));
        assert_eq!(
            certificates_pem_from_bytes(der.as_ref()).unwrap(),
            chain_to_pem(std::slice::from_ref(&der))
        );
        let pem = ca.root_pem();
        assert_eq!(certificates_pem_from_bytes(pem.as_bytes()).unwrap(), pem);
        // A DER CSR is DER, but not a certificate: said so, bytes not echoed.
        let key = crate::pki::KeySpec::ECDSA_P256.generate().unwrap();
        let csr = crate::pki::parse_csr(
            &crate::pki::build_csr(&crate::pki::testutil::profile(), &key).unwrap(),
        )
        .unwrap();
        let e = certificates_pem_from_bytes(&csr.der)
            .unwrap_err()
            .to_string();
        assert!(e.contains("binary DER but not an X.509 certificate"), "{e}");
        let e = certificates_pem_from_bytes(&[0xff, 0xfe, 0x00, 0x01])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("neither") || e.contains("not a DER certificate"),
            "{e}"
        );
        // A truncated DER certificate does not pass for DER.
        assert!(!looks_like_der(&der.as_ref()[..40]));
    }
}
