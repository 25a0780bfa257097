//! What `cargo xtask demo` waits for and prints.

use std::time::Duration;

use anyhow::Result;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, ListParams},
};
use siths_operator::api::{DomainValidation, PublicIssuer, ServiceCertificate, SithsIssuer};

use crate::{controlplane::ControlPlane, pebble::Pebble};

/// Namespace of the stand-in's objects (the operator's namespace, as in examples/).
const OPERATOR_NAMESPACE: &str = "siths-operator";

/// Points the example PublicIssuer `telia` at `pebble`: the EAB key Telia's portal would
/// give goes into Secret `siths-operator/telia-eab` (as the example's README says), the
/// directory and its HTTPS CA and Pebble's roots (a test CA, added explicitly) into the
/// issuer.
pub async fn use_pebble_for_telia(client: &Client, pebble: &Pebble) -> Result<()> {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::api::{Patch, PatchParams};
    let pp = PatchParams::apply("siths-demo").force();
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "telia-eab", "namespace": OPERATOR_NAMESPACE },
        "stringData": { "secret": crate::pebble::EAB_HMAC },
    });
    Api::<Secret>::namespaced(client.clone(), OPERATOR_NAMESPACE)
        .patch("telia-eab", &pp, &Patch::Apply(&secret))
        .await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    for (name, pem) in [
        ("pebble-https", pebble.server_ca_pem.clone()),
        ("pebble-roots", pebble.root_pem().await?),
    ] {
        let cm = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": name, "namespace": OPERATOR_NAMESPACE },
            "data": { "ca.crt": pem },
        });
        maps.patch(name, &pp, &Patch::Apply(&cm)).await?;
    }
    let patch = serde_json::json!({ "spec": {
        "acme": {
            "server": pebble.directory_url,
            "externalAccountBinding": { "keyId": crate::pebble::EAB_KID },
            "serverCa": { "name": "pebble-https", "namespace": OPERATOR_NAMESPACE, "key": "ca.crt" },
        },
        "additionalTrustAnchors": { "name": "pebble-roots", "namespace": OPERATOR_NAMESPACE, "key": "ca.crt" },
    }});
    Api::<PublicIssuer>::all(client.clone())
        .patch("telia", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Waits (at most two minutes) until every UserFacing ServiceCertificate on PublicIssuer
/// `telia` (the Ingress's and Gateway's among them) is Ready, then prints them.
pub async fn wait_user_facing(cp: &ControlPlane) -> Result<()> {
    let client = cp.client().await?;
    let api: Api<ServiceCertificate> = Api::all(client);
    let on_telia = |c: &ServiceCertificate| c.spec.issuer_ref.name == "telia";
    let ready = crate::eventually(
        Duration::from_secs(120),
        "the UserFacing certificates from the ACME stand-in",
        || {
            let api = api.clone();
            async move {
                let all = api.list(&ListParams::default()).await?.items;
                let mine: Vec<_> = all.into_iter().filter(|c| on_telia(c)).collect();
                let done = !mine.is_empty()
                    && mine.iter().all(|c| {
                        crate::k8s::condition(c, "Ready").is_some_and(|(s, _, _)| s == "True")
                    });
                Ok(done.then_some(mine))
            }
        },
    )
    .await;
    match ready {
        Ok(certs) => {
            println!("\n==> UserFacing certificates issued over ACME by the stand-in (Pebble):");
            for c in certs {
                let owner = c
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .find(|o| o.controller == Some(true))
                    .map(|o| format!(" (kept for {} {})", o.kind, o.name))
                    .unwrap_or_default();
                println!(
                    "    {}/{}: Ready, {}{owner}",
                    c.metadata.namespace.as_deref().unwrap_or_default(),
                    c.metadata.name.as_deref().unwrap_or_default(),
                    c.spec.dns_names.join(", ")
                );
            }
        }
        Err(e) => eprintln!("note: {e:#}"),
    }
    Ok(())
}

/// Resource kinds the demo prints with `kubectl get -A`.
pub const KINDS: [&str; 5] = [
    "sithsissuers",
    "publicissuers",
    "domainvalidations",
    "servicecertificates",
    "certificateorders",
];

/// The condition each printed kind shows in its columns once the operator has looked at
/// an object of that kind.
fn settled_by() -> [(ApiResource, &'static str); 4] {
    [
        (ApiResource::erase::<SithsIssuer>(&()), "Ready"),
        (ApiResource::erase::<PublicIssuer>(&()), "Ready"),
        (ApiResource::erase::<DomainValidation>(&()), "Validated"),
        (ApiResource::erase::<ServiceCertificate>(&()), "Ready"),
    ]
}

/// Waits (at most a minute) until every object of the printed kinds carries the condition
/// its columns show, so the printed tables are not empty for lack of time.
pub async fn settle(cp: &ControlPlane) -> Result<()> {
    let client = cp.client().await?;
    let settled = crate::eventually(Duration::from_secs(60), "the examples to settle", || {
        let client = client.clone();
        async move {
            for (resource, condition) in settled_by() {
                if !all_have_condition(&client, &resource, condition).await? {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        }
    })
    .await;
    if let Err(e) = settled {
        eprintln!("note: {e:#}");
    }
    Ok(())
}

async fn all_have_condition(
    client: &Client,
    resource: &ApiResource,
    condition: &str,
) -> Result<bool> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let list = api.list(&ListParams::default()).await?;
    Ok(list.items.iter().all(|o| has_condition(o, condition)))
}

/// Whether an object's `status.conditions` holds one of type `condition`.
fn has_condition<K: serde::Serialize>(obj: &K, condition: &str) -> bool {
    crate::k8s::condition(obj, condition).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_settled_once_it_has_the_condition() {
        let ready =
            serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        assert!(has_condition(&ready, "Ready"));
        assert!(!has_condition(&ready, "Validated"));
        assert!(!has_condition(&serde_json::json!({"status": {}}), "Ready"));
        assert!(!has_condition(&serde_json::json!({}), "Ready"));
    }
}
