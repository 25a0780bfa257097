//! The operator process: reconciles the project's resources until SIGTERM/SIGINT.

use clap::Parser;
use siths_operator::{run, telemetry};

/// jemalloc, with its background thread returning freed pages to the system (why: the
/// comment on the dependency in `operator/Cargo.toml`, figures in BENCHMARKS.md). Rust's
/// allocations only; aws-lc's C code keeps the C library's malloc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = run::Args::parse();
    telemetry::install_crypto_provider();
    telemetry::init(args.log_format);
    run::run(args).await
}
