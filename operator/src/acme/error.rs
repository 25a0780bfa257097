//! ACME failures as condition reasons with a message that says what to do.
//!
//! Pure: the mapping from an `instant-acme` error (an RFC 8555 problem document, a
//! transport error, a time-out) to an [`AcmeError`] depends only on the error and on
//! where in the flow it happened, so it is unit-tested without a server.

use std::time::Duration;

/// Condition reason: the CA refused the account (wrong External Account Binding, an
/// account the CA no longer knows).
pub const ACME_UNAUTHORIZED: &str = "AcmeUnauthorized";
/// Condition reason: the CA rate-limited the request.
pub const ACME_RATE_LIMITED: &str = "AcmeRateLimited";
/// Condition reason: an HTTP-01 challenge was not validated.
pub const ACME_CHALLENGE_FAILED: &str = "AcmeChallengeFailed";
/// Condition reason: the CA could not be reached or answered with a server error.
pub const ACME_SERVER_UNAVAILABLE: &str = "AcmeServerUnavailable";
/// Condition reason: the issuer's configuration cannot work (missing Secret, bad key,
/// unsupported name).
pub const ACME_CONFIG_INVALID: &str = "AcmeConfigInvalid";
/// Condition reason: the RFC 2136 update of a DNS-01 challenge record was refused or got
/// no answer (the message names the TSIG key and the server's TSIG error).
pub const ACME_DNS_UPDATE_FAILED: &str = "AcmeDnsUpdateFailed";
/// Condition reason: the CA refused the order or the CSR.
pub const ACME_ORDER_FAILED: &str = "AcmeOrderFailed";

/// An ACME failure: a condition reason, a message for people, and the CA's `Retry-After`
/// when it sent one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AcmeError {
    /// Condition reason: one of the `ACME_*` constants of this module.
    pub reason: &'static str,
    /// What happened and what to do about it.
    pub message: String,
    /// How long the CA asked us to wait, if it said.
    pub retry_after: Option<Duration>,
}

impl AcmeError {
    /// An error with no `Retry-After`.
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ACME_CONFIG_INVALID, message)
    }
}

/// Where in the flow an error happened; the same problem type means different things
/// (`unauthorized` at registration is a bad EAB; on a challenge it is a failed
/// validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Fetching the directory, registering or loading the account.
    Account,
    /// Creating the order.
    Order,
    /// Answering and validating challenges.
    Challenge,
    /// Finalizing with the CSR and downloading the certificate.
    Finalize,
    /// Asking for renewal information.
    RenewalInfo,
}

/// What the message needs to point people at the right place.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorContext {
    /// The ACME directory URL.
    pub directory: String,
    /// `namespace/name` of the Secret holding the EAB HMAC key, when EAB is configured.
    pub eab_secret: Option<String>,
    /// `namespace/name` of the account key Secret.
    pub account_secret: String,
    /// The `Retry-After` of the CA's last error response, if any.
    pub retry_after: Option<Duration>,
}

const PREFIX: &str = "urn:ietf:params:acme:error:";

/// Maps an `instant-acme` error at `stage` to an [`AcmeError`].
pub(crate) fn map_error(err: &instant_acme::Error, stage: Stage, cx: &ErrorContext) -> AcmeError {
    use instant_acme::Error as E;
    match err {
        E::Api(problem) => map_problem(
            problem.r#type.as_deref().unwrap_or_default(),
            &problem_text(problem),
            problem.status,
            stage,
            cx,
        ),
        E::Timeout(_) => match stage {
            Stage::Challenge => AcmeError::new(
                ACME_CHALLENGE_FAILED,
                format!(
                    "the CA at {} did not finish validating the HTTP-01 challenges in time; check that http://<name>/.well-known/acme-challenge/ reaches the operator (Ingress and Service in the operator namespace)",
                    cx.directory
                ),
            ),
            _ => unavailable(cx, "timed out waiting for the CA"),
        },
        E::Unsupported(what) => AcmeError::config(format!(
            "the CA at {} does not support {what}",
            cx.directory
        )),
        E::Crypto | E::KeyRejected => AcmeError::config(format!(
            "the ACME account key in Secret {} cannot be used ({err}); delete the Secret to register a new account",
            cx.account_secret
        )),
        E::InvalidUri(_) => AcmeError::config(format!(
            "the ACME directory URL {} (or a URL it lists) is not valid: {err}",
            cx.directory
        )),
        // Transport failures, unparseable answers and anything else: the server is not
        // answering as an ACME server should, which is worth retrying later.
        _ => unavailable(cx, &err.to_string()),
    }
}

fn unavailable(cx: &ErrorContext, what: &str) -> AcmeError {
    AcmeError {
        reason: ACME_SERVER_UNAVAILABLE,
        message: format!(
            "the ACME server {} is unavailable: {what}; retrying with backoff",
            cx.directory
        ),
        retry_after: cx.retry_after,
    }
}

fn problem_text(p: &instant_acme::Problem) -> String {
    let mut text = p.detail.clone().unwrap_or_else(|| {
        p.r#type
            .clone()
            .unwrap_or_else(|| "no details given".to_string())
    });
    for sub in &p.subproblems {
        if let Some(d) = &sub.detail {
            text.push_str("; ");
            text.push_str(d);
        }
    }
    text
}

/// Maps an RFC 8555 problem (type without or with the `urn:ietf:params:acme:error:`
/// prefix, its detail text and HTTP status) at `stage`.
pub(crate) fn map_problem(
    kind: &str,
    detail: &str,
    status: Option<u16>,
    stage: Stage,
    cx: &ErrorContext,
) -> AcmeError {
    let kind = kind.strip_prefix(PREFIX).unwrap_or(kind);
    let ca = &cx.directory;
    let eab_hint = match &cx.eab_secret {
        Some(s) => format!("check externalAccountBinding keyId and the HMAC key in Secret {s}"),
        None => "the CA may require externalAccountBinding (key id and HMAC key from its portal)"
            .to_string(),
    };
    match (kind, stage) {
        ("rateLimited", _) => AcmeError {
            reason: ACME_RATE_LIMITED,
            message: format!(
                "the CA at {ca} rate-limited the request: {detail}; retrying {}",
                match cx.retry_after {
                    Some(d) => format!("after {} s as the CA asked", d.as_secs()),
                    None => "with backoff".to_string(),
                }
            ),
            retry_after: cx.retry_after,
        },
        ("externalAccountRequired", _) => AcmeError::new(
            ACME_UNAUTHORIZED,
            format!(
                "the CA at {ca} requires External Account Binding: {detail}; set acme.externalAccountBinding (key id and HMAC key from the CA's portal)"
            ),
        ),
        (
            "unauthorized" | "malformed" | "badPublicKey" | "badSignatureAlgorithm",
            Stage::Account,
        ) => AcmeError::new(
            ACME_UNAUTHORIZED,
            format!("the CA at {ca} refused the account: {detail}; {eab_hint}"),
        ),
        ("accountDoesNotExist", _) => AcmeError::new(
            ACME_UNAUTHORIZED,
            format!(
                "the CA at {ca} no longer knows the account in Secret {}: {detail}; delete that Secret so a new account is registered",
                cx.account_secret
            ),
        ),
        ("unauthorized", Stage::Order | Stage::Finalize) => AcmeError::new(
            ACME_UNAUTHORIZED,
            format!("the CA at {ca} refused the order: {detail}; {eab_hint}"),
        ),
        (
            "unauthorized" | "connection" | "dns" | "incorrectResponse" | "tls" | "caa",
            Stage::Challenge,
        ) => AcmeError::new(
            ACME_CHALLENGE_FAILED,
            format!(
                "HTTP-01 validation failed: {detail}; check that http://<name>/.well-known/acme-challenge/ reaches the operator (DNS of the name, the Ingress and Service the operator creates in its namespace)"
            ),
        ),
        ("caa" | "rejectedIdentifier" | "unsupportedIdentifier", _) => AcmeError::new(
            ACME_ORDER_FAILED,
            format!("the CA at {ca} will not issue for these names: {detail}"),
        ),
        ("badCSR", _) => AcmeError::new(
            ACME_ORDER_FAILED,
            format!("the CA at {ca} refused the certificate request: {detail}"),
        ),
        ("badNonce" | "serverInternal", _) => unavailable(cx, detail),
        _ if status.is_some_and(|s| s >= 500) => unavailable(cx, detail),
        (_, Stage::Challenge) => AcmeError::new(
            ACME_CHALLENGE_FAILED,
            format!("HTTP-01 validation failed: {detail}"),
        ),
        (_, Stage::Account) => AcmeError::new(
            ACME_UNAUTHORIZED,
            format!("the CA at {ca} refused the account: {detail}; {eab_hint}"),
        ),
        (_, Stage::RenewalInfo) => unavailable(cx, detail),
        _ => AcmeError::new(
            ACME_ORDER_FAILED,
            format!("the CA at {ca} refused the order: {detail}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> ErrorContext {
        ErrorContext {
            directory: "https://acme.example/dir".into(),
            eab_secret: Some("ops/eab".into()),
            account_secret: "ops/acme-account".into(),
            retry_after: None,
        }
    }

    #[test]
    fn bad_eab_names_the_secret() {
        for kind in [
            "unauthorized",
            "malformed",
            "urn:ietf:params:acme:error:unauthorized",
        ] {
            let e = map_problem(kind, "HMAC mismatch", Some(401), Stage::Account, &cx());
            assert_eq!(e.reason, ACME_UNAUTHORIZED, "{kind}");
            assert!(e.message.contains("Secret ops/eab"), "{}", e.message);
            assert!(e.message.contains("keyId"), "{}", e.message);
            assert!(e.message.contains("HMAC mismatch"), "{}", e.message);
        }
        let e = map_problem(
            "externalAccountRequired",
            "no EAB",
            Some(401),
            Stage::Account,
            &cx(),
        );
        assert_eq!(e.reason, ACME_UNAUTHORIZED);
        assert!(e.message.contains("externalAccountBinding"));
    }

    #[test]
    fn rate_limits_keep_retry_after() {
        let mut c = cx();
        c.retry_after = Some(Duration::from_secs(3600));
        let e = map_problem("rateLimited", "too many", Some(429), Stage::Order, &c);
        assert_eq!(e.reason, ACME_RATE_LIMITED);
        assert_eq!(e.retry_after, Some(Duration::from_secs(3600)));
        assert!(e.message.contains("3600 s"), "{}", e.message);
        let e = map_problem("rateLimited", "too many", Some(429), Stage::Order, &cx());
        assert_eq!(e.retry_after, None);
    }

    #[test]
    fn unauthorized_means_different_things_by_stage() {
        let e = map_problem(
            "unauthorized",
            "wrong key auth",
            Some(403),
            Stage::Challenge,
            &cx(),
        );
        assert_eq!(e.reason, ACME_CHALLENGE_FAILED);
        assert!(e.message.contains("acme-challenge"));
        let e = map_problem("connection", "refused", Some(400), Stage::Challenge, &cx());
        assert_eq!(e.reason, ACME_CHALLENGE_FAILED);
        let e = map_problem("unauthorized", "no", Some(403), Stage::Order, &cx());
        assert_eq!(e.reason, ACME_UNAUTHORIZED);
    }

    #[test]
    fn server_side_trouble_is_unavailable() {
        for (kind, status) in [
            ("serverInternal", 500),
            ("badNonce", 400),
            ("whatever", 503),
        ] {
            let e = map_problem(kind, "x", Some(status), Stage::Order, &cx());
            assert_eq!(e.reason, ACME_SERVER_UNAVAILABLE, "{kind}");
        }
        let e = map_error(&instant_acme::Error::Str("no nonce"), Stage::Account, &cx());
        assert_eq!(e.reason, ACME_SERVER_UNAVAILABLE);
    }

    #[test]
    fn refusals_of_names_and_csrs_are_order_failures() {
        for kind in [
            "rejectedIdentifier",
            "caa",
            "badCSR",
            "unsupportedIdentifier",
        ] {
            let e = map_problem(kind, "no", Some(400), Stage::Order, &cx());
            assert_eq!(e.reason, ACME_ORDER_FAILED, "{kind}");
        }
    }

    #[test]
    fn timeouts_depend_on_stage() {
        let e = map_error(&instant_acme::Error::Timeout(None), Stage::Challenge, &cx());
        assert_eq!(e.reason, ACME_CHALLENGE_FAILED);
        let e = map_error(&instant_acme::Error::Timeout(None), Stage::Finalize, &cx());
        assert_eq!(e.reason, ACME_SERVER_UNAVAILABLE);
    }

    #[test]
    fn missing_account_says_to_delete_the_secret() {
        let e = map_problem(
            "accountDoesNotExist",
            "gone",
            Some(400),
            Stage::Order,
            &cx(),
        );
        assert_eq!(e.reason, ACME_UNAUTHORIZED);
        assert!(e.message.contains("ops/acme-account"));
    }
}
