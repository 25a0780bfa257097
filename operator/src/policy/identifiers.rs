//! Checks of the identifiers SITHS certificates carry: organisation numbers, HSA-ids and
//! DNS names. The CRD schema already rejects most malformed values at admission; these
//! checks add what CEL cannot express (the Luhn check digit) and give messages a person
//! can act on.

use thiserror::Error;

/// Longest HSA-id SITHS accepts.
pub const HSA_ID_MAX_LEN: usize = 31;
/// Longest DNS name (RFC 1035, without the trailing dot).
pub const DNS_NAME_MAX_LEN: usize = 253;
/// Longest DNS label (RFC 1035).
pub const DNS_LABEL_MAX_LEN: usize = 63;

/// Why an identifier was rejected. `Display` says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentifierError {
    /// Not `NNNNNN-NNNN`.
    #[error(
        "organisation number {value:?} must be written NNNNNN-NNNN: six digits, a hyphen, four digits (for example 232100-0016)"
    )]
    OrganizationNumberFormat {
        /// The rejected value.
        value: String,
    },
    /// Third and fourth digits below 20: a personal identity number, not an organisation.
    #[error(
        "organisation number {value:?} has {group:02} as third and fourth digits; an organisation number has 20 or more there (a value below 20 is a personal identity number)"
    )]
    OrganizationNumberGroup {
        /// The rejected value.
        value: String,
        /// The third and fourth digits read as a number.
        group: u8,
    },
    /// The last digit is not the Luhn check digit of the first nine.
    #[error(
        "organisation number {value:?} has check digit {found}, but the Luhn check over its first nine digits gives {expected}; check the number for a typo"
    )]
    OrganizationNumberCheckDigit {
        /// The rejected value.
        value: String,
        /// The check digit the first nine digits call for.
        expected: u8,
        /// The check digit written.
        found: u8,
    },
    /// Contains a character SITHS forbids in HSA-ids.
    #[error(
        "HSA-id {value:?} contains {ch:?}; HSA-ids may not contain å, ä, ö or @ (use only A-Z, a-z and 0-9 after the hyphen)"
    )]
    HsaIdForbiddenCharacter {
        /// The rejected value.
        value: String,
        /// The first forbidden character.
        ch: char,
    },
    /// Longer than [`HSA_ID_MAX_LEN`].
    #[error("HSA-id {value:?} is {len} characters long; an HSA-id has at most 31")]
    HsaIdTooLong {
        /// The rejected value.
        value: String,
        /// Its length in characters.
        len: usize,
    },
    /// Does not match `^(SE|TSTNMT)\d{10,12}-[A-Za-z0-9]+$`.
    #[error(
        "HSA-id {value:?} must be SE (or TSTNMT for test ids), 10 to 12 digits of the organisation number without hyphen, a hyphen, then letters and digits, for example SE2321000016-ABC1"
    )]
    HsaIdFormat {
        /// The rejected value.
        value: String,
    },
    /// The empty string.
    #[error("DNS name is empty")]
    DnsNameEmpty,
    /// Longer than [`DNS_NAME_MAX_LEN`].
    #[error("DNS name {value:?} is {len} characters long; a DNS name has at most 253")]
    DnsNameTooLong {
        /// The rejected value.
        value: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Ends with a dot.
    #[error("DNS name {value:?} ends with a dot; write it without the trailing dot ({suggestion})")]
    DnsNameTrailingDot {
        /// The rejected value.
        value: String,
        /// The name without the trailing dot.
        suggestion: String,
    },
    /// Contains uppercase letters.
    #[error("DNS name {value:?} contains uppercase letters; write it in lowercase ({suggestion})")]
    DnsNameUppercase {
        /// The rejected value.
        value: String,
        /// The name in lowercase.
        suggestion: String,
    },
    /// Contains a non-ASCII character.
    #[error(
        "DNS name {value:?} contains {ch:?}; write internationalised names in punycode (labels starting with xn--, for example xn--lkartidningen-5hb.se)"
    )]
    DnsNameNonAscii {
        /// The rejected value.
        value: String,
        /// The first non-ASCII character.
        ch: char,
    },
    /// Fewer than two labels (not counting a leading wildcard).
    #[error(
        "DNS name {value:?} needs at least two labels below any wildcard (for example api.region.se or *.region.se)"
    )]
    DnsNameTooFewLabels {
        /// The rejected value.
        value: String,
    },
    /// The last label is all digits: an IPv4 address, not a DNS name.
    #[error(
        "{value:?} ends in a numeric label (decimal or 0x hex), so it reads as an IP address, not a DNS name; certificates here are for DNS names only"
    )]
    DnsNameNumericTld {
        /// The rejected value.
        value: String,
    },
    /// Two dots in a row or a leading dot.
    #[error("DNS name {value:?} has an empty label (a leading dot or two dots in a row)")]
    DnsNameEmptyLabel {
        /// The rejected value.
        value: String,
    },
    /// A label longer than [`DNS_LABEL_MAX_LEN`].
    #[error(
        "label {label:?} of DNS name {value:?} is {len} characters long; a label has at most 63"
    )]
    DnsLabelTooLong {
        /// The rejected value.
        value: String,
        /// The offending label.
        label: String,
        /// Its length.
        len: usize,
    },
    /// A `*` anywhere but as the whole leftmost label.
    #[error(
        "DNS name {value:?} has a wildcard in the wrong place; a wildcard is allowed only as the whole leftmost label (*.region.se)"
    )]
    DnsNameMisplacedWildcard {
        /// The rejected value.
        value: String,
    },
    /// A character outside `a-z`, `0-9`, `-`.
    #[error(
        "label {label:?} of DNS name {value:?} contains {ch:?}; labels may contain only a-z, 0-9 and '-'"
    )]
    DnsLabelInvalidCharacter {
        /// The rejected value.
        value: String,
        /// The offending label.
        label: String,
        /// The first invalid character.
        ch: char,
    },
    /// A label that starts or ends with a hyphen.
    #[error(
        "label {label:?} of DNS name {value:?} starts or ends with '-'; labels must start and end with a letter or digit"
    )]
    DnsLabelHyphen {
        /// The rejected value.
        value: String,
        /// The offending label.
        label: String,
    },
}

/// Checks a Swedish organisation number written `NNNNNN-NNNN`: third and fourth digits
/// at least 20, last digit the Luhn check digit over the first nine.
pub fn validate_organization_number(value: &str) -> Result<(), IdentifierError> {
    let bytes = value.as_bytes();
    let well_formed = bytes.len() == 11
        && bytes[6] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 6 || b.is_ascii_digit());
    if !well_formed {
        return Err(IdentifierError::OrganizationNumberFormat {
            value: value.to_string(),
        });
    }
    let digits: Vec<u8> = bytes
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect();
    let group = digits[2] * 10 + digits[3];
    if group < 20 {
        return Err(IdentifierError::OrganizationNumberGroup {
            value: value.to_string(),
            group,
        });
    }
    let expected = luhn_check_digit(&digits[..9]);
    let found = digits[9];
    if expected != found {
        return Err(IdentifierError::OrganizationNumberCheckDigit {
            value: value.to_string(),
            expected,
            found,
        });
    }
    Ok(())
}

/// The Luhn check digit for `payload` (each element 0..=9): from the right, every other
/// digit starting with the rightmost is doubled.
fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    // Never truncates: the value is below 10.
    ((10 - sum % 10) % 10) as u8
}

/// Checks an HSA-id against the lenient form `^(SE|TSTNMT)\d{10,12}-[A-Za-z0-9]+$`, at most
/// 31 characters. The organisation number inside is not Luhn-checked: 12-digit and test
/// forms do not carry a plain organisation number.
pub fn validate_hsa_id(value: &str) -> Result<(), IdentifierError> {
    if let Some(ch) = value
        .chars()
        .find(|c| matches!(c, 'å' | 'ä' | 'ö' | 'Å' | 'Ä' | 'Ö' | '@'))
    {
        return Err(IdentifierError::HsaIdForbiddenCharacter {
            value: value.to_string(),
            ch,
        });
    }
    let len = value.chars().count();
    if len > HSA_ID_MAX_LEN {
        return Err(IdentifierError::HsaIdTooLong {
            value: value.to_string(),
            len,
        });
    }
    let format_error = || IdentifierError::HsaIdFormat {
        value: value.to_string(),
    };
    let rest = value
        .strip_prefix("SE")
        .or_else(|| value.strip_prefix("TSTNMT"))
        .ok_or_else(format_error)?;
    let (digits, suffix) = rest.split_once('-').ok_or_else(format_error)?;
    let digits_ok = (10..=12).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    let suffix_ok = !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
    if digits_ok && suffix_ok {
        Ok(())
    } else {
        Err(format_error())
    }
}

/// Checks a DNS name for a certificate: lowercase letter-digit-hyphen labels of 1 to 63
/// characters, at most 253 in all, at least two labels below an optional wildcard, no
/// trailing dot, and a wildcard only as the whole leftmost label. Internationalised names
/// must be written in punycode (`xn--`). Matches the CRD's CEL rule, with a precise message.
pub fn validate_dns_name(value: &str) -> Result<(), IdentifierError> {
    let owned = || value.to_string();
    if value.is_empty() {
        return Err(IdentifierError::DnsNameEmpty);
    }
    if let Some(ch) = value.chars().find(|c| !c.is_ascii()) {
        return Err(IdentifierError::DnsNameNonAscii { value: owned(), ch });
    }
    if value.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(IdentifierError::DnsNameUppercase {
            value: owned(),
            suggestion: value.to_ascii_lowercase(),
        });
    }
    if let Some(stripped) = value.strip_suffix('.') {
        return Err(IdentifierError::DnsNameTrailingDot {
            value: owned(),
            suggestion: stripped.to_string(),
        });
    }
    if value.len() > DNS_NAME_MAX_LEN {
        return Err(IdentifierError::DnsNameTooLong {
            value: owned(),
            len: value.len(),
        });
    }
    let (wildcard, base) = match value.strip_prefix("*.") {
        Some(base) => (true, base),
        None => (false, value),
    };
    if base.contains('*') || (!wildcard && value.starts_with('*')) {
        return Err(IdentifierError::DnsNameMisplacedWildcard { value: owned() });
    }
    let labels: Vec<&str> = base.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(IdentifierError::DnsNameEmptyLabel { value: owned() });
        }
        if label.len() > DNS_LABEL_MAX_LEN {
            return Err(IdentifierError::DnsLabelTooLong {
                value: owned(),
                label: label.to_string(),
                len: label.len(),
            });
        }
        if let Some(ch) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(IdentifierError::DnsLabelInvalidCharacter {
                value: owned(),
                label: label.to_string(),
                ch,
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(IdentifierError::DnsLabelHyphen {
                value: owned(),
                label: label.to_string(),
            });
        }
    }
    if labels.len() < 2 {
        return Err(IdentifierError::DnsNameTooFewLabels { value: owned() });
    }
    // The last label may not read as a number, decimal or hex (`0x1f`): such a name is
    // an IPv4 address to URL parsers (WHATWG "ends in a number").
    if labels.last().is_some_and(|tld| {
        tld.bytes().all(|b| b.is_ascii_digit())
            || tld
                .strip_prefix("0x")
                .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
    }) {
        return Err(IdentifierError::DnsNameNumericTld { value: owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the csr_from_spec fuzz target: "2.5.4.5" passed as a DNS name, and the CSR
    /// builder refused it as an IP address.
    #[test]
    fn an_ip_address_is_not_a_dns_name() {
        // The second fuzz finding: a last label of 0x and hex digits.
        for v in ["2.5.4.5", "10.0.0.1", "api.region.123", "a.0xa198e", "a.0x"] {
            assert!(
                matches!(
                    validate_dns_name(v),
                    Err(IdentifierError::DnsNameNumericTld { .. })
                ),
                "{v}"
            );
        }
        assert_eq!(validate_dns_name("1password.region.se"), Ok(()));
        assert_eq!(validate_dns_name("api.x1"), Ok(()));
        assert_eq!(validate_dns_name("api.0xg1"), Ok(()));
    }

    #[test]
    fn valid_organization_numbers_from_the_domain_reference() {
        for n in ["232100-0016", "556559-4230", "202100-4185"] {
            assert_eq!(validate_organization_number(n), Ok(()), "{n}");
        }
    }

    #[test]
    fn organization_number_with_wrong_check_digit() {
        let err = validate_organization_number("232100-0017").unwrap_err();
        assert_eq!(
            err,
            IdentifierError::OrganizationNumberCheckDigit {
                value: "232100-0017".into(),
                expected: 6,
                found: 7
            }
        );
        assert!(err.to_string().contains("gives 6"), "{err}");
        // A transposition of two digits is caught too.
        assert!(matches!(
            validate_organization_number("556559-2430"),
            Err(IdentifierError::OrganizationNumberCheckDigit { .. })
        ));
    }

    #[test]
    fn organization_number_group_below_20_is_a_person() {
        // 19 in third and fourth place: a personal identity number with a valid Luhn digit.
        assert_eq!(
            validate_organization_number("811228-9874"),
            Err(IdentifierError::OrganizationNumberGroup {
                value: "811228-9874".into(),
                group: 12
            })
        );
        // Exactly 20 is allowed (Luhn digit of 202100000 is 1).
        assert_eq!(validate_organization_number("202100-0001"), Ok(()));
    }

    #[test]
    fn organization_number_format() {
        for bad in [
            "2321000016",
            "232100-001",
            "232100 0016",
            "23210-00016",
            "2321OO-0016",
            "",
            "232100-00166",
        ] {
            assert!(
                matches!(
                    validate_organization_number(bad),
                    Err(IdentifierError::OrganizationNumberFormat { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn luhn_digit_matches_known_values() {
        assert_eq!(luhn_check_digit(&[2, 3, 2, 1, 0, 0, 0, 0, 1]), 6);
        assert_eq!(luhn_check_digit(&[5, 5, 6, 5, 5, 9, 4, 2, 3]), 0);
        assert_eq!(luhn_check_digit(&[2, 0, 2, 1, 0, 0, 4, 1, 8]), 5);
    }

    #[test]
    fn valid_hsa_ids() {
        for id in [
            "SE2321000016-ABC1",
            "SE5565594230-BCQ",
            "SE162321000255-O16560",
            "TSTNMT2321000156-1019",
            "SE2321000016-a",
        ] {
            assert_eq!(validate_hsa_id(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn hsa_id_length_limit() {
        // SE + 12 digits + '-' = 15 characters; 16 more make 31, 17 more make 32.
        let ok = format!("SE162321000255-{}", "A".repeat(16));
        assert_eq!(ok.len(), 31);
        assert_eq!(validate_hsa_id(&ok), Ok(()));
        let long = format!("SE162321000255-{}", "A".repeat(17));
        assert_eq!(long.len(), 32);
        assert_eq!(
            validate_hsa_id(&long),
            Err(IdentifierError::HsaIdTooLong {
                value: long.clone(),
                len: 32
            })
        );
    }

    #[test]
    fn hsa_id_forbidden_characters_are_named() {
        let err = validate_hsa_id("SE2321000016-Växel").unwrap_err();
        assert_eq!(
            err,
            IdentifierError::HsaIdForbiddenCharacter {
                value: "SE2321000016-Växel".into(),
                ch: 'ä'
            }
        );
        assert!(err.to_string().contains("å, ä, ö or @"), "{err}");
        assert!(matches!(
            validate_hsa_id("SE2321000016-a@b"),
            Err(IdentifierError::HsaIdForbiddenCharacter { ch: '@', .. })
        ));
    }

    #[test]
    fn hsa_id_format() {
        for bad in [
            "SE232100001-ABC",     // 9 digits
            "SE2321000016123-ABC", // 13 digits
            "SE2321000016ABC",     // no hyphen
            "SE2321000016-",       // empty suffix
            "se2321000016-ABC",    // lowercase prefix
            "NO2321000016-ABC",    // wrong prefix
            "SE232100-0016-ABC",   // hyphenated organisation number
            "SE2321000016-AB_C",   // underscore
            "SE2321000016-AB-C",   // second hyphen
        ] {
            assert!(
                matches!(
                    validate_hsa_id(bad),
                    Err(IdentifierError::HsaIdFormat { .. })
                ),
                "{bad:?}: {:?}",
                validate_hsa_id(bad)
            );
        }
    }

    #[test]
    fn valid_dns_names() {
        for name in [
            "region.se",
            "api.region.se",
            "*.region.se",
            "*.a.region.se",
            "xn--lkartidningen-5hb.se",
            "a-b.c1.region.se",
            "1177.se",
        ] {
            assert_eq!(validate_dns_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn dns_name_length_limits() {
        let label63 = "a".repeat(63);
        assert_eq!(validate_dns_name(&format!("{label63}.se")), Ok(()));
        assert!(matches!(
            validate_dns_name(&format!("a{label63}.se")),
            Err(IdentifierError::DnsLabelTooLong { len: 64, .. })
        ));
        // 4 * 63 + 3 dots = 255 characters.
        let too_long = [label63.as_str(); 4].join(".");
        assert!(matches!(
            validate_dns_name(&too_long),
            Err(IdentifierError::DnsNameTooLong { len: 255, .. })
        ));
        // 253 exactly: 3 * 63 + 61 + 3 dots.
        let max = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
        assert_eq!(max.len(), 253);
        assert_eq!(validate_dns_name(&max), Ok(()));
    }

    #[test]
    fn dns_name_wildcard_only_leftmost_and_whole() {
        for bad in [
            "api.*.region.se",
            "a*.region.se",
            "*a.region.se",
            "*",
            "**.region.se",
            "api.region.*",
        ] {
            assert!(
                matches!(
                    validate_dns_name(bad),
                    Err(IdentifierError::DnsNameMisplacedWildcard { .. })
                ),
                "{bad:?}: {:?}",
                validate_dns_name(bad)
            );
        }
    }

    #[test]
    fn dns_name_needs_two_labels_below_wildcard() {
        assert!(matches!(
            validate_dns_name("localhost"),
            Err(IdentifierError::DnsNameTooFewLabels { .. })
        ));
        assert!(matches!(
            validate_dns_name("*.se"),
            Err(IdentifierError::DnsNameTooFewLabels { .. })
        ));
    }

    #[test]
    fn dns_name_trailing_dot_suggests_fix() {
        let err = validate_dns_name("api.region.se.").unwrap_err();
        assert_eq!(
            err,
            IdentifierError::DnsNameTrailingDot {
                value: "api.region.se.".into(),
                suggestion: "api.region.se".into()
            }
        );
    }

    #[test]
    fn dns_name_uppercase_suggests_lowercase() {
        let err = validate_dns_name("Api.Region.SE").unwrap_err();
        assert!(err.to_string().contains("(api.region.se)"), "{err}");
    }

    #[test]
    fn dns_name_non_ascii_suggests_punycode() {
        let err = validate_dns_name("läkartidningen.se").unwrap_err();
        assert!(matches!(
            err,
            IdentifierError::DnsNameNonAscii { ch: 'ä', .. }
        ));
        assert!(err.to_string().contains("punycode"), "{err}");
    }

    #[test]
    fn dns_name_label_rules() {
        assert!(matches!(
            validate_dns_name("-api.region.se"),
            Err(IdentifierError::DnsLabelHyphen { .. })
        ));
        assert!(matches!(
            validate_dns_name("api-.region.se"),
            Err(IdentifierError::DnsLabelHyphen { .. })
        ));
        assert!(matches!(
            validate_dns_name("api_x.region.se"),
            Err(IdentifierError::DnsLabelInvalidCharacter { ch: '_', .. })
        ));
        assert!(matches!(
            validate_dns_name("api..region.se"),
            Err(IdentifierError::DnsNameEmptyLabel { .. })
        ));
        assert!(matches!(
            validate_dns_name(".region.se"),
            Err(IdentifierError::DnsNameEmptyLabel { .. })
        ));
        assert_eq!(validate_dns_name(""), Err(IdentifierError::DnsNameEmpty));
    }
}
