//! The process's listeners: the HTTP API, served with the limits that keep slow or idle
//! clients from tying it up, and the metrics listener of `METRICS_PORT`.

use anyhow::Context;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use orderflow_api::ApiContext;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Serves only `/metrics`, for worker processes.
pub async fn serve_metrics(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    orderflow_api::metrics::recorder();
    // `/live` too: a worker has no other listener for its liveness probe. It asks nothing of
    // PostgreSQL or Temporal (a worker waits out their outages; restarting it would not help).
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(orderflow_api::metrics::render))
        .route("/live", axum::routing::get(orderflow_api::live));
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// The `METRICS_PORT` listener, bound before the process reports itself started: a port that
/// is taken stops start-up with that message rather than leaving a worker without probes.
pub async fn metrics_listener(port: u16) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("METRICS_PORT={port}: cannot listen"))?;
    let port = listener.local_addr()?.port();
    tracing::info!("metrics on http://0.0.0.0:{port}/metrics, liveness on /live");
    Ok(listener)
}

/// What one HTTP listener lets a client hold (`HttpConfig`): slow or idle clients must not
/// tie up the process.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Connections one IP address may hold at once; more are closed as they are accepted.
    pub max_connections_per_client: usize,
    /// Time to send a request's headers, and how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Time for a whole request, body and answer included; beyond it: 503.
    pub request_timeout: Duration,
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight requests.
/// Built on hyper-util rather than `axum::serve` for the limits `axum::serve` does not have:
/// a header-read timeout and a connection limit.
pub async fn serve_http(
    listener: TcpListener,
    ctx: ApiContext,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = orderflow_api::router_with_timeout(ctx, limits.request_timeout);
    // HTTP/1.1 only: with protocol detection, a connection that sends nothing would wait for
    // its first bytes without any timeout. (Load balancers speak HTTP/1.1 to their backends.)
    let mut http = auto::Builder::new(TokioExecutor::new()).http1_only();
    http.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = PerClient::new(limits.max_connections_per_client);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait a little, as axum::serve does.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // One client's sockets beyond its share are closed at once (the permit goes back).
        let Some(share) = per_client.admit(peer.ip()) else {
            metrics::counter!("orderflow_http_connections_refused_total", "reason" => "per_client")
                .increment(1);
            drop(stream);
            continue;
        };
        let app = app.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request)
            },
        ));
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            // A client that goes away mid-request is not the server's error.
            let _ = connection.await;
            drop((permit, share));
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The connections each client (IP address) holds, within a cap.
#[derive(Clone)]
struct PerClient {
    cap: usize,
    open: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection of a client; dropping it gives its place back.
struct Share {
    ip: IpAddr,
    clients: PerClient,
}

impl PerClient {
    fn new(cap: usize) -> Self {
        Self { cap, open: Arc::default() }
    }

    /// A place for one more connection from `ip`, if it has fewer than the cap. An IPv6 client
    /// is its /64 (one host is given a whole /64, and could otherwise take a share per address).
    fn admit(&self, ip: IpAddr) -> Option<Share> {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
            },
            v4 => v4,
        };
        let mut open = self.open.lock().expect("per-client connections lock");
        let count = open.entry(ip).or_default();
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Share { ip, clients: self.clone() })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut open = self.clients.open.lock().expect("per-client connections lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
