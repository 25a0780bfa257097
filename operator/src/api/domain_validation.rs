//! `DomainValidation`: proof that an organisation may get certificates for a domain.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{
    Condition, DATE_MESSAGE, DATE_RULE, DNS_NAME_MESSAGE, DNS_NAME_RULE, ORG_NUMBER_LUHN_MESSAGE,
    ORG_NUMBER_LUHN_RULE, ORG_NUMBER_MESSAGE, ORG_NUMBER_RULE, Organization,
};

/// CEL: a DNS record name: like a host name, but a label may start with `_`
/// (`_siths-validation.region.se`).
pub const DNS_RECORD_NAME_RULE: &str = r"self.matches('^([a-z0-9_]([-a-z0-9_]{0,61}[a-z0-9])?\\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')";

/// CEL (on the spec): the evidence's TXT record is the domain itself or a name below it.
pub const DNS_RECORD_UNDER_DOMAIN_RULE: &str = "!has(self.evidence.dnsTxtRecord) || self.evidence.dnsTxtRecord.name == self.domain || self.evidence.dnsTxtRecord.name.endsWith('.' + self.domain)";
/// Message of [`DNS_RECORD_UNDER_DOMAIN_RULE`].
pub const DNS_RECORD_UNDER_DOMAIN_MESSAGE: &str = "evidence.dnsTxtRecord.name must be the domain or a name below it (for example _siths-validation.<domain>): a record elsewhere proves nothing about the domain";

/// A domain validation approved by the SITHS policy authority: the owner organisation may
/// get certificates for the domain through the issuing organisation. No certificate is
/// issued for a name that no `Validated` DomainValidation covers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "siths-operator.io",
    version = "v1alpha1",
    kind = "DomainValidation",
    shortname = "dv",
    category = "siths",
    status = "DomainValidationStatus",
    printcolumn(json_path = ".spec.domain", name = "Domain", type_ = "string"),
    printcolumn(
        json_path = ".spec.includeSubdomains",
        name = "Subdomains",
        type_ = "boolean"
    ),
    printcolumn(json_path = ".spec.owner.name", name = "Owner", type_ = "string"),
    printcolumn(json_path = ".spec.validUntil", name = "Valid Until", type_ = "string"),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Validated\")].reason",
        name = "Status",
        type_ = "string"
    )
)]
#[x_kube(validation = Rule::new("self.domain == oldSelf.domain").message("domain cannot be changed; create a new DomainValidation for the other domain"))]
#[x_kube(validation = Rule::new("!self.validUntil.matches('^[0-9]{4}-[0-9]{2}-[0-9]{2}$') || !self.evidence.approvedOn.matches('^[0-9]{4}-[0-9]{2}-[0-9]{2}$') || self.validUntil >= self.evidence.approvedOn").message("validUntil must not be before evidence.approvedOn: a validation ends after it was approved").field_path(".validUntil"))]
#[x_kube(validation = Rule::new("self.owner.organizationNumber == self.validatedFor || has(self.powerOfAttorney)").message("powerOfAttorney is required when the owner (owner.organizationNumber) is not the organisation the validation is for (validatedFor): the issuing organisation acts as agent and needs the owner's power of attorney (fullmakt)").field_path(".powerOfAttorney"))]
#[x_kube(validation = Rule::new(DNS_RECORD_UNDER_DOMAIN_RULE).message(DNS_RECORD_UNDER_DOMAIN_MESSAGE).field_path(".evidence.dnsTxtRecord.name"))]
#[x_kube(validation = Rule::new("!has(self.powerOfAttorney) || self.powerOfAttorney.grantedBy == self.owner.organizationNumber").message("powerOfAttorney.grantedBy must be the owner's organisation number (owner.organizationNumber): only the domain owner can grant a power of attorney, not the agent").field_path(".powerOfAttorney.grantedBy"))]
#[serde(rename_all = "camelCase")]
pub struct DomainValidationSpec {
    /// The validated domain: a lowercase DNS name without a wildcard, for example
    /// `region.se`.
    #[validate(length(min = 3, max = 253))]
    #[x_kube(validation = Rule::new(DNS_NAME_RULE).message(DNS_NAME_MESSAGE))]
    #[x_kube(validation = Rule::new("!self.startsWith('*')").message("domain must not be a wildcard; set includeSubdomains: true instead"))]
    pub domain: String,
    /// Whether names below the domain (and wildcards such as `*.region.se`) are covered too.
    #[serde(default)]
    pub include_subdomains: bool,
    /// The organisation that owns the domain.
    pub owner: Organization,
    /// Organisation number of the issuing organisation the validation was made for (the
    /// `SithsIssuer` organisation). When it differs from the owner, a power of attorney is
    /// required.
    #[validate(length(min = 11, max = 11))]
    #[x_kube(validation = Rule::new(ORG_NUMBER_RULE).message(ORG_NUMBER_MESSAGE))]
    #[x_kube(validation = Rule::new(ORG_NUMBER_LUHN_RULE).message(ORG_NUMBER_LUHN_MESSAGE))]
    pub validated_for: String,
    /// What proves the validation.
    pub evidence: Evidence,
    /// Last day (YYYY-MM-DD, inclusive) the validation is valid.
    #[validate(length(min = 10, max = 10))]
    #[x_kube(validation = Rule::new(DATE_RULE).message(DATE_MESSAGE))]
    pub valid_until: String,
    /// Power of attorney (fullmakt) from the owner, required when the owner is not the
    /// issuing organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_of_attorney: Option<PowerOfAttorney>,
}

/// Evidence of the domain validation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// Reference of the domain validation form (blankett) sent to the SITHS policy
    /// authority group.
    #[validate(length(min = 1, max = 128))]
    pub form_reference: String,
    /// Who submitted the form (the responsible issuer, ansvarig utgivare).
    #[validate(length(min = 1, max = 128))]
    pub submitted_by: String,
    /// Date (YYYY-MM-DD) the policy authority approved the validation.
    #[validate(length(min = 10, max = 10))]
    #[x_kube(validation = Rule::new(DATE_RULE).message(DATE_MESSAGE))]
    pub approved_on: String,
    /// Optional DNS TXT record the operator checks live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_txt_record: Option<DnsTxtRecord>,
}

/// A DNS TXT record that must hold a given value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsTxtRecord {
    /// Fully qualified record name, for example `_siths-validation.region.se`.
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS_RECORD_NAME_RULE).message("dnsTxtRecord.name must be a lowercase DNS name with at least two labels and no trailing dot, for example _siths-validation.region.se (labels may start with '_')"))]
    pub name: String,
    /// Expected value of one of the record's TXT strings.
    #[validate(length(min = 1, max = 255))]
    pub value: String,
    /// Whether the live check decides the validation (default `true`): when `false` the
    /// operator still looks the record up and reports the result in `status.dns` and the
    /// `DnsChecked` condition, but `Validated` does not depend on it.
    #[serde(default = "default_true")]
    pub required: bool,
}

fn default_true() -> bool {
    true
}

/// The last live check of `evidence.dnsTxtRecord`, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsCheckStatus {
    /// Record name the result is for.
    pub name: String,
    /// Expected value the result is for (a changed spec makes the result stale).
    pub value: String,
    /// Last definite answer: `Found`, `Missing` or `Mismatch`; absent until one arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// TXT strings found at the last definite answer (with `Mismatch`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub found: Vec<String>,
    /// When the last definite answer arrived (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_time: Option<String>,
    /// When the record was last looked up (RFC 3339), whatever the outcome.
    pub last_check_time: String,
    /// Why the last lookup got no answer (timeout, unreachable, SERVFAIL); absent when it
    /// got one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Until when the last definite answer still counts while lookups fail (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<String>,
    /// When the record is looked up next (RFC 3339).
    pub next_check_time: String,
}

/// Power of attorney (fullmakt) from the domain owner.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PowerOfAttorney {
    /// Reference of the power of attorney document.
    #[validate(length(min = 1, max = 128))]
    pub reference: String,
    /// Organisation number of the organisation granting it (the domain owner).
    #[validate(length(min = 11, max = 11))]
    #[x_kube(validation = Rule::new(ORG_NUMBER_RULE).message(ORG_NUMBER_MESSAGE))]
    #[x_kube(validation = Rule::new(ORG_NUMBER_LUHN_RULE).message(ORG_NUMBER_LUHN_MESSAGE))]
    pub granted_by: String,
    /// Last day (YYYY-MM-DD, inclusive) the power of attorney is valid.
    #[validate(length(min = 10, max = 10))]
    #[x_kube(validation = Rule::new(DATE_RULE).message(DATE_MESSAGE))]
    pub valid_until: String,
}

/// Observed state of a DomainValidation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainValidationStatus {
    /// `Validated` with reason `Valid`, `Expired`, `PowerOfAttorneyMissing`,
    /// `PowerOfAttorneyExpired`, `PowerOfAttorneyWrongGrantor`, `InvalidOrganizationNumber`,
    /// `InvalidDate`, `DnsRecordMissing`, `DnsRecordMismatch`, `DnsCheckPending` or
    /// (status `Unknown`) `DnsCheckFailed`; `DnsChecked` when a TXT record is configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 0, max = 9007199254740991i64))]
    pub observed_generation: Option<i64>,
    /// The live check of `evidence.dnsTxtRecord`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsCheckStatus>,
}
