//! The Helm chart: `helm lint`, rendering with every option, `helm install` into the real
//! apiserver, the RBAC matrix of the SITHS roles, and approval as a permission (the
//! ValidatingAdmissionPolicy) with real client-certificate users.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail, ensure};
use e2e::{
    controlplane::{ControlPlane, OPERATOR_NAMESPACE, client_from_kubeconfig},
    helm::{RELEASE, chart_dir, helm, install_chart},
    k8s::{apply, sithsctl_output},
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::Value;
use siths_operator::api::{CertificateOrder, SithsIssuer};

/// Every document `helm template` renders, as JSON values.
fn render(extra: &[&str]) -> Result<Vec<Value>> {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        RELEASE,
        chart.to_str().context("chart path")?,
        "--namespace",
        OPERATOR_NAMESPACE,
        "--kube-version",
        "1.35.4",
        "--include-crds",
    ];
    args.extend_from_slice(extra);
    let text = helm(None, &args)?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc)?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

const ALL_OPTIONS: &[&str] = &[
    "--set",
    "serviceMonitor.enabled=true,prometheusRule.enabled=true,sithsCa.configMap=siths-ca,ingress.mode=public,ingress.defaultPublicIssuer=letsencrypt,keyPool.size=8",
];

#[test]
fn chart_lints_with_defaults_and_with_every_option() -> Result<()> {
    let chart = chart_dir();
    let chart = chart.to_str().context("chart path")?;
    let out = helm(None, &["lint", "--strict", chart])?;
    ensure!(out.contains("0 chart(s) failed"), "{out}");
    let mut args = vec!["lint", "--strict", chart];
    args.extend_from_slice(ALL_OPTIONS);
    helm(None, &args)?;
    // values.schema.json rejects nonsense instead of rendering it.
    let bad = helm(None, &["lint", chart, "--set", "replicaCount=-1"]);
    ensure!(bad.is_err(), "a negative replicaCount passed lint");
    let mode = helm(None, &["lint", chart, "--set", "ingress.mode=publik"]);
    ensure!(mode.is_err(), "an unknown Ingress mode passed lint");
    let typo = helm(
        None,
        &["lint", chart, "--set", "leaderElection.enable=true"],
    );
    ensure!(
        typo.as_ref()
            .is_err_and(|e| e.to_string().contains("additional properties")),
        "a misspelt key passed lint: {typo:?}"
    );
    Ok(())
}

#[test]
fn chart_crds_are_the_generated_crds() -> Result<()> {
    // The chart holds no second copy: charts/siths-operator/crds is crds/ (a symlink), and
    // this fails if someone replaces it with files that drift.
    let root = e2e::controlplane::workspace_root();
    let mut generated: Vec<PathBuf> = std::fs::read_dir(root.join("crds"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    generated.sort();
    let kinds = siths_operator::api::all_crds().len();
    ensure!(
        generated.len() == kinds,
        "expected {kinds} CRDs, found {generated:?}"
    );
    for path in &generated {
        let name = path.file_name().context("file name")?;
        let in_chart = chart_dir().join("crds").join(name);
        ensure!(
            std::fs::read(path)? == std::fs::read(&in_chart)?,
            "{} differs from {}",
            in_chart.display(),
            path.display()
        );
    }
    let docs = render(&[])?;
    let crds = of_kind(&docs, "CustomResourceDefinition");
    ensure!(crds.len() == kinds, "helm renders {} CRDs", crds.len());
    Ok(())
}

#[test]
fn chart_pod_is_locked_down_and_rbac_has_no_wildcards() -> Result<()> {
    let docs = render(ALL_OPTIONS)?;
    let deploy = of_kind(&docs, "Deployment");
    ensure!(deploy.len() == 1, "one Deployment");
    let pod = &deploy[0]["spec"]["template"]["spec"];
    ensure!(pod["securityContext"]["runAsNonRoot"] == true, "{pod}");
    ensure!(
        pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault",
        "{pod}"
    );
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    ensure!(sc["readOnlyRootFilesystem"] == true, "{sc}");
    ensure!(sc["allowPrivilegeEscalation"] == false, "{sc}");
    ensure!(
        sc["capabilities"]["drop"] == serde_json::json!(["ALL"]),
        "{sc}"
    );
    for kind in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            ensure!(c["resources"][kind][r].is_string(), "resources.{kind}.{r}");
        }
    }
    ensure!(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "{c}");
    ensure!(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "{c}");
    let args: Vec<&str> = c["args"]
        .as_array()
        .context("args")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        args.contains(&"--log-format=json"),
        "JSON logs by default: {args:?}"
    );
    ensure!(
        args.contains(&"--siths-ca-file=/etc/siths-ca/siths-ca.pem"),
        "{args:?}"
    );
    ensure!(
        args.contains(&"--ingress-mode=public")
            && args.contains(&"--default-public-issuer=letsencrypt"),
        "{args:?}"
    );
    ensure!(
        args.contains(&"--key-pool-size=8") && args.contains(&"--key-pool-types=rsa-2048,recent"),
        "{args:?}"
    );

    for kind in ["ClusterRole", "Role"] {
        for role in of_kind(&docs, kind) {
            for rule in role["rules"].as_array().context("rules")? {
                for field in ["apiGroups", "resources", "verbs"] {
                    let values = rule[field].as_array().context("rule field")?;
                    ensure!(
                        !values
                            .iter()
                            .any(|v| v.as_str().is_some_and(|s| s.contains('*'))),
                        "{kind} {} has a wildcard in {field}: {rule}",
                        role["metadata"]["name"]
                    );
                }
            }
        }
    }
    for kind in [
        "ServiceAccount",
        "ClusterRoleBinding",
        "RoleBinding",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ] {
        ensure!(
            !of_kind(&docs, kind).is_empty(),
            "the chart renders no {kind}"
        );
    }
    let alerts: Vec<&str> = of_kind(&docs, "PrometheusRule")[0]["spec"]["groups"][0]["rules"]
        .as_array()
        .context("rules")?
        .iter()
        .filter_map(|r| r["alert"].as_str())
        .collect();
    for want in [
        "SithsCertificateRenewalWithoutApprovedOrder",
        "SithsCertificateExpiringSoon",
        "SithsOrderWaitingForApproval",
        "SithsCertificateOnUserFacingIngress",
    ] {
        ensure!(alerts.contains(&want), "alert {want} missing: {alerts:?}");
    }
    Ok(())
}

/// A client-certificate user of the control plane and a client for it.
async fn user(cp: &ControlPlane, name: &str) -> Result<(PathBuf, Client)> {
    let path = cp.dir.join(format!("kubeconfig-{name}"));
    cp.write_kubeconfig(&path, name, &[])?;
    let client = client_from_kubeconfig(&path).await?;
    Ok((path, client))
}

/// Whether `user` may `verb` `resource` (optionally `sub`resource, `name`) in `ns`,
/// as the apiserver's authorizer answers a SubjectAccessReview.
#[allow(clippy::too_many_arguments)]
async fn can(
    admin: &Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    sub: Option<&str>,
    ns: Option<&str>,
    name: Option<&str>,
) -> Result<bool> {
    let (username, groups) = match user.strip_prefix("system:serviceaccount:") {
        Some(rest) => {
            let ns = rest.split(':').next().unwrap_or_default();
            (
                user.to_string(),
                vec![
                    "system:serviceaccounts".to_string(),
                    format!("system:serviceaccounts:{ns}"),
                    "system:authenticated".to_string(),
                ],
            )
        }
        None => (user.to_string(), vec!["system:authenticated".to_string()]),
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(username),
            groups: Some(groups),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource: sub.map(String::from),
                namespace: ns.map(String::from),
                name: name.map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(admin.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

async fn bind_cluster_role(admin: &Client, user: &str, role: &str) -> Result<()> {
    apply(
        &Api::<ClusterRoleBinding>::all(admin.clone()),
        &format!(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{ name: e2e-{user} }}
roleRef: {{ apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role} }}
subjects: [{{ kind: User, apiGroup: rbac.authorization.k8s.io, name: {user} }}]
"#
        ),
    )
    .await?;
    Ok(())
}

async fn bind_role_in(admin: &Client, ns: &str, user: &str, cluster_role: &str) -> Result<()> {
    apply(
        &Api::<RoleBinding>::namespaced(admin.clone(), ns),
        &format!(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{ name: e2e-{user}-{cluster_role}, namespace: {ns} }}
roleRef: {{ apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {cluster_role} }}
subjects: [{{ kind: User, apiGroup: rbac.authorization.k8s.io, name: {user} }}]
"#
        ),
    )
    .await?;
    Ok(())
}

/// Installs the chart and waits until its objects are accepted (and the aggregated
/// roles folded into the built-in ones).
async fn installed() -> Result<(&'static ControlPlane, Client)> {
    let cp = e2e::shared();
    install_chart(cp)?;
    let admin = cp.client().await?;
    let deploy = Api::<Deployment>::namespaced(admin.clone(), OPERATOR_NAMESPACE)
        .get(RELEASE)
        .await?;
    ensure!(deploy.spec.is_some(), "Deployment without spec");
    Ok((cp, admin))
}

#[tokio::test]
async fn chart_installs_into_the_apiserver() -> Result<()> {
    let (cp, admin) = installed().await?;
    let status = helm(
        Some(&cp.kubeconfig),
        &["status", RELEASE, "--namespace", OPERATOR_NAMESPACE],
    )?;
    ensure!(status.contains("STATUS: deployed"), "{status}");
    ensure!(
        status.contains("Give people their SITHS roles"),
        "NOTES.txt: {status}"
    );
    let roles = Api::<ClusterRole>::all(admin.clone());
    for name in [
        RELEASE,
        "siths-operator-responsible-issuer",
        "siths-operator-id-administrator",
        "siths-operator-security-officer",
        "siths-operator-aggregate-to-view",
        "siths-operator-aggregate-to-edit",
    ] {
        roles
            .get(name)
            .await
            .with_context(|| format!("ClusterRole {name}"))?;
    }
    Ok(())
}

/// One row of the matrix: who, what, where, and whether it is allowed.
struct Row {
    who: &'static str,
    verb: &'static str,
    resource: &'static str,
    ns: Option<&'static str>,
    allowed: bool,
}

const fn row(
    who: &'static str,
    verb: &'static str,
    resource: &'static str,
    ns: Option<&'static str>,
    allowed: bool,
) -> Row {
    Row {
        who,
        verb,
        resource,
        ns,
        allowed,
    }
}

const TEAM_NS: &str = "rbac-team";
const OPERATOR_SA: &str = "system:serviceaccount:siths-operator:siths-operator";

/// Resource strings: `group/resource[/subresource]`, core group empty.
const MATRIX: &[Row] = &[
    // A team member (built-in edit role in their namespace): their certificates, nothing else.
    row(
        "tina",
        "create",
        "siths-operator.io/servicecertificates",
        Some(TEAM_NS),
        true,
    ),
    row(
        "tina",
        "delete",
        "siths-operator.io/servicecertificates",
        Some(TEAM_NS),
        true,
    ),
    row(
        "tina",
        "list",
        "siths-operator.io/certificateorders",
        Some(TEAM_NS),
        true,
    ),
    row(
        "tina",
        "patch",
        "siths-operator.io/certificateorders",
        Some(TEAM_NS),
        false,
    ),
    row(
        "tina",
        "approve",
        "siths-operator.io/sithsissuers",
        None,
        false,
    ),
    row(
        "tina",
        "create",
        "siths-operator.io/servicecertificates",
        Some("default"),
        false,
    ),
    row(
        "tina",
        "create",
        "siths-operator.io/sithsissuers",
        None,
        false,
    ),
    row(
        "tina",
        "create",
        "siths-operator.io/domainvalidations",
        None,
        false,
    ),
    // Id-administratör: approves, denies, imports; manages nothing else.
    row(
        "ida",
        "approve",
        "siths-operator.io/sithsissuers",
        None,
        true,
    ),
    row(
        "ida",
        "patch",
        "siths-operator.io/certificateorders",
        Some(TEAM_NS),
        true,
    ),
    row(
        "ida",
        "delete",
        "siths-operator.io/certificateorders",
        Some(TEAM_NS),
        false,
    ),
    row(
        "ida",
        "create",
        "siths-operator.io/servicecertificates",
        Some(TEAM_NS),
        false,
    ),
    row(
        "ida",
        "update",
        "siths-operator.io/sithsissuers",
        None,
        false,
    ),
    row("ida", "get", "/secrets", Some(TEAM_NS), false),
    // Ansvarig utgivare: the connection and the domain validations.
    row(
        "rita",
        "create",
        "siths-operator.io/sithsissuers",
        None,
        true,
    ),
    row(
        "rita",
        "update",
        "siths-operator.io/domainvalidations",
        None,
        true,
    ),
    row(
        "rita",
        "delete",
        "siths-operator.io/domainvalidations",
        None,
        true,
    ),
    row(
        "rita",
        "approve",
        "siths-operator.io/sithsissuers",
        None,
        false,
    ),
    row(
        "rita",
        "patch",
        "siths-operator.io/certificateorders",
        Some(TEAM_NS),
        false,
    ),
    // Säkerhetsansvarig: reads everything, changes nothing, no private keys.
    row(
        "sam",
        "list",
        "siths-operator.io/servicecertificates",
        None,
        true,
    ),
    row(
        "sam",
        "list",
        "siths-operator.io/certificateorders",
        None,
        true,
    ),
    row("sam", "list", "siths-operator.io/sithsissuers", None, true),
    row(
        "sam",
        "list",
        "siths-operator.io/domainvalidations",
        None,
        true,
    ),
    row("sam", "list", "networking.k8s.io/ingresses", None, true),
    row(
        "sam",
        "approve",
        "siths-operator.io/sithsissuers",
        None,
        false,
    ),
    row("sam", "get", "/secrets", Some(TEAM_NS), false),
    row(
        "sam",
        "patch",
        "siths-operator.io/servicecertificates/status",
        Some(TEAM_NS),
        false,
    ),
    // The operator: its resources' status, orders created once, Secrets, its Lease.
    row(
        OPERATOR_SA,
        "watch",
        "siths-operator.io/servicecertificates",
        None,
        true,
    ),
    row(
        OPERATOR_SA,
        "patch",
        "siths-operator.io/servicecertificates/status",
        Some(TEAM_NS),
        true,
    ),
    row(
        OPERATOR_SA,
        "create",
        "siths-operator.io/certificateorders",
        Some(TEAM_NS),
        true,
    ),
    row(OPERATOR_SA, "create", "/secrets", Some(TEAM_NS), true),
    row(
        OPERATOR_SA,
        "create",
        "coordination.k8s.io/leases",
        Some(OPERATOR_NAMESPACE),
        true,
    ),
    row(
        OPERATOR_SA,
        "create",
        "coordination.k8s.io/leases",
        Some("default"),
        false,
    ),
    row(
        OPERATOR_SA,
        "patch",
        "siths-operator.io/certificateorders",
        Some(TEAM_NS),
        false,
    ),
    row(
        OPERATOR_SA,
        "approve",
        "siths-operator.io/sithsissuers",
        None,
        false,
    ),
    row(
        OPERATOR_SA,
        "update",
        "siths-operator.io/servicecertificates",
        Some(TEAM_NS),
        false,
    ),
    row(
        OPERATOR_SA,
        "delete",
        "siths-operator.io/certificateorders",
        Some(TEAM_NS),
        false,
    ),
    row(OPERATOR_SA, "delete", "/namespaces", None, false),
    // A SithsTrustBundle writes CA ConfigMaps; nothing in the operator updates Secrets
    // wholesale (it patches by server-side apply) or touches workloads.
    row(OPERATOR_SA, "create", "/configmaps", Some(TEAM_NS), true),
    row(OPERATOR_SA, "update", "/secrets", Some(TEAM_NS), false),
    row(
        OPERATOR_SA,
        "delete",
        "apps/deployments",
        Some(TEAM_NS),
        false,
    ),
];

#[tokio::test]
async fn rbac_matrix_of_the_siths_roles() -> Result<()> {
    let (_cp, admin) = installed().await?;
    e2e::ensure_namespace(&admin, TEAM_NS).await?;
    bind_role_in(&admin, TEAM_NS, "tina", "edit").await?;
    bind_cluster_role(&admin, "ida", "siths-operator-id-administrator").await?;
    bind_cluster_role(&admin, "rita", "siths-operator-responsible-issuer").await?;
    bind_cluster_role(&admin, "sam", "siths-operator-security-officer").await?;

    // The security officer can change nothing of the project's.
    let mut rows: Vec<(String, String, String, Option<String>, bool)> = MATRIX
        .iter()
        .map(|r| {
            (
                r.who.to_string(),
                r.verb.to_string(),
                r.resource.to_string(),
                r.ns.map(String::from),
                r.allowed,
            )
        })
        .collect();
    for kind in [
        "servicecertificates",
        "certificateorders",
        "sithsissuers",
        "domainvalidations",
    ] {
        let namespaced = matches!(kind, "servicecertificates" | "certificateorders");
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            rows.push((
                "sam".into(),
                verb.into(),
                format!("siths-operator.io/{kind}"),
                namespaced.then(|| TEAM_NS.to_string()),
                false,
            ));
        }
    }

    // The aggregation controller folds our rules into `edit` shortly after install.
    let mut wrong = Vec::new();
    for attempt in 0..50 {
        wrong.clear();
        for (who, verb, resource, ns, allowed) in &rows {
            let (group, rest) = resource.split_once('/').context("group/resource")?;
            let (res, sub) = match rest.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (rest, None),
            };
            let got = can(&admin, who, verb, group, res, sub, ns.as_deref(), None).await?;
            if got != *allowed {
                wrong.push(format!(
                    "{who} {verb} {resource} in {}: expected {}, got {}",
                    ns.as_deref().unwrap_or("(cluster)"),
                    if *allowed { "allowed" } else { "denied" },
                    if got { "allowed" } else { "denied" },
                ));
            }
        }
        if wrong.is_empty() {
            eprintln!(
                "RBAC matrix: {} checks pass (attempt {})",
                rows.len(),
                attempt + 1
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("RBAC matrix:\n{}", wrong.join("\n"))
}

fn order_yaml(ns: &str, issuer: &str) -> String {
    format!(
        r#"
apiVersion: siths-operator.io/v1alpha1
kind: CertificateOrder
metadata: {{ name: api-1, namespace: {ns} }}
spec:
  certificateName: api
  revision: 1
  issuerName: {issuer}
  dnsNames: [api.region.se]
  subject: CN=api.region.se
  csr: "-----BEGIN CERTIFICATE REQUEST-----\nMA==\n-----END CERTIFICATE REQUEST-----\n"
  estimatedCostSek: 3500
"#
    )
}

fn approval_patch(by: &str) -> Value {
    serde_json::json!({ "spec": { "approval": {
        "decision": "Approved", "by": by, "at": "2026-05-01T10:00:00Z"
    } } })
}

fn forbidden_message(r: Result<CertificateOrder, kube::Error>) -> Result<String> {
    match r {
        Err(kube::Error::Api(e)) if e.code == 403 || e.code == 422 => Ok(e.message),
        Err(e) => bail!("unexpected error {e}"),
        Ok(_) => bail!("the change was accepted"),
    }
}

#[tokio::test]
async fn only_approvers_of_the_issuer_may_approve_or_import() -> Result<()> {
    let (cp, admin) = installed().await?;
    let ns = e2e::test_namespace(&admin, "approval").await?;
    let issuer = format!("south-{ns}");
    apply(
        &Api::<SithsIssuer>::all(admin.clone()),
        &format!(
            r#"
apiVersion: siths-operator.io/v1alpha1
kind: SithsIssuer
metadata: {{ name: {issuer} }}
spec:
  organization: {{ name: Region Syd, organizationNumber: "232100-0016" }}
  connection: {{ type: Direct }}
  environment: Production
  backend: {{ manual: {{}} }}
"#
        ),
    )
    .await?;
    let orders = Api::<CertificateOrder>::namespaced(admin.clone(), &ns);
    apply(&orders, &order_yaml(&ns, &issuer)).await?;

    // A team member who may edit orders (RBAC) but not approve: the policy refuses, and
    // says why, through sithsctl as a person would run it.
    let team_role = format!("e2e-order-editor-{ns}");
    apply(
        &Api::<ClusterRole>::all(admin.clone()),
        &format!(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{ name: {team_role} }}
rules:
  - apiGroups: [siths-operator.io]
    resources: [certificateorders]
    verbs: [get, list, patch, update]
  - apiGroups: [siths-operator.io]
    resources: [sithsissuers]
    verbs: [get]
"#
        ),
    )
    .await?;
    bind_role_in(&admin, &ns, "tom", &team_role).await?;
    // An id administrator for another issuer only.
    apply(
        &Api::<ClusterRole>::all(admin.clone()),
        &format!(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{ name: e2e-approver-north-{ns} }}
rules:
  - apiGroups: [siths-operator.io]
    resources: [sithsissuers]
    resourceNames: [north]
    verbs: [approve]
"#
        ),
    )
    .await?;
    bind_role_in(&admin, &ns, "nora", &team_role).await?;
    bind_cluster_role(&admin, "nora", &format!("e2e-approver-north-{ns}")).await?;
    bind_cluster_role(&admin, "ida", "siths-operator-id-administrator").await?;

    let (tom_kc, tom) = user(cp, "tom").await?;
    let (_, nora) = user(cp, "nora").await?;
    let (ida_kc, ida) = user(cp, "ida").await?;
    let tom_orders = Api::<CertificateOrder>::namespaced(tom, &ns);

    // The policy takes effect shortly after it is created: probe with throwaway orders
    // until the first refusal, so the order under test is never approved by accident.
    let mut probe = 0;
    let message = e2e::eventually(Duration::from_secs(30), "the approval policy", || {
        probe += 1;
        let (admin, tom_orders, ns, issuer) = (
            admin.clone(),
            tom_orders.clone(),
            ns.clone(),
            issuer.clone(),
        );
        async move {
            let name = format!("probe-{probe}");
            let mut o: CertificateOrder = serde_yaml::from_str(&order_yaml(&ns, &issuer))?;
            o.metadata.name = Some(name.clone());
            Api::<CertificateOrder>::namespaced(admin, &ns)
                .create(&PostParams::default(), &o)
                .await?;
            let r = tom_orders
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(approval_patch("tom")),
                )
                .await;
            match r {
                Ok(_) => Ok(None),
                Err(kube::Error::Api(e)) if e.code == 403 => Ok(Some(e.message)),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await;
    let message = match message {
        Ok(m) => m,
        Err(e) => {
            let policy: Value = admin
                .request(
                    http::Request::get("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/siths-operator-order-approval")
                        .body(Vec::new())?,
                )
                .await?;
            bail!("{e:#}\npolicy: {policy:#}")
        }
    };
    eprintln!("approval policy active after {probe} probe order(s)");
    // The order under test was not touched by a probe.
    ensure!(
        orders.get("api-1").await?.spec.approval.is_none(),
        "api-1 was approved"
    );
    let want = format!(
        "tom may not approve or deny CertificateOrders of SithsIssuer {issuer}: that needs the verb approve on sithsissuers/{issuer} (ClusterRole siths-operator-id-administrator)"
    );
    ensure!(message.contains(&want), "denial message: {message}");

    let out = sithsctl_output(&tom_kc, &["orders", "approve", "-n", &ns, "api-1"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "sithsctl approve as tom succeeded");
    ensure!(
        stderr.contains(&want),
        "sithsctl shows the reason: {stderr}"
    );

    // Importing a certificate is the same permission.
    let import = serde_json::json!({ "spec": { "certificate": "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n" } });
    let m = forbidden_message(
        tom_orders
            .patch("api-1", &PatchParams::default(), &Patch::Merge(&import))
            .await,
    )?;
    ensure!(m.contains("may not import a certificate"), "{m}");

    // A decision is made in one's own name, even by an administrator allowed everything,
    // also when an order is created already decided.
    let tom_creates = forbidden_message(
        Api::<CertificateOrder>::namespaced(admin.clone(), &ns)
            .create(&PostParams::default(), &{
                let mut o: CertificateOrder = serde_yaml::from_str(&order_yaml(&ns, &issuer))?;
                o.metadata.name = Some("api-2".into());
                o.spec.revision = 2;
                o.spec.approval = Some(serde_json::from_value(
                    approval_patch("tom")["spec"]["approval"].clone(),
                )?);
                o
            })
            .await,
    );
    ensure!(
        tom_creates
            .as_ref()
            .is_ok_and(|m| m.contains("spec.approval.by must name the approver")),
        "{tom_creates:?}"
    );

    // Approval for another issuer does not carry over.
    let m = forbidden_message(
        Api::<CertificateOrder>::namespaced(nora, &ns)
            .patch(
                "api-1",
                &PatchParams::default(),
                &Patch::Merge(approval_patch("nora")),
            )
            .await,
    )?;
    ensure!(m.contains("nora may not approve"), "{m}");

    // The id administrator may, in their own name only.
    let m = forbidden_message(
        Api::<CertificateOrder>::namespaced(ida.clone(), &ns)
            .patch(
                "api-1",
                &PatchParams::default(),
                &Patch::Merge(approval_patch("someone-else")),
            )
            .await,
    )?;
    ensure!(
        m.contains("spec.approval.by must name the approver: ida"),
        "{m}"
    );
    let out = sithsctl_output(&ida_kc, &["orders", "approve", "-n", &ns, "api-1"])?;
    ensure!(
        out.status.success(),
        "sithsctl approve as ida: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let approved = orders.get("api-1").await?;
    let a = approved.spec.approval.context("approval recorded")?;
    ensure!(a.by == "ida", "approved by {}", a.by);
    Api::<CertificateOrder>::namespaced(ida.clone(), &ns)
        .patch("api-1", &PatchParams::default(), &Patch::Merge(&import))
        .await
        .context("ida imports a certificate")?;

    // Once the order is Issued its certificate is final, even for an approver.
    orders
        .patch_status(
            "api-1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": { "phase": "Issued" } })),
        )
        .await?;
    let replace = serde_json::json!({ "spec": { "certificate": "-----BEGIN CERTIFICATE-----\nMQ==\n-----END CERTIFICATE-----\n" } });
    let m = forbidden_message(
        Api::<CertificateOrder>::namespaced(ida, &ns)
            .patch("api-1", &PatchParams::default(), &Patch::Merge(&replace))
            .await,
    )?;
    ensure!(m.contains("the order is Issued"), "{m}");
    Ok(())
}

/// `(apiGroup, resource, verb)` of every rule of `role`.
fn triples(role: &Value) -> std::collections::BTreeSet<(String, String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        for g in rule["apiGroups"].as_array().into_iter().flatten() {
            for r in rule["resources"].as_array().into_iter().flatten() {
                for v in rule["verbs"].as_array().into_iter().flatten() {
                    out.insert((
                        g.as_str().unwrap_or_default().to_string(),
                        r.as_str().unwrap_or_default().to_string(),
                        v.as_str().unwrap_or_default().to_string(),
                    ));
                }
            }
        }
    }
    out
}

/// The operator's tables of docs/rbac.md: the ClusterRole's rows, then the Role's.
#[allow(clippy::type_complexity)]
fn documented_operator_rbac() -> Result<(
    std::collections::BTreeSet<(String, String, String)>,
    std::collections::BTreeSet<(String, String, String)>,
)> {
    let text = std::fs::read_to_string(e2e::controlplane::workspace_root().join("docs/rbac.md"))?;
    let section = text
        .split("## The operator")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .context("docs/rbac.md has no operator section")?;
    let (cluster, role) = section
        .split_once("And a Role")
        .context("docs/rbac.md: the Role table follows `And a Role`")?;
    let parse = |table: &str| {
        let mut out = std::collections::BTreeSet::new();
        for line in table.lines().filter(|l| l.starts_with('|')) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 4 || cells[1] == "API group" || cells[1].starts_with("---") {
                continue;
            }
            let group = if cells[1].starts_with("\"\"") {
                ""
            } else {
                cells[1]
            };
            for r in cells[2].split(',').map(str::trim) {
                for v in cells[3].split(',').map(str::trim) {
                    out.insert((group.to_string(), r.to_string(), v.to_string()));
                }
            }
        }
        out
    };
    Ok((parse(cluster), parse(role)))
}

/// docs/rbac.md lists exactly the permissions the chart gives the operator: a verb added
/// to or removed from either fails here.
#[test]
fn docs_rbac_tables_are_the_charts_operator_rbac() -> Result<()> {
    let docs = render(&[])?;
    let named = |kind: &str, name: &str| -> Result<Value> {
        of_kind(&docs, kind)
            .into_iter()
            .find(|d| d["metadata"]["name"] == name)
            .cloned()
            .with_context(|| format!("{kind} {name} not rendered"))
    };
    let cluster = triples(&named("ClusterRole", RELEASE)?);
    let role = triples(&named("Role", &format!("{RELEASE}-leader-election"))?);
    let (doc_cluster, doc_role) = documented_operator_rbac()?;
    ensure!(
        !doc_cluster.is_empty() && !doc_role.is_empty(),
        "tables not found"
    );
    ensure!(
        cluster == doc_cluster,
        "ClusterRole {RELEASE}: only in the chart {:?}; only in docs/rbac.md {:?}",
        cluster.difference(&doc_cluster).collect::<Vec<_>>(),
        doc_cluster.difference(&cluster).collect::<Vec<_>>()
    );
    ensure!(
        role == doc_role,
        "Role {RELEASE}-leader-election: only in the chart {:?}; only in docs/rbac.md {:?}",
        role.difference(&doc_role).collect::<Vec<_>>(),
        doc_role.difference(&role).collect::<Vec<_>>()
    );
    Ok(())
}
