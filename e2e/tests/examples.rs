//! Every example applies to the real apiserver and reaches the state its README promises.

use std::time::Duration;

use anyhow::Result;
use e2e::k8s::{apply_manifests, shared_operator, wait_condition};
use kube::Api;
use siths_operator::api::{CertificateOrder, OrderPhase, ServiceCertificate, SithsIssuer};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn examples_reach_the_states_their_readmes_promise() -> Result<()> {
    let _ = shared_operator();
    let client = e2e::shared().client().await?;
    let examples = e2e::controlplane::workspace_root().join("examples");
    let applied = apply_manifests(&client, &examples).await?;
    assert!(applied.len() >= 12, "{applied:?}");

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
    Ok(())
}
