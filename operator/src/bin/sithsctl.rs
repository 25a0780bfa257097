//! `sithsctl`: the command line for people (orders now; audit and plan follow).

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
    /// Print the version.
    ///
    /// Example: sithsctl version
    Version,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Cli::parse();
    telemetry::install_crypto_provider();
    match args.command {
        Command::Version => println!("sithsctl {}", env!("CARGO_PKG_VERSION")),
        Command::Orders(cmd) => {
            let client = cli::client(args.kubeconfig.as_deref()).await?;
            cli::orders::run(&client, cmd, &mut std::io::stdout()).await?;
        }
    }
    Ok(())
}
