//! The operator's HTTP endpoints: `/metrics`, `/healthz` and `/readyz`. Every replica
//! serves them, the standby included.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, http::header, response::IntoResponse};
use tokio::net::TcpListener;
use tracing::info;

use crate::metrics::{CONTENT_TYPE, Metrics};

/// What the endpoints report.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    /// Marks the process ready: it reached the API server and joined the election (or
    /// started the controllers, when leader election is off).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The exposition is streamed as it is encoded (see [`Metrics::encode_stream`]): a scrape
/// holds a few pieces of it at a time, not the whole text.
async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        axum::body::Body::from_stream(s.metrics.clone().encode_stream()),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<AppState>) -> (StatusCode, &'static str) {
    if s.health.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

/// Binds `addr`. Binding early makes a port conflict a start-up error, not a silent gap.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr} for /metrics, /healthz, /readyz: {e}")
    })
}

/// Serves the endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", axum::routing::get(self::metrics))
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .with_state(AppState { metrics, health });
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving /metrics, /healthz and /readyz");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
