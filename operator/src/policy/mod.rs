//! Pure decisions, no I/O: the gate chain, routing by purpose, issuance sources, identifier
//! checks, domain-validation coverage, renewal time, backoff, cost.
//!
//! Every function here takes its inputs (including `now` or `today`) as arguments and
//! reads no clock, file, network or cluster, so each decision is tested with plain unit
//! tests beside it. Controllers gather the inputs and apply the outputs.

pub mod backoff;
pub mod challenges;
pub mod conditions;
pub mod cost;
pub mod coverage;
pub mod dns_check;
pub mod domain_validation;
pub mod gates;
pub mod gateway;
pub mod identifiers;
pub mod ingress;
pub mod issuers;
pub mod names;
pub mod namespaces;
pub mod order;
pub mod renewal;
pub mod routing;

use jiff::{SignedDuration, Timestamp};

/// A 64-bit hash of `uid` that is identical on every run, platform and version of the
/// operator (unlike `std`'s randomised hasher), so jitter and names derived from it do not
/// move when the operator restarts. `purpose` separates the uses, so that renewal jitter
/// and backoff jitter of one object are independent.
pub(crate) fn stable_hash(purpose: &str, uid: &str) -> u64 {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(purpose.as_bytes());
    // The separator keeps ("ab", "c") and ("a", "bc") apart.
    ctx.update(&[0]);
    ctx.update(uid.as_bytes());
    let digest = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// `ts + d`, saturating at the ends of jiff's range instead of failing.
pub(crate) fn add_saturating(ts: Timestamp, d: SignedDuration) -> Timestamp {
    ts.checked_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// RFC 3339 in whole seconds, as written to status fields and reports.
pub fn rfc3339(ts: Timestamp) -> String {
    ts.round(jiff::Unit::Second).unwrap_or(ts).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_is_stable_and_separated_by_purpose() {
        // Pinned through its uses: renewal, backoff and names tests assert exact values,
        // because a changed hash would move every renewal time and object name.
        assert_eq!(stable_hash("renewal", "uid"), stable_hash("renewal", "uid"));
        assert_ne!(stable_hash("renewal", "uid"), stable_hash("backoff", "uid"));
        assert_ne!(stable_hash("ab", "c"), stable_hash("a", "bc"));
    }
}
