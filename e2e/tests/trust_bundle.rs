//! `SithsTrustBundle` against the real apiserver: selected namespaces (also ones created
//! later) get `ca.crt`, others do not, deselected ones lose it, a tampered source is
//! refused with a condition and changes nothing, deleting the bundle removes its targets.

use std::time::Duration;

use anyhow::Result;
use e2e::{
    eventually,
    k8s::{apply, condition, shared_operator, wait_condition},
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use siths_operator::{
    api::SithsTrustBundle,
    pki::{self, KeySpec, LocalCa, LocalCaOptions, siths},
};

const WAIT: Duration = Duration::from_secs(60);

async fn namespace(client: &Client, name: &str, label: Option<&str>) -> Result<()> {
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": label.map(|l| serde_json::json!({"siths-trust": l})).unwrap_or(serde_json::json!({}))}
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

async fn target(client: &Client, ns: &str, name: &str) -> Result<Option<ConfigMap>> {
    Ok(Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?)
}

fn fingerprints(cm: &ConfigMap) -> Vec<String> {
    let pem = cm.data.as_ref().unwrap()["ca.crt"].clone();
    pki::parse_pem_chain(&pem)
        .unwrap()
        .iter()
        .map(|d| pki::sha256_fingerprint(d))
        .collect()
}

#[tokio::test]
async fn trust_bundle_follows_its_selector_and_refuses_tampered_sources() -> Result<()> {
    let _ = shared_operator();
    let client = e2e::shared().client().await?;
    let id = std::process::id();
    let tag = format!("t{id}");
    let (a, b, c) = (
        format!("trust-a-{id}"),
        format!("trust-b-{id}"),
        format!("trust-c-{id}"),
    );
    namespace(&client, &a, Some(&tag)).await?;
    namespace(&client, &b, None).await?;

    let bundles: Api<SithsTrustBundle> = Api::all(client.clone());
    let name = format!("siths-{id}");
    let bundle_yaml = |production: &str| {
        format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsTrustBundle
metadata: {{ name: {name} }}
spec:
  sources:
    production: {production}
    test: {{}}
  target:
    configMapName: siths-ca
    namespaceSelector:
      matchLabels: {{ siths-trust: {tag} }}
"#
        )
    };
    // Pinned sources from the operator's --siths-ca-file (the real SITHS CAs).
    apply(&bundles, &bundle_yaml("{}")).await?;
    let tb = wait_condition(&bundles, &name, "Synced", "True", Some("Synced"), WAIT).await?;
    let st = tb.status.unwrap();
    assert_eq!(st.namespaces, 1);
    let in_a = eventually(WAIT, "ca.crt in the selected namespace", || async {
        target(&client, &a, "siths-ca").await
    })
    .await?;
    assert_eq!(
        fingerprints(&in_a),
        [
            siths::PRODUCTION_ROOT_SHA256,
            siths::PRODUCTION_ISSUING_SHA256,
            siths::TEST_ROOT_SHA256,
            siths::TEST_ISSUING_SHA256
        ]
    );
    assert_eq!(st.fingerprints.len(), 4);
    assert_eq!(
        in_a.metadata.labels.as_ref().unwrap()["siths-operator.io/trust-bundle"],
        name
    );
    assert!(
        target(&client, &b, "siths-ca").await?.is_none(),
        "unselected namespace left alone"
    );

    // A namespace created later is filled too; the first target is not rewritten.
    namespace(&client, &c, Some(&tag)).await?;
    eventually(WAIT, "ca.crt in the later namespace", || async {
        target(&client, &c, "siths-ca").await
    })
    .await?;
    wait_for_namespaces(&bundles, &name, 2).await?;
    let again = target(&client, &a, "siths-ca").await?.unwrap();
    assert_eq!(
        again.metadata.resource_version, in_a.metadata.resource_version,
        "no write when nothing changed"
    );

    // Deselected: the target goes.
    Api::<Namespace>::all(client.clone())
        .patch(
            &a,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"siths-trust": null}}})),
        )
        .await?;
    eventually(
        WAIT,
        "target removed from the deselected namespace",
        || async {
            Ok(target(&client, &a, "siths-ca")
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await?;
    wait_for_namespaces(&bundles, &name, 1).await?;

    // A tampered source: a root named like SITHS e-id Root CA v2 with another key.
    let forged = LocalCa::generate(&LocalCaOptions {
        common_name: "SITHS e-id Root CA v2".into(),
        organization: "Inera AB".into(),
        key: KeySpec::ECDSA_P256,
        intermediate_common_name: None,
        not_before: jiff::Timestamp::now(),
        validity: Duration::from_secs(86_400),
    })?;
    let src: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "tampered-siths-ca", "namespace": b},
        "data": {"ca.crt": forged.root_pem()}
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), &b)
        .create(&PostParams::default(), &src)
        .await?;
    let before = target(&client, &c, "siths-ca").await?.unwrap();
    apply(
        &bundles,
        &bundle_yaml(&format!(
            "{{ configMap: {{ name: tampered-siths-ca, namespace: {b} }} }}"
        )),
    )
    .await?;
    let tb = wait_condition(
        &bundles,
        &name,
        "Synced",
        "False",
        Some("SourceRejected"),
        WAIT,
    )
    .await?;
    let (_, _, message) = condition(&tb, "Synced").unwrap();
    assert!(message.contains(siths::PRODUCTION_ROOT_SHA256), "{message}");
    assert!(
        message.contains(&pki::sha256_fingerprint(&forged.root_der())),
        "{message}"
    );
    let after = target(&client, &c, "siths-ca").await?.unwrap();
    assert_eq!(after.data, before.data, "never a silent update");
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );

    // Deleting the bundle removes its targets (they are owned by it).
    bundles.delete(&name, &DeleteParams::default()).await?;
    eventually(WAIT, "targets removed with the bundle", || async {
        Ok(target(&client, &c, "siths-ca")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    Ok(())
}

async fn wait_for_namespaces(bundles: &Api<SithsTrustBundle>, name: &str, n: u32) -> Result<()> {
    eventually(WAIT, &format!("status.namespaces = {n}"), || async {
        let tb = bundles.get(name).await?;
        Ok((tb.status.map(|s| s.namespaces) == Some(n)).then_some(()))
    })
    .await
}
