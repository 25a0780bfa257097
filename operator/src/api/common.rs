//! Types and validation rules shared by several kinds.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// CEL: a lowercase DNS name, no trailing dot, a wildcard only as the whole leftmost label,
/// not ending in a decimal or `0x` hex label (that reads as an IP address).
pub const DNS_NAME_RULE: &str = r"self.matches('^(\\*\\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$') && !self.matches('\\.([0-9]+|0x[0-9a-f]*)$')";
/// Message for [`DNS_NAME_RULE`].
pub const DNS_NAME_MESSAGE: &str = "must be a lowercase DNS name with at least two labels and no trailing dot (for example api.region.se); a wildcard is allowed only as the whole leftmost label (*.region.se); write internationalised names in punycode (xn--); an IP address is not a DNS name";

/// CEL: an HSA-id as described in DOMAIN.md (lenient form).
pub const HSA_ID_RULE: &str = r"self.matches('^(SE|TSTNMT)[0-9]{10,12}-[A-Za-z0-9]+$')";
/// Message for [`HSA_ID_RULE`].
pub const HSA_ID_MESSAGE: &str = "hsaId must look like SE2321000016-ABC1 (SE or TSTNMT, 10-12 digits of the organisation number, a hyphen, then letters A-Z and digits only; no å, ä, ö or @), at most 31 characters";

/// CEL: an organisation number `NNNNNN-NNNN` whose third and fourth digits are >= 20.
pub const ORG_NUMBER_RULE: &str =
    r"self.matches('^[0-9]{6}-[0-9]{4}$') && int(self.substring(2, 4)) >= 20";
/// Message for [`ORG_NUMBER_RULE`].
pub const ORG_NUMBER_MESSAGE: &str = "organisation number must be written NNNNNN-NNNN (for example 232100-0016) and its third and fourth digits together must be 20 or more";

/// CEL: a calendar date `YYYY-MM-DD`.
pub const DATE_RULE: &str = r"self.matches('^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$')";
/// Message for [`DATE_RULE`].
pub const DATE_MESSAGE: &str = "must be a date written YYYY-MM-DD";

/// Schema of a `dnsNames` list: 1 to 100 unique names, each checked by [`DNS_NAME_RULE`].
/// Written by hand because the rule must sit on the items (a rule over the whole list costs
/// too much for the apiserver's CEL budget) and uniqueness is the list type `set`.
pub fn dns_names_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": 100,
        "x-kubernetes-list-type": "set",
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": 253,
            "x-kubernetes-validations": [{
                "rule": DNS_NAME_RULE,
                "message": DNS_NAME_MESSAGE,
            }],
        },
    })
}

/// An organisation as SITHS knows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    /// Legal name of the organisation, as it appears in the subject (O=) of its certificates.
    #[validate(length(min = 1, max = 64))]
    pub name: String,
    /// Swedish organisation number (organisationsnummer), written NNNNNN-NNNN. The Luhn
    /// check digit is verified by the operator and reported in the `Ready` condition.
    #[validate(length(min = 11, max = 11))]
    #[x_kube(validation = Rule::new(ORG_NUMBER_RULE).message(ORG_NUMBER_MESSAGE))]
    pub organization_number: String,
    /// Locality (L=) written into certificate subjects, for example `Stockholm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 128))]
    pub locality: Option<String>,
}

/// A reference to a key of a Secret in a given namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedSecretRef {
    /// Name of the Secret.
    #[validate(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Secret.
    #[validate(length(min = 1, max = 63))]
    pub namespace: String,
}

/// A reference to a ConfigMap key holding PEM certificates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap.
    #[validate(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the ConfigMap.
    #[validate(length(min = 1, max = 63))]
    pub namespace: String,
    /// Key in the ConfigMap's data holding PEM certificates.
    #[serde(default = "default_ca_key")]
    #[validate(length(min = 1, max = 253))]
    pub key: String,
}

fn default_ca_key() -> String {
    "ca.crt".to_string()
}

/// Condition status strings, as Kubernetes writes them.
pub mod status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// Not known yet.
    pub const UNKNOWN: &str = "Unknown";
}
