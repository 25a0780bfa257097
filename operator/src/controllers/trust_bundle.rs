//! `SithsTrustBundle`: writes the verified SITHS CA certificates as a `ca.crt` ConfigMap into
//! every selected namespace, and removes it where the bundle no longer applies.
//!
//! Sources are verified before anything is written: a pinned source whose certificates do
//! not match the pinned fingerprints stops the sync with `Synced=False` and leaves the
//! targets as they were. Targets are labelled and owned by the bundle (the garbage
//! collector removes them with it), written by server-side apply only when their content
//! differs, and only the labelled targets are watched.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams},
    core::{PartialObjectMeta, Selector, SelectorExt},
    runtime::{WatchStreamExt, controller::Action, reflector::ObjectRef, watcher},
};
use tracing::warn;

use super::{Context, Error, apply_status, now, siths_issuer::read_config_map};
use crate::vocabulary::{FIELD_MANAGER, KEYSTORE_DIGEST_KEY, KEYSTORE_PASSWORD_LABEL, MANAGED_BY};
use crate::{
    api::{
        ConfigMapKeyRef, DEFAULT_TRUSTSTORE_PASSWORD, PinnedAnchors, SithsTrustBundle,
        SithsTrustBundleStatus, TrustStoreTarget, status,
    },
    pki::{self, CertInfo, Environment, SithsAnchors, keystore},
    policy::conditions::{DesiredCondition, set_condition},
    vocabulary::Notice,
};

/// Label on every target ConfigMap, with the bundle's name.
pub const BUNDLE_LABEL: &str = "siths-operator.io/trust-bundle";
/// Key of the PEM bundle in the target ConfigMaps.
pub const CA_KEY: &str = "ca.crt";
use crate::vocabulary::condition::SYNCED;
/// Sources in ConfigMaps are not watched: look again this often.
const RESYNC: Duration = Duration::from_secs(600);

/// The certificates to distribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// PEM, in source order, each certificate once.
    pub pem: String,
    /// SHA-256 of each certificate, in the same order.
    pub fingerprints: Vec<String>,
}

/// Why the sources cannot be used: the reason and message of `Synced=False`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProblem {
    /// CamelCase reason.
    pub reason: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

/// A source's PEM text and where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceText {
    /// For example `production (ConfigMap siths-operator/siths-ca, key ca.crt)`.
    pub origin: String,
    /// The PEM text.
    pub pem: String,
}

/// Verifies and joins the sources: pinned ones must match the pins of their environment;
/// additional ones must be CA certificates that do not impersonate a pinned SITHS CA.
pub fn assemble(
    production: Option<&SourceText>,
    test: Option<&SourceText>,
    additional: &[SourceText],
) -> Result<Bundle, SourceProblem> {
    let rejected = |origin: &str, e: pki::PkiError| SourceProblem {
        reason: "SourceRejected",
        message: format!("{origin}: {e}; the ConfigMaps were left as they were"),
    };
    let mut certs = Vec::new();
    for (source, env) in [
        (production, Environment::Production),
        (test, Environment::Test),
    ] {
        let Some(s) = source else { continue };
        let anchors = SithsAnchors::from_pem(&s.pem, env).map_err(|e| rejected(&s.origin, e))?;
        let t = anchors.trust_anchors();
        certs.extend(t.roots().iter().chain(t.intermediates()).cloned());
    }
    for s in additional {
        let chain = pki::parse_pem_chain(&s.pem).map_err(|e| rejected(&s.origin, e))?;
        for der in chain {
            if let Some(e) = pki::siths::impersonates_pin(&der) {
                return Err(rejected(&s.origin, e));
            }
            let info = CertInfo::parse(&der).map_err(|e| rejected(&s.origin, e))?;
            if !info.is_ca {
                return Err(rejected(
                    &s.origin,
                    pki::PkiError::NotACa {
                        subject: info.subject,
                    },
                ));
            }
            certs.push(der);
        }
    }
    let mut fingerprints = Vec::new();
    certs.retain(|der| {
        let fp = pki::sha256_fingerprint(der);
        let new = !fingerprints.contains(&fp);
        if new {
            fingerprints.push(fp);
        }
        new
    });
    Ok(Bundle {
        pem: pki::chain_to_pem(&certs),
        fingerprints,
    })
}

/// What to change: namespaces whose target must be written, and those whose target must go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetChanges {
    /// Namespaces to write (missing or different content).
    pub write: Vec<String>,
    /// Namespaces to delete the target from (no longer selected).
    pub delete: Vec<String>,
    /// Namespaces already up to date.
    pub unchanged: Vec<String>,
}

/// Compares the selected namespaces with the existing targets (namespace to `ca.crt`).
pub fn changes(
    selected: &[String],
    existing: &BTreeMap<String, Option<String>>,
    pem: &str,
) -> TargetChanges {
    let mut c = TargetChanges::default();
    for ns in selected {
        match existing.get(ns) {
            Some(Some(current)) if current == pem => c.unchanged.push(ns.clone()),
            _ => c.write.push(ns.clone()),
        }
    }
    c.delete = existing
        .keys()
        .filter(|ns| !selected.contains(ns))
        .cloned()
        .collect();
    c
}

fn origin(what: &str, r: &ConfigMapKeyRef) -> String {
    format!(
        "{what} (ConfigMap {}/{}, key {})",
        r.namespace, r.name, r.key
    )
}

async fn load_pinned(
    ctx: &Context,
    what: &str,
    source: Option<&PinnedAnchors>,
) -> Result<Result<Option<SourceText>, SourceProblem>, Error> {
    let Some(source) = source else {
        return Ok(Ok(None));
    };
    let not_found = |message: String| SourceProblem {
        reason: "SourceNotFound",
        message,
    };
    let text = match &source.config_map {
        Some(r) => match read_config_map(ctx, r).await? {
            Some(pem) => SourceText {
                origin: origin(what, r),
                pem,
            },
            None => {
                return Ok(Err(not_found(format!(
                    "{} does not exist",
                    origin(what, r)
                ))));
            }
        },
        None => match &ctx.settings.siths_ca_file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(pem) => SourceText {
                    origin: format!("{what} (the operator's --siths-ca-file)"),
                    pem,
                },
                Err(e) => {
                    return Ok(Err(not_found(format!(
                        "{what}: reading the operator's --siths-ca-file {}: {e}",
                        path.display()
                    ))));
                }
            },
            None => {
                return Ok(Err(not_found(format!(
                    "{what}: set sources.{what}.configMap or start the operator with --siths-ca-file"
                ))));
            }
        },
    };
    Ok(Ok(Some(text)))
}

async fn load(
    ctx: &Context,
    tb: &SithsTrustBundle,
) -> Result<Result<Bundle, SourceProblem>, Error> {
    let s = &tb.spec.sources;
    let production = match load_pinned(ctx, "production", s.production.as_ref()).await? {
        Ok(t) => t,
        Err(p) => return Ok(Err(p)),
    };
    let test = match load_pinned(ctx, "test", s.test.as_ref()).await? {
        Ok(t) => t,
        Err(p) => return Ok(Err(p)),
    };
    let mut additional = Vec::new();
    for r in &s.additional {
        match read_config_map(ctx, r).await? {
            Some(pem) => additional.push(SourceText {
                origin: origin("additional", r),
                pem,
            }),
            None => {
                return Ok(Err(SourceProblem {
                    reason: "SourceNotFound",
                    message: format!("{} does not exist", origin("additional", r)),
                }));
            }
        }
    }
    Ok(assemble(production.as_ref(), test.as_ref(), &additional))
}

/// What a target holds, compared to decide whether to write it: the PEM, and the content
/// digest of its Java truststores when the bundle asks for them (their bytes differ on
/// every build: random salts).
pub fn target_content(pem: &str, store_digest: Option<&str>) -> String {
    match store_digest {
        Some(d) => format!("{pem}\n{KEYSTORE_DIGEST_KEY}={d}"),
        None => pem.to_string(),
    }
}

/// The Java truststores of a bundle: `binaryData` entries and their content digest.
#[derive(Debug, Clone, Default)]
pub struct TrustStores {
    /// Key to store bytes.
    pub data: BTreeMap<String, Vec<u8>>,
    /// Content digest (`pki::keystore::content_digest`), recorded as an annotation.
    pub digest: Option<String>,
}

/// Builds the truststores `t` asks for from the bundle's certificates.
pub fn build_truststores(
    t: &TrustStoreTarget,
    pem: &str,
    password: &str,
) -> Result<TrustStores, pki::PkiError> {
    let certs = pki::parse_pem_chain(pem)?;
    let profile = super::certificate_secret::store_profile(t.profile);
    let mut parts = vec![format!("truststore:{}:{}", profile.name(), t.key)];
    let mut data = BTreeMap::new();
    data.insert(
        t.key.clone(),
        keystore::pkcs12_truststore(&certs, password, profile)?,
    );
    if let Some(jks) = &t.jks_key {
        parts.push(format!("jks:{jks}"));
        data.insert(jks.clone(), keystore::jks_truststore(&certs, password, 0)?);
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(TrustStores {
        data,
        digest: Some(keystore::content_digest(&parts, &certs, None, password)),
    })
}

/// The truststore password of a bundle: from its Secret, or the Java default `changeit`.
/// `Ok(Err(problem))` when the Secret or key is missing.
async fn truststore_password(
    ctx: &Context,
    t: &TrustStoreTarget,
) -> Result<Result<String, SourceProblem>, Error> {
    let Some(r) = &t.password_secret_ref else {
        return Ok(Ok(DEFAULT_TRUSTSTORE_PASSWORD.to_string()));
    };
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(ctx.client.clone(), &r.namespace);
    let text = api.get_opt(&r.name).await?.and_then(|s| {
        s.data.and_then(|d| {
            d.get(&r.key)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
        })
    });
    Ok(match text {
        Some(p) if !p.is_empty() => Ok(p),
        _ => Err(SourceProblem {
            reason: "TruststorePasswordNotFound",
            message: format!(
                "target.truststore.passwordSecretRef: Secret {}/{} has no non-empty key {}; the ConfigMaps were left as they were",
                r.namespace, r.name, r.key
            ),
        }),
    })
}

fn target(
    tb: &SithsTrustBundle,
    ns: &str,
    pem: &str,
    stores: &TrustStores,
) -> Result<ConfigMap, Error> {
    let owner = tb
        .controller_owner_ref(&())
        .ok_or(Error::Incomplete("uid"))?;
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(tb.spec.target.config_map_name.clone()),
            namespace: Some(ns.to_string()),
            labels: Some(
                [
                    (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                    (BUNDLE_LABEL.to_string(), tb.name_any()),
                ]
                .into(),
            ),
            owner_references: Some(vec![owner]),
            annotations: stores
                .digest
                .as_ref()
                .map(|d| [(KEYSTORE_DIGEST_KEY.to_string(), d.clone())].into()),
            ..Default::default()
        },
        data: Some([(CA_KEY.to_string(), pem.to_string())].into()),
        binary_data: (!stores.data.is_empty()).then(|| {
            stores
                .data
                .iter()
                .map(|(k, v)| (k.clone(), k8s_openapi::ByteString(v.clone())))
                .collect()
        }),
        ..Default::default()
    })
}

/// Reconciles one SithsTrustBundle.
pub async fn reconcile(tb: Arc<SithsTrustBundle>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = tb.name_any();
    let cms: Api<ConfigMap> = Api::all(ctx.client.clone());
    let mine = cms
        .list(&ListParams::default().labels(&format!("{BUNDLE_LABEL}={name}")))
        .await?;
    let cm_name = &tb.spec.target.config_map_name;
    // Targets under an old configMapName are not current: they are rewritten or removed.
    let mut existing: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut stale_names = Vec::new();
    for cm in &mine.items {
        let ns = cm.namespace().unwrap_or_default();
        if &cm.name_any() == cm_name {
            let digest = cm
                .annotations()
                .get(KEYSTORE_DIGEST_KEY)
                .map(String::as_str);
            existing.insert(
                ns,
                cm.data
                    .as_ref()
                    .and_then(|d| d.get(CA_KEY))
                    .map(|pem| target_content(pem, digest)),
            );
        } else {
            stale_names.push((ns, cm.name_any()));
        }
    }
    let mut st: SithsTrustBundleStatus = tb.status.clone().unwrap_or_default();
    st.observed_generation = tb.metadata.generation;
    let loaded = match (load(&ctx, &tb).await?, &tb.spec.target.truststore) {
        (Ok(bundle), Some(t)) => match truststore_password(&ctx, t).await? {
            Ok(password) => match build_truststores(t, &bundle.pem, &password) {
                Ok(stores) => Ok((bundle, stores)),
                Err(e) => Err(SourceProblem {
                    reason: "TruststoreFailed",
                    message: format!("building the truststore: {e}"),
                }),
            },
            Err(p) => Err(p),
        },
        (Ok(bundle), None) => Ok((bundle, TrustStores::default())),
        (Err(p), _) => Err(p),
    };
    let (ok, reason, message, requeue) = match loaded {
        Err(p) => {
            st.namespaces = u32::try_from(existing.len()).unwrap_or(u32::MAX);
            let was_false = tb
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == SYNCED))
                .is_some_and(|c| c.status == status::FALSE && c.reason == p.reason);
            if !was_false {
                ctx.event(
                    tb.as_ref(),
                    Notice::warning(p.reason, "Sync", p.message.clone()),
                )
                .await;
            }
            (false, p.reason, p.message, Duration::from_secs(60))
        }
        Ok((bundle, stores)) => {
            let selector = Selector::try_from(tb.spec.target.namespace_selector.clone());
            let Ok(selector) = selector else {
                let message = "target.namespaceSelector is not a valid label selector".to_string();
                return finish(
                    &ctx,
                    &tb,
                    st,
                    false,
                    "InvalidSelector",
                    &message,
                    Duration::from_secs(300),
                )
                .await;
            };
            let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
            let mut selected: Vec<String> = namespaces
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter(|n| n.metadata.deletion_timestamp.is_none() && selector.matches(n.labels()))
                .map(|n| n.name_any())
                .collect();
            selected.sort();
            let c = changes(
                &selected,
                &existing,
                &target_content(&bundle.pem, stores.digest.as_deref()),
            );
            let mut conflicts = Vec::new();
            let pp = PatchParams::apply(FIELD_MANAGER).force();
            for ns in &c.write {
                let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
                if !existing.contains_key(ns)
                    && let Some(other) = api.get_opt(cm_name).await?
                    && other.labels().get(BUNDLE_LABEL) != Some(&name)
                {
                    // Someone else's ConfigMap of that name: never take it over.
                    conflicts.push(ns.clone());
                    continue;
                }
                let mut obj = serde_json::to_value(target(&tb, ns, &bundle.pem, &stores)?)?;
                obj["apiVersion"] = "v1".into();
                obj["kind"] = "ConfigMap".into();
                api.patch(cm_name, &pp, &Patch::Apply(&obj)).await?;
            }
            for ns in &c.delete {
                delete(&ctx, ns, cm_name).await?;
            }
            for (ns, old) in &stale_names {
                delete(&ctx, ns, old).await?;
            }
            let written = selected.len() - conflicts.len();
            st.namespaces = u32::try_from(written).unwrap_or(u32::MAX);
            st.fingerprints = bundle.fingerprints.clone();
            if conflicts.is_empty() {
                (
                    true,
                    "Synced",
                    format!(
                        "{} CA certificate(s) in ConfigMap {cm_name} ({CA_KEY}) in {written} namespace(s)",
                        bundle.fingerprints.len()
                    ),
                    RESYNC,
                )
            } else {
                (
                    false,
                    "TargetConflict",
                    format!(
                        "a ConfigMap {cm_name} that this bundle does not own already exists in {}; rename target.configMapName or remove those ConfigMaps",
                        conflicts.join(", ")
                    ),
                    Duration::from_secs(120),
                )
            }
        }
    };
    finish(&ctx, &tb, st, ok, reason, &message, requeue).await
}

async fn delete(ctx: &Context, ns: &str, name: &str) -> Result<(), Error> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn finish(
    ctx: &Context,
    tb: &SithsTrustBundle,
    mut st: SithsTrustBundleStatus,
    ok: bool,
    reason: &str,
    message: &str,
    requeue: Duration,
) -> Result<Action, Error> {
    set_condition(
        &mut st.conditions,
        &DesiredCondition {
            type_: SYNCED,
            status: if ok { status::TRUE } else { status::FALSE },
            reason,
            message,
            observed_generation: tb.metadata.generation,
        },
        now(),
    );
    let api: Api<SithsTrustBundle> = Api::all(ctx.client.clone());
    apply_status(&api, tb, tb.status.as_ref(), &st).await?;
    Ok(Action::requeue(requeue))
}

/// Runs the SithsTrustBundle controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let bundles: Api<SithsTrustBundle> = Api::all(ctx.client.clone());
    let targets: Api<ConfigMap> = Api::all(ctx.client.clone());
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let controller = super::controller(bundles, watcher::Config::default().any_semantic());
    let store = controller.store();
    let by_password = store.clone();
    let passwords = super::watch(
        Api::<PartialObjectMeta<k8s_openapi::api::core::v1::Secret>>::all(ctx.client.clone()),
        watcher::Config::default()
            .labels(&format!("{KEYSTORE_PASSWORD_LABEL}=true"))
            .any_semantic(),
    )
    .touched_objects();
    controller
        // Truststore passwords: the metadata of labelled Secrets only; a changed password
        // rebuilds the truststores of the bundles naming it.
        .watches_stream(passwords, move |meta| {
            let (ns, name) = (meta.namespace().unwrap_or_default(), meta.name_any());
            by_password
                .state_filter(|b| {
                    b.spec
                        .target
                        .truststore
                        .as_ref()
                        .and_then(|t| t.password_secret_ref.as_ref())
                        .is_some_and(|r| r.namespace == ns && r.name == name)
                })
                .iter()
                .map(|b| ObjectRef::from_obj(b.as_ref()))
                .collect::<Vec<_>>()
        })
        .owns_stream(
            super::watch(
                targets,
                watcher::Config::default()
                    .labels(BUNDLE_LABEL)
                    .any_semantic(),
            )
            .touched_objects(),
        )
        .watches_stream(
            super::watch(namespaces, watcher::Config::default().any_semantic()).touched_objects(),
            move |_| {
                // A namespace appeared, changed labels or went away: every bundle looks again.
                store
                    .state()
                    .iter()
                    .map(|b| ObjectRef::from_obj(b.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(
            reconcile,
            |_, e, _| {
                warn!(error = %e, label = e.metric_label(), "SithsTrustBundle reconcile failed");
                Action::requeue(Duration::from_secs(15))
            },
            ctx,
        )
        .for_each(super::log_output("TrustBundle"))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{self, siths_pem};
    use crate::pki::{LocalCa, LocalCaOptions};

    fn src(origin: &str, pem: String) -> SourceText {
        SourceText {
            origin: origin.into(),
            pem,
        }
    }

    #[test]
    fn pinned_sources_are_verified_and_joined_in_order() {
        let prod = src(
            "production",
            format!(
                "{}{}",
                siths_pem("sithseidrootcav2.pem"),
                siths_pem("sithseidfunctioncav1.pem")
            ),
        );
        let test = src("test", siths_pem("testsithseidrootcav2.pem"));
        let extra_ca = testutil::ca();
        let extra = src(
            "additional",
            format!("{}{}", extra_ca.root_pem(), extra_ca.root_pem()),
        );
        let b = assemble(Some(&prod), Some(&test), &[extra]).unwrap();
        assert_eq!(
            b.fingerprints[..3],
            [
                pki::siths::PRODUCTION_ROOT_SHA256,
                pki::siths::PRODUCTION_ISSUING_SHA256,
                pki::siths::TEST_ROOT_SHA256
            ]
        );
        assert_eq!(b.fingerprints.len(), 4, "the duplicate is written once");
        assert_eq!(pki::parse_pem_chain(&b.pem).unwrap().len(), 4);
    }

    #[test]
    fn a_tampered_source_is_refused_with_the_fingerprints() {
        let forged = LocalCa::generate(&LocalCaOptions {
            common_name: "SITHS e-id Root CA v2".into(),
            organization: "Inera AB".into(),
            ..testutil::ca_options("unused", false)
        })
        .unwrap();
        let p = assemble(Some(&src("production", forged.root_pem())), None, &[]).unwrap_err();
        assert_eq!(p.reason, "SourceRejected");
        assert!(
            p.message.contains(pki::siths::PRODUCTION_ROOT_SHA256),
            "{}",
            p.message
        );
        // The same forgery among the additional certificates.
        let p = assemble(None, None, &[src("additional", forged.root_pem())]).unwrap_err();
        assert!(p.message.starts_with("additional:"), "{}", p.message);
        // The test root is no production source.
        let p = assemble(
            Some(&src("production", siths_pem("testsithseidrootcav2.pem"))),
            None,
            &[],
        )
        .unwrap_err();
        assert!(p.message.contains("production"), "{}", p.message);
        // A leaf is not a CA.
        let ca = testutil::ca();
        let key = pki::KeySpec::ECDSA_P256.generate().unwrap();
        let leaf = testutil::issue(&ca, &testutil::profile(), &key, testutil::now());
        let p = assemble(
            None,
            None,
            &[src("additional", pki::chain_to_pem(&leaf[..1]))],
        )
        .unwrap_err();
        assert!(
            p.message.contains("not a CA") || p.message.contains("CA"),
            "{}",
            p.message
        );
    }

    #[test]
    fn changes_write_only_what_differs_and_remove_the_deselected() {
        let existing: BTreeMap<String, Option<String>> = [
            ("a".to_string(), Some("PEM".to_string())),
            ("b".to_string(), Some("OLD".to_string())),
            ("gone".to_string(), Some("PEM".to_string())),
            ("empty".to_string(), None),
        ]
        .into();
        let selected = ["a", "b", "empty", "new"].map(String::from);
        let c = changes(&selected, &existing, "PEM");
        assert_eq!(c.unchanged, ["a"]);
        assert_eq!(c.write, ["b", "empty", "new"]);
        assert_eq!(c.delete, ["gone"]);
        assert_eq!(
            changes(&[], &BTreeMap::new(), "PEM"),
            TargetChanges::default()
        );
    }

    fn truststore(jks: Option<&str>) -> TrustStoreTarget {
        TrustStoreTarget {
            key: "truststore.p12".into(),
            jks_key: jks.map(str::to_string),
            password_secret_ref: None,
            profile: None,
        }
    }

    /// Same anchors and password: same content (no rewrite although the bytes differ);
    /// a new anchor, password or store kind: new content.
    #[test]
    fn truststore_content_changes_exactly_with_anchors_password_and_kind() {
        let one = LocalCa::generate(&testutil::ca_options("One CA", false))
            .unwrap()
            .root_pem();
        let two = LocalCa::generate(&testutil::ca_options("Two CA", false))
            .unwrap()
            .root_pem();
        let both = format!("{one}{two}");
        let t = truststore(Some("truststore.jks"));
        let a = build_truststores(&t, &one, "changeit").unwrap();
        let b = build_truststores(&t, &one, "changeit").unwrap();
        assert_ne!(
            a.data["truststore.p12"], b.data["truststore.p12"],
            "random salts"
        );
        assert_eq!(a.digest, b.digest);
        let content = |s: &TrustStores, pem: &str| target_content(pem, s.digest.as_deref());
        let existing: BTreeMap<String, Option<String>> =
            [("ns".to_string(), Some(content(&a, &one)))].into();
        assert!(
            changes(&["ns".into()], &existing, &content(&b, &one))
                .write
                .is_empty()
        );
        let rolled = build_truststores(&t, &both, "changeit").unwrap();
        assert_eq!(
            changes(&["ns".into()], &existing, &content(&rolled, &both)).write,
            ["ns"]
        );
        let opened = keystore::read_store(&rolled.data["truststore.p12"], "changeit").unwrap();
        assert_eq!(opened.certificates.len(), 2);
        assert!(opened.certificates.iter().all(|c| c.trusted));
        for other in [
            build_truststores(&t, &one, "another").unwrap(),
            build_truststores(&truststore(None), &one, "changeit").unwrap(),
        ] {
            assert_ne!(other.digest, a.digest);
        }
        // Without a truststore the content is the PEM alone, as before.
        assert_eq!(target_content(&one, None), one);
    }
}
