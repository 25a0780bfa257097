//! `sithsctl audit` and `sithsctl plan`: gather objects (live or from manifests), ask the
//! pure `audit` module, print.

use std::{fmt::Debug, path::PathBuf};

use anyhow::{Context as _, bail};
use jiff::Timestamp;
use k8s_openapi::{
    NamespaceResourceScope,
    api::{
        apps::v1::{DaemonSet, Deployment, StatefulSet},
        batch::v1::{CronJob, Job},
        core::v1::{ConfigMap, Namespace, Pod, Secret, Service},
        networking::v1::Ingress,
    },
};
use kube::{Api, Client, Resource, api::ListParams};
use serde::de::DeserializeOwned;

use super::{
    manifests,
    output::{self, Format},
};
use crate::{
    api::{
        DomainValidation, ServiceCertificate, SithsIssuer,
        gateway::{BackendTLSPolicy, Gateway, HTTPRoute, ListenerSet, ReferenceGrant, TLSRoute},
    },
    audit::{self, AnchorSet, Inventory, Report, Severity, objects::GatewayApi},
    pki::Environment,
};

/// Where the objects come from.
#[derive(Debug, Clone, clap::Args)]
pub struct Sources {
    /// Manifests to read instead of a cluster: a file, a folder (read recursively) or -
    /// for standard input; repeatable. Multi-document YAML, JSON and `kubectl get -o yaml`
    /// List output.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    pub files: Vec<PathBuf>,
    /// Only this namespace (cluster-scoped objects are always read).
    #[arg(short, long, conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,
    /// All namespaces (the default).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Evaluate at this time instead of now (RFC 3339), for reproducible reports.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<Timestamp>,
}

/// The anchors that decide what "is SITHS".
#[derive(Debug, Clone, clap::Args)]
pub struct AnchorArgs {
    /// PEM file of SITHS CA certificates; repeatable. Certificates with a pinned SITHS
    /// fingerprint are anchors of their environment; any other CA certificates are extra
    /// production anchors (a CA standing in for SITHS). A certificate named like a pinned
    /// SITHS CA without its fingerprint is refused.
    #[arg(long, value_name = "FILE")]
    pub siths_ca: Vec<PathBuf>,
    /// Like --siths-ca, but extra anchors count as SITHS test (pre-production).
    #[arg(long, value_name = "FILE")]
    pub siths_test_ca: Vec<PathBuf>,
    /// Live only: a ConfigMap NAMESPACE/NAME (key ca.crt) holding SITHS CA certificates,
    /// such as the one given to the operator; checked like --siths-ca.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub siths_ca_configmap: Option<String>,
}

/// `--fail-on` thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warning,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Self {
        match f {
            FailOn::Error => Severity::Error,
            FailOn::Warning => Severity::Warning,
        }
    }
}

/// Arguments of `sithsctl audit`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  sithsctl audit -A --siths-ca siths-ca.pem
  sithsctl audit -f cluster-export.yaml --siths-ca siths-ca.pem -o markdown
  sithsctl audit -A --siths-ca siths-ca.pem -o html > audit.html
  sithsctl audit -A --siths-ca siths-ca.pem --html audit.html --fail-on error
  sithsctl audit --all-contexts --siths-ca siths-ca.pem -o html > region.html
  sithsctl audit --cluster east=east-export.yaml --cluster west=west/ --siths-ca siths-ca.pem -o json

Exit status: 1 when --fail-on trips (on any cluster); otherwise 2 when a cluster of a
fleet (--context, --all-contexts, --cluster) did not answer within --cluster-timeout or
failed (it is listed with its error in the output; the others are reported); else 0.
  kubectl get secrets,ingresses,deployments -A -o yaml | sithsctl audit -f - --fail-on error")]
pub struct AuditArgs {
    #[command(flatten)]
    pub sources: Sources,
    #[command(flatten)]
    pub anchors: AnchorArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
    /// Exit with status 1 when a finding is at least this severe.
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// Also write the HTML report to FILE (alongside the format of -o).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// Where the clusters come from.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetArgs {
    /// Audit the cluster of this kubeconfig context; repeatable (a fleet report).
    #[arg(long = "context", value_name = "NAME", conflicts_with = "files")]
    pub contexts: Vec<String>,
    /// Audit every context of the kubeconfig (a fleet report).
    #[arg(long, conflicts_with_all = ["contexts", "files"])]
    pub all_contexts: bool,
    /// Offline fleet: manifests of cluster NAME at PATH (file or folder); repeatable.
    #[arg(long = "cluster", value_name = "NAME=PATH", conflicts_with_all = ["contexts", "all_contexts", "files"])]
    pub clusters: Vec<String>,
    /// Seconds a cluster has to answer every list before it is reported as not answering.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub cluster_timeout: u64,
    /// Clusters read at the same time.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent: u16,
}

impl FleetArgs {
    /// Whether a fleet was asked for.
    pub fn active(&self) -> bool {
        !self.contexts.is_empty() || self.all_contexts || !self.clusters.is_empty()
    }
}

/// Arguments of `sithsctl inventory`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  sithsctl inventory -A --siths-ca siths-ca.pem
  sithsctl inventory -f cluster-export.yaml --siths-ca siths-ca.pem -o json")]
pub struct InventoryArgs {
    #[command(flatten)]
    pub sources: Sources,
    #[command(flatten)]
    pub anchors: AnchorArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
}

/// Arguments of `sithsctl plan`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  sithsctl plan -f deploy/ --fail-on error
  sithsctl plan -f examples/ -o markdown")]
pub struct PlanArgs {
    /// Manifests with ServiceCertificates, their SithsIssuers, DomainValidations and
    /// Namespaces: a file, a folder (read recursively) or - for standard input; repeatable.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR|-",
        required = true
    )]
    pub files: Vec<PathBuf>,
    /// Evaluate at this time instead of now (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<Timestamp>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
    /// Exit with status 1 when an entry is at least this severe (Blocked is an error).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
}

/// An anchor file as PEM text: PEM, or a DER certificate (as published at the AIA URLs).
fn read_anchor_file(path: &PathBuf) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    crate::pki::cert::certificates_pem_from_bytes(&bytes)
        .with_context(|| format!("reading {}", path.display()))
}

/// Loads the anchors named by the flags (and the ConfigMap, when a client is given).
pub async fn anchors(args: &AnchorArgs, client: Option<&Client>) -> anyhow::Result<AnchorSet> {
    let mut set = AnchorSet::new();
    for (paths, env) in [
        (&args.siths_ca, Environment::Production),
        (&args.siths_test_ca, Environment::Test),
    ] {
        for path in paths {
            set = set
                .add_pem(&read_anchor_file(path)?, env)
                .with_context(|| format!("SITHS anchors in {}", path.display()))?;
        }
    }
    if let Some(r) = &args.siths_ca_configmap {
        let Some(client) = client else {
            bail!("--siths-ca-configmap needs a cluster; with -f use --siths-ca FILE");
        };
        let (ns, name) = r
            .split_once('/')
            .context("--siths-ca-configmap must be NAMESPACE/NAME")?;
        let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .with_context(|| format!("reading ConfigMap {r}"))?;
        let pem = cm
            .data
            .and_then(|d| d.get("ca.crt").cloned())
            .with_context(|| format!("ConfigMap {r} has no ca.crt"))?;
        set = set
            .add_pem(&pem, Environment::Production)
            .with_context(|| format!("SITHS anchors in ConfigMap {r}"))?;
    }
    if !set.has_siths() {
        eprintln!(
            "warning: no SITHS anchors given (--siths-ca); no certificate can be recognised as SITHS"
        );
    }
    Ok(set)
}

async fn each<K>(api: Api<K>, mut f: impl FnMut(&K)) -> anyhow::Result<()>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut params = ListParams::default().limit(500);
    loop {
        let page = match api.list(&params).await {
            Ok(p) => p,
            // The kind's CRDs are not installed (the project's, Gateway API, OpenShift's):
            // nothing of theirs to read.
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        page.items.iter().for_each(&mut f);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

fn scoped<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Reads every object an audit looks at from the cluster, a page at a time.
pub async fn live_inventory(client: &Client, ns: Option<&str>) -> anyhow::Result<Inventory> {
    let mut inv = Inventory::default();
    let c = client;
    each(scoped::<Secret>(c, ns), |o| inv.add_secret(o))
        .await
        .context("listing Secrets")?;
    each(scoped::<ConfigMap>(c, ns), |o| inv.add_config_map(o))
        .await
        .context("listing ConfigMaps")?;
    each(scoped::<Ingress>(c, ns), |o| inv.add_ingress(o))
        .await
        .context("listing Ingresses")?;
    each(scoped::<Service>(c, ns), |o| inv.add_service(o))
        .await
        .context("listing Services")?;
    // OpenShift Routes, where the API exists (a 404 elsewhere: none to read).
    let routes = kube::discovery::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "route.openshift.io",
        "v1",
        "Route",
    ));
    let route_api: Api<kube::api::DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(c.clone(), ns, &routes),
        None => Api::all_with(c.clone(), &routes),
    };
    let mut route_values = Vec::new();
    each(route_api, |o| route_values.push(serde_json::to_value(o)))
        .await
        .context("listing Routes")?;
    for v in route_values {
        inv.add_route(&v.context("a Route as JSON")?);
    }
    // Gateway API, where its CRDs are installed (a 404: none to read). Listed whole and
    // added together: a listener's hosts and grants depend on routes and ReferenceGrants.
    let mut g = GatewayApi::default();
    each(scoped::<Gateway>(c, ns), |o| g.gateways.push(o.clone()))
        .await
        .context("listing Gateways")?;
    each(scoped::<ListenerSet>(c, ns), |o| {
        g.listener_sets.push(o.clone())
    })
    .await
    .context("listing ListenerSets")?;
    each(scoped::<HTTPRoute>(c, ns), |o| {
        g.http_routes.push(o.clone())
    })
    .await
    .context("listing HTTPRoutes")?;
    each(scoped::<TLSRoute>(c, ns), |o| g.tls_routes.push(o.clone()))
        .await
        .context("listing TLSRoutes")?;
    each(scoped::<BackendTLSPolicy>(c, ns), |o| {
        g.backend_tls_policies.push(o.clone())
    })
    .await
    .context("listing BackendTLSPolicies")?;
    each(scoped::<ReferenceGrant>(c, ns), |o| {
        g.reference_grants.push(o.clone())
    })
    .await
    .context("listing ReferenceGrants")?;
    inv.add_gateway_api(g);
    each(scoped::<Deployment>(c, ns), |o| inv.add_deployment(o)).await?;
    each(scoped::<StatefulSet>(c, ns), |o| inv.add_stateful_set(o)).await?;
    each(scoped::<DaemonSet>(c, ns), |o| inv.add_daemon_set(o)).await?;
    each(scoped::<Job>(c, ns), |o| inv.add_job(o)).await?;
    each(scoped::<CronJob>(c, ns), |o| inv.add_cron_job(o)).await?;
    each(scoped::<Pod>(c, ns), |o| inv.add_pod(o))
        .await
        .context("listing Pods")?;
    each(Api::<Namespace>::all(c.clone()), |o| inv.add_namespace(o)).await?;
    // The project's own kinds item by item: one object that does not read (stored before
    // a schema rule existed) is named and left out, not fatal for the whole audit.
    let mut unreadable = Vec::new();
    let (certs, bad) = super::list_each::<ServiceCertificate>(c, ns).await?;
    inv.service_certificates = certs;
    unreadable.extend(bad);
    let (validations, bad) = super::list_each::<DomainValidation>(c, None).await?;
    inv.domain_validations = validations;
    unreadable.extend(bad);
    let (issuers, bad) = super::list_each::<SithsIssuer>(c, None).await?;
    inv.siths_issuers = issuers;
    unreadable.extend(bad);
    for line in unreadable {
        eprintln!("warning: {line}");
    }
    inv.open_stores();
    Ok(inv)
}

fn offline_inventory(files: &[PathBuf], ns: Option<&str>) -> anyhow::Result<Inventory> {
    let mut inv = Inventory::default();
    for note in manifests::load(files, &mut inv)? {
        eprintln!("warning: {note}");
    }
    if let Some(ns) = ns {
        inv.restrict_to_namespace(ns);
    }
    inv.open_stores();
    Ok(inv)
}

/// The objects and anchors named by the flags: the cluster, or the manifests.
async fn gather(
    kubeconfig: Option<&std::path::Path>,
    sources: &Sources,
    anchor_args: &AnchorArgs,
) -> anyhow::Result<(Inventory, AnchorSet)> {
    let ns = sources.namespace.as_deref();
    if sources.files.is_empty() {
        let client = super::client(kubeconfig).await?;
        let anchors = anchors(anchor_args, Some(&client)).await?;
        Ok((live_inventory(&client, ns).await?, anchors))
    } else {
        Ok((
            offline_inventory(&sources.files, ns)?,
            anchors(anchor_args, None).await?,
        ))
    }
}

/// Runs `sithsctl audit` on one cluster or one set of manifests; returns the exit status:
/// 1 when `--fail-on` tripped, else 0. A fleet goes through [`super::run_audit`].
pub async fn run_single(
    kubeconfig: Option<&std::path::Path>,
    args: &AuditArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<i32> {
    let (inv, anchors) = gather(kubeconfig, &args.sources, &args.anchors).await?;
    let now = args.sources.now.unwrap_or_else(Timestamp::now);
    let report = audit::audit(&inv, &anchors, now);
    let fails = args.fail_on.is_some_and(|t| report.fails(t.into()));
    let html = |report: Report| -> anyhow::Result<String> {
        let cluster = audit::html::ClusterAudit {
            name: String::new(),
            certificates: audit::timeline::certificates(&inv, &anchors, now),
            report: Some(report),
            error: None,
        };
        Ok(audit::html::render(std::slice::from_ref(&cluster), now)?)
    };
    if let Some(path) = &args.html {
        std::fs::write(path, html(report.clone())?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.output == Format::Html {
        out.write_all(html(report)?.as_bytes())?;
    } else {
        output::report(&report, args.output, output::colour_stdout(), out)?;
    }
    Ok(i32::from(fails))
}

/// Runs `sithsctl inventory`.
pub async fn run_inventory(
    kubeconfig: Option<&std::path::Path>,
    args: &InventoryArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let (inv, anchors) = gather(kubeconfig, &args.sources, &args.anchors).await?;
    let now = args.sources.now.unwrap_or_else(Timestamp::now);
    let rows = audit::inventory::inventory(&inv, &anchors, now);
    output::inventory(&rows, args.output, out)?;
    Ok(())
}

/// Runs `sithsctl plan`; returns whether `--fail-on` tripped.
pub fn run_plan(args: &PlanArgs, out: &mut impl std::io::Write) -> anyhow::Result<bool> {
    let inv = offline_inventory(&args.files, None)?;
    let now = args.now.unwrap_or_else(Timestamp::now);
    let plan = audit::plan::plan(&inv, now);
    output::plan(&plan, args.output, output::colour_stdout(), out)?;
    Ok(args.fail_on.is_some_and(|t| plan.fails(t.into())))
}
