//! Keys, CSRs, certificate parsing, chain verification, the SITHS profile and pinned trust anchors. No Kubernetes I/O.
//!
//! Everything here is pure: no network, no clock (callers pass `now`), no Kubernetes.
//!
//! - [`keys`]: private keys ([`PrivateKey`], [`KeySpec`]), redacted in `Debug`.
//! - [`profile`] and [`csr`]: the SITHS function certificate profile and PKCS#10 requests.
//! - [`cert`]: PEM chains and the fields of a certificate ([`CertInfo`]).
//! - [`verify`]: chain verification against explicit [`TrustAnchors`] with rustls-webpki.
//! - [`siths`]: the pinned SITHS CA fingerprints and [`is_siths`].
//! - [`local_ca`]: a small CA for tests, demos and development clusters.
//! - [`check`]: the acceptance check run on every certificate that comes back.
//! - [`public_trust`]: whether a chain verifies to Mozilla's root store.
//! - [`keystore`]: PKCS#12 and JKS key and trust stores for Java, and reading them.
//! - [`class`]: the class of a certificate by the PKI it verifies to ([`CertClass`]).

pub mod cert;
pub mod check;
pub mod class;
pub mod csr;
mod error;
pub mod keys;
pub mod keystore;
pub mod local_ca;
pub(crate) mod pem;
pub mod profile;
pub mod public_trust;
pub mod siths;
pub mod verify;

pub use cert::{CertInfo, chain_to_pem, key_matches, parse_pem_chain, sha256_fingerprint};
pub use check::{
    Accepted, Expected, ExpectedSubject, Rejection, SubjectAttribute, check_against_request,
    check_issued, check_public,
};
pub use class::CertClass;
pub use csr::{ParsedCsr, build_csr, parse_csr};
pub use error::PkiError;
pub use keys::{KeyAlgorithm, KeySpec, PrivateKey, key_pem_matches_spki};
pub use local_ca::{LocalCa, LocalCaOptions, random_serial};
pub use profile::{CertificateProfile, Usage};
pub use siths::{Environment, SithsAnchors, SithsVerdict, is_siths};
pub use verify::{TrustAnchors, VerifiedChain, verify_chain};

#[cfg(test)]
pub(crate) mod testutil;
