//! What the follower knows of the chain it gave the view, and its two steps: a best
//! block shown by the subscription, and a catch-up from the node's heads.
use super::{Followed, HeadSource, READ, SLOW_PROBE};
use chain::{BlockHash, ChainError, SlotpayEvent};
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout, Instant};

/// Why the follower could not bring the view up to date.
#[derive(Debug, thiserror::Error)]
pub(super) enum Behind {
    /// The node did not give its heads: the view must forget the chain.
    #[error("the node did not give its heads: {0}")]
    Away(String),
    /// The heads came but a block's events did not: try again.
    #[error("the node gave its heads but not its blocks' events: {0}")]
    Unread(String),
}

async fn within<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, ChainError>>,
    why: fn(String) -> Behind,
) -> Result<T, Behind> {
    match timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(why(e.to_string())),
        Err(_) => Err(why(format!("no answer within {limit:?}"))),
    }
}

/// What [`track`] knows of the chain it delivered to the view.
pub(super) struct Tracker<'a, V, S> {
    pub(super) view: &'a V,
    pub(super) source: &'a S,
    pub(super) events: mpsc::UnboundedSender<(u32, SlotpayEvent)>,
    pub(super) tick: watch::Sender<u32>,
    /// The highest finalized block given to the view since it last forgot the chain.
    pub(super) finalized: Option<u32>,
    /// The last finalized block given to the view, kept when it forgets: the chain the
    /// node comes back with must contain it, or it is another chain.
    pub(super) anchor: Option<(u32, BlockHash)>,
    /// The last best block delivered, with its hash.
    pub(super) seen: Option<(u32, BlockHash)>,
    /// Whether the view was made to forget the chain and has not been caught up since.
    pub(super) forgotten: bool,
    /// Since when a block known to exist has not had its events read.
    pub(super) unread_since: Option<Instant>,
    /// The next tick may go back (the node is on another chain).
    pub(super) tick_may_go_back: bool,
    /// When the current step (a best block, a catch-up) began: its blocks became known
    /// then.
    pub(super) step_began: Instant,
}

impl<V: Followed, S: HeadSource> Tracker<'_, V, S> {
    fn send(&self, number: u32, events: Vec<SlotpayEvent>) {
        for event in events {
            let _ = self.events.send((number, event));
        }
    }

    fn ticked(&mut self, best: u32) {
        if std::mem::take(&mut self.tick_may_go_back) {
            self.tick.send_replace(best);
            return;
        }
        self.tick.send_if_modified(|now| {
            let later = best > *now;
            *now = (*now).max(best);
            later
        });
    }

    pub(super) fn finalized(&mut self, number: u32, hash: BlockHash) {
        if self.finalized.is_none_or(|f| number > f) {
            self.view.on_finalized(number, hash);
            self.finalized = Some(number);
            self.anchor = Some((number, hash));
        }
    }

    /// `why`, the blocks known since the current step began left unread.
    fn unread(&mut self, why: Behind) -> Behind {
        self.unread_since.get_or_insert(self.step_began);
        why
    }

    /// A best block the subscription showed: "now" moves at once; its events are read
    /// if it extends the last block delivered, else every block above the finalized one
    /// is read again ([`Self::catch_up`], by the caller).
    pub(super) async fn best(
        &mut self,
        number: u32,
        hash: BlockHash,
        parent: BlockHash,
    ) -> Result<(), Behind> {
        self.step_began = Instant::now();
        self.view.on_best(number, &[]);
        if self.finalized.is_some_and(|f| number <= f) {
            // The finalized state holds it.
        } else if self.seen == Some((number.wrapping_sub(1), parent)) {
            let limit = self.capped(SLOW_PROBE);
            let events = within(limit, self.source.events_at(hash), Behind::Unread)
                .await
                .map_err(|e| self.unread(e))?;
            self.view.on_best(number, &events);
            self.send(number, events);
        } else {
            return Err(self.unread(Behind::Unread(format!(
                "block {number} does not extend the last block delivered"
            ))));
        }
        self.seen = Some((number, hash));
        self.unread_since = None;
        self.ticked(number);
        Ok(())
    }

    /// Whether the node's chain is not the one the view was built from: its finality is
    /// behind the last finalized block given to the view, or at it with another hash.
    /// (Ahead of it, the blocks above the finalized one are read again whatever chain it
    /// is, and what other blocks said is dropped: [`Followed::on_caught_up`].)
    fn another_chain(&self, finalized: (u32, BlockHash)) -> bool {
        self.anchor.is_some_and(|(number, hash)| {
            finalized.0 < number || (finalized.0 == number && finalized.1 != hash)
        })
    }

    /// The heads asked of the node (within `limit`) and, unless the last block delivered
    /// is still the best one, every block above the finalized one, given to the view at
    /// once.
    pub(super) async fn catch_up(&mut self, limit: Duration) -> Result<(), Behind> {
        self.step_began = Instant::now();
        let heads = async { tokio::try_join!(self.source.finalized(), self.source.best()) };
        let ((finalized, finalized_hash), (best, best_hash)) =
            within(self.capped(limit), heads, Behind::Away).await?;
        if self.another_chain((finalized, finalized_hash)) {
            self.view.on_new_chain();
            self.finalized = None;
            self.anchor = None;
            self.seen = None;
            self.forgotten = true;
            self.tick_may_go_back = true;
        }
        if !self.forgotten && self.seen == Some((best, best_hash)) {
            self.finalized(finalized, finalized_hash);
            self.unread_since = None;
            return Ok(());
        }
        if !self.forgotten {
            // "Now" moves at once; the events of the blocks to read follow.
            self.view.on_best(best, &[]);
        }
        let budget = self.capped(READ);
        let blocks = if best > finalized {
            within(
                budget,
                self.source.blocks_in(finalized + 1, best),
                Behind::Unread,
            )
            .await
            .map_err(|e| self.unread(e))?
        } else {
            Vec::new()
        };
        // One chain from the finalized block to the best one, or the chain moved during
        // the read (a fork): read again.
        let mut parent = finalized_hash;
        for block in &blocks {
            if block.parent != parent {
                return Err(self.unread(Behind::Unread(format!(
                    "block {} is not on the chain read before it",
                    block.number
                ))));
            }
            parent = block.hash;
        }
        if best > finalized && parent != best_hash {
            return Err(self.unread(Behind::Unread(
                "the best block changed during the read".into(),
            )));
        }
        let delivered: Vec<(u32, &[SlotpayEvent])> =
            blocks.iter().map(|b| (b.number, &b.events[..])).collect();
        self.view
            .on_caught_up((finalized, finalized_hash), &delivered, best);
        self.finalized = Some(finalized);
        self.anchor = Some((finalized, finalized_hash));
        self.forgotten = false;
        self.unread_since = None;
        for block in blocks {
            self.send(block.number, block.events);
        }
        self.seen = Some((best, best_hash));
        self.ticked(best);
        Ok(())
    }

    pub(super) fn forget(&mut self) {
        self.view.on_lost();
        self.finalized = None;
        self.forgotten = true;
    }

    /// `limit`, or less: while the view sells, blocks may stay unread for READ in all,
    /// whatever the calls that follow would take (once it has forgotten, the limit only
    /// decides when sales resume).
    fn capped(&self, limit: Duration) -> Duration {
        match self.unread_since {
            Some(since) if !self.forgotten => limit.min(READ.saturating_sub(since.elapsed())),
            _ => limit,
        }
    }

    /// Whether blocks have stayed unread for as long as a read may take.
    pub(super) fn unread_too_long(&self) -> bool {
        self.unread_since
            .is_some_and(|since| since.elapsed() >= READ)
    }
}
