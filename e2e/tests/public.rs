//! The public route against the real apiserver and operator: a `manual` PublicIssuer (a
//! person places a bought certificate), SITHS refused on the route, a test root configured
//! on the issuer accepted, and a Secret that back-end traffic still uses never overwritten.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Result;
use e2e::{
    fixtures::{REGION, local_ca_issuer, region_validation, server_certificate},
    k8s::{apply, shared_operator, wait_condition},
};
use jiff::Timestamp;
use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Event, Secret, ServiceAccount},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use siths_operator::{
    api::{PublicIssuer, ServiceCertificate},
    pki::{CertificateProfile, KeySpec, LocalCa, LocalCaOptions, PrivateKey, Usage, chain_to_pem},
};

const WAIT: Duration = Duration::from_secs(90);

fn ca(common_name: &str) -> LocalCa {
    LocalCa::generate(&LocalCaOptions {
        common_name: common_name.into(),
        organization: "Test".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: Some(format!("{common_name} issuing")),
        not_before: Timestamp::now() - jiff::SignedDuration::from_hours(24),
        validity: Duration::from_secs(3650 * 86_400),
    })
    .expect("test CA")
}

/// A user-facing certificate for `names` with `key`, signed by `ca`: (tls.crt, tls.key).
fn user_facing(ca: &LocalCa, names: &[String], key: &PrivateKey) -> (String, String) {
    let profile = CertificateProfile {
        dns_names: names.to_vec(),
        hsa_id: None,
        organization: String::new(),
        locality: None,
        usage: Usage::UserFacing,
    };
    let chain = ca
        .sign(
            &profile,
            &key.public_key_der(),
            Timestamp::now(),
            Duration::from_secs(90 * 86_400),
            &siths_operator::pki::random_serial().expect("serial"),
        )
        .expect("sign");
    (chain_to_pem(&chain), key.to_pem())
}

fn tls_secret(name: &str, crt: &str, key: &str) -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_string(), ByteString(crt.as_bytes().to_vec())),
            ("tls.key".to_string(), ByteString(key.as_bytes().to_vec())),
        ])),
        ..Default::default()
    }
}

async fn put_secret(secrets: &Api<Secret>, secret: &Secret) -> Result<()> {
    let mut value = serde_json::to_value(secret)?;
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    secrets
        .patch(
            &secret.name_any(),
            &PatchParams::apply("person").force(),
            &Patch::Apply(&value),
        )
        .await?;
    Ok(())
}

async fn manual_issuer(
    client: &kube::Client,
    name: &str,
    roots: Option<(&str, &str)>,
) -> Result<()> {
    let anchors = roots
        .map(|(ns, cm)| {
            format!("  additionalTrustAnchors: {{ name: {cm}, namespace: {ns}, key: ca.crt }}\n")
        })
        .unwrap_or_default();
    apply(
        &Api::<PublicIssuer>::all(client.clone()),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: PublicIssuer
metadata: {{ name: {name} }}
spec:
  manual: {{ instructions: "Buy it in the CA's portal" }}
  organizationNumber: "{REGION}"
{anchors}"#
        ),
    )
    .await?;
    Ok(())
}

async fn user_facing_certificate(
    certs: &Api<ServiceCertificate>,
    name: &str,
    names: &[String],
    secret: &str,
    issuer: &str,
) -> Result<()> {
    apply(
        certs,
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: {name} }}
spec:
  purpose: UserFacing
  dnsNames: [{}]
  secretName: {secret}
  issuerRef: {{ kind: PublicIssuer, name: {issuer} }}
"#,
            names.join(", ")
        ),
    )
    .await?;
    Ok(())
}

fn message(cert: &ServiceCertificate) -> String {
    e2e::k8s::condition(cert, "Ready")
        .map(|(_, _, m)| m)
        .unwrap_or_default()
}

#[tokio::test]
async fn manual_public_issuer_refuses_siths_and_accepts_a_configured_test_root() -> Result<()> {
    let _ = shared_operator();
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, "public").await?;
    region_validation(&client, &ns, &format!("{ns}.region.se")).await?;
    let public_root = ca("Public Test Root");
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some("public-roots".into()),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([("ca.crt".into(), public_root.root_pem())])),
                ..Default::default()
            },
        )
        .await?;
    let issuer = format!("{ns}-manual");
    manual_issuer(&client, &issuer, Some((&ns, "public-roots"))).await?;
    let issuers: Api<PublicIssuer> = Api::all(client.clone());
    let i = wait_condition(
        &issuers,
        &issuer,
        "Ready",
        "True",
        Some("ManualReady"),
        WAIT,
    )
    .await?;
    assert_eq!(i.status.and_then(|s| s.source).as_deref(), Some("Manual"));
    // SITHS is never an additional public root: that issuer is not Ready.
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some("siths-roots".into()),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([(
                    "ca.crt".into(),
                    ca("SITHS e-id Root CA v2").root_pem(),
                )])),
                ..Default::default()
            },
        )
        .await?;
    let wrong = format!("{ns}-wrong");
    manual_issuer(&client, &wrong, Some((&ns, "siths-roots"))).await?;
    let i = wait_condition(
        &issuers,
        &wrong,
        "Ready",
        "False",
        Some("TrustAnchorsInvalid"),
        WAIT,
    )
    .await?;
    assert!(
        e2e::k8s::condition(&i, "Ready")
            .is_some_and(|(_, _, m)| m.contains("never a public trust anchor")),
        "{:?}",
        i.status
    );
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    let names = vec![format!("portal.{ns}.region.se")];
    user_facing_certificate(&certs, "portal", &names, "portal-tls", &issuer).await?;

    // Nothing placed yet: the person is told what to do.
    let c = wait_condition(
        &certs,
        "portal",
        "Ready",
        "False",
        Some("AwaitingCertificate"),
        WAIT,
    )
    .await?;
    assert!(
        message(&c).contains("portal-tls") && message(&c).contains("portal"),
        "{}",
        message(&c)
    );
    assert_eq!(
        c.status.as_ref().and_then(|s| s.route.as_deref()),
        Some("Public")
    );

    // A SITHS-chained certificate is refused on this route, and the Secret is left as is.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let key = KeySpec::ECDSA_P256.generate()?;
    let siths = ca("SITHS e-id Root CA v2");
    let (crt, pem_key) = user_facing(&siths, &names, &key);
    put_secret(&secrets, &tls_secret("portal-tls", &crt, &pem_key)).await?;
    let c = wait_condition(
        &certs,
        "portal",
        "Ready",
        "False",
        Some("CertificateRejected"),
        WAIT,
    )
    .await?;
    assert!(message(&c).contains("ChainsToSiths"), "{}", message(&c));
    assert!(message(&c).contains("browsers"), "{}", message(&c));
    let placed = secrets.get("portal-tls").await?;
    assert_eq!(
        placed
            .data
            .as_ref()
            .and_then(|d| d.get("tls.crt"))
            .map(|b| b.0.clone()),
        Some(crt.into_bytes())
    );

    // A certificate from a root the issuer trusts (standing in for a public CA) is Ready.
    let (crt, pem_key) = user_facing(&public_root, &names, &key);
    put_secret(&secrets, &tls_secret("portal-tls", &crt, &pem_key)).await?;
    let c = wait_condition(&certs, "portal", "Ready", "True", Some("Verified"), WAIT).await?;
    let st = c.status.clone().unwrap_or_default();
    assert!(
        st.issuer
            .as_deref()
            .unwrap_or_default()
            .contains("Public Test Root issuing"),
        "{st:?}"
    );
    assert!(
        st.renewal_time.is_some() && st.not_after.is_some(),
        "{st:?}"
    );
    // The content is the person's: only our labels were added.
    let after = secrets.get("portal-tls").await?;
    assert_eq!(
        after
            .data
            .as_ref()
            .and_then(|d| d.get("tls.crt"))
            .map(|b| b.0.clone()),
        Some(crt.into_bytes())
    );
    assert_eq!(
        after
            .labels()
            .get("siths-operator.io/certificate")
            .map(String::as_str),
        Some("portal")
    );

    // A certificate for a name no domain validation covers is never Ready.
    let stray = vec!["portal.elsewhere.se".to_string()];
    user_facing_certificate(&certs, "stray", &stray, "stray-tls", &issuer).await?;
    wait_condition(
        &certs,
        "stray",
        "Ready",
        "False",
        Some("DomainNotValidated"),
        WAIT,
    )
    .await?;

    // The events told the person once, not on every pass.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let waiting: Vec<Event> = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("AwaitingCertificate"))
        .collect();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(waiting[0].count.unwrap_or(1) <= 1, "{waiting:?}");
    Ok(())
}

#[tokio::test]
async fn a_secret_the_back_end_still_uses_is_never_overwritten() -> Result<()> {
    let _ = shared_operator();
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, "shared").await?;
    local_ca_issuer(&client, &ns, &ns, "").await?;
    region_validation(&client, &ns, &format!("{ns}.region.se")).await?;
    let issuer = format!("{ns}-manual");
    manual_issuer(&client, &issuer, None).await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);

    // 1. A ServerToServer certificate writes Secret api-tls; a UserFacing one for the
    //    same Secret reports SharedWithBackend and the Secret keeps its SITHS certificate.
    let api_name = format!("api.{ns}.region.se");
    server_certificate(
        &client,
        &ns,
        "api",
        &api_name,
        "SE2321000016-API1",
        &ns,
        "api-tls",
    )
    .await?;
    wait_condition(&certs, "api", "Ready", "True", None, WAIT).await?;
    let before = secrets.get("api-tls").await?;
    user_facing_certificate(
        &certs,
        "api-web",
        std::slice::from_ref(&api_name),
        "api-tls",
        &issuer,
    )
    .await?;
    let c = wait_condition(
        &certs,
        "api-web",
        "Ready",
        "False",
        Some("SharedWithBackend"),
        WAIT,
    )
    .await?;
    assert!(message(&c).contains("own Secret"), "{}", message(&c));
    assert!(message(&c).contains("\"api\""), "{}", message(&c));
    let after = secrets.get("api-tls").await?;
    assert_eq!(before.data, after.data);
    assert_eq!(before.resource_version(), after.resource_version());

    // 2. An unmanaged Secret with a SITHS certificate that a pod mounts: the same.
    let portal = format!("portal.{ns}.region.se");
    let key = KeySpec::ECDSA_P256.generate()?;
    let (crt, pem_key) = user_facing(
        &ca("SITHS e-id Function CA v1"),
        std::slice::from_ref(&portal),
        &key,
    );
    put_secret(&secrets, &tls_secret("portal-tls", &crt, &pem_key)).await?;
    // No service-account controller runs here: the pod's account is created by hand.
    apply(
        &Api::<ServiceAccount>::namespaced(client.clone(), &ns),
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default}\n",
    )
    .await?;
    apply(
        &Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &ns),
        r#"
apiVersion: v1
kind: Pod
metadata: { name: backend }
spec:
  automountServiceAccountToken: false
  containers: [{ name: app, image: registry.invalid/app:1 }]
  volumes: [{ name: tls, secret: { secretName: portal-tls } }]
"#,
    )
    .await?;
    let before = secrets.get("portal-tls").await?;
    user_facing_certificate(
        &certs,
        "portal",
        std::slice::from_ref(&portal),
        "portal-tls",
        &issuer,
    )
    .await?;
    let c = wait_condition(
        &certs,
        "portal",
        "Ready",
        "False",
        Some("SharedWithBackend"),
        WAIT,
    )
    .await?;
    assert!(
        message(&c).contains("pod backend mounts it"),
        "{}",
        message(&c)
    );
    let after = secrets.get("portal-tls").await?;
    assert_eq!(before.data, after.data);
    assert_eq!(before.resource_version(), after.resource_version());
    Ok(())
}
