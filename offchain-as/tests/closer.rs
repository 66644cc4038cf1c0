//! The policy closer against a fake chain that applies the protocol's channel rules, with
//! a finality lag and a per-block capacity: thousands of closes sharing a deadline, the
//! claim read after sales stop, no resubmission while a close is in flight, retries after
//! a dropped transaction, settles by policy and before a rotation, closes resumed after a
//! restart, and the operator's close on the same path.
mod support;

use chain::ChainError;
use offchain_as::{
    unpaid, Capacity, ChainView, ChannelRead, Closer, ClosingChain, Effect, Heights, Landed,
    Ledger, Offer, Op, Policy, Report, TransactionCost,
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
                        f.pending.push((block, op.clone()));
                        Landed::Included {
                            block,
                            effect,
                            deferred: Vec::new(),
                            transaction: TransactionCost::default(),
                        }
                    }
                    Err(e) => Landed::Refused(e),
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

fn count(reports: &[Report], what: fn(&Report) -> bool) -> usize {
    reports.iter().filter(|r| what(r)).count()
}

/// Three thousand channels expiring in the same block, each with a sold receipt, on a
/// chain that takes 40 closes a block (16 a transaction): the plan begins closing them
/// 75 blocks early, at most 40 a block, and stops each one's sales when its close
/// begins; every close lands before the expiry and pays exactly its receipt.
#[test]
fn thousands_of_channels_expiring_together_are_closed_in_time_on_a_chain_of_bounded_capacity() {
    const N: u64 = 3_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::with_capacity(16, 40);
    let client = secret(1);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
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
#[test]
fn a_sale_racing_a_close_is_claimed_or_refused_never_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(7);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
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
#[test]
fn a_dropped_close_is_retried_after_its_grace_and_not_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(2);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
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

/// Settling by amount keeps the channel open; later sales are cumulative and the close
/// pays only what was not settled: the payee gets exactly the best receipt in all. The
/// operator's settle and the policy's record the same thing: the receipt they claimed.
#[test]
fn settle_twice_then_close_pays_exactly_the_best_receipt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(3);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
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
            .run(|s| s.settlements(ChannelId(0)))
            .await
            .expect("settlements")
            .into_iter()
            .map(|(epoch, amount, _)| (epoch, amount))
            .collect();
        assert_eq!(settled, vec![(0, 6 * PRICE), (0, 12 * PRICE)]);
        sell(&ledger, &chain, ChannelId(0), 14 * PRICE, &client).await;
        // A close begun by hand whose transaction never came: taken over after the grace.
        ledger
            .run(|s| s.begin_close(ChannelId(0)))
            .await
            .expect("close on demand");
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
#[test]
fn sales_to_old_keys_are_settled_before_a_rotation_takes_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(4);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
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

/// A close begun before a crash is finished by the next closer; one the chain refuses
/// is retried until the channel is gone.
#[test]
fn a_close_begun_before_a_restart_is_finished_and_refusals_are_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(5);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
        open(&chain, ChannelId(0), channel(delegate(&client), DEPOSIT));
        open(&chain, ChannelId(1), channel(delegate(&client), DEPOSIT));
        chain.advance(10, 0);
        sell(&ledger, &chain, ChannelId(0), 2 * PRICE, &client).await;
        sell(&ledger, &chain, ChannelId(1), 2 * PRICE, &client).await;
        ledger
            .run(|s| s.begin_close(ChannelId(0)))
            .await
            .expect("begun");
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
#[test]
fn a_close_is_recorded_only_once_final() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(8);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
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
            !ledger
                .run(|s| s.state(ChannelId(0)))
                .await
                .expect("state")
                .closed,
            "marked closed before its close was final"
        );
        chain.advance(3, 0);
        closer.pass().await.expect("pass");
        assert!(
            ledger
                .run(|s| s.state(ChannelId(0)))
                .await
                .expect("state")
                .closed
        );
    });
}

/// The operator's `slotpay-as close` runs beside `serve` on the same ledger: the serving
/// closer sees the channel marked closing and must not submit a second close (a fee for
/// a refusal) while the first may still land; it takes over only if the first never does.
#[test]
fn a_close_begun_by_another_process_is_not_submitted_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(6);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
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
            let held = ledger
                .run(move |s| s.begin_close(id))
                .await
                .expect("begun")
                .expect("sold");
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
