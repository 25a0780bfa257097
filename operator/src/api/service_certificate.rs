//! `ServiceCertificate`: the certificate a team asks for.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    Condition, DNS1123_SUBDOMAIN_RULE, HSA_ID_MESSAGE, HSA_ID_RULE, OBJECT_NAME_MESSAGE,
};

/// A certificate a team needs, by purpose: `ServerToServer` certificates (mutual TLS
/// between systems) stay on SITHS; `UserFacing` certificates (browsers) must be publicly
/// trusted. The operator writes the certificate and key into `secretName`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "siths-operator.io",
    version = "v1alpha1",
    kind = "ServiceCertificate",
    namespaced,
    shortname = "scert",
    category = "siths",
    status = "ServiceCertificateStatus",
    printcolumn(json_path = ".spec.purpose", name = "Purpose", type_ = "string"),
    printcolumn(json_path = ".status.route", name = "Route", type_ = "string"),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        name = "Ready",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        name = "Reason",
        type_ = "string",
        priority = 1
    ),
    printcolumn(json_path = ".spec.secretName", name = "Secret", type_ = "string"),
    printcolumn(json_path = ".status.notAfter", name = "Expires", type_ = "string"),
    printcolumn(json_path = ".status.renewalTime", name = "Renewal", type_ = "string"),
    printcolumn(
        json_path = ".status.revision",
        name = "Revision",
        type_ = "integer",
        priority = 1
    )
)]
#[x_kube(validation = Rule::new("self.purpose != 'ServerToServer' || has(self.hsaId)").message("hsaId is required for purpose ServerToServer: national platforms read the caller's HSA-id from the client certificate (for example hsaId: SE2321000016-ABC1)"))]
#[x_kube(validation = Rule::new("self.purpose != 'UserFacing' || self.issuerRef.kind == 'PublicIssuer'").message("a UserFacing certificate must use a PublicIssuer: browsers stop trusting SITHS, so user-facing endpoints need a publicly trusted certificate").field_path(".issuerRef.kind"))]
#[x_kube(validation = Rule::new("self.purpose != 'ServerToServer' || self.issuerRef.kind == 'SithsIssuer'").message("a ServerToServer certificate must use a SithsIssuer: public TLS certificates no longer carry clientAuth, so mutual TLS between systems must stay on SITHS").field_path(".issuerRef.kind"))]
#[x_kube(validation = Rule::new("self.purpose == oldSelf.purpose").message("purpose cannot be changed; create a new ServiceCertificate for the other purpose"))]
#[x_kube(validation = Rule::new("!has(self.privateKey) || !has(self.privateKey.size) || (self.privateKey.algorithm == 'RSA' ? (self.privateKey.size in [2048, 3072] || (self.purpose == 'UserFacing' && self.privateKey.size == 4096)) : self.privateKey.size in [256, 384])").message("privateKey.size must be 2048 or 3072 for RSA (4096 too for a UserFacing certificate; SITHS takes 2048 or 3072), 256 or 384 for ECDSA").field_path(".privateKey.size"))]
#[serde(rename_all = "camelCase")]
pub struct ServiceCertificateSpec {
    /// `ServerToServer` (mutual TLS between systems: SITHS, serverAuth + clientAuth) or
    /// `UserFacing` (browsers: a publicly trusted certificate, serverAuth only). Cannot be
    /// changed.
    pub purpose: Purpose,
    /// DNS names of the certificate (1 to 100). The first is also the subject CN. Every name
    /// must be covered by a validated DomainValidation.
    #[schemars(schema_with = "super::common::dns_names_schema")]
    pub dns_names: Vec<String>,
    /// Name of the Secret (type kubernetes.io/tls) the certificate and key are written to,
    /// in the same namespace.
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS1123_SUBDOMAIN_RULE).message("secretName must be a valid Secret name: lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit (for example journal-api-tls)"))]
    pub secret_name: String,
    /// HSA-id of the function (written to the subject serialNumber). Required for
    /// `ServerToServer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new(HSA_ID_RULE).message(HSA_ID_MESSAGE))]
    pub hsa_id: Option<String>,
    /// The issuer: a `SithsIssuer` for `ServerToServer`, a `PublicIssuer` for `UserFacing`.
    pub issuer_ref: IssuerRef,
    /// The private key. Defaults: RSA 2048 for SITHS, ECDSA P-256 for public certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PrivateKeySpec>,
    /// How long before expiry renewal starts, as days (`30d`) or hours (`720h`). The operator
    /// starts at least the issuer's lead time plus a margin before expiry anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 2, max = 8))]
    #[x_kube(validation = Rule::new("self.matches('^[1-9][0-9]{0,4}(d|h)$')").message("renewBefore must be a number of days or hours, for example 30d or 720h"))]
    pub renew_before: Option<String>,
    /// Java key stores written into the Secret next to `tls.crt` and `tls.key`:
    /// `keystore.p12` and/or `keystore.jks` with the key and full chain, and with
    /// `truststore: true` also `truststore.p12` (and `truststore.jks`) holding the CA
    /// certificate. Rebuilt exactly when the certificate, the CA or a password changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystores: Option<Keystores>,
}

/// Java key stores of a certificate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.pkcs12) || has(self.jks)").message("keystores needs pkcs12, jks or both (for example keystores: {pkcs12: {passwordSecretRef: {name: journal-keystore-password}}})").field_path(".pkcs12"))]
#[serde(rename_all = "camelCase")]
pub struct Keystores {
    /// Write `keystore.p12` (PKCS#12, the Java default store type since Java 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs12: Option<Pkcs12Keystore>,
    /// Write `keystore.jks` (the older Java KeyStore format) for runtimes that need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jks: Option<JksKeystore>,
    /// Also write `truststore.p12` (and `truststore.jks` with `jks`) holding the CA
    /// certificate of the chain (`ca.crt`) as a trusted entry, with the same password.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truststore: bool,
}

/// A PKCS#12 key store.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pkcs12Keystore {
    /// The Secret (in the certificate's namespace) holding the store password. Label it
    /// `siths-operator.io/keystore-password: "true"` so a changed password rebuilds the
    /// stores at once (otherwise at the next periodic look).
    pub password_secret_ref: LocalSecretKeyRef,
    /// `Modern` (the default: PBES2 with AES-256-CBC and PBKDF2-HMAC-SHA256, SHA-256 MAC;
    /// read by Java 11.0.12+/17 and OpenSSL 3) or `Legacy` (3DES and a SHA-1 MAC, weaker,
    /// only for old Java 8 runtimes that cannot read the modern one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<KeystoreProfile>,
}

/// A JKS key store.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JksKeystore {
    /// The Secret (in the certificate's namespace) holding the store password; the key
    /// entry is protected with the same password, as `keytool` does.
    pub password_secret_ref: LocalSecretKeyRef,
}

/// Encryption profile of a PKCS#12 store.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum KeystoreProfile {
    /// PBES2/AES-256-CBC, PBKDF2-HMAC-SHA256, HMAC-SHA256.
    Modern,
    /// pbeWithSHAAnd3-KeyTripleDES-CBC, HMAC-SHA1. Weaker; only where asked.
    Legacy,
}

/// A key of a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalSecretKeyRef {
    /// Name of the Secret.
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS1123_SUBDOMAIN_RULE).message(OBJECT_NAME_MESSAGE))]
    pub name: String,
    /// Key in the Secret's data holding the password (UTF-8).
    #[serde(default = "default_password_key")]
    #[validate(length(min = 1, max = 253))]
    pub key: String,
}

fn default_password_key() -> String {
    "password".to_string()
}

/// Purpose of a certificate.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Purpose {
    /// Mutual TLS between systems; stays on SITHS.
    ServerToServer,
    /// Browsers and other user agents; must be publicly trusted.
    UserFacing,
}

/// Reference to a cluster-scoped issuer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("self == oldSelf || self.kind == oldSelf.kind").message("issuerRef.kind cannot be changed; create a new ServiceCertificate"))]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    /// `SithsIssuer` or `PublicIssuer`.
    pub kind: IssuerKind,
    /// Name of the issuer (cluster-scoped).
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS1123_SUBDOMAIN_RULE).message(OBJECT_NAME_MESSAGE))]
    pub name: String,
}

/// Kind of issuer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum IssuerKind {
    /// A SITHS connection.
    SithsIssuer,
    /// A publicly trusted CA (ACME, cert-manager, manual).
    PublicIssuer,
}

/// Private key parameters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivateKeySpec {
    /// `RSA` or `ECDSA`.
    pub algorithm: KeyAlgorithm,
    /// Key size: 2048 or 3072 for RSA; 256 or 384 for ECDSA. Defaults to 2048 / 256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 0, max = 4294967295u32))]
    pub size: Option<u32>,
    /// `Always` makes a new key for every revision (the default); `Never` reuses the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_policy: Option<RotationPolicy>,
}

/// Key algorithm.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum KeyAlgorithm {
    /// RSA.
    #[serde(rename = "RSA")]
    Rsa,
    /// ECDSA on a NIST curve.
    #[serde(rename = "ECDSA")]
    Ecdsa,
}

/// Key rotation policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RotationPolicy {
    /// A new key for every revision.
    Always,
    /// Keep the key across revisions.
    Never,
}

/// Observed state of a ServiceCertificate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCertificateStatus {
    /// `Ready`, `DomainValidated` and `Issuing`, each with a reason and a message that says
    /// what to do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Where the certificate comes from: `SITHS` or `Public`; `Refused` when the purpose
    /// and issuer do not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Start of validity of the current certificate (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// End of validity of the current certificate (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// When renewal of the current certificate starts (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_time: Option<String>,
    /// Serial number of the current certificate (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Issuer distinguished name of the current certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Revision of the current certificate; increases with every issuance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 0, max = 4294967295u32))]
    pub revision: Option<u32>,
    /// Name of the CertificateOrder in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_order: Option<String>,
    /// Failed issuance attempts since the last success (drives exponential backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 0, max = 4294967295u32))]
    pub failed_attempts: Option<u32>,
    /// Time of the last failed attempt (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<String>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 0, max = 9007199254740991i64))]
    pub observed_generation: Option<i64>,
    /// What the operator last verified in the Secret (SITHS route, certificates without key
    /// stores), so that a restarted operator need not read a Secret that has not changed
    /// since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_check: Option<SecretCheck>,
}

/// The Secret as the operator last verified it: the Secret's version, the certificate's
/// generation and the issuer it was checked against. While all three are what they were, the
/// conclusion (the revision in `status.revision`, renewed at `status.renewalTime`) holds
/// without reading the Secret again.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretCheck {
    /// The Secret's resourceVersion when it was verified (or written).
    pub secret_version: String,
    /// The certificate's generation then.
    #[validate(range(min = 0, max = 9007199254740991i64))]
    pub generation: i64,
    /// SHA-256 of the issuer as resolved then (its trust anchors, CA, subject fields and
    /// lead time): another value means the Secret is checked again.
    pub issuer_digest: String,
    /// When the revision in the Secret was issued (RFC 3339).
    pub issued_at: String,
}
