//! DNS lookups of the live TXT check: against the configured nameservers (or the system
//! resolver), with a timeout, and with a resolver built for each lookup so that no answer
//! is cached between checks. [`rfc2136`]: dynamic updates with TSIG for ACME DNS-01.

pub mod rfc2136;

use std::{net::SocketAddr, time::Duration};

use hickory_resolver::{
    TokioResolver,
    config::{NameServerConfig, ResolverConfig},
    net::{DnsError, NetError, runtime::TokioRuntimeProvider},
    proto::{op::ResponseCode, rr::RData},
};

use crate::policy::dns_check::Lookup;

/// Where and how the live check looks records up (flags `--dns-nameservers`,
/// `--dns-check-timeout`).
#[derive(Debug, Clone, Default)]
pub struct LookupSettings {
    /// Nameservers asked, in order; empty: the system resolver (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// Time one lookup may take, all attempts included.
    pub timeout: Duration,
}

/// Parses `--dns-nameservers`: `ip` or `ip:port` (IPv6 with a port as `[ip]:port`).
pub fn parse_nameserver(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not a nameserver address (ip or ip:port)"))
}

fn resolver(settings: &LookupSettings) -> Result<TokioResolver, String> {
    let mut builder = if settings.nameservers.is_empty() {
        TokioResolver::builder(TokioRuntimeProvider::default())
            .map_err(|e| format!("reading the system resolver configuration: {e}"))?
    } else {
        let mut config = ResolverConfig::from_parts(None, vec![], vec![]);
        for addr in &settings.nameservers {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            config.add_name_server(ns);
        }
        TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
    };
    let opts = builder.options_mut();
    opts.cache_size = 0;
    opts.timeout = settings.timeout;
    opts.attempts = 1;
    opts.ndots = 0;
    builder
        .build()
        .map_err(|e| format!("building the resolver: {e}"))
}

/// Looks up the TXT record `name` and compares its strings with `expected`.
pub async fn check_txt(settings: &LookupSettings, name: &str, expected: &str) -> Lookup {
    let resolver = match resolver(settings) {
        Ok(r) => r,
        Err(e) => return Lookup::Failed(e),
    };
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let lookup = tokio::time::timeout(settings.timeout, resolver.txt_lookup(fqdn)).await;
    match lookup {
        Err(_) => Lookup::Failed(format!("timed out after {:?}", settings.timeout)),
        Ok(Ok(answer)) => {
            let strings = answer
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                })
                .flatten()
                .collect();
            Lookup::from_answer(strings, expected)
        }
        Ok(Err(NetError::Dns(DnsError::NoRecordsFound(nr))))
            if matches!(
                nr.response_code,
                ResponseCode::NXDomain | ResponseCode::NoError
            ) =>
        {
            Lookup::Missing
        }
        Ok(Err(e)) => Lookup::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_addresses() {
        assert_eq!(
            parse_nameserver("10.0.0.10").unwrap(),
            "10.0.0.10:53".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert!(parse_nameserver("ns1.region.se").is_err());
    }

    #[tokio::test]
    async fn an_unanswered_lookup_fails_within_the_timeout() {
        // A UDP socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let settings = LookupSettings {
            nameservers: vec![silent.local_addr().unwrap()],
            timeout: Duration::from_millis(300),
        };
        let started = std::time::Instant::now();
        let outcome = check_txt(&settings, "_siths.region.se", "x").await;
        assert!(matches!(outcome, Lookup::Failed(_)), "{outcome:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
