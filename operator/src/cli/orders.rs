//! `sithsctl orders`: the human step of SITHS issuance.

use std::{io::Read, path::PathBuf};

use anyhow::{Context as _, bail};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams},
};

use crate::{
    api::{ApprovalDecision, CertificateOrder, OrderApproval, OrderPhase},
    pki,
};

/// `sithsctl orders` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum OrdersCommand {
    /// List orders with their phase and cost.
    ///
    /// Example: sithsctl orders list -A
    List {
        /// Namespace (default: the kubeconfig's).
        #[arg(short, long)]
        namespace: Option<String>,
        /// All namespaces.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
    /// Show one order: what it requests, its phase and what to do next.
    ///
    /// Example: sithsctl orders show -n journal journal-api-1
    Show(Target),
    /// Print the order's CSR (PEM) to submit through Inera's portal.
    ///
    /// Example: sithsctl orders export-csr -n journal journal-api-1 > journal-api.csr
    ExportCsr(Target),
    /// Approve an order (recorded with who and when).
    ///
    /// Example: sithsctl orders approve -n journal journal-api-1 --reason "budget 2026"
    Approve {
        #[command(flatten)]
        target: Target,
        /// Why, in a sentence.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny an order.
    ///
    /// Example: sithsctl orders deny -n journal journal-api-1 --reason "duplicate"
    Deny {
        #[command(flatten)]
        target: Target,
        /// Why, in a sentence.
        #[arg(long)]
        reason: String,
    },
    /// Import the signed certificate (PEM chain, leaf first) returned by SITHS.
    ///
    /// Example: sithsctl orders import -n journal journal-api-1 -f journal-api.pem
    Import {
        #[command(flatten)]
        target: Target,
        /// File with the PEM chain, or - for standard input.
        #[arg(short, long)]
        file: PathBuf,
    },
}

/// An order by namespace and name.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Namespace of the order.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Name of the order.
    pub name: String,
}

fn api(client: &Client, namespace: Option<&str>) -> Api<CertificateOrder> {
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::default_namespaced(client.clone()),
    }
}

fn phase(o: &CertificateOrder) -> String {
    o.status
        .as_ref()
        .and_then(|s| s.phase)
        .map(|p| format!("{p:?}"))
        .unwrap_or_else(|| "New".into())
}

/// Runs one `orders` subcommand, writing to `out`.
pub async fn run(
    client: &Client,
    cmd: OrdersCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    match cmd {
        OrdersCommand::List {
            namespace,
            all_namespaces,
        } => {
            let namespace = if all_namespaces {
                None
            } else {
                Some(namespace.unwrap_or_else(|| client.default_namespace().to_string()))
            };
            // Item by item: one order that does not read is named, the others listed.
            let (orders, unreadable) =
                super::list_each::<CertificateOrder>(client, namespace.as_deref()).await?;
            let mut rows = vec![
                [
                    "NAMESPACE",
                    "NAME",
                    "CERTIFICATE",
                    "REV",
                    "ISSUER",
                    "PHASE",
                    "COST SEK",
                ]
                .map(String::from)
                .to_vec(),
            ];
            rows.extend(orders.iter().map(|o| {
                vec![
                    o.namespace().unwrap_or_default(),
                    o.name_any(),
                    o.spec.certificate_name.clone(),
                    o.spec.revision.to_string(),
                    o.spec.issuer_name.clone(),
                    phase(o),
                    o.spec.estimated_cost_sek.to_string(),
                ]
            }));
            write!(out, "{}", super::output::columns(&rows, &[3, 6]))?;
            for line in unreadable {
                writeln!(out, "error: {line}")?;
            }
        }
        OrdersCommand::Show(t) => {
            let o = api(client, t.namespace.as_deref()).get(&t.name).await?;
            let st = o.status.clone().unwrap_or_default();
            writeln!(
                out,
                "Order:       {}/{}",
                o.namespace().unwrap_or_default(),
                o.name_any()
            )?;
            writeln!(
                out,
                "Certificate: {} (revision {})",
                o.spec.certificate_name, o.spec.revision
            )?;
            writeln!(out, "Issuer:      {}", o.spec.issuer_name)?;
            writeln!(out, "Subject:     {}", o.spec.subject)?;
            writeln!(out, "DNS names:   {}", o.spec.dns_names.join(", "))?;
            writeln!(
                out,
                "Cost:        {} SEK (estimated)",
                o.spec.estimated_cost_sek
            )?;
            writeln!(out, "Phase:       {}", phase(&o))?;
            if let Some(a) = &o.spec.approval {
                writeln!(out, "Decision:    {:?} by {} at {}", a.decision, a.by, a.at)?;
            }
            if let Some(r) = &st.reason {
                writeln!(out, "Reason:      {r}")?;
            }
            if let Some(m) = &st.message {
                writeln!(out, "Next:        {m}")?;
            }
        }
        OrdersCommand::ExportCsr(t) => {
            let o = api(client, t.namespace.as_deref()).get(&t.name).await?;
            write!(out, "{}", o.spec.csr)?;
        }
        OrdersCommand::Approve { target, reason } => {
            decide(client, &target, ApprovalDecision::Approved, reason, out).await?;
        }
        OrdersCommand::Deny { target, reason } => {
            decide(client, &target, ApprovalDecision::Denied, Some(reason), out).await?;
        }
        OrdersCommand::Import { target, file } => {
            let mut bytes = Vec::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_end(&mut bytes)?;
            } else {
                bytes =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            }
            // PEM, or one DER certificate (converted; a chain needs PEM).
            let pem = pki::cert::certificates_pem_from_bytes(&bytes)
                .with_context(|| format!("reading {}", file.display()))?;
            let certs = pki::parse_pem_chain(&pem)
                .with_context(|| format!("{} is not a PEM certificate chain", file.display()))?;
            let api = api(client, target.namespace.as_deref());
            let o = api.get(&target.name).await?;
            // Early feedback with the operator's own check (key, names, HSA-id, subject,
            // SAN types, validity, usages), against the order's CSR; the operator runs it
            // again with the chain to the issuer's anchors.
            let csr = pki::parse_csr(&o.spec.csr)
                .with_context(|| format!("order {} holds no readable CSR", target.name))?;
            if let Err(r) = pki::check_against_request(
                &pem,
                &pki::Expected::from_csr(&csr),
                jiff::Timestamp::now(),
            ) {
                bail!(
                    "{} does not match order {}: {}: {}; nothing was imported",
                    file.display(),
                    target.name,
                    r.reason(),
                    r.message()
                );
            }
            if matches!(
                o.status.as_ref().and_then(|s| s.phase),
                Some(OrderPhase::PendingApproval)
                    | Some(OrderPhase::Denied)
                    | Some(OrderPhase::Issued)
            ) {
                bail!(
                    "order {} is {}; a certificate can be imported only after approval and before issuance",
                    target.name,
                    phase(&o)
                );
            }
            // The request time makes the operator check even the same bytes again (a
            // refusal whose cause is gone: anchors fixed, the certificate valid by now).
            let again = o.spec.certificate.as_deref() == Some(pem.as_str());
            let patch = serde_json::json!({
                "metadata": { "annotations": {
                    crate::vocabulary::IMPORT_REQUESTED_KEY: jiff::Timestamp::now().to_string(),
                } },
                "spec": { "certificate": pem },
            });
            api.patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            writeln!(
                out,
                "{} {} certificate(s) into {}; the operator checks {} now (sithsctl orders show -n {} {})",
                if again { "imported again" } else { "imported" },
                certs.len(),
                target.name,
                if again { "them again" } else { "them" },
                o.namespace().unwrap_or_default(),
                target.name
            )?;
        }
    }
    Ok(())
}

async fn decide(
    client: &Client,
    target: &Target,
    decision: ApprovalDecision,
    reason: Option<String>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let api = api(client, target.namespace.as_deref());
    let o = api.get(&target.name).await?;
    if let Some(a) = &o.spec.approval {
        bail!(
            "order {} was already {:?} by {} at {}",
            target.name,
            a.decision,
            a.by,
            a.at
        );
    }
    let by = super::whoami(client).await?;
    let approval = OrderApproval {
        decision,
        by: by.clone(),
        at: jiff::Timestamp::now().to_string(),
        reason,
    };
    let patch = serde_json::json!({ "spec": { "approval": approval } });
    api.patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    writeln!(out, "order {} {:?} by {by}", target.name, decision)?;
    Ok(())
}
