//! The bad-input catalogue: hostile or broken certificates, Secrets, ConfigMaps and
//! references, each with its expected outcome (a rejected import, or a condition). None
//! crashes the operator or starts a write loop. `docs/bad-input.md` is the same table; the
//! test fails when they drift apart. Admission rejections are in `admission.rs`.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use e2e::k8s::{apply, shared_operator, wait_condition};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use siths_operator::{
    api::{CertificateOrder, DomainValidation, OrderPhase, ServiceCertificate, SithsIssuer},
    pki::{
        CertificateProfile, KeyAlgorithm, KeySpec, LocalCa, LocalCaOptions, ParsedCsr, Usage,
        parse_csr, random_serial, sha256_fingerprint,
    },
};

const WAIT: Duration = Duration::from_secs(60);
const HSA: &str = "SE2321000016-BAD1";

fn docs() -> Result<String> {
    Ok(std::fs::read_to_string(
        e2e::controlplane::workspace_root().join("docs/bad-input.md"),
    )?)
}

fn hierarchy() -> Result<LocalCa> {
    Ok(LocalCa::generate(&LocalCaOptions {
        common_name: "Catalogue Root".into(),
        organization: "Catalogue".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: None,
        not_before: Timestamp::now() - SignedDuration::from_hours(2),
        validity: Duration::from_secs(365 * 86_400),
    })?)
}

fn to_offset(ts: Timestamp) -> Result<time::OffsetDateTime> {
    Ok(time::OffsetDateTime::from_unix_timestamp(ts.as_second())?)
}

/// A certificate signed by `ca` for `spki` (DER) with hand-set fields, for the cases the
/// well-behaved local CA would never produce. Subject O, L and C are the order's CSR's and
/// the key usage fits the profile, so that each case differs from a good certificate only
/// where it says.
fn crafted(
    ca: &LocalCa,
    csr: &ParsedCsr,
    public_key: &impl rcgen::PublicKeyData,
    names: &[&str],
    hsa: Option<&str>,
    ekus: Vec<ExtendedKeyUsagePurpose>,
    valid: (Timestamp, Timestamp),
) -> Result<String> {
    crafted_with(ca, csr, public_key, names, hsa, ekus, valid, |_| {})
}

/// [`crafted`], then `tweak` on the parameters before signing.
#[allow(clippy::too_many_arguments)]
fn crafted_with(
    ca: &LocalCa,
    csr: &ParsedCsr,
    public_key: &impl rcgen::PublicKeyData,
    names: &[&str],
    hsa: Option<&str>,
    ekus: Vec<ExtendedKeyUsagePurpose>,
    valid: (Timestamp, Timestamp),
    tweak: impl FnOnce(&mut CertificateParams),
) -> Result<String> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    for n in names {
        params
            .subject_alt_names
            .push(SanType::DnsName((*n).try_into()?));
    }
    if let Some(c) = &csr.country {
        params
            .distinguished_name
            .push(DnType::CountryName, c.as_str());
    }
    if let Some(l) = &csr.locality {
        params
            .distinguished_name
            .push(DnType::LocalityName, l.as_str());
    }
    if let Some(o) = &csr.organization {
        params
            .distinguished_name
            .push(DnType::OrganizationName, o.as_str());
    }
    if let Some(h) = hsa {
        params
            .distinguished_name
            .push(DnType::CustomDnType(vec![2, 5, 4, 5]), h);
    }
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("no-san.example"),
    );
    params.extended_key_usages = ekus;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if csr.key_spec.algorithm == KeyAlgorithm::Rsa {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.not_before = to_offset(valid.0)?;
    params.not_after = to_offset(valid.1)?;
    tweak(&mut params);
    let ca_key = KeyPair::from_pem(&ca.key_pem())?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem(), ca_key)?;
    Ok(params.signed_by(public_key, &issuer)?.pem())
}

struct Env {
    client: Client,
    ns: String,
}

impl Env {
    async fn new(prefix: &str) -> Result<Self> {
        let _ = shared_operator();
        let client = e2e::shared().client().await?;
        let ns = e2e::test_namespace(&client, prefix).await?;
        apply(
            &Api::<DomainValidation>::all(client.clone()),
            &format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: DomainValidation
metadata: {{ name: {ns} }}
spec:
  domain: {ns}.region.se
  includeSubdomains: true
  owner: {{ name: Region Exempel, organizationNumber: "232100-0016" }}
  validatedFor: "232100-0016"
  evidence: {{ formReference: DV-B, submittedBy: Anna, approvedOn: "2026-01-10" }}
  validUntil: "2030-12-31"
"#
            ),
        )
        .await?;
        Ok(Self { client, ns })
    }

    async fn issuer(&self, name: &str, backend: &str, extra: &str) -> Result<()> {
        apply(
            &Api::<SithsIssuer>::all(self.client.clone()),
            &format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsIssuer
metadata: {{ name: {name} }}
spec:
  organization: {{ name: Region Exempel, organizationNumber: "232100-0016", locality: Stockholm }}
  connection: {{ type: Direct }}
  environment: Test
  backend: {backend}
{extra}
"#
            ),
        )
        .await?;
        Ok(())
    }

    async fn certificate(&self, name: &str, issuer: &str) -> Result<()> {
        apply(
            &Api::<ServiceCertificate>::namespaced(self.client.clone(), &self.ns),
            &format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: {name} }}
spec:
  purpose: ServerToServer
  hsaId: {HSA}
  dnsNames: [{name}.{ns}.region.se]
  secretName: {name}-tls
  issuerRef: {{ kind: SithsIssuer, name: {issuer} }}
"#,
                ns = self.ns
            ),
        )
        .await?;
        Ok(())
    }

    async fn secret(&self, name: &str, data: &[(&str, Vec<u8>)]) -> Result<()> {
        let s = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.clone())))
                    .collect(),
            ),
            ..Default::default()
        };
        Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &s)
            .await?;
        Ok(())
    }

    async fn config_map(&self, name: &str, ca: &str) -> Result<()> {
        let c = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some([("ca.crt".to_string(), ca.to_string())].into()),
            ..Default::default()
        };
        Api::<ConfigMap>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &c)
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn broken_certificates_imported_into_an_order_are_each_refused_with_a_reason() -> Result<()> {
    let e = Env::new("badimport").await?;
    let ca = hierarchy()?;
    e.config_map("anchors", &ca.root_pem()).await?;
    let issuer = format!("{}-manual", e.ns);
    e.issuer(
        &issuer,
        "{ manual: {} }",
        &format!("  approval: NotRequired\n  trustAnchors: {{ configMap: {{ name: anchors, namespace: {} }} }}", e.ns),
    )
    .await?;
    e.certificate("svc", &issuer).await?;
    let orders: Api<CertificateOrder> = Api::namespaced(e.client.clone(), &e.ns);
    let order = e2e::eventually(WAIT, "order svc-1 awaiting its certificate", || {
        let orders = orders.clone();
        async move {
            let o = orders.get_opt("svc-1").await?;
            Ok(o.filter(|o| {
                o.status.as_ref().and_then(|s| s.phase) == Some(OrderPhase::AwaitingCertificate)
            }))
        }
    })
    .await?;
    let csr = parse_csr(&order.spec.csr)?;
    let name = format!("svc.{}.region.se", e.ns);
    let ours = rcgen::SubjectPublicKeyInfo::from_der(&csr.public_key_der)?;
    let other_key = KeyPair::generate()?;
    let good_eku = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = Timestamp::now();
    let valid = (
        now - SignedDuration::from_hours(1),
        now + SignedDuration::from_hours(24 * 300),
    );
    let good = ca.sign_csr(
        &csr,
        now,
        Duration::from_secs(300 * 86_400),
        &random_serial()?,
    )?;
    let good_pem = siths_operator::pki::chain_to_pem(&good);
    let untrusted = hierarchy()?;
    let self_signed = {
        let mut p = CertificateParams::new(vec![name.clone()])?;
        p.extended_key_usages = good_eku.clone();
        // Self-signed needs the private key, which stays in the cluster: sign another key.
        p.self_signed(&other_key)?.pem()
    };
    let mut cases: Vec<(&str, String, &str)> = vec![
        ("not PEM at all", "hello, this is not a certificate".into(), "Unparseable"),
        ("truncated PEM", good_pem[..good_pem.len() / 2].to_string(), "Unparseable"),
        ("DER garbage inside PEM armour", "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n-----END CERTIFICATE-----\n".into(), "Unparseable"),
        ("a private key pasted instead of the certificate", KeySpec::ECDSA_P256.generate()?.to_pem(), "Unparseable"),
        ("the CSR pasted instead of the certificate", order.spec.csr.clone(), "Unparseable"),
        ("a certificate for another key", crafted(&ca, &csr, &other_key, &[&name], Some(HSA), good_eku.clone(), valid)?, "KeyMismatch"),
        ("a self-signed certificate", self_signed, "KeyMismatch"),
        ("a certificate without subjectAltName", crafted(&ca, &csr, &ours, &[], Some(HSA), good_eku.clone(), valid)?, "DnsNamesMismatch"),
        ("a certificate with an extra name", crafted(&ca, &csr, &ours, &[&name, "extra.region.se"], Some(HSA), good_eku.clone(), valid)?, "DnsNamesMismatch"),
        ("a certificate without the HSA-id", crafted(&ca, &csr, &ours, &[&name], None, good_eku.clone(), valid)?, "HsaIdMismatch"),
        ("an expired certificate", crafted(&ca, &csr, &ours, &[&name], Some(HSA), good_eku.clone(), (now - SignedDuration::from_hours(1), now - SignedDuration::from_mins(10)))?, "Expired"),
        ("a certificate not valid yet", crafted(&ca, &csr, &ours, &[&name], Some(HSA), good_eku.clone(), (now + SignedDuration::from_hours(24), now + SignedDuration::from_hours(48)))?, "NotYetValid"),
        ("serverAuth only, no clientAuth", crafted(&ca, &csr, &ours, &[&name], Some(HSA), vec![ExtendedKeyUsagePurpose::ServerAuth], valid)?, "MissingExtendedKeyUsage"),
        ("a subject O=Evil Corp AB instead of the issuer's organisation", crafted_with(&ca, &csr, &ours, &[&name], Some(HSA), good_eku.clone(), valid, |p| p.distinguished_name.push(DnType::OrganizationName, "Evil Corp AB"))?, "OrganizationMismatch"),
        ("a subject C=US", crafted_with(&ca, &csr, &ours, &[&name], Some(HSA), good_eku.clone(), valid, |p| p.distinguished_name.push(DnType::CountryName, "US"))?, "CountryMismatch"),
        ("a subject CN=evil.example.org, not among the names", crafted_with(&ca, &csr, &ours, &[&name], Some(HSA), good_eku.clone(), valid, |p| p.distinguished_name.push(DnType::CommonName, "evil.example.org"))?, "CommonNameMismatch"),
        ("an extra iPAddress SAN", crafted_with(&ca, &csr, &ours, &[&name], Some(HSA), good_eku.clone(), valid, |p| p.subject_alt_names.push(SanType::IpAddress("10.0.0.1".parse().expect("ip"))))?, "UnexpectedSubjectAltName"),
        ("no keyUsage extension", crafted_with(&ca, &csr, &ours, &[&name], Some(HSA), good_eku.clone(), valid, |p| p.key_usages.clear())?, "MissingKeyUsage"),
        ("an extra EKU codeSigning", crafted_with(&ca, &csr, &ours, &[&name], Some(HSA), vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth, ExtendedKeyUsagePurpose::CodeSigning], valid, |_| {})?, "UnexpectedExtendedKeyUsage"),
        ("a chain to an untrusted root", siths_operator::pki::chain_to_pem(&untrusted.sign_csr(&csr, now, Duration::from_secs(86_400), &random_serial()?)?), "UntrustedChain"),
    ];
    cases.push((
        "the right certificate after all that",
        good_pem.clone(),
        "Issued",
    ));
    let docs = docs()?;
    let mut failures = Vec::new();
    for (what, pem, expected) in &cases {
        let digest = sha256_fingerprint(pem.as_bytes());
        orders
            .patch(
                "svc-1",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"certificate": pem}})),
            )
            .await
            .with_context(|| what.to_string())?;
        let outcome = e2e::eventually(WAIT, what, || {
            let orders = orders.clone();
            let digest = digest.clone();
            async move {
                let o = orders.get("svc-1").await?;
                let st = o.status.unwrap_or_default();
                Ok(
                    (st.checked_certificate_sha256.as_deref() == Some(digest.as_str())).then(
                        || {
                            (
                                st.reason.unwrap_or_default(),
                                st.message.unwrap_or_default(),
                            )
                        },
                    ),
                )
            }
        })
        .await?;
        if outcome.0 != *expected {
            failures.push(format!(
                "{what}: reason {} ({}), expected {expected}",
                outcome.0, outcome.1
            ));
        }
        // Never echo a pasted key (or anything else) back into the status.
        if outcome.1.contains("PRIVATE KEY")
            || pem
                .lines()
                .nth(1)
                .is_some_and(|l| l.len() > 20 && outcome.1.contains(l))
        {
            failures.push(format!("{what}: the message echoes the input"));
        }
        if *expected != "Issued" {
            let secret = Api::<Secret>::namespaced(e.client.clone(), &e.ns)
                .get_opt("svc-tls")
                .await?;
            if secret.is_some() {
                failures.push(format!("{what}: the Secret was written"));
            }
        }
        if !docs.contains(what) {
            failures.push(format!("{what}: missing from docs/bad-input.md"));
        }
    }
    // A 1 MiB paste never reaches the operator.
    let huge = "A".repeat(1 << 20);
    let err = orders
        .patch(
            "svc-1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"certificate": huge}})),
        )
        .await;
    match err {
        Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("Too long") => {}
        other => failures.push(format!("1 MiB certificate: {other:?}")),
    }
    if !docs.contains("a 1 MiB certificate") {
        failures.push("a 1 MiB certificate: missing from docs/bad-input.md".into());
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} cases failed:\n{}",
            failures.len(),
            cases.len() + 1,
            failures.join("\n")
        );
    }
    wait_condition(
        &Api::<ServiceCertificate>::namespaced(e.client.clone(), &e.ns),
        "svc",
        "Ready",
        "True",
        None,
        WAIT,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn broken_issuers_secrets_and_references_become_conditions() -> Result<()> {
    let e = Env::new("badref").await?;
    let issuers: Api<SithsIssuer> = Api::all(e.client.clone());
    let certs: Api<ServiceCertificate> = Api::namespaced(e.client.clone(), &e.ns);
    let docs = docs()?;
    let ns = e.ns.clone();
    let ca = hierarchy()?;
    let leaf_key = KeySpec::ECDSA_P256.generate()?;
    let leaf = ca.sign(
        &CertificateProfile {
            dns_names: vec![format!("leaf.{ns}.region.se")],
            hsa_id: None,
            organization: "x".into(),
            locality: None,
            usage: Usage::ServerToServer,
        },
        &leaf_key.public_key_der(),
        Timestamp::now(),
        Duration::from_secs(86_400),
        &random_serial()?,
    )?;
    e.secret(
        "garbage-ca",
        &[
            ("tls.crt", b"garbage".to_vec()),
            ("tls.key", b"garbage".to_vec()),
        ],
    )
    .await?;
    e.secret(
        "binary-ca",
        &[
            ("tls.crt", vec![0xff, 0xfe, 0x00, 0x80]),
            ("tls.key", vec![0xc3, 0x28]),
        ],
    )
    .await?;
    e.secret(
        "leaf-ca",
        &[
            (
                "tls.crt",
                siths_operator::pki::chain_to_pem(&leaf).into_bytes(),
            ),
            ("tls.key", leaf_key.to_pem().into_bytes()),
        ],
    )
    .await?;
    e.config_map("garbage-anchors", "not a certificate").await?;
    // A forged "SITHS e-id Root CA v2": the right name, the wrong key.
    let forged = {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CountryName, "SE");
        p.distinguished_name
            .push(DnType::OrganizationName, "Inera AB");
        p.distinguished_name
            .push(DnType::CommonName, "TEST SITHS e-id Root CA v2");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&key)?.pem()
    };
    e.config_map("forged-siths", &forged).await?;

    let local = |secret: &str| {
        format!("{{ localCA: {{ secretRef: {{ name: {secret}, namespace: {ns} }} }} }}")
    };
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "a local CA Secret that does not exist",
            local("missing-ca"),
            String::new(),
            "LocalCaSecretNotFound",
        ),
        (
            "a local CA Secret holding garbage",
            local("garbage-ca"),
            String::new(),
            "LocalCaSecretInvalid",
        ),
        (
            "a local CA Secret holding non-UTF-8 bytes",
            local("binary-ca"),
            String::new(),
            "LocalCaSecretInvalid",
        ),
        (
            "a local CA Secret holding a leaf, not a CA",
            local("leaf-ca"),
            String::new(),
            "LocalCaSecretInvalid",
        ),
        (
            "a trust-anchor ConfigMap that does not exist",
            "{ manual: {} }".into(),
            format!("  trustAnchors: {{ configMap: {{ name: missing, namespace: {ns} }} }}"),
            "TrustAnchorsNotFound",
        ),
        (
            "a trust-anchor ConfigMap holding garbage",
            "{ manual: {} }".into(),
            format!(
                "  trustAnchors: {{ configMap: {{ name: garbage-anchors, namespace: {ns} }} }}"
            ),
            "TrustAnchorsInvalid",
        ),
        (
            "a pinned SITHS source holding a forged root",
            "{ manual: {} }".into(),
            format!(
                "  trustAnchors: {{ pinned: {{ configMap: {{ name: forged-siths, namespace: {ns} }} }} }}"
            ),
            "TrustAnchorsRejected",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (what, backend, extra, reason)) in cases.iter().enumerate() {
        let name = format!("{ns}-{i}");
        e.issuer(&name, backend, extra).await?;
        if let Err(err) =
            wait_condition(&issuers, &name, "Ready", "False", Some(reason), WAIT).await
        {
            failures.push(format!("{what}: {err:#}"));
        }
        // A certificate on the broken issuer waits with a reason, and nothing is ordered.
        let cert = format!("c{i}");
        e.certificate(&cert, &name).await?;
        if let Err(err) = wait_condition(
            &certs,
            &cert,
            "Ready",
            "False",
            Some("IssuerNotReady"),
            WAIT,
        )
        .await
        {
            failures.push(format!("{what} (certificate): {err:#}"));
        }
        if !docs.contains(what) {
            failures.push(format!("{what}: missing from docs/bad-input.md"));
        }
    }
    // References and validations.
    e.certificate("orphan", "no-such-issuer").await?;
    if let Err(err) = wait_condition(
        &certs,
        "orphan",
        "Ready",
        "False",
        Some("IssuerNotFound"),
        WAIT,
    )
    .await
    {
        failures.push(format!("a reference to a missing issuer: {err:#}"));
    }
    let allowed = format!("{ns}-allowed");
    e.issuer(
        &allowed,
        &format!("{{ localCA: {{ secretRef: {{ name: ca, namespace: {ns} }}, generate: true }} }}"),
        "  allowedNamespaces: { matchLabels: { team: elsewhere } }",
    )
    .await?;
    e.certificate("outsider", &allowed).await?;
    if let Err(err) = wait_condition(
        &certs,
        "outsider",
        "Ready",
        "False",
        Some("NamespaceNotAllowed"),
        WAIT,
    )
    .await
    {
        failures.push(format!("a namespace the issuer does not allow: {err:#}"));
    }
    let dvs: Api<DomainValidation> = Api::all(e.client.clone());
    for (what, name, valid_until, reason) in [
        (
            "a domain validation whose validUntil is in the past",
            format!("{ns}-past"),
            "2024-06-30",
            "Expired",
        ),
        // A date that does not exist (30 February) is refused at admission: admission.rs.
    ] {
        apply(&dvs, &format!(
            "apiVersion: siths-operator.io/v1alpha1\nkind: DomainValidation\nmetadata: {{ name: {name} }}\nspec:\n  domain: {name}.region.se\n  owner: {{ name: R, organizationNumber: \"232100-0016\" }}\n  validatedFor: \"232100-0016\"\n  evidence: {{ formReference: X, submittedBy: Y, approvedOn: \"2024-01-01\" }}\n  validUntil: \"{valid_until}\"\n"
        )).await?;
        if let Err(err) =
            wait_condition(&dvs, &name, "Validated", "False", Some(reason), WAIT).await
        {
            failures.push(format!("{what}: {err:#}"));
        }
        if !docs.contains(what) {
            failures.push(format!("{what}: missing from docs/bad-input.md"));
        }
    }
    for what in [
        "a reference to a missing issuer",
        "a namespace the issuer does not allow",
    ] {
        if !docs.contains(what) {
            failures.push(format!("{what}: missing from docs/bad-input.md"));
        }
    }
    // Pre-existing Secrets the certificate names: 1 MiB of garbage, non-UTF-8 bytes.
    let ok_issuer = format!("{ns}-ok");
    e.issuer(
        &ok_issuer,
        &format!(
            "{{ localCA: {{ secretRef: {{ name: ok-ca, namespace: {ns} }}, generate: true }} }}"
        ),
        "",
    )
    .await?;
    e.secret("big-tls", &[("tls.crt", vec![b'A'; 1 << 20])])
        .await?;
    e.secret(
        "binary-tls",
        &[("tls.crt", vec![0xff; 64]), ("tls.key", vec![0x80; 64])],
    )
    .await?;
    for (what, cert) in [
        ("a 1 MiB Secret of garbage in the way", "big"),
        ("a Secret of non-UTF-8 bytes in the way", "binary"),
    ] {
        e.certificate(cert, &ok_issuer).await?;
        if let Err(err) = wait_condition(&certs, cert, "Ready", "True", None, WAIT).await {
            failures.push(format!("{what}: {err:#}"));
        }
        if !docs.contains(what) {
            failures.push(format!("{what}: missing from docs/bad-input.md"));
        }
    }
    // The operator is still alive after all of it.
    let alive = shared_operator().lock().expect("operator").output();
    if alive.contains("panicked") {
        failures.push("the operator panicked".into());
    }
    if !failures.is_empty() {
        bail!("{} failures:\n{}", failures.len(), failures.join("\n"));
    }
    Ok(())
}
