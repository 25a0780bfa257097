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

/// The kube client logs the whole body of a response it cannot decode at `warn` (every
/// object of a list, whatever a person pasted into them, keys included); never let it.
const QUIET_CLIENT: &str = "kube_client::client=error";

/// Installs the global subscriber. The level comes from `RUST_LOG` (default `info`); the
/// kube client's own response logging stays off whatever `RUST_LOG` says.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive(QUIET_CLIENT.parse().expect("a valid directive"));
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

/// `text` with the contents of every quoted (`"..."`) or backticked value removed: error
/// messages of decoders quote the value they failed on, which can be anything a person
/// put into an object.
pub fn redact_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        out.push('…');
    }
    out
}

/// A kube client error as it may be logged or shown: the status and the apiserver's
/// message for API errors, the place for a response that did not decode, never a body or
/// a decoded value.
pub fn kube_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, redact_values(&s.message)),
        kube::Error::SerdeError(e) => format!(
            "a response did not decode ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ),
        other => redact_values(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private key made for the test, on one line, and one of its base64 lines.
    fn key() -> (String, String) {
        let pem = crate::pki::KeySpec::ECDSA_P256.generate().unwrap().to_pem();
        let line = pem.lines().nth(1).unwrap().to_string();
        (pem.lines().collect::<Vec<_>>().join(" "), line)
    }

    #[test]
    fn quoted_values_are_removed() {
        let (key, line) = key();
        let msg = format!("invalid type: string \"{key}\", expected u32 at line 1 column 9");
        let r = redact_values(&msg);
        assert!(!r.contains(&line) && !r.contains("PRIVATE"), "{r}");
        assert!(r.contains("expected u32 at line 1 column 9"), "{r}");
        assert_eq!(
            redact_values("unknown variant `Bogus`, expected one of"),
            "unknown variant `…`, expected one of"
        );
        assert_eq!(redact_values("cut \"off"), "cut \"…");
    }

    #[test]
    fn a_response_that_does_not_decode_is_named_by_place_only() {
        let (key, line) = key();
        let body = format!(
            "{{\"items\": [{{\"spec\": {{\"certificate\": \"{key}\", \"revision\": \"x\"}}}}]}}"
        );
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Spec {
            certificate: String,
            revision: u32,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Item {
            spec: Spec,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct List {
            items: Vec<Item>,
        }
        let e = serde_json::from_str::<List>(&body).unwrap_err();
        let shown = kube_error(&kube::Error::SerdeError(e));
        assert!(
            !shown.contains(&line) && !shown.contains("BEGIN"),
            "{shown}"
        );
        assert!(shown.contains("line 1"), "{shown}");
        assert!(
            QUIET_CLIENT
                .parse::<tracing_subscriber::filter::Directive>()
                .is_ok()
        );
    }
}
