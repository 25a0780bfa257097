//! Bad input is rejected at admission with a message a person can act on. The cases here
//! are the table in `docs/admission-errors.md`; the test fails if the two drift apart.

use std::time::Duration;

use anyhow::{Result, bail};
use kube::{
    Api, Client,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind},
};
use siths_operator::api::SithsIssuer;

/// One invalid object: a create (or, with `update`, a valid create followed by this change).
struct Case {
    what: &'static str,
    kind: &'static str,
    body: &'static str,
    update: Option<&'static str>,
    message: &'static str,
}

const CERT_OK: &str = r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a-tls","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#;
const ISSUER_OK: &str = r#"{"organization":{"name":"Region","organizationNumber":"232100-0016"},"connection":{"type":"Direct"},"environment":"Test","backend":{"manual":{}}}"#;

const CASES: &[Case] = &[
    Case {
        what: "UserFacing certificate on a SithsIssuer",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"UserFacing","dnsNames":["www.region.se"],"secretName":"w","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "a UserFacing certificate must use a PublicIssuer",
    },
    Case {
        what: "ServerToServer certificate on a PublicIssuer",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"PublicIssuer","name":"telia"}}"#,
        update: None,
        message: "a ServerToServer certificate must use a SithsIssuer",
    },
    Case {
        what: "ServerToServer without hsaId",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "hsaId is required for purpose ServerToServer",
    },
    Case {
        what: "HSA-id with å, ä, ö",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-ÅÄÖ","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "hsaId must look like SE2321000016-ABC1",
    },
    Case {
        what: "HSA-id longer than 31 characters",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-ABCDEFGHIJKLMNOPQRS","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "may not be more than 31 bytes",
    },
    Case {
        what: "uppercase DNS name",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["Api.Region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "must be a lowercase DNS name",
    },
    Case {
        what: "DNS name with a trailing dot",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["api.region.se."],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "no trailing dot",
    },
    Case {
        what: "wildcard in the middle",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["api.*.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "a wildcard is allowed only as the whole leftmost label",
    },
    Case {
        what: "non-ASCII (IDN) name not in punycode",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["vårdcentral.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "punycode (xn--)",
    },
    Case {
        what: "an IP address as a DNS name",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["10.0.0.1"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "an IP address is not a DNS name",
    },
    Case {
        what: "no DNS names",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":[],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "should have at least 1 items",
    },
    Case {
        what: "the same DNS name twice",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se","a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "Duplicate value",
    },
    Case {
        what: "RSA key of 4096 bits",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"},"privateKey":{"algorithm":"RSA","size":4096}}"#,
        update: None,
        message: "privateKey.size must be 2048 or 3072 for RSA",
    },
    Case {
        what: "renewBefore in words",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"a","issuerRef":{"kind":"SithsIssuer","name":"region"},"renewBefore":"30 days"}"#,
        update: None,
        message: "renewBefore must be a number of days or hours",
    },
    Case {
        what: "invalid secretName",
        kind: "ServiceCertificate",
        body: r#"{"purpose":"ServerToServer","hsaId":"SE2321000016-A1","dnsNames":["a.region.se"],"secretName":"My_Secret","issuerRef":{"kind":"SithsIssuer","name":"region"}}"#,
        update: None,
        message: "secretName must be a valid Secret name",
    },
    Case {
        what: "purpose changed after creation",
        kind: "ServiceCertificate",
        body: CERT_OK,
        update: Some(
            r#"{"purpose":"UserFacing","issuerRef":{"kind":"PublicIssuer","name":"telia"}}"#,
        ),
        message: "purpose cannot be changed",
    },
    Case {
        what: "localCA backend on a Production issuer",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"232100-0016"},"connection":{"type":"Direct"},"environment":"Production","backend":{"localCA":{"secretRef":{"name":"ca","namespace":"default"}}}}"#,
        update: None,
        message: "backend.localCA is for test and development clusters only",
    },
    Case {
        what: "two backends at once",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"232100-0016"},"connection":{"type":"Direct"},"environment":"Test","backend":{"manual":{},"localCA":{"secretRef":{"name":"ca","namespace":"default"}}}}"#,
        update: None,
        message: "set exactly one of backend.manual or backend.localCA",
    },
    Case {
        what: "no backend",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"232100-0016"},"connection":{"type":"Direct"},"environment":"Test","backend":{}}"#,
        update: None,
        message: "set exactly one of backend.manual or backend.localCA",
    },
    Case {
        what: "ThirdParty connection without an agent",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Vårdbolaget AB","organizationNumber":"556559-4230"},"connection":{"type":"ThirdParty"},"environment":"Test","backend":{"manual":{}}}"#,
        update: None,
        message: "connection.agent is required for type ThirdParty",
    },
    Case {
        what: "organisation number without hyphen",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"23210000160"},"connection":{"type":"Direct"},"environment":"Test","backend":{"manual":{}}}"#,
        update: None,
        message: "organisation number must be written NNNNNN-NNNN",
    },
    Case {
        what: "organisation number with third and fourth digits below 20",
        kind: "SithsIssuer",
        body: r#"{"organization":{"name":"Region","organizationNumber":"231000-0016"},"connection":{"type":"Direct"},"environment":"Test","backend":{"manual":{}}}"#,
        update: None,
        message: "third and fourth digits together must be 20 or more",
    },
    Case {
        what: "environment changed after creation",
        kind: "SithsIssuer",
        body: ISSUER_OK,
        update: Some(r#"{"environment":"Production"}"#),
        message: "environment cannot be changed after creation",
    },
    Case {
        what: "wildcard as the validated domain",
        kind: "DomainValidation",
        body: r#"{"domain":"*.region.se","owner":{"name":"Region","organizationNumber":"232100-0016"},"validatedFor":"232100-0016","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10"},"validUntil":"2030-01-01"}"#,
        update: None,
        message: "domain must not be a wildcard; set includeSubdomains: true instead",
    },
    Case {
        what: "validUntil not written YYYY-MM-DD",
        kind: "DomainValidation",
        body: r#"{"domain":"region.se","owner":{"name":"Region","organizationNumber":"232100-0016"},"validatedFor":"232100-0016","evidence":{"formReference":"DV-1","submittedBy":"Anna","approvedOn":"2026-01-10"},"validUntil":"31/12/2030"}"#,
        update: None,
        message: "must be a date written YYYY-MM-DD",
    },
    Case {
        what: "the CSR of an order changed",
        kind: "CertificateOrder",
        body: r#"{"certificateName":"a","revision":1,"issuerName":"region","dnsNames":["a.region.se"],"subject":"CN=a.region.se","csr":"-----BEGIN CERTIFICATE REQUEST-----"}"#,
        update: Some(r#"{"csr":"something else"}"#),
        message: "the request part of an order (certificateName, revision, issuerName, csr, dnsNames) cannot be changed",
    },
    Case {
        what: "PublicIssuer with two sources",
        kind: "PublicIssuer",
        body: r#"{"manual":{},"certManager":{"issuerRef":{"name":"ca","kind":"ClusterIssuer"}},"organizationNumber":"232100-0016"}"#,
        update: None,
        message: "set exactly one of acme, certManager or manual",
    },
    Case {
        what: "PublicIssuer without organizationNumber while the gate is on",
        kind: "PublicIssuer",
        body: r#"{"manual":{}}"#,
        update: None,
        message: "organizationNumber is required while domainValidation is Required",
    },
    Case {
        what: "ACME directory over plain http",
        kind: "PublicIssuer",
        body: r#"{"acme":{"server":"http://acme.example/directory","privateKeySecretRef":{"name":"a","namespace":"b"}},"domainValidation":"Disabled"}"#,
        update: None,
        message: "acme.server must be an https:// URL",
    },
    Case {
        what: "ACME contact that is not an email address",
        kind: "PublicIssuer",
        body: r#"{"acme":{"email":"pki at region.se","privateKeySecretRef":{"name":"a","namespace":"b"}},"domainValidation":"Disabled"}"#,
        update: None,
        message: "acme.email must be an email address",
    },
];

fn api(client: &Client, kind: &str, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("siths-operator.io", "v1alpha1", kind);
    let ar = ApiResource::from_gvk(&gvk);
    match kind {
        "SithsIssuer" | "DomainValidation" | "PublicIssuer" => Api::all_with(client.clone(), &ar),
        _ => Api::namespaced_with(client.clone(), ns, &ar),
    }
}

fn object(kind: &str, name: &str, spec: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "siths-operator.io/v1alpha1",
        "kind": kind,
        "metadata": { "name": name },
        "spec": serde_json::from_str::<serde_json::Value>(spec)?,
    }))?)
}

#[tokio::test]
async fn invalid_objects_are_rejected_at_admission_with_an_actionable_message() -> Result<()> {
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, "admission").await?;
    let docs = std::fs::read_to_string(
        e2e::controlplane::workspace_root().join("docs/admission-errors.md"),
    )?;
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let api = api(&client, case.kind, &ns);
        let name = format!("{ns}-case-{i}");
        let result = match case.update {
            None => api
                .create(
                    &PostParams::default(),
                    &object(case.kind, &name, case.body)?,
                )
                .await
                .map(|_| ()),
            Some(change) => {
                api.create(
                    &PostParams::default(),
                    &object(case.kind, &name, case.body)?,
                )
                .await?;
                let patch = serde_json::json!({ "spec": serde_json::from_str::<serde_json::Value>(change)? });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => failures.push(format!("{}: accepted", case.what)),
            Err(kube::Error::Api(status)) => {
                if status.code != 422 || !status.message.contains(case.message) {
                    failures.push(format!(
                        "{}: got {} {:?}, expected a message containing {:?}",
                        case.what, status.code, status.message, case.message
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.what)),
        }
        if !docs.contains(case.message) || !docs.contains(case.what) {
            failures.push(format!(
                "{}: missing from docs/admission-errors.md",
                case.what
            ));
        }
    }
    assert!(CASES.len() >= 15);
    if !failures.is_empty() {
        bail!(
            "{} of {} cases failed:\n{}",
            failures.len(),
            CASES.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

/// What CEL cannot see (the Luhn check digit) becomes a condition with a clear reason.
#[tokio::test]
async fn a_wrong_organisation_number_check_digit_is_a_condition() -> Result<()> {
    let _ = e2e::k8s::shared_operator();
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, "luhn").await?;
    let api: Api<SithsIssuer> = Api::all(client.clone());
    let name = format!("{ns}-luhn");
    e2e::k8s::apply(
        &api,
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsIssuer
metadata: {{ name: {name} }}
spec:
  organization: {{ name: Region, organizationNumber: "232100-0017" }}
  connection: {{ type: Direct }}
  environment: Test
  backend: {{ manual: {{}} }}
"#
        ),
    )
    .await?;
    let issuer = e2e::k8s::wait_condition(
        &api,
        &name,
        "Ready",
        "False",
        Some("InvalidOrganizationNumber"),
        Duration::from_secs(60),
    )
    .await?;
    let (_, _, message) = e2e::k8s::condition(&issuer, "Ready").unwrap_or_default();
    assert!(message.contains("check digit"), "{message}");
    Ok(())
}
