//! Which ACME challenge proves each name: DNS-01 when the PublicIssuer's `acme.dns01`
//! takes the name (its selector, or every name without one), HTTP-01 otherwise. A wildcard
//! name can only be proven with DNS-01 (RFC 8555 section 7.1.3).

use crate::api::{AcmeIssuer, SolverSelector};

/// The challenge for one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// `http://<name>/.well-known/acme-challenge/<token>`, answered by the operator.
    Http01,
    /// The TXT record `_acme-challenge.<name>`, written with RFC 2136.
    Dns01,
}

fn selected(selector: Option<&SolverSelector>, name: &str) -> bool {
    let Some(s) = selector else {
        return true;
    };
    let base = name.strip_prefix("*.").unwrap_or(name);
    s.dns_names.iter().any(|n| n == name)
        || s.dns_zones
            .iter()
            .any(|z| base == z || base.ends_with(&format!(".{z}")))
}

/// The challenge for `name` (as listed in `dnsNames`, a wildcard as `*.x`), or why none
/// can prove it.
pub fn challenge_for(acme: &AcmeIssuer, name: &str) -> Result<ChallengeKind, String> {
    let wildcard = name.starts_with("*.");
    match &acme.dns01 {
        Some(d) if wildcard || selected(d.selector.as_ref(), name) => Ok(ChallengeKind::Dns01),
        _ if wildcard => Err(format!(
            "{name} is a wildcard name, which only DNS-01 can validate, and this issuer solves HTTP-01 only; add acme.dns01 (RFC 2136) to the PublicIssuer, list the names explicitly, or use another issuer"
        )),
        _ => Ok(ChallengeKind::Http01),
    }
}

/// The TXT record of the DNS-01 challenge of `name` (a wildcard's base name).
pub fn dns01_record(name: &str) -> String {
    format!(
        "_acme-challenge.{}",
        name.strip_prefix("*.").unwrap_or(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Dns01Solver, NamespacedSecretRef, Rfc2136Solver, SecretKeyRef};

    fn acme(dns01: Option<Option<SolverSelector>>) -> AcmeIssuer {
        AcmeIssuer {
            server: None,
            email: None,
            external_account_binding: None,
            private_key_secret_ref: NamespacedSecretRef {
                name: "k".into(),
                namespace: "n".into(),
            },
            http01: None,
            dns01: dns01.map(|selector| Dns01Solver {
                rfc2136: Rfc2136Solver {
                    nameserver: "10.0.0.53".into(),
                    zone: "region.se".into(),
                    tsig_key_name: "acme".into(),
                    tsig_algorithm: "hmac-sha256".into(),
                    tsig_secret_ref: Some(SecretKeyRef {
                        name: "tsig".into(),
                        namespace: "n".into(),
                        key: "secret".into(),
                    }),
                },
                selector,
            }),
            server_ca: None,
        }
    }

    #[test]
    fn http01_only_refuses_wildcards_and_says_what_to_do() {
        let a = acme(None);
        assert_eq!(
            challenge_for(&a, "www.region.se"),
            Ok(ChallengeKind::Http01)
        );
        let err = challenge_for(&a, "*.region.se").unwrap_err();
        assert!(
            err.contains("only DNS-01") && err.contains("acme.dns01"),
            "{err}"
        );
    }

    #[test]
    fn dns01_without_selector_takes_every_name() {
        let a = acme(Some(None));
        assert_eq!(challenge_for(&a, "www.region.se"), Ok(ChallengeKind::Dns01));
        assert_eq!(challenge_for(&a, "*.region.se"), Ok(ChallengeKind::Dns01));
    }

    #[test]
    fn selector_by_names_and_zones_wildcards_always_dns01() {
        let a = acme(Some(Some(SolverSelector {
            dns_names: vec!["intern.region.se".into()],
            dns_zones: vec!["lab.region.se".into()],
        })));
        assert_eq!(
            challenge_for(&a, "intern.region.se"),
            Ok(ChallengeKind::Dns01)
        );
        assert_eq!(
            challenge_for(&a, "x.lab.region.se"),
            Ok(ChallengeKind::Dns01)
        );
        assert_eq!(challenge_for(&a, "lab.region.se"), Ok(ChallengeKind::Dns01));
        // A zone is matched by whole labels.
        assert_eq!(
            challenge_for(&a, "xlab.region.se"),
            Ok(ChallengeKind::Http01)
        );
        assert_eq!(
            challenge_for(&a, "www.region.se"),
            Ok(ChallengeKind::Http01)
        );
        assert_eq!(challenge_for(&a, "*.other.se"), Ok(ChallengeKind::Dns01));
    }

    #[test]
    fn record_of_a_wildcard_is_its_base_name() {
        assert_eq!(dns01_record("*.region.se"), "_acme-challenge.region.se");
        assert_eq!(
            dns01_record("www.region.se"),
            "_acme-challenge.www.region.se"
        );
    }
}
