//! Logging: structured `tracing` lines, JSON for machines, human-readable on a terminal.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON when stderr is not a terminal, human-readable otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Installs the global subscriber. The level comes from `RUST_LOG` (default `info`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .init();
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .init();
    }
}

/// Installs aws-lc-rs as the process-wide rustls crypto provider. Every TLS connection
/// (kube client, ACME) uses this one provider.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is fine for tests calling twice.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
