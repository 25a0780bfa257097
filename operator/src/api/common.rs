//! Types and validation rules shared by several kinds.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// CEL: a lowercase DNS name, no trailing dot, a wildcard only as the whole leftmost label,
/// not ending in a decimal or `0x` hex label (that reads as an IP address).
pub const DNS_NAME_RULE: &str = r"self.matches('^(\\*\\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$') && !self.matches('\\.([0-9]+|0x[0-9a-f]*)$')";
/// Message for [`DNS_NAME_RULE`].
pub const DNS_NAME_MESSAGE: &str = "must be a lowercase DNS name with at least two labels and no trailing dot (for example api.region.se); a wildcard is allowed only as the whole leftmost label (*.region.se); write internationalised names in punycode (xn--); an IP address is not a DNS name";

/// CEL: an HSA-id as described in DOMAIN.md (lenient form), at most 31 characters. The
/// length is part of the rule (the schema's maxLength is looser) so that a long HSA-id gets
/// this message instead of a bare length error. Rust: `policy::identifiers::validate_hsa_id`.
pub const HSA_ID_RULE: &str =
    r"size(self) <= 31 && self.matches('^(SE|TSTNMT)[0-9]{10,12}-[A-Za-z0-9]+$')";
/// Schema maxLength of an HSA-id field: the bound CEL's cost estimate needs, above the 31
/// characters [`HSA_ID_RULE`] allows.
pub const HSA_ID_SCHEMA_MAX: u32 = 64;
/// Message for [`HSA_ID_RULE`].
pub const HSA_ID_MESSAGE: &str = "hsaId must look like SE2321000016-ABC1 (SE or TSTNMT, 10-12 digits of the organisation number, a hyphen, then letters A-Z and digits only; no å, ä, ö or @), at most 31 characters";

/// CEL: an organisation number `NNNNNN-NNNN` whose third and fourth digits are >= 20.
pub const ORG_NUMBER_RULE: &str =
    r"self.matches('^[0-9]{6}-[0-9]{4}$') && int(self.substring(2, 4)) >= 20";
/// Message for [`ORG_NUMBER_RULE`].
pub const ORG_NUMBER_MESSAGE: &str = "organisation number must be written NNNNNN-NNNN (for example 232100-0016) and its third and fourth digits together must be 20 or more";

/// CEL: the Luhn check digit of an organisation number `NNNNNN-NNNN` (only judged once the
/// number is well formed; [`ORG_NUMBER_RULE`] reports the rest). The sum of the ten digits,
/// the first, third, fifth, seventh and ninth doubled (digit sum), is a multiple of 10. The
/// same rule in Rust: `policy::identifiers::validate_organization_number`, which the
/// operator, `sithsctl plan` and the controllers keep running.
pub const ORG_NUMBER_LUHN_RULE: &str = "!self.matches('^[0-9]{6}-[0-9]{4}$') || ([0, 2, 4, 6, 8, 1, 3, 5, 7, 9][int(self.substring(0, 1))] + int(self.substring(1, 2)) + [0, 2, 4, 6, 8, 1, 3, 5, 7, 9][int(self.substring(2, 3))] + int(self.substring(3, 4)) + [0, 2, 4, 6, 8, 1, 3, 5, 7, 9][int(self.substring(4, 5))] + int(self.substring(5, 6)) + [0, 2, 4, 6, 8, 1, 3, 5, 7, 9][int(self.substring(7, 8))] + int(self.substring(8, 9)) + [0, 2, 4, 6, 8, 1, 3, 5, 7, 9][int(self.substring(9, 10))] + int(self.substring(10, 11))) % 10 == 0";
/// Message for [`ORG_NUMBER_LUHN_RULE`].
pub const ORG_NUMBER_LUHN_MESSAGE: &str = "organisation number has a wrong check digit: its last digit is the Luhn check digit of the first nine (for example 232100-0016); check it for a typo";

/// CEL, on a string whose first ten characters are a well-formed `YYYY-MM-DD`: the day
/// exists in that month (29 February only in leap years).
macro_rules! day_exists {
    () => {
        "int(self.substring(8, 10)) <= [31, (int(self.substring(0, 4)) % 4 == 0 && (int(self.substring(0, 4)) % 100 != 0 || int(self.substring(0, 4)) % 400 == 0)) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][int(self.substring(5, 7)) - 1]"
    };
}

/// CEL: a calendar date `YYYY-MM-DD` that exists (not 2027-02-30). Rust:
/// `policy::domain_validation::parse_date`.
pub const DATE_RULE: &str = concat!(
    r"self.matches('^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$') && ",
    day_exists!()
);
/// Message for [`DATE_RULE`].
pub const DATE_MESSAGE: &str = "must be a date written YYYY-MM-DD that exists on the calendar (for example 2027-02-28; there is no 2027-02-30)";

/// CEL: an RFC 3339 time such as `2026-05-04T09:30:00Z` or `2026-05-04T11:30:00.5+02:00`,
/// whose date exists.
pub const RFC3339_RULE: &str = concat!(
    r"self.matches('^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$') && ",
    day_exists!()
);

/// CEL: a DNS-1123 subdomain, the rule for the names of Secrets, ConfigMaps and most other
/// objects (`www.tls` yes; `www..tls`, `www.-tls`, `My_Secret` no). Rust:
/// `policy::names::is_dns1123_subdomain`. The length (253) is the schema's maxLength.
pub const DNS1123_SUBDOMAIN_RULE: &str =
    r"self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')";
/// What a DNS-1123 subdomain is, for messages.
pub const DNS1123_SUBDOMAIN_WORDS: &str = "lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit, at most 253 characters";
/// CEL: a DNS-1123 label, the rule for namespace names (`pki-system` yes; `PKI_System`
/// no). The length (63) is the schema's maxLength.
pub const DNS1123_LABEL_RULE: &str = r"self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')";
/// Message for a namespace field checked by [`DNS1123_LABEL_RULE`].
pub const NAMESPACE_MESSAGE: &str = "namespace must be a valid namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (for example pki-system)";
/// Message for a name field checked by [`DNS1123_SUBDOMAIN_RULE`].
pub const OBJECT_NAME_MESSAGE: &str = "name must be a valid object name: lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit (for example siths-ca)";

/// Schema of a `dnsNames` list: 1 (a CEL rule) to 100 unique names, each checked by [`DNS_NAME_RULE`].
/// Written by hand because the rule must sit on the items (a rule over the whole list costs
/// too much for the apiserver's CEL budget) and uniqueness is the list type `set`.
pub fn dns_names_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "maxItems": 100,
        "x-kubernetes-list-type": "set",
        // A CEL rule rather than minItems: its message says what to do, and a schema error
        // would hide every CEL message of the object ("some validation rules were not
        // checked"). size() costs nothing per item.
        "x-kubernetes-validations": [{
            "rule": "size(self) >= 1",
            "message": "dnsNames needs at least one DNS name, for example [api.region.se]; the first is also the subject CN",
        }],
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

/// CEL, on one `matchExpressions` entry of a label selector: a known operator, with values
/// for `In`/`NotIn` and none for `Exists`/`DoesNotExist` (what the apiserver itself requires
/// of a selector, which a CRD field does not get by itself).
pub const SELECTOR_REQUIREMENT_RULE: &str = "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (self.operator in ['Exists', 'DoesNotExist'] && (!has(self.values) || size(self.values) == 0))";
/// Message for [`SELECTOR_REQUIREMENT_RULE`].
pub const SELECTOR_REQUIREMENT_MESSAGE: &str = "a matchExpressions operator must be In or NotIn (with values) or Exists or DoesNotExist (without values); for equality write In with one value, or use matchLabels";

/// Schema of a namespace label selector (`metav1.LabelSelector`), with bounds and the
/// checks the apiserver applies to selectors of its own kinds: operators In, NotIn, Exists,
/// DoesNotExist ([`SELECTOR_REQUIREMENT_RULE`]).
pub fn label_selector_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "A label query over namespaces: matchLabels and matchExpressions are ANDed; an empty selector matches every namespace.",
        "x-kubernetes-map-type": "atomic",
        "properties": {
            "matchLabels": {
                "description": "Labels a namespace must carry, key: value.",
                "type": "object",
                "maxProperties": 64,
                "additionalProperties": { "type": "string", "maxLength": 63 },
            },
            "matchExpressions": {
                "description": "Requirements a namespace's labels must meet.",
                "type": "array",
                "maxItems": 32,
                "x-kubernetes-list-type": "atomic",
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": { "description": "The label key.", "type": "string", "minLength": 1, "maxLength": 317 },
                        "operator": { "description": "In, NotIn, Exists or DoesNotExist.", "type": "string", "maxLength": 16 },
                        "values": {
                            "description": "Values for In and NotIn; empty for Exists and DoesNotExist.",
                            "type": "array",
                            "maxItems": 64,
                            "x-kubernetes-list-type": "atomic",
                            "items": { "type": "string", "maxLength": 63 },
                        },
                    },
                    "x-kubernetes-validations": [{
                        "rule": SELECTOR_REQUIREMENT_RULE,
                        "message": SELECTOR_REQUIREMENT_MESSAGE,
                        "fieldPath": ".operator",
                    }],
                },
            },
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
    /// Swedish organisation number (organisationsnummer), written NNNNNN-NNNN, with a valid
    /// Luhn check digit (checked at admission and again by the operator).
    #[validate(length(min = 11, max = 11))]
    #[x_kube(validation = Rule::new(ORG_NUMBER_RULE).message(ORG_NUMBER_MESSAGE))]
    #[x_kube(validation = Rule::new(ORG_NUMBER_LUHN_RULE).message(ORG_NUMBER_LUHN_MESSAGE))]
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
    #[x_kube(validation = Rule::new(DNS1123_SUBDOMAIN_RULE).message(OBJECT_NAME_MESSAGE))]
    pub name: String,
    /// Namespace of the Secret.
    #[validate(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(DNS1123_LABEL_RULE).message(NAMESPACE_MESSAGE))]
    pub namespace: String,
}

/// A reference to a key of a Secret in a given namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedSecretKeyRef {
    /// Name of the Secret.
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS1123_SUBDOMAIN_RULE).message(OBJECT_NAME_MESSAGE))]
    pub name: String,
    /// Namespace of the Secret.
    #[validate(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(DNS1123_LABEL_RULE).message(NAMESPACE_MESSAGE))]
    pub namespace: String,
    /// Key in the Secret's data.
    #[serde(default = "default_password_key")]
    #[validate(length(min = 1, max = 253))]
    pub key: String,
}

fn default_password_key() -> String {
    "password".to_string()
}

/// CEL: a ConfigMap or Secret data key (letters, digits, `-`, `_`, `.`).
pub const CONFIG_KEY_RULE: &str = r"self.matches('^[-._a-zA-Z0-9]+$')";
/// Message for [`CONFIG_KEY_RULE`].
pub const CONFIG_KEY_MESSAGE: &str =
    "must be a valid data key: letters, digits, '-', '_' and '.' (for example truststore.p12)";

/// A reference to a ConfigMap key holding PEM certificates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name of the ConfigMap.
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS1123_SUBDOMAIN_RULE).message(OBJECT_NAME_MESSAGE))]
    pub name: String,
    /// Namespace of the ConfigMap.
    #[validate(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(DNS1123_LABEL_RULE).message(NAMESPACE_MESSAGE))]
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
