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

use super::{Context, Error, cert_status::Status};
use crate::{
    api::{
        KeyAlgorithm, KeystoreProfile, Keystores, LocalSecretKeyRef, RotationPolicy,
        ServiceCertificate,
    },
    pki::{
        self, KeySpec, PrivateKey,
        keystore::{self, StoreProfile},
    },
    policy::names::key_secret_name,
    vocabulary::{
        CERTIFICATE_LABEL, FIELD_MANAGER, ISSUED_AT_KEY, KEYSTORE_ALIAS, KEYSTORE_DIGEST_KEY,
        KEYSTORE_JKS, KEYSTORE_P12, MANAGED_BY, Notice, REVISION_KEY, ROLE_CERTIFICATE, ROLE_LABEL,
        ROLE_STAGED_KEY, TRUSTSTORE_JKS, TRUSTSTORE_P12, action, condition::KEYSTORES, reason,
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

/// Whether `labels` mark a certificate Secret this operator writes (the labels [`labels`]
/// gives with the certificate role): the Secrets whose versions the ServiceCertificate
/// controller keeps (see `checked_secrets`).
pub(super) fn is_certificate_secret(labels: &BTreeMap<String, String>) -> bool {
    labels.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
        && labels.get(ROLE_LABEL).map(String::as_str) == Some(ROLE_CERTIFICATE)
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

/// A new private key for the next revision: the current Secret's key when the certificate
/// keeps its key (`rotationPolicy: Never`, `current` is the Secret as read), otherwise a
/// freshly generated one.
pub(super) async fn new_key(
    cert: &ServiceCertificate,
    current: Option<&Secret>,
) -> Result<PrivateKey, Error> {
    if keeps_its_key(cert)
        && let Some(pem) = current.and_then(|c| secret_text(c, "tls.key"))
        && let Ok(k) = PrivateKey::from_pem(&pem)
        && k.spec() == key_spec(cert)
    {
        return Ok(k);
    }
    // A pooled key, or one generated in turn, off the async workers (crate::keypool).
    Ok(crate::keypool::fresh_key(key_spec(cert)).await?)
}

/// Whether the certificate keeps its key across revisions (`rotationPolicy: Never`).
fn keeps_its_key(cert: &ServiceCertificate) -> bool {
    cert.spec
        .private_key
        .as_ref()
        .and_then(|p| p.rotation_policy)
        == Some(RotationPolicy::Never)
}

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
    let current = if keeps_its_key(cert) {
        secrets.get_opt(&cert.spec.secret_name).await?
    } else {
        None
    };
    let key = new_key(cert, current.as_ref()).await?;
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

/// Every data key a certificate's Java stores may use.
const STORE_KEYS: [&str; 4] = [KEYSTORE_P12, KEYSTORE_JKS, TRUSTSTORE_P12, TRUSTSTORE_JKS];

/// The passwords of a certificate's stores. `Debug` never shows them.
pub(super) struct StorePasswords {
    pkcs12: Option<String>,
    jks: Option<String>,
}

impl std::fmt::Debug for StorePasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorePasswords(<redacted>)")
    }
}

/// Maps the API's profile to the writer's.
pub(super) fn store_profile(p: Option<KeystoreProfile>) -> StoreProfile {
    match p {
        Some(KeystoreProfile::Legacy) => StoreProfile::Legacy,
        Some(KeystoreProfile::Modern) | None => StoreProfile::Modern,
    }
}

/// Reads one password: `Ok(Err(message))` when the Secret or its key is missing.
async fn read_password(
    secrets: &Api<Secret>,
    read: &mut BTreeMap<String, Option<Secret>>,
    r: &LocalSecretKeyRef,
) -> Result<Result<String, String>, Error> {
    // Both stores usually name the same Secret: read it once.
    if !read.contains_key(&r.name) {
        let found = secrets.get_opt(&r.name).await?;
        read.insert(r.name.clone(), found);
    }
    let Some(secret) = read.get(&r.name).and_then(Option::as_ref) else {
        return Ok(Err(format!(
            "the key store password Secret {} does not exist",
            r.name
        )));
    };
    match secret_text(secret, &r.key) {
        Some(p) if !p.is_empty() => Ok(Ok(p)),
        _ => Ok(Err(format!(
            "the key store password Secret {} has no non-empty UTF-8 key {}",
            r.name, r.key
        ))),
    }
}

/// The passwords the certificate's `keystores` name, or why they cannot be read.
pub(super) async fn store_passwords(
    secrets: &Api<Secret>,
    ks: &Keystores,
) -> Result<Result<StorePasswords, String>, Error> {
    let mut out = StorePasswords {
        pkcs12: None,
        jks: None,
    };
    let mut read = BTreeMap::new();
    if let Some(p) = &ks.pkcs12 {
        match read_password(secrets, &mut read, &p.password_secret_ref).await? {
            Ok(pw) => out.pkcs12 = Some(pw),
            Err(m) => return Ok(Err(m)),
        }
    }
    if let Some(j) = &ks.jks {
        match read_password(secrets, &mut read, &j.password_secret_ref).await? {
            Ok(pw) => out.jks = Some(pw),
            Err(m) => return Ok(Err(m)),
        }
    }
    Ok(Ok(out))
}

/// The names of the Secrets holding the passwords of the certificate's key stores.
pub(super) fn password_secret_names(cert: &ServiceCertificate) -> Vec<&str> {
    let Some(ks) = &cert.spec.keystores else {
        return Vec::new();
    };
    ks.pkcs12
        .iter()
        .map(|p| p.password_secret_ref.name.as_str())
        .chain(ks.jks.iter().map(|j| j.password_secret_ref.name.as_str()))
        .collect()
}

/// The `Keystores=True` message.
fn keystores_message(secret_name: &str) -> String {
    format!("Java key stores in Secret {secret_name} match the certificate and passwords")
}

/// The full chain of a store's key entry: leaf, intermediates and the root when known.
fn full_chain(accepted: &pki::Accepted) -> Vec<&[u8]> {
    accepted
        .chain
        .iter()
        .chain(accepted.root.iter())
        .map(|c| c.as_ref())
        .collect()
}

/// The content digest of the stores `ks` asks for, for this certificate, key and passwords.
pub(super) fn stores_digest(
    ks: &Keystores,
    passwords: &StorePasswords,
    accepted: &pki::Accepted,
) -> String {
    let mut parts = Vec::new();
    let mut pw = String::new();
    if let (Some(p), Some(password)) = (&ks.pkcs12, &passwords.pkcs12) {
        parts.push(format!("pkcs12:{}", store_profile(p.profile).name()));
        pw.push_str(password);
    }
    pw.push('\0');
    if let Some(password) = &passwords.jks {
        parts.push("jks".to_string());
        pw.push_str(password);
    }
    if ks.truststore {
        parts.push("truststore".to_string());
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    keystore::content_digest(
        &parts,
        &full_chain(accepted),
        Some(&accepted.leaf.public_key_der),
        &pw,
    )
}

/// The Secret data of the stores `ks` asks for.
pub(super) fn build_stores(
    ks: &Keystores,
    passwords: &StorePasswords,
    accepted: &pki::Accepted,
    key: &PrivateKey,
) -> Result<BTreeMap<String, ByteString>, pki::PkiError> {
    let chain = full_chain(accepted);
    let anchors: Vec<&[u8]> = accepted.root.iter().map(|c| c.as_ref()).collect();
    let created_ms = u64::try_from(accepted.leaf.not_before.as_millisecond()).unwrap_or(0);
    let mut data = BTreeMap::new();
    if let (Some(p), Some(password)) = (&ks.pkcs12, &passwords.pkcs12) {
        let profile = store_profile(p.profile);
        data.insert(
            KEYSTORE_P12.to_string(),
            ByteString(keystore::pkcs12_keystore(
                key,
                &chain,
                KEYSTORE_ALIAS,
                password,
                profile,
            )?),
        );
        if ks.truststore && !anchors.is_empty() {
            data.insert(
                TRUSTSTORE_P12.to_string(),
                ByteString(keystore::pkcs12_truststore(&anchors, password, profile)?),
            );
        }
    }
    if let Some(password) = &passwords.jks {
        data.insert(
            KEYSTORE_JKS.to_string(),
            ByteString(keystore::jks_keystore(
                key,
                &chain,
                KEYSTORE_ALIAS,
                password,
                created_ms,
            )?),
        );
        if ks.truststore && !anchors.is_empty() {
            data.insert(
                TRUSTSTORE_JKS.to_string(),
                ByteString(keystore::jks_truststore(&anchors, password, created_ms)?),
            );
        }
    }
    Ok(data)
}

/// Keeps the Java stores of a Ready certificate current: compares the content digest
/// recorded on the Secret with the one the spec, certificate, key and passwords give, and
/// only when they differ rebuilds the stores (one merge patch of the store keys and the
/// digest annotation). Removes the stores it wrote when `keystores` is gone. Sets the `Keystores`
/// condition; never writes a password anywhere.
pub(super) async fn sync_stores(
    ctx: &Context,
    cert: &ServiceCertificate,
    s: &mut Status,
    secrets: &Api<Secret>,
    secret: Option<&Secret>,
    accepted: &pki::Accepted,
) -> Result<(), Error> {
    let Some(secret) = secret else { return Ok(()) };
    let recorded = secret.annotations().get(KEYSTORE_DIGEST_KEY);
    let Some(ks) = &cert.spec.keystores else {
        let present: Vec<&str> = STORE_KEYS
            .into_iter()
            .filter(|k| secret.data.as_ref().is_some_and(|d| d.contains_key(*k)))
            .collect();
        // Only stores this operator wrote (its digest is recorded) are removed; a store
        // someone else put into the Secret stays.
        if recorded.is_some() {
            let data: serde_json::Map<String, serde_json::Value> = present
                .iter()
                .map(|k| (k.to_string(), serde_json::Value::Null))
                .collect();
            let patch = serde_json::json!({
                "metadata": { "annotations": { KEYSTORE_DIGEST_KEY: null } },
                "data": data,
            });
            merge_patch(secrets, &cert.spec.secret_name, &patch).await?;
        }
        s.st.conditions.retain(|c| c.type_ != KEYSTORES);
        return Ok(());
    };
    let passwords = match store_passwords(secrets, ks).await? {
        Ok(p) => p,
        Err(message) => {
            s.set(
                KEYSTORES,
                false,
                reason::KEYSTORE_PASSWORD_NOT_FOUND,
                &message,
            );
            return Ok(());
        }
    };
    let digest = stores_digest(ks, &passwords, accepted);
    let message = keystores_message(&cert.spec.secret_name);
    if recorded == Some(&digest) {
        s.set(KEYSTORES, true, reason::KEYSTORES_WRITTEN, &message);
        return Ok(());
    }
    let key_pem = secret_text(secret, "tls.key").ok_or(Error::Incomplete("tls.key"))?;
    let key = PrivateKey::from_pem(&key_pem)?;
    let data = build_stores(ks, &passwords, accepted, &key)?;
    let mut patch_data = serde_json::Map::new();
    for k in STORE_KEYS {
        let value = match data.get(k) {
            Some(b) => serde_json::to_value(b)?,
            None => serde_json::Value::Null,
        };
        patch_data.insert(k.to_string(), value);
    }
    let patch = serde_json::json!({
        "metadata": { "annotations": { KEYSTORE_DIGEST_KEY: digest } },
        "data": patch_data,
    });
    merge_patch(secrets, &cert.spec.secret_name, &patch).await?;
    s.set(KEYSTORES, true, reason::KEYSTORES_WRITTEN, &message);
    let names: Vec<&str> = data.keys().map(String::as_str).collect();
    ctx.event(
        cert,
        Notice::normal(
            reason::KEYSTORES_WRITTEN,
            action::KEYSTORE,
            format!(
                "{} (re)built in Secret {}: the certificate, CA, profile or a password changed",
                names.join(", "),
                cert.spec.secret_name
            ),
        ),
    )
    .await;
    Ok(())
}

async fn merge_patch(
    secrets: &Api<Secret>,
    name: &str,
    patch: &serde_json::Value,
) -> Result<(), Error> {
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    secrets.patch(name, &pp, &Patch::Merge(patch)).await?;
    Ok(())
}

/// The store entries and digest to write with a new certificate, when `keystores` asks
/// for stores and the passwords can be read (otherwise the next pass reports why, in
/// [`sync_stores`]).
async fn stores_for_new_certificate(
    cert: &ServiceCertificate,
    secrets: &Api<Secret>,
    accepted: &pki::Accepted,
    key: &PrivateKey,
) -> Result<Option<(BTreeMap<String, ByteString>, String)>, Error> {
    let Some(ks) = &cert.spec.keystores else {
        return Ok(None);
    };
    let Ok(passwords) = store_passwords(secrets, ks).await? else {
        return Ok(None);
    };
    let digest = stores_digest(ks, &passwords, accepted);
    Ok(Some((build_stores(ks, &passwords, accepted, key)?, digest)))
}

/// Writes key and certificate of `revision` (with the Java stores the certificate asks
/// for: then `Keystores=True` goes into `s`, so no second status write follows) and
/// returns the Secret's new resourceVersion.
pub(super) async fn write_secret(
    cert: &ServiceCertificate,
    s: &mut Status,
    secrets: &Api<Secret>,
    accepted: &pki::Accepted,
    key: &PrivateKey,
    revision: u32,
) -> Result<Option<String>, Error> {
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
    let mut annotations: BTreeMap<String, String> = [
        (REVISION_KEY.to_string(), revision.to_string()),
        // Full precision, to order it against renewal requests.
        (ISSUED_AT_KEY.to_string(), super::now().to_string()),
    ]
    .into();
    // The Java stores go in with the certificate, so no reader sees a new tls.crt next
    // to an old keystore.
    if let Some((stores, digest)) = stores_for_new_certificate(cert, secrets, accepted, key).await?
    {
        data.extend(stores);
        annotations.insert(KEYSTORE_DIGEST_KEY.to_string(), digest);
        s.set(
            KEYSTORES,
            true,
            reason::KEYSTORES_WRITTEN,
            &keystores_message(&cert.spec.secret_name),
        );
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(cert.spec.secret_name.clone()),
            labels: Some(labels(&cert.name_any(), ROLE_CERTIFICATE)),
            annotations: Some(annotations),
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
        Ok(written) => Ok(written.resource_version()),
        // A Secret of another type cannot change type in place: replace it.
        Err(kube::Error::Api(e)) if e.code == 422 => {
            secrets
                .delete(&cert.spec.secret_name, &DeleteParams::default())
                .await?;
            let written = secrets.create(&create_params(), &secret).await?;
            Ok(written.resource_version())
        }
        Err(e) => Err(e.into()),
    }
}
