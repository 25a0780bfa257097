//! What an issuer is, decided from its spec alone: where its certificates come from (the
//! five issuance sources) and the problems a person must fix before it can issue. The
//! controller adds what only the cluster knows (its CA Secret, its trust anchors);
//! `sithsctl plan` uses this part as it is.

use std::time::Duration;

use crate::api::{PublicIssuerSpec, SithsIssuerSpec};

use super::identifiers::validate_organization_number;

/// Where a certificate comes from. Resolved once per pass from the issuer's spec; every
/// place that acts differently per source matches on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// SITHS through Inera's portal: a person submits the CSR and imports the certificate.
    SithsManual,
    /// SITHS-profile certificates signed at once by a local CA (test clusters).
    LocalCa,
    /// A publicly trusted CA over ACME (RFC 8555); the operator orders and writes the Secret.
    Acme,
    /// cert-manager issues into the Secret; the operator keeps its `Certificate`.
    CertManager,
    /// A person places a bought publicly trusted certificate in the Secret.
    PublicManual,
}

impl Source {
    /// The source of a SithsIssuer.
    pub fn of_siths(spec: &SithsIssuerSpec) -> Source {
        if spec.backend.local_ca.is_some() {
            Source::LocalCa
        } else {
            Source::SithsManual
        }
    }

    /// The source of a PublicIssuer (the schema admits exactly one; ACME wins if not).
    pub fn of_public(spec: &PublicIssuerSpec) -> Source {
        if spec.acme.is_some() {
            Source::Acme
        } else if spec.cert_manager.is_some() {
            Source::CertManager
        } else {
            Source::PublicManual
        }
    }

    /// The condition reason a certificate settles at when no gate blocks it (see
    /// [`super::conditions::settled_reason`]): `Issued` when the operator obtains the
    /// certificate itself, a waiting reason when a person must act, `Verified` when
    /// cert-manager writes it.
    pub fn settled_reason(self, approval_required: bool) -> &'static str {
        use crate::vocabulary::reason;
        match self {
            Source::LocalCa | Source::Acme => reason::ISSUED,
            Source::SithsManual if approval_required => reason::WAITING_FOR_APPROVAL,
            Source::SithsManual | Source::PublicManual => reason::AWAITING_CERTIFICATE,
            Source::CertManager => reason::VERIFIED,
        }
    }

    /// How the certificate is obtained, in words for people.
    pub fn describe(self) -> &'static str {
        match self {
            Source::SithsManual => "a CSR is submitted through Inera's portal",
            Source::LocalCa => "signed at once by the local CA",
            Source::Acme => "ordered over ACME",
            Source::CertManager => "delegated to cert-manager",
            Source::PublicManual => "placed in the Secret by a person",
        }
    }
}

/// Why an issuer cannot issue: the reason and message of its `Ready=False` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerProblem {
    /// CamelCase reason.
    pub reason: &'static str,
    /// What to fix.
    pub message: String,
}

impl IssuerProblem {
    /// A problem with `reason` and `message`.
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        IssuerProblem {
            reason,
            message: message.into(),
        }
    }
}

/// Reason: `backend.localCA.certificateLifetime` does not parse.
pub const REASON_INVALID_LIFETIME: &str = "InvalidLifetime";

/// Default lifetime of local-CA leaves.
pub const DEFAULT_LOCAL_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses `365d`, `24h` or `10m`.
pub fn parse_lifetime(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        "d" => n.checked_mul(86_400)?,
        "h" => n.checked_mul(3_600)?,
        "m" => n.checked_mul(60)?,
        _ => return None,
    };
    (n > 0).then(|| Duration::from_secs(secs))
}

/// The lifetime of the leaves a local CA signs, or the problem with the configured one.
pub fn local_ca_lifetime(spec: &SithsIssuerSpec) -> Result<Option<Duration>, IssuerProblem> {
    let Some(local) = &spec.backend.local_ca else {
        return Ok(None);
    };
    match &local.certificate_lifetime {
        None => Ok(Some(DEFAULT_LOCAL_LIFETIME)),
        Some(v) => parse_lifetime(v).map(Some).ok_or_else(|| {
            IssuerProblem::new(
                REASON_INVALID_LIFETIME,
                format!("backend.localCA.certificateLifetime {v:?} is not like 365d, 24h or 10m"),
            )
        }),
    }
}

/// The first problem of a SithsIssuer that its spec alone shows: organisation numbers that
/// fail their check, a local-CA lifetime that does not parse. The controller checks these
/// before it reads any Secret; `sithsctl plan` checks exactly these.
pub fn siths_spec_problem(spec: &SithsIssuerSpec) -> Option<IssuerProblem> {
    let numbers = std::iter::once((
        "organization.organizationNumber",
        &spec.organization.organization_number,
    ))
    .chain(spec.connection.agent.iter().map(|a| {
        (
            "connection.agent.organizationNumber",
            &a.organization_number,
        )
    }));
    for (field, number) in numbers {
        if let Err(e) = validate_organization_number(number) {
            return Some(IssuerProblem::new(
                crate::vocabulary::reason::INVALID_ORGANIZATION_NUMBER,
                format!("{field}: {e}"),
            ));
        }
    }
    local_ca_lifetime(spec).err()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn siths(extra: &str) -> SithsIssuerSpec {
        serde_yaml::from_str(&format!(
            "organization: {{name: Region, organizationNumber: 232100-0016}}\nconnection: {{type: Direct}}\nenvironment: Test\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn the_source_follows_the_backend() {
        assert_eq!(
            Source::of_siths(&siths("backend: {manual: {}}")),
            Source::SithsManual
        );
        let local = siths("backend: {localCA: {secretRef: {name: ca, namespace: ops}}}");
        assert_eq!(Source::of_siths(&local), Source::LocalCa);
        let public = |y: &str| Source::of_public(&serde_yaml::from_str(y).unwrap());
        assert_eq!(
            public("acme: {privateKeySecretRef: {name: a, namespace: b}}"),
            Source::Acme
        );
        assert_eq!(
            public("certManager: {issuerRef: {name: le, kind: ClusterIssuer}}"),
            Source::CertManager
        );
        assert_eq!(public("manual: {}"), Source::PublicManual);
    }

    #[test]
    fn a_certificate_settles_where_its_source_leaves_it() {
        assert_eq!(Source::LocalCa.settled_reason(true), "Issued");
        assert_eq!(Source::Acme.settled_reason(false), "Issued");
        assert_eq!(
            Source::SithsManual.settled_reason(true),
            "WaitingForApproval"
        );
        assert_eq!(
            Source::SithsManual.settled_reason(false),
            "AwaitingCertificate"
        );
        assert_eq!(
            Source::PublicManual.settled_reason(true),
            "AwaitingCertificate"
        );
        assert_eq!(Source::CertManager.settled_reason(false), "Verified");
    }

    #[test]
    fn spec_problems_come_in_order_and_name_the_field() {
        assert_eq!(siths_spec_problem(&siths("backend: {manual: {}}")), None);
        let bad_org = siths("backend: {manual: {}}").organization_with("232100-0017");
        let p = siths_spec_problem(&bad_org).unwrap();
        assert_eq!(p.reason, "InvalidOrganizationNumber");
        assert!(
            p.message.starts_with("organization.organizationNumber"),
            "{}",
            p.message
        );
        let agent = siths("backend: {manual: {}}\n").agent_with("556000-0000");
        let p = siths_spec_problem(&agent).unwrap();
        assert!(p.message.starts_with("connection.agent"), "{}", p.message);
        let lifetime = siths(
            "backend: {localCA: {secretRef: {name: ca, namespace: ops}, certificateLifetime: 3w}}",
        );
        assert_eq!(
            siths_spec_problem(&lifetime).unwrap().reason,
            REASON_INVALID_LIFETIME
        );
    }

    #[test]
    fn lifetimes_parse_and_overflow_is_refused() {
        assert_eq!(parse_lifetime("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_lifetime("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_lifetime("10s"), None);
        assert_eq!(parse_lifetime("365d"), Some(DEFAULT_LOCAL_LIFETIME));
        assert_eq!(parse_lifetime("0d"), None);
        assert_eq!(parse_lifetime("d"), None);
        assert_eq!(parse_lifetime(""), None);
        assert_eq!(parse_lifetime("18446744073709551615d"), None);
    }

    trait With {
        fn organization_with(self, number: &str) -> Self;
        fn agent_with(self, number: &str) -> Self;
    }

    impl With for SithsIssuerSpec {
        fn organization_with(mut self, number: &str) -> Self {
            self.organization.organization_number = number.into();
            self
        }
        fn agent_with(mut self, number: &str) -> Self {
            self.connection.agent = Some(crate::api::Organization {
                name: "Agent AB".into(),
                organization_number: number.into(),
                locality: None,
            });
            self
        }
    }
}
