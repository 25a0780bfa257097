//! The public route against the real apiserver and operator: a `manual` PublicIssuer (a
//! person places a bought certificate), SITHS refused on the route, a test root configured
//! on the issuer accepted, and a Secret that back-end traffic still uses never overwritten.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Result;
use e2e::{
    fixtures::{REGION, local_ca_issuer, region_validation, server_certificate},
    k8s::{apply, condition, shared_operator, wait_condition},
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
    ca_since(common_name, 1)
}

/// A test CA valid since `days` ago.
fn ca_since(common_name: &str, days: i64) -> LocalCa {
    LocalCa::generate(&LocalCaOptions {
        common_name: common_name.into(),
        organization: "Test".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: Some(format!("{common_name} issuing")),
        not_before: Timestamp::now() - jiff::SignedDuration::from_hours(24 * days),
        validity: Duration::from_secs(3650 * 86_400),
    })
    .expect("test CA")
}

/// A user-facing certificate for `names` with `key`, signed by `ca`: (tls.crt, tls.key).
fn user_facing(ca: &LocalCa, names: &[String], key: &PrivateKey) -> (String, String) {
    user_facing_at(ca, names, key, Timestamp::now(), 90)
}

/// As [`user_facing`], valid for `days` from `not_before`.
fn user_facing_at(
    ca: &LocalCa,
    names: &[String],
    key: &PrivateKey,
    not_before: Timestamp,
    days: u64,
) -> (String, String) {
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
            not_before,
            Duration::from_secs(days * 86_400),
            &siths_operator::pki::random_serial().expect("serial"),
        )
        .expect("sign");
    (chain_to_pem(&chain), key.to_pem())
}

fn tls_secret(name: &str, crt: &str, key: &str) -> Secret {
    let mut secret = raw_secret(name, Some(crt.as_bytes()), Some(key.as_bytes()));
    secret.type_ = Some("kubernetes.io/tls".into());
    secret
}

/// An Opaque Secret with exactly the given bytes under tls.crt and tls.key (a key left
/// out is absent, which the kubernetes.io/tls type would not allow).
fn raw_secret(name: &str, crt: Option<&[u8]>, key: Option<&[u8]>) -> Secret {
    let data = [("tls.crt", crt), ("tls.key", key)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), ByteString(v.to_vec()))))
        .collect();
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
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
    assert_eq!(e2e::k8s::times_announced(&waiting[0]), 1, "{waiting:?}");
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

/// Broken and hostile Secrets placed on the manual public route: each is refused with its
/// reason in the condition, the Secret keeps exactly what the person put there (the
/// operator never writes its content), no message echoes the key, and every refusal is
/// announced once.
#[tokio::test]
async fn broken_secrets_on_the_manual_public_route_are_refused_and_never_written() -> Result<()> {
    let _ = shared_operator();
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, "pubbad").await?;
    region_validation(&client, &ns, &format!("{ns}.region.se")).await?;
    let public_root = ca_since("Public Test Root", 200);
    apply(
        &Api::<ConfigMap>::namespaced(client.clone(), &ns),
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: public-roots }}\ndata:\n  ca.crt: |\n{}",
            public_root
                .root_pem()
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        ),
    )
    .await?;
    let issuer = format!("{ns}-manual");
    manual_issuer(&client, &issuer, Some((&ns, "public-roots"))).await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let names = vec![format!("shop.{ns}.region.se")];

    // A reference to a PublicIssuer that does not exist.
    user_facing_certificate(
        &certs,
        "orphan",
        &names,
        "orphan-tls",
        &format!("{ns}-none"),
    )
    .await?;
    let c = wait_condition(
        &certs,
        "orphan",
        "Ready",
        "False",
        Some("IssuerNotFound"),
        WAIT,
    )
    .await?;
    assert!(message(&c).contains("issuerRef.name"), "{}", message(&c));
    // Creating the issuer alone brings the certificate on: the issuer cache is filled by
    // the watch that maps the new issuer to its certificates (a missing issuer is otherwise
    // looked up again after five minutes). Wait first for the passes the certificate's own
    // status write starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    manual_issuer(&client, &format!("{ns}-none"), Some((&ns, "public-roots"))).await?;
    let reason = e2e::eventually(Duration::from_secs(60), "orphan to find its issuer", || {
        let certs = certs.clone();
        async move {
            let c = certs.get("orphan").await?;
            Ok(condition(&c, "Ready").filter(|(_, reason, _)| reason != "IssuerNotFound"))
        }
    })
    .await?;
    assert_eq!(reason.0, "False", "nothing was imported yet: {reason:?}");
    certs.delete("orphan", &Default::default()).await?;

    // The right certificate first, so the Secret carries the operator's labels and every
    // later change reaches it through the Secret watch.
    user_facing_certificate(&certs, "shop", &names, "shop-tls", &issuer).await?;
    let key = KeySpec::ECDSA_P256.generate()?;
    let (good_crt, good_key) = user_facing(&public_root, &names, &key);
    // Places the right certificate and waits until it is verified.
    let place_good = async || -> Result<()> {
        put_secret(
            &secrets,
            &raw_secret(
                "shop-tls",
                Some(good_crt.as_bytes()),
                Some(good_key.as_bytes()),
            ),
        )
        .await?;
        wait_condition(&certs, "shop", "Ready", "True", Some("Verified"), WAIT).await?;
        Ok(())
    };
    place_good().await?;

    let now = Timestamp::now();
    let other_key = KeySpec::ECDSA_P256.generate()?;
    let (other_key_crt, _) = user_facing(&public_root, &names, &other_key);
    let (wrong_names_crt, _) = user_facing(&public_root, &[format!("evil.{ns}.region.se")], &key);
    let (extra_name_crt, _) = user_facing(
        &public_root,
        &[names[0].clone(), format!("extra.{ns}.region.se")],
        &key,
    );
    let (expired_crt, _) = user_facing_at(
        &public_root,
        &names,
        &key,
        now - jiff::SignedDuration::from_hours(24 * 100),
        90,
    );
    let (future_crt, _) = user_facing_at(
        &public_root,
        &names,
        &key,
        now + jiff::SignedDuration::from_hours(24 * 10),
        90,
    );
    let (untrusted_crt, _) = user_facing(&ca("Unknown Root"), &names, &key);
    let (siths_crt, _) = user_facing(&ca("SITHS e-id Root CA v2"), &names, &key);
    let der_garbage = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"
    );
    let truncated = &good_crt[..good_crt.len() / 2];
    let megabyte = "x".repeat(900 * 1024);
    let key_body: String = good_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let truncated_key = &good_key[..good_key.len() * 2 / 3];
    let rsa_key = KeySpec::RSA_2048.generate()?.to_pem();

    let cases: Vec<Case> = vec![
        (
            "not PEM",
            Some(b"hello"),
            Some(good_key.as_bytes()),
            "Unparseable",
        ),
        (
            "truncated PEM",
            Some(truncated.as_bytes()),
            Some(good_key.as_bytes()),
            "Unparseable",
        ),
        (
            "DER garbage in PEM armour",
            Some(der_garbage.as_bytes()),
            Some(good_key.as_bytes()),
            "Unparseable",
        ),
        (
            "the private key as the certificate",
            Some(good_key.as_bytes()),
            Some(good_key.as_bytes()),
            "Unparseable",
        ),
        (
            "900 KiB of garbage",
            Some(megabyte.as_bytes()),
            Some(good_key.as_bytes()),
            "Unparseable",
        ),
        (
            "non-UTF-8 bytes",
            Some(&[0xff, 0xfe, 0x00, 0x80]),
            Some(good_key.as_bytes()),
            "tls.crt missing or not text",
        ),
        (
            "no tls.crt",
            None,
            Some(good_key.as_bytes()),
            "tls.crt missing",
        ),
        (
            "no tls.key",
            Some(good_crt.as_bytes()),
            None,
            "tls.key missing",
        ),
        (
            "a truncated key",
            Some(good_crt.as_bytes()),
            Some(truncated_key.as_bytes()),
            "tls.key:",
        ),
        (
            "the certificate as the key",
            Some(good_crt.as_bytes()),
            Some(good_crt.as_bytes()),
            "tls.key:",
        ),
        (
            "another key (RSA) for the certificate",
            Some(good_crt.as_bytes()),
            Some(rsa_key.as_bytes()),
            "KeyMismatch",
        ),
        (
            "a certificate for another key",
            Some(other_key_crt.as_bytes()),
            Some(good_key.as_bytes()),
            "KeyMismatch",
        ),
        (
            "other names",
            Some(wrong_names_crt.as_bytes()),
            Some(good_key.as_bytes()),
            "DnsNamesMismatch",
        ),
        (
            "an extra name",
            Some(extra_name_crt.as_bytes()),
            Some(good_key.as_bytes()),
            "DnsNamesMismatch",
        ),
        (
            "expired",
            Some(expired_crt.as_bytes()),
            Some(good_key.as_bytes()),
            "Expired",
        ),
        (
            "not valid yet",
            Some(future_crt.as_bytes()),
            Some(good_key.as_bytes()),
            "NotYetValid",
        ),
        (
            "an unknown root",
            Some(untrusted_crt.as_bytes()),
            Some(good_key.as_bytes()),
            "UntrustedChain",
        ),
        (
            "a SITHS chain",
            Some(siths_crt.as_bytes()),
            Some(good_key.as_bytes()),
            "ChainsToSiths",
        ),
    ];
    for (what, crt, key_bytes, expected) in &cases {
        put_secret(&secrets, &raw_secret("shop-tls", *crt, *key_bytes)).await?;
        let c = wait_for(&certs, "shop", |c| {
            e2e::k8s::condition(c, "Ready").is_some_and(|(s, r, m)| {
                s == "False" && r == "CertificateRejected" && m.contains(expected)
            })
        })
        .await
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        let m = message(&c);
        assert!(
            !m.contains(&key_body[..40]),
            "{what}: the key is echoed: {m}"
        );
        assert!(!m.contains("PRIVATE KEY-----"), "{what}: {m}");
        let placed = secrets.get("shop-tls").await?.data.unwrap_or_default();
        assert_eq!(
            placed.get("tls.crt").map(|b| b.0.as_slice()),
            *crt,
            "{what}: tls.crt was written"
        );
        assert_eq!(
            placed.get("tls.key").map(|b| b.0.as_slice()),
            *key_bytes,
            "{what}: tls.key was written"
        );
        eprintln!("{what}: {m}");
        // The right certificate in between, so the next case starts from Ready and its
        // refusal cannot be mistaken for this one.
        place_good().await?;
    }

    // Each refusal was announced once, not on every pass.
    let events: Vec<Event> = Api::<Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("CertificateRejected"))
        .collect();
    let announced: u32 = events.iter().map(e2e::k8s::times_announced).sum();
    assert!(
        announced as usize <= cases.len(),
        "{announced} CertificateRejected events for {} broken Secrets",
        cases.len()
    );
    for e in &events {
        let note = e.message.as_deref().unwrap_or_default();
        assert!(
            !note.contains(&key_body[..40]) && !note.contains("PRIVATE KEY-----"),
            "{note}"
        );
    }
    Ok(())
}

/// A broken Secret: what it is, its tls.crt and tls.key (absent when `None`), and the text
/// the refusal must contain.
type Case<'a> = (&'a str, Option<&'a [u8]>, Option<&'a [u8]>, &'a str);

/// Waits until certificate `name` satisfies `ok`; the last state in the error otherwise.
async fn wait_for(
    certs: &Api<ServiceCertificate>,
    name: &str,
    ok: impl Fn(&ServiceCertificate) -> bool,
) -> Result<ServiceCertificate> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let c = certs.get(name).await?;
        if ok(&c) {
            return Ok(c);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "not reached in {WAIT:?}; Ready is {:?}",
                e2e::k8s::condition(&c, "Ready")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
