//! `sithsctl orders list` when one stored order does not read as the operator's type (an
//! object stored before a schema rule existed): the others are listed and one line names
//! the bad one with its field. Admission refuses such an order now, so the test loosens
//! this control plane's CRD for one create and restores it (its own test binary, so no
//! other test sees the loosened CRD).

use std::time::Duration;

use anyhow::{Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api,
    api::{DynamicObject, PostParams},
    core::{ApiResource, GroupVersionKind},
};

const CRD: &str = "certificateorders.siths-operator.io";
const REVISION: &str =
    "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/revision";

fn order(name: &str, revision: u64) -> Result<DynamicObject> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "siths-operator.io/v1alpha1",
        "kind": "CertificateOrder",
        "metadata": { "name": name },
        "spec": {
            "certificateName": "api", "revision": revision, "issuerName": "region",
            "dnsNames": ["api.region.se"], "subject": "CN=api.region.se",
            "csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
        },
    }))?)
}

#[tokio::test]
async fn orders_list_names_an_order_that_does_not_read_and_lists_the_others() -> Result<()> {
    let cp = e2e::shared();
    let client = cp.client().await?;
    let ns = e2e::test_namespace(&client, "lists").await?;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "siths-operator.io",
        "v1alpha1",
        "CertificateOrder",
    ));
    let orders: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    orders
        .create(&PostParams::default(), &order("good-1", 1)?)
        .await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // Sets (or, with None, removes) the revision's maximum in the stored CRD.
    let set_max = |max: Option<u64>| {
        let crds = crds.clone();
        async move {
            let mut v = serde_json::to_value(crds.get(CRD).await?)?;
            let revision = v
                .pointer_mut(REVISION)
                .and_then(|r| r.as_object_mut())
                .expect("revision in the CRD");
            match max {
                Some(m) => revision.insert("maximum".into(), m.into()),
                None => revision.remove("maximum"),
            };
            crds.replace(CRD, &PostParams::default(), &serde_json::from_value(v)?)
                .await?;
            anyhow::Ok(())
        }
    };
    // As an older CRD without the bound: revision 2^32 is stored.
    set_max(None).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match orders
            .create(&PostParams::default(), &order("bad-1", 4_294_967_296)?)
            .await
        {
            Ok(_) => break,
            Err(kube::Error::Api(e)) if e.code == 422 && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => bail!("the loosened CRD still refuses: {e}"),
        }
    }
    set_max(Some(4_294_967_295)).await?;

    let out = e2e::k8s::sithsctl_output(&cp.kubeconfig, &["orders", "list", "-n", &ns])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("good-1"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "error: CertificateOrder {ns}/bad-1 cannot be read: spec.revision: invalid value: integer `4294967296`, expected u32; left out"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("BEGIN CERTIFICATE REQUEST"), "{stdout}");
    Ok(())
}
