//! The objects most tests start from: a Test issuer with a local CA, a domain validation
//! for Region Exempel, server-to-server certificates.

use anyhow::Result;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client, api::PostParams};
use siths_operator::api::{DomainValidation, ServiceCertificate, SithsIssuer};

use crate::{k8s::apply, pebble::Pebble};

/// Organisation number of Region Exempel, the organisation of the fixtures.
pub const REGION: &str = "232100-0016";

/// A `Test` SithsIssuer `name` for Region Exempel whose local CA is generated in Secret
/// `ca` of `ns`; `extra` is appended to the spec (indented YAML lines).
pub async fn local_ca_issuer(client: &Client, name: &str, ns: &str, extra: &str) -> Result<()> {
    apply(
        &Api::<SithsIssuer>::all(client.clone()),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsIssuer
metadata: {{ name: {name} }}
spec:
  organization: {{ name: Region Exempel, organizationNumber: "{REGION}", locality: Stockholm }}
  connection: {{ type: Direct }}
  environment: Test
  backend: {{ localCA: {{ secretRef: {{ name: ca, namespace: {ns} }}, generate: true }} }}
{extra}
"#
        ),
    )
    .await?;
    Ok(())
}

/// A DomainValidation `name` of Region Exempel for `domain` and its subdomains, valid to 2030.
pub async fn region_validation(client: &Client, name: &str, domain: &str) -> Result<()> {
    apply(
        &Api::<DomainValidation>::all(client.clone()),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: DomainValidation
metadata: {{ name: {name} }}
spec:
  domain: {domain}
  includeSubdomains: true
  owner: {{ name: Region Exempel, organizationNumber: "{REGION}" }}
  validatedFor: "{REGION}"
  evidence: {{ formReference: DV-1, submittedBy: Anna, approvedOn: "2026-01-10" }}
  validUntil: "2030-12-31"
"#
        ),
    )
    .await?;
    Ok(())
}

/// The usual start: a local-CA issuer and a validation of `<ns>.region.se`, both named `ns`.
pub async fn local_ca_scenario(client: &Client, ns: &str) -> Result<()> {
    local_ca_issuer(client, ns, ns, "").await?;
    region_validation(client, ns, &format!("{ns}.region.se")).await
}

/// A ServerToServer ServiceCertificate `name` in `ns` for `dns_name` on `issuer`, written to
/// Secret `secret`.
pub async fn server_certificate(
    client: &Client,
    ns: &str,
    name: &str,
    dns_name: &str,
    hsa_id: &str,
    issuer: &str,
    secret: &str,
) -> Result<()> {
    apply(
        &Api::<ServiceCertificate>::namespaced(client.clone(), ns),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: {name} }}
spec:
  purpose: ServerToServer
  hsaId: {hsa_id}
  dnsNames: [{dns_name}]
  secretName: {secret}
  issuerRef: {{ kind: SithsIssuer, name: {issuer} }}
"#
        ),
    )
    .await?;
    Ok(())
}

/// What a PublicIssuer on `pebble` reads in `ns`: Secret `eab` with the EAB key `hmac`
/// (none when `None`), and ConfigMaps `pebble-https` (the CA of Pebble's HTTPS endpoint)
/// and `pebble-roots` (the roots it issues under), both with key `ca.crt`.
pub async fn pebble_objects(
    client: &Client,
    ns: &str,
    pebble: &Pebble,
    hmac: Option<&str>,
) -> Result<()> {
    let pp = PostParams::default();
    if let Some(hmac) = hmac {
        let eab: Secret = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "eab" }, "stringData": { "secret": hmac },
        }))?;
        Api::<Secret>::namespaced(client.clone(), ns)
            .create(&pp, &eab)
            .await?;
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    for (name, pem) in [
        ("pebble-https", pebble.server_ca_pem.clone()),
        ("pebble-roots", pebble.root_pem().await?),
    ] {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name }, "data": { "ca.crt": pem },
        }))?;
        cms.create(&pp, &cm).await?;
    }
    Ok(())
}

/// The YAML of PublicIssuer `name` ordering from `pebble` with the objects of
/// [`pebble_objects`] in `ns`, for Region Exempel's validations.
pub fn pebble_issuer_yaml(name: &str, ns: &str, pebble: &Pebble) -> String {
    format!(
        r#"apiVersion: siths-operator.io/v1alpha1
kind: PublicIssuer
metadata: {{ name: {name} }}
spec:
  acme:
    server: {dir}
    email: pki@region.example
    externalAccountBinding: {{ keyId: {kid}, keySecretRef: {{ name: eab, namespace: {ns} }} }}
    privateKeySecretRef: {{ name: acme-account, namespace: {ns} }}
    serverCa: {{ name: pebble-https, namespace: {ns}, key: ca.crt }}
  additionalTrustAnchors: {{ name: pebble-roots, namespace: {ns}, key: ca.crt }}
  organizationNumber: "{REGION}"
"#,
        dir = pebble.directory_url,
        kid = pebble.eab_kid,
    )
}
