//! The acceptance check run on every certificate that comes back: imported by a person or
//! returned by a CA. It must be for our key, our names and our HSA-id, valid now, fit for
//! the use, and chain to a trusted root.

use std::collections::BTreeSet;
use std::fmt;

use jiff::Timestamp;
use rustls_pki_types::CertificateDer;

use super::cert::{CertInfo, chain_to_pem, parse_pem_chain, same_public_key, sha256_fingerprint};
use super::csr::{ParsedCsr, parse_csr};
use super::keys::{KeyAlgorithm, spec_of_spki};
use super::profile::Usage;
use super::public_trust::{mozilla_roots, verifies_to};
use super::siths::{SithsAnchors, SithsVerdict, is_siths};
use super::verify::{TrustAnchors, verify_chain};

/// What the certificate must match: taken from the request the operator made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The DNS names requested; the certificate must carry exactly these (in any order,
    /// case-insensitively).
    pub dns_names: Vec<String>,
    /// The HSA-id requested (subject serialNumber); `None` means the certificate must not
    /// carry one.
    pub hsa_id: Option<String>,
    /// DER SubjectPublicKeyInfo of the key held in the cluster.
    pub public_key_der: Vec<u8>,
    /// Intended use, which decides the required EKUs (and, for
    /// [`Usage::ServerToServer`], the key usage of the SITHS function certificate profile).
    pub usage: Usage,
    /// The subject attributes requested (CN, O, L, C; the HSA-id is `hsa_id`), taken from
    /// the CSR: the certificate must carry exactly these and, for server-to-server, the
    /// function certificate profile's key usage and EKU. `None` (a certificate already held,
    /// or the public route) checks only that a CN, if any, is one of the names.
    pub subject: Option<ExpectedSubject>,
}

/// The subject attributes a request asked for, besides the HSA-id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedSubject {
    /// CN.
    pub common_name: Option<String>,
    /// O.
    pub organization: Option<String>,
    /// L.
    pub locality: Option<String>,
    /// C.
    pub country: Option<String>,
}

impl ExpectedSubject {
    /// The subject of a parsed request.
    pub fn of_csr(csr: &ParsedCsr) -> Self {
        ExpectedSubject {
            common_name: csr.common_name.clone(),
            organization: csr.organization.clone(),
            locality: csr.locality.clone(),
            country: csr.country.clone(),
        }
    }

    /// The subject of a PEM request (an order's `csr`).
    pub fn from_csr_pem(csr_pem: &str) -> Result<Self, super::PkiError> {
        parse_csr(csr_pem).map(|csr| Self::of_csr(&csr))
    }
}

/// A subject attribute the import check compares with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectAttribute {
    /// CN.
    CommonName,
    /// O.
    Organization,
    /// L.
    Locality,
    /// C.
    Country,
}

impl SubjectAttribute {
    fn short(self) -> &'static str {
        match self {
            SubjectAttribute::CommonName => "CN",
            SubjectAttribute::Organization => "O",
            SubjectAttribute::Locality => "L",
            SubjectAttribute::Country => "C",
        }
    }
}

impl Expected {
    /// What a certificate for `csr` must match: its names, HSA-id, subject, key and the
    /// use its EKUs ask for (server-to-server when they name none).
    pub fn from_csr(csr: &ParsedCsr) -> Self {
        Expected {
            dns_names: csr.dns_names.clone(),
            hsa_id: csr.hsa_id.clone(),
            public_key_der: csr.public_key_der.clone(),
            usage: csr.requested_usage().unwrap_or(Usage::ServerToServer),
            subject: Some(ExpectedSubject::of_csr(csr)),
        }
    }
}

/// A certificate that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The leaf's fields.
    pub leaf: CertInfo,
    /// The leaf followed by the intermediates used, towards the root (root excluded).
    pub chain: Vec<CertificateDer<'static>>,
    /// The root the chain verified to, when its certificate is known (a root of Mozilla's
    /// store is known by name and key only).
    pub root: Option<CertificateDer<'static>>,
}

impl Accepted {
    /// Leaf and intermediates as PEM: the content of `tls.crt`.
    pub fn chain_pem(&self) -> String {
        chain_to_pem(&self.chain)
    }

    /// The root as PEM: the content of `ca.crt`; empty when the root is not known.
    pub fn root_pem(&self) -> String {
        chain_to_pem(self.root.as_slice())
    }
}

/// Why a certificate was not accepted. [`Rejection::reason`] is a stable machine-readable
/// reason (for a condition); [`Rejection::message`] tells a person what was expected and
/// what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The input is not a PEM certificate chain.
    Unparseable {
        /// What is wrong with it.
        detail: String,
    },
    /// The chain does not verify to a trusted root.
    UntrustedChain {
        /// Subject of the leaf.
        subject: String,
        /// Issuer of the leaf.
        issuer: String,
        /// Why verification failed.
        detail: String,
        /// Subjects of the trusted roots.
        trusted_roots: Vec<String>,
    },
    /// No certificate in the input is for the key held in the cluster.
    KeyMismatch {
        /// The key the request was made with (algorithm and SPKI fingerprint).
        expected_key: String,
        /// The key of the certificate (algorithm and SPKI fingerprint).
        found_key: String,
    },
    /// The SAN DNS names differ from those requested.
    DnsNamesMismatch {
        /// Requested names.
        expected: Vec<String>,
        /// Names in the certificate.
        found: Vec<String>,
    },
    /// The subject serialNumber differs from the HSA-id requested.
    HsaIdMismatch {
        /// Requested HSA-id.
        expected: Option<String>,
        /// HSA-id in the certificate.
        found: Option<String>,
    },
    /// The certificate's validity has not started.
    NotYetValid {
        /// Start of validity.
        not_before: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
    /// The certificate has expired.
    Expired {
        /// End of validity.
        not_after: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
    /// The certificate lacks an EKU the use needs.
    MissingExtendedKeyUsage {
        /// The intended use.
        usage: Usage,
        /// The EKUs found, in words.
        found: String,
    },
    /// A subject attribute (CN, O, L, C) differs from the request, or the CN is not one of
    /// the names.
    SubjectMismatch {
        /// Which attribute.
        attribute: SubjectAttribute,
        /// What the request asked for (for CN without a request: one of the names).
        expected: Option<String>,
        /// What the certificate carries.
        found: Option<String>,
    },
    /// The certificate carries subjectAltName entries other than the DNS names ordered.
    UnexpectedSubjectAltName {
        /// The extra entries, in words.
        found: Vec<String>,
    },
    /// The keyUsage extension is missing or lacks a usage the profile requires.
    MissingKeyUsage {
        /// The usages required.
        required: Vec<&'static str>,
        /// The usages found; `None` without a keyUsage extension.
        found: Option<Vec<&'static str>>,
    },
    /// The certificate may sign certificates or CRLs (a CA), which a function
    /// certificate must not.
    UnexpectedKeyUsage {
        /// What makes it a CA, in words.
        found: Vec<String>,
    },
    /// The certificate carries extended key usages beyond serverAuth and clientAuth.
    UnexpectedExtendedKeyUsage {
        /// The extra EKUs.
        found: Vec<String>,
    },
    /// A SITHS certificate offered where a publicly trusted one is required.
    ChainsToSiths {
        /// Issuer of the leaf.
        issuer: String,
        /// Whether the chain verified to a pinned SITHS root (not only a SITHS name).
        verified: bool,
    },
}

impl Rejection {
    /// A stable reason, suitable for a Kubernetes condition `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Unparseable { .. } => "Unparseable",
            Rejection::UntrustedChain { .. } => "UntrustedChain",
            Rejection::KeyMismatch { .. } => "KeyMismatch",
            Rejection::DnsNamesMismatch { .. } => "DnsNamesMismatch",
            Rejection::HsaIdMismatch { .. } => "HsaIdMismatch",
            Rejection::NotYetValid { .. } => "NotYetValid",
            Rejection::Expired { .. } => "Expired",
            Rejection::MissingExtendedKeyUsage { .. } => "MissingExtendedKeyUsage",
            Rejection::ChainsToSiths { .. } => "ChainsToSiths",
            Rejection::SubjectMismatch { attribute, .. } => match attribute {
                SubjectAttribute::CommonName => "CommonNameMismatch",
                SubjectAttribute::Organization => "OrganizationMismatch",
                SubjectAttribute::Locality => "LocalityMismatch",
                SubjectAttribute::Country => "CountryMismatch",
            },
            Rejection::UnexpectedSubjectAltName { .. } => "UnexpectedSubjectAltName",
            Rejection::MissingKeyUsage { .. } => "MissingKeyUsage",
            Rejection::UnexpectedKeyUsage { .. } => "UnexpectedKeyUsage",
            Rejection::UnexpectedExtendedKeyUsage { .. } => "UnexpectedExtendedKeyUsage",
        }
    }

    /// What was expected and what was found, for a person.
    pub fn message(&self) -> String {
        match self {
            Rejection::Unparseable { detail } => format!(
                "the certificate could not be read: {detail}; paste the PEM certificate chain (-----BEGIN CERTIFICATE-----), leaf first"
            ),
            Rejection::UntrustedChain {
                subject,
                issuer,
                detail,
                trusted_roots,
            } => format!(
                "the certificate {subject} issued by {issuer} does not chain to a trusted root ({detail}); trusted roots: {}",
                if trusted_roots.is_empty() {
                    "none".to_string()
                } else {
                    trusted_roots.join("; ")
                }
            ),
            Rejection::KeyMismatch {
                expected_key,
                found_key,
            } => format!(
                "the certificate is for a different key: expected {expected_key}, found {found_key}; was it issued for another CSR?"
            ),
            Rejection::DnsNamesMismatch { expected, found } => {
                let expected_set = lower_set(expected);
                let found_set = lower_set(found);
                let missing: Vec<_> = expected_set.difference(&found_set).cloned().collect();
                let extra: Vec<_> = found_set.difference(&expected_set).cloned().collect();
                let mut msg = format!(
                    "expected DNS names [{}], the certificate has [{}]",
                    expected.join(", "),
                    found.join(", ")
                );
                if !missing.is_empty() {
                    msg.push_str(&format!("; missing: {}", missing.join(", ")));
                }
                if !extra.is_empty() {
                    msg.push_str(&format!("; not requested: {}", extra.join(", ")));
                }
                msg
            }
            Rejection::HsaIdMismatch { expected, found } => format!(
                "expected HSA-id {} in the subject serialNumber, the certificate has {}",
                expected.as_deref().unwrap_or("(none)"),
                found.as_deref().unwrap_or("none")
            ),
            Rejection::NotYetValid { not_before, now } => format!(
                "the certificate is not valid until {not_before} (now {now}); check the clocks or wait"
            ),
            Rejection::Expired { not_after, now } => {
                format!("the certificate expired at {not_after} (now {now})")
            }
            Rejection::MissingExtendedKeyUsage { usage, found } => format!(
                "{} use needs extended key usage {}; the certificate has {found}",
                match usage {
                    Usage::ServerToServer => "server-to-server",
                    Usage::UserFacing => "user-facing",
                },
                usage.required_eku()
            ),
            Rejection::SubjectMismatch {
                attribute,
                expected,
                found,
            } => {
                let a = attribute.short();
                let found = found
                    .as_deref()
                    .map_or("none".to_string(), |f| format!("{a}={f}"));
                match expected {
                    Some(e) => format!(
                        "the request asked for {a}={e} in the subject, the certificate has {found}; was it issued for another request?"
                    ),
                    None if *attribute == SubjectAttribute::CommonName => format!(
                        "the certificate's subject has {found}, which is not one of its DNS names"
                    ),
                    None => format!(
                        "the request has no {a} in the subject, the certificate has {found}; was it issued for another request?"
                    ),
                }
            }
            Rejection::UnexpectedSubjectAltName { found } => format!(
                "the certificate carries subjectAltName entries that were not ordered: {}; only the ordered DNS names may be there",
                found.join(", ")
            ),
            Rejection::MissingKeyUsage { required, found } => format!(
                "a SITHS function certificate needs key usage {}; the certificate has {}",
                required.join(" and "),
                match found {
                    None => "no keyUsage extension".to_string(),
                    Some(f) if f.is_empty() => "an empty keyUsage".to_string(),
                    Some(f) => f.join(", "),
                }
            ),
            Rejection::UnexpectedKeyUsage { found } => format!(
                "the certificate is a CA or may sign certificates ({}); a function certificate must not",
                found.join(", ")
            ),
            Rejection::UnexpectedExtendedKeyUsage { found } => format!(
                "a SITHS function certificate has extended key usage serverAuth and clientAuth only; the certificate also has {}",
                found.join(", ")
            ),
            Rejection::ChainsToSiths { issuer, verified } => format!(
                "the certificate is issued by {issuer}, {}; browsers stop trusting SITHS, so a user-facing endpoint needs a certificate from a publicly trusted CA (Telia or another ACME CA); keep SITHS for server-to-server traffic on its own Secret",
                if *verified {
                    "which chains to SITHS"
                } else {
                    "a name that claims SITHS"
                }
            ),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason(), self.message())
    }
}

impl std::error::Error for Rejection {}

/// How far a certificate's notBefore may lie ahead of our clock and still be accepted: a
/// CA's clock that runs a little ahead (or a certificate signed the second before it
/// arrives) is not a reason to refuse a paid certificate. NotYetValid beyond it.
pub const CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// The time a certificate with `not_before` is judged at: `now`, or its notBefore when
/// that lies at most [`CLOCK_SKEW`] ahead.
pub fn judged_at(now: Timestamp, not_before: Timestamp) -> Timestamp {
    if not_before > now && not_before.duration_since(now) <= CLOCK_SKEW {
        not_before
    } else {
        now
    }
}

/// Checks a PEM certificate chain against what was requested, at time `now`. The leaf is
/// the certificate for the expected key, wherever it is in the input; the others are
/// offered as intermediates. Checks run in this order: readable, key, DNS names,
/// HSA-id, subject (CN, O, L, C), no other SAN types, validity, EKU, the function
/// certificate profile's key usage and EKU (server-to-server, against a request), chain.
pub fn check_issued(
    chain_pem: &str,
    expected: &Expected,
    anchors: &TrustAnchors,
    now: Timestamp,
) -> Result<Accepted, Rejection> {
    check_with(chain_pem, expected, now, &|ordered, at| {
        verify_chain(ordered, anchors, at, expected.usage)
            .map(|v| (v.chain, Some(v.root)))
            .map_err(|e| untrusted_detail(e, anchors))
    })
}

/// Everything [`check_issued`] checks except the chain, which needs the issuer's trust
/// anchors: what `sithsctl orders import` checks before it writes, so that a person learns
/// at once that a certificate is for another request. The operator then runs
/// [`check_issued`] on the same text.
pub fn check_against_request(
    chain_pem: &str,
    expected: &Expected,
    now: Timestamp,
) -> Result<CertInfo, Rejection> {
    check_with(chain_pem, expected, now, &|ordered, _| {
        Ok((ordered.to_vec(), None))
    })
    .map(|a| a.leaf)
}

/// The check of a certificate on the public route: everything [`check_issued`] checks
/// (leaf for the key, exact names, validity, serverAuth), except that the chain must
/// verify to Mozilla's root store or to `additional` roots configured on the issuer, and
/// a chain that belongs to SITHS (`siths`, or a SITHS name on any issuer) is refused
/// whatever else is configured.
pub fn check_public(
    chain_pem: &str,
    expected: &Expected,
    additional: Option<&TrustAnchors>,
    siths: &[&SithsAnchors],
    now: Timestamp,
) -> Result<Accepted, Rejection> {
    if let Ok(certs) = parse_pem_chain(chain_pem)
        && let Some(leaf) = certs.first().and_then(|d| CertInfo::parse(d).ok())
    {
        let at = now.clamp(leaf.not_before, leaf.not_after);
        match is_siths(&certs, siths, at) {
            SithsVerdict::NotSiths => {}
            verdict => {
                return Err(Rejection::ChainsToSiths {
                    issuer: leaf.issuer,
                    verified: verdict != SithsVerdict::NameOnly,
                });
            }
        }
    }
    check_with(chain_pem, expected, now, &|ordered, at| {
        if let Some(extra) = additional
            && let Ok(v) = verify_chain(ordered, extra, at, expected.usage)
        {
            return Ok((v.chain, Some(v.root)));
        }
        if verifies_to(ordered, mozilla_roots(), at) {
            return Ok((ordered.to_vec(), None));
        }
        let mut roots = vec!["Mozilla's root store (publicly trusted CAs)".to_string()];
        roots.extend(
            additional
                .into_iter()
                .flat_map(|a| a.roots())
                .filter_map(|r| CertInfo::parse(r).ok())
                .map(|i| i.subject),
        );
        Err((
            "it is not publicly trusted: no chain to a root browsers trust".to_string(),
            roots,
        ))
    })
}

type Verified = (
    Vec<CertificateDer<'static>>,
    Option<CertificateDer<'static>>,
);
type Untrusted = (String, Vec<String>);
/// Verifies a chain (ordered leaf first) at the time given.
type VerifyChain<'a> =
    &'a dyn Fn(&[CertificateDer<'static>], Timestamp) -> Result<Verified, Untrusted>;

fn untrusted_detail(e: super::PkiError, anchors: &TrustAnchors) -> Untrusted {
    (
        match e {
            super::PkiError::UntrustedChain(d) => d,
            other => other.to_string(),
        },
        anchors
            .roots()
            .iter()
            .filter_map(|r| CertInfo::parse(r).ok())
            .map(|i| i.subject)
            .collect(),
    )
}

/// Checks in order: readable, key, DNS names, HSA-id, subject, SAN types, validity, EKU,
/// profile (server-to-server), then `verify` on the chain ordered leaf first.
fn check_with(
    chain_pem: &str,
    expected: &Expected,
    now: Timestamp,
    verify: VerifyChain<'_>,
) -> Result<Accepted, Rejection> {
    let unparseable = |e: super::PkiError| Rejection::Unparseable {
        detail: e.to_string(),
    };
    let certs = parse_pem_chain(chain_pem).map_err(unparseable)?;
    let infos = certs
        .iter()
        .map(|der| CertInfo::parse(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unparseable)?;

    let Some(leaf_index) = infos
        .iter()
        .position(|i| same_public_key(&i.public_key_der, &expected.public_key_der))
    else {
        let shown = infos.iter().find(|i| !i.is_ca).unwrap_or(&infos[0]);
        return Err(Rejection::KeyMismatch {
            expected_key: describe_key(&expected.public_key_der),
            found_key: describe_key(&shown.public_key_der),
        });
    };
    let leaf = &infos[leaf_index];

    if lower_set(&expected.dns_names) != lower_set(&leaf.dns_names) {
        return Err(Rejection::DnsNamesMismatch {
            expected: expected.dns_names.clone(),
            found: leaf.dns_names.clone(),
        });
    }
    let hsa_matches = match (&expected.hsa_id, &leaf.hsa_id) {
        (Some(e), Some(f)) => e.eq_ignore_ascii_case(f),
        (None, None) => true,
        _ => false,
    };
    if !hsa_matches {
        return Err(Rejection::HsaIdMismatch {
            expected: expected.hsa_id.clone(),
            found: leaf.hsa_id.clone(),
        });
    }
    check_subject(leaf, expected)?;
    if !leaf.other_subject_alt_names.is_empty() {
        return Err(Rejection::UnexpectedSubjectAltName {
            found: leaf.other_subject_alt_names.clone(),
        });
    }
    // A CA whose clock runs a little ahead of ours: a certificate whose validity starts
    // within CLOCK_SKEW is judged as of its notBefore (chain included).
    let at = judged_at(now, leaf.not_before);
    if at < leaf.not_before {
        return Err(Rejection::NotYetValid {
            not_before: leaf.not_before,
            now,
        });
    }
    if now > leaf.not_after {
        return Err(Rejection::Expired {
            not_after: leaf.not_after,
            now,
        });
    }
    let eku_ok = leaf.has_extended_key_usage
        && leaf.server_auth
        && (leaf.client_auth || !expected.usage.needs_client_auth());
    if !eku_ok {
        return Err(Rejection::MissingExtendedKeyUsage {
            usage: expected.usage,
            found: leaf.eku_description(),
        });
    }

    // The profile's key usage and EKU are what a request asks for: checked on a
    // certificate that answers one (an import), not on one already held in a Secret,
    // which an earlier import accepted (a stricter check there would re-order, and a
    // SITHS order costs money and weeks).
    if expected.usage == Usage::ServerToServer && expected.subject.is_some() {
        check_function_profile(leaf)?;
    }

    let mut ordered = vec![certs[leaf_index].clone()];
    ordered.extend(
        certs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != leaf_index)
            .map(|(_, c)| c.clone()),
    );
    let (chain, root) =
        verify(&ordered, at).map_err(|(detail, trusted_roots)| Rejection::UntrustedChain {
            subject: leaf.subject.clone(),
            issuer: leaf.issuer.clone(),
            detail,
            trusted_roots,
        })?;
    Ok(Accepted {
        leaf: leaf.clone(),
        chain,
        root,
    })
}

/// The subject: each of CN, O, L, C as requested (when the request is known); a CN that
/// is one of the names in any case.
fn check_subject(leaf: &CertInfo, expected: &Expected) -> Result<(), Rejection> {
    if let Some(want) = &expected.subject {
        for (attribute, want, got) in [
            (
                SubjectAttribute::CommonName,
                &want.common_name,
                &leaf.common_name,
            ),
            (
                SubjectAttribute::Organization,
                &want.organization,
                &leaf.organization,
            ),
            (SubjectAttribute::Locality, &want.locality, &leaf.locality),
            (SubjectAttribute::Country, &want.country, &leaf.country),
        ] {
            let same = match (want, got) {
                (Some(w), Some(g)) => w.eq_ignore_ascii_case(g),
                (None, None) => true,
                _ => false,
            };
            if !same {
                return Err(Rejection::SubjectMismatch {
                    attribute,
                    expected: want.clone(),
                    found: got.clone(),
                });
            }
        }
    }
    if let Some(cn) = &leaf.common_name
        && !leaf.dns_names.iter().any(|n| n.eq_ignore_ascii_case(cn))
    {
        return Err(Rejection::SubjectMismatch {
            attribute: SubjectAttribute::CommonName,
            expected: None,
            found: Some(cn.clone()),
        });
    }
    Ok(())
}

/// Key usage and EKU of the SITHS function certificate profile: digitalSignature (and
/// keyEncipherment for an RSA key), not a CA, no EKU beyond serverAuth and clientAuth.
fn check_function_profile(leaf: &CertInfo) -> Result<(), Rejection> {
    let mut required = vec!["digitalSignature"];
    if leaf
        .key_spec
        .is_some_and(|k| k.algorithm == KeyAlgorithm::Rsa)
    {
        required.push("keyEncipherment");
    }
    if !leaf.has_key_usage || required.iter().any(|r| !leaf.key_usage.contains(r)) {
        return Err(Rejection::MissingKeyUsage {
            required,
            found: leaf.has_key_usage.then(|| leaf.key_usage.clone()),
        });
    }
    let mut ca: Vec<String> = leaf
        .key_usage
        .iter()
        .filter(|u| matches!(**u, "keyCertSign" | "cRLSign"))
        .map(|u| u.to_string())
        .collect();
    if leaf.is_ca {
        ca.insert(0, "basicConstraints cA".to_string());
    }
    if !ca.is_empty() {
        return Err(Rejection::UnexpectedKeyUsage { found: ca });
    }
    if !leaf.other_extended_key_usages.is_empty() {
        return Err(Rejection::UnexpectedExtendedKeyUsage {
            found: leaf.other_extended_key_usages.clone(),
        });
    }
    Ok(())
}

fn lower_set(names: &[String]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_ascii_lowercase()).collect()
}

/// `RSA 2048 key (SPKI SHA-256 0123456789ABCDEF…)`: enough to tell keys apart, never
/// secret.
fn describe_key(spki_der: &[u8]) -> String {
    let fingerprint = sha256_fingerprint(spki_der);
    let algorithm = match spec_of_spki(spki_der) {
        Ok(spec) => spec.to_string(),
        Err(_) => "unsupported".to_string(),
    };
    format!("{algorithm} key (SPKI SHA-256 {}…)", &fingerprint[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::profile::CertificateProfile;
    use crate::pki::testutil;
    use crate::pki::{KeySpec, LocalCa, PrivateKey};
    use jiff::SignedDuration;

    struct Fixture {
        ca: LocalCa,
        key: PrivateKey,
        now: Timestamp,
        expected: Expected,
    }

    fn fixture() -> Fixture {
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let profile = testutil::profile();
        Fixture {
            ca: testutil::ca(),
            now: testutil::now(),
            expected: Expected {
                dns_names: profile.dns_names.clone(),
                hsa_id: profile.hsa_id.clone(),
                public_key_der: key.public_key_der(),
                usage: profile.usage,
                subject: Some(ExpectedSubject {
                    common_name: profile.common_name().map(str::to_string),
                    organization: Some(profile.organization.clone()),
                    locality: profile.locality.clone(),
                    country: Some("SE".into()),
                }),
            },
            key,
        }
    }

    impl Fixture {
        fn issue(&self, profile: &CertificateProfile) -> String {
            chain_to_pem(&testutil::issue(&self.ca, profile, &self.key, self.now))
        }

        fn check(&self, pem_text: &str) -> Result<Accepted, Rejection> {
            check_issued(pem_text, &self.expected, self.ca.trust_anchors(), self.now)
        }
    }

    /// A user-facing profile: serverAuth only, no HSA-id.
    fn public_fixture(ca_name: &str) -> (LocalCa, PrivateKey, Expected, String) {
        let ca = LocalCa::generate(&testutil::ca_options(ca_name, true)).unwrap();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let profile = CertificateProfile {
            hsa_id: None,
            usage: Usage::UserFacing,
            ..testutil::profile()
        };
        let expected = Expected {
            dns_names: profile.dns_names.clone(),
            hsa_id: None,
            public_key_der: key.public_key_der(),
            usage: Usage::UserFacing,
            subject: None,
        };
        let pem = chain_to_pem(&testutil::issue(&ca, &profile, &key, testutil::now()));
        (ca, key, expected, pem)
    }

    #[test]
    fn public_route_accepts_a_configured_test_root_and_reports_it() {
        let (ca, _key, expected, pem) = public_fixture("Pebble Root CA");
        let now = testutil::now();
        let accepted = check_public(&pem, &expected, Some(ca.trust_anchors()), &[], now).unwrap();
        assert_eq!(accepted.root, Some(ca.root_der()));
        assert_eq!(accepted.chain.len(), 2, "leaf and issuing CA");
    }

    #[test]
    fn public_route_refuses_what_browsers_do_not_trust() {
        let (_ca, _key, expected, pem) = public_fixture("Private Root CA");
        let r = check_public(&pem, &expected, None, &[], testutil::now()).unwrap_err();
        assert_eq!(r.reason(), "UntrustedChain");
        assert!(
            r.message().contains("not publicly trusted"),
            "{}",
            r.message()
        );
        assert!(r.message().contains("Mozilla"), "{}", r.message());
    }

    #[test]
    fn public_route_never_accepts_siths_even_when_its_root_is_configured() {
        // A CA named like SITHS, its root listed as an additional anchor: still refused.
        let (ca, _key, expected, pem) = public_fixture("SITHS e-id Root CA v2");
        let r = check_public(
            &pem,
            &expected,
            Some(ca.trust_anchors()),
            &[],
            testutil::now(),
        )
        .unwrap_err();
        assert_eq!(r.reason(), "ChainsToSiths");
        assert!(r.message().contains("browsers"), "{}", r.message());
        // Verified against SITHS anchors it says so.
        let siths =
            SithsAnchors::explicit(ca.trust_anchors().clone(), super::super::Environment::Test);
        let r = check_public(&pem, &expected, None, &[&siths], testutil::now()).unwrap_err();
        assert_eq!(
            r,
            Rejection::ChainsToSiths {
                issuer: CertInfo::parse(&parse_pem_chain(&pem).unwrap()[0])
                    .unwrap()
                    .issuer,
                verified: true
            }
        );
    }

    #[test]
    fn public_route_still_checks_names_key_and_usage() {
        let (ca, _key, mut expected, pem) = public_fixture("Pebble Root CA");
        let now = testutil::now();
        let anchors = Some(ca.trust_anchors());
        expected.dns_names.push("extra.region.se".into());
        let r = check_public(&pem, &expected, anchors, &[], now).unwrap_err();
        assert_eq!(r.reason(), "DnsNamesMismatch");
        expected.dns_names.pop();
        expected.public_key_der = KeySpec::ECDSA_P256.generate().unwrap().public_key_der();
        let r = check_public(&pem, &expected, anchors, &[], now).unwrap_err();
        assert_eq!(r.reason(), "KeyMismatch");
        let later = now + SignedDuration::from_hours(24 * 100);
        let (_, _, expected, pem) = public_fixture("Pebble Root CA");
        let r = check_public(&pem, &expected, anchors, &[], later).unwrap_err();
        assert!(matches!(r.reason(), "Expired" | "UntrustedChain"), "{r}");
    }

    #[test]
    fn a_matching_certificate_is_accepted() {
        let f = fixture();
        let chain_pem = f.issue(&testutil::profile());
        let accepted = f.check(&chain_pem).unwrap();
        assert_eq!(accepted.leaf.common_name.as_deref(), Some("api.region.se"));
        assert_eq!(accepted.chain.len(), 2);
        assert_eq!(accepted.root, Some(f.ca.root_der()));
        assert_eq!(accepted.chain_pem(), chain_pem);
        assert_eq!(accepted.root_pem(), f.ca.root_pem());
    }

    #[test]
    fn chain_order_does_not_matter_and_names_are_case_insensitive() {
        let mut f = fixture();
        let chain = testutil::issue(&f.ca, &testutil::profile(), &f.key, f.now);
        let reversed = chain_to_pem(&[chain[1].clone(), chain[0].clone()]);
        f.expected.dns_names = vec!["API2.region.se".into(), "api.REGION.se".into()];
        let accepted = f.check(&reversed).unwrap();
        assert_eq!(accepted.chain, chain, "leaf first in the result");
    }

    #[test]
    fn unparseable() {
        let f = fixture();
        let r = f.check("hello").unwrap_err();
        assert_eq!(r.reason(), "Unparseable");
        assert!(
            r.message().contains("no PEM block found"),
            "{}",
            r.message()
        );
        let r = f.check(&f.key.to_pem()).unwrap_err();
        assert_eq!(r.reason(), "Unparseable");
        assert!(!r.message().contains(f.key.to_pem().lines().nth(1).unwrap()));
    }

    #[test]
    fn key_mismatch() {
        let f = fixture();
        let other = KeySpec::ECDSA_P256.generate().unwrap();
        let pem_text = chain_to_pem(&testutil::issue(&f.ca, &testutil::profile(), &other, f.now));
        let r = f.check(&pem_text).unwrap_err();
        assert_eq!(r.reason(), "KeyMismatch");
        let expected_fp = &sha256_fingerprint(&f.key.public_key_der())[..16];
        let found_fp = &sha256_fingerprint(&other.public_key_der())[..16];
        assert_eq!(
            r,
            Rejection::KeyMismatch {
                expected_key: format!("ECDSA P-256 key (SPKI SHA-256 {expected_fp}…)"),
                found_key: format!("ECDSA P-256 key (SPKI SHA-256 {found_fp}…)"),
            }
        );
        assert!(r.message().contains(expected_fp) && r.message().contains(found_fp));
    }

    #[test]
    fn dns_names_mismatch() {
        let f = fixture();
        let fewer = CertificateProfile {
            dns_names: vec!["api.region.se".into(), "evil.region.se".into()],
            ..testutil::profile()
        };
        let r = f.check(&f.issue(&fewer)).unwrap_err();
        assert_eq!(r.reason(), "DnsNamesMismatch");
        assert_eq!(
            r.message(),
            "expected DNS names [api.region.se, api2.region.se], the certificate has [api.region.se, evil.region.se]; missing: api2.region.se; not requested: evil.region.se"
        );
    }

    #[test]
    fn hsa_id_mismatch() {
        let f = fixture();
        let other = CertificateProfile {
            hsa_id: Some("SE2321000016-XYZ9".into()),
            ..testutil::profile()
        };
        let r = f.check(&f.issue(&other)).unwrap_err();
        assert_eq!(r.reason(), "HsaIdMismatch");
        assert_eq!(
            r.message(),
            "expected HSA-id SE2321000016-ABC1 in the subject serialNumber, the certificate has SE2321000016-XYZ9"
        );
        let none = CertificateProfile {
            hsa_id: None,
            ..testutil::profile()
        };
        let r = f.check(&f.issue(&none)).unwrap_err();
        assert_eq!(
            r,
            Rejection::HsaIdMismatch {
                expected: Some("SE2321000016-ABC1".into()),
                found: None
            }
        );
    }

    #[test]
    fn not_yet_valid_and_expired() {
        let f = fixture();
        let pem_text = f.issue(&testutil::profile());
        let leaf = CertInfo::parse(&parse_pem_chain(&pem_text).unwrap()[0]).unwrap();
        // A CA clock a little ahead of ours: accepted up to CLOCK_SKEW, chain included.
        for ahead in [1, 20, CLOCK_SKEW.as_secs()] {
            let now = leaf.not_before - SignedDuration::from_secs(ahead);
            check_issued(&pem_text, &f.expected, f.ca.trust_anchors(), now)
                .unwrap_or_else(|r| panic!("{ahead} s ahead: {r}"));
        }
        let early = leaf.not_before - CLOCK_SKEW - SignedDuration::from_secs(1);
        let r = check_issued(&pem_text, &f.expected, f.ca.trust_anchors(), early).unwrap_err();
        assert_eq!(
            r,
            Rejection::NotYetValid {
                not_before: leaf.not_before,
                now: early
            }
        );
        assert_eq!(r.reason(), "NotYetValid");
        let late = leaf.not_after + SignedDuration::from_secs(1);
        let r = check_issued(&pem_text, &f.expected, f.ca.trust_anchors(), late).unwrap_err();
        assert_eq!(r.reason(), "Expired");
        assert!(r.message().contains(&leaf.not_after.to_string()));
        // The edges themselves are inside the validity period.
        check_issued(&pem_text, &f.expected, f.ca.trust_anchors(), leaf.not_after).unwrap();
    }

    #[test]
    fn missing_extended_key_usage() {
        let f = fixture();
        let user_facing = CertificateProfile {
            usage: Usage::UserFacing,
            ..testutil::profile()
        };
        let r = f.check(&f.issue(&user_facing)).unwrap_err();
        assert_eq!(
            r,
            Rejection::MissingExtendedKeyUsage {
                usage: Usage::ServerToServer,
                found: "serverAuth only".into()
            }
        );
        assert_eq!(
            r.message(),
            "server-to-server use needs extended key usage serverAuth and clientAuth; the certificate has serverAuth only"
        );
        let no_eku = chain_to_pem(&testutil::issue_custom(&f.ca, &f.key, f.now, |p| {
            p.extended_key_usages.clear()
        }));
        let r = f.check(&no_eku).unwrap_err();
        assert_eq!(r.reason(), "MissingExtendedKeyUsage");
        assert!(r.message().contains("no extendedKeyUsage extension"));
    }

    #[test]
    fn untrusted_chain() {
        let f = fixture();
        // Same names and key, but from a CA that is not trusted.
        let rogue = testutil::ca();
        let pem_text = chain_to_pem(&testutil::issue(
            &rogue,
            &testutil::profile(),
            &f.key,
            f.now,
        ));
        let r = f.check(&pem_text).unwrap_err();
        assert_eq!(r.reason(), "UntrustedChain");
        let Rejection::UntrustedChain {
            subject,
            issuer,
            trusted_roots,
            ..
        } = &r
        else {
            panic!("{r:?}")
        };
        assert!(subject.contains("CN=api.region.se"));
        assert_eq!(issuer, "CN=Test Issuing CA, O=Test Org, C=SE");
        assert_eq!(
            trusted_roots,
            &vec!["CN=Test Root CA, O=Test Org, C=SE".to_string()]
        );
        // A leaf without its intermediate does not chain to a root-only anchor set.
        let leaf_only =
            chain_to_pem(&testutil::issue(&f.ca, &testutil::profile(), &f.key, f.now)[..1]);
        let root_only = TrustAnchors::new(vec![f.ca.root_der()], vec![]).unwrap();
        let r = check_issued(&leaf_only, &f.expected, &root_only, f.now).unwrap_err();
        assert_eq!(r.reason(), "UntrustedChain");
        assert!(r.message().contains("unknown issuer"), "{}", r.message());
    }

    /// A certificate for the right key and names, with one thing changed by `tweak`.
    fn tweaked(f: &Fixture, tweak: impl FnOnce(&mut rcgen::CertificateParams)) -> String {
        chain_to_pem(&testutil::issue_custom(&f.ca, &f.key, f.now, tweak))
    }

    #[test]
    fn the_subject_must_be_the_one_requested() {
        use rcgen::DnType;
        let f = fixture();
        // The untouched profile passes; each attribute changed is refused with its reason.
        f.check(&tweaked(&f, |_| {})).unwrap();
        let cases: [(DnType, &str, &str, &str); 4] = [
            (
                DnType::OrganizationName,
                "Evil Corp AB",
                "OrganizationMismatch",
                "the request asked for O=Region Exempel in the subject, the certificate has O=Evil Corp AB",
            ),
            (
                DnType::CountryName,
                "US",
                "CountryMismatch",
                "the request asked for C=SE in the subject, the certificate has C=US",
            ),
            (
                DnType::LocalityName,
                "Oslo",
                "LocalityMismatch",
                "the request asked for L=Stockholm in the subject, the certificate has L=Oslo",
            ),
            (
                DnType::CommonName,
                "api2.region.se",
                "CommonNameMismatch",
                "the request asked for CN=api.region.se in the subject, the certificate has CN=api2.region.se",
            ),
        ];
        for (ty, value, reason, message) in cases {
            let r = f
                .check(&tweaked(&f, |p| p.distinguished_name.push(ty, value)))
                .unwrap_err();
            assert_eq!(r.reason(), reason, "{r}");
            assert!(r.message().starts_with(message), "{}", r.message());
        }
        let r = f
            .check(&tweaked(&f, |p| {
                p.distinguished_name.remove(DnType::OrganizationName);
            }))
            .unwrap_err();
        assert_eq!(
            r,
            Rejection::SubjectMismatch {
                attribute: SubjectAttribute::Organization,
                expected: Some("Region Exempel".into()),
                found: None
            }
        );
    }

    #[test]
    fn a_common_name_that_is_not_a_san_is_refused_without_a_request_too() {
        use rcgen::DnType;
        let mut f = fixture();
        f.expected.subject = None;
        let pem = tweaked(&f, |p| {
            p.distinguished_name
                .push(DnType::CommonName, "evil.example.org")
        });
        let r = f.check(&pem).unwrap_err();
        assert_eq!(
            r,
            Rejection::SubjectMismatch {
                attribute: SubjectAttribute::CommonName,
                expected: None,
                found: Some("evil.example.org".into())
            }
        );
        assert_eq!(r.reason(), "CommonNameMismatch");
        assert_eq!(
            r.message(),
            "the certificate's subject has CN=evil.example.org, which is not one of its DNS names"
        );
        // The public route has no request subject but the same rule.
        let (ca, key, expected, _) = public_fixture("Pebble Root CA");
        let mut profile = CertificateProfile {
            hsa_id: None,
            usage: Usage::UserFacing,
            ..testutil::profile()
        };
        profile.dns_names.reverse();
        let pem = chain_to_pem(&testutil::issue_custom(&ca, &key, testutil::now(), |p| {
            *p = profile.to_params(key.spec().algorithm).unwrap();
            p.not_before = time::OffsetDateTime::from_unix_timestamp(
                (testutil::now() - SignedDuration::from_hours(1)).as_second(),
            )
            .unwrap();
            p.not_after = time::OffsetDateTime::from_unix_timestamp(
                (testutil::now() + SignedDuration::from_hours(100)).as_second(),
            )
            .unwrap();
            p.distinguished_name
                .push(DnType::CommonName, "evil.example.org");
        }));
        let r = check_public(
            &pem,
            &expected,
            Some(ca.trust_anchors()),
            &[],
            testutil::now(),
        )
        .unwrap_err();
        assert_eq!(r.reason(), "CommonNameMismatch");
    }

    #[test]
    fn subject_alt_names_other_than_the_dns_names_are_refused() {
        let f = fixture();
        let pem = tweaked(&f, |p| {
            p.subject_alt_names
                .push(rcgen::SanType::IpAddress("10.0.0.1".parse().unwrap()))
        });
        let r = f.check(&pem).unwrap_err();
        assert_eq!(
            r,
            Rejection::UnexpectedSubjectAltName {
                found: vec!["iPAddress 10.0.0.1".into()]
            }
        );
        assert!(
            r.message().contains("not ordered: iPAddress 10.0.0.1"),
            "{}",
            r.message()
        );
        let pem = tweaked(&f, |p| {
            p.subject_alt_names.push(rcgen::SanType::URI(
                rcgen::string::Ia5String::try_from("spiffe://evil/x").unwrap(),
            ));
            p.subject_alt_names.push(rcgen::SanType::Rfc822Name(
                rcgen::string::Ia5String::try_from("a@evil.se").unwrap(),
            ))
        });
        let r = f.check(&pem).unwrap_err();
        assert_eq!(r.reason(), "UnexpectedSubjectAltName");
        assert!(
            r.message()
                .contains("URI spiffe://evil/x, rfc822Name a@evil.se"),
            "{}",
            r.message()
        );
    }

    #[test]
    fn key_usage_must_fit_the_function_certificate_profile() {
        use rcgen::KeyUsagePurpose;
        let f = fixture();
        let r = f.check(&tweaked(&f, |p| p.key_usages.clear())).unwrap_err();
        assert_eq!(
            r,
            Rejection::MissingKeyUsage {
                required: vec!["digitalSignature"],
                found: None
            }
        );
        assert_eq!(
            r.message(),
            "a SITHS function certificate needs key usage digitalSignature; the certificate has no keyUsage extension"
        );
        let r = f
            .check(&tweaked(&f, |p| {
                p.key_usages = vec![KeyUsagePurpose::KeyAgreement]
            }))
            .unwrap_err();
        assert_eq!(r.reason(), "MissingKeyUsage");
        assert!(
            r.message().ends_with("the certificate has keyAgreement"),
            "{}",
            r.message()
        );
        let r = f
            .check(&tweaked(&f, |p| {
                p.key_usages.push(KeyUsagePurpose::KeyCertSign)
            }))
            .unwrap_err();
        assert_eq!(
            r,
            Rejection::UnexpectedKeyUsage {
                found: vec!["keyCertSign".into()]
            }
        );
        // An RSA function certificate needs keyEncipherment as well.
        let mut f = fixture();
        f.key = testutil::rsa_2048();
        f.expected.public_key_der = f.key.public_key_der();
        f.check(&tweaked(&f, |_| {})).unwrap();
        let r = f
            .check(&tweaked(&f, |p| {
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature]
            }))
            .unwrap_err();
        assert_eq!(
            r,
            Rejection::MissingKeyUsage {
                required: vec!["digitalSignature", "keyEncipherment"],
                found: Some(vec!["digitalSignature"])
            }
        );
    }

    #[test]
    fn a_certificate_already_held_is_not_held_to_the_request_profile() {
        let mut f = fixture();
        let no_ku = tweaked(&f, |p| p.key_usages.clear());
        assert_eq!(f.check(&no_ku).unwrap_err().reason(), "MissingKeyUsage");
        f.expected.subject = None;
        f.check(&no_ku).unwrap();
    }

    #[test]
    fn extended_key_usage_beyond_server_and_client_auth_is_refused() {
        use rcgen::ExtendedKeyUsagePurpose;
        let f = fixture();
        let r = f
            .check(&tweaked(&f, |p| {
                p.extended_key_usages
                    .push(ExtendedKeyUsagePurpose::CodeSigning)
            }))
            .unwrap_err();
        assert_eq!(
            r,
            Rejection::UnexpectedExtendedKeyUsage {
                found: vec!["codeSigning".into()]
            }
        );
        assert!(
            r.message().contains("also has codeSigning"),
            "{}",
            r.message()
        );
        // A wrong EKU instead of the right ones is a missing one.
        let r = f
            .check(&tweaked(&f, |p| {
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection]
            }))
            .unwrap_err();
        assert_eq!(r.reason(), "MissingExtendedKeyUsage");
        assert!(
            r.message().ends_with("neither serverAuth nor clientAuth"),
            "{}",
            r.message()
        );
    }

    #[test]
    fn the_import_precheck_uses_the_csr_and_skips_only_the_chain() {
        let f = fixture();
        let csr =
            crate::pki::parse_csr(&crate::pki::build_csr(&testutil::profile(), &f.key).unwrap())
                .unwrap();
        let expected = Expected::from_csr(&csr);
        assert_eq!(expected.subject, f.expected.subject);
        assert_eq!(expected.usage, Usage::ServerToServer);
        // A certificate from an untrusted CA passes the precheck (the operator checks the
        // chain), a wrong subject does not.
        let rogue = testutil::ca();
        let pem = chain_to_pem(&testutil::issue(
            &rogue,
            &testutil::profile(),
            &f.key,
            f.now,
        ));
        check_against_request(&pem, &expected, f.now).unwrap();
        let r = check_against_request(
            &tweaked(&f, |p| {
                p.distinguished_name
                    .push(rcgen::DnType::OrganizationName, "Evil Corp AB")
            }),
            &expected,
            f.now,
        )
        .unwrap_err();
        assert_eq!(r.reason(), "OrganizationMismatch");
    }

    #[test]
    fn reasons_are_distinct() {
        let now = testutil::now();
        let all = [
            Rejection::Unparseable {
                detail: String::new(),
            },
            Rejection::UntrustedChain {
                subject: String::new(),
                issuer: String::new(),
                detail: String::new(),
                trusted_roots: vec![],
            },
            Rejection::KeyMismatch {
                expected_key: String::new(),
                found_key: String::new(),
            },
            Rejection::DnsNamesMismatch {
                expected: vec![],
                found: vec![],
            },
            Rejection::HsaIdMismatch {
                expected: None,
                found: None,
            },
            Rejection::NotYetValid {
                not_before: now,
                now,
            },
            Rejection::Expired {
                not_after: now,
                now,
            },
            Rejection::MissingExtendedKeyUsage {
                usage: Usage::UserFacing,
                found: String::new(),
            },
            Rejection::ChainsToSiths {
                issuer: String::new(),
                verified: false,
            },
            Rejection::UnexpectedSubjectAltName { found: vec![] },
            Rejection::MissingKeyUsage {
                required: vec![],
                found: None,
            },
            Rejection::UnexpectedKeyUsage { found: vec![] },
            Rejection::UnexpectedExtendedKeyUsage { found: vec![] },
        ]
        .into_iter()
        .chain(
            [
                SubjectAttribute::CommonName,
                SubjectAttribute::Organization,
                SubjectAttribute::Locality,
                SubjectAttribute::Country,
            ]
            .map(|attribute| Rejection::SubjectMismatch {
                attribute,
                expected: None,
                found: None,
            }),
        )
        .collect::<Vec<_>>();
        let reasons: BTreeSet<_> = all.iter().map(Rejection::reason).collect();
        assert_eq!(reasons.len(), all.len());
        assert!(all[0].to_string().starts_with("Unparseable: "));
    }
}
