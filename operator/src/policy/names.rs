//! Deterministic names of the objects the operator creates.
//!
//! The same certificate and revision always give the same name, so a restarted or
//! conflicting reconcile finds the order it already created instead of placing a second
//! (paid) one: creation is create-only and a conflict means "already there".

use super::stable_hash;

/// Longest Kubernetes object name (a DNS-1123 subdomain).
pub const MAX_NAME_LEN: usize = 253;
/// Hex digits of the hash that replaces a truncated tail.
const HASH_LEN: usize = 8;

/// Name of the CertificateOrder for one revision of a ServiceCertificate:
/// `<certificate>-<revision>`.
pub fn order_name(certificate_name: &str, revision: u32) -> String {
    with_suffix(certificate_name, &format!("-{revision}"))
}

/// Name of the Secret that holds the staged private key of one revision until its
/// certificate arrives: `<certificate>-<revision>-key`.
pub fn key_secret_name(certificate_name: &str, revision: u32) -> String {
    with_suffix(certificate_name, &format!("-{revision}-key"))
}

/// `base + suffix`, or, when that exceeds [`MAX_NAME_LEN`], a truncated `base`, a hash of
/// the whole `base` (so two long names that share a prefix stay apart), then `suffix`.
fn with_suffix(base: &str, suffix: &str) -> String {
    if base.len() + suffix.len() <= MAX_NAME_LEN {
        return format!("{base}{suffix}");
    }
    let hash = format!("{:016x}", stable_hash("object-name", base));
    let hash = &hash[..HASH_LEN];
    let mut end = MAX_NAME_LEN - suffix.len() - HASH_LEN - 1;
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    // A cut right after '.' or '-' would leave an invalid label boundary before the hash.
    let prefix = base[..end].trim_end_matches(['-', '.']);
    if prefix.is_empty() {
        format!("{hash}{suffix}")
    } else {
        format!("{prefix}-{hash}{suffix}")
    }
}

/// Whether `name` is a valid DNS-1123 subdomain, the rule for most Kubernetes object
/// names: at most 253 characters of dot-separated labels of `a-z`, `0-9` and `-`, each
/// starting and ending with a letter or digit.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_readable() {
        assert_eq!(order_name("api-region-se", 3), "api-region-se-3");
        assert_eq!(key_secret_name("api-region-se", 3), "api-region-se-3-key");
        assert_eq!(order_name("api.region.se", 0), "api.region.se-0");
        assert_eq!(order_name("x", u32::MAX), "x-4294967295");
    }

    #[test]
    fn names_are_stable_and_distinct_per_revision() {
        assert_eq!(order_name("api", 1), order_name("api", 1));
        assert_ne!(order_name("api", 1), order_name("api", 2));
        assert_ne!(order_name("api", 12), order_name("api-1", 2));
        assert_ne!(order_name("api", 1), key_secret_name("api", 1));
    }

    #[test]
    fn exactly_at_the_limit_is_kept() {
        let base = "a".repeat(251);
        assert_eq!(order_name(&base, 7), format!("{base}-7"));
        assert_eq!(order_name(&base, 7).len(), 253);
    }

    #[test]
    fn long_names_are_truncated_with_a_hash() {
        let base = "a".repeat(253);
        for name in [order_name(&base, 42), key_secret_name(&base, 42)] {
            assert_eq!(name.len(), 253, "{name}");
            assert!(is_dns1123_subdomain(&name), "{name}");
        }
        let order = order_name(&base, 42);
        assert!(order.ends_with("-42"), "{order}");
        // Pinned: a changed hash would orphan the orders of long-named certificates.
        assert_eq!(order, format!("{}-7afd0994-42", "a".repeat(241)));
        assert_eq!(order, order_name(&base, 42));
        // Same 240-character prefix, different tails: different names.
        let other = format!("{}b", "a".repeat(252));
        assert_ne!(order_name(&other, 42), order);
        assert!(key_secret_name(&base, 42).ends_with("-42-key"));
    }

    #[test]
    fn truncation_never_leaves_a_bad_boundary() {
        // Valid names with '.' or '-' at every position around the cut.
        for cut in 230..253 {
            for sep in ['.', '-'] {
                let mut base: Vec<char> = "b".repeat(253).chars().collect();
                base[cut] = sep;
                if sep == '-' {
                    // "--" is valid inside a label; ".." is not, so only one dot.
                    base[cut - 1] = sep;
                }
                let base: String = base.into_iter().collect();
                let name = order_name(&base, 5);
                assert!(is_dns1123_subdomain(&name), "{cut} {sep}: {name}");
                assert!(name.len() <= 253);
            }
        }
    }

    #[test]
    fn dns1123_check() {
        assert!(is_dns1123_subdomain("a.b-c.d1"));
        assert!(!is_dns1123_subdomain("A"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain("a.-b"));
        assert!(!is_dns1123_subdomain(""));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
    }
}
