//! `sithsctl status <name>`: a ServiceCertificate, its Secret, issuer, orders and recent
//! events in one view.

use std::io::Write;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::{Api, Client, ResourceExt, api::ListParams};

use crate::{
    api::{CertificateOrder, Condition, IssuerKind, ServiceCertificate, SithsIssuer},
    audit::objects::certificate_blocks,
    pki::{self, CertInfo},
    vocabulary::CERTIFICATE_LABEL,
};

/// Arguments of `sithsctl status`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:\n  sithsctl status -n integration patientjournal-link")]
pub struct StatusArgs {
    /// Namespace of the ServiceCertificate (default: the kubeconfig's).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Name of the ServiceCertificate.
    pub name: String,
}

fn conditions(out: &mut impl Write, conditions: &[Condition]) -> std::io::Result<()> {
    for c in conditions {
        writeln!(
            out,
            "  {:<16} {:<6} {:<22} {}",
            c.type_, c.status, c.reason, c.message
        )?;
    }
    Ok(())
}

/// Prints the status view of one ServiceCertificate.
pub async fn run(client: &Client, args: &StatusArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let certs: Api<ServiceCertificate> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::default_namespaced(client.clone()),
    };
    let cert = certs.get(&args.name).await?;
    let ns = cert.namespace().unwrap_or_default();
    let st = cert.status.clone().unwrap_or_default();
    let spec = &cert.spec;
    writeln!(out, "ServiceCertificate {ns}/{}", args.name)?;
    writeln!(out, "  Purpose:    {:?}", spec.purpose)?;
    writeln!(out, "  DNS names:  {}", spec.dns_names.join(", "))?;
    writeln!(out, "  Route:      {}", st.route.as_deref().unwrap_or("-"))?;
    writeln!(
        out,
        "  Revision:   {}",
        st.revision.map_or("-".into(), |r| r.to_string())
    )?;
    writeln!(
        out,
        "  Not after:  {}",
        st.not_after.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "  Renewal:    {}",
        st.renewal_time.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "Conditions:")?;
    conditions(out, &st.conditions)?;

    writeln!(
        out,
        "Issuer {:?}/{}",
        spec.issuer_ref.kind, spec.issuer_ref.name
    )?;
    if spec.issuer_ref.kind == IssuerKind::SithsIssuer {
        match Api::<SithsIssuer>::all(client.clone())
            .get_opt(&spec.issuer_ref.name)
            .await?
        {
            Some(i) => {
                let ist = i.status.unwrap_or_default();
                writeln!(
                    out,
                    "  {:?}, backend {}, {} order(s) pending, estimated spend {} SEK",
                    i.spec.environment,
                    ist.backend.as_deref().unwrap_or("-"),
                    ist.orders_pending,
                    ist.estimated_spend_sek
                )?;
                conditions(out, &ist.conditions)?;
            }
            None => writeln!(out, "  not found")?,
        }
    }

    writeln!(out, "Secret {ns}/{}", spec.secret_name)?;
    match Api::<Secret>::namespaced(client.clone(), &ns)
        .get_opt(&spec.secret_name)
        .await?
    {
        None => writeln!(out, "  does not exist")?,
        Some(secret) => {
            // Only the certificate is read; the key is never printed.
            let crt = secret
                .data
                .as_ref()
                .and_then(|d| d.get("tls.crt"))
                .map(|b| String::from_utf8_lossy(&b.0).to_string())
                .unwrap_or_default();
            match pki::parse_pem_chain(&certificate_blocks(&crt))
                .ok()
                .and_then(|c| c.first().and_then(|d| CertInfo::parse(d).ok()))
            {
                Some(leaf) => {
                    writeln!(out, "  Subject:    {}", leaf.subject)?;
                    writeln!(out, "  Issuer:     {}", leaf.issuer)?;
                    writeln!(out, "  Serial:     {}", leaf.serial_hex)?;
                    writeln!(
                        out,
                        "  Valid:      {} to {}",
                        leaf.not_before, leaf.not_after
                    )?;
                }
                None => writeln!(out, "  holds no parseable certificate in tls.crt")?,
            }
        }
    }

    writeln!(out, "Orders:")?;
    let orders = Api::<CertificateOrder>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels(&format!("{CERTIFICATE_LABEL}={}", args.name)))
        .await?;
    let mut orders = orders.items;
    orders.sort_by_key(|o| o.spec.revision);
    if orders.is_empty() {
        writeln!(out, "  none")?;
    }
    for o in &orders {
        writeln!(
            out,
            "  {:<32} revision {:<3} {:<20} {} SEK{}",
            o.name_any(),
            o.spec.revision,
            o.status
                .as_ref()
                .and_then(|s| s.phase)
                .map_or("New".into(), |p| format!("{p:?}")),
            o.spec.estimated_cost_sek,
            if st.current_order.as_deref() == Some(o.name_any().as_str()) {
                "  (current)"
            } else {
                ""
            }
        )?;
    }

    writeln!(out, "Events:")?;
    let events = Api::<Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind=ServiceCertificate,involvedObject.name={}",
            args.name
        )))
        .await?;
    let mut events = events.items;
    events.sort_by_key(|e| {
        e.event_time
            .as_ref()
            .map(|t| t.0)
            .or(e.last_timestamp.as_ref().map(|t| t.0))
    });
    if events.is_empty() {
        writeln!(out, "  none")?;
    }
    for e in events.iter().rev().take(10).rev() {
        writeln!(
            out,
            "  {:<8} {:<22} {}",
            e.type_.as_deref().unwrap_or("-"),
            e.reason.as_deref().unwrap_or("-"),
            e.message.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}
