//! Delegation of a `UserFacing` ServiceCertificate to cert-manager (`PublicIssuer`
//! `spec.certManager`): the operator keeps a `cert-manager.io/v1` `Certificate` for the same
//! names and Secret, owned by the ServiceCertificate, and mirrors its readiness.
//!
//! cert-manager is not a dependency: the `Certificate` is written through kube's
//! [`DynamicObject`], and a cluster without the cert-manager CRDs is reported, not a crash.
//! The pure parts ([`desired_certificate`], [`needs_apply`], [`readiness`]) are unit-tested
//! here; the API calls are tested against a real apiserver with the real cert-manager CRDs
//! in `e2e/tests/cert_manager.rs`.
//!
//! [`Delegation::Ready`] means cert-manager reports the Certificate `Ready`; the caller
//! still verifies the certificate in the Secret (public trust, names, serverAuth, key)
//! before calling the ServiceCertificate `Ready`.

use kube::{
    Client, Resource, ResourceExt,
    api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
};
use serde_json::{Value, json};

use crate::api::{
    CertManagerIssuerKind, CertManagerIssuerRef, KeyAlgorithm, RotationPolicy, ServiceCertificate,
};
use crate::vocabulary::{
    CERTIFICATE_LABEL, FIELD_MANAGER, MANAGED_BY, ROLE_CERTIFICATE, ROLE_LABEL,
};

/// API group of cert-manager.
pub const GROUP: &str = "cert-manager.io";
/// API version of the `Certificate` the operator writes.
pub const VERSION: &str = "v1";
/// Kind of the object the operator writes.
pub const KIND: &str = "Certificate";
/// Plural resource name of [`KIND`].
pub const PLURAL: &str = "certificates";

/// Condition reason while cert-manager has not yet reported on the current spec.
pub const REASON_WAITING: &str = "WaitingForCertManager";
/// Condition reason when a `Certificate` of that name exists but is not this
/// ServiceCertificate's.
pub const REASON_NOT_OWNED: &str = "CertManagerCertificateNotOwned";
/// Condition reason when the cert-manager CRDs are not installed.
pub const REASON_CRDS_MISSING: &str = "CertManagerNotInstalled";

/// The message of [`Delegation::CrdsMissing`] and of the PublicIssuer's `Ready` condition.
pub const CRDS_MISSING_MESSAGE: &str = "cert-manager is not installed (no certificates.cert-manager.io/v1 in the API): install it or choose acme/manual";

/// The outcome of one [`ensure_certificate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delegation {
    /// The cert-manager CRDs are not installed; nothing was written.
    CrdsMissing {
        /// What to do.
        message: String,
    },
    /// cert-manager is (or should be) working on it: the Certificate is new, changed,
    /// being issued, or `Ready=False` for a reason cert-manager acts on.
    Pending {
        /// cert-manager's `Ready` reason, or [`REASON_WAITING`].
        reason: String,
        /// cert-manager's message, naming the Certificate.
        message: String,
    },
    /// cert-manager reports the Certificate `Ready` for its current spec.
    Ready,
    /// Issuance failed (cert-manager retries with its own backoff), or the Certificate is
    /// not ours to write.
    Failed {
        /// cert-manager's `Issuing` reason (`Failed`), or [`REASON_NOT_OWNED`].
        reason: String,
        /// What went wrong, naming the Certificate.
        message: String,
    },
}

/// The `ApiResource` of `cert-manager.io/v1` `Certificate`.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), PLURAL)
}

/// Whether the cert-manager CRDs are installed: `certificates` is served in
/// `cert-manager.io/v1` (API discovery, readable by every authenticated client; no read
/// of CustomResourceDefinitions is needed).
pub async fn crds_present(client: &Client) -> Result<bool, kube::Error> {
    match client
        .list_api_group_resources(&format!("{GROUP}/{VERSION}"))
        .await
    {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == PLURAL)),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// The `Certificate` the operator wants for `cert`: same name and namespace, owned by it
/// (controller), same `secretName` and `dnsNames`, the issuer, the key parameters (ECDSA
/// P-256 by default, a new key each revision unless the ServiceCertificate says `Never`,
/// PKCS#8 in the Secret as the operator's own keys are), serverAuth only (public TLS
/// certificates no longer carry clientAuth), and the operator's certificate-Secret labels
/// on the Secret cert-manager writes.
pub fn desired_certificate(
    cert: &ServiceCertificate,
    issuer: &CertManagerIssuerRef,
) -> Option<DynamicObject> {
    let owner = cert.controller_owner_ref(&())?;
    let namespace = cert.namespace()?;
    let name = cert.meta().name.clone()?;
    let key = cert.spec.private_key.as_ref();
    let algorithm = key.map_or(KeyAlgorithm::Ecdsa, |k| k.algorithm);
    let size = key.and_then(|k| k.size).unwrap_or(match algorithm {
        KeyAlgorithm::Ecdsa => 256,
        KeyAlgorithm::Rsa => 2048,
    });
    let rotation = match key.and_then(|k| k.rotation_policy) {
        Some(RotationPolicy::Never) => "Never",
        Some(RotationPolicy::Always) | None => "Always",
    };
    let mut obj = DynamicObject::new(&name, &api_resource())
        .within(&namespace)
        .data(json!({
            "spec": {
                "secretName": cert.spec.secret_name,
                "dnsNames": cert.spec.dns_names,
                "issuerRef": {
                    "name": issuer.name,
                    "kind": match issuer.kind {
                        CertManagerIssuerKind::ClusterIssuer => "ClusterIssuer",
                        CertManagerIssuerKind::Issuer => "Issuer",
                    },
                    "group": GROUP,
                },
                "privateKey": {
                    "algorithm": match algorithm {
                        KeyAlgorithm::Ecdsa => "ECDSA",
                        KeyAlgorithm::Rsa => "RSA",
                    },
                    "size": size,
                    "rotationPolicy": rotation,
                    // The operator reads and verifies keys as PKCS#8, like every key it
                    // writes itself (cert-manager's default would be PKCS#1/SEC1).
                    "encoding": "PKCS8",
                },
                "usages": ["digital signature", "server auth"],
                // cert-manager labels the Secret it writes like the operator labels its
                // own certificate Secrets, so the ServiceCertificate controller's Secret
                // watch (selected by these labels) sees each issuance.
                "secretTemplate": {
                    "labels": {
                        (MANAGED_BY.0): MANAGED_BY.1,
                        (CERTIFICATE_LABEL): name,
                        (ROLE_LABEL): ROLE_CERTIFICATE,
                    }
                },
            }
        }));
    obj.metadata.owner_references = Some(vec![owner]);
    obj.metadata.labels = Some(
        [
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            (CERTIFICATE_LABEL.to_string(), name),
        ]
        .into(),
    );
    Some(obj)
}

/// Whether `existing` (as read from the API) lacks something of `desired`, so an apply is
/// needed: a spec field differs (fields others add, such as defaults, are ignored), a label
/// is missing, or the controller reference is not there. Equal: no write.
pub fn needs_apply(existing: &DynamicObject, desired: &DynamicObject) -> bool {
    let labels = existing.labels();
    let labels_ok = desired
        .labels()
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    let owner_ok = desired
        .owner_references()
        .iter()
        .all(|o| existing.owner_references().contains(o));
    !(labels_ok && owner_ok && contains(&existing.data["spec"], &desired.data["spec"]))
}

/// Whether `have` holds every field of `want` with the same value (objects by key,
/// everything else, lists included, exactly).
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| contains(hv, wv))),
        _ => have == want,
    }
}

/// Whether `existing` belongs to someone else: its controller is not `desired`'s owner.
fn owned_by_other(existing: &DynamicObject, desired: &DynamicObject) -> Option<String> {
    let ours = desired.owner_references().first()?;
    match existing
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
    {
        Some(o) if o.uid == ours.uid => None,
        Some(o) => Some(format!("{} {}", o.kind, o.name)),
        None => Some("nobody (it was not created by siths-operator)".to_string()),
    }
}

/// One condition of a cert-manager `Certificate`'s status.
struct CmCondition<'a> {
    status: &'a str,
    reason: &'a str,
    message: &'a str,
    observed_generation: Option<i64>,
}

fn cm_condition<'a>(obj: &'a DynamicObject, type_: &str) -> Option<CmCondition<'a>> {
    let c = obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    Some(CmCondition {
        status: c["status"].as_str().unwrap_or("Unknown"),
        reason: c["reason"].as_str().unwrap_or_default(),
        message: c["message"].as_str().unwrap_or_default(),
        observed_generation: c["observedGeneration"].as_i64(),
    })
}

/// The readiness of a `Certificate` as cert-manager reports it in `status.conditions`:
/// - `Ready=True` for the current generation: [`Delegation::Ready`] (a renewal in
///   progress does not take that away; the current certificate is still valid);
/// - `Issuing=False` with reason `Failed`: [`Delegation::Failed`] with that reason and
///   cert-manager's message (it retries with its own backoff);
/// - `Ready=False` (or `Unknown`): [`Delegation::Pending`] with cert-manager's reason;
/// - no `Ready` condition yet, or one for an older generation (the spec just changed):
///   [`Delegation::Pending`] with [`REASON_WAITING`].
pub fn readiness(cert: &DynamicObject) -> Delegation {
    let what = format!(
        "cert-manager Certificate {}/{}",
        cert.namespace().unwrap_or_default(),
        cert.name_any()
    );
    let generation = cert.metadata.generation;
    let current = |c: &CmCondition<'_>| match (c.observed_generation, generation) {
        (Some(seen), Some(now)) => seen >= now,
        _ => true,
    };
    let ready = cm_condition(cert, "Ready");
    if let Some(r) = &ready
        && r.status == "True"
        && current(r)
    {
        return Delegation::Ready;
    }
    if let Some(i) = cm_condition(cert, "Issuing")
        && i.status == "False"
        && i.reason == "Failed"
    {
        return Delegation::Failed {
            reason: i.reason.to_string(),
            message: format!("{what}: {}", i.message),
        };
    }
    match ready {
        Some(r) if current(&r) && !r.reason.is_empty() => Delegation::Pending {
            reason: r.reason.to_string(),
            message: format!("{what}: {}", r.message),
        },
        Some(_) => Delegation::Pending {
            reason: REASON_WAITING.to_string(),
            message: format!("{what}: waiting for cert-manager to act on the current spec"),
        },
        None => Delegation::Pending {
            reason: REASON_WAITING.to_string(),
            message: format!(
                "{what}: cert-manager has not reported on it yet (is the cert-manager controller running?)"
            ),
        },
    }
}

/// Server-side applies the `Certificate` of `cert` (see [`desired_certificate`]) unless the
/// existing one already has that spec, labels and owner, then mirrors its readiness
/// ([`readiness`]). Writes nothing when cert-manager is absent ([`Delegation::CrdsMissing`])
/// or when a `Certificate` of that name belongs to something else ([`Delegation::Failed`]
/// with [`REASON_NOT_OWNED`]).
pub async fn ensure_certificate(
    client: &Client,
    cert: &ServiceCertificate,
    issuer: &CertManagerIssuerRef,
) -> Result<Delegation, kube::Error> {
    let Some(desired) = desired_certificate(cert, issuer) else {
        // Only an object never stored lacks a name, namespace or uid.
        return Ok(Delegation::Pending {
            reason: REASON_WAITING.to_string(),
            message: "the ServiceCertificate has no name, namespace or uid yet".to_string(),
        });
    };
    let name = desired.name_any();
    let namespace = desired.namespace().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &api_resource());
    let existing = match api.get_opt(&name).await {
        Ok(existing) => existing,
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(crds_missing()),
        Err(e) => return Err(e),
    };
    let current = match existing {
        Some(existing) => {
            if let Some(other) = owned_by_other(&existing, &desired) {
                return Ok(Delegation::Failed {
                    reason: REASON_NOT_OWNED.to_string(),
                    message: format!(
                        "cert-manager Certificate {namespace}/{name} already exists and is controlled by {other}; \
                         delete or rename it, or rename this ServiceCertificate"
                    ),
                });
            }
            if needs_apply(&existing, &desired) {
                apply(&api, &name, &desired).await?
            } else {
                existing
            }
        }
        None => match apply(&api, &name, &desired).await {
            Ok(created) => created,
            // Server-side apply creates a missing object of a served type; a 404 here
            // means the type itself is not served.
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(crds_missing()),
            Err(e) => return Err(e),
        },
    };
    Ok(readiness(&current))
}

/// Deletes the `Certificate` of `cert` when this ServiceCertificate controls it: for a
/// ServiceCertificate that no longer delegates to cert-manager (its issuer changed route),
/// so cert-manager stops writing its Secret. Returns whether a delete was sent; a missing
/// Certificate, missing cert-manager CRDs, or a Certificate controlled by something else
/// mean no write.
pub async fn remove_certificate(
    client: &Client,
    cert: &ServiceCertificate,
) -> Result<bool, kube::Error> {
    let (Some(namespace), Some(uid)) = (cert.namespace(), cert.meta().uid.as_deref()) else {
        return Ok(false);
    };
    let name = cert.name_any();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &api_resource());
    let existing = match api.get_opt(&name).await {
        Ok(Some(existing)) => existing,
        Ok(None) => return Ok(false),
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(false),
        Err(e) => return Err(e),
    };
    let ours = existing
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == uid);
    if !ours {
        return Ok(false);
    }
    let precondition = kube::api::DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: existing.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &precondition).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

fn crds_missing() -> Delegation {
    Delegation::CrdsMissing {
        message: CRDS_MISSING_MESSAGE.to_string(),
    }
}

async fn apply(
    api: &Api<DynamicObject>,
    name: &str,
    desired: &DynamicObject,
) -> Result<DynamicObject, kube::Error> {
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(desired),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_certificate(extra: &str) -> ServiceCertificate {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: ServiceCertificate
metadata: {{ name: portal, namespace: team-a, uid: 0b7c5c1e-1111-4222-8333-944455556666 }}
spec:
  purpose: UserFacing
  dnsNames: [portal.region.example.se, www.portal.region.example.se]
  secretName: portal-tls
  issuerRef: {{ kind: PublicIssuer, name: public }}
{extra}"#
        ))
        .unwrap()
    }

    fn cluster_issuer() -> CertManagerIssuerRef {
        serde_yaml::from_str("{name: letsencrypt, kind: ClusterIssuer}").unwrap()
    }

    #[test]
    fn desired_certificate_has_names_secret_issuer_owner_and_server_auth_only() {
        let sc = service_certificate("");
        let obj = desired_certificate(&sc, &cluster_issuer()).unwrap();
        let v = serde_json::to_value(&obj).unwrap();
        assert_eq!(v["apiVersion"], "cert-manager.io/v1");
        assert_eq!(v["kind"], "Certificate");
        assert_eq!(v["metadata"]["name"], "portal");
        assert_eq!(v["metadata"]["namespace"], "team-a");
        assert_eq!(
            v["metadata"]["labels"]["siths-operator.io/certificate"],
            "portal"
        );
        let owner = &v["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ServiceCertificate");
        assert_eq!(owner["apiVersion"], "siths-operator.io/v1alpha1");
        assert_eq!(owner["name"], "portal");
        assert_eq!(owner["uid"], "0b7c5c1e-1111-4222-8333-944455556666");
        assert_eq!(owner["controller"], true);
        assert_eq!(
            v["spec"],
            json!({
                "secretName": "portal-tls",
                "dnsNames": ["portal.region.example.se", "www.portal.region.example.se"],
                "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"},
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always", "encoding": "PKCS8"},
                "usages": ["digital signature", "server auth"],
                "secretTemplate": {"labels": {
                    "app.kubernetes.io/managed-by": "siths-operator",
                    "siths-operator.io/certificate": "portal",
                    "siths-operator.io/role": "certificate",
                }},
            })
        );
    }

    #[test]
    fn desired_certificate_takes_the_key_and_issuer_kind_from_its_inputs() {
        let issuer: CertManagerIssuerRef =
            serde_yaml::from_str("{name: team-ca, kind: Issuer}").unwrap();
        let sc = service_certificate("  privateKey: { algorithm: RSA }\n");
        let spec = desired_certificate(&sc, &issuer).unwrap().data["spec"].clone();
        assert_eq!(
            spec["privateKey"],
            json!({"algorithm": "RSA", "size": 2048, "rotationPolicy": "Always", "encoding": "PKCS8"})
        );
        assert_eq!(spec["issuerRef"]["kind"], "Issuer");
        let sc = service_certificate(
            "  privateKey: { algorithm: ECDSA, size: 384, rotationPolicy: Never }\n",
        );
        let spec = desired_certificate(&sc, &issuer).unwrap().data["spec"].clone();
        assert_eq!(
            spec["privateKey"],
            json!({"algorithm": "ECDSA", "size": 384, "rotationPolicy": "Never", "encoding": "PKCS8"})
        );
        let sc = service_certificate("  privateKey: { algorithm: RSA, size: 3072 }\n");
        let spec = desired_certificate(&sc, &issuer).unwrap().data["spec"].clone();
        assert_eq!(spec["privateKey"]["size"], 3072);
    }

    #[test]
    fn an_unstored_service_certificate_has_no_desired_certificate() {
        let mut sc = service_certificate("");
        sc.metadata.uid = None;
        assert!(desired_certificate(&sc, &cluster_issuer()).is_none());
    }

    /// `desired` as the apiserver returns it: with metadata and status it adds.
    fn as_stored(desired: &DynamicObject) -> DynamicObject {
        let mut v = serde_json::to_value(desired).unwrap();
        v["metadata"]["resourceVersion"] = json!("42");
        v["metadata"]["generation"] = json!(1);
        v["metadata"]["labels"]["team"] = json!("a");
        v["spec"]["duration"] = json!("2160h");
        v["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn no_apply_when_the_stored_certificate_already_has_the_spec() {
        let desired = desired_certificate(&service_certificate(""), &cluster_issuer()).unwrap();
        assert!(!needs_apply(&as_stored(&desired), &desired));
    }

    #[test]
    fn apply_when_a_field_label_or_owner_differs() {
        let sc = service_certificate("");
        let desired = desired_certificate(&sc, &cluster_issuer()).unwrap();
        let stored = as_stored(&desired);

        let mut changed = stored.clone();
        changed.data["spec"]["issuerRef"]["name"] = json!("other");
        assert!(needs_apply(&changed, &desired));

        let mut changed = stored.clone();
        changed.data["spec"]["usages"] = json!(["digital signature", "server auth", "client auth"]);
        assert!(
            needs_apply(&changed, &desired),
            "an added clientAuth is undone"
        );

        let mut changed = stored.clone();
        changed.data["spec"]["dnsNames"] = json!(["portal.region.example.se"]);
        assert!(needs_apply(&changed, &desired));

        let mut changed = stored.clone();
        changed.data["spec"]
            .as_object_mut()
            .unwrap()
            .remove("privateKey");
        assert!(needs_apply(&changed, &desired));

        let mut changed = stored.clone();
        changed
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove(CERTIFICATE_LABEL);
        assert!(needs_apply(&changed, &desired));

        let mut changed = stored.clone();
        changed.metadata.owner_references = None;
        assert!(needs_apply(&changed, &desired));

        // The ServiceCertificate's names changed: the desired object follows.
        let mut sc2 = sc.clone();
        sc2.spec.dns_names.push("new.region.example.se".into());
        let desired2 = desired_certificate(&sc2, &cluster_issuer()).unwrap();
        assert!(needs_apply(&stored, &desired2));
    }

    #[test]
    fn a_certificate_controlled_by_something_else_is_not_ours() {
        let desired = desired_certificate(&service_certificate(""), &cluster_issuer()).unwrap();
        let stored = as_stored(&desired);
        assert_eq!(owned_by_other(&stored, &desired), None);

        let mut other = stored.clone();
        other.metadata.owner_references.as_mut().unwrap()[0].uid = "another-uid".into();
        assert_eq!(
            owned_by_other(&other, &desired).as_deref(),
            Some("ServiceCertificate portal")
        );
        let mut hand_made = stored;
        hand_made.metadata.owner_references = None;
        assert!(owned_by_other(&hand_made, &desired).is_some());
    }

    fn with_status(generation: i64, conditions: Value) -> DynamicObject {
        let desired = desired_certificate(&service_certificate(""), &cluster_issuer()).unwrap();
        let mut v = serde_json::to_value(&desired).unwrap();
        v["metadata"]["generation"] = json!(generation);
        v["status"] = json!({ "conditions": conditions });
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ready_true_is_ready() {
        let c = with_status(
            2,
            json!([{"type": "Ready", "status": "True", "reason": "Ready", "observedGeneration": 2}]),
        );
        assert_eq!(readiness(&c), Delegation::Ready);
        // A renewal in progress keeps the current certificate usable.
        let c = with_status(
            2,
            json!([
                {"type": "Ready", "status": "True", "reason": "Ready", "observedGeneration": 2},
                {"type": "Issuing", "status": "True", "reason": "Renewing", "observedGeneration": 2}
            ]),
        );
        assert_eq!(readiness(&c), Delegation::Ready);
    }

    #[test]
    fn ready_true_for_an_older_generation_is_pending() {
        let c = with_status(
            3,
            json!([{"type": "Ready", "status": "True", "reason": "Ready", "observedGeneration": 2}]),
        );
        assert!(matches!(
            readiness(&c),
            Delegation::Pending { reason, .. } if reason == REASON_WAITING
        ));
    }

    #[test]
    fn ready_false_is_pending_with_cert_managers_reason() {
        let c = with_status(
            1,
            json!([
                {"type": "Ready", "status": "False", "reason": "DoesNotExist",
                 "message": "Issuing certificate as Secret does not exist", "observedGeneration": 1},
                {"type": "Issuing", "status": "True", "reason": "DoesNotExist", "observedGeneration": 1}
            ]),
        );
        assert_eq!(
            readiness(&c),
            Delegation::Pending {
                reason: "DoesNotExist".into(),
                message: "cert-manager Certificate team-a/portal: Issuing certificate as Secret does not exist".into(),
            }
        );
    }

    #[test]
    fn issuing_failed_is_failed_with_cert_managers_message() {
        let c = with_status(
            1,
            json!([
                {"type": "Ready", "status": "False", "reason": "DoesNotExist", "message": "Secret does not exist"},
                {"type": "Issuing", "status": "False", "reason": "Failed",
                 "message": "The certificate request has failed to complete and will be retried: rate limited"}
            ]),
        );
        match readiness(&c) {
            Delegation::Failed { reason, message } => {
                assert_eq!(reason, "Failed");
                assert!(message.contains("rate limited"), "{message}");
                assert!(message.contains("team-a/portal"), "{message}");
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn issuing_alone_or_no_status_is_pending() {
        let c = with_status(
            1,
            json!([{"type": "Issuing", "status": "True", "reason": "DoesNotExist"}]),
        );
        assert!(matches!(
            readiness(&c),
            Delegation::Pending { reason, .. } if reason == REASON_WAITING
        ));
        let desired = desired_certificate(&service_certificate(""), &cluster_issuer()).unwrap();
        match readiness(&desired) {
            Delegation::Pending { reason, message } => {
                assert_eq!(reason, REASON_WAITING);
                assert!(message.contains("not reported"), "{message}");
            }
            other => panic!("expected Pending, got {other:?}"),
        }
    }
}
