//! The API's handlers: thin adapters from HTTP to the [`Seller`], the [`Ledger`], the
//! close plan and the chain view.
//!
//! [`Seller`]: crate::sale::Seller
//! [`Ledger`]: crate::ledger::Ledger
use crate::closer::deadline;
use crate::ledger::{LedgerError, SaleError, Sold};
use crate::sale::OfferError;
use crate::server::{Refusal, Service};
use crate::view::{ChainView, ChannelRead};
use api::{
    to_hex, AuthorityKind, ChannelReply, DeviceTerms, ErrorCode, PurchaseBody, PurchaseReply,
    RotationReply, TermsReply,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use chain::ChainError;
use protocol::{ChannelId, Epoch, PurchaseError};
use std::sync::Arc;

fn internal(e: impl ToString) -> Refusal {
    Refusal::new(ErrorCode::Internal, e)
}

fn chain_refusal(e: ChainError) -> Refusal {
    Refusal::new(ErrorCode::ChainUnavailable, e)
}

fn purchase_refusal(e: &PurchaseError) -> Refusal {
    Refusal::new(ErrorCode::from(e), e)
}

fn ledger_refusal(e: &LedgerError) -> Refusal {
    match e {
        LedgerError::Closing(_) | LedgerError::EpochEnded { .. } => {
            Refusal::new(ErrorCode::ChannelClosing, e)
        }
        LedgerError::UnknownDevice(_) => Refusal::new(ErrorCode::UnknownDevice, e),
        _ => internal(e),
    }
}

fn sale_refusal(e: &SaleError) -> Refusal {
    match e {
        SaleError::Ledger(e) => ledger_refusal(e),
        SaleError::Purchase(e) => purchase_refusal(e),
        SaleError::NotTheBuyer => Refusal::new(ErrorCode::NotTheBuyer, e),
    }
}

/// Reads the channel at the chain's current heights, refusing while finality stalls.
async fn read_now<V: ChainView>(s: &Service<V>, id: ChannelId) -> Result<ChannelRead, Refusal> {
    let read = s.view.read(id).await.map_err(chain_refusal)?;
    if read.now.saturating_sub(read.block) > s.max_finality_lag {
        return Err(Refusal::new(
            ErrorCode::FinalityStalled,
            format!(
                "the finalized block {} lags the best block {} by more than {} blocks",
                read.block, read.now, s.max_finality_lag
            ),
        ));
    }
    Ok(read)
}

/// `GET /v1/terms`.
pub(crate) async fn terms<V: ChainView>(State(s): State<Arc<Service<V>>>) -> Json<TermsReply> {
    let seller = &s.seller;
    Json(TermsReply {
        payee: to_hex(&seller.our_account),
        contract: match &seller.domain {
            protocol::AnyDomain::Substrate(d) => to_hex(&d.contract),
            protocol::AnyDomain::Evm(d) => to_hex(&d.contract),
        },
        genesis_hash: to_hex(&seller.identity.genesis_hash),
        chain_id: match &seller.domain {
            protocol::AnyDomain::Substrate(_) => None,
            protocol::AnyDomain::Evm(d) => Some(d.chain_id),
        },
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

/// `GET /metrics`.
pub(crate) async fn metrics<V: ChainView>(State(s): State<Arc<Service<V>>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// `GET /v1/channels/{id}`.
pub(crate) async fn channel<V: ChainView>(
    State(s): State<Arc<Service<V>>>,
    Path(id): Path<u64>,
) -> Result<Json<ChannelReply>, Refusal> {
    let id = ChannelId(id);
    let read = s.view.read(id).await.map_err(chain_refusal)?;
    let channel = read.channel.ok_or_else(|| {
        Refusal::new(
            ErrorCode::ChannelNotFound,
            format!("no open channel {id} on chain"),
        )
    })?;
    let epoch = channel.epoch;
    let (best, state) =
        futures::try_join!(s.ledger.best(id, epoch), s.ledger.state(id)).map_err(internal)?;
    Ok(Json(ChannelReply {
        channel: id,
        block: read.block,
        now: read.now,
        deposit: channel.deposit.to_string(),
        settled: channel.settled.to_string(),
        epoch,
        expires_at: channel.expires_at,
        notice: channel.notice,
        authority: AuthorityKind::from(&channel.authority),
        rotation: channel.rotation.map(|r| RotationReply {
            authority: AuthorityKind::from(&r.authority),
            effective_at: r.effective_at,
        }),
        total: best.as_ref().map_or(0, |b| b.receipt.amount).to_string(),
        // A receipt is no secret once sold: it justifies the total to the group's other
        // members. It buys nothing again without its buyer's request secret.
        last_receipt: best,
        price: s.seller.tariff.price().to_string(),
        closed: state.closed,
    }))
}

/// `POST /v1/purchase`.
pub(crate) async fn purchase<V: ChainView>(
    State(s): State<Arc<Service<V>>>,
    body: Bytes,
) -> Result<Json<PurchaseReply>, Refusal> {
    // Sales are counted where they are committed (a sale whose requester went away
    // still counts); refusals here.
    let result = purchase_inner(&s, &body).await;
    if let Err(refusal) = &result {
        s.metrics.refused(refusal.code());
    }
    result.map(Json)
}

fn reply<V>(s: &Service<V>, sold: Sold) -> Result<PurchaseReply, Refusal> {
    let tokens = s.seller.tokens(&sold.sale).map_err(|e| sale_refusal(&e))?;
    let sale = sold.sale;
    Ok(PurchaseReply {
        slot_seconds: s.seller.slot_seconds(&sale.device),
        device: sale.device,
        channel: sale.channel,
        epoch: sale.epoch,
        total: sale.new_total.to_string(),
        slots: sale.slots,
        first_counter: sale.first_counter,
        tokens,
        fresh: sold.fresh,
    })
}

/// A refused offer may be the retry of a sale the ledger holds (its answer was lost, and
/// since then the channel closed or its margin passed): its buyer (the same signer, with
/// the same request secret) gets the same tokens, nothing charged; anyone else nothing.
async fn earlier_sale<V>(s: &Service<V>, body: &PurchaseBody) -> Option<Result<Sold, SaleError>> {
    let receipt = body.signed.receipt;
    let sale = s
        .ledger
        .sale_for(receipt.channel, receipt.epoch, receipt.amount)
        .await
        .ok()??;
    let answer = s.seller.retry_of(body, sale)?;
    if let Ok(sold) = &answer {
        s.metrics.sold(sold);
    }
    Some(answer)
}

async fn stale_total<V>(
    s: &Service<V>,
    channel: ChannelId,
    epoch: Epoch,
    total: protocol::Balance,
) -> Refusal {
    let best = s.ledger.best(channel, epoch).await.ok().flatten();
    // The receipt that set the total justifies it; report that one's amount.
    let total = best.as_ref().map_or(total, |b| b.receipt.amount);
    purchase_refusal(&PurchaseError::StaleTotal {
        current_total: total,
    })
    .with_total(total, best)
}

/// Whether the close plan lets `id` sell at `now`: not once its close has begun, and a
/// channel new to the plan only if its close still fits before its deadline.
fn planned<V>(s: &Service<V>, id: ChannelId, read: &ChannelRead) -> Result<(), Refusal> {
    let Some(channel) = &read.channel else {
        return Ok(());
    };
    let mut plan = s.plan.lock().unwrap_or_else(|p| p.into_inner());
    let start = match plan.start_of(id) {
        Some(start) if plan.deadline_of(id) == Some(deadline(channel)) => start,
        _ => plan
            .admit(id, deadline(channel), read.now)
            .map_err(|full| Refusal::new(ErrorCode::ClosingCapacity, full))?,
    };
    if read.now >= start {
        return Err(Refusal::new(
            ErrorCode::ChannelClosing,
            format!("channel {id}'s close is planned from block {start}: it sells nothing more"),
        ));
    }
    Ok(())
}

async fn purchase_inner<V: ChainView>(
    s: &Service<V>,
    body: &[u8],
) -> Result<PurchaseReply, Refusal> {
    let body: PurchaseBody =
        serde_json::from_slice(body).map_err(|e| Refusal::new(ErrorCode::BadRequest, e))?;
    body.validate()
        .map_err(|e| Refusal::new(ErrorCode::BadRequest, e))?;
    let receipt = body.signed.receipt;
    let id = receipt.channel;
    let read = read_now(s, id).await?;
    let seen = s.ledger.seen_total(id, receipt.epoch);
    let refused = match s
        .seller
        .check(body.clone(), read.channel.as_ref(), read.now, seen)
    {
        Ok(offer) => {
            if let Err(refusal) = planned(s, id, &read) {
                return match earlier_sale(s, &body).await {
                    Some(answer) => answer
                        .map_err(|e| sale_refusal(&e))
                        .and_then(|sold| reply(s, sold)),
                    None => Err(refusal),
                };
            }
            return match s.ledger.sell(offer).await {
                Ok(sold) => reply(s, sold),
                Err(SaleError::Purchase(PurchaseError::StaleTotal { current_total })) => {
                    Err(stale_total(s, id, receipt.epoch, current_total).await)
                }
                Err(
                    e @ SaleError::Ledger(LedgerError::Closing(_) | LedgerError::EpochEnded { .. }),
                ) => match earlier_sale(s, &body).await {
                    Some(answer) => answer
                        .map_err(|e| sale_refusal(&e))
                        .and_then(|sold| reply(s, sold)),
                    None => Err(sale_refusal(&e)),
                },
                Err(e) => Err(sale_refusal(&e)),
            };
        }
        Err(OfferError::UnknownDevice(d)) => {
            return Err(ledger_refusal(&LedgerError::UnknownDevice(d)));
        }
        Err(OfferError::Purchase(e)) => e,
    };
    if !matches!(refused, PurchaseError::Unauthorized(_)) {
        if let Some(answer) = earlier_sale(s, &body).await {
            return answer
                .map_err(|e| sale_refusal(&e))
                .and_then(|sold| reply(s, sold));
        }
    }
    match refused {
        PurchaseError::StaleTotal { current_total } => {
            Err(stale_total(s, id, receipt.epoch, current_total).await)
        }
        e => Err(purchase_refusal(&e)),
    }
}
