//! Findings over a set of objects (a live cluster or manifests): where SITHS certificates
//! are, which user-facing endpoints still use them, what would break if they were swapped,
//! whether SITHS trust is installed, and what renewals will cost. Pure: no I/O, no clock.
//!
//! - [`objects`]: the [`Inventory`] of objects, reduced to what the findings need.
//! - [`anchors`]: classification of a certificate by chain verification.
//! - [`findings`]: the rules, [`audit`].
//! - [`inventory`]: every certificate, where it is used, its class and expiry.
//! - [`stores`]: Java key and trust stores, opened with the passwords available.
//! - [`plan`]: the operator's own decisions on every `ServiceCertificate`, offline.
//! - [`timeline`]: every certificate with its validity, renewal and lead-time dates.
//! - [`html`]: the self-contained HTML report (`sithsctl audit -o html`).

pub mod anchors;
pub mod findings;
pub mod html;
pub mod inventory;
pub mod objects;
pub mod plan;
pub mod stores;
pub mod timeline;

use serde::Serialize;

pub use anchors::{AnchorSet, CertClass, Classification};
pub use findings::{Report, Summary, audit};
pub use objects::{Inventory, ObjectRef};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something will break or is broken.
    Error,
    /// Worth fixing.
    Warning,
    /// For the record.
    Info,
}

impl Severity {
    /// `error`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// Whether a finding of this severity trips `--fail-on threshold`.
    pub fn trips(self, threshold: Severity) -> bool {
        self <= threshold
    }
}

/// Stable finding codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// An Ingress TLS Secret holds a SITHS certificate.
    SithsOnUserFacingIngress,
    /// A Secret with a SITHS certificate serves an Ingress and back-end traffic.
    SharedSecretUserFacingAndBackend,
    /// An Ingress certificate that is neither SITHS nor publicly trusted.
    NotPubliclyTrustedOnIngress,
    /// Workloads use SITHS certificates where no SITHS trust is installed.
    SithsTrustNotInstalled,
    /// The certificate has expired.
    Expired,
    /// Fewer days left than the lead time plus margin.
    ExpiresWithinLeadTime,
    /// A ServiceCertificate name no valid DomainValidation covers.
    NoDomainValidation,
    /// A SITHS certificate no ServiceCertificate manages.
    UnmanagedSithsCertificate,
    /// The issuer name claims SITHS, the chain does not verify.
    SithsNameUnverified,
    /// A Secret that should hold a certificate does not hold a parseable one.
    UnparseableCertificate,
    /// A re-encrypt Route to a back end serving SITHS does not trust the SITHS CA.
    SithsCaMissingOnReencryptRoute,
    /// A Gateway listener (or a ListenerSet's) serves a SITHS certificate.
    SithsOnUserFacingGateway,
    /// A Gateway listener certificate that is neither SITHS nor publicly trusted.
    NotPubliclyTrustedOnGateway,
    /// A listener names a Secret in another namespace that no ReferenceGrant allows.
    GatewayRefNotGranted,
    /// A BackendTLSPolicy for a SITHS-serving Service does not trust the SITHS CA.
    BackendTlsWithoutSithsTrust,
    /// A Gateway verifies client certificates against SITHS: mutual TLS ends at the Gateway.
    SithsClientAuthTerminatedAtGateway,
    /// The live DNS TXT check of a DomainValidation did not find the record, found another
    /// value, or got no answer.
    DnsCheckFailed,
}

impl Code {
    /// Every code, in the order of the list.
    pub const ALL: [Code; 17] = [
        Code::SithsOnUserFacingIngress,
        Code::SharedSecretUserFacingAndBackend,
        Code::NotPubliclyTrustedOnIngress,
        Code::SithsTrustNotInstalled,
        Code::Expired,
        Code::ExpiresWithinLeadTime,
        Code::NoDomainValidation,
        Code::UnmanagedSithsCertificate,
        Code::SithsNameUnverified,
        Code::UnparseableCertificate,
        Code::SithsCaMissingOnReencryptRoute,
        Code::SithsOnUserFacingGateway,
        Code::NotPubliclyTrustedOnGateway,
        Code::GatewayRefNotGranted,
        Code::BackendTlsWithoutSithsTrust,
        Code::SithsClientAuthTerminatedAtGateway,
        Code::DnsCheckFailed,
    ];

    /// The code as written in reports, for example `SITHS_ON_USER_FACING_INGRESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::SithsOnUserFacingIngress => "SITHS_ON_USER_FACING_INGRESS",
            Code::SharedSecretUserFacingAndBackend => "SHARED_SECRET_USER_FACING_AND_BACKEND",
            Code::NotPubliclyTrustedOnIngress => "NOT_PUBLICLY_TRUSTED_ON_INGRESS",
            Code::SithsTrustNotInstalled => "SITHS_TRUST_NOT_INSTALLED",
            Code::Expired => "EXPIRED",
            Code::ExpiresWithinLeadTime => "EXPIRES_WITHIN_LEAD_TIME",
            Code::NoDomainValidation => "NO_DOMAIN_VALIDATION",
            Code::UnmanagedSithsCertificate => "UNMANAGED_SITHS_CERTIFICATE",
            Code::SithsNameUnverified => "SITHS_NAME_UNVERIFIED",
            Code::UnparseableCertificate => "UNPARSEABLE_CERTIFICATE",
            Code::SithsCaMissingOnReencryptRoute => "SITHS_CA_MISSING_ON_REENCRYPT_ROUTE",
            Code::SithsOnUserFacingGateway => "SITHS_ON_USER_FACING_GATEWAY",
            Code::NotPubliclyTrustedOnGateway => "NOT_PUBLICLY_TRUSTED_ON_GATEWAY",
            Code::GatewayRefNotGranted => "GATEWAY_REF_NOT_GRANTED",
            Code::BackendTlsWithoutSithsTrust => "BACKEND_TLS_WITHOUT_SITHS_TRUST",
            Code::SithsClientAuthTerminatedAtGateway => "SITHS_CLIENT_AUTH_TERMINATED_AT_GATEWAY",
            Code::DnsCheckFailed => "DNS_CHECK_FAILED",
        }
    }

    /// What to do about it, in one sentence.
    pub fn remediation(self) -> &'static str {
        match self {
            Code::SithsOnUserFacingIngress => {
                "Issue a publicly trusted certificate for the Ingress hosts (a UserFacing ServiceCertificate on a PublicIssuer) into a new Secret and point the Ingress at it; browsers stop trusting SITHS."
            }
            Code::SharedSecretUserFacingAndBackend => {
                "Do not replace this Secret in place: give the Ingress its own publicly trusted certificate in a new Secret and keep this SITHS certificate for the back-end traffic that uses it."
            }
            Code::NotPubliclyTrustedOnIngress => {
                "Replace it with a publicly trusted certificate (a UserFacing ServiceCertificate on a PublicIssuer) so that browsers accept the endpoint."
            }
            Code::SithsTrustNotInstalled => {
                "Install the SITHS CA certificates explicitly in the namespace (a SithsTrustBundle selecting it) so that server-to-server TLS keeps verifying once SITHS leaves the Microsoft root programme."
            }
            Code::Expired => {
                "Renew the certificate now (for SITHS: order a new one; a ServiceCertificate renews automatically from then on)."
            }
            Code::ExpiresWithinLeadTime => {
                "Start the renewal today: a SITHS order takes at least four weeks; manage the certificate with a ServiceCertificate so renewal starts in time."
            }
            Code::NoDomainValidation => {
                "Register a DomainValidation for the names (approved by the SITHS policy authority for the issuer's organisation) or correct dnsNames; nothing is issued until then."
            }
            Code::UnmanagedSithsCertificate => {
                "Adopt it with a ServiceCertificate naming this Secret (adoption costs nothing) so that renewal is tracked and started in time."
            }
            Code::SithsNameUnverified => {
                "Treat the certificate as untrusted: find where it came from and replace it with one that chains to the real SITHS anchors (or add the right anchors with --siths-ca)."
            }
            Code::UnparseableCertificate => {
                "Fix or remove the Secret: the key should hold a PEM certificate chain, leaf first."
            }
            Code::SithsCaMissingOnReencryptRoute => {
                "Put the SITHS CA certificates of the back end's environment in the Route's spec.tls.destinationCACertificate (or use passthrough for mutual TLS end to end) so that the router can verify the SITHS back end."
            }
            Code::SithsOnUserFacingGateway => {
                "Issue a publicly trusted certificate for the listener's host names (annotate the Gateway siths-operator.io/tls: public, or a UserFacing ServiceCertificate on a PublicIssuer) into a new Secret and point the listener at it; browsers stop trusting SITHS."
            }
            Code::NotPubliclyTrustedOnGateway => {
                "Replace it with a publicly trusted certificate (annotate the Gateway siths-operator.io/tls: public, or a UserFacing ServiceCertificate on a PublicIssuer) so that browsers accept the listener."
            }
            Code::GatewayRefNotGranted => {
                "Add a ReferenceGrant in the Secret's namespace allowing the Gateway's namespace to refer to it, or keep the Secret in the Gateway's namespace; until then the Gateway cannot serve it and the operator issues nothing for it."
            }
            Code::BackendTlsWithoutSithsTrust => {
                "Name the ConfigMap of a SithsTrustBundle (ca.crt with the SITHS CA certificates, kept current) in the BackendTLSPolicy's spec.validation.caCertificateRefs so that the Gateway can verify the SITHS back end."
            }
            Code::SithsClientAuthTerminatedAtGateway => {
                "The back end never sees the caller's SITHS client certificate (and its HSA-id): route the national platforms' mutual TLS with a TLSRoute in passthrough mode to the back end, or have the Gateway forward the verified client certificate in a header the back end reads."
            }
            Code::DnsCheckFailed => {
                "Publish the TXT record of evidence.dnsTxtRecord with the expected value (or correct the value), or make the nameservers the operator asks reachable; new orders for the names it covers wait until the check finds the record."
            }
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// Severity.
    pub severity: Severity,
    /// The object it is about.
    pub object: ObjectRef,
    /// What was found.
    pub message: String,
    /// What to do, one sentence per code.
    pub remediation: &'static str,
}

impl Finding {
    fn new(code: Code, severity: Severity, object: ObjectRef, message: String) -> Self {
        Finding {
            code,
            severity,
            object,
            message,
            remediation: code.remediation(),
        }
    }
}

/// SEK with a space between thousands, as written in Sweden.
pub fn sek(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    format!("{out} SEK")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_names_and_severities_order() {
        for code in Code::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
            assert!(code.remediation().ends_with('.'));
        }
        assert!(Severity::Error.trips(Severity::Warning));
        assert!(Severity::Warning.trips(Severity::Warning));
        assert!(!Severity::Info.trips(Severity::Warning));
        assert!(!Severity::Warning.trips(Severity::Error));
        assert_eq!(serde_json::to_value(Severity::Info).unwrap(), "info");
    }
}
