//! The server loop: the router on hyper, like `axum::serve`, plus bounds on slow clients,
//! which `axum::serve` does not set (it gives hyper no timer, so a client that sends half a
//! request head holds its connection and file descriptor forever).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How long a client may take to send a request body; the extractors answer 408 after it.
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeout(pub Duration);

/// Serves `app` until `shutdown` resolves, then lets open requests finish for at most `drain`.
/// A request's head must arrive within `client_timeout` (else hyper closes the connection;
/// idle keep-alive connections too), and its body within `client_timeout` again.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    client_timeout: Duration,
    drain: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(client_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let timeout = ClientTimeout(client_timeout);
        let service =
            tower::ServiceExt::map_request(app.clone(), move |req: hyper::Request<hyper::body::Incoming>| {
                // Only a request with a body has a read to bound: a GET's extensions stay
                // without it (each insert is an allocation on every read).
                let bodyless = hyper::body::Body::is_end_stream(req.body());
                let mut req = req.map(axum::body::Body::new);
                if !bodyless {
                    req.extensions_mut().insert(timeout);
                }
                req
            });
        let conn =
            builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::info!("open requests (followed logs and the like) cut off after {drain:?}");
    }
    Ok(())
}
