//! Server-to-server certificates on SITHS against the real apiserver: the local-CA and
//! manual backends, the domain-validation gate, adoption and renewal.

use std::time::Duration;

use anyhow::Result;
use e2e::k8s::{apply, condition, shared_operator, sithsctl, wait_condition};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
};
use siths_operator::{
    api::{CertificateOrder, DomainValidation, OrderPhase, ServiceCertificate, SithsIssuer},
    pki::{
        self, CertInfo, CertificateProfile, KeySpec, LocalCa, LocalCaOptions, PrivateKey,
        TrustAnchors, Usage, parse_csr, parse_pem_chain, random_serial, verify_chain,
    },
};

const WAIT: Duration = Duration::from_secs(90);
const REGION: &str = "232100-0016";
const OTHER_ORG: &str = "202100-4185";

struct Env {
    client: Client,
    ns: String,
}

async fn env(prefix: &str) -> Result<Env> {
    let _ = shared_operator();
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, prefix).await?;
    Ok(Env { client, ns })
}

impl Env {
    fn domain(&self) -> String {
        format!("{}.region.se", self.ns)
    }
    fn certs(&self) -> Api<ServiceCertificate> {
        Api::namespaced(self.client.clone(), &self.ns)
    }
    fn orders(&self) -> Api<CertificateOrder> {
        Api::namespaced(self.client.clone(), &self.ns)
    }
    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.ns)
    }
    fn issuers(&self) -> Api<SithsIssuer> {
        Api::all(self.client.clone())
    }
    fn validations(&self) -> Api<DomainValidation> {
        Api::all(self.client.clone())
    }

    async fn local_issuer(&self, extra: &str) -> Result<String> {
        let name = format!("{}-local", self.ns);
        apply(
            &self.issuers(),
            &format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsIssuer
metadata: {{ name: {name} }}
spec:
  organization: {{ name: Region Exempel, organizationNumber: "{REGION}", locality: Stockholm }}
  connection: {{ type: Direct }}
  environment: Test
  backend:
    localCA:
      secretRef: {{ name: local-ca, namespace: {ns} }}
      generate: true
{extra}
"#,
                ns = self.ns
            ),
        )
        .await?;
        wait_condition(&self.issuers(), &name, "Ready", "True", None, WAIT).await?;
        Ok(name)
    }

    async fn validation(&self, name: &str, domain: &str, owner: &str, extra: &str) -> Result<()> {
        apply(
            &self.validations(),
            &format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: DomainValidation
metadata: {{ name: {name} }}
spec:
  domain: {domain}
  includeSubdomains: true
  owner: {{ name: Owner, organizationNumber: "{owner}" }}
  validatedFor: "{REGION}"
  evidence: {{ formReference: DV-1, submittedBy: Anna, approvedOn: "2024-01-10" }}
  validUntil: "2030-12-31"
{extra}
"#
            ),
        )
        .await?;
        Ok(())
    }

    async fn certificate(
        &self,
        name: &str,
        issuer: &str,
        names: &[String],
        hsa: &str,
    ) -> Result<()> {
        apply(
            &self.certs(),
            &format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: {name} }}
spec:
  purpose: ServerToServer
  hsaId: {hsa}
  dnsNames: {names:?}
  secretName: {name}-tls
  issuerRef: {{ kind: SithsIssuer, name: {issuer} }}
"#
            ),
        )
        .await?;
        Ok(())
    }

    async fn order_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .orders()
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(|o| o.metadata.name.unwrap_or_default())
            .collect();
        names.sort();
        Ok(names)
    }
}

fn secret_text(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

#[tokio::test]
async fn local_ca_certificate_has_the_siths_profile_chain_and_key() -> Result<()> {
    let e = env("local").await?;
    let issuer = e.local_issuer("").await?;
    e.validation(&e.ns, &e.domain(), REGION, "").await?;
    let names = vec![format!("api.{}", e.domain()), format!("alt.{}", e.domain())];
    e.certificate("api", &issuer, &names, "SE2321000016-A001")
        .await?;
    let cert = wait_condition(&e.certs(), "api", "Ready", "True", Some("Issued"), WAIT).await?;
    let st = cert.status.unwrap();
    assert_eq!(st.revision, Some(1));
    assert_eq!(st.route.as_deref(), Some("SITHS"));

    let secret = e.secrets().get("api-tls").await?;
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let chain = parse_pem_chain(&secret_text(&secret, "tls.crt"))?;
    let leaf = CertInfo::parse(&chain[0])?;
    assert_eq!(
        leaf.subject,
        format!(
            "SERIALNUMBER=SE2321000016-A001, CN={}, O=Region Exempel, L=Stockholm, C=SE",
            names[0]
        )
    );
    assert_eq!(leaf.dns_names, names);
    assert!(
        leaf.server_auth && leaf.client_auth,
        "EKU: {}",
        leaf.eku_description()
    );
    assert!(
        leaf.key_usage.contains(&"digitalSignature"),
        "{:?}",
        leaf.key_usage
    );
    assert!(
        leaf.key_usage.contains(&"keyEncipherment"),
        "{:?}",
        leaf.key_usage
    );
    assert_eq!(leaf.key_spec, Some(KeySpec::RSA_2048));
    assert_eq!(st.serial_number.as_deref(), Some(leaf.serial_hex.as_str()));
    let key = PrivateKey::from_pem(&secret_text(&secret, "tls.key"))?;
    assert!(
        pki::key_matches(&leaf, &key),
        "tls.key does not match tls.crt"
    );
    let ca_secret = e.secrets().get("local-ca").await?;
    let anchors = TrustAnchors::from_pem(&secret_text(&ca_secret, "tls.crt"))?;
    verify_chain(&chain, &anchors, Timestamp::now(), Usage::ServerToServer)?;
    assert_eq!(
        secret_text(&secret, "ca.crt"),
        secret_text(&ca_secret, "ca.crt")
    );

    assert_eq!(e.order_names().await?, vec!["api-1".to_string()]);
    let order = e.orders().get("api-1").await?;
    assert_eq!(order.status.unwrap().phase, Some(OrderPhase::Issued));
    // The staged key moved into the certificate Secret: no key Secret is left behind.
    let staged = e
        .secrets()
        .list(&ListParams::default().labels("siths-operator.io/role=staged-key"))
        .await?;
    assert!(staged.items.is_empty(), "{:?}", staged.items.len());
    Ok(())
}

#[tokio::test]
async fn nothing_is_made_until_a_domain_validation_covers_every_name() -> Result<()> {
    let e = env("gate").await?;
    let issuer = e.local_issuer("").await?;
    let name = format!("svc.{}", e.domain());
    e.certificate(
        "svc",
        &issuer,
        std::slice::from_ref(&name),
        "SE2321000016-G1",
    )
    .await?;
    let cert = wait_condition(
        &e.certs(),
        "svc",
        "DomainValidated",
        "False",
        Some("NotCovered"),
        WAIT,
    )
    .await?;
    let (_, _, message) = condition(&cert, "DomainValidated").unwrap();
    assert!(message.contains(&name), "{message}");
    // Give the operator time to do anything it wrongly would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(e.order_names().await?.is_empty());
    assert!(e.secrets().get_opt("svc-tls").await?.is_none());
    let staged = e
        .secrets()
        .list(&ListParams::default().labels("siths-operator.io/role=staged-key"))
        .await?;
    assert!(staged.items.is_empty(), "a key was made before validation");

    // The validation appears: issuance proceeds on its own.
    e.validation(&e.ns, &e.domain(), REGION, "").await?;
    wait_condition(&e.certs(), "svc", "Ready", "True", None, WAIT).await?;

    // An expired validation does not count.
    let expired_domain = format!("expired-{}", e.domain());
    e.validation(&format!("{}-expired", e.ns), &expired_domain, REGION, "")
        .await?;
    e.validations()
        .patch(
            &format!("{}-expired", e.ns),
            &PatchParams::apply("e2e-expire").force(),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "siths-operator.io/v1alpha1", "kind": "DomainValidation",
                "spec": {"validUntil": "2025-01-31"}
            })),
        )
        .await?;
    wait_condition(
        &e.validations(),
        &format!("{}-expired", e.ns),
        "Validated",
        "False",
        Some("Expired"),
        WAIT,
    )
    .await?;
    e.certificate(
        "old",
        &issuer,
        &[format!("x.{expired_domain}")],
        "SE2321000016-G2",
    )
    .await?;
    wait_condition(
        &e.certs(),
        "old",
        "DomainValidated",
        "False",
        Some("NotCovered"),
        WAIT,
    )
    .await?;

    // A domain owned by another organisation: a validation without the owner's power of
    // attorney is rejected at admission (admission.rs), so nothing covers it...
    let other_domain = format!("other-{}", e.domain());
    let dv_other = format!("{}-other", e.ns);
    assert!(
        e.validation(&dv_other, &other_domain, OTHER_ORG, "")
            .await
            .is_err()
    );
    e.certificate(
        "agent",
        &issuer,
        &[format!("x.{other_domain}")],
        "SE2321000016-G3",
    )
    .await?;
    wait_condition(
        &e.certs(),
        "agent",
        "DomainValidated",
        "False",
        Some("NotCovered"),
        WAIT,
    )
    .await?;
    assert_eq!(e.order_names().await?, vec!["svc-1".to_string()]);
    // ...and issued with one.
    e.validation(
        &dv_other,
        &other_domain,
        OTHER_ORG,
        &format!("  powerOfAttorney: {{ reference: FM-7, grantedBy: \"{OTHER_ORG}\", validUntil: \"2030-01-01\" }}"),
    )
    .await?;
    wait_condition(&e.certs(), "agent", "Ready", "True", None, WAIT).await?;
    Ok(())
}

fn test_hierarchy(name: &str) -> Result<LocalCa> {
    Ok(LocalCa::generate(&LocalCaOptions {
        common_name: format!("{name} Root CA"),
        organization: "Test hierarchy".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: Some(format!("{name} Function CA")),
        not_before: Timestamp::now() - jiff::SignedDuration::from_hours(1),
        validity: Duration::from_secs(3 * 365 * 86_400),
    })?)
}

fn write_pem(
    dir: &std::path::Path,
    name: &str,
    chain: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, pki::chain_to_pem(chain))?;
    Ok(path)
}

#[tokio::test]
async fn manual_production_order_goes_through_sithsctl_and_bad_imports_are_refused() -> Result<()> {
    let e = env("manual").await?;
    let cp = e2e::shared();
    let kubeconfig = cp.kubeconfig.clone();
    let hierarchy = test_hierarchy("Manual test")?;
    apply(
        &Api::<ConfigMap>::namespaced(e.client.clone(), &e.ns),
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: anchors }}\ndata:\n  ca.crt: |\n{}",
            hierarchy.root_pem().lines().map(|l| format!("    {l}\n")).collect::<String>()
        ),
    )
    .await?;
    let issuer = format!("{}-prod", e.ns);
    apply(
        &e.issuers(),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsIssuer
metadata: {{ name: {issuer} }}
spec:
  organization: {{ name: Region Exempel, organizationNumber: "{REGION}", locality: Stockholm }}
  connection: {{ type: Direct }}
  environment: Production
  backend: {{ manual: {{}} }}
  trustAnchors: {{ configMap: {{ name: anchors, namespace: {ns} }} }}
"#,
            ns = e.ns
        ),
    )
    .await?;
    wait_condition(&e.issuers(), &issuer, "Ready", "True", None, WAIT).await?;
    e.validation(&e.ns, &e.domain(), REGION, "").await?;
    let names = vec![format!("ehr.{}", e.domain())];
    e.certificate("ehr", &issuer, &names, "SE2321000016-P001")
        .await?;
    wait_condition(
        &e.certs(),
        "ehr",
        "Issuing",
        "True",
        Some("WaitingForApproval"),
        WAIT,
    )
    .await?;
    let order = e.orders().get("ehr-1").await?;
    assert_eq!(
        order.status.as_ref().unwrap().phase,
        Some(OrderPhase::PendingApproval)
    );
    assert_eq!(order.spec.estimated_cost_sek, 3500);

    let ns = e.ns.as_str();
    let list = sithsctl(&kubeconfig, &["orders", "list", "-n", ns])?;
    assert!(
        list.contains("ehr-1") && list.contains("PendingApproval"),
        "{list}"
    );
    let csr_pem = sithsctl(&kubeconfig, &["orders", "export-csr", "-n", ns, "ehr-1"])?;
    let csr = parse_csr(&csr_pem)?;
    assert_eq!(csr.dns_names, names);
    assert_eq!(csr.hsa_id.as_deref(), Some("SE2321000016-P001"));
    assert_eq!(csr.requested_usage(), Some(Usage::ServerToServer));

    // An import before approval is refused by sithsctl.
    let dir = tempfile::tempdir()?;
    let good = hierarchy.sign_csr(
        &csr,
        Timestamp::now(),
        Duration::from_secs(365 * 86_400),
        &random_serial()?,
    )?;
    let good_file = write_pem(dir.path(), "good.pem", &good)?;
    let early = e2e::k8s::sithsctl_output(
        &kubeconfig,
        &[
            "orders",
            "import",
            "-n",
            ns,
            "ehr-1",
            "-f",
            &good_file.to_string_lossy(),
        ],
    )?;
    assert!(!early.status.success());

    let approved = sithsctl(
        &kubeconfig,
        &["orders", "approve", "-n", ns, "ehr-1", "--reason", "budget"],
    )?;
    assert!(approved.contains("Approved by admin"), "{approved}");
    wait_condition(
        &e.certs(),
        "ehr",
        "Issuing",
        "True",
        Some("AwaitingCertificate"),
        WAIT,
    )
    .await?;
    let order = e.orders().get("ehr-1").await?;
    assert_eq!(order.spec.approval.as_ref().unwrap().by, "admin");

    // Each wrong certificate is refused with its own reason; the Secret stays as it was.
    let profile = |names: Vec<String>, hsa: &str| CertificateProfile {
        dns_names: names,
        hsa_id: Some(hsa.into()),
        organization: "Region Exempel".into(),
        locality: Some("Stockholm".into()),
        usage: Usage::ServerToServer,
    };
    let year = Duration::from_secs(365 * 86_400);
    let other_key = KeySpec::ECDSA_P256.generate()?;
    let wrong_key = hierarchy.sign(
        &profile(names.clone(), "SE2321000016-P001"),
        &other_key.public_key_der(),
        Timestamp::now(),
        year,
        &random_serial()?,
    )?;
    let wrong_names = hierarchy.sign(
        &profile(vec![format!("evil.{}", e.domain())], "SE2321000016-P001"),
        &csr.public_key_der,
        Timestamp::now(),
        year,
        &random_serial()?,
    )?;
    let wrong_hsa = hierarchy.sign(
        &profile(names.clone(), "SE2321000016-X999"),
        &csr.public_key_der,
        Timestamp::now(),
        year,
        &random_serial()?,
    )?;
    let untrusted =
        test_hierarchy("Untrusted")?.sign_csr(&csr, Timestamp::now(), year, &random_serial()?)?;
    // sithsctl runs the operator's check against the order's CSR first: a certificate for
    // another request is refused there, naming the reason, and nothing is imported.
    for (file, chain, reason) in [
        ("wrong-key.pem", &wrong_key, "KeyMismatch"),
        ("wrong-names.pem", &wrong_names, "DnsNamesMismatch"),
        ("wrong-hsa.pem", &wrong_hsa, "HsaIdMismatch"),
    ] {
        let path = write_pem(dir.path(), file, chain)?;
        let out = e2e::k8s::sithsctl_output(
            &kubeconfig,
            &[
                "orders",
                "import",
                "-n",
                ns,
                "ehr-1",
                "-f",
                &path.to_string_lossy(),
            ],
        )?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{file}");
        assert!(
            err.contains(&format!("does not match order ehr-1: {reason}: "))
                && err.contains("nothing was imported"),
            "{file}: {err}"
        );
        assert!(
            e.orders().get("ehr-1").await?.spec.certificate.is_none(),
            "{file} was imported"
        );
    }
    // The chain needs the issuer's anchors: the operator refuses it after the import.
    for (file, chain, reason) in [("untrusted.pem", &untrusted, "UntrustedChain")] {
        let path = write_pem(dir.path(), file, chain)?;
        sithsctl(
            &kubeconfig,
            &[
                "orders",
                "import",
                "-n",
                ns,
                "ehr-1",
                "-f",
                &path.to_string_lossy(),
            ],
        )?;
        wait_condition(&e.certs(), "ehr", "Issuing", "False", Some(reason), WAIT).await?;
        let order = e.orders().get("ehr-1").await?;
        let ost = order.status.unwrap();
        assert_eq!(ost.phase, Some(OrderPhase::Failed), "{file}");
        assert_eq!(ost.reason.as_deref(), Some(reason), "{file}");
        assert!(
            e.secrets().get_opt("ehr-tls").await?.is_none(),
            "{file} touched the Secret"
        );
    }
    // A refused import was still paid for, and the order still waits for a person.
    e2e::eventually(WAIT, "the issuer to count the refused order", || {
        let issuers = e.issuers();
        let issuer = issuer.clone();
        async move {
            let st = issuers.get(&issuer).await?.status.unwrap_or_default();
            Ok((st.estimated_spend_sek == 3500 && st.orders_pending == 1).then_some(()))
        }
    })
    .await?;

    // The same refused bytes imported again are checked again (the anchors could have been
    // fixed meanwhile); here they still do not verify.
    let before = e.orders().get("ehr-1").await?.status.unwrap_or_default();
    let again = sithsctl(
        &kubeconfig,
        &[
            "orders",
            "import",
            "-n",
            ns,
            "ehr-1",
            "-f",
            &dir.path().join("untrusted.pem").to_string_lossy(),
        ],
    )?;
    assert!(again.contains("imported again"), "{again}");
    e2e::eventually(WAIT, "the same bytes checked again", || {
        let orders = e.orders();
        let before = before.checked_at.clone();
        async move {
            let st = orders.get("ehr-1").await?.status.unwrap_or_default();
            Ok((st.checked_at.is_some() && st.checked_at != before).then_some(st))
        }
    })
    .await
    .map(|st| assert_eq!(st.reason.as_deref(), Some("UntrustedChain")))?;

    // A CA whose clock runs ahead: a certificate valid from 20 s from now is accepted
    // (up to pki::check::CLOCK_SKEW), by sithsctl's pre-check and by the operator.
    let ahead = Timestamp::now()
        + jiff::SignedDuration::try_from(pki::local_ca::BACKDATE)?
        + jiff::SignedDuration::from_secs(20);
    let soon = hierarchy.sign_csr(
        &csr,
        ahead,
        Duration::from_secs(365 * 86_400),
        &random_serial()?,
    )?;
    let soon_leaf = CertInfo::parse(&soon[0])?;
    assert!(
        soon_leaf.not_before > Timestamp::now(),
        "not valid yet when imported"
    );
    let soon_file = write_pem(dir.path(), "soon.pem", &soon)?;
    sithsctl(
        &kubeconfig,
        &[
            "orders",
            "import",
            "-n",
            ns,
            "ehr-1",
            "-f",
            &soon_file.to_string_lossy(),
        ],
    )?;
    wait_condition(&e.certs(), "ehr", "Ready", "True", Some("Issued"), WAIT).await?;
    let secret = e.secrets().get("ehr-tls").await?;
    let leaf = CertInfo::parse(&parse_pem_chain(&secret_text(&secret, "tls.crt"))?[0])?;
    assert_eq!(leaf.hsa_id.as_deref(), Some("SE2321000016-P001"));
    assert_eq!(
        leaf.serial_hex, soon_leaf.serial_hex,
        "the certificate from 20 s ahead"
    );
    assert_eq!(secret_text(&secret, "ca.crt"), hierarchy.root_pem());
    assert_eq!(e.order_names().await?, vec!["ehr-1".to_string()]);
    // The issuer counts its orders once per burst of changes (debounced).
    e2e::eventually(WAIT, "the issuer to report 3 500 SEK spent", || {
        let issuers = e.issuers();
        let issuer = issuer.clone();
        async move {
            let st = issuers.get(&issuer).await?.status.unwrap_or_default();
            Ok((st.estimated_spend_sek == 3500 && st.orders_pending == 0).then_some(()))
        }
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_matching_certificate_already_in_the_secret_is_adopted_without_an_order() -> Result<()> {
    let e = env("adopt").await?;
    let ca = test_hierarchy("Adoption")?;
    let names = vec![format!("legacy.{}", e.domain())];
    let key = KeySpec::RSA_2048.generate()?;
    let chain = ca.sign(
        &CertificateProfile {
            dns_names: names.clone(),
            hsa_id: Some("SE2321000016-L1".into()),
            organization: "Region Exempel".into(),
            locality: Some("Stockholm".into()),
            usage: Usage::ServerToServer,
        },
        &key.public_key_der(),
        Timestamp::now(),
        Duration::from_secs(300 * 86_400),
        &random_serial()?,
    )?;
    let b64 = |s: String| base64_of(s.as_bytes());
    apply(&e.secrets(), &format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: local-ca }}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(ca.cert_pem() + &ca.root_pem()), b64(ca.key_pem())
    )).await?;
    apply(&e.secrets(), &format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: legacy-tls }}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(pki::chain_to_pem(&chain)), b64(key.to_pem())
    )).await?;
    let issuer = e.local_issuer("").await?;
    e.validation(&e.ns, &e.domain(), REGION, "").await?;
    e.certificate("legacy", &issuer, &names, "SE2321000016-L1")
        .await?;
    let cert = wait_condition(&e.certs(), "legacy", "Ready", "True", Some("Adopted"), WAIT).await?;
    assert_eq!(cert.status.unwrap().revision, Some(1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(e.order_names().await?.is_empty(), "adoption must not order");
    let secret = e.secrets().get("legacy-tls").await?;
    assert_eq!(
        secret_text(&secret, "tls.key"),
        key.to_pem(),
        "the adopted key was replaced"
    );
    Ok(())
}

fn base64_of(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::test]
async fn a_short_lived_local_ca_certificate_renews_before_expiry() -> Result<()> {
    let e = env("renew").await?;
    let issuer = e.local_issuer("      certificateLifetime: 1m").await?;
    e.validation(&e.ns, &e.domain(), REGION, "").await?;
    e.certificate(
        "short",
        &issuer,
        &[format!("short.{}", e.domain())],
        "SE2321000016-R1",
    )
    .await?;
    let first = wait_condition(&e.certs(), "short", "Ready", "True", None, WAIT).await?;
    let first = first.status.unwrap();
    assert_eq!(first.revision, Some(1));
    let not_after: Timestamp = first.not_after.unwrap().parse()?;
    let renewal: Timestamp = first.renewal_time.unwrap().parse()?;
    assert!(
        renewal < not_after,
        "renewal {renewal} not before expiry {not_after}"
    );
    let second = e2e::eventually(Duration::from_secs(120), "revision 2", || {
        let certs = e.certs();
        async move {
            let c = certs.get("short").await?;
            Ok(c.status.filter(|s| s.revision == Some(2)))
        }
    })
    .await?;
    assert!(
        Timestamp::now() < not_after + jiff::SignedDuration::from_secs(1),
        "renewed only after expiry"
    );
    assert_ne!(second.serial_number, first.serial_number);
    assert_eq!(
        e.order_names().await?,
        vec!["short-1".to_string(), "short-2".to_string()]
    );
    Ok(())
}

#[tokio::test]
async fn sithsctl_renew_issues_exactly_one_new_revision() -> Result<()> {
    let e = env("renewnow").await?;
    let issuer = e.local_issuer("").await?;
    e.validation(&e.ns, &e.domain(), REGION, "").await?;
    e.certificate(
        "svc",
        &issuer,
        &[format!("svc.{}", e.domain())],
        "SE2321000016-N1",
    )
    .await?;
    let first = wait_condition(&e.certs(), "svc", "Ready", "True", None, WAIT).await?;
    let first_serial = first.status.unwrap().serial_number;
    let kubeconfig = e2e::shared().kubeconfig.clone();
    let out = sithsctl(&kubeconfig, &["renew", "-n", &e.ns, "svc"])?;
    assert!(out.contains("renewal of svc requested"), "{out}");
    let second = e2e::eventually(WAIT, "revision 2", || {
        let certs = e.certs();
        async move {
            let c = certs.get("svc").await?;
            Ok(c.status.filter(|s| s.revision == Some(2)))
        }
    })
    .await?;
    assert_ne!(second.serial_number, first_serial);
    // Answered once: no third revision follows.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        e.order_names().await?,
        vec!["svc-1".to_string(), "svc-2".to_string()]
    );
    Ok(())
}

/// The certificate pass reads its issuer from the operator's cache, which the issuer watch
/// fills before it maps an issuer's change to certificates. A certificate waiting for a
/// missing issuer is issued once the issuer exists, and follows a change of the issuer's
/// spec; both well before the five minutes after which a missing issuer is looked up again.
#[tokio::test]
async fn a_certificate_follows_its_issuer_through_the_cache() -> Result<()> {
    let e = env("follow").await?;
    e.validation(&e.ns, &e.domain(), REGION, "").await?;
    let issuer = format!("{}-local", e.ns);
    e.certificate(
        "early",
        &issuer,
        &[format!("early.{}", e.domain())],
        "SE2321000016-F1",
    )
    .await?;
    wait_condition(
        &e.certs(),
        "early",
        "Ready",
        "False",
        Some("IssuerNotFound"),
        WAIT,
    )
    .await?;
    // Let the passes its own status write starts go by: the issuer's creation alone must
    // bring the certificate on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(e.local_issuer("").await?, issuer);
    let soon = Duration::from_secs(60);
    wait_condition(&e.certs(), "early", "Ready", "True", None, soon).await?;
    e.issuers()
        .patch(
            &issuer,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "spec": { "allowedNamespaces": { "matchLabels": { "team": "elsewhere" } } }
            })),
        )
        .await?;
    wait_condition(
        &e.certs(),
        "early",
        "Ready",
        "False",
        Some("NamespaceNotAllowed"),
        soon,
    )
    .await?;
    Ok(())
}

/// An order a person creates by hand under the name the operator would use (its own CSR,
/// its own cost) is ignored with a reason, never approved, signed or written to a Secret;
/// once it is deleted the operator orders by itself.
#[tokio::test]
async fn an_order_made_by_hand_is_ignored_with_a_reason() -> Result<()> {
    let e = env("byhand").await?;
    e.validation(&e.ns, &e.domain(), REGION, "").await?;
    let issuer = e.local_issuer("").await?;
    apply(
        &e.orders(),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: CertificateOrder
metadata: {{ name: hand-1, namespace: {ns} }}
spec:
  certificateName: hand
  revision: 1
  issuerName: {issuer}
  dnsNames: [hand.{domain}]
  subject: CN=hand.{domain}
  csr: "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
  estimatedCostSek: 1
"#,
            ns = e.ns,
            domain = e.domain()
        ),
    )
    .await?;
    e.certificate(
        "hand",
        &issuer,
        &[format!("hand.{}", e.domain())],
        "SE2321000016-H1",
    )
    .await?;
    let cert = wait_condition(
        &e.certs(),
        "hand",
        "Issuing",
        "False",
        Some("OrderNotMadeByOperator"),
        WAIT,
    )
    .await?;
    let (_, _, message) = e2e::k8s::condition(&cert, "Issuing").unwrap_or_default();
    assert!(
        message.contains("CertificateOrder hand-1 was not created by the operator"),
        "{message}"
    );
    let order = e.orders().get("hand-1").await?;
    assert!(
        order.status.is_none(),
        "the operator wrote the order's status"
    );
    assert!(e.secrets().get_opt("hand-tls").await?.is_none());
    e.orders()
        .delete("hand-1", &kube::api::DeleteParams::default())
        .await?;
    wait_condition(&e.certs(), "hand", "Ready", "True", None, WAIT).await?;
    assert!(
        e.orders()
            .get("hand-1")
            .await?
            .made_for(cert.metadata.uid.as_deref().unwrap_or_default())
    );
    Ok(())
}

/// A local CA signs in the pass that places the order: the key goes to the Secret with its
/// certificate, and the order is recorded right after. A crash between the two leaves the
/// revision in the Secret and no order (and a status that lags): the next pass records that
/// revision's order, once, from the key and certificate in the Secret, and orders nothing new.
#[tokio::test]
async fn an_order_lost_between_secret_and_order_is_recorded_once() -> Result<()> {
    let e = env("record").await?;
    let issuer = e.local_issuer("").await?;
    e.validation(&e.ns, &e.domain(), REGION, "").await?;
    e.certificate(
        "svc",
        &issuer,
        &[format!("svc.{}", e.domain())],
        "SE2321000016-C1",
    )
    .await?;
    let first = wait_condition(&e.certs(), "svc", "Ready", "True", None, WAIT).await?;
    let serial = first.status.unwrap().serial_number;
    // No staged key was ever made for a local CA without approval.
    let staged = e
        .secrets()
        .list(&ListParams::default().labels("siths-operator.io/role=staged-key"))
        .await?;
    assert!(staged.items.is_empty(), "{:?}", staged.items.len());
    let before = e.secrets().get("svc-tls").await?;

    // The state a crash between the Secret write and the order create leaves.
    e.orders().delete("svc-1", &Default::default()).await?;
    e2e::eventually(WAIT, "order svc-1 gone", || {
        let orders = e.orders();
        async move { Ok(orders.get_opt("svc-1").await?.is_none().then_some(())) }
    })
    .await?;
    e.certs()
        .patch_status(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "status": { "revision": null, "serialNumber": null, "currentOrder": null }
            })),
        )
        .await?;

    let order = e2e::eventually(WAIT, "order svc-1 recorded", || {
        let orders = e.orders();
        async move {
            Ok(orders
                .get_opt("svc-1")
                .await?
                .filter(|o| o.status.as_ref().and_then(|s| s.phase) == Some(OrderPhase::Issued)))
        }
    })
    .await?;
    let st = order.status.clone().unwrap();
    assert_eq!(
        st.serial_number, serial,
        "the order records the Secret's certificate"
    );
    // Its CSR is for the key in the Secret.
    let key = PrivateKey::from_pem(&secret_text(&before, "tls.key"))?;
    assert_eq!(
        parse_csr(&order.spec.csr)?.public_key_der,
        key.public_key_der(),
        "the recorded CSR is not for the Secret's key"
    );
    // The order is recorded before the status that names it: the status catches up. Its
    // Ready condition is still the one from before the crash, so wait for the revision.
    e2e::eventually(WAIT, "svc's status at revision 1, Ready", || {
        let certs = e.certs();
        async move {
            let cert = certs.get("svc").await?;
            let ready = condition(&cert, "Ready").is_some_and(|(s, _, _)| s == "True");
            let revision = cert.status.and_then(|s| s.revision);
            Ok((ready && revision == Some(1)).then_some(()))
        }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(e.order_names().await?, vec!["svc-1".to_string()]);
    let cert = e.certs().get("svc").await?;
    assert_eq!(
        cert.status.unwrap().revision,
        Some(1),
        "the revision went back"
    );
    let after = e.secrets().get("svc-tls").await?;
    assert_eq!(
        secret_text(&after, "tls.crt"),
        secret_text(&before, "tls.crt"),
        "the certificate was replaced"
    );
    Ok(())
}
