//! `sithsctl` subcommands.

pub mod audit;
pub mod fleet;
pub mod manifests;
pub mod orders;
pub mod output;
pub mod renew;
pub mod status;

use anyhow::Context as _;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DynamicObject, ListParams, PostParams},
};
use serde::de::DeserializeOwned;

/// Objects of kind `K` listed from the cluster (one namespace or all), a page at a time,
/// each item read on its own: an object that does not read as `K` (stored before a schema
/// rule existed, or written around the operator) is left out and named in the second list,
/// with the field when known, instead of failing the whole list. A kind whose CRD is not
/// installed lists nothing.
pub async fn list_each<K>(
    client: &Client,
    namespace: Option<&str>,
) -> anyhow::Result<(Vec<K>, Vec<String>)>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let ar = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = match api.list(&params).await {
            Ok(p) => p,
            Err(kube::Error::Api(e)) if e.code == 404 => break,
            Err(e) => return Err(e).with_context(|| format!("listing {}s", ar.kind)),
        };
        for mut item in page.items {
            let at = match item.namespace() {
                Some(ns) => format!("{ns}/{}", item.name_any()),
                None => item.name_any(),
            };
            item.types = Some(kube::api::TypeMeta {
                api_version: ar.api_version.clone(),
                kind: ar.kind.clone(),
            });
            let read = serde_json::to_value(&item)
                .map_err(|e| e.to_string())
                .and_then(|v| read_item::<K>(v));
            match read {
                Ok(k) => good.push(k),
                Err(why) => bad.push(format!("{} {at} cannot be read: {why}; left out", ar.kind)),
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    Ok((good, bad))
}

/// Reads one object; the error names the field (`spec.revision: invalid value: integer
/// `4294967296`, expected u32`) and never quotes a string value of the object, which may
/// be key material.
pub fn read_item<K: DeserializeOwned>(value: serde_json::Value) -> Result<K, String> {
    serde_path_to_error::deserialize::<_, K>(value).map_err(|e| {
        let path = e.path().to_string();
        let what = without_quoted(&e.inner().to_string());
        if path.is_empty() || path == "." {
            what
        } else {
            format!("{path}: {what}")
        }
    })
}

/// `text` with every double-quoted part replaced by `"…"`.
fn without_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        if c == '"' {
            if inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    if inside {
        out.push_str("\"…");
    }
    out
}

/// Runs `sithsctl audit`; returns the exit status: 1 when `--fail-on` tripped, 2 when a
/// cluster of a fleet did not answer ([`fleet`]), else 0.
pub async fn run_audit(
    kubeconfig: Option<&std::path::Path>,
    args: &audit::AuditArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<i32> {
    if args.fleet.active() {
        fleet::run(kubeconfig, args, out).await
    } else {
        audit::run_single(kubeconfig, args, out).await
    }
}

/// Who the current kubeconfig authenticates as (from a SelfSubjectReview).
pub async fn whoami(client: &Client) -> anyhow::Result<String> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review: SelfSubjectReview = serde_json::from_value(serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {},
    }))?;
    let got = api
        .create(&PostParams::default(), &review)
        .await
        .context("asking the API server who I am (SelfSubjectReview)")?;
    Ok(got
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .unwrap_or_else(|| "unknown".into()))
}

/// A client from `--kubeconfig` or the usual places (KUBECONFIG, ~/.kube/config, in-cluster).
pub async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CertificateOrder;

    fn order(spec: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "siths-operator.io/v1alpha1", "kind": "CertificateOrder",
            "metadata": {"name": "o", "namespace": "n"}, "spec": spec,
        })
    }

    #[test]
    fn a_bad_item_names_its_field_and_never_its_text() {
        let ok = serde_json::json!({"certificateName": "a", "revision": 1, "issuerName": "r",
            "dnsNames": ["a.region.se"], "subject": "CN=a", "csr": "x"});
        read_item::<CertificateOrder>(order(ok.clone())).unwrap();
        let mut big = ok.clone();
        big["revision"] = 4294967296u64.into();
        let e = read_item::<CertificateOrder>(order(big)).unwrap_err();
        assert!(
            e.starts_with("spec.revision: invalid value: integer `4294967296`"),
            "{e}"
        );
        let mut secret = ok.clone();
        // A key made for the test, pasted where a number belongs.
        let pem = crate::pki::KeySpec::ECDSA_P256.generate().unwrap().to_pem();
        let line = pem.lines().nth(1).unwrap().to_string();
        secret["estimatedCostSek"] = pem.into();
        let e = read_item::<CertificateOrder>(order(secret)).unwrap_err();
        assert!(
            e.starts_with("spec.estimatedCostSek: invalid type: string"),
            "{e}"
        );
        assert!(!e.contains(&line) && !e.contains("PRIVATE"), "{e}");
        let mut missing = ok;
        missing.as_object_mut().unwrap().remove("csr");
        let e = read_item::<CertificateOrder>(order(missing)).unwrap_err();
        assert!(e.contains("missing field `csr`"), "{e}");
    }

    #[test]
    fn quoted_parts_are_left_out() {
        assert_eq!(without_quoted(r#"a "secret" b"#), r#"a "…" b"#);
        assert_eq!(without_quoted(r#"a "open"#), r#"a "…"#);
    }
}
