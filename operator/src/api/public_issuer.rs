//! `PublicIssuer`: where publicly trusted (browser) certificates come from.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    Condition, ConfigMapKeyRef, DNS_NAME_MESSAGE, DNS_NAME_RULE, DNS1123_LABEL_RULE,
    DNS1123_SUBDOMAIN_RULE, NAMESPACE_MESSAGE, NamespacedSecretRef, OBJECT_NAME_MESSAGE,
    ORG_NUMBER_LUHN_MESSAGE, ORG_NUMBER_LUHN_RULE, ORG_NUMBER_MESSAGE, ORG_NUMBER_RULE,
};

/// Telia's ACME directory, the default of `acme.server`.
pub const TELIA_ACME_DIRECTORY: &str = "https://acme.trust.telia.com/directory";

/// A publicly trusted CA for `UserFacing` certificates: an ACME CA (Telia by default), an
/// existing cert-manager issuer, or certificates bought by hand. Whatever the source, a
/// certificate is only `Ready` once it chains to Mozilla's root store (never to SITHS),
/// covers every name, carries serverAuth, is valid and matches its key.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "siths-operator.io",
    version = "v1alpha1",
    kind = "PublicIssuer",
    shortname = "pi",
    category = "siths",
    status = "PublicIssuerStatus",
    printcolumn(json_path = ".status.source", name = "Source", type_ = "string"),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        name = "Ready",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        name = "Reason",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    )
)]
#[x_kube(validation = Rule::new("[has(self.acme), has(self.certManager), has(self.manual)].filter(x, x).size() == 1").message("set exactly one of acme, certManager or manual"))]
#[x_kube(validation = Rule::new("has(self.domainValidation) && self.domainValidation == 'Disabled' || has(self.organizationNumber)").message("organizationNumber is required while domainValidation is Required: certificates are only issued for names a Validated DomainValidation of this organisation covers (or set domainValidation: Disabled explicitly)"))]
#[serde(rename_all = "camelCase")]
pub struct PublicIssuerSpec {
    /// An RFC 8555 ACME CA (Telia by default) with External Account Binding and HTTP-01
    /// challenges served by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeIssuer>,
    /// Delegate to an existing cert-manager `Issuer` or `ClusterIssuer`: the operator writes
    /// a `cert-manager.io/v1` `Certificate` for the same names and Secret and verifies the
    /// result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_manager: Option<CertManagerIssuer>,
    /// A person places a certificate bought through a CA's portal in the Secret
    /// (`tls.crt`, `tls.key`); the operator verifies it and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<ManualPublicIssuer>,
    /// Organisation number (NNNNNN-NNNN) whose Validated DomainValidations must cover every
    /// name. Required unless `domainValidation` is `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 11, max = 11))]
    #[x_kube(validation = Rule::new(ORG_NUMBER_RULE).message(ORG_NUMBER_MESSAGE))]
    #[x_kube(validation = Rule::new(ORG_NUMBER_LUHN_RULE).message(ORG_NUMBER_LUHN_MESSAGE))]
    pub organization_number: Option<String>,
    /// `Required` (the default): nothing is requested for a name no Validated
    /// DomainValidation covers. `Disabled` turns the gate off for this issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_validation: Option<DomainValidationPolicy>,
    /// Additional trust anchors (PEM roots in a ConfigMap) accepted besides Mozilla's root
    /// store, for test CAs such as Pebble. Never needed for a real public CA. A certificate
    /// chaining to SITHS is refused even if its roots are listed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_trust_anchors: Option<ConfigMapKeyRef>,
    /// Namespaces whose ServiceCertificates (and Ingresses) may use this issuer. Empty or
    /// absent: all namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::label_selector_schema")]
    pub allowed_namespaces: Option<LabelSelector>,
}

/// Whether the domain-validation gate applies to an issuer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DomainValidationPolicy {
    /// Every name must be covered by a Validated DomainValidation.
    Required,
    /// No domain-validation gate (the CA's own validation still applies).
    Disabled,
}

/// An ACME account at one CA.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcmeIssuer {
    /// ACME directory URL. Defaults to Telia's, `https://acme.trust.telia.com/directory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 9, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("acme.server must be an https:// URL of an ACME directory, for example https://acme.trust.telia.com/directory"))]
    pub server: Option<String>,
    /// Contact email registered with the account (expiry notices from the CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 3, max = 254))]
    #[x_kube(validation = Rule::new("self.matches('^[^@\\\\s]+@[^@\\\\s]+$')").message("acme.email must be an email address, for example pki@region.se"))]
    pub email: Option<String>,
    /// External Account Binding (Telia requires it): the key id and HMAC key created in the
    /// CA's portal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<ExternalAccountBinding>,
    /// Secret holding the ACME account key (`tls.key`). Created by the operator when absent
    /// and reused afterwards, so a restart never registers a second account.
    pub private_key_secret_ref: NamespacedSecretRef,
    /// How HTTP-01 challenges reach the operator. Defaults: a Service and an Ingress rule
    /// for each pending challenge, created and removed by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http01: Option<Http01Solver>,
    /// DNS-01 through RFC 2136 dynamic updates signed with TSIG: for wildcard names (which
    /// need DNS-01), and for the names of `selector` (absent: every name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns01: Option<Dns01Solver>,
    /// PEM CA certificates trusted for the ACME server's own HTTPS endpoint, for test
    /// servers such as Pebble. Absent: the Mozilla root store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ca: Option<ConfigMapKeyRef>,
}

/// External Account Binding credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalAccountBinding {
    /// Key identifier given by the CA.
    #[validate(length(min = 1, max = 256))]
    pub key_id: String,
    /// Secret with the base64url-encoded HMAC key, under `key` (default `secret`).
    pub key_secret_ref: SecretKeyRef,
}

/// A key of a Secret in a given namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS1123_SUBDOMAIN_RULE).message(OBJECT_NAME_MESSAGE))]
    pub name: String,
    /// Namespace of the Secret.
    #[validate(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(DNS1123_LABEL_RULE).message(NAMESPACE_MESSAGE))]
    pub namespace: String,
    /// Key in the Secret's data.
    #[serde(default = "default_secret_key")]
    #[validate(length(min = 1, max = 253))]
    pub key: String,
}

fn default_secret_key() -> String {
    "secret".to_string()
}

/// HTTP-01 challenge routing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Http01Solver {
    /// `ingressClassName` of the Ingress the operator creates for the challenge path.
    /// Absent: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 253))]
    pub ingress_class_name: Option<String>,
}

/// CEL: a nameserver address, `ip` or `ip:port` (IPv4), or `[ipv6]:port`.
pub const NAMESERVER_RULE: &str = r"self.matches('^([0-9]{1,3}\\.){3}[0-9]{1,3}(:[0-9]{1,5})?$') || self.matches('^\\[[0-9a-fA-F:]+\\]:[0-9]{1,5}$')";

/// DNS-01 challenge solving.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dns01Solver {
    /// The primary nameserver of the zone, updated with RFC 2136.
    pub rfc2136: Rfc2136Solver,
    /// The names solved with DNS-01 (wildcards always are). Absent: every name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<SolverSelector>,
}

/// Which names a solver takes, as cert-manager's solver selectors.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SolverSelector {
    /// Exact names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[validate(length(max = 100))]
    pub dns_names: Vec<String>,
    /// Zones: the zone itself and every name below it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[validate(length(max = 100))]
    pub dns_zones: Vec<String>,
}

/// RFC 2136 dynamic updates with a TSIG key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.tsigSecretRef)").message("rfc2136.tsigSecretRef is required: the Secret (name, namespace, key) holding the secret of the TSIG key, base64 as tsig-keygen writes it").field_path(".tsigSecretRef"))]
#[serde(rename_all = "camelCase")]
pub struct Rfc2136Solver {
    /// Address of the primary nameserver: `ip`, `ip:port` or `[ipv6]:port` (port 53 when
    /// absent). The operator also waits for this server to answer the record before it
    /// tells the CA.
    #[validate(length(min = 7, max = 47))]
    #[x_kube(validation = Rule::new(NAMESERVER_RULE).message("rfc2136.nameserver must be an IP address with an optional port, for example 10.0.0.53 or 10.0.0.53:5353 ([::1]:53 for IPv6); a host name is not accepted"))]
    pub nameserver: String,
    /// The zone updated, for example `region.se`.
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS_NAME_RULE).message(DNS_NAME_MESSAGE))]
    pub zone: String,
    /// Name of the TSIG key, as the nameserver knows it.
    #[validate(length(min = 1, max = 253))]
    pub tsig_key_name: String,
    /// TSIG algorithm: `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`.
    #[serde(default = "default_tsig_algorithm")]
    #[x_kube(validation = Rule::new("self in ['hmac-sha256', 'hmac-sha384', 'hmac-sha512']").message("rfc2136.tsigAlgorithm must be hmac-sha256, hmac-sha384 or hmac-sha512"))]
    #[validate(length(min = 1, max = 16))]
    pub tsig_algorithm: String,
    /// Secret with the TSIG secret, base64 as BIND writes it (`tsig-keygen`), under `key`
    /// (default `secret`). Required (a CEL rule, so that its absence is reported with
    /// this explanation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig_secret_ref: Option<SecretKeyRef>,
}

fn default_tsig_algorithm() -> String {
    "hmac-sha256".to_string()
}

/// Delegation to cert-manager.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertManagerIssuer {
    /// The cert-manager issuer that signs.
    pub issuer_ref: CertManagerIssuerRef,
}

/// A cert-manager issuer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertManagerIssuerRef {
    /// Name of the issuer.
    #[validate(length(min = 1, max = 253))]
    pub name: String,
    /// `ClusterIssuer` or `Issuer` (an `Issuer` must be in the certificate's namespace).
    pub kind: CertManagerIssuerKind,
}

/// Kind of cert-manager issuer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CertManagerIssuerKind {
    /// Cluster-scoped.
    ClusterIssuer,
    /// Namespaced, in the certificate's namespace.
    Issuer,
}

/// Certificates bought by hand.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManualPublicIssuer {
    /// Free text shown when a certificate is missing or due, for example which portal to
    /// buy it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 1024))]
    pub instructions: Option<String>,
}

/// Observed state of a PublicIssuer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicIssuerStatus {
    /// `Ready` says whether the issuer can issue, and if not, what to fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `ACME`, `CertManager` or `Manual`, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// URL of the ACME account in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_account_uri: Option<String>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 0, max = 9007199254740991i64))]
    pub observed_generation: Option<i64>,
}

impl PublicIssuerSpec {
    /// The source kind, as written to `status.source`.
    pub fn source(&self) -> &'static str {
        if self.acme.is_some() {
            "ACME"
        } else if self.cert_manager.is_some() {
            "CertManager"
        } else {
            "Manual"
        }
    }

    /// Whether the domain-validation gate applies (the default).
    pub fn domain_validation_required(&self) -> bool {
        self.domain_validation != Some(DomainValidationPolicy::Disabled)
    }
}

impl AcmeIssuer {
    /// The directory URL, Telia's by default.
    pub fn directory(&self) -> &str {
        self.server.as_deref().unwrap_or(TELIA_ACME_DIRECTORY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> PublicIssuerSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_to_telia_and_the_gate() {
        let s = spec(
            "acme:\n  privateKeySecretRef: {name: acme, namespace: ops}\norganizationNumber: 232100-0016\n",
        );
        assert_eq!(s.source(), "ACME");
        assert_eq!(
            s.acme.as_ref().unwrap().directory(),
            "https://acme.trust.telia.com/directory"
        );
        assert!(s.domain_validation_required());
        let s = spec("manual: {}\ndomainValidation: Disabled\n");
        assert_eq!(s.source(), "Manual");
        assert!(!s.domain_validation_required());
        let s = spec("certManager:\n  issuerRef: {name: ca, kind: ClusterIssuer}\n");
        assert_eq!(s.source(), "CertManager");
    }

    #[test]
    fn eab_key_defaults_to_secret() {
        let s = spec(
            "acme:\n  privateKeySecretRef: {name: a, namespace: b}\n  externalAccountBinding:\n    keyId: kid-1\n    keySecretRef: {name: eab, namespace: b}\n",
        );
        let eab = s.acme.unwrap().external_account_binding.unwrap();
        assert_eq!(eab.key_secret_ref.key, "secret");
    }
}
