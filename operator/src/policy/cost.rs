//! What SITHS certificates cost and how long they take, from Inera's price list.
//!
//! Prices are defaults for estimates; an issuer's `pricePerCertificateSek` overrides them.

use jiff::{SignedDuration, Span, Timestamp, tz::TimeZone};

use crate::api::{Approval, Environment};

/// A production function certificate ordered from Inera, SEK.
pub const PRODUCTION_PRICE_SEK: u32 = 3_500;
/// The first test function certificate, SEK.
pub const TEST_FIRST_PRICE_SEK: u32 = 750;
/// Each following test function certificate, SEK.
pub const TEST_FOLLOWING_PRICE_SEK: u32 = 150;
/// Lead time of a certificate ordered through Inera's portal ("at least 4 weeks").
pub const MANUAL_LEAD_TIME: SignedDuration = SignedDuration::from_hours(28 * 24);

/// Cost in SEK of the next order on an issuer that has already placed
/// `orders_already_placed_on_issuer` orders. An override is a flat price per certificate.
pub fn order_cost(
    environment: Environment,
    price_override: Option<u32>,
    orders_already_placed_on_issuer: u32,
) -> u32 {
    if let Some(price) = price_override {
        return price;
    }
    match environment {
        Environment::Production => PRODUCTION_PRICE_SEK,
        Environment::Test if orders_already_placed_on_issuer == 0 => TEST_FIRST_PRICE_SEK,
        Environment::Test => TEST_FOLLOWING_PRICE_SEK,
    }
}

/// Cost of the next order on an issuer: a local CA signs for free (a price override still
/// applies, for organisations that charge internally); the manual backend pays the SITHS
/// price list, see [`order_cost`].
pub fn order_cost_for_backend(
    backend_is_manual: bool,
    environment: Environment,
    price_override: Option<u32>,
    orders_already_placed_on_issuer: u32,
) -> u32 {
    match (backend_is_manual, price_override) {
        (false, None) => 0,
        _ => order_cost(environment, price_override, orders_already_placed_on_issuer),
    }
}

/// Lead time when the issuer does not set `leadTimeDays`: 28 days for the manual CSR
/// backend, none for a local CA.
pub fn default_lead_time(backend_is_manual: bool) -> SignedDuration {
    if backend_is_manual {
        MANUAL_LEAD_TIME
    } else {
        SignedDuration::ZERO
    }
}

/// The issuer's `leadTimeDays`, or [`default_lead_time`].
pub fn lead_time(lead_time_days: Option<u32>, backend_is_manual: bool) -> SignedDuration {
    lead_time_days.map_or_else(
        || default_lead_time(backend_is_manual),
        |d| SignedDuration::from_hours(i64::from(d) * 24),
    )
}

/// Whether orders wait for a person's approval: as configured, else `Required` for
/// Production (every order costs money) and `NotRequired` for Test.
pub fn approval_required(environment: Environment, approval: Option<Approval>) -> bool {
    match approval {
        Some(Approval::Required) => true,
        Some(Approval::NotRequired) => false,
        None => environment == Environment::Production,
    }
}

/// Estimated cost in SEK of renewing, at the price list, every certificate that expires
/// before twelve calendar months from `now` (expired ones included: they need replacing
/// too). Test certificates count at the following price, since a certificate being renewed
/// was ordered before. One renewal per certificate: SITHS certificates live longer than a
/// year.
pub fn estimated_spend_next_12_months(
    certificates: &[(Environment, Timestamp)],
    now: Timestamp,
) -> u64 {
    let horizon = now
        .to_zoned(TimeZone::UTC)
        .checked_add(Span::new().months(12))
        .map_or(Timestamp::MAX, |z| z.timestamp());
    certificates
        .iter()
        .filter(|(_, not_after)| *not_after < horizon)
        .map(|(env, _)| u64::from(order_cost(*env, None, 1)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn price_list() {
        assert_eq!(order_cost(Environment::Production, None, 0), 3_500);
        assert_eq!(order_cost(Environment::Production, None, 7), 3_500);
        assert_eq!(order_cost(Environment::Test, None, 0), 750);
        assert_eq!(order_cost(Environment::Test, None, 1), 150);
        assert_eq!(order_cost(Environment::Test, None, 40), 150);
        assert_eq!(order_cost(Environment::Production, Some(4_100), 0), 4_100);
        assert_eq!(order_cost(Environment::Test, Some(0), 0), 0);
    }

    #[test]
    fn lead_times() {
        assert_eq!(default_lead_time(true), SignedDuration::from_hours(28 * 24));
        assert_eq!(default_lead_time(false), SignedDuration::ZERO);
        assert_eq!(lead_time(None, true), MANUAL_LEAD_TIME);
        assert_eq!(
            lead_time(Some(42), false),
            SignedDuration::from_hours(42 * 24)
        );
        assert_eq!(lead_time(Some(0), true), SignedDuration::ZERO);
    }

    #[test]
    fn approval_defaults_by_environment() {
        assert!(approval_required(Environment::Production, None));
        assert!(!approval_required(Environment::Test, None));
        assert!(!approval_required(
            Environment::Production,
            Some(Approval::NotRequired)
        ));
        assert!(approval_required(
            Environment::Test,
            Some(Approval::Required)
        ));
    }

    #[test]
    fn spend_counts_certificates_expiring_within_twelve_months() {
        let now = ts("2026-03-01T00:00:00Z");
        let certs = [
            (Environment::Production, ts("2026-04-01T00:00:00Z")), // counted
            (Environment::Production, ts("2027-02-28T23:59:59Z")), // counted
            (Environment::Production, ts("2027-03-01T00:00:00Z")), // horizon: not counted
            (Environment::Production, ts("2025-12-01T00:00:00Z")), // expired: counted
            (Environment::Test, ts("2026-06-01T00:00:00Z")),       // counted at 150
            (Environment::Test, ts("2028-01-01T00:00:00Z")),       // not counted
        ];
        assert_eq!(estimated_spend_next_12_months(&certs, now), 3 * 3_500 + 150);
        assert_eq!(estimated_spend_next_12_months(&[], now), 0);
    }

    #[test]
    fn a_local_ca_is_free_unless_a_price_is_set() {
        assert_eq!(order_cost_for_backend(false, Environment::Test, None, 0), 0);
        assert_eq!(
            order_cost_for_backend(false, Environment::Test, Some(10), 0),
            10
        );
        assert_eq!(
            order_cost_for_backend(true, Environment::Test, None, 0),
            750
        );
        assert_eq!(
            order_cost_for_backend(true, Environment::Production, None, 5),
            3500
        );
    }
}
