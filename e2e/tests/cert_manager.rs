//! Delegation to cert-manager (`PublicIssuer.spec.certManager`) against a real apiserver
//! with the real cert-manager CRDs (from cert-manager's Go module, see
//! `e2e/src/certmanager.rs`): the `Certificate` the operator writes is accepted by
//! cert-manager's schema, has the right names, Secret, issuer, owner and serverAuth-only
//! usages, is not rewritten when nothing changed, and its readiness is mirrored from the
//! status cert-manager writes (here patched by the test, as cert-manager's controller
//! would).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result};
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use siths_operator::{
    api::{CertManagerIssuerRef, ServiceCertificate},
    controllers::cert_manager::{self, Delegation},
};
use tokio::sync::OnceCell;

/// What the API looked like before the cert-manager CRDs were installed.
#[derive(Debug, Clone)]
struct BeforeInstall {
    crds_present: bool,
    delegation: Delegation,
    removed: bool,
}

/// Installs the cert-manager CRDs once per test binary. The first test to get here checks,
/// before installing, that `crds_present` is false, that `ensure_certificate` reports
/// `CrdsMissing` and that `remove_certificate` has nothing to do; every test waits for the
/// install.
async fn install_once(client: &Client) -> Result<BeforeInstall> {
    static ONCE: OnceCell<std::result::Result<BeforeInstall, String>> = OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let run = async {
            let crds_present = cert_manager::crds_present(client).await?;
            let ns = e2e::test_namespace(client, "cm-absent").await?;
            let sc = service_certificate(client, &ns, "before-install").await?;
            let delegation = cert_manager::ensure_certificate(client, &sc, &issuer()).await?;
            let removed = cert_manager::remove_certificate(client, &sc).await?;
            e2e::certmanager::install_crds(client).await?;
            anyhow::Ok(BeforeInstall {
                crds_present,
                delegation,
                removed,
            })
        };
        run.await.map_err(|e| format!("{e:#}"))
    })
    .await
    .clone()
    .map_err(anyhow::Error::msg)
}

/// A client of the admin user that counts the write requests (anything but GET, HEAD and
/// OPTIONS) it sends, so "nothing is written" is observed on the wire, not inferred from a
/// resourceVersion (the apiserver also keeps the resourceVersion on a no-op apply).
async fn counting_client() -> Result<(Client, Arc<AtomicUsize>)> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&e2e::shared().kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let writes = Arc::new(AtomicUsize::new(0));
    let counter = writes.clone();
    let count = move |request: http::Request<kube::client::Body>| {
        if !matches!(
            *request.method(),
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        ) {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Ok::<_, tower::BoxError>(request)
    };
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&tower::filter::FilterLayer::new(count))
        .build();
    Ok((client, writes))
}

fn issuer() -> CertManagerIssuerRef {
    serde_json::from_value(json!({"name": "public-ca", "kind": "ClusterIssuer"})).expect("issuer")
}

async fn service_certificate(client: &Client, ns: &str, name: &str) -> Result<ServiceCertificate> {
    let api: Api<ServiceCertificate> = Api::namespaced(client.clone(), ns);
    let sc: ServiceCertificate = serde_json::from_value(json!({
        "apiVersion": "siths-operator.io/v1alpha1",
        "kind": "ServiceCertificate",
        "metadata": {"name": name},
        "spec": {
            "purpose": "UserFacing",
            "dnsNames": [format!("{name}.region.example.se"), format!("www.{name}.region.example.se")],
            "secretName": format!("{name}-tls"),
            "issuerRef": {"kind": "PublicIssuer", "name": "via-cert-manager"},
        }
    }))?;
    Ok(api.create(&PostParams::default(), &sc).await?)
}

fn certificates(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &cert_manager::api_resource())
}

fn resource_version(obj: &DynamicObject) -> String {
    obj.metadata.resource_version.clone().unwrap_or_default()
}

async fn set_status(api: &Api<DynamicObject>, name: &str, conditions: Value) -> Result<()> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": conditions}})),
    )
    .await
    .context("patching the Certificate's status as cert-manager would")?;
    Ok(())
}

#[tokio::test]
async fn crds_present_is_false_until_the_real_cert_manager_crds_are_installed() -> Result<()> {
    let client = e2e::shared().client().await?;
    let before = install_once(&client).await?;
    assert!(
        !before.crds_present,
        "crds_present said true before the cert-manager CRDs were installed"
    );
    assert_eq!(
        before.delegation,
        Delegation::CrdsMissing {
            message: cert_manager::CRDS_MISSING_MESSAGE.to_string()
        }
    );
    assert!(!before.removed);
    assert!(cert_manager::crds_present(&client).await?);
    eprintln!(
        "cert-manager {} CRDs installed from {}",
        e2e::certmanager::CERT_MANAGER_VERSION,
        e2e::certmanager::crd_dir()?.display()
    );
    Ok(())
}

#[tokio::test]
async fn the_real_crd_schema_rejects_what_cert_manager_would_not_accept() -> Result<()> {
    // Without this, accepting the operator's Certificate would prove nothing.
    let client = e2e::shared().client().await?;
    install_once(&client).await?;
    let ns = e2e::test_namespace(&client, "cm-schema").await?;
    let api = certificates(&client, &ns);
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "misspelt"},
        "spec": {
            "secretName": "x", "dnsNames": ["x.example.se"],
            "issuerRef": {"name": "public-ca", "kind": "ClusterIssuer"},
            "usages": ["serverAuth"],
        }
    }))?;
    match api.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 422, "{e:?}");
            assert!(e.message.contains("usages"), "{}", e.message);
        }
        other => panic!("the cert-manager schema accepted usages [serverAuth]: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn ensure_certificate_writes_a_certificate_the_real_crd_accepts_and_then_nothing()
-> Result<()> {
    let client = e2e::shared().client().await?;
    install_once(&client).await?;
    let ns = e2e::test_namespace(&client, "cm-write").await?;
    let sc = service_certificate(&client, &ns, "portal").await?;
    let api = certificates(&client, &ns);
    let (operator, writes) = counting_client().await?;

    let first = cert_manager::ensure_certificate(&operator, &sc, &issuer()).await?;
    assert_eq!(writes.load(Ordering::SeqCst), 1, "one apply creates it");
    assert!(
        matches!(&first, Delegation::Pending { reason, .. } if reason == cert_manager::REASON_WAITING),
        "{first:?}"
    );
    let stored = api.get("portal").await?;
    let spec = &stored.data["spec"];
    assert_eq!(spec["secretName"], "portal-tls");
    assert_eq!(
        spec["dnsNames"],
        json!(["portal.region.example.se", "www.portal.region.example.se"])
    );
    assert_eq!(
        spec["issuerRef"],
        json!({"name": "public-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
    );
    assert_eq!(
        spec["privateKey"],
        json!({"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always", "encoding": "PKCS8"})
    );
    assert_eq!(spec["usages"], json!(["digital signature", "server auth"]));
    assert_eq!(
        spec["secretTemplate"]["labels"]["siths-operator.io/certificate"],
        "portal"
    );
    let owners = stored.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].kind, "ServiceCertificate");
    assert_eq!(owners[0].name, "portal");
    assert_eq!(Some(&owners[0].uid), sc.metadata.uid.as_ref());
    assert_eq!(owners[0].controller, Some(true));

    // Nothing changed: nothing is written.
    let rv = resource_version(&stored);
    for _ in 0..3 {
        cert_manager::ensure_certificate(&operator, &sc, &issuer()).await?;
    }
    assert_eq!(
        writes.load(Ordering::SeqCst),
        1,
        "no write when nothing changed"
    );
    assert_eq!(resource_version(&api.get("portal").await?), rv);

    // Someone adds clientAuth: it is taken back out.
    api.patch(
        "portal",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"usages": ["digital signature", "server auth", "client auth"]}}),
        ),
    )
    .await?;
    cert_manager::ensure_certificate(&operator, &sc, &issuer()).await?;
    assert_eq!(writes.load(Ordering::SeqCst), 2);
    let stored = api.get("portal").await?;
    assert_eq!(
        stored.data["spec"]["usages"],
        json!(["digital signature", "server auth"])
    );

    // The ServiceCertificate's names change: the Certificate follows, once.
    let scs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    let sc = scs
        .patch(
            "portal",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"dnsNames": ["portal.region.example.se"]}})),
        )
        .await?;
    cert_manager::ensure_certificate(&operator, &sc, &issuer()).await?;
    let stored = api.get("portal").await?;
    assert_eq!(
        stored.data["spec"]["dnsNames"],
        json!(["portal.region.example.se"])
    );
    let rv = resource_version(&stored);
    cert_manager::ensure_certificate(&operator, &sc, &issuer()).await?;
    assert_eq!(writes.load(Ordering::SeqCst), 3);
    assert_eq!(resource_version(&api.get("portal").await?), rv);

    // The owner reference is real: deleting the ServiceCertificate collects the Certificate.
    scs.delete("portal", &DeleteParams::foreground()).await?;
    e2e::eventually(
        Duration::from_secs(60),
        "the Certificate to be garbage-collected",
        || {
            let api = api.clone();
            async move { Ok(api.get_opt("portal").await?.is_none().then_some(())) }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn ensure_certificate_mirrors_the_ready_condition_cert_manager_writes() -> Result<()> {
    let client = e2e::shared().client().await?;
    install_once(&client).await?;
    let ns = e2e::test_namespace(&client, "cm-ready").await?;
    let sc = service_certificate(&client, &ns, "shop").await?;
    let api = certificates(&client, &ns);
    let (operator, writes) = counting_client().await?;
    cert_manager::ensure_certificate(&operator, &sc, &issuer()).await?;
    let generation = api
        .get("shop")
        .await?
        .metadata
        .generation
        .context("generation")?;
    let now = "2026-11-29T10:00:00Z";

    set_status(
        &api,
        "shop",
        json!([
            {"type": "Ready", "status": "False", "reason": "DoesNotExist",
             "message": "Issuing certificate as Secret does not exist",
             "lastTransitionTime": now, "observedGeneration": generation},
            {"type": "Issuing", "status": "True", "reason": "DoesNotExist",
             "message": "Issuing certificate as Secret does not exist",
             "lastTransitionTime": now, "observedGeneration": generation},
        ]),
    )
    .await?;
    let rv = resource_version(&api.get("shop").await?);
    assert_eq!(
        cert_manager::ensure_certificate(&operator, &sc, &issuer()).await?,
        Delegation::Pending {
            reason: "DoesNotExist".into(),
            message: format!(
                "cert-manager Certificate {ns}/shop: Issuing certificate as Secret does not exist"
            ),
        }
    );

    set_status(
        &api,
        "shop",
        json!([
            {"type": "Ready", "status": "False", "reason": "DoesNotExist",
             "message": "Issuing certificate as Secret does not exist",
             "lastTransitionTime": now, "observedGeneration": generation},
            {"type": "Issuing", "status": "False", "reason": "Failed",
             "message": "The certificate request has failed to complete and will be retried: ClusterIssuer public-ca not found",
             "lastTransitionTime": now, "observedGeneration": generation},
        ]),
    )
    .await?;
    match cert_manager::ensure_certificate(&operator, &sc, &issuer()).await? {
        Delegation::Failed { reason, message } => {
            assert_eq!(reason, "Failed");
            assert!(
                message.contains("ClusterIssuer public-ca not found"),
                "{message}"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }

    set_status(
        &api,
        "shop",
        json!([
            {"type": "Ready", "status": "True", "reason": "Ready",
             "message": "Certificate is up to date and has not expired",
             "lastTransitionTime": now, "observedGeneration": generation},
        ]),
    )
    .await?;
    assert_eq!(
        cert_manager::ensure_certificate(&operator, &sc, &issuer()).await?,
        Delegation::Ready
    );
    assert_eq!(
        writes.load(Ordering::SeqCst),
        1,
        "mirroring cert-manager's status wrote nothing"
    );

    // Status changes are cert-manager's: none of them made the operator write the spec.
    let certificate = api.get("shop").await?;
    let writers: Vec<_> = certificate
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.is_none())
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(writers, ["siths-operator"], "spec writers: {writers:?}");
    assert_ne!(
        resource_version(&certificate),
        rv,
        "the status patches landed"
    );
    Ok(())
}

#[tokio::test]
async fn a_certificate_that_is_not_ours_is_left_alone() -> Result<()> {
    let client = e2e::shared().client().await?;
    install_once(&client).await?;
    let ns = e2e::test_namespace(&client, "cm-foreign").await?;
    let api = certificates(&client, &ns);
    let theirs: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "intranet"},
        "spec": {
            "secretName": "their-tls", "dnsNames": ["intranet.region.example.se"],
            "issuerRef": {"name": "their-ca", "kind": "Issuer"},
        }
    }))?;
    let theirs = api.create(&PostParams::default(), &theirs).await?;
    let sc = service_certificate(&client, &ns, "intranet").await?;
    let (operator, writes) = counting_client().await?;
    match cert_manager::ensure_certificate(&operator, &sc, &issuer()).await? {
        Delegation::Failed { reason, message } => {
            assert_eq!(reason, cert_manager::REASON_NOT_OWNED);
            assert!(message.contains("delete or rename"), "{message}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(
        !cert_manager::remove_certificate(&operator, &sc).await?,
        "removed a Certificate that is not ours"
    );
    assert_eq!(writes.load(Ordering::SeqCst), 0);
    let after = api.get("intranet").await?;
    assert_eq!(resource_version(&after), resource_version(&theirs));
    assert_eq!(after.data["spec"]["secretName"], "their-tls");
    Ok(())
}

/// The `ClusterIssuer` resource of cert-manager.
fn cluster_issuers(client: &Client) -> Api<DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("cert-manager.io", "v1", "ClusterIssuer");
    Api::all_with(
        client.clone(),
        &kube::api::ApiResource::from_gvk_with_plural(&gvk, "clusterissuers"),
    )
}

fn ready_condition(obj: &DynamicObject) -> Option<(String, String)> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

#[tokio::test]
async fn the_real_cert_manager_issues_the_certificate_the_operator_writes() -> Result<()> {
    use k8s_openapi::api::core::v1::Secret;
    use siths_operator::pki::{
        CertInfo, KeySpec, LocalCa, LocalCaOptions, Usage, key_pem_matches_spki, parse_pem_chain,
        verify_chain,
    };

    let cp = e2e::shared();
    let client = cp.client().await?;
    install_once(&client).await?;

    // A CA ClusterIssuer: its key pair in a Secret of the cluster resource namespace.
    let ca_ns = e2e::test_namespace(&client, "cm-ca").await?;
    let ca = LocalCa::generate(&LocalCaOptions {
        common_name: "cert-manager e2e Root CA".into(),
        organization: "siths-operator e2e".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: None,
        not_before: jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1),
        validity: Duration::from_secs(365 * 86_400),
    })?;
    let ca_secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "ca"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": ca.cert_pem(), "tls.key": ca.key_pem()},
    }))?;
    Api::<Secret>::namespaced(client.clone(), &ca_ns)
        .create(&PostParams::default(), &ca_secret)
        .await?;
    let issuer_name = format!("{ca_ns}-ca");
    let cluster_issuer: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
        "metadata": {"name": issuer_name},
        "spec": {"ca": {"secretName": "ca"}},
    }))?;
    let issuers = cluster_issuers(&client);
    issuers
        .create(&PostParams::default(), &cluster_issuer)
        .await?;

    let controller = e2e::certmanager::Controller::start(cp, &ca_ns)?;
    let started = std::time::Instant::now();
    let ready = e2e::eventually(
        Duration::from_secs(60),
        "the CA ClusterIssuer to be Ready",
        || {
            let issuers = issuers.clone();
            let name = issuer_name.clone();
            async move {
                let ci = issuers.get(&name).await?;
                Ok(ready_condition(&ci).filter(|(s, _)| s == "True"))
            }
        },
    )
    .await;
    ready.with_context(|| format!("cert-manager log:\n{}", controller.logs()))?;

    // The operator's Certificate, issued by the real cert-manager.
    let ns = e2e::test_namespace(&client, "cm-issue").await?;
    let sc = service_certificate(&client, &ns, "shop").await?;
    let issuer_ref: CertManagerIssuerRef =
        serde_json::from_value(json!({"name": issuer_name, "kind": "ClusterIssuer"}))?;
    let seen = Arc::new(std::sync::Mutex::new(Vec::<Delegation>::new()));
    let issued = e2e::eventually(
        Duration::from_secs(90),
        "ensure_certificate to report Ready",
        || {
            let (client, sc, issuer_ref, seen) =
                (client.clone(), sc.clone(), issuer_ref.clone(), seen.clone());
            async move {
                let d = cert_manager::ensure_certificate(&client, &sc, &issuer_ref).await?;
                let mut seen = seen.lock().expect("lock");
                if seen.last() != Some(&d) {
                    seen.push(d.clone());
                }
                Ok((d == Delegation::Ready).then_some(()))
            }
        },
    )
    .await;
    let seen = seen.lock().expect("lock").clone();
    issued.with_context(|| {
        format!(
            "delegation states: {seen:?}\ncert-manager log:\n{}",
            controller.logs()
        )
    })?;
    eprintln!(
        "cert-manager issued in {:.1} s; delegation went through {seen:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        seen.iter().any(|d| matches!(d, Delegation::Pending { .. })),
        "{seen:?}"
    );

    // What cert-manager wrote into the Secret is the certificate the ServiceCertificate
    // asked for, from the CA, with its own key.
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("shop-tls")
        .await?;
    // Labelled for the ServiceCertificate controller's Secret watch.
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    for (key, value) in [
        ("app.kubernetes.io/managed-by", "siths-operator"),
        ("siths-operator.io/certificate", "shop"),
        ("siths-operator.io/role", "certificate"),
    ] {
        assert_eq!(
            labels.get(key).map(String::as_str),
            Some(value),
            "{labels:?}"
        );
    }
    let data = secret.data.unwrap_or_default();
    let text = |key: &str| -> Result<String> {
        Ok(String::from_utf8(
            data.get(key)
                .with_context(|| format!("{key} in the Secret"))?
                .0
                .clone(),
        )?)
    };
    let chain = parse_pem_chain(&text("tls.crt")?)?;
    let leaf = CertInfo::parse(&chain[0])?;
    assert_eq!(
        leaf.dns_names,
        ["shop.region.example.se", "www.shop.region.example.se"]
    );
    assert!(leaf.server_auth, "{}", leaf.eku_description());
    assert!(!leaf.client_auth, "{}", leaf.eku_description());
    assert_eq!(leaf.key_spec, Some(KeySpec::ECDSA_P256));
    verify_chain(
        &chain,
        ca.trust_anchors(),
        jiff::Timestamp::now(),
        Usage::UserFacing,
    )?;
    assert_eq!(
        key_pem_matches_spki(&text("tls.key")?, &leaf.public_key_der),
        Some(true)
    );

    // Ready, and still nothing to write.
    let (operator, writes) = counting_client().await?;
    assert_eq!(
        cert_manager::ensure_certificate(&operator, &sc, &issuer_ref).await?,
        Delegation::Ready
    );
    assert_eq!(writes.load(Ordering::SeqCst), 0);

    // The operator end to end: a UserFacing certificate on a certManager PublicIssuer is
    // delegated, and Ready only once the operator has verified what cert-manager wrote
    // (the test CA is trusted through additionalTrustAnchors, as a public root would be).
    let _ = e2e::k8s::shared_operator();
    let op_ns = e2e::test_namespace(&client, "cm-operator").await?;
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &op_ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "cm-root"}, "data": {"ca.crt": ca.root_pem()},
            }))?,
        )
        .await?;
    let public_issuers: Api<siths_operator::api::PublicIssuer> = Api::all(client.clone());
    e2e::k8s::apply(
        &public_issuers,
        &format!(
            "apiVersion: siths-operator.io/v1alpha1\nkind: PublicIssuer\nmetadata: {{name: {op_ns}}}\nspec:\n  certManager: {{issuerRef: {{name: {issuer_name}, kind: ClusterIssuer}}}}\n  additionalTrustAnchors: {{name: cm-root, namespace: {op_ns}, key: ca.crt}}\n  domainValidation: Disabled\n"
        ),
    )
    .await?;
    e2e::k8s::wait_condition(
        &public_issuers,
        &op_ns,
        "Ready",
        "True",
        Some("CertManagerReady"),
        Duration::from_secs(60),
    )
    .await?;
    let certs: Api<siths_operator::api::ServiceCertificate> =
        Api::namespaced(client.clone(), &op_ns);
    e2e::k8s::apply(
        &certs,
        &format!(
            "apiVersion: siths-operator.io/v1alpha1\nkind: ServiceCertificate\nmetadata: {{name: web}}\nspec:\n  purpose: UserFacing\n  dnsNames: [web.{op_ns}.region.se]\n  secretName: web-tls\n  issuerRef: {{kind: PublicIssuer, name: {op_ns}}}\n"
        ),
    )
    .await?;
    let started = std::time::Instant::now();
    let web = e2e::k8s::wait_condition(
        &certs,
        "web",
        "Ready",
        "True",
        Some("Verified"),
        Duration::from_secs(90),
    )
    .await
    .with_context(|| format!("cert-manager log:\n{}", controller.logs()))?;
    eprintln!(
        "operator + cert-manager: UserFacing certificate Ready (verified) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let st = web.status.unwrap_or_default();
    assert_eq!(st.route.as_deref(), Some("Public"));
    assert!(
        st.issuer
            .as_deref()
            .unwrap_or_default()
            .contains("cert-manager e2e Root CA"),
        "{st:?}"
    );
    drop(controller);
    Ok(())
}

#[tokio::test]
async fn remove_certificate_deletes_only_this_service_certificates_certificate() -> Result<()> {
    let client = e2e::shared().client().await?;
    install_once(&client).await?;
    let ns = e2e::test_namespace(&client, "cm-remove").await?;
    let sc = service_certificate(&client, &ns, "moved").await?;
    let api = certificates(&client, &ns);
    let (operator, writes) = counting_client().await?;
    // Nothing to remove yet: no write.
    assert!(!cert_manager::remove_certificate(&operator, &sc).await?);
    assert_eq!(writes.load(Ordering::SeqCst), 0);
    cert_manager::ensure_certificate(&operator, &sc, &issuer()).await?;
    assert!(api.get_opt("moved").await?.is_some());
    assert!(cert_manager::remove_certificate(&operator, &sc).await?);
    assert_eq!(writes.load(Ordering::SeqCst), 2, "one apply, one delete");
    assert!(api.get_opt("moved").await?.is_none());
    Ok(())
}
