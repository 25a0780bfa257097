//! `sithsctl`: the command line for people (orders, audit, plan).

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(version, about = "Command line for siths-operator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version.
    ///
    /// Example: sithsctl version
    Version,
}

fn main() {
    match Cli::parse().command {
        Command::Version => println!("sithsctl {}", env!("CARGO_PKG_VERSION")),
    }
}
