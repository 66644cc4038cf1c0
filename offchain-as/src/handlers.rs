//! The API's handlers: thin adapters from HTTP to the [`Seller`], the [`Ledger`] and the
//! chain view.
use crate::ledger::{BestReceipt, LedgerError, SaleError, Sold, Store};
use crate::sale::{OfferError, Request};
use crate::server::{Refusal, Service};
use crate::view::{ChainView, ChannelRead};
use api::to_hex;
use api::wire::{
    ChannelReply, DeviceTerms, PurchaseBody, PurchaseReply, RotationReply, SignedReceipt,
    TermsReply,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chain::ChainError;
use protocol::{Authority, ChannelId, Epoch, PurchaseError};
use std::sync::Arc;

fn authority_kind(authority: &Authority) -> &'static str {
    match authority {
        Authority::Account(_) => "account",
        Authority::Delegate(_) => "delegate",
        Authority::Group(_) => "group",
        Authority::Revoked => "revoked",
    }
}

fn signed(best: &BestReceipt) -> SignedReceipt {
    let receipt = protocol::Receipt {
        channel: best.channel,
        epoch: best.epoch,
        amount: best.amount,
    };
    SignedReceipt::new(&receipt, &best.signature, best.proof.as_ref())
}

fn internal(e: impl ToString) -> Refusal {
    Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e)
}

fn chain_refusal(e: ChainError) -> Refusal {
    Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "chain_unavailable", e)
}

fn purchase_refusal(e: &PurchaseError) -> Refusal {
    let status = match e {
        PurchaseError::ChannelNotFound => StatusCode::NOT_FOUND,
        PurchaseError::WrongPayee | PurchaseError::Unauthorized(_) => StatusCode::FORBIDDEN,
        PurchaseError::StaleTotal { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Refusal::new(status, e.code(), e)
}

fn ledger_refusal(e: &LedgerError) -> Refusal {
    match e {
        LedgerError::Closing(_) => Refusal::new(StatusCode::GONE, "channel_closing", e),
        LedgerError::UnknownDevice(_) => Refusal::new(StatusCode::NOT_FOUND, "unknown_device", e),
        _ => internal(e),
    }
}

/// Reads the channel at the chain's current heights, refusing while finality stalls.
async fn read_now<V: ChainView>(s: &Service<V>, id: ChannelId) -> Result<ChannelRead, Refusal> {
    let read = s.view.read(id).await.map_err(chain_refusal)?;
    if read.now.saturating_sub(read.block) > s.max_finality_lag {
        return Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "finality_stalled",
            format!(
                "the finalized block {} lags the best block {} by more than {} blocks",
                read.block, read.now, s.max_finality_lag
            ),
        ));
    }
    Ok(read)
}

pub async fn terms<V: ChainView>(State(s): State<Arc<Service<V>>>) -> Json<TermsReply> {
    let seller = &s.seller;
    Json(TermsReply {
        payee: to_hex(&seller.our_account),
        contract: to_hex(&seller.domain.contract),
        genesis_hash: to_hex(&seller.domain.genesis_hash),
        price: seller.tariff.price().to_string(),
        max_slots: seller.tariff.max_slots(),
        expiry_margin_blocks: seller.tariff.expiry_margin(),
        min_notice_blocks: seller.tariff.min_notice(),
        devices: seller
            .devices
            .iter()
            .map(|(id, d)| DeviceTerms {
                id: id.clone(),
                slot_seconds: d.slot_seconds,
                digits: d.digits.get(),
                replay_window: d.replay_window,
            })
            .collect(),
    })
}

pub async fn metrics<V: ChainView>(State(s): State<Arc<Service<V>>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

pub async fn channel<V: ChainView>(
    State(s): State<Arc<Service<V>>>,
    Path(id): Path<u64>,
) -> Result<Json<ChannelReply>, Refusal> {
    let id = ChannelId(id);
    let read = s.view.read(id).await.map_err(chain_refusal)?;
    let channel = read.channel.ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "channel_not_found",
            format!("no open channel {id} on chain"),
        )
    })?;
    let epoch = channel.epoch;
    let (best, (_, closed)) = s
        .ledger
        .run(move |l: &mut Store| Ok((l.best(id, epoch)?, l.state(id)?)))
        .await
        .map_err(internal)?;
    Ok(Json(ChannelReply {
        channel: id.0,
        block: read.block,
        now: read.now,
        deposit: channel.deposit.to_string(),
        settled: channel.settled.to_string(),
        epoch,
        expires_at: channel.expires_at,
        notice: channel.notice,
        authority: authority_kind(&channel.authority).to_owned(),
        rotation: channel.rotation.map(|r| RotationReply {
            authority: authority_kind(&r.authority).to_owned(),
            effective_at: r.effective_at,
        }),
        total: best.as_ref().map_or(0, |b| b.amount).to_string(),
        last_receipt: best.as_ref().map(signed),
        price: s.seller.tariff.price().to_string(),
        closed,
    }))
}

pub async fn purchase<V: ChainView>(
    State(s): State<Arc<Service<V>>>,
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

fn reply<V>(s: &Service<V>, sold: Sold) -> Result<PurchaseReply, Refusal> {
    let tokens = s.seller.tokens(&sold.sale).map_err(|e| match e {
        SaleError::Ledger(e) => ledger_refusal(&e),
        SaleError::Purchase(e) => purchase_refusal(&e),
    })?;
    let sale = sold.sale;
    Ok(PurchaseReply {
        slot_seconds: s.seller.slot_seconds(&sale.device),
        device: sale.device,
        channel: sale.channel.0,
        epoch: sale.epoch,
        total: sale.new_total.to_string(),
        slots: sale.slots,
        first_counter: sale.first_counter,
        tokens,
        fresh: sold.fresh,
    })
}

/// A refused offer may be the retry of a sale the ledger holds (its answer was lost, and
/// since then the channel closed or its margin passed): the same signer gets the same
/// tokens, nothing charged (counted as a retry).
async fn earlier_sale<V>(s: &Service<V>, request: &Request) -> Option<Sold> {
    let (channel, epoch, amount) = (
        request.receipt.channel,
        request.receipt.epoch,
        request.receipt.amount,
    );
    let sale = s
        .ledger
        .run(move |l: &mut Store| l.sale_for(channel, epoch, amount))
        .await
        .ok()??;
    let sold = s
        .seller
        .signed_by(&request.receipt, &request.signature, &sale.signer)
        .then_some(Sold { sale, fresh: false })?;
    s.metrics.sold(&sold);
    Some(sold)
}

async fn stale_total<V>(
    s: &Service<V>,
    channel: ChannelId,
    epoch: Epoch,
    total: protocol::Balance,
) -> Refusal {
    let best = s
        .ledger
        .run(move |l: &mut Store| l.best(channel, epoch))
        .await
        .ok()
        .flatten();
    // The receipt that set the total justifies it; report that one's amount.
    let total = best.as_ref().map_or(total, |b| b.amount);
    purchase_refusal(&PurchaseError::StaleTotal {
        current_total: total,
    })
    .with_total(total, best.as_ref().map(signed))
}

async fn purchase_inner<V: ChainView>(
    s: &Service<V>,
    body: &[u8],
) -> Result<PurchaseReply, Refusal> {
    let body: PurchaseBody = serde_json::from_slice(body)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, "bad_request", e))?;
    let parsed = body
        .parse()
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, "bad_request", e))?;
    let request = Request {
        device: parsed.device,
        receipt: parsed.receipt,
        signature: parsed.signature,
        proof: parsed.proof,
    };
    let id = request.receipt.channel;
    let read = read_now(s, id).await?;
    let seen = s.ledger.seen_total(id, request.receipt.epoch);
    let refused = match s
        .seller
        .check(request.clone(), read.channel.as_ref(), read.now, seen)
    {
        Ok(offer) => {
            let epoch = offer.authorized.receipt().epoch;
            return match s.ledger.sell(offer).await {
                Ok(sold) => reply(s, sold),
                Err(SaleError::Purchase(PurchaseError::StaleTotal { current_total })) => {
                    Err(stale_total(s, id, epoch, current_total).await)
                }
                Err(SaleError::Purchase(e)) => Err(purchase_refusal(&e)),
                Err(SaleError::Ledger(LedgerError::Closing(c))) => {
                    match earlier_sale(s, &request).await {
                        Some(sold) => reply(s, sold),
                        None => Err(ledger_refusal(&LedgerError::Closing(c))),
                    }
                }
                Err(SaleError::Ledger(e)) => Err(ledger_refusal(&e)),
            };
        }
        Err(OfferError::UnknownDevice(d)) => {
            return Err(ledger_refusal(&LedgerError::UnknownDevice(d)));
        }
        Err(OfferError::Purchase(e)) => e,
    };
    if !matches!(refused, PurchaseError::Unauthorized(_)) {
        if let Some(sold) = earlier_sale(s, &request).await {
            return reply(s, sold);
        }
    }
    match refused {
        PurchaseError::StaleTotal { current_total } => {
            Err(stale_total(s, id, request.receipt.epoch, current_total).await)
        }
        e => Err(purchase_refusal(&e)),
    }
}
