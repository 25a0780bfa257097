//! The decision behind a DomainValidation's `Validated` condition.
//!
//! Dates are whole civil days and inclusive: a validation whose `validUntil` is today is
//! still valid today and expired tomorrow. The caller decides what "today" is (the
//! operator uses the Europe/Stockholm calendar, since SITHS dates are Swedish).

use jiff::civil::Date;

pub use super::dns_check::DnsCheck;
use super::{
    coverage::DomainGrant,
    dns_check::{self, failed_message},
    identifiers::validate_organization_number,
};
use crate::{
    api::{DomainValidation, status},
    vocabulary::dns,
};

/// Reason: the validation holds.
pub const REASON_VALID: &str = "Valid";
/// Reason: `validUntil` has passed.
pub const REASON_EXPIRED: &str = "Expired";
/// Reason: the owner is not the issuing organisation and there is no power of attorney.
pub const REASON_POWER_OF_ATTORNEY_MISSING: &str = "PowerOfAttorneyMissing";
/// Reason: the power of attorney's `validUntil` has passed.
pub const REASON_POWER_OF_ATTORNEY_EXPIRED: &str = "PowerOfAttorneyExpired";
/// Reason: the power of attorney was not granted by the domain owner.
pub const REASON_POWER_OF_ATTORNEY_WRONG_GRANTOR: &str = "PowerOfAttorneyWrongGrantor";
/// Reason: an organisation number fails the format or Luhn check.
pub const REASON_INVALID_ORGANIZATION_NUMBER: &str = "InvalidOrganizationNumber";
/// Reason: the live DNS TXT record does not hold the expected value.
pub const REASON_DNS_RECORD_MISMATCH: &str = dns::MISMATCH;
/// Reason for the controller to use when a date field does not parse (see [`parse_date`]).
pub const REASON_INVALID_DATE: &str = "InvalidDate";

/// A power of attorney (fullmakt) from the domain owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerOfAttorney<'a> {
    /// Organisation number of the granting organisation.
    pub granted_by: &'a str,
    /// Last day it is valid (inclusive).
    pub valid_until: Date,
}

/// Everything the `Validated` decision depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationInput<'a> {
    /// Organisation number of the domain owner.
    pub owner: &'a str,
    /// Organisation number of the issuing organisation the validation was made for.
    pub validated_for: &'a str,
    /// Last day the validation is valid (inclusive).
    pub valid_until: Date,
    /// Power of attorney, needed when `owner != validated_for`.
    pub power_of_attorney: Option<PowerOfAttorney<'a>>,
    /// State of the live DNS TXT check ([`DnsCheck::NotConfigured`] when not required).
    pub dns: DnsCheck,
    /// Name of the TXT record, for messages.
    pub dns_record: &'a str,
}

/// The `Validated` condition to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the validation counts: grants names to the gate.
    pub validated: bool,
    /// Condition status: `True`, `False`, or `Unknown` while the live check has no answer
    /// (a held answer may still count, see [`DnsCheck::Failed`]).
    pub status: &'static str,
    /// Condition reason, one of the `REASON_*` constants.
    pub reason: &'static str,
    /// What holds, or what to fix.
    pub message: String,
}

impl Verdict {
    fn refused(reason: &'static str, message: String) -> Self {
        Verdict {
            validated: false,
            status: status::FALSE,
            reason,
            message,
        }
    }

    fn unknown(validated: bool, reason: &'static str, message: String) -> Self {
        Verdict {
            validated,
            status: status::UNKNOWN,
            reason,
            message,
        }
    }
}

/// Decides the `Validated` condition. Checks run in this order and the first failure
/// wins: organisation numbers, expiry, power of attorney (only when the owner is not the
/// issuing organisation), DNS record. The message does not mention the days left, so it
/// stays the same from one day to the next and the controller does not rewrite it daily.
pub fn evaluate(input: &ValidationInput<'_>, today: Date) -> Verdict {
    let mut numbers = vec![
        ("owner.organizationNumber", input.owner),
        ("validatedFor", input.validated_for),
    ];
    if let Some(poa) = &input.power_of_attorney {
        numbers.push(("powerOfAttorney.grantedBy", poa.granted_by));
    }
    for (field, number) in numbers {
        if let Err(e) = validate_organization_number(number) {
            return Verdict::refused(REASON_INVALID_ORGANIZATION_NUMBER, format!("{field}: {e}"));
        }
    }

    if today > input.valid_until {
        return Verdict::refused(
            REASON_EXPIRED,
            format!(
                "the domain validation expired after {}; renew it with the SITHS policy authority and update validUntil",
                input.valid_until
            ),
        );
    }

    let needs_poa = input.owner != input.validated_for;
    if needs_poa {
        let Some(poa) = &input.power_of_attorney else {
            return Verdict::refused(
                REASON_POWER_OF_ATTORNEY_MISSING,
                format!(
                    "the domain owner {} is not the issuing organisation {}; add a powerOfAttorney (fullmakt) granted by {}",
                    input.owner, input.validated_for, input.owner
                ),
            );
        };
        if poa.granted_by != input.owner {
            return Verdict::refused(
                REASON_POWER_OF_ATTORNEY_WRONG_GRANTOR,
                format!(
                    "the power of attorney is granted by {}, but only the domain owner {} can grant it",
                    poa.granted_by, input.owner
                ),
            );
        }
        if today > poa.valid_until {
            return Verdict::refused(
                REASON_POWER_OF_ATTORNEY_EXPIRED,
                format!(
                    "the power of attorney from {} expired after {}; obtain a new one and update powerOfAttorney",
                    input.owner, poa.valid_until
                ),
            );
        }
    }

    let name = input.dns_record;
    let mut held = None;
    match &input.dns {
        DnsCheck::NotConfigured | DnsCheck::Matched => {}
        DnsCheck::Pending => {
            return Verdict::unknown(
                false,
                dns::PENDING,
                format!("the DNS TXT record {name} of the evidence has not been looked up yet"),
            );
        }
        DnsCheck::Missing => {
            return Verdict::refused(
                dns::MISSING,
                format!(
                    "the DNS TXT record {name} of the evidence was not found; publish it with the expected value"
                ),
            );
        }
        DnsCheck::Mismatch { found } => {
            return Verdict::refused(
                dns::MISMATCH,
                format!(
                    "the DNS TXT record {name} of the evidence holds {found:?}, not the expected value; correct the record or evidence.dnsTxtRecord.value"
                ),
            );
        }
        DnsCheck::Failed {
            failure,
            held_until: None,
        } => {
            return Verdict::unknown(false, dns::FAILED, failed_message(name, failure, None));
        }
        DnsCheck::Failed {
            failure,
            held_until: Some(until),
        } => held = Some(failed_message(name, failure, Some(*until))),
    }

    let until = effective_valid_until(input);
    let mut message = format!("valid until {until} (inclusive)");
    if needs_poa {
        message.push_str(&format!(
            ", for {} by power of attorney from {}",
            input.validated_for, input.owner
        ));
    }
    if let Some(held) = held {
        return Verdict::unknown(true, dns::FAILED, format!("{message}; {held}"));
    }
    Verdict {
        validated: true,
        status: status::TRUE,
        reason: REASON_VALID,
        message,
    }
}

/// The last day the validation counts: its own `validUntil`, or the power of attorney's
/// when that is needed and ends earlier. The controller requeues for the day after.
pub fn effective_valid_until(input: &ValidationInput<'_>) -> Date {
    match &input.power_of_attorney {
        Some(poa) if input.owner != input.validated_for => input.valid_until.min(poa.valid_until),
        _ => input.valid_until,
    }
}

/// Days left including today: 0 on the last valid day, negative once expired.
pub fn days_until_expiry(valid_until: Date, today: Date) -> i64 {
    // Whole days between two civil dates: the duration is an exact multiple of 24 h.
    valid_until.duration_since(today).as_hours() / 24
}

/// A validation counts only for the issuing organisation it was validated for.
pub fn issuer_may_use(grant_validated_for: &str, issuer_org_number: &str) -> bool {
    grant_validated_for == issuer_org_number
}

/// Parses a `YYYY-MM-DD` date field, with a message naming the field when it is not a
/// real date (the schema's pattern lets through, for example, 2026-02-30).
pub fn parse_date(field: &str, value: &str) -> Result<Date, String> {
    let well_formed = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let parsed = if well_formed {
        value.parse::<Date>().ok()
    } else {
        None
    };
    parsed.ok_or_else(|| format!("{field} {value:?} is not a calendar date written YYYY-MM-DD"))
}

/// Today in Sweden: validity dates are calendar days there.
pub fn today(ts: jiff::Timestamp) -> jiff::civil::Date {
    ts.in_tz("Europe/Stockholm")
        .map(|z| z.date())
        .unwrap_or_else(|_| ts.to_zoned(jiff::tz::TimeZone::UTC).date())
}

/// The verdict for `dv` at `now` (dates are Swedish calendar days, see [`today`]). The
/// live DNS TXT check counts through the result the controller wrote to `status.dns`
/// ([`dns_check::state`]) when `evidence.dnsTxtRecord.required`. Shared by the controller,
/// the gate chain, `sithsctl plan` and `sithsctl audit`.
pub fn verdict(dv: &DomainValidation, now: jiff::Timestamp) -> Verdict {
    let today = today(now);
    let spec = &dv.spec;
    let invalid_date = |message: String| Verdict::refused(REASON_INVALID_DATE, message);
    let valid_until = match parse_date("validUntil", &spec.valid_until) {
        Ok(d) => d,
        Err(m) => return invalid_date(m),
    };
    let poa = match &spec.power_of_attorney {
        Some(p) => match parse_date("powerOfAttorney.validUntil", &p.valid_until) {
            Ok(d) => Some(PowerOfAttorney {
                granted_by: &p.granted_by,
                valid_until: d,
            }),
            Err(m) => return invalid_date(m),
        },
        None => None,
    };
    evaluate(
        &ValidationInput {
            owner: &spec.owner.organization_number,
            validated_for: &spec.validated_for,
            valid_until,
            power_of_attorney: poa,
            dns: match &spec.evidence.dns_txt_record {
                Some(r) if r.required => dns_check::state(dv, now),
                _ => DnsCheck::NotConfigured,
            },
            dns_record: spec
                .evidence
                .dns_txt_record
                .as_ref()
                .map_or("", |r| r.name.as_str()),
        },
        today,
    )
}

/// The grants the validations give `issuer_org_number` at `now`.
pub fn grants_for<'a>(
    validations: impl IntoIterator<Item = &'a DomainValidation>,
    issuer_org_number: &str,
    now: jiff::Timestamp,
) -> Vec<DomainGrant> {
    validations
        .into_iter()
        .filter(|dv| dv.spec.validated_for == issuer_org_number)
        .filter(|dv| verdict(dv, now).validated)
        .map(|dv| DomainGrant {
            domain: dv.spec.domain.clone(),
            include_subdomains: dv.spec.include_subdomains,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const REGION: &str = "232100-0016";
    const COMPANY: &str = "556559-4230";
    const OTHER: &str = "202100-4185";

    fn own(valid_until: Date) -> ValidationInput<'static> {
        ValidationInput {
            owner: REGION,
            validated_for: REGION,
            valid_until,
            power_of_attorney: None,
            dns: DnsCheck::NotConfigured,
            dns_record: "_siths.region.se",
        }
    }

    fn agent(poa: Option<PowerOfAttorney<'static>>) -> ValidationInput<'static> {
        ValidationInput {
            owner: COMPANY,
            validated_for: REGION,
            valid_until: date(2026, 12, 31),
            power_of_attorney: poa,
            dns: DnsCheck::NotConfigured,
            dns_record: "_siths.region.se",
        }
    }

    #[test]
    fn own_domain_valid_on_its_last_day_and_expired_the_day_after() {
        let input = own(date(2026, 6, 30));
        let last_day = evaluate(&input, date(2026, 6, 30));
        assert_eq!(
            last_day,
            Verdict {
                validated: true,
                status: "True",
                reason: "Valid",
                message: "valid until 2026-06-30 (inclusive)".into()
            }
        );
        let after = evaluate(&input, date(2026, 7, 1));
        assert!(!after.validated);
        assert_eq!(after.reason, "Expired");
        assert!(after.message.contains("2026-06-30"), "{}", after.message);
    }

    #[test]
    fn message_does_not_change_from_day_to_day() {
        let input = own(date(2026, 6, 30));
        assert_eq!(
            evaluate(&input, date(2026, 1, 1)),
            evaluate(&input, date(2026, 6, 29))
        );
    }

    #[test]
    fn agent_without_power_of_attorney() {
        let v = evaluate(&agent(None), date(2026, 1, 1));
        assert!(!v.validated);
        assert_eq!(v.reason, "PowerOfAttorneyMissing");
        assert!(v.message.contains(COMPANY), "{}", v.message);
    }

    #[test]
    fn agent_with_power_of_attorney_from_the_owner() {
        let input = agent(Some(PowerOfAttorney {
            granted_by: COMPANY,
            valid_until: date(2026, 3, 31),
        }));
        let v = evaluate(&input, date(2026, 3, 31));
        assert!(v.validated, "{v:?}");
        assert_eq!(v.reason, "Valid");
        // The power of attorney ends before the validation: it bounds the validity.
        assert_eq!(effective_valid_until(&input), date(2026, 3, 31));
        assert!(
            v.message.starts_with("valid until 2026-03-31"),
            "{}",
            v.message
        );

        let v = evaluate(&input, date(2026, 4, 1));
        assert!(!v.validated);
        assert_eq!(v.reason, "PowerOfAttorneyExpired");
    }

    #[test]
    fn power_of_attorney_from_someone_else() {
        let v = evaluate(
            &agent(Some(PowerOfAttorney {
                granted_by: OTHER,
                valid_until: date(2027, 1, 1),
            })),
            date(2026, 1, 1),
        );
        assert!(!v.validated);
        assert_eq!(v.reason, "PowerOfAttorneyWrongGrantor");
        assert!(
            v.message.contains(OTHER) && v.message.contains(COMPANY),
            "{}",
            v.message
        );
    }

    #[test]
    fn power_of_attorney_ignored_for_own_domain() {
        let mut input = own(date(2026, 12, 31));
        input.power_of_attorney = Some(PowerOfAttorney {
            granted_by: OTHER,
            valid_until: date(2020, 1, 1),
        });
        assert_eq!(evaluate(&input, date(2026, 1, 1)).reason, "Valid");
        assert_eq!(effective_valid_until(&input), date(2026, 12, 31));
    }

    #[test]
    fn invalid_organization_numbers_anywhere() {
        let mut input = own(date(2026, 12, 31));
        input.owner = "232100-0017";
        input.validated_for = "232100-0017";
        let v = evaluate(&input, date(2026, 1, 1));
        assert_eq!(v.reason, "InvalidOrganizationNumber");
        assert!(
            v.message.starts_with("owner.organizationNumber:"),
            "{}",
            v.message
        );

        let mut input = agent(None);
        input.validated_for = "232100-0015";
        assert_eq!(
            evaluate(&input, date(2026, 1, 1)).reason,
            "InvalidOrganizationNumber"
        );

        let input = agent(Some(PowerOfAttorney {
            granted_by: "556559-4231",
            valid_until: date(2027, 1, 1),
        }));
        let v = evaluate(&input, date(2026, 1, 1));
        assert_eq!(v.reason, "InvalidOrganizationNumber");
        assert!(
            v.message.starts_with("powerOfAttorney.grantedBy:"),
            "{}",
            v.message
        );
    }

    #[test]
    fn invalid_number_outranks_expiry() {
        let mut input = own(date(2020, 1, 1));
        input.owner = "232100-0017";
        assert_eq!(
            evaluate(&input, date(2026, 1, 1)).reason,
            "InvalidOrganizationNumber"
        );
    }

    #[test]
    fn dns_record_mismatch() {
        let mut input = own(date(2026, 12, 31));
        input.dns = DnsCheck::Mismatch {
            found: vec!["old-token".into()],
        };
        let v = evaluate(&input, date(2026, 1, 1));
        assert_eq!(v.reason, "DnsRecordMismatch");
        assert!(v.message.contains("old-token"), "{}", v.message);

        input.dns = DnsCheck::Missing;
        let v = evaluate(&input, date(2026, 1, 1));
        assert_eq!((v.status, v.reason), ("False", "DnsRecordMissing"));
        assert!(v.message.contains("not found"), "{}", v.message);

        input.dns = DnsCheck::Matched;
        let v = evaluate(&input, date(2026, 1, 1));
        assert!(v.validated);
        assert_eq!(v.status, "True");
    }

    #[test]
    fn dns_pending_and_failed_are_unknown() {
        let mut input = own(date(2026, 12, 31));
        input.dns = DnsCheck::Pending;
        let v = evaluate(&input, date(2026, 1, 1));
        assert_eq!(
            (v.validated, v.status, v.reason),
            (false, "Unknown", "DnsCheckPending")
        );

        input.dns = DnsCheck::Failed {
            failure: "timed out".into(),
            held_until: Some("2026-01-04T00:00:00Z".parse().unwrap()),
        };
        let v = evaluate(&input, date(2026, 1, 1));
        // Held within the grace period: still counts, but says the check failed.
        assert_eq!(
            (v.validated, v.status, v.reason),
            (true, "Unknown", "DnsCheckFailed")
        );
        assert!(v.message.contains("2026-01-04T00:00:00Z"), "{}", v.message);

        input.dns = DnsCheck::Failed {
            failure: "timed out".into(),
            held_until: None,
        };
        let v = evaluate(&input, date(2026, 1, 1));
        assert_eq!(
            (v.validated, v.status, v.reason),
            (false, "Unknown", "DnsCheckFailed")
        );
    }

    #[test]
    fn expiry_outranks_a_held_dns_answer() {
        let mut input = own(date(2025, 12, 31));
        input.dns = DnsCheck::Failed {
            failure: "timed out".into(),
            held_until: Some("2026-01-04T00:00:00Z".parse().unwrap()),
        };
        let v = evaluate(&input, date(2026, 1, 1));
        assert_eq!((v.validated, v.reason), (false, "Expired"));
    }

    #[test]
    fn days_until_expiry_counts_whole_days() {
        assert_eq!(days_until_expiry(date(2026, 6, 30), date(2026, 6, 30)), 0);
        assert_eq!(days_until_expiry(date(2026, 6, 30), date(2026, 6, 1)), 29);
        assert_eq!(days_until_expiry(date(2026, 6, 30), date(2026, 7, 2)), -2);
        // Across a DST change in Sweden: civil days, not 24-hour periods in a time zone.
        assert_eq!(days_until_expiry(date(2026, 3, 30), date(2026, 3, 28)), 2);
    }

    #[test]
    fn validation_counts_only_for_its_issuer() {
        assert!(issuer_may_use(REGION, REGION));
        assert!(!issuer_may_use(REGION, COMPANY));
    }

    #[test]
    fn parse_date_rejects_impossible_dates() {
        assert_eq!(
            parse_date("validUntil", "2026-02-28"),
            Ok(date(2026, 2, 28))
        );
        let err = parse_date("validUntil", "2026-02-30").unwrap_err();
        assert!(err.starts_with("validUntil \"2026-02-30\""), "{err}");
        assert!(parse_date("validUntil", "2026-2-28").is_err());
        assert!(parse_date("validUntil", "2026-02-28T00:00:00").is_err());
    }
}
