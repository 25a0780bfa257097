//! "Publicly trusted": a chain verifies to a root of Mozilla's store (the `webpki-roots`
//! crate), where Telia's TLS roots are and SITHS's are not.

use std::time::Duration;

use jiff::Timestamp;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::EndEntityCert;

/// Mozilla's root store, as shipped by `webpki-roots`.
pub fn mozilla_roots() -> &'static [TrustAnchor<'static>] {
    webpki_roots::TLS_SERVER_ROOTS
}

/// Whether `chain` (leaf first, then any intermediates) verifies at `now` for serverAuth
/// to one of `roots`. Use [`mozilla_roots`] for "publicly trusted".
pub fn verifies_to(
    chain: &[CertificateDer<'_>],
    roots: &[TrustAnchor<'_>],
    now: Timestamp,
) -> bool {
    let Some((leaf, rest)) = chain.split_first() else {
        return false;
    };
    let Ok(leaf) = EndEntityCert::try_from(leaf) else {
        return false;
    };
    let time = UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(now.as_second()).unwrap_or(0),
    ));
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        roots,
        rest,
        time,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{KeySpec, testutil};

    fn subject_contains(anchor: &TrustAnchor<'_>, needle: &str) -> bool {
        anchor
            .subject
            .as_ref()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    #[test]
    fn the_store_holds_telia_and_not_siths() {
        let roots = mozilla_roots();
        assert!(roots.len() > 100, "{}", roots.len());
        assert!(
            roots
                .iter()
                .any(|a| subject_contains(a, "Telia Root CA v2")),
            "Telia Root CA v2 should be publicly trusted"
        );
        assert!(!roots.iter().any(|a| subject_contains(a, "SITHS")));
    }

    #[test]
    fn verifies_only_to_the_given_roots_and_in_time() {
        let ca = testutil::ca();
        let now = testutil::now();
        let key = KeySpec::ECDSA_P256.generate().unwrap();
        let chain = testutil::issue(&ca, &testutil::profile(), &key, now);
        let root = webpki::anchor_from_trusted_cert(&ca.root_der())
            .unwrap()
            .to_owned();
        assert!(verifies_to(&chain, std::slice::from_ref(&root), now));
        assert!(!verifies_to(&chain, mozilla_roots(), now));
        assert!(
            !verifies_to(&chain[..1], std::slice::from_ref(&root), now),
            "intermediate missing"
        );
        let later = now + jiff::SignedDuration::from_hours(24 * 400);
        assert!(!verifies_to(&chain, &[root], later));
        assert!(!verifies_to(&[], mozilla_roots(), now));
    }
}
