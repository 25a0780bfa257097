//! A CertificateOrder the operator's type cannot read (an older, looser schema admitted
//! it) with a private key pasted into it: the key never reaches the operator's log, the
//! order is named (the certificate's condition, an event on the issuer), and the other
//! orders keep flowing. Its own binary, because it loosens the CRD of its control plane.

use std::time::Duration;

use anyhow::Result;
use e2e::{
    fixtures::{local_ca_scenario, server_certificate},
    k8s::{condition, siths_ca_bundle, wait_condition},
    operator::OperatorProcess,
};
use k8s_openapi::{
    api::core::v1::Event,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use siths_operator::{
    api::ServiceCertificate,
    pki::{CertificateProfile, KeySpec, Usage, build_csr},
};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn an_unreadable_order_is_named_never_logged_and_stops_nothing_else() -> Result<()> {
    let cp = e2e::shared();
    let client = cp.client().await?;
    let ns = e2e::test_namespace(&client, "unreadable").await?;
    local_ca_scenario(&client, &ns).await?;

    // An older schema: `revision` any integer, as if the range had not been enforced.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "certificateorders.siths-operator.io",
        &PatchParams::default(),
        &Patch::<()>::Json(serde_json::from_value(serde_json::json!([{
            "op": "replace",
            "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/revision",
            "value": { "type": "integer", "description": "older schema" }
        }]))?),
    )
    .await?;

    // A person's mistake: a key pasted where the certificate goes, in an order whose
    // revision no u32 holds. It sits where the operator will look for victim's order.
    let key = KeySpec::RSA_2048.generate()?;
    let key_pem = key.to_pem();
    let secret_line = key_pem.lines().nth(3).unwrap_or_default().to_string();
    let csr = build_csr(
        &CertificateProfile {
            dns_names: vec![format!("victim.{ns}.region.se")],
            hsa_id: Some("SE2321000016-VIC1".into()),
            organization: "Region Exempel".into(),
            locality: None,
            usage: Usage::ServerToServer,
        },
        &key,
    )?;
    let order: serde_json::Value = serde_json::json!({
        "apiVersion": "siths-operator.io/v1alpha1",
        "kind": "CertificateOrder",
        "metadata": {
            "name": "victim-1",
            "namespace": ns,
            "labels": { "siths-operator.io/issuer": ns, "siths-operator.io/certificate": "victim" },
        },
        "spec": {
            "certificateName": "victim",
            "revision": 4_294_967_296_u64,
            "issuerName": ns,
            "dnsNames": [format!("victim.{ns}.region.se")],
            "hsaId": "SE2321000016-VIC1",
            "subject": "CN=victim",
            "csr": csr,
            "estimatedCostSek": 150,
            "certificate": key_pem,
        },
    });
    let orders: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "siths-operator.io",
            "v1alpha1",
            "CertificateOrder",
        )),
    );
    e2e::eventually(WAIT, "the looser schema to admit the order", || {
        let orders = orders.clone();
        let order = order.clone();
        async move {
            Ok(orders
                .create(&PostParams::default(), &serde_json::from_value(order)?)
                .await
                .ok()
                .map(|_| ()))
        }
    })
    .await?;

    let kubeconfig = cp.dir.join(format!("{ns}.kubeconfig"));
    e2e::rbac::write_operator_kubeconfig(cp, &kubeconfig)?;
    let ca = siths_ca_bundle(cp)?;
    let operator = OperatorProcess::start(
        cp,
        &kubeconfig,
        &[
            "--siths-ca-file",
            &ca.to_string_lossy(),
            "--lease-name",
            &ns,
        ],
    )?;

    let domain = format!("{ns}.region.se");
    server_certificate(
        &client,
        &ns,
        "healthy",
        &format!("ok.{domain}"),
        "SE2321000016-OK01",
        &ns,
        "healthy-tls",
    )
    .await?;
    server_certificate(
        &client,
        &ns,
        "victim",
        &format!("victim.{domain}"),
        "SE2321000016-VIC1",
        &ns,
        "victim-tls",
    )
    .await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    // The others keep flowing: a certificate applied after the bad order is issued.
    wait_condition(&certs, "healthy", "Ready", "True", Some("Issued"), WAIT).await?;
    // The one whose order cannot be read says so, and orders nothing else.
    let victim = wait_condition(
        &certs,
        "victim",
        "Issuing",
        "False",
        Some("OrderUnreadable"),
        WAIT,
    )
    .await?;
    let (_, _, message) = condition(&victim, "Issuing").unwrap_or_default();
    assert!(message.contains("victim-1"), "{message}");
    // The issuer names it in an event and still counts the others.
    let events: Api<Event> = Api::all(client.clone());
    e2e::eventually(WAIT, "the issuer's OrderUnreadable event", || {
        let events = events.clone();
        let ns = ns.clone();
        async move {
            let list = events.list(&ListParams::default()).await?;
            Ok(list
                .items
                .iter()
                .find(|e| {
                    e.reason.as_deref() == Some("OrderUnreadable")
                        && e.involved_object.kind.as_deref() == Some("SithsIssuer")
                        && e.message
                            .as_deref()
                            .is_some_and(|m| m.contains(&format!("{ns}/victim-1")))
                })
                .map(|_| ()))
        }
    })
    .await?;
    for e in events.list(&ListParams::default()).await?.items {
        let text = e.message.unwrap_or_default();
        assert!(!text.contains(&secret_line), "key text in an event: {text}");
    }
    let st = certs.get("victim").await?.status.unwrap_or_default();
    assert!(!serde_json::to_string(&st)?.contains(&secret_line));

    // The log names the order and holds no key text.
    let log = operator.output();
    assert!(
        log.contains("victim-1"),
        "the bad order is not named in the log"
    );
    assert!(!log.contains(&secret_line), "key text in the operator log");
    assert!(
        !log.contains("BEGIN PRIVATE KEY"),
        "key text in the operator log"
    );
    Ok(())
}
