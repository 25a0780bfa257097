//! The operator process: reconciles the project's resources until SIGTERM/SIGINT.

use clap::Parser;
use siths_operator::{run, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = run::Args::parse();
    telemetry::install_crypto_provider();
    telemetry::init(args.log_format);
    run::run(args).await
}
