//! Which PKI a certificate comes from, by purpose.
//!
//! Public TLS certificates no longer carry clientAuth, so mutual TLS between systems must
//! stay on SITHS; browsers stop trusting SITHS, so user-facing endpoints must move to a
//! publicly trusted certificate. The two never mix.

use crate::api::{IssuerKind, Purpose};

/// Reason of a refusal to route a certificate.
pub const REASON_WRONG_ROUTE: &str = crate::vocabulary::reason::WRONG_ROUTE;
/// Value written to `status.route` when the certificate is refused.
pub const REFUSED: &str = "Refused";

/// Where a certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// SITHS: serverAuth + clientAuth, trusted where SITHS anchors are installed explicitly.
    Siths,
    /// A publicly trusted CA: serverAuth only, trusted by browsers.
    Public,
}

impl Route {
    /// The value written to `status.route`.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Siths => "SITHS",
            Route::Public => "Public",
        }
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a purpose and an issuer do not go together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// Condition reason, [`REASON_WRONG_ROUTE`].
    pub reason: &'static str,
    /// What is wrong and what to do instead.
    pub message: String,
}

/// The route for a purpose, or a refusal when the issuer kind does not serve it.
pub fn route(purpose: Purpose, issuer: IssuerKind) -> Result<Route, Refusal> {
    match (purpose, issuer) {
        (Purpose::ServerToServer, IssuerKind::SithsIssuer) => Ok(Route::Siths),
        (Purpose::UserFacing, IssuerKind::PublicIssuer) => Ok(Route::Public),
        (Purpose::ServerToServer, IssuerKind::PublicIssuer) => Err(Refusal {
            reason: REASON_WRONG_ROUTE,
            message: "a ServerToServer certificate must come from a SithsIssuer: publicly \
                      trusted TLS certificates no longer carry clientAuth, so mutual TLS \
                      between systems stays on SITHS; set issuerRef.kind to SithsIssuer"
                .to_string(),
        }),
        (Purpose::UserFacing, IssuerKind::SithsIssuer) => Err(Refusal {
            reason: REASON_WRONG_ROUTE,
            message: "a UserFacing certificate must come from a PublicIssuer: browsers stop \
                      trusting SITHS, so user-facing endpoints need a publicly trusted \
                      certificate; set issuerRef.kind to PublicIssuer (and keep any \
                      server-to-server traffic on a separate ServerToServer certificate)"
                .to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_routes() {
        assert_eq!(
            route(Purpose::ServerToServer, IssuerKind::SithsIssuer),
            Ok(Route::Siths)
        );
        assert_eq!(
            route(Purpose::UserFacing, IssuerKind::PublicIssuer),
            Ok(Route::Public)
        );
        assert_eq!(Route::Siths.as_str(), "SITHS");
        assert_eq!(Route::Public.to_string(), "Public");
    }

    #[test]
    fn server_to_server_on_public_is_refused_for_client_auth() {
        let r = route(Purpose::ServerToServer, IssuerKind::PublicIssuer).unwrap_err();
        assert_eq!(r.reason, "WrongRoute");
        assert!(r.message.contains("clientAuth"), "{}", r.message);
        assert!(r.message.contains("SithsIssuer"), "{}", r.message);
    }

    #[test]
    fn user_facing_on_siths_is_refused_for_browsers() {
        let r = route(Purpose::UserFacing, IssuerKind::SithsIssuer).unwrap_err();
        assert_eq!(r.reason, "WrongRoute");
        assert!(r.message.contains("browsers"), "{}", r.message);
        assert_eq!(r.to_string(), r.message);
    }
}
