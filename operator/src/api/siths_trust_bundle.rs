//! `SithsTrustBundle`: SITHS trust installed explicitly in selected namespaces.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{
    common::{
        CONFIG_KEY_MESSAGE, CONFIG_KEY_RULE, Condition, ConfigMapKeyRef, DNS1123_SUBDOMAIN_RULE,
        NamespacedSecretKeyRef,
    },
    service_certificate::KeystoreProfile,
    siths_issuer::PinnedAnchors,
};

/// Distributes the SITHS CA certificates to every namespace a selector matches, as a
/// ConfigMap with `ca.crt`, so that server-to-server TLS keeps verifying once SITHS is no
/// longer inherited from the Microsoft root programme. Pinned sources are verified against
/// the fingerprints built into the operator; a mismatch stops the sync (`Synced=False`),
/// it never updates the targets.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "siths-operator.io",
    version = "v1alpha1",
    kind = "SithsTrustBundle",
    shortname = "stb",
    category = "siths",
    status = "SithsTrustBundleStatus",
    printcolumn(
        json_path = ".spec.target.configMapName",
        name = "ConfigMap",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Synced\")].status",
        name = "Synced",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".status.namespaces",
        name = "Namespaces",
        type_ = "integer"
    ),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Synced\")].reason",
        name = "Reason",
        type_ = "string",
        priority = 1
    )
)]
#[x_kube(validation = Rule::new("has(self.sources.production) || has(self.sources.test) || (has(self.sources.additional) && size(self.sources.additional) > 0)").message("name at least one source: sources.production, sources.test or sources.additional"))]
#[serde(rename_all = "camelCase")]
pub struct SithsTrustBundleSpec {
    /// Where the CA certificates come from.
    pub sources: TrustSources,
    /// Where they go.
    pub target: TrustTarget,
}

/// Sources of a trust bundle, written to `ca.crt` in this order: production, test,
/// additional.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustSources {
    /// The SITHS production CAs (SITHS e-id Root CA v2 and Function CA v1), from
    /// `configMap` or, when it is absent, the operator's `--siths-ca-file`; checked against
    /// the pinned fingerprints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<PinnedAnchors>,
    /// The SITHS test (pre-production) CAs, loaded and checked like `production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PinnedAnchors>,
    /// Further PEM CA certificates from ConfigMaps (a private CA, a test hierarchy). A
    /// certificate named like a pinned SITHS CA without its fingerprint is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[validate(length(max = 16))]
    pub additional: Vec<ConfigMapKeyRef>,
}

/// Target ConfigMaps of a trust bundle.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustTarget {
    /// Name of the ConfigMap written in each selected namespace; it holds `ca.crt` (PEM).
    #[serde(default = "default_config_map_name")]
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS1123_SUBDOMAIN_RULE).message("configMapName must be a valid ConfigMap name: lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit (for example siths-ca)"))]
    pub config_map_name: String,
    /// Namespaces that get the ConfigMap. An empty selector selects every namespace.
    #[schemars(schema_with = "super::common::label_selector_schema")]
    pub namespace_selector: LabelSelector,
    /// Also write a Java truststore into `binaryData` of each ConfigMap: every CA
    /// certificate of the bundle as a trusted-certificate entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truststore: Option<TrustStoreTarget>,
}

/// A Java truststore in the target ConfigMaps.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("!has(self.jksKey) || self.jksKey != self.key").message("jksKey must differ from key (for example key: truststore.p12, jksKey: truststore.jks)").field_path(".jksKey"))]
#[serde(rename_all = "camelCase")]
pub struct TrustStoreTarget {
    /// Key of the PKCS#12 truststore in `binaryData`.
    #[serde(default = "default_truststore_key")]
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(CONFIG_KEY_RULE).message(CONFIG_KEY_MESSAGE))]
    pub key: String,
    /// Also write a JKS truststore under this key (for example `truststore.jks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(CONFIG_KEY_RULE).message(CONFIG_KEY_MESSAGE))]
    pub jks_key: Option<String>,
    /// The Secret holding the store password. A truststore password protects nothing
    /// secret (it only guards integrity), so without it the Java default `changeit` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<NamespacedSecretKeyRef>,
    /// `Modern` (default) or `Legacy` (3DES and SHA-1, for old Java 8 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<KeystoreProfile>,
}

fn default_truststore_key() -> String {
    "truststore.p12".to_string()
}

/// The password of a truststore without `passwordSecretRef`: the Java default.
pub const DEFAULT_TRUSTSTORE_PASSWORD: &str = "changeit";

fn default_config_map_name() -> String {
    "siths-ca".to_string()
}

/// Observed state of a SithsTrustBundle.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SithsTrustBundleStatus {
    /// `Synced`: whether every selected namespace holds the current bundle, and if not why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Number of namespaces holding the bundle.
    #[serde(default)]
    #[validate(range(min = 0, max = 4294967295u32))]
    pub namespaces: u32,
    /// SHA-256 fingerprints of the CA certificates in the bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<String>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 0, max = 9007199254740991i64))]
    pub observed_generation: Option<i64>,
}
