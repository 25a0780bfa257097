//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz, nightly). Each takes raw
//! bytes, exercises one input surface and panics when an invariant breaks. The corpus in
//! `fuzz/corpus/` is replayed by a unit test on stable, so `cargo xtask test` keeps
//! checking what the fuzzer once found.

use std::sync::OnceLock;

use crate::{
    pki::{
        self, CertificateProfile, Expected, KeySpec, LocalCa, LocalCaOptions, PrivateKey, Usage,
    },
    policy::{
        coverage::{DomainGrant, uncovered_names},
        identifiers::{validate_dns_name, validate_hsa_id, validate_organization_number},
    },
};

fn fixed_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        KeySpec::ECDSA_P256
            .generate()
            .expect("ECDSA key generation")
    })
}

fn fixed_ca() -> &'static LocalCa {
    static CA: OnceLock<LocalCa> = OnceLock::new();
    CA.get_or_init(|| {
        LocalCa::generate(&LocalCaOptions {
            common_name: "fuzz root".into(),
            organization: "fuzz".into(),
            key: KeySpec::ECDSA_P256,
            intermediate_common_name: None,
            not_before: jiff::Timestamp::UNIX_EPOCH,
            validity: std::time::Duration::from_secs(100 * 365 * 86_400),
        })
        .expect("local CA")
    })
}

/// PEM chains, certificates and CSRs from arbitrary text: never a panic, and a rejection
/// never names a private-key PEM label.
pub fn pem_chain(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(chain) = pki::parse_pem_chain(text) {
        for der in &chain {
            let _ = pki::CertInfo::parse(der);
        }
    }
    let _ = pki::parse_csr(text);
    let expected = Expected {
        dns_names: vec!["api.region.se".into()],
        hsa_id: Some("SE2321000016-A1".into()),
        public_key_der: fixed_key().public_key_der(),
        usage: Usage::ServerToServer,
        subject: None,
    };
    if let Err(rejection) = pki::check_issued(
        text,
        &expected,
        fixed_ca().trust_anchors(),
        jiff::Timestamp::from_second(1_800_000_000).expect("time"),
    ) {
        let message = rejection.message();
        assert!(!message.contains("PRIVATE KEY"), "{message}");
    }
}

/// A spec from text lines (names separated by commas, HSA-id, organisation, locality):
/// whatever passes the identifier checks builds a CSR that parses back to the same names
/// and HSA-id.
pub fn csr_from_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let names: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let hsa = lines.next().filter(|s| !s.is_empty()).map(str::to_string);
    let organization = lines.next().unwrap_or("Region").to_string();
    let locality = lines.next().map(str::to_string);
    if names.len() > 100
        || names.iter().any(|n| validate_dns_name(n).is_err())
        || hsa.as_deref().is_some_and(|h| validate_hsa_id(h).is_err())
        || organization.is_empty()
        || organization.len() > 64
        || organization.chars().any(char::is_control)
        || locality
            .as_deref()
            .is_some_and(|l| l.is_empty() || l.len() > 128 || l.chars().any(char::is_control))
    {
        return;
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != names.len() {
        return;
    }
    let profile = CertificateProfile {
        dns_names: names.clone(),
        hsa_id: hsa.clone(),
        organization,
        locality,
        usage: Usage::ServerToServer,
    };
    let csr = pki::build_csr(&profile, fixed_key())
        .unwrap_or_else(|e| panic!("a valid spec must build a CSR: {e}"));
    let parsed = pki::parse_csr(&csr).expect("our own CSR parses");
    assert_eq!(parsed.dns_names, names);
    assert_eq!(parsed.hsa_id, hsa);
}

/// Identifier checks on arbitrary strings, against independent statements of the rules.
pub fn identifiers(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if validate_dns_name(s).is_ok() {
        assert!(
            s.len() <= 253 && !s.ends_with('.') && s.contains('.'),
            "{s:?}"
        );
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.*".contains(&b)),
            "{s:?}"
        );
        assert!(!s[1..].contains('*'), "wildcard not leftmost: {s:?}");
    }
    if validate_hsa_id(s).is_ok() {
        assert!(s.len() <= 31, "{s:?}");
        assert!(s.starts_with("SE") || s.starts_with("TSTNMT"), "{s:?}");
        assert!(s.is_ascii(), "{s:?}");
    }
    if validate_organization_number(s).is_ok() {
        let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
        assert_eq!(digits.len(), 10, "{s:?}");
        assert!(digits[2] * 10 + digits[3] >= 20, "{s:?}");
        let sum: u32 = digits[..9]
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let v = if i % 2 == 0 { d * 2 } else { *d };
                if v > 9 { v - 9 } else { v }
            })
            .sum();
        assert_eq!((10 - sum % 10) % 10, digits[9], "Luhn: {s:?}");
    }
}

/// Coverage on arbitrary grants (`domain` or `domain,sub` lines until an empty line) and
/// names (the remaining lines).
pub fn coverage(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut grants = Vec::new();
    let mut names = Vec::new();
    let mut in_names = false;
    for line in text.lines() {
        if line.is_empty() {
            in_names = true;
        } else if in_names {
            names.push(line.to_string());
        } else {
            let (domain, sub) = match line.split_once(',') {
                Some((d, s)) => (d, s == "sub"),
                None => (line, false),
            };
            grants.push(DomainGrant {
                domain: domain.to_string(),
                include_subdomains: sub,
            });
        }
    }
    let uncovered = uncovered_names(&names, &grants);
    for n in &uncovered {
        assert!(names.contains(n), "{n:?} was never asked for");
    }
    for n in &names {
        let exact = grants.iter().any(|g| &g.domain == n);
        let no_suffix = !grants.iter().any(|g| n.ends_with(g.domain.as_str()));
        if exact {
            assert!(!uncovered.contains(n), "{n:?} equals a granted domain");
        }
        if no_suffix {
            assert!(uncovered.contains(n), "{n:?} is under no granted domain");
        }
    }
}

/// The audit input reader (`sithsctl audit -f`) on arbitrary text: multi-document YAML or
/// JSON into the inventory, then the audit and its JSON report. Never a panic, and the
/// report never carries private-key material found in the input.
pub fn audit_input(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut inv = crate::audit::Inventory::default();
    // A rejected document is an error for the person, not a finding: the reader stops.
    let _ = crate::cli::manifests::add_text(text, "fuzz", &mut inv);
    let report = crate::audit::audit(
        &inv,
        &crate::audit::AnchorSet::new(),
        jiff::Timestamp::UNIX_EPOCH,
    );
    let json = serde_json::to_string(&report).expect("a report always serialises");
    assert!(
        !json.contains("PRIVATE KEY-----"),
        "the report repeats private-key PEM"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays every file of the committed fuzz corpus on stable.
    #[test]
    fn the_fuzz_corpus_replays_without_a_finding() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        type Target = (&'static str, fn(&[u8]));
        let targets: [Target; 5] = [
            ("pem_chain", pem_chain),
            ("csr_from_spec", csr_from_spec),
            ("identifiers", identifiers),
            ("coverage", coverage),
            ("audit_input", audit_input),
        ];
        let mut replayed = 0;
        for (name, run) in targets {
            let dir = root.join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                panic!("no corpus at {}", dir.display());
            };
            for entry in entries {
                let data = std::fs::read(entry.expect("entry").path()).expect("read");
                run(&data);
                replayed += 1;
            }
        }
        assert!(replayed >= 8, "only {replayed} corpus files");
    }

    #[test]
    fn a_valid_spec_round_trips_through_a_csr() {
        csr_from_spec(b"api.region.se,*.region.se\nSE2321000016-A1\nRegion Exempel\nStockholm");
    }
}
