//! The class of a certificate by the PKI it verifies to.

use serde::Serialize;

use super::Environment;

/// Class of a certificate, as counted in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CertClass {
    /// Chains to a SITHS production anchor.
    SithsProduction,
    /// Chains to a SITHS test anchor.
    SithsTest,
    /// Chains to a root in Mozilla's store.
    Public,
    /// Neither (self-signed, a private CA, or a forged SITHS name).
    Other,
}

impl CertClass {
    /// Words for tables.
    pub fn label(self) -> &'static str {
        match self {
            CertClass::SithsProduction => "SITHS production",
            CertClass::SithsTest => "SITHS test",
            CertClass::Public => "public",
            CertClass::Other => "other",
        }
    }

    /// The SITHS environment, for SITHS classes.
    pub fn siths_environment(self) -> Option<Environment> {
        match self {
            CertClass::SithsProduction => Some(Environment::Production),
            CertClass::SithsTest => Some(Environment::Test),
            _ => None,
        }
    }
}
