//! The policy closer against a fake chain that applies the protocol's channel rules, with
//! a finality lag: many closes at once, no resubmission while a close is in flight,
//! retries after a dropped transaction, settles by policy and before a rotation, and
//! closes resumed after a restart.
mod support;

use chain::ChainError;
use offchain_as::closer::policy::Policy;
use offchain_as::closer::{Closer, Landed, Op, Report, Settlement};
use offchain_as::ledger::{Ledger, Offer};
use offchain_as::sale::Request;
use offchain_as::view::{ChainView, ChannelRead, Heights};
use protocol::keys::SecretKey;
use protocol::{Authority, Balance, Channel, ChannelId, Receipt};
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
    /// Calls to submit, and ops submitted.
    transactions: usize,
    ops: usize,
}

/// A chain whose best state is its finalized state plus what is pending.
#[derive(Clone, Default)]
struct FakeChain(Arc<Mutex<Fake>>);

impl FakeChain {
    fn with(&self) -> std::sync::MutexGuard<'_, Fake> {
        self.0.lock().expect("lock")
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

fn apply(f: &mut Fake, block: u32, op: &Op) -> Result<(), String> {
    let id = op.channel();
    let mut channel = *f.channels.get(&id).ok_or("ChannelNotFound")?;
    match op {
        Op::Settle { claim, .. } => {
            let s = channel
                .settlement(claim.epoch, claim.amount, block)
                .map_err(|e| e.to_string())?;
            channel.apply(s);
            *f.paid.entry(id).or_default() += s.paid;
            f.channels.insert(id, channel);
        }
        Op::Close { claim, .. } => {
            let p = channel
                .payout(claim.as_ref().map(|c| (c.epoch, c.amount)), block)
                .map_err(|e| e.to_string())?;
            *f.paid.entry(id).or_default() += p.paid;
            f.refunded.insert(id, p.refunded);
            f.channels.remove(&id);
        }
    }
    Ok(())
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
        let f = self.with();
        Ok(ChannelRead {
            block: f.finalized,
            now: f.best,
            channel: f.channels.get(&id).map(|c| c.at(f.best)),
        })
    }
}

impl Settlement for FakeChain {
    async fn submit(&self, ops: Vec<Op>) -> Result<Vec<Landed>, ChainError> {
        let mut f = self.with();
        f.transactions += 1;
        f.ops += ops.len();
        // One transaction, one block: each op is tried on the best state.
        f.best += 1;
        let block = f.best;
        let mut landed = Vec::new();
        for op in ops {
            let mut trial = Fake {
                channels: f.channels.clone(),
                ..Fake::default()
            };
            for (b, p) in &f.pending {
                let _ = apply(&mut trial, *b, p);
            }
            landed.push(match apply(&mut trial, block, &op) {
                Ok(()) => {
                    f.pending.push((block, op));
                    Landed::Included { block }
                }
                Err(e) => Landed::Refused(e),
            });
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

/// Opens `channel` on the fake chain (finalized at once) under `id`.
fn open(chain: &FakeChain, id: ChannelId, channel: Channel) {
    chain.with().channels.insert(id, channel);
}

async fn sell(
    ledger: &Ledger,
    chain: &FakeChain,
    id: ChannelId,
    amount: Balance,
    client: &SecretKey,
) {
    let read = chain.read(id).await.expect("read");
    let channel = read.channel.expect("open");
    let receipt = Receipt {
        channel: id,
        epoch: channel.epoch,
        amount,
    };
    let offer: Offer = seller(64)
        .check(
            Request {
                device: "lock".into(),
                receipt,
                signature: receipt.sign(&DOMAIN, client),
                proof: None,
            },
            Some(&channel),
            read.now,
            0,
        )
        .expect("valid offer");
    ledger.sell(offer).await.expect("sold");
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

/// Fifty channels expiring in the same block, each with a sold receipt: one pass submits
/// every close together, none waits on another, and each pays exactly its receipt.
#[test]
fn fifty_channels_expiring_together_are_all_closed_and_paid_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(1);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
        for i in 0..50u64 {
            let mut c = channel(delegate(&client), DEPOSIT);
            c.expires_at = 100;
            open(&chain, ChannelId(i), c);
            sell(
                &ledger,
                &chain,
                ChannelId(i),
                PRICE * (1 + u128::from(i % 7)),
                &client,
            )
            .await;
        }
        chain.advance(90, 0);
        let mut closer = Closer::new(chain.clone(), ledger.clone(), policy(), 10);
        assert!(
            closer.pass().await.expect("pass").is_empty(),
            "not due at 90"
        );
        chain.advance(5, 3);
        let reports = closer.pass().await.expect("pass");
        let closed = reports
            .iter()
            .filter(|r| matches!(r, Report::Closed { .. }))
            .count();
        assert_eq!(closed, 50, "{reports:?}");
        assert_eq!(
            chain.with().transactions,
            1,
            "every close in one submission"
        );
        // Finality lags 3 blocks: nothing is resubmitted meanwhile.
        chain.advance(1, 3);
        assert!(closer.pass().await.expect("pass").is_empty());
        chain.advance(3, 0);
        let reports = closer.pass().await.expect("pass");
        assert_eq!(
            reports
                .iter()
                .filter(|r| matches!(r, Report::Gone { .. }))
                .count(),
            50
        );
        {
            let f = chain.with();
            assert_eq!(f.ops, 50);
            for i in 0..50u64 {
                let sold = PRICE * (1 + u128::from(i % 7));
                assert_eq!(f.paid[&ChannelId(i)], sold, "channel {i}");
                assert_eq!(f.refunded[&ChannelId(i)], DEPOSIT - sold, "channel {i}");
            }
        }
        assert!(ledger
            .run(|s| s.watched())
            .await
            .expect("watched")
            .is_empty());
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
        let mut closer = Closer::new(chain.clone(), ledger.clone(), policy(), 2);
        let first = closer.pass().await.expect("pass");
        assert!(matches!(first[..], [Report::Closed { .. }]), "{first:?}");
        chain.drop_pending();
        chain.advance(1, 5);
        assert!(
            closer.pass().await.expect("pass").is_empty(),
            "in its grace period"
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
/// pays only what was not settled: the payee gets exactly the best receipt in all.
#[test]
fn settle_twice_then_close_pays_exactly_the_best_receipt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = FakeChain::default();
    let client = secret(3);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
        open(&chain, ChannelId(0), channel(delegate(&client), DEPOSIT));
        chain.advance(10, 0);
        let mut closer = Closer::new(
            chain.clone(),
            ledger.clone(),
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
        let r = closer.pass().await.expect("pass");
        assert!(matches!(r[..], [Report::Settled { .. }]), "{r:?}");
        chain.advance(1, 0);
        // Both settles are on the AS's record, durably, as its sales are.
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
        assert_eq!(f.transactions, 3);
    });
}

/// A rotation ends the current epoch's receipts at its effective block: the closer
/// settles them before, within its margin, and sells nothing to the old keys after.
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
        let mut closer = Closer::new(chain.clone(), ledger.clone(), policy(), 3);
        chain.advance(10, 0);
        assert!(closer.pass().await.expect("pass").is_empty(), "20 < 30 - 5");
        chain.advance(5, 0);
        let r = closer.pass().await.expect("pass");
        assert!(matches!(r[..], [Report::Settled { .. }]), "{r:?}");
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
        let mut closer = Closer::new(chain.clone(), ledger.clone(), policy(), 3);
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
        let mut serving = Closer::new(chain.clone(), ledger.clone(), policy(), 3);
        assert!(serving.pass().await.expect("pass").is_empty());
        // The operator closes both by hand; one of its transactions is dropped.
        // As `slotpay-as close` does: mark the channel closing, then submit its close.
        let mut ops = Vec::new();
        for id in [ChannelId(0), ChannelId(1)] {
            ledger.run(move |s| s.begin_close(id)).await.expect("begun");
            let state = chain.read(id).await.expect("read").channel.expect("open");
            let best = ledger
                .run(move |s| s.best(id, 0))
                .await
                .expect("best")
                .expect("sold");
            let (_, claim) = offchain_as::closer::policy::unpaid(&state, &best);
            ops.push(Op::Close { channel: id, claim });
        }
        chain.submit(ops).await.expect("the operator's closes");
        let sent = chain.with().transactions;
        chain
            .with()
            .pending
            .retain(|(_, op)| op.channel() == ChannelId(0));
        let r = serving.pass().await.expect("pass");
        assert_eq!(
            chain.with().transactions,
            sent,
            "a second close was submitted: {r:?}"
        );
        chain.advance(1, 0);
        let r = serving.pass().await.expect("pass");
        assert_eq!(chain.with().transactions, sent, "{r:?}");
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
