//! The HTTP/JSON front of the AS (axum on its own accept loop): routes, limits, and how a
//! refusal looks on the wire. The handlers are in [`crate::handlers`].
use crate::closer::SharedPlan;
use crate::config::Limits;
use crate::handlers::{channel, metrics, purchase, terms};
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::sale::Seller;
use crate::view::ChainView;
use api::{routes, ApiError, ErrorCode};
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Duration;

/// Requests are small JSON documents; anything bigger is refused before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Everything the handlers share.
pub struct Service<V> {
    /// What is sold and how offers are checked.
    pub seller: Arc<Seller>,
    /// The durable ledger.
    pub ledger: Ledger,
    /// The chain.
    pub view: V,
    /// The counters at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The closer's plan: sales stop when a channel's close begins.
    pub plan: SharedPlan,
    /// Sales stop while finality lags the best block by more than this.
    pub max_finality_lag: u32,
}

/// A refusal on the wire: its code's status, the code, a message.
pub struct Refusal {
    body: Box<ApiError>,
}

impl Refusal {
    /// A refusal with `code`, explained by `message`.
    pub fn new(code: ErrorCode, message: impl ToString) -> Self {
        Self {
            body: Box::new(ApiError {
                code,
                message: message.to_string(),
                current_total: None,
                justification: None,
            }),
        }
    }

    /// The refusal's code.
    pub fn code(&self) -> ErrorCode {
        self.body.code
    }

    /// With the running total to sign above and the receipt that set it (`stale_total`).
    pub fn with_total(
        mut self,
        total: protocol::Balance,
        justification: Option<protocol::SignedReceipt>,
    ) -> Self {
        self.body.current_total = Some(total.to_string());
        self.body.justification = justification;
        self
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.body.code.status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(*self.body)).into_response()
    }
}

/// The API with the default [`Limits`].
pub fn router<V: ChainView>(service: Arc<Service<V>>) -> Router {
    router_with(service, Limits::default())
}

/// The API with `limits.request_timeout_ms` on every request (body included).
pub fn router_with<V: ChainView>(service: Arc<Service<V>>, limits: Limits) -> Router {
    let timeout = Duration::from_millis(limits.request_timeout_ms);
    Router::new()
        .route(routes::TERMS, get(terms::<V>))
        .route(routes::CHANNEL, get(channel::<V>))
        .route(routes::PURCHASE, post(purchase::<V>))
        .route(routes::METRICS, get(metrics::<V>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                // A purchase cut off here may still be sold (the commit goes on): the
                // client's retry of the same receipt gets its tokens.
                match tokio::time::timeout(timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => Refusal::new(
                        ErrorCode::RequestTimeout,
                        format!("the request took longer than {} ms", timeout.as_millis()),
                    )
                    .into_response(),
                }
            },
        ))
        .with_state(service)
}

/// Serves `app` on `listener` until `shutdown` resolves: HTTP/1.1 with keep-alive, a
/// header timeout against clients that trickle bytes, and a cap on open connections
/// (beyond it a new connection is closed at once). On shutdown, stops accepting and
/// gives open connections up to the request timeout to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: wait instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::warn!(
                max = limits.max_connections,
                "connection refused: too many open"
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(Duration::from_millis(limits.header_timeout_ms));
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let grace = Duration::from_millis(limits.request_timeout_ms);
    let _ = tokio::time::timeout(grace, open.acquire_many(all)).await;
    Ok(())
}
