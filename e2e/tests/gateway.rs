//! Gateway API against the real apiserver with the real upstream CRDs (standard channel,
//! v1.6.3, whose schemas and CEL rules validate every object applied here), the operator as
//! a process:
//! - the fields the operator reads exist in the upstream CRDs' schema;
//! - `audit`: a listener serving a SITHS certificate gets one Warning event, the gauge counts
//!   it, a listener naming another namespace's Secret without a ReferenceGrant is reported,
//!   and the Gateway is never written;
//! - `public`: a listener's Secret gets Pebble's certificate over EAB + HTTP-01, the
//!   challenge's HTTPRoute is created on the Gateway and removed; a Secret still serving a
//!   SITHS back end is not overwritten;
//! - a BackendTLSPolicy without SITHS trust for a SITHS-serving Service is reported, and
//!   naming a SithsTrustBundle's ConfigMap clears it;
//! - an operator started before the CRDs exist handles a Gateway applied after they do.

use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use e2e::{
    ControlPlane, Options,
    controlplane::free_port,
    fixtures::{local_ca_scenario, server_certificate},
    k8s::{apply, siths_ca_bundle, wait_condition},
    operator::OperatorProcess,
    pebble::Pebble,
};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::{
    Api, Client,
    api::{DynamicObject, ListParams, Patch, PatchParams},
};
use siths_operator::api::{
    PublicIssuer, ServiceCertificate, SithsTrustBundle,
    gateway::{BackendTLSPolicy, Gateway, READ_FIELDS},
};
use tokio::sync::OnceCell;

const WAIT: Duration = Duration::from_secs(120);

/// The tests of this binary run one at a time: each starts its own operator.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The shared control plane with the Gateway API CRDs installed.
async fn cluster() -> Result<Client> {
    static CRDS: OnceCell<()> = OnceCell::const_new();
    let client = e2e::shared().client().await?;
    CRDS.get_or_try_init(|| async {
        e2e::gatewayapi::install_crds(&client).await?;
        anyhow::Ok(())
    })
    .await?;
    Ok(client)
}

/// Server-side applies `yaml` (one object of a Gateway API kind `K`) in `ns` as it is: the
/// operator's types hold only the fields it reads, so the object is sent untyped.
async fn apply_gw<K>(client: &Client, ns: &str, yaml: &str) -> Result<()>
where
    K: kube::Resource<DynamicType = ()>,
{
    let obj: DynamicObject = serde_yaml::from_str(yaml)?;
    let name = obj.metadata.name.clone().context("no name")?;
    let resource = kube::api::ApiResource::erase::<K>(&());
    Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource)
        .patch(
            &name,
            &PatchParams::apply("siths-e2e").force(),
            &Patch::Apply(&obj),
        )
        .await
        .with_context(|| format!("applying {name}"))?;
    Ok(())
}

/// An operator as the chart's ServiceAccount (the chart's RBAC), with its own lease, `extra` flags added.
fn operator(cp: &ControlPlane, name: &str, extra: &[String]) -> Result<OperatorProcess> {
    let kubeconfig = cp.dir.join(format!("{name}.kubeconfig"));
    e2e::rbac::write_operator_kubeconfig(cp, &kubeconfig)?;
    let ca = siths_ca_bundle(cp)?;
    let mut args = vec![
        "--siths-ca-file".to_string(),
        ca.to_string_lossy().into_owned(),
        "--lease-name".into(),
        name.to_string(),
        "--gateway-api-recheck-seconds".into(),
        "1".into(),
    ];
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    OperatorProcess::start(cp, &kubeconfig, &args)
}

/// Events of `kind` `name` in `ns`, as `(reason, message)`.
async fn events(
    client: &Client,
    ns: &str,
    kind: &str,
    name: &str,
) -> Result<Vec<(String, String)>> {
    let list = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields(&format!(
            "involvedObject.name={name},involvedObject.kind={kind}"
        )))
        .await?;
    Ok(list
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect())
}

async fn wait_event(
    client: &Client,
    ns: &str,
    kind: &str,
    name: &str,
    reason: &str,
    op: &OperatorProcess,
) -> Result<String> {
    let found = e2e::eventually(
        WAIT,
        &format!("event {reason} on {kind} {name}"),
        || async {
            Ok(events(client, ns, kind, name)
                .await?
                .into_iter()
                .find(|(r, _)| r == reason)
                .map(|(_, m)| m))
        },
    )
    .await;
    found.map_err(|e| anyhow::anyhow!("{e:#}\n{}", op.output()))
}

/// A metric sample from the operator's /metrics.
async fn sample(op: &OperatorProcess, series: &str) -> Result<Option<f64>> {
    let (_, body) = op.http_get("/metrics").await?;
    Ok(body
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok()))
}

fn schema_has(schema: &serde_yaml::Value, path: &str) -> bool {
    let mut at = schema.clone();
    for part in path.split('.') {
        let (name, array) = match part.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (part, false),
        };
        let Some(next) = at.get("properties").and_then(|p| p.get(name)).cloned() else {
            return false;
        };
        at = if array {
            match next.get("items") {
                Some(items) => items.clone(),
                None => return false,
            }
        } else {
            next
        };
    }
    true
}

#[test]
fn the_fields_the_operator_reads_exist_in_the_upstream_crds() -> Result<()> {
    let plural = |kind: &str| match kind {
        "Gateway" => "gateways",
        "ListenerSet" => "listenersets",
        "HTTPRoute" => "httproutes",
        "TLSRoute" => "tlsroutes",
        "BackendTLSPolicy" => "backendtlspolicies",
        "ReferenceGrant" => "referencegrants",
        other => panic!("no CRD file for {other}"),
    };
    let mut checked = 0;
    for (kind, paths) in READ_FIELDS {
        let file = e2e::gatewayapi::crd_file(plural(kind))?;
        let crd: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&file)?)?;
        let version = crd["spec"]["versions"]
            .as_sequence()
            .context("versions")?
            .iter()
            .find(|v| v["name"] == "v1")
            .with_context(|| format!("{kind}: no v1 in {}", file.display()))?;
        ensure!(
            version["served"] == true,
            "{kind} v1 is not served upstream"
        );
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        for path in *paths {
            ensure!(
                schema_has(spec, path),
                "{kind}: spec.{path} is not in the upstream schema ({})",
                file.display()
            );
            checked += 1;
        }
    }
    // The walk itself must be able to fail.
    let gw: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(
        e2e::gatewayapi::crd_file("gateways")?,
    )?)?;
    let spec = &gw["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    ensure!(!schema_has(spec, "listeners[].tls.certificateRef"));
    println!("Gateway API types | {checked} field paths found in the v1.6.3 CRDs");
    Ok(())
}

/// A Gateway `name` with `annotations` and `listeners` (YAML flow sequence entries).
fn gateway_yaml(name: &str, annotations: &str, listeners: &[String]) -> String {
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {name}
  annotations: {{ {annotations} }}
spec:
  gatewayClassName: example
  listeners:
{}
"#,
        listeners
            .iter()
            .map(|l| format!("    - {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

fn https_listener(name: &str, host: &str, secret: &str, secret_ns: Option<&str>) -> String {
    let ns = secret_ns
        .map(|n| format!(", namespace: {n}"))
        .unwrap_or_default();
    format!(
        "{{ name: {name}, port: 443, protocol: HTTPS, hostname: {host}, tls: {{ mode: Terminate, certificateRefs: [{{ kind: Secret, name: {secret}{ns} }}] }} }}"
    )
}

#[tokio::test]
async fn audit_mode_reports_siths_listeners_and_never_writes_the_gateway() -> Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let client = cluster().await?;
    let cp = e2e::shared();
    let ns = e2e::test_namespace(&client, "gw-audit").await?;
    let op = operator(cp, &ns, &[])?;
    local_ca_scenario(&client, &ns).await?;
    server_certificate(
        &client,
        &ns,
        "backend",
        &format!("api.{ns}.region.se"),
        "SE2321000016-GW1",
        &ns,
        "backend-tls",
    )
    .await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    wait_condition(&certs, "backend", "Ready", "True", None, WAIT).await?;
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), &ns);
    apply_gw::<Gateway>(
        &client,
        &ns,
        &gateway_yaml(
            "portal",
            "siths-operator.io/tls: audit",
            &[
                https_listener(
                    "portal",
                    &format!("portal.{ns}.region.se"),
                    "backend-tls",
                    None,
                ),
                https_listener(
                    "other",
                    &format!("other.{ns}.region.se"),
                    "elsewhere-tls",
                    Some("kube-system"),
                ),
            ],
        ),
    )
    .await?;
    let before = serde_json::to_value(gateways.get("portal").await?)?;
    let message = wait_event(
        &client,
        &ns,
        "Gateway",
        "portal",
        "SithsCertificateOnUserFacingGateway",
        &op,
    )
    .await?;
    ensure!(
        message.contains("Secret backend-tls") && message.contains("siths-operator.io/tls: public"),
        "{message}"
    );
    let not_granted = wait_event(
        &client,
        &ns,
        "Gateway",
        "portal",
        "ListenerReferenceNotGranted",
        &op,
    )
    .await?;
    ensure!(
        not_granted.contains("no ReferenceGrant in namespace kube-system"),
        "{not_granted}"
    );
    let gauge = e2e::eventually(WAIT, "the Gateway gauge", || async {
        Ok(sample(
            &op,
            "siths_ingress_tls_certificates{classification=\"siths\",kind=\"Gateway\"}",
        )
        .await?
        .filter(|v| *v >= 1.0))
    })
    .await?;
    // A change to the Gateway that is not about TLS: no second event.
    gateways
        .patch(
            "portal",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let siths_events = events(&client, &ns, "Gateway", "portal")
        .await?
        .into_iter()
        .filter(|(r, _)| r == "SithsCertificateOnUserFacingGateway")
        .count();
    ensure!(siths_events == 1, "{siths_events} SITHS events, want 1");
    let mut after = serde_json::to_value(gateways.get("portal").await?)?;
    // Only the test's own label differs.
    after["metadata"]["labels"]
        .as_object_mut()
        .context("labels")?
        .remove("touched");
    for v in [&mut after] {
        if v["metadata"]["labels"]
            .as_object()
            .is_some_and(|l| l.is_empty())
        {
            v["metadata"]
                .as_object_mut()
                .context("metadata")?
                .remove("labels");
        }
        for k in ["resourceVersion", "managedFields", "generation"] {
            v["metadata"].as_object_mut().context("metadata")?.remove(k);
        }
    }
    let mut before = before;
    for k in ["resourceVersion", "managedFields", "generation"] {
        before["metadata"]
            .as_object_mut()
            .context("metadata")?
            .remove(k);
    }
    ensure!(before == after, "the Gateway changed:\n{before}\n{after}");
    let writes = operator_writes(cp, &ns, "gateways").await?;
    ensure!(
        writes.is_empty(),
        "the operator wrote the Gateway: {writes:?}"
    );
    println!("Gateway audit | SITHS listener reported once, gauge {gauge}, Gateway never written");
    Ok(())
}

/// Writes (create, patch, update, delete) by the operator's user to `resource` in `ns`,
/// from the apiserver's audit log.
async fn operator_writes(cp: &ControlPlane, ns: &str, resource: &str) -> Result<Vec<String>> {
    let log = cp.audit_text().await?;
    Ok(log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["user"]["username"] == e2e::rbac::OPERATOR_USER
                && v["objectRef"]["namespace"] == ns
                && v["objectRef"]["resource"] == resource
                && matches!(
                    v["verb"].as_str(),
                    Some("create" | "patch" | "update" | "delete")
                )
        })
        .map(|v| {
            format!(
                "{} {}",
                v["verb"].as_str().unwrap_or_default(),
                v["objectRef"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect())
}

#[tokio::test]
async fn public_mode_gets_a_pebble_certificate_through_a_temporary_httproute() -> Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let client = cluster().await?;
    let cp = e2e::shared();
    // Issuers of earlier tests point at Pebbles that are gone.
    let issuers: Api<PublicIssuer> = Api::all(client.clone());
    for i in issuers.list(&Default::default()).await?.items {
        if let Some(name) = i.metadata.name {
            let _ = issuers.delete(&name, &Default::default()).await;
        }
    }
    let port = free_port()?;
    let pebble = Pebble::start(port).await?;
    let ns = e2e::test_namespace(&client, "gw-public").await?;
    e2e::fixtures::pebble_objects(&client, &ns, &pebble, Some(e2e::pebble::EAB_HMAC)).await?;
    local_ca_scenario(&client, &ns).await?;
    apply(
        &issuers,
        &e2e::fixtures::pebble_issuer_yaml(&ns, &ns, &pebble),
    )
    .await?;
    let op = operator(cp, &ns, &["--acme-http01-port".into(), port.to_string()])?;
    // A back end serving a SITHS certificate from Secret api-tls.
    server_certificate(
        &client,
        &ns,
        "api",
        &format!("api.{ns}.region.se"),
        "SE2321000016-GW2",
        &ns,
        "api-tls",
    )
    .await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    wait_condition(&certs, "api", "Ready", "True", None, WAIT).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let api_before = secrets.get("api-tls").await?.data;

    let host = format!("shop.{ns}.region.se");
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), &ns);
    apply_gw::<Gateway>(
        &client,
        &ns,
        &gateway_yaml(
            "shop",
            &format!("siths-operator.io/tls: public, siths-operator.io/public-issuer: {ns}"),
            &[
                "{ name: http, port: 80, protocol: HTTP, allowedRoutes: { namespaces: { from: All } } }".to_string(),
                https_listener("shop", &host, "shop-tls", None),
                https_listener("api", &format!("api.{ns}.region.se"), "api-tls", None),
            ],
        ),
    )
    .await?;
    let before = serde_json::to_value(gateways.get("shop").await?)?;
    let cert = wait_condition(
        &certs,
        "shop-shop-tls",
        "Ready",
        "True",
        Some("Issued"),
        WAIT,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", op.output()))?;
    ensure!(cert.spec.dns_names == std::slice::from_ref(&host));
    // Pebble's certificate for the listener's host name is in the listener's Secret.
    let secret = secrets.get("shop-tls").await?;
    let crt = secret
        .data
        .as_ref()
        .and_then(|d| d.get("tls.crt"))
        .context("no tls.crt")?;
    let chain = siths_operator::pki::parse_pem_chain(std::str::from_utf8(&crt.0)?)?;
    let leaf = siths_operator::pki::CertInfo::parse(&chain[0])?;
    ensure!(leaf.dns_names == [host.clone()], "{:?}", leaf.dns_names);
    // The HTTP-01 challenge went through an HTTPRoute on the Gateway, since removed.
    let routes = operator_writes(cp, "siths-operator", "httproutes").await?;
    ensure!(
        routes.iter().any(|w| w.starts_with("create acme-http01-"))
            && routes.iter().any(|w| w.starts_with("delete acme-http01-")),
        "no HTTPRoute created and deleted for the challenge: {routes:?}"
    );
    let resource = kube::api::ApiResource::erase::<siths_operator::api::gateway::HTTPRoute>(&());
    let left: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "siths-operator", &resource);
    let left = left
        .list(&ListParams::default().labels("siths-operator.io/role=acme-http01"))
        .await?;
    ensure!(
        left.items.is_empty(),
        "solver HTTPRoutes left: {}",
        left.items.len()
    );
    // The listener whose Secret serves the SITHS back end: not overwritten.
    wait_condition(
        &certs,
        "shop-api-tls",
        "Ready",
        "False",
        Some("SharedWithBackend"),
        WAIT,
    )
    .await?;
    ensure!(
        secrets.get("api-tls").await?.data == api_before,
        "the back end's Secret was overwritten"
    );
    let after = serde_json::to_value(gateways.get("shop").await?)?;
    ensure!(before == after, "the Gateway changed:\n{before}\n{after}");
    println!(
        "Gateway public | Pebble certificate via HTTPRoute for {host}; SITHS back-end Secret kept"
    );
    Ok(())
}

#[tokio::test]
async fn a_backend_tls_policy_without_siths_trust_is_reported_until_it_names_a_trust_bundle()
-> Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let client = cluster().await?;
    let cp = e2e::shared();
    let ns = e2e::test_namespace(&client, "gw-backend").await?;
    let op = operator(cp, &ns, &[])?;
    local_ca_scenario(&client, &ns).await?;
    let host = format!("api.{ns}.region.se");
    server_certificate(
        &client,
        &ns,
        "api",
        &host,
        "SE2321000016-GW3",
        &ns,
        "api-tls",
    )
    .await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    wait_condition(&certs, "api", "Ready", "True", None, WAIT).await?;
    // The pods of Service api mount the SITHS certificate.
    let root = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("api-tls")
        .await?
        .data
        .and_then(|d| d.get("ca.crt").cloned())
        .context("no ca.crt")?;
    let root = String::from_utf8(root.0)?;
    let other = rcgen::generate_simple_self_signed(vec!["other.example".to_string()])?;
    apply(
        &Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), &ns),
        "apiVersion: v1\nkind: Service\nmetadata: { name: api }\nspec: { selector: { app: api }, ports: [{ port: 443 }] }\n",
    )
    .await?;
    apply(
        &Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &ns),
        r#"
apiVersion: v1
kind: Pod
metadata: { name: api-0, labels: { app: api } }
spec:
  containers: [{ name: api, image: example.invalid/api, volumeMounts: [{ name: tls, mountPath: /tls }] }]
  volumes: [{ name: tls, secret: { secretName: api-tls } }]
"#,
    )
    .await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for (name, pem) in [("wrong-ca", other.cert.pem()), ("local-root", root)] {
        apply(
            &maps,
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: {name} }}\ndata:\n  ca.crt: |\n{}\n",
                indent(&pem)
            ),
        )
        .await?;
    }
    let policy = |ca: &str| {
        format!(
            r#"
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{ name: api }}
spec:
  targetRefs: [{{ group: "", kind: Service, name: api }}]
  validation:
    caCertificateRefs: [{{ group: "", kind: ConfigMap, name: {ca} }}]
    hostname: {host}
"#
        )
    };
    apply_gw::<BackendTLSPolicy>(&client, &ns, &policy("wrong-ca")).await?;
    let message = wait_event(
        &client,
        &ns,
        "BackendTLSPolicy",
        "api",
        "BackendTrustMissing",
        &op,
    )
    .await?;
    ensure!(
        message.contains("ConfigMap wrong-ca") && message.contains("SithsTrustBundle"),
        "{message}"
    );
    e2e::eventually(WAIT, "the backend gauge at 1", || async {
        Ok(
            sample(&op, "siths_backend_tls_policies_without_siths_trust")
                .await?
                .filter(|v| *v >= 1.0),
        )
    })
    .await?;
    // A SithsTrustBundle carrying the issuing CA into the namespace, named by the policy.
    apply(
        &Api::<SithsTrustBundle>::all(client.clone()),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsTrustBundle
metadata: {{ name: {ns} }}
spec:
  sources: {{ additional: [{{ name: local-root, namespace: {ns}, key: ca.crt }}] }}
  target: {{ configMapName: siths-trust, namespaceSelector: {{ matchLabels: {{ kubernetes.io/metadata.name: {ns} }} }} }}
"#
        ),
    )
    .await?;
    e2e::eventually(WAIT, "the trust bundle's ConfigMap", || async {
        Ok(maps.get_opt("siths-trust").await?.map(|_| ()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", op.output()))?;
    apply_gw::<BackendTLSPolicy>(&client, &ns, &policy("siths-trust")).await?;
    let cleared = e2e::eventually(WAIT, "the backend gauge back at 0", || async {
        Ok(
            sample(&op, "siths_backend_tls_policies_without_siths_trust")
                .await?
                .filter(|v| *v == 0.0),
        )
    })
    .await;
    if let Err(e) = cleared {
        bail!("{e:#}\n{}", op.output());
    }
    println!(
        "BackendTLSPolicy | missing SITHS trust reported, cleared by a SithsTrustBundle ConfigMap"
    );
    Ok(())
}

fn indent(pem: &str) -> String {
    pem.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn an_operator_started_before_the_crds_handles_gateways_applied_after() -> Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    // A control plane of its own: the shared one has the CRDs.
    let cp = ControlPlane::start(Options {
        without_controller_manager: true,
        ..Default::default()
    })?;
    let client = cp.client().await?;
    e2e::install_crds(&client, &e2e::controlplane::workspace_root().join("crds")).await?;
    let ns = e2e::test_namespace(&client, "gw-late").await?;
    let op = operator(&cp, "late", &[])?;
    local_ca_scenario(&client, &ns).await?;
    server_certificate(
        &client,
        &ns,
        "backend",
        &format!("api.{ns}.region.se"),
        "SE2321000016-GW4",
        &ns,
        "backend-tls",
    )
    .await?;
    let certs: Api<ServiceCertificate> = Api::namespaced(client.clone(), &ns);
    wait_condition(&certs, "backend", "Ready", "True", None, WAIT)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", op.output()))?;
    e2e::eventually(WAIT, "the operator noticing Gateway API is absent", || async {
        Ok(op
            .output()
            .contains("Gateway API (gateway.networking.k8s.io/v1 Gateways and HTTPRoutes) is not served")
            .then_some(()))
    })
    .await?;
    e2e::gatewayapi::install_crds(&client).await?;
    apply_gw::<Gateway>(
        &client,
        &ns,
        &gateway_yaml(
            "late",
            "",
            &[https_listener(
                "web",
                &format!("web.{ns}.region.se"),
                "backend-tls",
                None,
            )],
        ),
    )
    .await?;
    wait_event(
        &client,
        &ns,
        "Gateway",
        "late",
        "SithsCertificateOnUserFacingGateway",
        &op,
    )
    .await?;
    let told = op
        .output()
        .matches("is not served; Gateways are not watched until it is")
        .count();
    ensure!(told == 1, "the absence was logged {told} times, want once");
    drop(op);
    cp.stop();
    println!(
        "Gateway API late | CRDs installed after start; the Gateway was audited without a restart"
    );
    Ok(())
}
