//! The live DNS TXT check of DomainValidations against a real BIND 9 (issue #18):
//! - a validation whose TXT record is missing blocks issuance; publishing the record lets
//!   issuance proceed by itself; removing it makes the validation `False` at the next check,
//!   and the certificate already issued keeps its Secret while no new order is placed;
//! - BIND stopped for longer than a check: `Unknown` (`DnsCheckFailed`), orders are not
//!   blocked within the grace period, and the validation recovers when BIND returns.

use std::time::Duration;

use anyhow::Result;
use e2e::{
    bind::Bind,
    fixtures::{REGION, local_ca_issuer, server_certificate},
    k8s::{apply, siths_ca_bundle, wait_condition},
    operator::OperatorProcess,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use siths_operator::api::{CertificateOrder, DomainValidation, ServiceCertificate};

const WAIT: Duration = Duration::from_secs(90);

/// One test at a time: each starts its own operator, and DomainValidations are cluster
/// scoped (two operators would both check them).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Env {
    client: Client,
    ns: String,
    bind: Bind,
    _operator: OperatorProcess,
}

impl Env {
    async fn start(prefix: &str, grace_seconds: u64) -> Result<Self> {
        let cp = e2e::shared();
        let client = cp.client().await?;
        let bind = Bind::start("region.se").await?;
        let ns = e2e::test_namespace(&client, prefix).await?;
        local_ca_issuer(&client, &ns, &ns, "").await?;
        let kubeconfig = cp.dir.join(format!("{ns}.kubeconfig"));
        e2e::rbac::write_operator_kubeconfig(cp, &kubeconfig)?;
        let ca = siths_ca_bundle(cp)?;
        let args = [
            "--siths-ca-file".to_string(),
            ca.to_string_lossy().into_owned(),
            "--lease-name".into(),
            ns.clone(),
            "--dns-nameservers".into(),
            bind.addr.to_string(),
            "--dns-check-interval-seconds".into(),
            "2".into(),
            "--dns-check-timeout-seconds".into(),
            "1".into(),
            "--dns-check-grace-seconds".into(),
            grace_seconds.to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let operator = OperatorProcess::start(cp, &kubeconfig, &args)?;
        Ok(Self {
            client,
            ns,
            bind,
            _operator: operator,
        })
    }

    fn record(&self) -> String {
        format!("_siths-validation.{}.region.se", self.ns)
    }

    async fn validation(&self, value: &str) -> Result<()> {
        let ns = &self.ns;
        let record = self.record();
        apply(
            &Api::<DomainValidation>::all(self.client.clone()),
            &format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: DomainValidation
metadata: {{ name: {ns} }}
spec:
  domain: {ns}.region.se
  includeSubdomains: true
  owner: {{ name: Region Exempel, organizationNumber: "{REGION}" }}
  validatedFor: "{REGION}"
  evidence:
    formReference: DV-1
    submittedBy: Anna
    approvedOn: "2026-01-10"
    dnsTxtRecord: {{ name: {record}, value: {value} }}
  validUntil: "2030-12-31"
"#
            ),
        )
        .await?;
        Ok(())
    }

    async fn certificate(&self, name: &str) -> Result<()> {
        let ns = &self.ns;
        server_certificate(
            &self.client,
            ns,
            name,
            &format!("{name}.{ns}.region.se"),
            "SE2321000016-D1",
            ns,
            &format!("{name}-tls"),
        )
        .await
    }

    fn dvs(&self) -> Api<DomainValidation> {
        Api::all(self.client.clone())
    }

    fn certs(&self) -> Api<ServiceCertificate> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn orders(&self) -> Result<usize> {
        Ok(
            Api::<CertificateOrder>::namespaced(self.client.clone(), &self.ns)
                .list(&Default::default())
                .await?
                .items
                .len(),
        )
    }
}

#[tokio::test]
async fn txt_record_gates_issuance_and_its_removal_lapses_the_validation() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = Env::start("dns-gate", 600).await?;
    env.validation("token-1").await?;
    env.certificate("app").await?;

    // No record in BIND: the validation is False at the first check, the order blocked.
    wait_condition(
        &env.dvs(),
        &env.ns,
        "Validated",
        "False",
        Some("DnsRecordMissing"),
        WAIT,
    )
    .await?;
    wait_condition(
        &env.certs(),
        "app",
        "Ready",
        "False",
        Some("DomainNotValidated"),
        WAIT,
    )
    .await?;
    assert_eq!(env.orders().await?, 0, "no order before the record exists");

    // The record is published: the next check finds it, issuance proceeds by itself.
    env.bind.set_txt(&env.record(), "token-1")?;
    let dv = wait_condition(
        &env.dvs(),
        &env.ns,
        "Validated",
        "True",
        Some("Valid"),
        WAIT,
    )
    .await?;
    let checked = e2e::k8s::condition(&dv, "DnsChecked");
    assert_eq!(
        checked.as_ref().map(|(s, r, _)| (s.as_str(), r.as_str())),
        Some(("True", "DnsRecordFound")),
        "{checked:?}"
    );
    wait_condition(&env.certs(), "app", "Ready", "True", None, WAIT).await?;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
    let issued = secrets.get("app-tls").await?;
    let orders_issued = env.orders().await?;

    // The record is removed: False at the next check.
    env.bind.delete_txt(&env.record())?;
    wait_condition(
        &env.dvs(),
        &env.ns,
        "Validated",
        "False",
        Some("DnsRecordMissing"),
        WAIT,
    )
    .await?;
    // A change that needs a new certificate is blocked: no new order.
    let ns = env.ns.clone();
    apply(
        &env.certs(),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: app }}
spec:
  purpose: ServerToServer
  hsaId: SE2321000016-D1
  dnsNames: [app.{ns}.region.se, api.{ns}.region.se]
  secretName: app-tls
  issuerRef: {{ kind: SithsIssuer, name: {ns} }}
"#
        ),
    )
    .await?;
    wait_condition(&env.certs(), "app", "DomainValidated", "False", None, WAIT).await?;
    // Several checks later: still no new order, the Secret untouched.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        env.orders().await?,
        orders_issued,
        "no new order after the lapse"
    );
    let after = secrets.get("app-tls").await?;
    assert_eq!(
        after.data, issued.data,
        "the issued Secret is kept as it was"
    );
    assert_eq!(
        after.metadata.resource_version, issued.metadata.resource_version,
        "the issued Secret is not rewritten"
    );
    Ok(())
}

#[tokio::test]
async fn a_resolver_outage_within_grace_blocks_nothing_and_recovers() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = Env::start("dns-outage", 600).await?;
    env.bind.set_txt(&env.record(), "token-2")?;
    env.validation("token-2").await?;
    wait_condition(
        &env.dvs(),
        &env.ns,
        "Validated",
        "True",
        Some("Valid"),
        WAIT,
    )
    .await?;

    // BIND down for longer than a check interval (2 s) and the lookup timeout (1 s).
    env.bind.stop();
    let dv = wait_condition(
        &env.dvs(),
        &env.ns,
        "Validated",
        "Unknown",
        Some("DnsCheckFailed"),
        WAIT,
    )
    .await?;
    let dns = dv
        .status
        .as_ref()
        .and_then(|s| s.dns.clone())
        .expect("status.dns");
    assert_eq!(dns.result.as_deref(), Some("DnsRecordFound"), "{dns:?}");
    assert!(dns.failure.is_some(), "{dns:?}");
    // Within the grace period a new certificate is issued.
    env.certificate("during-outage").await?;
    wait_condition(&env.certs(), "during-outage", "Ready", "True", None, WAIT).await?;
    let still = env.dvs().get(&env.ns).await?;
    assert_eq!(
        e2e::k8s::condition(&still, "Validated").map(|(s, r, _)| (s, r)),
        Some(("Unknown".to_string(), "DnsCheckFailed".to_string())),
        "BIND is still down"
    );

    // BIND returns: the next check finds the record again.
    env.bind.restart().await?;
    wait_condition(
        &env.dvs(),
        &env.ns,
        "Validated",
        "True",
        Some("Valid"),
        WAIT,
    )
    .await?;
    wait_condition(
        &env.dvs(),
        &env.ns,
        "DnsChecked",
        "True",
        Some("DnsRecordFound"),
        WAIT,
    )
    .await?;
    Ok(())
}

/// The RFC 2136 updater of ACME DNS-01 against BIND: a TSIG-signed update adds the TXT
/// record (BIND answers it), removals take it away again; a wrong secret and an unknown key
/// name are refused with reasons that name the key and never show the secret.
#[tokio::test]
async fn rfc2136_updates_signed_with_tsig_are_applied_by_bind() -> Result<()> {
    use base64::Engine;
    use siths_operator::dns::rfc2136::{Updater, reason};
    let bind = Bind::start("region.se").await?;
    let secret = base64::engine::general_purpose::STANDARD.decode(&bind.key_secret)?;
    let timeout = Duration::from_secs(5);
    let updater = |key: &str, secret: Vec<u8>| {
        Updater::new(bind.addr, "region.se", key, "hmac-sha256", secret, timeout)
    };
    let good = updater(e2e::bind::KEY_NAME, secret.clone())?;
    let record = "_acme-challenge.www.region.se";

    good.add_txt(record, "token-a", 5).await?;
    good.add_txt(record, "token-b", 5).await?;
    let mut found = bind.txt(record)?;
    found.sort();
    assert_eq!(found, ["token-a", "token-b"]);
    // The live check's resolver, asking BIND directly, sees it too.
    let lookup = siths_operator::dns::LookupSettings {
        nameservers: vec![bind.addr],
        timeout: Duration::from_secs(2),
    };
    assert_eq!(
        siths_operator::dns::check_txt(&lookup, record, "token-a").await,
        siths_operator::policy::dns_check::Lookup::Found
    );

    good.remove_txt(record, "token-a").await?;
    assert_eq!(bind.txt(record)?, ["token-b"]);
    good.remove_all_txt(record).await?;
    assert!(bind.txt(record)?.is_empty());

    // A wrong secret under the right name: BADSIG, nothing written.
    let mut wrong = secret.clone();
    wrong[0] ^= 0xff;
    let err = updater(e2e::bind::KEY_NAME, wrong.clone())?
        .add_txt(record, "forged", 5)
        .await
        .unwrap_err();
    assert_eq!(err.reason, reason::BAD_SIG, "{err}");
    assert!(err.message.contains(e2e::bind::KEY_NAME), "{err}");
    let b64 = base64::engine::general_purpose::STANDARD;
    assert!(!err.message.contains(&b64.encode(&wrong)), "{err}");
    assert!(!err.message.contains(&bind.key_secret), "{err}");
    assert!(bind.txt(record)?.is_empty());

    // A key name BIND does not know: BADKEY.
    let err = updater("someone-else", secret)?
        .add_txt(record, "forged", 5)
        .await
        .unwrap_err();
    assert_eq!(err.reason, reason::BAD_KEY, "{err}");
    assert!(err.message.contains("someone-else"), "{err}");
    assert!(bind.txt(record)?.is_empty());
    Ok(())
}

/// Must-show 3: a UserFacing certificate for a wildcard and an internal name, issued by
/// Pebble through DNS-01 over RFC 2136 with TSIG against BIND (Pebble asks BIND); the TXT
/// records are gone afterwards, a stale one from a crash included. A wrong TSIG secret gives `Ready=False`, reason
/// `AcmeDnsUpdateFailed` with a message naming the key, and few attempts.
#[tokio::test]
async fn dns01_over_rfc2136_issues_a_wildcard_and_cleans_up() -> Result<()> {
    use e2e::{controlplane::free_port, fixtures, pebble::Pebble};
    use k8s_openapi::api::core::v1::Secret;
    use siths_operator::api::PublicIssuer;
    let _one = ONE_AT_A_TIME.lock().await;
    let cp = e2e::shared();
    let client = cp.client().await?;
    let bind = Bind::start("region.se").await?;
    let http_port = free_port()?;
    let pebble = Pebble::start_with_dns(http_port, Some(bind.addr)).await?;
    let ns = e2e::test_namespace(&client, "dns01").await?;
    fixtures::pebble_objects(&client, &ns, &pebble, Some(&pebble.eab_hmac)).await?;
    fixtures::region_validation(&client, &ns, &format!("{ns}.region.se")).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut wrong =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &bind.key_secret)?;
    wrong[0] ^= 0xff;
    let wrong = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &wrong);
    for (name, secret) in [("tsig", bind.key_secret.clone()), ("tsig-wrong", wrong)] {
        let s: Secret = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name }, "stringData": { "secret": secret },
        }))?;
        secrets.create(&Default::default(), &s).await?;
    }
    let issuers: Api<PublicIssuer> = Api::all(client.clone());
    for (name, secret) in [(ns.clone(), "tsig"), (format!("{ns}-wrong"), "tsig-wrong")] {
        let yaml = format!(
            "{}    dns01:\n      rfc2136:\n        nameserver: \"{}\"\n        zone: region.se\n        tsigKeyName: {}\n        tsigSecretRef: {{ name: {secret}, namespace: {ns} }}\n",
            fixtures::pebble_issuer_yaml(&name, &ns, &pebble)
                .replace("  additionalTrustAnchors", "__ANCHORS__")
                .split("__ANCHORS__")
                .next()
                .unwrap_or_default(),
            bind.addr,
            e2e::bind::KEY_NAME,
        );
        let rest = fixtures::pebble_issuer_yaml(&name, &ns, &pebble);
        let anchors = &rest[rest.find("  additionalTrustAnchors").unwrap_or(rest.len())..];
        apply(&issuers, &format!("{yaml}{anchors}")).await?;
    }
    let kubeconfig = cp.dir.join(format!("{ns}.kubeconfig"));
    e2e::rbac::write_operator_kubeconfig(cp, &kubeconfig)?;
    let ca = siths_ca_bundle(cp)?;
    let args = [
        "--siths-ca-file".to_string(),
        ca.to_string_lossy().into_owned(),
        "--acme-http01-port".into(),
        http_port.to_string(),
        "--lease-name".into(),
        ns.clone(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    for (name, issuer) in [("web", ns.clone()), ("bad", format!("{ns}-wrong"))] {
        apply(
            &certs,
            &format!(
                r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: {name} }}
spec:
  purpose: UserFacing
  dnsNames: ["*.{name}.{ns}.region.se", "internal.{name}.{ns}.region.se"]
  secretName: {name}-tls
  issuerRef: {{ kind: PublicIssuer, name: {issuer} }}
"#
            ),
        )
        .await?;
    }
    // A record a crashed operator left in the middle of an order: removed at start-up (the
    // cleanup after an order removes only the strings it added).
    let stale = format!("_acme-challenge.internal.web.{ns}.region.se");
    bind.set_txt(&stale, "left-by-a-crash")?;
    let _operator = OperatorProcess::start(cp, &kubeconfig, &args)?;
    wait_condition(
        &certs,
        "web",
        "Ready",
        "True",
        None,
        Duration::from_secs(180),
    )
    .await?;
    for record in [
        format!("_acme-challenge.web.{ns}.region.se"),
        format!("_acme-challenge.internal.web.{ns}.region.se"),
    ] {
        assert!(bind.txt(&record)?.is_empty(), "{record} left behind");
    }
    let bad = wait_condition(
        &certs,
        "bad",
        "Ready",
        "False",
        Some("AcmeDnsUpdateFailed"),
        Duration::from_secs(120),
    )
    .await?;
    let (_, _, message) = e2e::k8s::condition(&bad, "Ready").unwrap_or_default();
    assert!(message.contains(e2e::bind::KEY_NAME), "{message}");
    assert!(!message.contains(&bind.key_secret), "{message}");
    // Bounded retries: a few refused updates, not one per second.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let refused = bind.log().matches("request has invalid signature").count();
    assert!(
        (1..=6).contains(&refused),
        "BIND refused {refused} updates:\n{}",
        bind.log()
    );
    Ok(())
}
