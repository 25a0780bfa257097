//! Whether the DNS names of a certificate are covered by domain validations.
//!
//! No certificate may be issued for a name that no valid domain validation covers. The
//! caller passes only grants that count: `Validated` and made for the issuer's organisation
//! (see [`super::domain_validation::issuer_may_use`]).

/// A validated domain, as far as coverage is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainGrant {
    /// The validated domain, for example `region.se` (lowercase, no wildcard).
    pub domain: String,
    /// Whether names below the domain, wildcards included, are covered too.
    pub include_subdomains: bool,
}

impl DomainGrant {
    /// Whether this grant covers `name`: the exact domain always; with
    /// `include_subdomains` also every name and wildcard below it, on a label boundary
    /// (`evilregion.se` is not below `region.se`). Names are compared as given; they are
    /// validated lowercase before this point.
    pub fn covers(&self, name: &str) -> bool {
        if name == self.domain {
            return true;
        }
        self.include_subdomains
            && name
                .strip_suffix(self.domain.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
    }
}

/// The names no grant covers, in input order. Empty means every name is covered.
pub fn uncovered_names(names: &[String], grants: &[DomainGrant]) -> Vec<String> {
    names
        .iter()
        .filter(|name| !grants.iter().any(|g| g.covers(name)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(domain: &str, include_subdomains: bool) -> DomainGrant {
        DomainGrant {
            domain: domain.into(),
            include_subdomains,
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_grant_covers_only_the_domain() {
        let g = [grant("region.se", false)];
        assert_eq!(
            uncovered_names(&names(&["region.se", "api.region.se", "*.region.se"]), &g),
            names(&["api.region.se", "*.region.se"])
        );
    }

    #[test]
    fn subdomain_grant_covers_names_and_wildcards_below() {
        let g = [grant("region.se", true)];
        assert!(
            uncovered_names(
                &names(&[
                    "region.se",
                    "api.region.se",
                    "a.b.region.se",
                    "*.region.se",
                    "*.a.region.se"
                ]),
                &g
            )
            .is_empty()
        );
    }

    #[test]
    fn label_boundary_is_respected() {
        let g = [grant("region.se", true)];
        assert_eq!(
            uncovered_names(
                &names(&[
                    "evilregion.se",
                    "api.evilregion.se",
                    "region.se.evil.com",
                    "se"
                ]),
                &g
            ),
            names(&[
                "evilregion.se",
                "api.evilregion.se",
                "region.se.evil.com",
                "se"
            ])
        );
        // A bare leading dot is not a name below the domain.
        assert!(!g[0].covers(".region.se"));
    }

    #[test]
    fn deeper_grant_does_not_cover_its_parent() {
        let g = [grant("a.region.se", true)];
        assert_eq!(
            uncovered_names(&names(&["region.se", "*.region.se", "x.a.region.se"]), &g),
            names(&["region.se", "*.region.se"])
        );
    }

    #[test]
    fn several_grants_and_input_order() {
        let g = [grant("region.se", false), grant("vard.se", true)];
        assert_eq!(
            uncovered_names(
                &names(&[
                    "z.other.se",
                    "region.se",
                    "api.vard.se",
                    "api.region.se",
                    "a.other.se"
                ]),
                &g
            ),
            names(&["z.other.se", "api.region.se", "a.other.se"])
        );
        assert_eq!(
            uncovered_names(&names(&["region.se"]), &[]),
            names(&["region.se"])
        );
        assert!(uncovered_names(&[], &g).is_empty());
    }
}
