//! The HTTP client `instant-acme` talks through: rustls with the aws-lc-rs provider,
//! Mozilla's roots or the issuer's `serverCa`, a time-out per request, and a counter of
//! every request sent (so a failing issuer's cost to the CA can be shown).

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use http::{Request, header::RETRY_AFTER};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::{
    client::legacy::{Client as HyperClient, connect::HttpConnector},
    rt::TokioExecutor,
};
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use prometheus_client::metrics::counter::Counter;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

/// Per-request time-out: a CA that accepts a connection and then says nothing must not
/// hold a reconcile forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a `Retry-After` seen on an error response is attributed to the error that
/// follows it.
const RETRY_AFTER_MEMORY: Duration = Duration::from_secs(10);

/// Requests sent and the last `Retry-After` the CA sent with an error, shared by every
/// client of one [`super::Acme`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub requests: Counter,
    pub last_retry_after: Mutex<Option<(Instant, Duration)>>,
}

impl Stats {
    /// The `Retry-After` of an error response seen in the last few seconds.
    pub fn recent_retry_after(&self) -> Option<Duration> {
        let guard = self
            .last_retry_after
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.and_then(|(at, d)| (at.elapsed() < RETRY_AFTER_MEMORY).then_some(d))
    }

    fn remember_retry_after(&self, d: Duration) {
        *self
            .last_retry_after
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), d));
    }
}

/// Root certificates for the CA's own HTTPS: `extra` PEM certificates when given (a test
/// CA such as Pebble), otherwise Mozilla's root store.
pub(crate) fn roots(extra: Option<&[CertificateDer<'static>]>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match extra {
        Some(certs) => {
            for c in certs {
                store
                    .add(c.clone())
                    .map_err(|e| format!("not a usable CA certificate: {e}"))?;
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(store)
}

type Inner = HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>;

/// An HTTPS-only client that counts its requests.
pub(crate) struct CountingClient {
    inner: Inner,
    stats: Arc<Stats>,
}

impl CountingClient {
    pub fn new(roots: RootCertStore, stats: Arc<Stats>) -> Result<Self, String> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        Ok(Self {
            inner: HyperClient::builder(TokioExecutor::new()).build(connector),
            stats,
        })
    }
}

impl HttpClient for CountingClient {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        self.stats.requests.inc();
        let stats = self.stats.clone();
        let fut = self.inner.request(req);
        Box::pin(async move {
            let rsp = match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
                Ok(Ok(rsp)) => rsp,
                Ok(Err(e)) => return Err(instant_acme::Error::Other(Box::new(e))),
                Err(_) => {
                    return Err(instant_acme::Error::Other(
                        format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()).into(),
                    ));
                }
            };
            let status = rsp.status();
            if (status.is_client_error() || status.is_server_error())
                && let Some(d) = rsp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after)
            {
                stats.remember_retry_after(d);
            }
            Ok(BytesResponse::from(rsp))
        })
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let at = SystemTime::from(at);
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_as_seconds_or_date() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT"),
            Some(Duration::ZERO)
        );
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(600);
        let text = jiff::fmt::rfc2822::to_string(&later.to_zoned(jiff::tz::TimeZone::UTC)).unwrap();
        let d = parse_retry_after(&text).unwrap();
        assert!((590..=600).contains(&d.as_secs()), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn roots_default_to_mozilla() {
        assert!(roots(None).unwrap().len() > 100);
        assert_eq!(roots(Some(&[])).unwrap().len(), 0);
    }
}
