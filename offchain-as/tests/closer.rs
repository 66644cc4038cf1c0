//! The policy closer against a fake chain that applies the protocol's channel rules, with
//! a finality lag and a per-block capacity: thousands of closes sharing a deadline, the
//! claim read after sales stop, no resubmission while a close is in flight, retries after
//! a dropped transaction, settles by policy and before a rotation, closes resumed after a
//! restart, and the operator's close on the same path.
mod support;

use chain::ChainError;
use offchain_as::{
    unpaid, Capacity, ChainView, ChannelRead, Closer, CloserError, ClosingChain, Effect, Heights,
    Landed, LeaseTerms, Ledger, LedgerError, Metrics, Offer, Op, Policy, Report, TransactionCost,
};
use protocol::keys::SecretKey;
use protocol::{Authority, Balance, Channel, ChannelId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use support::*;

#[derive(Default)]
struct Fake {
    best: u32,
    finalized: u32,
    /// The finalized state.
    channels: BTreeMap<ChannelId, Channel>,
    /// Included in a best block, not final yet.
    pending: Vec<(u32, Op)>,
    /// What each channel's payee was paid in all, and its payer refunded.
    paid: BTreeMap<ChannelId, Balance>,
    refunded: BTreeMap<ChannelId, Balance>,
    /// Calls to submit, transactions sent, and ops submitted.
    submissions: usize,
    transactions: usize,
    ops: usize,
    /// Ops the chain takes per transaction and per block, and how full each block is.
    capacity: Option<Capacity>,
    filled: BTreeMap<u32, u32>,
    /// A sale made while the closer reads this channel (the race against a pass).
    sale_during_read: Option<(ChannelId, Ledger, Offer)>,
    /// Ops the chain refused at submission, and the block each close landed in.
    refused: Vec<(ChannelId, String)>,
    closed_in: BTreeMap<ChannelId, Vec<u32>>,
}

/// A chain whose best state is its finalized state plus what is pending.
#[derive(Clone, Default)]
struct FakeChain(Arc<Mutex<Fake>>);

impl FakeChain {
    fn with(&self) -> std::sync::MutexGuard<'_, Fake> {
        self.0.lock().expect("lock")
    }

    fn with_capacity(per_transaction: u32, per_block: u32) -> Self {
        let chain = Self::default();
        chain.with().capacity = Some(Capacity::new(per_transaction, per_block));
        chain
    }

    /// `blocks` new blocks; finality follows `lag` blocks behind.
    fn advance(&self, blocks: u32, lag: u32) {
        let mut f = self.with();
        f.best += blocks;
        let finalized = f.best.saturating_sub(lag).max(f.finalized);
        f.finalized = finalized;
        let (done, pending): (Vec<_>, Vec<_>) =
            f.pending.drain(..).partition(|(b, _)| *b <= finalized);
        f.pending = pending;
        for (block, op) in done {
            apply(&mut f, block, &op).expect("a final op applies");
        }
    }

    /// The pending transactions are dropped (a fork, a restart): they never land.
    fn drop_pending(&self) {
        self.with().pending.clear();
    }
}

fn apply(f: &mut Fake, block: u32, op: &Op) -> Result<Effect, String> {
    let id = op.channel();
    let mut channel = *f.channels.get(&id).ok_or("ChannelNotFound")?;
    match op {
        Op::Settle(receipt) => {
            let s = channel
                .settlement(&receipt.receipt, block)
                .map_err(|e| e.to_string())?;
            channel.apply(s);
            *f.paid.entry(id).or_default() += s.paid;
            f.channels.insert(id, channel);
            Ok(Effect::Settled {
                paid: s.paid,
                settled: s.settled,
            })
        }
        Op::Close { receipt, .. } => {
            let p = channel
                .payout(receipt.as_ref().map(|r| &r.receipt), block)
                .map_err(|e| e.to_string())?;
            *f.paid.entry(id).or_default() += p.paid;
            f.refunded.insert(id, p.refunded);
            f.channels.remove(&id);
            Ok(Effect::Closed {
                paid: p.paid,
                refunded: p.refunded,
            })
        }
    }
}

impl ChainView for FakeChain {
    fn heights(&self) -> Option<Heights> {
        let f = self.with();
        Some(Heights {
            best: f.best,
            finalized: f.finalized,
        })
    }

    async fn read(&self, id: ChannelId) -> Result<ChannelRead, ChainError> {
        let race = {
            let mut f = self.with();
            match &f.sale_during_read {
                Some((channel, _, _)) if *channel == id => f.sale_during_read.take(),
                _ => None,
            }
        };
        if let Some((_, ledger, offer)) = race {
            ledger.sell(offer).await.expect("the racing sale");
        }
        let f = self.with();
        let channel = f.channels.get(&id).copied();
        // Closed in a best block, not final yet: gone for the AS's reasoning (as the
        // node view's overlay has it), still open in the finalized state.
        let closing = f.pending.iter().any(|(block, op)| {
            *block <= f.best && op.channel() == id && matches!(op, Op::Close { .. })
        });
        Ok(ChannelRead {
            block: f.finalized,
            now: f.best,
            channel: channel.filter(|_| !closing).map(|c| c.at(f.best)),
            finalized_open: channel.is_some(),
        })
    }
}

impl ClosingChain for FakeChain {
    fn capacity(&self) -> Capacity {
        self.with()
            .capacity
            .unwrap_or(Capacity::new(10_000, 10_000))
    }

    async fn measure(&self, ops: &[Op]) -> Vec<bool> {
        vec![true; ops.len()]
    }

    /// Blocks come at the chain's own pace (the test's `advance`); ops submitted wait for
    /// them and land in the first blocks with room, at most the capacity in each (a
    /// transaction never spans two). An op whose block would be at or past its channel's
    /// expiry is refused there, as the contract refuses it.
    async fn submit(&self, ops: Vec<Op>) -> Result<Vec<Landed>, ChainError> {
        let capacity = self.capacity();
        let mut f = self.with();
        f.submissions += 1;
        f.ops += ops.len();
        let mut landed = Vec::new();
        // The best state: the finalized one plus what is pending, each op tried on it.
        let mut trial = Fake {
            channels: f.channels.clone(),
            ..Fake::default()
        };
        for (b, p) in &f.pending {
            let _ = apply(&mut trial, *b, p);
        }
        for chunk in ops.chunks(capacity.per_transaction as usize) {
            f.transactions += 1;
            let mut block = f.best + 1;
            while f.filled.get(&block).copied().unwrap_or(0) + chunk.len() as u32
                > capacity.per_block
            {
                block += 1;
            }
            *f.filled.entry(block).or_default() += chunk.len() as u32;
            for op in chunk {
                landed.push(match apply(&mut trial, block, op) {
                    Ok(effect) => {
                        if let Op::Close { channel, .. } = op {
                            f.closed_in.entry(*channel).or_default().push(block);
                        }
                        f.pending.push((block, op.clone()));
                        Landed::Included {
                            block,
                            effect,
                            deferred: Vec::new(),
                            transaction: TransactionCost::default(),
                        }
                    }
                    Err(e) => {
                        f.refused.push((op.channel(), e.clone()));
                        Landed::Refused(e)
                    }
                });
            }
        }
        Ok(landed)
    }
}

const DEPOSIT: Balance = 1_000;

fn policy() -> Policy {
    Policy {
        remaining_below: 1,
        blocks_before_expiry: 5,
        settle_above: None,
        settle_after_blocks: None,
    }
}

fn closer(chain: &FakeChain, ledger: &Ledger, policy: Policy, retry: u32) -> Closer<FakeChain> {
    let plan = Closer::new_plan(chain, &policy);
    Closer::new(chain.clone(), ledger.clone(), policy, retry, plan)
}

/// Opens `channel` on the fake chain (finalized at once) under `id`.
fn open(chain: &FakeChain, id: ChannelId, channel: Channel) {
    chain.with().channels.insert(id, channel);
}

async fn offer(chain: &FakeChain, id: ChannelId, amount: Balance, client: &SecretKey) -> Offer {
    let read = chain.read(id).await.expect("read");
    let channel = read.channel.expect("open");
    seller(64)
        .check(
            body("lock", id, channel.epoch, amount, client, None),
            Some(&channel),
            read.now,
            0,
        )
        .expect("valid offer")
}

async fn sell(
    ledger: &Ledger,
    chain: &FakeChain,
    id: ChannelId,
    amount: Balance,
    client: &SecretKey,
) {
    let offer = offer(chain, id, amount, client).await;
    ledger.sell(offer).await.expect("sold");
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

on_both_backends!(
    thousands_of_channels_expiring_together_are_closed_in_time_on_a_chain_of_bounded_capacity,
    a_sale_racing_a_close_is_claimed_or_refused_never_lost,
    a_dropped_close_is_retried_after_its_grace_and_not_before,
    settle_twice_then_close_pays_exactly_the_best_receipt,
    sales_to_old_keys_are_settled_before_a_rotation_takes_effect,
    a_close_begun_before_a_restart_is_finished_and_refusals_are_retried,
    a_close_is_recorded_only_once_final,
    a_close_begun_by_another_process_is_not_submitted_twice,
    an_operator_close_after_one_cut_off_waits_for_its_finality_and_records_it,
    a_payer_rotating_every_channel_at_once_loses_the_as_nothing,
);

fn count(reports: &[Report], what: fn(&Report) -> bool) -> usize {
    reports.iter().filter(|r| what(r)).count()
}

/// Three thousand channels expiring in the same block, each with a sold receipt, on a
/// chain that takes 40 closes a block (16 a transaction): the plan begins closing them
/// 75 blocks early, at most 40 a block, and stops each one's sales when its close
/// begins; every close lands before the expiry and pays exactly its receipt.
fn thousands_of_channels_expiring_together_are_closed_in_time_on_a_chain_of_bounded_capacity(
    backend: Backend,
) {
    const N: u64 = 3_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::with_capacity(16, 40);
    let client = secret(1);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        let mut sales = Vec::new();
        for i in 0..N {
            let mut c = channel(delegate(&client), DEPOSIT);
            c.expires_at = 200;
            open(&chain, ChannelId(i), c);
            let offer = offer(
                &chain,
                ChannelId(i),
                PRICE * (1 + u128::from(i % 7)),
                &client,
            )
            .await;
            let ledger = ledger.clone();
            sales.push(tokio::spawn(async move { ledger.sell(offer).await }));
        }
        for sale in sales {
            sale.await.expect("task").expect("sold");
        }
        chain.advance(10, 0);
        let mut closer = closer(&chain, &ledger, policy(), 10);
        let mut closed = 0;
        let mut blocks_with_closes = 0;
        while chain.with().best < 200 {
            let reports = closer.pass().await.expect("pass");
            let now = count(&reports, |r| matches!(r, Report::Closed { .. }));
            closed += now;
            blocks_with_closes += usize::from(now > 0);
            let failed = count(&reports, |r| {
                matches!(r, Report::Refused { .. } | Report::Failed { .. })
            });
            assert_eq!(
                failed,
                0,
                "{failed} closes did not land at block {}",
                chain.with().best
            );
            chain.advance(1, 2);
        }
        assert_eq!(closed as u64, N, "every channel closed before block 200");
        assert!(blocks_with_closes > 1, "the closes were spread over blocks");
        chain.advance(5, 0);
        let f = chain.with();
        for i in 0..N {
            let sold = PRICE * (1 + u128::from(i % 7));
            assert_eq!(f.paid[&ChannelId(i)], sold, "channel {i}");
            assert_eq!(f.refunded[&ChannelId(i)], DEPOSIT - sold, "channel {i}");
        }
    });
}

/// A sale committed while a pass reads the chain (after the closer listed what it holds,
/// before it begins the close) must be in the close's claim: the pass stops sales first
/// and reads the receipt it claims after.
fn a_sale_racing_a_close_is_claimed_or_refused_never_lost(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(7);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        let mut c = channel(delegate(&client), DEPOSIT);
        c.expires_at = 100;
        open(&chain, ChannelId(0), c);
        chain.advance(80, 0);
        sell(&ledger, &chain, ChannelId(0), 2 * PRICE, &client).await;
        // A purchase checked at 90 (90 + 5 < 100: still sellable) reaches the ledger at
        // 95, while a pass reads the channel, whose close is due then (95 + 5 >= 100).
        chain.advance(10, 0);
        let racing = offer(&chain, ChannelId(0), 7 * PRICE, &client).await;
        chain.advance(5, 0);
        chain.with().sale_during_read = Some((ChannelId(0), ledger.clone(), racing));
        let mut closer = closer(&chain, &ledger, policy(), 3);
        let r = closer.pass().await.expect("pass");
        assert!(matches!(r[..], [Report::Closed { .. }]), "{r:?}");
        chain.advance(1, 0);
        assert_eq!(
            chain.with().paid[&ChannelId(0)],
            7 * PRICE,
            "the racing sale was sold but not claimed"
        );
    });
}

/// A close that never lands (dropped) is submitted again once `retry_after_blocks` pass
/// without it showing in the finalized state; until then it is not resubmitted.
fn a_dropped_close_is_retried_after_its_grace_and_not_before(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(2);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        let mut c = channel(delegate(&client), DEPOSIT);
        c.expires_at = 230;
        open(&chain, ChannelId(0), c);
        sell(&ledger, &chain, ChannelId(0), 3 * PRICE, &client).await;
        chain.advance(225, 0);
        let mut closer = closer(&chain, &ledger, policy(), 2);
        let first = closer.pass().await.expect("pass");
        assert!(matches!(first[..], [Report::Closed { .. }]), "{first:?}");
        chain.drop_pending();
        // Landing at 226; retried from 226 + 2 if not final by then.
        assert!(
            closer.pass().await.expect("pass").is_empty(),
            "in its grace period"
        );
        chain.advance(2, 5);
        assert!(
            closer.pass().await.expect("pass").is_empty(),
            "still in its grace period"
        );
        chain.advance(1, 5);
        let again = closer.pass().await.expect("pass");
        assert!(
            matches!(again[..], [Report::Closed { .. }]),
            "retried: {again:?}"
        );
        chain.advance(1, 0);
        closer.pass().await.expect("pass");
        assert_eq!(chain.with().paid[&ChannelId(0)], 3 * PRICE);
    });
}

/// The operator's `close` run again after a first one was cut off (the node restarted
/// under it) finds the channel gone from the best block but open in the finalized one.
/// It waits for that close to be final and has the ledger record it before it answers,
/// as it does for its own transaction; answering at once left the ledger without the
/// close (found by the node suite's restart test).
fn an_operator_close_after_one_cut_off_waits_for_its_finality_and_records_it(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(4);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        open(&chain, ChannelId(0), channel(delegate(&client), DEPOSIT));
        chain.advance(10, 0);
        let closer = closer(&chain, &ledger, policy(), 3);
        sell(&ledger, &chain, ChannelId(0), 3 * PRICE, &client).await;
        // The first close: included in a best block, its command cut off there.
        let first = closer.now(ChannelId(0), true);
        let including = {
            let chain = chain.clone();
            async move {
                while chain.with().pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        };
        tokio::select! {
            _ = first => panic!("the first close finished without finality"),
            () = including => {}
        }
        // Its block comes; finality lags one block behind.
        chain.advance(1, 1);
        assert!(!ledger.state(ChannelId(0)).await.expect("state").closed);
        // The second command, while that block is not final yet; finality comes later.
        let advancing = chain.clone();
        let finality = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            advancing.advance(1, 0);
        });
        let report = closer.now(ChannelId(0), true).await.expect("close again");
        finality.await.expect("finality");
        assert!(!report.closed, "it did not close it itself: {report:?}");
        assert!(
            ledger.state(ChannelId(0)).await.expect("state").closed,
            "the ledger records the close once it is final"
        );
        let f = chain.with();
        assert_eq!(f.paid[&ChannelId(0)], 3 * PRICE);
        assert_eq!(f.closed_in[&ChannelId(0)].len(), 1, "closed once");
    });
}

/// Settling by amount keeps the channel open; later sales are cumulative and the close
/// pays only what was not settled: the payee gets exactly the best receipt in all. The
/// operator's settle and the policy's record the same thing: the receipt they claimed.
fn settle_twice_then_close_pays_exactly_the_best_receipt(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(3);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        open(&chain, ChannelId(0), channel(delegate(&client), DEPOSIT));
        chain.advance(10, 0);
        let mut closer = closer(
            &chain,
            &ledger,
            Policy {
                settle_above: Some(5 * PRICE),
                ..policy()
            },
            3,
        );
        sell(&ledger, &chain, ChannelId(0), 4 * PRICE, &client).await;
        assert!(
            closer.pass().await.expect("pass").is_empty(),
            "below the threshold"
        );
        sell(&ledger, &chain, ChannelId(0), 6 * PRICE, &client).await;
        let r = closer.pass().await.expect("pass");
        assert!(matches!(r[..], [Report::Settled { .. }]), "{r:?}");
        chain.advance(1, 0);
        assert_eq!(chain.with().channels[&ChannelId(0)].settled, 6 * PRICE);
        sell(&ledger, &chain, ChannelId(0), 12 * PRICE, &client).await;
        // The operator settles this time (finality comes a moment later).
        let advancing = chain.clone();
        let finality = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            advancing.advance(1, 0);
        });
        let report = closer.now(ChannelId(0), false).await.expect("settle now");
        finality.await.expect("finality");
        assert_eq!(report.paid, (6 * PRICE).to_string());
        let settled: Vec<_> = ledger
            .settlements(ChannelId(0))
            .await
            .expect("settlements")
            .into_iter()
            .map(|(epoch, amount, _)| (epoch, amount))
            .collect();
        assert_eq!(settled, vec![(0, 6 * PRICE), (0, 12 * PRICE)]);
        sell(&ledger, &chain, ChannelId(0), 14 * PRICE, &client).await;
        // A close begun by hand whose transaction never came: taken over after the grace.
        operator_begin_close(&ledger, ChannelId(0)).await;
        assert!(closer.pass().await.expect("pass").is_empty());
        chain.advance(3, 0);
        let r = closer.pass().await.expect("pass");
        assert!(matches!(r[..], [Report::Closed { .. }]), "{r:?}");
        chain.advance(1, 0);
        let f = chain.with();
        assert_eq!(f.paid[&ChannelId(0)], 14 * PRICE);
        assert_eq!(f.refunded[&ChannelId(0)], DEPOSIT - 14 * PRICE);
        assert_eq!(f.submissions, 3);
    });
}

/// A rotation ends the current epoch's receipts at its effective block: the closer stops
/// the epoch's sales, settles it before, within its margin, and sells nothing to the old
/// keys after.
fn sales_to_old_keys_are_settled_before_a_rotation_takes_effect(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(4);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        open(&chain, ChannelId(0), channel(delegate(&client), DEPOSIT));
        chain.advance(10, 0);
        sell(&ledger, &chain, ChannelId(0), 5 * PRICE, &client).await;
        // The payer rotates at block 10: effective at 30 (notice 20).
        chain
            .with()
            .channels
            .get_mut(&ChannelId(0))
            .expect("open")
            .rotate(Authority::Revoked, 10)
            .expect("rotate");
        let mut closer = closer(&chain, &ledger, policy(), 3);
        chain.advance(10, 0);
        assert!(closer.pass().await.expect("pass").is_empty(), "20 < 30 - 5");
        // A request that passes the cheap checks now, at 20, and reaches the ledger after
        // the settle below.
        let late = offer(&chain, ChannelId(0), 6 * PRICE, &client).await;
        chain.advance(5, 0);
        let r = closer.pass().await.expect("pass");
        assert!(matches!(r[..], [Report::Settled { .. }]), "{r:?}");
        // The settle stopped the epoch's sales: one now is refused, not left unclaimed.
        assert!(
            ledger.sell(late).await.is_err(),
            "sold after the epoch's settle"
        );
        chain.advance(1, 0);
        assert_eq!(
            chain.with().paid[&ChannelId(0)],
            5 * PRICE,
            "paid before the old keys stop counting"
        );
        // After the effective block the channel is revoked: the closer closes it at once.
        chain.advance(10, 0);
        let r = closer.pass().await.expect("pass");
        assert!(matches!(r[..], [Report::Closed { .. }]), "{r:?}");
        chain.advance(1, 0);
        let f = chain.with();
        assert_eq!(f.paid[&ChannelId(0)], 5 * PRICE);
        assert_eq!(f.refunded[&ChannelId(0)], DEPOSIT - 5 * PRICE);
    });
}

/// A payer opens many channels with far expiries (no crowd at any expiry), the AS sells
/// on each as its sale path admits them, then the payer rotates every one in one block:
/// each channel's old-epoch sales must now be settled within the notice, all at once, on
/// a chain taking 4 a block. The sale path admits only as many channels as the notice can
/// settle together (4 a block over notice - lead blocks), so every sale it made is paid
/// before the old keys stop counting.
fn a_payer_rotating_every_channel_at_once_loses_the_as_nothing(backend: Backend) {
    const CHANNELS: u64 = 40;
    const NOTICE: u32 = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::with_capacity(4, 4);
    let client = secret(6);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        for i in 0..CHANNELS {
            let mut c = channel(delegate(&client), DEPOSIT);
            c.expires_at = 10_000;
            c.notice = NOTICE;
            open(&chain, ChannelId(i), c);
        }
        chain.advance(10, 0);
        let mut closer = closer(&chain, &ledger, policy(), 3);
        let plan = closer.plan();
        plan.lock().expect("plan").bound_rotations(NOTICE);
        // The sale path: a channel is sold on only once the plan admits it.
        let mut sold = Vec::new();
        for i in 0..CHANNELS {
            let id = ChannelId(i);
            let read = chain.read(id).await.expect("read");
            let admitted = plan
                .lock()
                .expect("plan")
                .admit(id, offchain_as::deadline(&read.channel.expect("open")), read.now);
            if admitted.is_ok() {
                sell(&ledger, &chain, id, 3 * PRICE, &client).await;
                sold.push(id);
            }
        }
        assert!(
            !sold.is_empty() && sold.len() < CHANNELS as usize,
            "the AS sells on some channels, not all: {}",
            sold.len()
        );
        // Every channel rotated in block 11: the old keys stop counting at 21.
        chain.advance(1, 0);
        let now = chain.with().best;
        for i in 0..CHANNELS {
            chain
                .with()
                .channels
                .get_mut(&ChannelId(i))
                .expect("open")
                .rotate(Authority::Revoked, now)
                .expect("rotate");
        }
        // A pass every block until the rotation takes effect.
        while chain.with().best < now + NOTICE {
            closer.pass().await.expect("pass");
            chain.advance(1, 0);
        }
        let f = chain.with();
        let unpaid: Vec<_> = sold
            .iter()
            .filter(|id| f.paid.get(id).copied().unwrap_or(0) != 3 * PRICE)
            .collect();
        assert!(
            unpaid.is_empty(),
            "{} of {} channels sold on were not settled before the rotation took effect: {unpaid:?}",
            unpaid.len(),
            sold.len()
        );
    });
}

/// A close begun before a crash is finished by the next closer; one the chain refuses
/// is retried until the channel is gone.
fn a_close_begun_before_a_restart_is_finished_and_refusals_are_retried(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(5);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        open(&chain, ChannelId(0), channel(delegate(&client), DEPOSIT));
        open(&chain, ChannelId(1), channel(delegate(&client), DEPOSIT));
        chain.advance(10, 0);
        sell(&ledger, &chain, ChannelId(0), 2 * PRICE, &client).await;
        sell(&ledger, &chain, ChannelId(1), 2 * PRICE, &client).await;
        operator_begin_close(&ledger, ChannelId(0)).await;
        // Channel 1 expires before the AS acts: its close is refused, then the payer
        // claims it and the AS forgets it.
        chain
            .with()
            .channels
            .get_mut(&ChannelId(1))
            .expect("open")
            .expires_at = 11;
        chain.advance(5, 0);
        let mut closer = closer(&chain, &ledger, policy(), 3);
        // The close begun before the restart may still land: it gets the grace a
        // submission gets before it is submitted again.
        let r = closer.pass().await.expect("pass");
        assert!(
            !r.iter().any(|x| matches!(x, Report::Closed { .. })),
            "{r:?}"
        );
        chain.advance(3, 0);
        let r = closer.pass().await.expect("pass");
        assert!(
            r.iter()
                .any(|x| matches!(x, Report::Closed { channel, .. } if *channel == ChannelId(0))),
            "{r:?}"
        );
        assert!(
            r.iter()
                .any(|x| matches!(x, Report::Refused { channel, .. } if *channel == ChannelId(1))),
            "{r:?}"
        );
        chain.advance(1, 0);
        chain.with().channels.remove(&ChannelId(1));
        let r = closer.pass().await.expect("pass");
        assert!(
            r.contains(&Report::Gone {
                channel: ChannelId(1)
            }),
            "{r:?}"
        );
        assert_eq!(chain.with().paid[&ChannelId(0)], 2 * PRICE);
    });
}

/// A channel closed in a best block only is not forgotten before that block is final: a
/// fork could undo the close, and the AS would have dropped its claim.
fn a_close_is_recorded_only_once_final(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(8);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        let mut c = channel(delegate(&client), DEPOSIT);
        c.expires_at = 40;
        open(&chain, ChannelId(0), c);
        chain.advance(30, 0);
        sell(&ledger, &chain, ChannelId(0), 2 * PRICE, &client).await;
        chain.advance(5, 0);
        let mut closer = closer(&chain, &ledger, policy(), 1);
        let r = closer.pass().await.expect("pass");
        assert!(matches!(r[..], [Report::Closed { .. }]), "{r:?}");
        // In a best block; finality 3 behind. Past the grace, the pass looks again.
        chain.advance(2, 3);
        closer.pass().await.expect("pass");
        assert!(
            !ledger.state(ChannelId(0)).await.expect("state").closed,
            "marked closed before its close was final"
        );
        chain.advance(3, 0);
        closer.pass().await.expect("pass");
        assert!(ledger.state(ChannelId(0)).await.expect("state").closed);
    });
}

/// The operator's `slotpay-as close` runs beside `serve` on the same ledger: the serving
/// closer sees the channel marked closing and must not submit a second close (a fee for
/// a refusal) while the first may still land; it takes over only if the first never does.
fn a_close_begun_by_another_process_is_not_submitted_twice(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(6);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        open(&chain, ChannelId(0), channel(delegate(&client), DEPOSIT));
        open(&chain, ChannelId(1), channel(delegate(&client), DEPOSIT));
        chain.advance(10, 0);
        sell(&ledger, &chain, ChannelId(0), 2 * PRICE, &client).await;
        sell(&ledger, &chain, ChannelId(1), 3 * PRICE, &client).await;
        let mut serving = closer(&chain, &ledger, policy(), 3);
        assert!(serving.pass().await.expect("pass").is_empty());
        // The operator closes both by hand; one of its transactions is dropped.
        // As `slotpay-as close` does: stop sales and read the claim, then submit.
        let mut ops = Vec::new();
        for id in [ChannelId(0), ChannelId(1)] {
            let held = operator_begin_close(&ledger, id).await.expect("sold");
            let state = chain.read(id).await.expect("read").channel.expect("open");
            let (_, receipt) = unpaid(&state, &held.best);
            ops.push(Op::Close {
                channel: id,
                receipt,
            });
        }
        chain.submit(ops).await.expect("the operator's closes");
        let sent = chain.with().submissions;
        chain
            .with()
            .pending
            .retain(|(_, op)| op.channel() == ChannelId(0));
        let r = serving.pass().await.expect("pass");
        assert_eq!(
            chain.with().submissions,
            sent,
            "a second close was submitted: {r:?}"
        );
        chain.advance(1, 0);
        let r = serving.pass().await.expect("pass");
        assert_eq!(chain.with().submissions, sent, "{r:?}");
        // After the grace: channel 0's close has landed and is forgotten; the dropped
        // one is taken over, and each is paid exactly once.
        chain.advance(3, 0);
        let r = serving.pass().await.expect("pass");
        assert!(
            r.contains(&Report::Gone {
                channel: ChannelId(0)
            }),
            "{r:?}"
        );
        assert!(
            r.iter()
                .any(|x| matches!(x, Report::Closed { channel, .. } if *channel == ChannelId(1))),
            "{r:?}"
        );
        chain.advance(1, 0);
        assert_eq!(chain.with().paid[&ChannelId(0)], 2 * PRICE);
        assert_eq!(chain.with().paid[&ChannelId(1)], 3 * PRICE);
    });
}

// Several closers on one PostgreSQL ledger: one AS instance each, one chain.

/// What one instance's view of the chain does besides passing calls through: die in
/// the middle of a submission (after sending part of it), or stop in the middle of a
/// read (a SIGSTOP) until let go.
#[derive(Default)]
struct Hooks {
    /// Send this many ops of the next submission, then never return.
    die_after: Option<usize>,
    /// Reads wait for this gate to open.
    gate: Option<Arc<tokio::sync::Semaphore>>,
    /// Told when the instance died, or stopped at the gate.
    told: Arc<tokio::sync::Notify>,
    /// Submissions this instance made.
    submissions: usize,
}

/// One AS instance's chain: the shared fake chain behind its own hooks.
#[derive(Clone)]
struct Instance {
    chain: FakeChain,
    hooks: Arc<Mutex<Hooks>>,
}

impl Instance {
    fn new(chain: &FakeChain) -> Self {
        Self {
            chain: chain.clone(),
            hooks: Arc::default(),
        }
    }

    fn hooks(&self) -> std::sync::MutexGuard<'_, Hooks> {
        self.hooks.lock().expect("lock")
    }
}

impl ChainView for Instance {
    fn heights(&self) -> Option<Heights> {
        self.chain.heights()
    }

    async fn read(&self, id: ChannelId) -> Result<ChannelRead, ChainError> {
        let (gate, told) = {
            let h = self.hooks();
            (h.gate.clone(), h.told.clone())
        };
        if let Some(gate) = gate {
            told.notify_one();
            gate.acquire().await.expect("gate").forget();
        }
        self.chain.read(id).await
    }
}

impl ClosingChain for Instance {
    fn capacity(&self) -> Capacity {
        self.chain.capacity()
    }

    async fn measure(&self, ops: &[Op]) -> Vec<bool> {
        self.chain.measure(ops).await
    }

    async fn submit(&self, mut ops: Vec<Op>) -> Result<Vec<Landed>, ChainError> {
        let (die_after, told) = {
            let mut h = self.hooks();
            h.submissions += 1;
            (h.die_after.take(), h.told.clone())
        };
        match die_after {
            Some(n) => {
                ops.truncate(n);
                self.chain.submit(ops).await?;
                told.notify_one();
                std::future::pending().await
            }
            None => self.chain.submit(ops).await,
        }
    }
}

const LEASE: std::time::Duration = std::time::Duration::from_millis(800);

/// An AS instance's closer: its own ledger connection, plan, lease holder and counters.
async fn instance(
    backend: &Backend,
    dir: &std::path::Path,
    chain: &FakeChain,
    name: &str,
    policy: Policy,
) -> (Closer<Instance>, Instance, Arc<Metrics>) {
    let ledger = backend.ledger(dir, 64).await;
    let view = Instance::new(chain);
    let metrics = Arc::new(Metrics::default());
    let plan = Closer::new_plan(&view, &policy);
    let closer = Closer::new(view.clone(), ledger, policy, 3, plan)
        .with_lease(LeaseTerms {
            holder: name.into(),
            duration: LEASE,
        })
        .with_metrics(metrics.clone());
    (closer, view, metrics)
}

/// Three AS instances on one database, each running the closer. The leader is killed in
/// the middle of a pass (half its closes sent); the next one to take the lease is
/// stopped in the middle of its pass for longer than its lease (a SIGSTOP), and a third
/// takes over and finishes. Every channel is closed exactly once, before its expiry, for
/// exactly what was sold; the stopped one, let go, finds its writes refused (its lease's
/// number is no longer the current one) and submits nothing; while one leads, the others
/// only plan, and plan the same.
#[test]
fn postgres_closers_one_at_a_time_through_a_leader_killed_and_one_paused_past_its_lease() {
    let backend = Backend::postgres("closers_one_at_a_time");
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(21);
    rt().block_on(async {
        let mut sold = BTreeMap::new();
        {
            let seller = backend.ledger(dir.path(), 64).await;
            for i in 0..6u64 {
                let mut c = channel(delegate(&client), DEPOSIT);
                c.expires_at = 60;
                open(&chain, ChannelId(i), c);
                let amount = PRICE * u128::from(1 + i);
                sell(&seller, &chain, ChannelId(i), amount, &client).await;
                sold.insert(ChannelId(i), amount);
            }
        }
        chain.advance(10, 0);
        let (mut a, a_view, _) = instance(&backend, dir.path(), &chain, "a", policy()).await;
        let (mut b, b_view, b_metrics) =
            instance(&backend, dir.path(), &chain, "b", policy()).await;
        let (mut c, c_view, c_metrics) =
            instance(&backend, dir.path(), &chain, "c", policy()).await;
        // One leads; all plan the same, so every instance stops its sales where a close
        // begins.
        for closer in [&mut a, &mut b, &mut c] {
            assert!(closer.pass().await.expect("pass").is_empty());
        }
        assert!(a.fence().is_some() && b.fence().is_none() && c.fence().is_none());
        for i in 0..6 {
            let start = |closer: &Closer<Instance>| {
                closer.plan().lock().expect("plan").start_of(ChannelId(i))
            };
            assert!(start(&a).is_some());
            assert_eq!((start(&a), start(&a)), (start(&b), start(&c)));
        }
        // The closes are due: the leader stops the six channels' sales, sends three
        // closes and dies.
        chain.advance(45, 0);
        a_view.hooks().die_after = Some(3);
        let told = a_view.hooks().told.clone();
        let leader = tokio::spawn(async move { a.pass().await });
        told.notified().await;
        leader.abort();
        // Its lease has not run out: the others wait.
        for closer in [&mut b, &mut c] {
            assert!(closer.pass().await.expect("pass").is_empty());
        }
        assert_eq!(
            (b_view.hooks().submissions, c_view.hooks().submissions),
            (0, 0)
        );
        tokio::time::sleep(LEASE + LEASE / 4).await;
        chain.advance(1, 0);
        // The next leader is stopped in the middle of its pass, past its lease.
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        b_view.hooks().gate = Some(gate.clone());
        let told = b_view.hooks().told.clone();
        let paused = tokio::spawn(async move {
            let result = b.pass().await;
            (b, result)
        });
        told.notified().await;
        tokio::time::sleep(LEASE + LEASE / 4).await;
        // The third takes over: it forgets the three closed and closes the other three at
        // once (begun by the dead leader, too near their expiry to wait for).
        let reports = c.pass().await.expect("pass");
        let gone = count(&reports, |r| matches!(r, Report::Gone { .. }));
        let closed = count(&reports, |r| matches!(r, Report::Closed { .. }));
        assert_eq!((gone, closed), (3, 3), "{reports:?}");
        // The stopped one goes on: its writes are refused, it sends nothing.
        gate.add_permits(1_000);
        let (mut b, result) = paused.await.expect("task");
        match result {
            // Leases 1 (a), 2 (b), 3 (c): b wrote under 2.
            Err(CloserError::Ledger(LedgerError::Fenced { fence })) => assert_eq!(fence, 2),
            other => panic!("the paused closer's writes were not refused: {other:?}"),
        }
        assert_eq!(b.fence(), None, "b still thinks it leads");
        assert_eq!(b_view.hooks().submissions, 0, "the paused closer submitted");
        assert!(b_metrics
            .render()
            .contains("slotpay_closer_fenced_writes_total 1\n"));
        assert!(c_metrics
            .render()
            .contains("slotpay_closer_fenced_writes_total 0\n"));
        chain.advance(1, 0);
        let reports = c.pass().await.expect("pass");
        assert_eq!(count(&reports, |r| matches!(r, Report::Gone { .. })), 3);
        assert!(b.pass().await.expect("pass").is_empty(), "b follows");
        {
            let f = chain.with();
            assert!(f.refused.is_empty(), "refused: {:?}", f.refused);
            for (id, amount) in &sold {
                let blocks = &f.closed_in[id];
                assert_eq!(blocks.len(), 1, "channel {id} closed {blocks:?}");
                assert!(
                    blocks[0] < 60,
                    "channel {id} closed at {blocks:?}, expiry 60"
                );
                assert_eq!(f.paid[id], *amount);
                assert_eq!(f.refunded[id], DEPOSIT - amount);
            }
        }
        let ledger = backend.ledger(dir.path(), 64).await;
        for id in sold.keys() {
            assert!(ledger.state(*id).await.expect("state").closed);
        }
    });
}

/// Three instances run their closers' loops at once while blocks come every 40 ms;
/// every second, whichever instance leads is killed wherever it is (its task dropped,
/// its lease left to run out) and a fresh instance takes its place. Forty channels
/// expiring over 200 blocks are each closed exactly once, before expiry, for exactly what
/// was sold.
#[test]
fn postgres_closers_racing_with_leaders_killed_close_every_channel_once_in_time() {
    const N: u64 = 40;
    let backend = Backend::postgres("closers_racing");
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(22);
    // A takeover takes the lease (0.8 s = 20 blocks) and a pass: the margin covers it.
    let policy = Policy {
        blocks_before_expiry: 30,
        ..policy()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut sold = BTreeMap::new();
        let seller = backend.ledger(dir.path(), 64).await;
        for i in 0..N {
            let mut c = channel(delegate(&client), DEPOSIT);
            c.expires_at = 60 + 5 * u32::try_from(i).expect("small");
            open(&chain, ChannelId(i), c);
            let amount = PRICE * u128::from(1 + i % 5);
            sell(&seller, &chain, ChannelId(i), amount, &client).await;
            sold.insert(ChannelId(i), amount);
        }
        let (tick, ticks) = tokio::sync::watch::channel(0u32);
        let start = |n: usize| {
            let (backend, dir, chain, policy, ticks) = (
                backend.clone(),
                dir.path().to_owned(),
                chain.clone(),
                policy,
                ticks.clone(),
            );
            tokio::spawn(async move {
                let (closer, _, _) =
                    instance(&backend, &dir, &chain, &format!("i{n}"), policy).await;
                closer
                    .run(ticks, std::time::Duration::from_millis(20))
                    .await
            })
        };
        let mut running: Vec<_> = (0..3).map(start).collect();
        // Which instance runs in each slot.
        let mut slots: Vec<usize> = (0..3).collect();
        let mut started = 3;
        let mut killed = 0;
        let mut last_kill = std::time::Instant::now();
        while chain.with().best < 60 + 5 * N as u32 + 10 {
            tokio::time::sleep(std::time::Duration::from_millis(40)).await;
            chain.advance(1, 1);
            let _ = tick.send(chain.with().best);
            if last_kill.elapsed() > std::time::Duration::from_secs(1) {
                // Kill the leader: the instance holding the lease, found in the database.
                let holder = cluster_lease_holder(&backend);
                if let Some(slot) = holder.and_then(|n| slots.iter().position(|s| *s == n)) {
                    running[slot].abort();
                    running[slot] = start(started);
                    slots[slot] = started;
                    started += 1;
                    killed += 1;
                }
                last_kill = std::time::Instant::now();
            }
        }
        for task in running {
            task.abort();
        }
        assert!(killed >= 3, "only {killed} leaders killed");
        let f = chain.with();
        assert!(f.refused.is_empty(), "refused: {:?}", f.refused);
        for (id, amount) in &sold {
            let blocks = f.closed_in.get(id).cloned().unwrap_or_default();
            assert_eq!(blocks.len(), 1, "channel {id} closed in {blocks:?}");
            let expiry = 60 + 5 * u32::try_from(id.0).expect("small");
            assert!(
                blocks[0] < expiry,
                "channel {id} closed at {blocks:?}, expiry {expiry}"
            );
            assert_eq!(f.paid[id], *amount, "channel {id}");
        }
    });
}

/// The number of the instance (named `i{n}`) that holds an unexpired closer lease.
fn cluster_lease_holder(backend: &Backend) -> Option<usize> {
    let Backend::Postgres(url) = backend else {
        return None;
    };
    let db = url.rsplit('/').next()?;
    let holder = cluster()
        .sql(
            db,
            "SELECT holder FROM lease WHERE expires_at > clock_timestamp()",
        )
        .ok()?;
    holder.strip_prefix('i')?.parse::<usize>().ok()
}
