//! The HTTP/JSON front of the AS (axum): thin handlers around [`Seller`] and [`Ledger`].
use crate::api::{to_hex, ApiError, ChannelReply, PurchaseBody, PurchaseReply, TermsReply};
use crate::chain::{ChainError, ChainRead, ChannelReader};
use crate::committer::Committer;
use crate::config::Limits;
use crate::ledger::{Ledger, LedgerError};
use crate::metrics::Metrics;
use crate::sale::{Offer, SaleError, Seller};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use protocol::{Authority, ChannelId, PurchaseError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Requests are small JSON documents; anything bigger is refused before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Everything the handlers share.
pub struct Service<C> {
    pub seller: Arc<Seller>,
    pub ledger: Arc<Mutex<Ledger>>,
    pub chain: C,
    pub slot_seconds: u64,
    pub metrics: Arc<Metrics>,
    committer: Committer,
}

impl<C> Service<C> {
    /// The service, with its group-commit thread started on `ledger`.
    pub fn new(seller: Seller, ledger: Arc<Mutex<Ledger>>, chain: C, slot_seconds: u64) -> Self {
        let seller = Arc::new(seller);
        let metrics = Arc::new(Metrics::default());
        Self {
            committer: Committer::start(seller.clone(), ledger.clone(), metrics.clone()),
            seller,
            ledger,
            chain,
            slot_seconds,
            metrics,
        }
    }
}

/// A refusal on the wire: status, stable code, message.
pub struct Refusal {
    status: StatusCode,
    code: &'static str,
    body: ApiError,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl ToString) -> Self {
        Self {
            status,
            code,
            body: ApiError {
                code: code.to_owned(),
                message: message.to_string(),
                current_total: None,
            },
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<ChainError> for Refusal {
    fn from(e: ChainError) -> Self {
        Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "chain_unavailable", e)
    }
}

impl From<SaleError> for Refusal {
    fn from(e: SaleError) -> Self {
        let status = match &e {
            SaleError::Purchase(p) => match p {
                PurchaseError::ChannelNotFound => StatusCode::NOT_FOUND,
                PurchaseError::WrongPayee | PurchaseError::Unauthorized(_) => StatusCode::FORBIDDEN,
                PurchaseError::StaleTotal { .. } => StatusCode::CONFLICT,
                PurchaseError::ExpiringSoon { .. }
                | PurchaseError::NotWholeSlots { .. }
                | PurchaseError::ExceedsDeposit { .. }
                | PurchaseError::ZeroPrice => StatusCode::UNPROCESSABLE_ENTITY,
            },
            SaleError::UnknownDevice(_) => StatusCode::NOT_FOUND,
            SaleError::Ledger(LedgerError::Closing(_)) => StatusCode::GONE,
            SaleError::Ledger(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut refusal = Refusal::new(status, e.code(), &e);
        if let SaleError::Purchase(PurchaseError::StaleTotal { current_total }) = e {
            refusal.body.current_total = Some(current_total.to_string());
        }
        refusal
    }
}

pub fn router<C: ChannelReader>(service: Arc<Service<C>>) -> Router {
    router_with(service, Limits::default())
}

/// The API with `limits.request_timeout_ms` on every request (body included).
pub fn router_with<C: ChannelReader>(service: Arc<Service<C>>, limits: Limits) -> Router {
    let timeout = Duration::from_millis(limits.request_timeout_ms);
    Router::new()
        .route("/v1/terms", get(terms::<C>))
        .route("/v1/channels/{id}", get(channel::<C>))
        .route("/v1/purchase", post(purchase::<C>))
        .route("/metrics", get(metrics::<C>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                // A purchase cut off here may still be sold (the commit goes on): the
                // client's retry of the same receipt gets its OTPs.
                match tokio::time::timeout(timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => Refusal::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
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

async fn terms<C: ChannelReader>(State(s): State<Arc<Service<C>>>) -> Json<TermsReply> {
    Json(TermsReply {
        payee: to_hex(&s.seller.our_account),
        contract: to_hex(&s.seller.domain.contract),
        genesis_hash: to_hex(&s.seller.domain.genesis_hash),
        price: s.seller.tariff.price.to_string(),
        slot_seconds: s.slot_seconds,
        expiry_margin_blocks: s.seller.tariff.expiry_margin,
        devices: s.seller.devices.keys().cloned().collect(),
    })
}

async fn metrics<C: ChannelReader>(State(s): State<Arc<Service<C>>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn channel<C: ChannelReader>(
    State(s): State<Arc<Service<C>>>,
    Path(id): Path<u64>,
) -> Result<Json<ChannelReply>, Refusal> {
    let id = ChannelId(id);
    let ChainRead { block, channel } = s.chain.read_channel(id).await?;
    let ledger = s.ledger.clone();
    let (total, closed) = tokio::task::spawn_blocking(move || {
        let ledger = ledger
            .lock()
            .map_err(|_| "ledger lock poisoned".to_owned())?;
        let total = ledger.total(id).map_err(|e| e.to_string())?;
        let closed = ledger.is_closed(id).map_err(|e| e.to_string())?;
        Ok::<_, String>((total, closed))
    })
    .await
    .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?
    .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    let channel = channel.ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "channel_not_found",
            format!("no open channel {id} on chain"),
        )
    })?;
    Ok(Json(ChannelReply {
        channel: id.0,
        deposit: channel.deposit.to_string(),
        expires_at: channel.expires_at,
        block,
        authority: match channel.authority {
            Authority::Account(_) => "account",
            Authority::Delegate(_) => "delegate",
            Authority::Group(_) => "group",
        }
        .to_owned(),
        total: total.to_string(),
        price: s.seller.tariff.price.to_string(),
        closed,
    }))
}

async fn purchase<C: ChannelReader>(
    State(s): State<Arc<Service<C>>>,
    body: Bytes,
) -> Result<Json<PurchaseReply>, Refusal> {
    // Sales are counted where they are committed (a sale whose requester went away
    // still counts); refusals here.
    let result = purchase_inner(&s, &body).await;
    if let Err(refusal) = &result {
        s.metrics.refused(refusal.code);
    }
    result.map(Json)
}

async fn purchase_inner<C: ChannelReader>(
    s: &Arc<Service<C>>,
    body: &[u8],
) -> Result<PurchaseReply, Refusal> {
    let body: PurchaseBody = serde_json::from_slice(body)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, "bad_request", e))?;
    let parsed = body
        .parse()
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, "bad_request", e))?;
    let read = s.chain.read_channel(parsed.receipt.channel).await?;
    // Signature recovery here, in parallel across requests; only the cheap rest of the
    // rule runs in the commit thread.
    let checked = s.seller.check(
        read.channel.as_ref(),
        read.block,
        &Offer {
            device: &parsed.device,
            receipt: &parsed.receipt,
            signature: &parsed.signature,
            proof: parsed.proof.as_ref(),
        },
    )?;
    let sold = s.committer.sell(checked).await?;
    Ok(PurchaseReply {
        device: sold.sale.device,
        channel: sold.sale.channel.0,
        total: sold.sale.new_total.to_string(),
        slots: sold.sale.slots,
        first_counter: sold.sale.first_counter,
        otps: sold.otps.iter().map(|o| o.to_string()).collect(),
        slot_seconds: s.slot_seconds,
        fresh: sold.fresh,
    })
}
