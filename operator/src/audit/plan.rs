//! `sithsctl plan`: the operator's own decisions on every `ServiceCertificate` in a set of
//! manifests, without a cluster. The gates are the controller's gate chain
//! ([`crate::policy::gates::evaluate`]); only the inputs come from the manifests instead of
//! the API. Cost, lead time and approval come from the same `policy` functions the
//! controller's orders use.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use super::{Inventory, ObjectRef, Severity};
use crate::{
    api::{
        DomainValidation, Environment, IssuerKind, Purpose, ServiceCertificate, SithsIssuer, status,
    },
    policy::{
        self,
        conditions::find_condition,
        coverage::{DomainGrant, uncovered_names},
        domain_validation::grants_for,
        gates::{self, GateInput, IssuerFacts, IssuerState, domain_gap_message},
        issuers::{IssuerProblem, Source, siths_spec_problem},
        routing::Route,
    },
    vocabulary::{condition, reason},
};

/// The SithsIssuer a certificate names, if it names one and it is among the objects.
pub fn issuer_of<'a>(inv: &'a Inventory, cert: &ServiceCertificate) -> Option<&'a SithsIssuer> {
    if cert.spec.issuer_ref.kind != IssuerKind::SithsIssuer {
        return None;
    }
    inv.siths_issuers
        .iter()
        .find(|i| i.metadata.name.as_deref() == Some(cert.spec.issuer_ref.name.as_str()))
}

/// The PublicIssuer a certificate names, if it is among the objects.
pub fn public_issuer_of<'a>(
    inv: &'a Inventory,
    cert: &ServiceCertificate,
) -> Option<&'a crate::api::PublicIssuer> {
    if cert.spec.issuer_ref.kind != IssuerKind::PublicIssuer {
        return None;
    }
    inv.public_issuers
        .iter()
        .find(|i| i.metadata.name.as_deref() == Some(cert.spec.issuer_ref.name.as_str()))
}

/// The issuer of `cert` as the gate chain sees it, from the manifests: what its spec shows,
/// and for a SithsIssuer exported with its status (`kubectl get -o yaml`) the `Ready=False`
/// it reports: the controller's resolution (its CA Secret, its trust anchors), which
/// manifests lack otherwise. A PublicIssuer's status is not used: certificates on it do not
/// wait for it (cert-manager missing, for one, is the certificate's own reason).
fn issuer_state<'a>(inv: &'a Inventory, cert: &ServiceCertificate) -> IssuerState<'a> {
    match cert.spec.issuer_ref.kind {
        IssuerKind::SithsIssuer => match issuer_of(inv, cert) {
            None => IssuerState::Missing,
            Some(i) => match siths_spec_problem(&i.spec) {
                Some(p) => IssuerState::NotReady(p),
                None => match i
                    .status
                    .as_ref()
                    .and_then(|st| find_condition(&st.conditions, condition::READY))
                    .filter(|c| c.status == status::FALSE)
                {
                    Some(c) => IssuerState::NotReady(IssuerProblem::new(
                        reason::ISSUER_NOT_READY,
                        c.message.clone(),
                    )),
                    None => IssuerState::Ready(IssuerFacts::siths(&i.spec)),
                },
            },
        },
        IssuerKind::PublicIssuer => match public_issuer_of(inv, cert) {
            None => IssuerState::Missing,
            Some(i) => IssuerState::Ready(IssuerFacts::public(&i.spec)),
        },
    }
}

/// Names of a certificate that no valid DomainValidation covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainGap {
    /// The uncovered names, in the certificate's order.
    pub uncovered: Vec<String>,
    /// The organisation the validations must be made for, when the issuer is known.
    pub organization_number: Option<String>,
}

impl DomainGap {
    /// The message, the controller's `DomainNotValidated` condition's.
    pub fn message(&self) -> String {
        domain_gap_message(self.organization_number.as_deref(), &self.uncovered)
    }
}

/// The domain-validation gate of the controller for `cert` at `now`: grants for the
/// issuer's organisation (for any organisation when the issuer is unknown), then coverage.
pub fn domain_gap(inv: &Inventory, cert: &ServiceCertificate, now: Timestamp) -> Option<DomainGap> {
    let validations: Vec<&DomainValidation> = inv.domain_validations.iter().collect();
    let public = public_issuer_of(inv, cert);
    if public.is_some_and(|p| !p.spec.domain_validation_required()) {
        return None;
    }
    let org = issuer_of(inv, cert)
        .map(|i| &i.spec.organization.organization_number)
        .or_else(|| public.and_then(|p| p.spec.organization_number.as_ref()));
    let (grants, organization_number): (Vec<DomainGrant>, _) = match org {
        Some(org) => (
            grants_for(validations.iter().copied(), org, now),
            Some(org.clone()),
        ),
        None => {
            let mut orgs: Vec<&str> = inv
                .domain_validations
                .iter()
                .map(|dv| dv.spec.validated_for.as_str())
                .collect();
            orgs.sort_unstable();
            orgs.dedup();
            let grants = orgs
                .into_iter()
                .flat_map(|org| grants_for(validations.iter().copied(), org, now))
                .collect();
            (grants, None)
        }
    };
    let uncovered = uncovered_names(&cert.spec.dns_names, &grants);
    (!uncovered.is_empty()).then_some(DomainGap {
        uncovered,
        organization_number,
    })
}

/// What the operator would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Decision {
    /// It would issue (or order) the certificate.
    Issue,
    /// It would not, for the reason given.
    Blocked,
}

/// The plan for one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanEntry {
    /// The ServiceCertificate.
    pub object: ObjectRef,
    /// Its purpose.
    pub purpose: Purpose,
    /// `SITHS`, `Public` or `Refused`, as `status.route`.
    pub route: String,
    /// `Kind/name` of the issuer.
    pub issuer: String,
    /// Issue or Blocked.
    pub decision: Decision,
    /// `Blocked`: error, except a route this version does not serve (warning); `Issue`: info.
    pub severity: Severity,
    /// The condition reason the controller would write.
    pub reason: String,
    /// What happens, or what to fix.
    pub message: String,
    /// Names no domain validation covers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uncovered_names: Vec<String>,
    /// Estimated cost of the order, SEK.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_cost_sek: Option<u32>,
    /// Days between order and certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_time_days: Option<i64>,
    /// Whether the order waits for a person's approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_required: Option<bool>,
}

/// Totals of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    /// Certificates that would be issued.
    pub issue: usize,
    /// Certificates that would not.
    pub blocked: usize,
    /// Sum of the estimated costs, SEK.
    pub estimated_cost_sek: u64,
}

/// A plan for every ServiceCertificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The time the plan was evaluated at (RFC 3339).
    pub evaluated_at: String,
    /// One entry per certificate, by namespace and name.
    pub certificates: Vec<PlanEntry>,
    /// Totals.
    pub summary: PlanSummary,
}

impl Plan {
    /// Whether any entry is at least as severe as `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.certificates
            .iter()
            .any(|e| e.severity.trips(threshold))
    }
}

/// Plans every ServiceCertificate of `inv` at `now`. Test orders on one issuer are priced
/// in manifest order (the first at the first-certificate price), as if the issuer had
/// placed no order before.
pub fn plan(inv: &Inventory, now: Timestamp) -> Plan {
    let mut placed: BTreeMap<String, u32> = BTreeMap::new();
    let mut certificates: Vec<PlanEntry> = inv
        .service_certificates
        .iter()
        .map(|c| plan_one(inv, c, now, &mut placed))
        .collect();
    certificates.sort_by(|a, b| a.object.cmp(&b.object));
    let mut summary = PlanSummary::default();
    for e in &certificates {
        match e.decision {
            Decision::Issue => summary.issue += 1,
            Decision::Blocked => summary.blocked += 1,
        }
        summary.estimated_cost_sek += u64::from(e.estimated_cost_sek.unwrap_or(0));
    }
    Plan {
        evaluated_at: policy::rfc3339(now),
        certificates,
        summary,
    }
}

fn plan_one(
    inv: &Inventory,
    cert: &ServiceCertificate,
    now: Timestamp,
    placed: &mut BTreeMap<String, u32>,
) -> PlanEntry {
    let spec = &cert.spec;
    let ns = cert.metadata.namespace.clone().unwrap_or_default();
    let labels = inv.namespace_labels(&ns);
    let validations: Vec<&DomainValidation> = inv.domain_validations.iter().collect();
    let same_secret: Vec<&ServiceCertificate> = inv
        .service_certificates
        .iter()
        .filter(|c| {
            c.spec.secret_name == spec.secret_name && c.metadata.namespace.as_deref() == Some(&ns)
        })
        .collect();
    let outcome = gates::evaluate(&GateInput {
        cert,
        issuer: issuer_state(inv, cert),
        namespace_labels: &labels,
        validations: &validations,
        same_secret: &same_secret,
        now,
    });
    let mut entry = PlanEntry {
        object: ObjectRef::namespaced(
            "ServiceCertificate",
            &ns,
            cert.metadata.name.as_deref().unwrap_or_default(),
        ),
        purpose: spec.purpose,
        route: outcome.route.into(),
        issuer: format!("{:?}/{}", spec.issuer_ref.kind, spec.issuer_ref.name),
        decision: Decision::Blocked,
        severity: Severity::Error,
        reason: String::new(),
        message: String::new(),
        uncovered_names: Vec::new(),
        estimated_cost_sek: None,
        lead_time_days: None,
        approval_required: None,
    };
    let passed = match outcome.verdict {
        Err(blocked) => {
            entry.reason = blocked.reason.into();
            entry.message = blocked.message;
            entry.uncovered_names = blocked.uncovered;
            return entry;
        }
        Ok(passed) => passed,
    };
    entry.decision = Decision::Issue;
    entry.severity = Severity::Info;
    entry.reason = passed
        .source
        .settled_reason(passed.approval_required)
        .into();
    let issuer_name = &spec.issuer_ref.name;
    match (passed.route, issuer_of(inv, cert)) {
        (Route::Siths, Some(issuer)) => {
            let ispec = &issuer.spec;
            let manual = passed.source == Source::SithsManual;
            let before = placed.entry(issuer_name.clone()).or_insert(0);
            let cost = policy::cost::order_cost_for_backend(
                manual,
                ispec.environment,
                ispec.price_per_certificate_sek,
                *before,
            );
            *before += 1;
            let lead = policy::cost::lead_time(ispec.lead_time_days, manual);
            entry.message = format!(
                "{} through SithsIssuer {issuer_name} ({}){}",
                passed.source.describe(),
                match ispec.environment {
                    Environment::Production => "Production",
                    Environment::Test => "Test",
                },
                if passed.approval_required {
                    "; the order waits for a person's approval"
                } else {
                    ""
                }
            );
            entry.estimated_cost_sek = Some(cost);
            entry.lead_time_days = Some(lead.as_secs() / 86_400);
            entry.approval_required = Some(passed.approval_required);
        }
        _ => {
            entry.estimated_cost_sek = Some(0);
            entry.message = format!(
                "{} through PublicIssuer {issuer_name}; verified against Mozilla's root store (never SITHS) before it is Ready",
                passed.source.describe(),
            );
        }
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::manifests::add_text;

    const CERT: &str = "apiVersion: siths-operator.io/v1alpha1\nkind: ServiceCertificate\nmetadata: {name: web, namespace: portal}\nspec: {purpose: UserFacing, dnsNames: [www.region.se], secretName: web-tls, issuerRef: {kind: PublicIssuer, name: telia}}\n";
    const DV: &str = "apiVersion: siths-operator.io/v1alpha1\nkind: DomainValidation\nmetadata: {name: region}\nspec: {domain: region.se, includeSubdomains: true, owner: {name: Region, organizationNumber: 232100-0016}, validatedFor: 232100-0016, evidence: {formReference: DV-1, submittedBy: A, approvedOn: '2026-01-10'}, validUntil: '2099-12-31'}\n";

    fn issuer(extra: &str) -> String {
        format!(
            "apiVersion: siths-operator.io/v1alpha1\nkind: PublicIssuer\nmetadata: {{name: telia}}\nspec:\n  acme: {{privateKeySecretRef: {{name: acme, namespace: ops}}}}\n{extra}"
        )
    }

    fn plan_of(docs: &[&str]) -> PlanEntry {
        let mut inv = Inventory::default();
        for d in docs {
            add_text(d, "test", &mut inv).unwrap();
        }
        plan(
            &inv,
            Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_hours(24 * 365 * 57),
        )
        .certificates
        .remove(0)
    }

    #[test]
    fn a_siths_issuer_exported_not_ready_blocks_its_certificates() {
        const SITHS_CERT: &str = "apiVersion: siths-operator.io/v1alpha1\nkind: ServiceCertificate\nmetadata: {name: api, namespace: portal}\nspec: {purpose: ServerToServer, hsaId: SE2321000016-A1, dnsNames: [api.region.se], secretName: api-tls, issuerRef: {kind: SithsIssuer, name: region}}\n";
        let issuer = |status: &str| {
            format!(
                "apiVersion: siths-operator.io/v1alpha1\nkind: SithsIssuer\nmetadata: {{name: region}}\nspec:\n  organization: {{name: Region, organizationNumber: 232100-0016}}\n  connection: {{type: Direct}}\n  environment: Test\n  backend: {{localCA: {{secretRef: {{name: ca, namespace: ops}}}}}}\n{status}"
            )
        };
        let ready = issuer("");
        let e = plan_of(&[SITHS_CERT, &ready, DV]);
        assert_eq!((e.decision, e.reason.as_str()), (Decision::Issue, "Issued"));
        let not_ready = issuer(
            "status: {conditions: [{type: Ready, status: 'False', reason: LocalCaSecretNotFound, message: 'Secret ops/ca does not exist', lastTransitionTime: '2026-12-01T00:00:00Z'}]}\n",
        );
        let e = plan_of(&[SITHS_CERT, &not_ready, DV]);
        assert_eq!(
            (e.decision, e.reason.as_str()),
            (Decision::Blocked, "IssuerNotReady")
        );
        assert!(
            e.message.contains("Secret ops/ca does not exist"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_user_facing_certificate_is_planned_on_its_public_issuer() {
        let e = plan_of(&[CERT]);
        assert_eq!(
            (e.route.as_str(), e.reason.as_str()),
            ("Public", "IssuerNotFound")
        );
        let with_gate = issuer("  organizationNumber: 232100-0016\n");
        let e = plan_of(&[CERT, &with_gate]);
        assert_eq!(e.reason, "DomainNotValidated", "{e:?}");
        assert_eq!(e.uncovered_names, ["www.region.se"]);
        let e = plan_of(&[CERT, &with_gate, DV]);
        assert_eq!((e.decision, e.reason.as_str()), (Decision::Issue, "Issued"));
        assert!(
            e.message.contains("ACME") && e.message.contains("Mozilla"),
            "{}",
            e.message
        );
        assert_eq!(e.estimated_cost_sek, Some(0));
        // The gate turned off explicitly.
        let e = plan_of(&[CERT, &issuer("  domainValidation: Disabled\n")]);
        assert_eq!(e.decision, Decision::Issue, "{e:?}");
    }
}
