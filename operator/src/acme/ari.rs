//! ACME Renewal Information (RFC 9773): the CA's suggested renewal window, checked
//! against the certificate it is about.

use jiff::Timestamp;

/// Converts a `time` instant (as `instant-acme` hands it out) to a [`Timestamp`].
pub(crate) fn to_timestamp(t: time::OffsetDateTime) -> Option<Timestamp> {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos()).ok()
}

/// The CA's suggested window `[start, end]` for a certificate valid `[not_before,
/// not_after]`, or `None` when the window is unusable (empty or reversed) so the caller
/// falls back to its own schedule. A window reaching past expiry is cut at `not_after`
/// (renewing after expiry is never the plan) and one starting before issuance starts at
/// `not_before`. A window already in the past (relative to now) is kept: RFC 9773 says
/// to renew at once then, which is how a CA asks for an early renewal (for example
/// before a revocation).
pub fn checked_window(
    start: Timestamp,
    end: Timestamp,
    not_before: Timestamp,
    not_after: Timestamp,
) -> Option<(Timestamp, Timestamp)> {
    let end = end.min(not_after);
    let start = start.max(not_before.min(end));
    (start < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn a_window_inside_validity_is_kept() {
        assert_eq!(
            checked_window(t(60), t(70), t(0), t(90)),
            Some((t(60), t(70)))
        );
    }

    #[test]
    fn a_window_past_expiry_is_cut_at_expiry() {
        assert_eq!(
            checked_window(t(60), t(200), t(0), t(90)),
            Some((t(60), t(90)))
        );
        assert_eq!(checked_window(t(100), t(200), t(0), t(90)), None);
    }

    #[test]
    fn an_empty_or_reversed_window_is_refused() {
        assert_eq!(checked_window(t(70), t(60), t(0), t(90)), None);
        assert_eq!(checked_window(t(70), t(70), t(0), t(90)), None);
    }

    #[test]
    fn a_window_starting_before_issuance_starts_at_issuance() {
        assert_eq!(
            checked_window(t(-50), t(10), t(0), t(90)),
            Some((t(0), t(10)))
        );
        // Entirely before issuance: not about this certificate, unusable.
        assert_eq!(checked_window(t(-50), t(-10), t(0), t(90)), None);
    }

    #[test]
    fn converts_time_to_jiff() {
        let odt = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(to_timestamp(odt), Some(t(0)));
    }
}
