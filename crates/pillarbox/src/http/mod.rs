//! The HTTP endpoint (`listener.http`, loopback by default): `/healthz`,
//! `/metrics` (Prometheus text) and the client autoconfiguration documents
//! (Thunderbird autoconfig, Outlook autodiscover, an Apple profile).

mod autoconfig;

use crate::config::Config;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hyper_util::server::graceful::GracefulShutdown;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use pillarbox_net::{CancellationToken, ConnectionLimits, ListenerConfig};
use pillarbox_store::Store;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::Instrument;

/// What the handlers need.
pub struct HttpState {
    pub store: Store,
    /// The server's account service: logins go through its shared throttle.
    pub directory: pillarbox_directory::Directory,
    pub config: Config,
    /// Bound address of every listener (the protocol ones are advertised).
    pub addrs: BTreeMap<String, SocketAddr>,
    /// The POP3-vs-IMAP lab, when enabled.
    pub lab: Option<crate::lab::Lab>,
    /// Fires at shutdown: long-lived responses (the lab's event stream) end.
    pub shutdown: CancellationToken,
}

/// The process-wide Prometheus recorder (one per process, however many
/// servers run in it).
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "pillarbox_store_deliveries_per_commit".into(),
                    ),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
                )
            })
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        handle
    })
}

/// Installs the metrics recorder (call before serving, so early counts are kept).
pub fn init_metrics() {
    let _ = prometheus();
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .merge(crate::lab::routes())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(autoconfig::thunderbird),
        )
        .route("/mail/config-v1.1.xml", get(autoconfig::thunderbird))
        .route("/autodiscover/autodiscover.xml", post(autoconfig::outlook))
        .route("/Autodiscover/Autodiscover.xml", post(autoconfig::outlook))
        .route("/apple/pillarbox.mobileconfig", get(autoconfig::apple))
        .with_state(state)
}

/// The largest request accepted: headers (431 above it) and body (413).
pub const MAX_REQUEST: usize = 64 * 1024;

/// How long a client may take to send a request when `[listener.http]`
/// sets no `idle_timeout_secs`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown`: one task per connection, under the listener's
/// connection caps; a client that takes longer than the listener's timeout
/// to send its request headers (or, in a handler, its body) is cut off, and
/// so is a request over [`MAX_REQUEST`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<HttpState>,
    config: ListenerConfig,
    shutdown: CancellationToken,
) {
    let timeout = config.idle_timeout(DEFAULT_REQUEST_TIMEOUT);
    let limits = ConnectionLimits::new(&config);
    let app = router(state)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                // The handler (and its body extractor) within the timeout;
                // a streamed response (the lab's events) goes on after it.
                match tokio::time::timeout(timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => (
                        StatusCode::REQUEST_TIMEOUT,
                        "the request was not received in time\n",
                    )
                        .into_response(),
                }
            },
        ));
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = limits.admit(peer.ip()) else {
            tracing::info!(%peer, "HTTP connection refused: too many connections");
            continue;
        };
        metrics::counter!("pillarbox_connections_total", "protocol" => "http", "listener" => "http")
            .increment(1);
        // The client's address, for handlers that log in (the shared throttle
        // counts per IP).
        let service = hyper_util::service::TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(timeout)
            .max_buf_size(MAX_REQUEST)
            .max_header_size(MAX_REQUEST)
            .serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
        let connection = graceful.watch(connection);
        tokio::spawn(
            async move {
                let _slot = slot;
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "HTTP connection ended");
                }
            }
            .instrument(tracing::info_span!("session", protocol = "http", %peer)),
        );
    }
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the shutdown grace period");
    }
}

async fn healthz(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    let started = std::time::Instant::now();
    let store = state.store.ping().await;
    metrics::histogram!("pillarbox_store_ping_seconds").record(started.elapsed().as_secs_f64());
    let listeners: Vec<String> = state
        .addrs
        .iter()
        .map(|(name, addr)| format!("\"{name}\":\"{addr}\""))
        .collect();
    let store_ok = store.is_ok();
    let body = |status: &str| {
        format!(
            "{{\"status\":\"{status}\",\"store\":\"{}\",\"listeners\":{{{}}}}}\n",
            if store_ok { "ok" } else { "unreachable" },
            listeners.join(",")
        )
    };
    match store {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body("ok"),
        ),
        Err(error) => {
            tracing::warn!(%error, "health check: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "application/json")],
                body("unavailable"),
            )
        }
    }
}

async fn metrics_text(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    // Queue figures are read from the store at each scrape (every node sees the same queue).
    if let Ok(queue) = state.store.queue_list().await {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut by_state: BTreeMap<&'static str, f64> = BTreeMap::new();
        for s in ["pending", "deferred", "delivered", "failed"] {
            by_state.insert(s, 0.0);
        }
        let mut oldest = 0i64;
        for m in &queue {
            for r in &m.recipients {
                *by_state.entry(r.state.as_str()).or_default() += 1.0;
            }
            oldest = oldest.max(now - m.created_at);
        }
        for (s, n) in by_state {
            metrics::gauge!("pillarbox_queue_recipients", "state" => s).set(n);
        }
        metrics::gauge!("pillarbox_queue_messages").set(queue.len() as f64);
        metrics::gauge!("pillarbox_queue_oldest_seconds").set(oldest as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus().render(),
    )
}
