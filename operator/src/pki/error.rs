//! The error type of the `pki` module.

use thiserror::Error;

/// Why a PKI operation failed. Messages name what was expected and what was found; they
/// never contain private key material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The input holds no PEM block at all.
    #[error("no PEM block found: expected a -----BEGIN {expected}----- line")]
    NoPemBlock {
        /// The PEM label that was looked for.
        expected: &'static str,
    },
    /// A PEM block starts but never ends.
    #[error(
        "PEM block {index} ({}) has no matching END line; the PEM looks truncated",
        describe_label(.label)
    )]
    TruncatedPem {
        /// Position of the block in the input, counting from 1.
        index: usize,
        /// Its label.
        label: String,
    },
    /// A PEM block of the wrong kind.
    #[error("PEM block {index} is {}, expected {expected:?}", describe_label(.label))]
    UnexpectedPemBlock {
        /// Position of the block in the input, counting from 1.
        index: usize,
        /// The label found.
        label: String,
        /// The label expected.
        expected: &'static str,
    },
    /// The body of a PEM block is not valid base64, or a BEGIN/END line is malformed.
    #[error("PEM block {index} ({}) is malformed: {detail}", describe_label(.label))]
    MalformedPem {
        /// Position of the block in the input, counting from 1.
        index: usize,
        /// Its label.
        label: String,
        /// What is wrong.
        detail: String,
    },
    /// The bytes are not a DER X.509 certificate.
    #[error("certificate {index} is not a valid X.509 certificate: {detail}")]
    BadCertificate {
        /// Position in the chain, counting from 1.
        index: usize,
        /// What the parser said.
        detail: String,
    },
    /// The input is not a valid PKCS#10 certificate signing request.
    #[error("not a valid certificate signing request: {0}")]
    BadCsr(String),
    /// The input is not a usable private key. The message never contains key bytes.
    #[error("not a usable private key: {0}")]
    BadPrivateKey(String),
    /// A public key that cannot be used (unknown algorithm, malformed, too small).
    #[error("unsupported public key: {0}")]
    UnsupportedKey(String),
    /// A key specification outside what the operator supports.
    #[error(
        "unsupported key specification {0}; use RSA 2048, RSA 3072, RSA 4096, ECDSA 256 or ECDSA 384"
    )]
    UnsupportedKeySpec(String),
    /// Generating a key failed in the crypto library.
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    /// A certificate profile that cannot be encoded.
    #[error("invalid certificate profile: {0}")]
    InvalidProfile(String),
    /// Building or signing a CSR or certificate failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// An empty list of certificates where at least one was needed.
    #[error("no certificate given")]
    EmptyChain,
    /// A trust anchor or issuing certificate that is not a CA.
    #[error("{subject} is not a CA certificate (basicConstraints cA is not set)")]
    NotACa {
        /// Subject of the offending certificate.
        subject: String,
    },
    /// The chain does not verify against the trust anchors.
    #[error("certificate chain does not verify: {0}")]
    UntrustedChain(String),
    /// The leaf lacks an extended key usage the intended use needs.
    #[error("certificate lacks extended key usage {required}; it has {found}")]
    MissingExtendedKeyUsage {
        /// The EKUs the use needs, for example `serverAuth and clientAuth`.
        required: &'static str,
        /// The EKUs found, for example `serverAuth` or `no extendedKeyUsage extension`.
        found: String,
    },
    /// A certificate whose subject claims a pinned SITHS CA name, but whose fingerprint
    /// is not the pinned one: a forgery or a wrong file, never accepted.
    #[error(
        "{subject} claims to be a SITHS CA but its SHA-256 fingerprint is {found}; the pinned fingerprint is {expected}"
    )]
    FingerprintMismatch {
        /// Subject of the certificate.
        subject: String,
        /// The pinned fingerprint for that name (uppercase hex).
        expected: String,
        /// The certificate's fingerprint (uppercase hex).
        found: String,
    },
    /// A certificate in a SITHS anchor bundle that matches no pin.
    #[error(
        "{subject} (SHA-256 {fingerprint}) is not one of the pinned {environment} SITHS CA certificates"
    )]
    NotPinned {
        /// Subject of the certificate.
        subject: String,
        /// Its fingerprint (uppercase hex).
        fingerprint: String,
        /// The environment being loaded.
        environment: String,
    },
    /// A SITHS anchor bundle without the root of the environment.
    #[error("the bundle does not contain the pinned {environment} SITHS root CA ({subject})")]
    MissingRoot {
        /// The environment being loaded.
        environment: String,
        /// Subject of the expected root.
        subject: &'static str,
    },
    /// A private key that does not belong to the certificate it is paired with.
    #[error("the private key does not match the public key of {subject}")]
    KeyMismatch {
        /// Subject of the certificate.
        subject: String,
    },
    /// Binary input where PEM or a DER certificate was expected; says what it looks like.
    #[error("{0}")]
    NotACertificateFile(String),
    /// A validity period that cannot be issued.
    #[error("invalid validity: {0}")]
    InvalidValidity(String),
    /// A key or trust store cannot be written or opened. Never contains a password.
    #[error("key store: {0}")]
    Keystore(String),
}

/// Names a PEM label for people. A private key is never named by its PEM label, so that a
/// key pasted in the wrong place leaves no private-key header in statuses or events.
fn describe_label(label: &str) -> String {
    if label.contains("PRIVATE KEY") {
        "a private key (not shown; it does not belong here)".to_string()
    } else {
        format!("a {label:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key pasted where a certificate belongs must not put a private-key PEM header (or
    /// its label) into a status message or an event.
    #[test]
    fn errors_about_private_key_blocks_do_not_name_the_pem_label() {
        for e in [
            PkiError::TruncatedPem {
                index: 1,
                label: "PRIVATE KEY".into(),
            },
            PkiError::UnexpectedPemBlock {
                index: 1,
                label: "RSA PRIVATE KEY".into(),
                expected: "CERTIFICATE",
            },
            PkiError::MalformedPem {
                index: 2,
                label: "EC PRIVATE KEY".into(),
                detail: "bad base64".into(),
            },
        ] {
            let text = e.to_string();
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            assert!(text.contains("a private key"), "{text}");
        }
        let other = PkiError::UnexpectedPemBlock {
            index: 1,
            label: "CERTIFICATE REQUEST".into(),
            expected: "CERTIFICATE",
        };
        assert!(other.to_string().contains("CERTIFICATE REQUEST"));
    }
}
