//! The gate chain of a ServiceCertificate: every condition that must hold before a key,
//! CSR, order or Secret is made, in the one order the controller and `sithsctl plan` share.
//!
//! 1. route: purpose and issuer kind go together ([`super::routing`]);
//! 2. issuer: it exists, and can issue ([`IssuerState`]);
//! 3. namespace: the issuer's `allowedNamespaces` matches ([`super::namespaces`]);
//! 4. identifiers the schema cannot fully check (HSA-id, DNS names);
//! 5. domain validation: every name is covered for the issuer's organisation, unless a
//!    PublicIssuer turned the gate off;
//! 6. one Secret, one owner: the oldest certificate naming a Secret owns it; a UserFacing
//!    certificate never takes a Secret a ServerToServer one writes.
//!
//! The controller gathers the inputs from its caches and the API, `plan` from manifests;
//! both call [`evaluate`] and write or print what it returns.

use std::{collections::BTreeMap, time::Duration};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{
    cost::approval_required,
    coverage::uncovered_names,
    domain_validation::grants_for,
    identifiers::{validate_dns_name, validate_hsa_id},
    issuers::{IssuerProblem, Source},
    namespaces,
    routing::{self, REFUSED, Route},
};
use crate::{
    api::{
        DomainValidation, IssuerKind, PublicIssuerSpec, Purpose, ServiceCertificate,
        ServiceCertificateSpec, SithsIssuerSpec,
    },
    vocabulary::reason,
};

/// How long a certificate blocked at a gate waits before it is looked at again, besides the
/// watches that bring every relevant change at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Only a change of the certificate or what it depends on helps.
    OnChange,
    /// Look again after this long (the cause may pass without an event).
    After(Duration),
}

/// A missing issuer is looked for again after this long.
pub const ISSUER_MISSING_RETRY: Duration = Duration::from_secs(300);
/// An issuer that cannot issue is looked at again after this long.
pub const ISSUER_NOT_READY_RETRY: Duration = Duration::from_secs(120);
/// Domain validations expire by the day: a blocked certificate looks again this often.
pub const DOMAIN_RETRY: Duration = Duration::from_secs(6 * 3600);

/// The issuer a certificate names, as gathered.
#[derive(Debug, Clone)]
pub enum IssuerState<'a> {
    /// No issuer of that kind and name.
    Missing,
    /// It exists but cannot issue.
    NotReady(IssuerProblem),
    /// It can issue.
    Ready(IssuerFacts<'a>),
}

/// What the gates need to know of an issuer that can issue.
#[derive(Debug, Clone)]
pub struct IssuerFacts<'a> {
    /// Where its certificates come from.
    pub source: Source,
    /// `spec.allowedNamespaces` (absent: every namespace).
    pub allowed_namespaces: Option<&'a LabelSelector>,
    /// The organisation whose domain validations count; `None` when the gate is off.
    pub domain_organization: Option<&'a str>,
    /// Whether its orders wait for a person's approval.
    pub approval_required: bool,
}

impl<'a> IssuerFacts<'a> {
    /// A SithsIssuer that can issue: its organisation's validations count, and its
    /// environment and `approval` decide whether orders wait for a person.
    pub fn siths(spec: &'a SithsIssuerSpec) -> Self {
        IssuerFacts {
            source: Source::of_siths(spec),
            allowed_namespaces: spec.allowed_namespaces.as_ref(),
            domain_organization: Some(&spec.organization.organization_number),
            approval_required: approval_required(spec.environment, spec.approval),
        }
    }

    /// A PublicIssuer: its `organizationNumber`'s validations count unless it turned the
    /// gate off; nothing waits for approval.
    pub fn public(spec: &'a PublicIssuerSpec) -> Self {
        IssuerFacts {
            source: Source::of_public(spec),
            allowed_namespaces: spec.allowed_namespaces.as_ref(),
            domain_organization: spec
                .domain_validation_required()
                .then(|| spec.organization_number.as_deref().unwrap_or_default()),
            approval_required: false,
        }
    }
}

/// Everything the gate chain looks at, gathered by the caller.
#[derive(Debug)]
pub struct GateInput<'a> {
    /// The certificate.
    pub cert: &'a ServiceCertificate,
    /// Its issuer.
    pub issuer: IssuerState<'a>,
    /// Labels of the certificate's namespace; only read when the issuer has a selector.
    pub namespace_labels: &'a BTreeMap<String, String>,
    /// Every DomainValidation.
    pub validations: &'a [&'a DomainValidation],
    /// Every ServiceCertificate in the namespace naming the same Secret (itself included
    /// or not).
    pub same_secret: &'a [&'a ServiceCertificate],
    /// The time validations are judged at: expiry by Swedish calendar day (see
    /// [`super::domain_validation::today`]), the live DNS check by its grace period.
    pub now: Timestamp,
}

/// The `DomainValidated` condition a pass writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainCondition {
    /// Whether every name is covered (or the gate is off).
    pub covered: bool,
    /// [`reason::COVERED`], [`reason::NOT_COVERED`] or [`reason::GATE_DISABLED`].
    pub reason: &'static str,
    /// What it means.
    pub message: String,
}

/// A gate that holds the certificate back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The condition reason (`Ready=False`, `Issuing=False`).
    pub reason: &'static str,
    /// What is wrong and what to fix.
    pub message: String,
    /// When to look again.
    pub retry: Retry,
    /// Names no validation covers (the domain gate only).
    pub uncovered: Vec<String>,
}

/// What the gate chain decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateOutcome {
    /// `status.route`: `SITHS`, `Public` or `Refused`.
    pub route: &'static str,
    /// The `DomainValidated` condition, once the chain reached that gate.
    pub domain: Option<DomainCondition>,
    /// `Err` when a gate blocks, `Ok` with the issuer when every gate passed.
    pub verdict: Result<Passed, Blocked>,
}

/// Every gate passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    /// The route.
    pub route: Route,
    /// Where the certificate comes from.
    pub source: Source,
    /// Whether its orders wait for approval.
    pub approval_required: bool,
}

fn blocked(reason: &'static str, message: String, retry: Retry) -> Blocked {
    Blocked {
        reason,
        message,
        retry,
        uncovered: Vec::new(),
    }
}

/// Runs the gates in order; the first that holds the certificate back decides.
pub fn evaluate(input: &GateInput<'_>) -> GateOutcome {
    let spec = &input.cert.spec;
    let mut outcome = GateOutcome {
        route: REFUSED,
        domain: None,
        verdict: Err(blocked("", String::new(), Retry::OnChange)),
    };
    // 1. Route.
    let route = match routing::route(spec.purpose, spec.issuer_ref.kind) {
        Ok(r) => r,
        Err(refusal) => {
            outcome.verdict = Err(blocked(refusal.reason, refusal.message, Retry::OnChange));
            return outcome;
        }
    };
    outcome.route = route.as_str();
    // 2. Issuer.
    let facts = match &input.issuer {
        IssuerState::Missing => {
            outcome.verdict = Err(blocked(
                reason::ISSUER_NOT_FOUND,
                issuer_missing_message(spec.issuer_ref.kind, &spec.issuer_ref.name),
                Retry::After(ISSUER_MISSING_RETRY),
            ));
            return outcome;
        }
        IssuerState::NotReady(problem) => {
            outcome.verdict = Err(blocked(
                reason::ISSUER_NOT_READY,
                format!(
                    "{:?} {:?} cannot issue: {}",
                    spec.issuer_ref.kind, spec.issuer_ref.name, problem.message
                ),
                Retry::After(ISSUER_NOT_READY_RETRY),
            ));
            return outcome;
        }
        IssuerState::Ready(facts) => facts,
    };
    // 3. Namespace.
    let ns = input.cert.metadata.namespace.as_deref().unwrap_or_default();
    if !namespaces::allows(facts.allowed_namespaces, input.namespace_labels) {
        outcome.verdict = Err(blocked(
            reason::NAMESPACE_NOT_ALLOWED,
            namespaces::refusal(spec.issuer_ref.kind, &spec.issuer_ref.name, ns),
            Retry::OnChange,
        ));
        return outcome;
    }
    // 4. Identifiers.
    if let Some((reason, message)) = identifier_problem(spec) {
        outcome.verdict = Err(blocked(reason, message, Retry::OnChange));
        return outcome;
    }
    // 5. Domain validation.
    let domain = match facts.domain_organization {
        None => DomainCondition {
            covered: true,
            reason: reason::GATE_DISABLED,
            message: format!(
                "PublicIssuer {} has domainValidation: Disabled; only the CA's own validation applies",
                spec.issuer_ref.name
            ),
        },
        Some(org) => {
            let grants = grants_for(input.validations.iter().copied(), org, input.now);
            let uncovered = uncovered_names(&spec.dns_names, &grants);
            if !uncovered.is_empty() {
                let mut message = domain_gap_message(Some(org), &uncovered);
                message.push_str(&not_validated_note(
                    input.validations,
                    org,
                    &uncovered,
                    input.now,
                ));
                outcome.domain = Some(DomainCondition {
                    covered: false,
                    reason: reason::NOT_COVERED,
                    message: message.clone(),
                });
                outcome.verdict = Err(Blocked {
                    reason: reason::DOMAIN_NOT_VALIDATED,
                    message,
                    retry: Retry::After(DOMAIN_RETRY),
                    uncovered,
                });
                return outcome;
            }
            DomainCondition {
                covered: true,
                reason: reason::COVERED,
                message: format!(
                    "every name is covered by a Validated DomainValidation for organisation {org}"
                ),
            }
        }
    };
    outcome.domain = Some(domain);
    // 6. One Secret, one owner.
    if let Some(owner) = secret_owner(input.same_secret.iter().copied())
        && owner.metadata.name != input.cert.metadata.name
    {
        let owner_name = owner.metadata.name.as_deref().unwrap_or_default();
        let refusal = if spec.purpose == Purpose::UserFacing
            && owner.spec.purpose == Purpose::ServerToServer
        {
            blocked(
                reason::SHARED_WITH_BACKEND,
                shared_with_backend_message(
                    &spec.secret_name,
                    &format!("ServerToServer ServiceCertificate {owner_name:?}"),
                ),
                Retry::OnChange,
            )
        } else {
            blocked(
                reason::SECRET_CONFLICT,
                format!(
                    "Secret {:?} is already managed by ServiceCertificate {owner_name:?}, which is older; choose another secretName",
                    spec.secret_name
                ),
                Retry::OnChange,
            )
        };
        outcome.verdict = Err(refusal);
        return outcome;
    }
    outcome.verdict = Ok(Passed {
        route,
        source: facts.source,
        approval_required: facts.approval_required,
    });
    outcome
}

/// The message of [`reason::ISSUER_NOT_FOUND`].
pub fn issuer_missing_message(kind: IssuerKind, name: &str) -> String {
    format!("{kind:?} {name:?} does not exist; create it or correct issuerRef.name")
}

/// The message of [`reason::DOMAIN_NOT_VALIDATED`] for organisation `org` (`None`: the
/// issuer is unknown, so validations for any organisation were tried).
pub fn domain_gap_message(org: Option<&str>, uncovered: &[String]) -> String {
    match org {
        Some(org) => format!(
            "no Validated DomainValidation for organisation {org} covers {}; register the domain validation (or correct dnsNames). Nothing is ordered until then.",
            uncovered.join(", ")
        ),
        None => format!(
            "no Validated DomainValidation (for any organisation: the issuer is not among the objects) covers {}; register the domain validation (or correct dnsNames).",
            uncovered.join(", ")
        ),
    }
}

/// What stops the validations of `org` that would cover some of `uncovered` (for example
/// a live DNS check that did not find the record), so that the controller's condition and
/// `sithsctl plan` say why, from the validation's status; empty when none would.
pub fn not_validated_note(
    validations: &[&DomainValidation],
    org: &str,
    uncovered: &[String],
    now: Timestamp,
) -> String {
    let mut notes = Vec::new();
    for dv in validations.iter().filter(|dv| dv.spec.validated_for == org) {
        let grant = super::coverage::DomainGrant {
            domain: dv.spec.domain.clone(),
            include_subdomains: dv.spec.include_subdomains,
        };
        if uncovered_names(uncovered, std::slice::from_ref(&grant)).len() == uncovered.len() {
            continue;
        }
        let v = super::domain_validation::verdict(dv, now);
        if !v.validated {
            notes.push(format!(
                " DomainValidation {} is {} ({}): {}.",
                dv.metadata.name.as_deref().unwrap_or_default(),
                v.status,
                v.reason,
                v.message
            ));
        }
    }
    notes.concat()
}

/// The message of [`reason::SHARED_WITH_BACKEND`]: `user` is who else uses the Secret.
pub fn shared_with_backend_message(secret: &str, user: &str) -> String {
    format!(
        "Secret {secret} holds a SITHS certificate that back-end traffic still uses ({user}); it is not overwritten. Split the two: move the back-end to its own Secret (a ServerToServer ServiceCertificate with another secretName, and the back-end's volume pointing at it), then this certificate takes over {secret} for browsers"
    )
}

/// The first identifier the schema cannot fully check that is wrong: condition reason and
/// message.
pub fn identifier_problem(spec: &ServiceCertificateSpec) -> Option<(&'static str, String)> {
    if let Some(id) = &spec.hsa_id
        && let Err(e) = validate_hsa_id(id)
    {
        return Some((reason::INVALID_HSA_ID, format!("hsaId: {e}")));
    }
    spec.dns_names.iter().find_map(|n| {
        validate_dns_name(n)
            .err()
            .map(|e| (reason::INVALID_DNS_NAME, format!("dnsNames: {e}")))
    })
}

/// The certificate that owns a Secret among those naming it: the oldest (by creation time,
/// then name; objects without a creation time, as in manifests, go by name).
pub fn secret_owner<'c>(
    candidates: impl IntoIterator<Item = &'c ServiceCertificate>,
) -> Option<&'c ServiceCertificate> {
    candidates.into_iter().min_by(|a, b| {
        let key = |c: &'c ServiceCertificate| {
            (
                c.metadata.creation_timestamp.as_ref().map(|t| t.0),
                c.metadata.name.as_deref(),
            )
        };
        key(a).cmp(&key(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServiceCertificateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

    const ORG: &str = "232100-0016";

    fn cert(name: &str, yaml: &str) -> ServiceCertificate {
        let spec: ServiceCertificateSpec = serde_yaml::from_str(yaml).unwrap();
        let mut c = ServiceCertificate::new(name, spec);
        c.metadata.namespace = Some("team".into());
        c
    }

    fn s2s(name: &str, secret: &str) -> ServiceCertificate {
        cert(
            name,
            &format!(
                "{{purpose: ServerToServer, dnsNames: [api.region.se], hsaId: SE2321000016-1234, secretName: {secret}, issuerRef: {{kind: SithsIssuer, name: region}}}}"
            ),
        )
    }

    fn dv(domain: &str, valid_until: &str) -> DomainValidation {
        serde_yaml::from_str(&format!(
            "apiVersion: siths-operator.io/v1alpha1\nkind: DomainValidation\nmetadata: {{name: v}}\nspec: {{domain: {domain}, includeSubdomains: true, owner: {{name: Region, organizationNumber: {ORG}}}, validatedFor: {ORG}, evidence: {{formReference: DV-1, submittedBy: A, approvedOn: '2026-01-10'}}, validUntil: '{valid_until}'}}"
        ))
        .unwrap()
    }

    fn ready(source: Source) -> IssuerState<'static> {
        IssuerState::Ready(IssuerFacts {
            source,
            allowed_namespaces: None,
            domain_organization: Some(ORG),
            approval_required: false,
        })
    }

    fn now() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn run<'a>(
        c: &'a ServiceCertificate,
        issuer: IssuerState<'a>,
        validations: &'a [&'a DomainValidation],
        same_secret: &'a [&'a ServiceCertificate],
        labels: &'a BTreeMap<String, String>,
    ) -> GateOutcome {
        evaluate(&GateInput {
            cert: c,
            issuer,
            namespace_labels: labels,
            validations,
            same_secret,
            now: now(),
        })
    }

    fn reason_of(o: &GateOutcome) -> &'static str {
        match &o.verdict {
            Ok(_) => "Passed",
            Err(b) => b.reason,
        }
    }

    #[test]
    fn every_gate_blocks_in_its_turn() {
        let labels = BTreeMap::new();
        let v = dv("region.se", "2099-12-31");
        let vs = [&v];
        let c = s2s("api", "api-tls");
        // All gates pass.
        let o = run(&c, ready(Source::LocalCa), &vs, &[&c], &labels);
        assert_eq!(reason_of(&o), "Passed");
        assert_eq!(o.route, "SITHS");
        assert_eq!(o.domain.as_ref().unwrap().reason, "Covered");
        // 1. Route.
        let wrong = cert(
            "w",
            "{purpose: UserFacing, dnsNames: [www.region.se], secretName: w, issuerRef: {kind: SithsIssuer, name: region}}",
        );
        let o = run(&wrong, ready(Source::LocalCa), &vs, &[], &labels);
        assert_eq!((reason_of(&o), o.route), ("WrongRoute", "Refused"));
        // 2. Issuer missing, not ready.
        let o = run(&c, IssuerState::Missing, &vs, &[], &labels);
        assert_eq!(reason_of(&o), "IssuerNotFound");
        assert_eq!(
            o.verdict.unwrap_err().retry,
            Retry::After(ISSUER_MISSING_RETRY)
        );
        let o = run(
            &c,
            IssuerState::NotReady(IssuerProblem::new("InvalidLifetime", "bad lifetime")),
            &vs,
            &[],
            &labels,
        );
        let b = o.verdict.unwrap_err();
        assert_eq!(b.reason, "IssuerNotReady");
        assert!(b.message.contains("bad lifetime"), "{}", b.message);
        // 3. Namespace.
        let selector = LabelSelector {
            match_labels: Some([("siths".to_string(), "yes".to_string())].into()),
            ..Default::default()
        };
        let limited = IssuerState::Ready(IssuerFacts {
            source: Source::LocalCa,
            allowed_namespaces: Some(&selector),
            domain_organization: Some(ORG),
            approval_required: false,
        });
        let o = run(&c, limited.clone(), &vs, &[], &labels);
        assert_eq!(reason_of(&o), "NamespaceNotAllowed");
        let allowed: BTreeMap<String, String> = [("siths".to_string(), "yes".to_string())].into();
        assert_eq!(reason_of(&run(&c, limited, &vs, &[], &allowed)), "Passed");
        // 4. Identifiers.
        let mut bad_hsa = s2s("b", "b");
        bad_hsa.spec.hsa_id = Some("journal-api".into());
        assert_eq!(
            reason_of(&run(&bad_hsa, ready(Source::LocalCa), &vs, &[], &labels)),
            "InvalidHsaId"
        );
        // 5. Domain validation: none, expired, another domain.
        let o = run(&c, ready(Source::LocalCa), &[], &[], &labels);
        assert_eq!(reason_of(&o), "DomainNotValidated");
        assert_eq!(o.domain.as_ref().unwrap().reason, "NotCovered");
        let b = o.verdict.unwrap_err();
        assert_eq!(b.uncovered, ["api.region.se"]);
        assert_eq!(b.message, domain_gap_message(Some(ORG), &b.uncovered));
        let expired = dv("region.se", "2026-11-30");
        assert_eq!(
            reason_of(&run(&c, ready(Source::LocalCa), &[&expired], &[], &labels)),
            "DomainNotValidated"
        );
        let other = dv("other.se", "2099-12-31");
        assert_eq!(
            reason_of(&run(&c, ready(Source::LocalCa), &[&other], &[], &labels)),
            "DomainNotValidated"
        );
        // A validation whose live DNS check found no record: blocked, and the message says
        // so from the validation's status (the controller and plan print the same).
        let mut dns = dv("region.se", "2099-12-31");
        dns.spec.evidence.dns_txt_record = Some(crate::api::DnsTxtRecord {
            name: "_v.region.se".into(),
            value: "t".into(),
            required: true,
        });
        dns.status = Some(crate::api::DomainValidationStatus {
            dns: Some(crate::policy::dns_check::record(
                None,
                dns.spec.evidence.dns_txt_record.as_ref().unwrap(),
                &crate::policy::dns_check::Lookup::Missing,
                now(),
                Default::default(),
                "uid",
            )),
            ..Default::default()
        });
        let o = run(&c, ready(Source::LocalCa), &[&dns], &[], &labels);
        assert_eq!(reason_of(&o), "DomainNotValidated");
        let b = o.verdict.unwrap_err();
        assert!(
            b.message
                .contains("DomainValidation v is False (DnsRecordMissing)"),
            "{}",
            b.message
        );
        // Found: it covers the name.
        dns.status = Some(crate::api::DomainValidationStatus {
            dns: Some(crate::policy::dns_check::record(
                None,
                dns.spec.evidence.dns_txt_record.as_ref().unwrap(),
                &crate::policy::dns_check::Lookup::Found,
                now(),
                Default::default(),
                "uid",
            )),
            ..Default::default()
        });
        assert_ne!(
            reason_of(&run(&c, ready(Source::LocalCa), &[&dns], &[], &labels)),
            "DomainNotValidated"
        );
        // The gate turned off.
        let off = IssuerState::Ready(IssuerFacts {
            source: Source::Acme,
            allowed_namespaces: None,
            domain_organization: None,
            approval_required: false,
        });
        let web = cert(
            "web",
            "{purpose: UserFacing, dnsNames: [www.elsewhere.se], secretName: web, issuerRef: {kind: PublicIssuer, name: telia}}",
        );
        let o = run(&web, off, &[], &[], &labels);
        assert_eq!(reason_of(&o), "Passed");
        assert_eq!(o.domain.unwrap().reason, "GateDisabled");
    }

    #[test]
    fn the_oldest_certificate_owns_a_secret() {
        let labels = BTreeMap::new();
        let v = dv("region.se", "2099-12-31");
        let vs = [&v];
        let first = s2s("a-first", "shared");
        let second = s2s("b-second", "shared");
        // Without creation times (manifests), by name.
        let same = [&second, &first];
        assert_eq!(
            reason_of(&run(&second, ready(Source::LocalCa), &vs, &same, &labels)),
            "SecretConflict"
        );
        assert_eq!(
            reason_of(&run(&first, ready(Source::LocalCa), &vs, &same, &labels)),
            "Passed"
        );
        // Creation time wins over the name.
        let mut older = s2s("z-older", "shared");
        older.metadata.creation_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
        let mut newer = s2s("a-newer", "shared");
        newer.metadata.creation_timestamp = Some(Time("2026-02-01T00:00:00Z".parse().unwrap()));
        let same = [&newer, &older];
        let o = run(&newer, ready(Source::LocalCa), &vs, &same, &labels);
        let b = o.verdict.unwrap_err();
        assert_eq!(b.reason, "SecretConflict");
        assert!(b.message.contains("z-older"), "{}", b.message);
        // A user-facing certificate never takes a back-end's Secret.
        let mut web = cert(
            "web",
            "{purpose: UserFacing, dnsNames: [www.region.se], secretName: shared, issuerRef: {kind: PublicIssuer, name: telia}}",
        );
        web.metadata.creation_timestamp = Some(Time("2026-03-01T00:00:00Z".parse().unwrap()));
        let same = [&web, &older];
        assert_eq!(
            reason_of(&run(&web, ready(Source::Acme), &vs, &same, &labels)),
            "SharedWithBackend"
        );
    }

    #[test]
    fn identifiers_are_checked_beyond_the_schema() {
        let mut c = s2s("c", "c");
        assert_eq!(identifier_problem(&c.spec), None);
        c.spec.dns_names = vec!["0x1f".into()];
        assert_eq!(identifier_problem(&c.spec).unwrap().0, "InvalidDnsName");
    }
}
