//! `sithsctl`: the command line for people: orders, audit, plan, status, renew.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use siths_operator::{cli, telemetry};

#[derive(Debug, Parser)]
#[command(version, about = "Command line for siths-operator")]
struct Cli {
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config or in-cluster).
    #[arg(long, global = true, env = "SITHSCTL_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Orders: list, show, export the CSR, approve, deny, import the certificate.
    #[command(subcommand)]
    Orders(cli::orders::OrdersCommand),
    /// Audit a cluster or manifests for the SITHS migration: findings and a summary.
    ///
    /// Example: sithsctl audit -A --siths-ca siths-ca.pem --fail-on error
    Audit(cli::audit::AuditArgs),
    /// One ServiceCertificate with its Secret, issuer, orders and recent events.
    ///
    /// Example: sithsctl status -n integration patientjournal-link
    Status(cli::status::StatusArgs),
    /// Every certificate found: where it is used, its class (SITHS, public, other), expiry.
    ///
    /// Example: sithsctl inventory -A --siths-ca siths-ca.pem -o json
    Inventory(cli::audit::InventoryArgs),
    /// Run the operator's routing and domain-validation decisions on manifests, offline.
    ///
    /// Example: sithsctl plan -f deploy/ --fail-on error
    Plan(cli::audit::PlanArgs),
    /// Ask for a new revision of a ServiceCertificate now (through an order, approved
    /// where the issuer requires it).
    ///
    /// Example: sithsctl renew -n journal journal-api
    Renew(cli::renew::RenewArgs),
    /// Print the version.
    ///
    /// Example: sithsctl version
    Version,
}

/// Errors are printed as one line of causes (`error: reading x: ...`), never as `Debug`:
/// returning the error from `main` would print a backtrace whenever `RUST_BACKTRACE` is
/// set, for an ordinary mistake such as a missing file.
fn main() -> std::process::ExitCode {
    let args = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Cli) -> anyhow::Result<()> {
    telemetry::install_crypto_provider();
    match args.command {
        Command::Version => println!("sithsctl {}", env!("CARGO_PKG_VERSION")),
        Command::Orders(cmd) => {
            let client = cli::client(args.kubeconfig.as_deref()).await?;
            cli::orders::run(&client, cmd, &mut std::io::stdout()).await?;
        }
        Command::Audit(a) => {
            let kubeconfig = args.kubeconfig.as_deref();
            let status = cli::run_audit(kubeconfig, &a, &mut std::io::stdout()).await?;
            if status != 0 {
                std::io::Write::flush(&mut std::io::stdout())?;
                std::process::exit(status);
            }
        }
        Command::Renew(r) => {
            let client = cli::client(args.kubeconfig.as_deref()).await?;
            cli::renew::run(&client, &r, &mut std::io::stdout()).await?;
        }
        Command::Status(s) => {
            let client = cli::client(args.kubeconfig.as_deref()).await?;
            cli::status::run(&client, &s, &mut std::io::stdout()).await?;
        }
        Command::Inventory(i) => {
            cli::audit::run_inventory(args.kubeconfig.as_deref(), &i, &mut std::io::stdout())
                .await?;
        }
        Command::Plan(p) => {
            if cli::audit::run_plan(&p, &mut std::io::stdout())? {
                std::io::Write::flush(&mut std::io::stdout())?;
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
