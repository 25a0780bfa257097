//! What `cargo xtask demo` waits for and prints.

use std::time::Duration;

use anyhow::Result;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, ListParams},
};
use siths_operator::api::{DomainValidation, PublicIssuer, ServiceCertificate, SithsIssuer};

use crate::controlplane::ControlPlane;

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
