//! Every example applies to the real apiserver and reaches the state its README promises.

use std::time::Duration;

use anyhow::Result;
use e2e::k8s::{apply_manifests, shared_operator, wait_condition};
use kube::Api;
use siths_operator::api::{
    CertificateOrder, OrderPhase, PublicIssuer, ServiceCertificate, SithsIssuer,
};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn examples_reach_the_states_their_readmes_promise() -> Result<()> {
    let _ = shared_operator();
    let client = e2e::shared().client().await?;
    let examples = e2e::controlplane::workspace_root().join("examples");
    // examples/gateway and the migration export hold Gateway API objects: the real CRDs
    // (and their validation rules) must be there first.
    e2e::gatewayapi::install_crds(&client).await?;
    let applied = apply_manifests(&client, &examples).await?;
    assert!(applied.len() >= 12, "{applied:?}");
    for (kind, name) in [
        ("Gateway", "vardportal"),
        ("Gateway", "vardportal-public"),
        ("HTTPRoute", "vardportal"),
        ("BackendTLSPolicy", "vardportal-api"),
        ("SithsTrustBundle", "vardportal-siths"),
    ] {
        assert!(
            applied.iter().any(|(k, _, n)| k == kind && n == name),
            "examples/gateway: {kind} {name} not applied: {applied:?}"
        );
    }

    // test-environment: issued at once, no order waiting.
    let journal: Api<ServiceCertificate> = Api::namespaced(client.clone(), "journal");
    let cert = wait_condition(
        &journal,
        "journal-api",
        "Ready",
        "True",
        Some("Issued"),
        WAIT,
    )
    .await?;
    assert_eq!(cert.status.unwrap().revision, Some(1));
    // test-environment: the Java service's certificate gets its key stores.
    wait_condition(&journal, "journal-java", "Keystores", "True", None, WAIT).await?;
    let java = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "journal")
        .get("journal-java-tls")
        .await?;
    let data = java.data.unwrap_or_default();
    assert!(data.contains_key("keystore.p12") && data.contains_key("truststore.p12"));

    // region-production: waiting for approval, 3 500 SEK.
    let issuers: Api<SithsIssuer> = Api::all(client.clone());
    wait_condition(&issuers, "region-exempel", "Ready", "True", None, WAIT).await?;
    let integration: Api<ServiceCertificate> = Api::namespaced(client.clone(), "integration");
    wait_condition(
        &integration,
        "patientjournal-link",
        "Issuing",
        "True",
        Some("WaitingForApproval"),
        WAIT,
    )
    .await?;
    let orders: Api<CertificateOrder> = Api::namespaced(client.clone(), "integration");
    let order = orders.get("patientjournal-link-1").await?;
    assert_eq!(order.spec.estimated_cost_sek, 3500);
    assert_eq!(
        order.status.unwrap().phase,
        Some(OrderPhase::PendingApproval)
    );

    // private-care-provider: power of attorney lets it through the gate; 750 SEK.
    let vard: Api<ServiceCertificate> = Api::namespaced(client.clone(), "vardbolaget");
    wait_condition(
        &vard,
        "booking-backend",
        "DomainValidated",
        "True",
        None,
        WAIT,
    )
    .await?;
    wait_condition(
        &vard,
        "booking-backend",
        "Issuing",
        "True",
        Some("WaitingForApproval"),
        WAIT,
    )
    .await?;
    let orders: Api<CertificateOrder> = Api::namespaced(client.clone(), "vardbolaget");
    assert_eq!(
        orders
            .get("booking-backend-1")
            .await?
            .spec
            .estimated_cost_sek,
        750
    );

    // public-web: the three sources, a bought certificate waiting for a person, and the
    // Ingress in public mode getting its certificate without being modified.
    let public: Api<PublicIssuer> = Api::all(client.clone());
    wait_condition(
        &public,
        "telia",
        "Ready",
        "False",
        Some("AcmeConfigInvalid"),
        WAIT,
    )
    .await?;
    wait_condition(
        &public,
        "bought-certificates",
        "Ready",
        "True",
        Some("ManualReady"),
        WAIT,
    )
    .await?;
    wait_condition(
        &public,
        "via-cert-manager",
        "Ready",
        "False",
        Some("CertManagerNotInstalled"),
        WAIT,
    )
    .await?;
    let webb: Api<ServiceCertificate> = Api::namespaced(client.clone(), "webb");
    let c = wait_condition(
        &webb,
        "mina-sidor",
        "Ready",
        "False",
        Some("AwaitingCertificate"),
        WAIT,
    )
    .await?;
    let message = e2e::k8s::condition(&c, "Ready")
        .map(|c| c.2)
        .unwrap_or_default();
    assert!(
        message.contains("mina-sidor-tls") && message.contains("Telia's certificate portal"),
        "{message}"
    );
    let ingress =
        Api::<k8s_openapi::api::networking::v1::Ingress>::namespaced(client.clone(), "webb")
            .get("bokning")
            .await?;
    let derived = e2e::eventually(WAIT, "the Ingress's ServiceCertificate", || {
        let webb = webb.clone();
        async move { Ok(webb.get_opt("bokning-bokning-tls").await?) }
    })
    .await?;
    assert_eq!(derived.spec.dns_names, ["bokning.www.region-exempel.se"]);
    assert_eq!(derived.spec.secret_name, "bokning-tls");
    assert_eq!(derived.spec.issuer_ref.name, "telia");
    assert_eq!(
        derived.metadata.owner_references.unwrap_or_default()[0].uid,
        ingress.metadata.uid.clone().unwrap_or_default()
    );
    let after =
        Api::<k8s_openapi::api::networking::v1::Ingress>::namespaced(client.clone(), "webb")
            .get("bokning")
            .await?;
    assert_eq!(
        after.metadata.resource_version,
        ingress.metadata.resource_version
    );
    Ok(())
}
