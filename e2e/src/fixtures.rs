//! The objects most tests start from: a Test issuer with a local CA, a domain validation
//! for Region Exempel, server-to-server certificates.

use anyhow::Result;
use kube::{Api, Client};
use siths_operator::api::{DomainValidation, ServiceCertificate, SithsIssuer};

use crate::k8s::apply;

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
