//! The ground everything else stands on: a real kube-apiserver with our CRDs, garbage
//! collection by a real controller-manager, and an operator process that starts and stops.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
    core::Status,
};
use siths_operator::api::{DomainValidation, ServiceCertificate};

#[tokio::test]
async fn apiserver_is_the_real_kubernetes_version() -> Result<()> {
    let cp = e2e::shared();
    let client = cp.client().await?;
    let version = client.apiserver_version().await?;
    assert_eq!(version.git_version, e2e::controlplane::KUBERNETES_VERSION);
    eprintln!("control plane startup: {:.1} s", cp.startup_seconds);
    Ok(())
}

#[tokio::test]
async fn custom_resource_round_trips_through_the_apiserver() -> Result<()> {
    let client = e2e::shared().client().await?;
    let api: Api<DomainValidation> = Api::all(client);
    let dv: DomainValidation = serde_yaml::from_str(
        r#"
apiVersion: siths-operator.io/v1alpha1
kind: DomainValidation
metadata:
  name: roundtrip-region-example-se
spec:
  domain: region.example.se
  includeSubdomains: true
  owner:
    name: Region Exempel
    organizationNumber: "232100-0016"
  validatedFor: "232100-0016"
  evidence:
    formReference: DV-2026-0042
    submittedBy: Anna Andersson
    approvedOn: "2026-01-15"
  validUntil: "2028-01-14"
"#,
    )?;
    let created = api.create(&PostParams::default(), &dv).await?;
    let read = api.get("roundtrip-region-example-se").await?;
    assert_eq!(read.spec, dv.spec);
    assert_eq!(read.metadata.uid, created.metadata.uid);
    api.delete("roundtrip-region-example-se", &DeleteParams::default())
        .await?;
    Ok(())
}

async fn create_rejected(ns: &str, yaml: &str) -> Result<Status> {
    let client = e2e::shared().client().await?;
    let api: Api<ServiceCertificate> = Api::namespaced(client, ns);
    let obj: ServiceCertificate = serde_yaml::from_str(yaml)?;
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => anyhow::bail!("the apiserver accepted an invalid object:\n{yaml}"),
        Err(kube::Error::Api(resp)) => Ok(*resp),
        Err(e) => Err(e.into()),
    }
}

#[tokio::test]
async fn apiserver_rejects_objects_that_violate_the_crd_schema() -> Result<()> {
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, "schema").await?;
    let err = create_rejected(
        &ns,
        r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: { name: browser-on-siths }
spec:
  purpose: UserFacing
  dnsNames: [www.region.example.se]
  secretName: www-tls
  issuerRef: { kind: SithsIssuer, name: region }
"#,
    )
    .await?;
    assert_eq!(err.code, 422, "{err:?}");
    assert!(
        err.message
            .contains("a UserFacing certificate must use a PublicIssuer"),
        "{}",
        err.message
    );

    let err = create_rejected(
        &ns,
        r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: { name: bad-names }
spec:
  purpose: ServerToServer
  hsaId: SE2321000016-ÅÄÖ
  dnsNames: [Api.Region.se.]
  secretName: api-tls
  issuerRef: { kind: SithsIssuer, name: region }
"#,
    )
    .await?;
    assert_eq!(err.code, 422, "{err:?}");
    assert!(
        err.message.contains("hsaId must look like"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("must be a lowercase DNS name"),
        "{}",
        err.message
    );
    Ok(())
}

#[tokio::test]
async fn controller_manager_collects_garbage_and_deletes_namespaces() -> Result<()> {
    let client = e2e::shared().client().await?;
    let ns = e2e::test_namespace(&client, "gc").await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "owner"}}))?,
        )
        .await?;
    let dependent: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "dependent", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
            "uid": owner.metadata.uid.clone().unwrap()
        }]}
    }))?;
    cms.create(&PostParams::default(), &dependent).await?;
    cms.delete("owner", &DeleteParams::default()).await?;
    e2e::eventually(
        Duration::from_secs(60),
        "the owned ConfigMap to be garbage-collected",
        || {
            let cms = cms.clone();
            async move { Ok(cms.get_opt("dependent").await?.is_none().then_some(())) }
        },
    )
    .await?;

    let namespaces: Api<Namespace> = Api::all(client);
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    e2e::eventually(
        Duration::from_secs(60),
        "the namespace deletion to complete",
        || {
            let namespaces = namespaces.clone();
            let ns = ns.clone();
            async move { Ok(namespaces.get_opt(&ns).await?.is_none().then_some(())) }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn operator_starts_watches_and_stops_cleanly_on_sigterm() -> Result<()> {
    let cp = e2e::shared();
    let kubeconfig = e2e::rbac::operator_kubeconfig(cp)?;
    let mut op = e2e::operator::OperatorProcess::start(cp, &kubeconfig, &[])?;
    op.wait_for_log("watching", Duration::from_secs(60)).await?;
    let status = op.terminate(Duration::from_secs(20)).await?;
    assert!(status.success(), "exit status {status}:\n{}", op.output());
    let log = op.output();
    assert!(log.contains("SIGTERM received"), "{log}");
    // Structured JSON lines.
    let first = log.lines().next().unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(first)?;
    assert!(parsed.get("level").is_some(), "{first}");
    Ok(())
}

/// The operator's event publisher against the real apiserver: a repeat raises the series
/// count of the Event already there (the apiserver accepts the patch), a changed note is a
/// new Event, and a repeat of an Event deleted meanwhile publishes it anew.
#[tokio::test]
async fn events_fold_repeats_into_a_series_on_the_real_apiserver() -> Result<()> {
    use k8s_openapi::api::events::v1::Event;
    use kube::{Resource, api::ListParams};
    use siths_operator::events::{Note, Publisher};

    let cp = e2e::shared();
    let client = cp.client().await?;
    let ns = e2e::test_namespace(&client, "events").await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "subject"}}))?;
    let cm = cms.create(&PostParams::default(), &cm).await?;
    let regarding = cm.object_ref(&());
    let publisher = Publisher::new(client.clone(), "siths-operator-e2e", None);
    let note = |text| Note {
        warning: true,
        reason: "Refused",
        action: "Reconcile",
        note: text,
        related: None,
    };
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let listed = || async {
        let mut v: Vec<(String, i32)> = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(|e| {
                (
                    e.note.unwrap_or_default(),
                    e.series.map(|s| s.count).unwrap_or(1),
                )
            })
            .collect();
        v.sort();
        anyhow::Ok(v)
    };

    for _ in 0..3 {
        publisher.publish(&regarding, note("first text")).await?;
    }
    assert_eq!(listed().await?, vec![("first text".to_string(), 3)]);

    publisher.publish(&regarding, note("second text")).await?;
    assert_eq!(
        listed().await?,
        vec![
            ("first text".to_string(), 3),
            ("second text".to_string(), 1)
        ]
    );

    // Deleted meanwhile (by its TTL, or by hand): the repeat is published anew.
    events
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    publisher.publish(&regarding, note("first text")).await?;
    assert_eq!(listed().await?, vec![("first text".to_string(), 1)]);
    assert_eq!(publisher.remembered(), 2);
    Ok(())
}
