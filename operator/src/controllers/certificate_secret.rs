//! The Secrets of a ServiceCertificate: the staged private key of a revision (stored before
//! any CSR exists), the certificate Secret (key and chain written together), adoption of a
//! certificate found in place, and the clean-up of staged keys. Shared by the SITHS and the
//! public route.

use std::collections::BTreeMap;

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams},
};

use super::Error;
use crate::{
    api::{KeyAlgorithm, RotationPolicy, ServiceCertificate},
    pki::{self, KeySpec, PrivateKey},
    policy::names::key_secret_name,
    vocabulary::{
        CERTIFICATE_LABEL, FIELD_MANAGER, ISSUED_AT_KEY, MANAGED_BY, REVISION_KEY,
        ROLE_CERTIFICATE, ROLE_LABEL, ROLE_STAGED_KEY,
    },
};

/// The text of `key` in a Secret, if it is there and UTF-8.
pub(super) fn secret_text(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
}

pub(super) fn labels(cert_name: &str, role: &str) -> BTreeMap<String, String> {
    [
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (CERTIFICATE_LABEL.to_string(), cert_name.to_string()),
        (ROLE_LABEL.to_string(), role.to_string()),
    ]
    .into()
}

pub(super) async fn adopt(
    secrets: &Api<Secret>,
    secret_name: &str,
    cert_name: &str,
) -> Result<(), Error> {
    let patch = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "labels": labels(cert_name, ROLE_CERTIFICATE),
            "annotations": { REVISION_KEY: "1" },
        },
    });
    secrets
        .patch(
            secret_name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}

/// The key a certificate asks for; the default is RSA 2048 on SITHS and ECDSA P-256 for
/// public certificates.
pub(super) fn key_spec(cert: &ServiceCertificate) -> KeySpec {
    match &cert.spec.private_key {
        Some(pk) => match (pk.algorithm, pk.size) {
            (KeyAlgorithm::Rsa, Some(3072)) => KeySpec::RSA_3072,
            // Admitted for UserFacing certificates only (the CRD's key size rule).
            (KeyAlgorithm::Rsa, Some(4096)) => KeySpec::RSA_4096,
            (KeyAlgorithm::Rsa, _) => KeySpec::RSA_2048,
            (KeyAlgorithm::Ecdsa, Some(384)) => KeySpec::ECDSA_P384,
            (KeyAlgorithm::Ecdsa, _) => KeySpec::ECDSA_P256,
        },
        None if cert.spec.purpose == crate::api::Purpose::UserFacing => KeySpec::ECDSA_P256,
        None => KeySpec::RSA_2048,
    }
}

pub(super) fn owner_reference(
    cert: &ServiceCertificate,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    cert.controller_owner_ref(&()).into_iter().collect()
}

pub(super) fn create_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// Turns for key generation: one per core. Without a bound, a burst of a thousand new
/// certificates started a thousand RSA generations on blocking threads at once; they all
/// slowed down together and starved the async workers, whose leader-lease renewals then
/// came too late (the controllers restarted, and keys in progress were generated again).
pub(super) static KEY_GENERATION: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });

/// The staged private key of `revision`, created before any CSR exists. Create-only: a
/// second replica or a restart finds and uses the key already stored.
pub(super) async fn staged_key(
    cert: &ServiceCertificate,
    secrets: &Api<Secret>,
    revision: u32,
) -> Result<PrivateKey, Error> {
    let name = key_secret_name(&cert.name_any(), revision);
    if let Some(existing) = secrets.get_opt(&name).await?
        && let Some(pem) = secret_text(&existing, "tls.key")
    {
        return Ok(PrivateKey::from_pem(&pem)?);
    }
    // Keep the key across revisions when asked to.
    let reuse = cert
        .spec
        .private_key
        .as_ref()
        .and_then(|p| p.rotation_policy)
        == Some(RotationPolicy::Never);
    let mut key = None;
    if reuse
        && let Some(current) = secrets.get_opt(&cert.spec.secret_name).await?
        && let Some(pem) = secret_text(&current, "tls.key")
        && let Ok(k) = PrivateKey::from_pem(&pem)
        && k.spec() == key_spec(cert)
    {
        key = Some(k);
    }
    let key = match key {
        Some(k) => k,
        None => {
            // RSA generation takes tens of milliseconds: keep it off the async workers, and
            // run at most one per core (see KEY_GENERATION).
            let spec = key_spec(cert);
            let _turn = KEY_GENERATION
                .acquire()
                .await
                .map_err(|_| Error::Incomplete("key generation turn"))?;
            tokio::task::spawn_blocking(move || spec.generate())
                .await
                .map_err(|_| Error::Incomplete("key generation task"))??
        }
    };
    let mut meta_labels = labels(&cert.name_any(), ROLE_STAGED_KEY);
    meta_labels.insert(REVISION_KEY.into(), revision.to_string());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(meta_labels),
            owner_references: Some(owner_reference(cert)),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some([("tls.key".to_string(), ByteString(key.to_pem().into_bytes()))].into()),
        ..Default::default()
    };
    match secrets.create(&create_params(), &secret).await {
        Ok(_) => Ok(key),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // Lost a race: the stored key is the one.
            let existing = secrets.get(&name).await?;
            let pem = secret_text(&existing, "tls.key").ok_or(Error::Incomplete("tls.key"))?;
            Ok(PrivateKey::from_pem(&pem)?)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn delete_ignoring_absent(secrets: &Api<Secret>, name: &str) -> Result<(), Error> {
    match secrets.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes staged key Secrets of this certificate up to `revision` (their key is in the
/// certificate Secret now, or belongs to an abandoned revision).
pub(super) async fn cleanup_staged_keys(
    secrets: &Api<Secret>,
    cert_name: &str,
    revision: u32,
) -> Result<(), Error> {
    let list = secrets
        .list_metadata(&ListParams::default().labels(&format!(
            "{CERTIFICATE_LABEL}={cert_name},{ROLE_LABEL}={ROLE_STAGED_KEY}"
        )))
        .await?;
    for item in list.items {
        let rev = item
            .labels()
            .get(REVISION_KEY)
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        if rev <= revision {
            delete_ignoring_absent(secrets, &item.name_any()).await?;
        }
    }
    Ok(())
}

pub(super) async fn write_secret(
    cert: &ServiceCertificate,
    secrets: &Api<Secret>,
    accepted: &pki::Accepted,
    key: &PrivateKey,
    revision: u32,
) -> Result<(), Error> {
    let data: BTreeMap<String, ByteString> = [
        (
            "tls.crt".to_string(),
            ByteString(accepted.chain_pem().into_bytes()),
        ),
        ("tls.key".to_string(), ByteString(key.to_pem().into_bytes())),
    ]
    .into();
    let mut data = data;
    // A root of Mozilla's store is known by name only: no ca.crt then.
    if accepted.root.is_some() {
        data.insert(
            "ca.crt".to_string(),
            ByteString(accepted.root_pem().into_bytes()),
        );
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(cert.spec.secret_name.clone()),
            labels: Some(labels(&cert.name_any(), ROLE_CERTIFICATE)),
            annotations: Some(
                [
                    (REVISION_KEY.to_string(), revision.to_string()),
                    // Full precision, to order it against renewal requests.
                    (ISSUED_AT_KEY.to_string(), super::now().to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    };
    let mut value = serde_json::to_value(&secret)?;
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    match secrets
        .patch(
            &cert.spec.secret_name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&value),
        )
        .await
    {
        Ok(_) => Ok(()),
        // A Secret of another type cannot change type in place: replace it.
        Err(kube::Error::Api(e)) if e.code == 422 => {
            secrets
                .delete(&cert.spec.secret_name, &DeleteParams::default())
                .await?;
            secrets.create(&create_params(), &secret).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
