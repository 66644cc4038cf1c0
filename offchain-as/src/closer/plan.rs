//! When each close (or settle ahead of a rotation) must begin so that all of them land in
//! time on a chain that takes at most so many per block: a pure schedule, recomputed as
//! channels come and go, and consulted by the sale path (sales stop when a channel's close
//! begins) and by admission (a channel whose close could not fit is not sold on).
//!
//! A job has a deadline: the block by which its transaction must be in, `lead` blocks
//! before the channel's expiry (or its rotation's effect), the lead covering the closer's
//! interval, a transaction's inclusion and the finality lag. Jobs are placed as late as
//! their deadlines allow, at most `per_block` in one block, latest deadline first; when
//! that pushes a start before now, the schedule is infeasible. So a payer who opens N
//! channels expiring together only makes the AS begin closing them earlier, and the
//! (N+1)th is refused before it is sold on, rather than left to expire unclosed.
use protocol::ChannelId;
use std::collections::{BTreeMap, HashMap};

/// The block before which the AS must act on `channel`: its rotation's effect, when one
/// is pending (the ending epoch's receipts stop counting then), else its expiry.
pub fn deadline(channel: &protocol::Channel) -> u32 {
    channel.rotation.map_or(channel.expires_at, |r| {
        r.effective_at.min(channel.expires_at)
    })
}

/// How many closes the chain takes, from its block limits and a close's measured weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Closes in one transaction (the extrinsic weight limit).
    pub per_transaction: u32,
    /// Closes in one block (the block's weight and proof-size limits for normal
    /// transactions): several transactions' worth when it exceeds `per_transaction`.
    pub per_block: u32,
}

impl Capacity {
    /// At least one of each, however heavy a close: a chain that takes none cannot be
    /// planned for, and one is what a single close transaction is.
    pub fn new(per_transaction: u32, per_block: u32) -> Self {
        Self {
            per_transaction: per_transaction.max(1),
            per_block: per_block.max(1),
        }
    }
}

/// A schedule that cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// The earliest job would have to start before now.
    #[error(
        "closing every channel in time would have to begin at block {would_start}, before block {now}"
    )]
    Deadlines {
        /// When the earliest job would have to start.
        would_start: i64,
        /// The current block.
        now: u32,
    },
    /// More channels than the chain could settle together within the shortest notice.
    #[error(
        "{channels} channels are held already, as many as the chain can settle within a rotation's notice"
    )]
    Rotations {
        /// The channels admitted.
        channels: usize,
    },
}

/// Every job's deadline and the start the schedule gives it.
#[derive(Debug, Clone)]
pub struct ClosePlan {
    per_block: u32,
    lead: u32,
    deadlines: BTreeMap<ChannelId, u32>,
    /// When each job was admitted by the sale path (jobs the closer has not seen yet).
    admitted: HashMap<ChannelId, u32>,
    starts: HashMap<ChannelId, u32>,
    /// The earliest start (below 0 when even block 0 would be too late).
    earliest: Option<i64>,
    /// Blocks in which every admitted channel may have to be settled at once.
    rotation_room: Option<u32>,
}

impl ClosePlan {
    /// An empty plan for a chain taking `per_block` closes per block, each needing `lead`
    /// blocks between its start and its channel's deadline.
    pub fn new(per_block: u32, lead: u32) -> Self {
        Self {
            per_block: per_block.max(1),
            lead,
            deadlines: BTreeMap::new(),
            admitted: HashMap::new(),
            starts: HashMap::new(),
            earliest: None,
            rotation_room: None,
        }
    }

    /// Bounds the channels admitted by what the chain can settle together within the
    /// shortest notice a channel may give (`min_notice` blocks): a payer may rotate or
    /// revoke every one of them in one block, and each one's sales must then be paid
    /// before its old keys stop counting, `lead` blocks ahead as a close is. So at most
    /// `per_block x (min_notice - lead)` channels are admitted at once.
    pub fn bound_rotations(&mut self, min_notice: u32) {
        self.rotation_room = Some(min_notice.saturating_sub(self.lead).max(1));
    }

    /// How many channels may be admitted at once (see [`Self::bound_rotations`]).
    pub fn max_channels(&self) -> Option<usize> {
        self.rotation_room
            .map(|room| self.per_block as usize * room as usize)
    }

    /// The same jobs on a chain of another capacity (a heavier close was measured).
    pub fn set_capacity(&mut self, per_block: u32) {
        self.per_block = per_block.max(1);
        self.reschedule();
    }

    /// Replaces the jobs with `jobs` (channel, [`deadline`] of its channel) at block
    /// `now`, keeping those the sale path admitted within the last `keep` blocks: their
    /// first sale may have committed after the closer read what it holds.
    pub fn replace(
        &mut self,
        jobs: impl IntoIterator<Item = (ChannelId, u32)>,
        now: u32,
        keep: u32,
    ) {
        let mut deadlines: BTreeMap<ChannelId, u32> = jobs.into_iter().collect();
        self.admitted.retain(|channel, at| {
            let recent = now.saturating_sub(*at) <= keep;
            let watched = deadlines.contains_key(channel);
            if recent && !watched {
                if let Some(d) = self.deadlines.get(channel) {
                    deadlines.insert(*channel, *d);
                }
            }
            recent && !watched
        });
        self.deadlines = deadlines;
        self.reschedule();
    }

    /// Adds (or moves) `channel`'s job if the schedule stays feasible at `now`; refuses
    /// and changes nothing otherwise. Returns the job's start.
    pub fn admit(&mut self, channel: ChannelId, deadline: u32, now: u32) -> Result<u32, Full> {
        if self.deadlines.get(&channel) == Some(&deadline) {
            return Ok(self.start_of(channel).unwrap_or(now));
        }
        if let Some(max) = self.max_channels() {
            let channels = self.deadlines.len();
            if !self.deadlines.contains_key(&channel) && channels >= max {
                return Err(Full::Rotations { channels });
            }
        }
        let previous = self.deadlines.insert(channel, deadline);
        self.reschedule();
        match self.earliest {
            Some(earliest) if earliest < i64::from(now) => {
                match previous {
                    Some(d) => self.deadlines.insert(channel, d),
                    None => self.deadlines.remove(&channel),
                };
                self.reschedule();
                Err(Full::Deadlines {
                    would_start: earliest,
                    now,
                })
            }
            _ => {
                self.admitted.insert(channel, now);
                Ok(self.start_of(channel).unwrap_or(now))
            }
        }
    }

    /// Whether every job can still start at or after `now`.
    pub fn feasible_at(&self, now: u32) -> bool {
        self.earliest.is_none_or(|e| e >= i64::from(now))
    }

    /// Drops `channel`'s job (closed, or its deadline handled).
    pub fn remove(&mut self, channel: ChannelId) {
        if self.deadlines.remove(&channel).is_some() {
            self.reschedule();
        }
    }

    /// The block from which `channel`'s close must be under way (and its sales stopped).
    pub fn start_of(&self, channel: ChannelId) -> Option<u32> {
        self.starts.get(&channel).copied()
    }

    /// The deadline `channel` was planned with.
    pub fn deadline_of(&self, channel: ChannelId) -> Option<u32> {
        self.deadlines.get(&channel).copied()
    }

    /// How many jobs.
    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }

    /// Latest-first placement: each job in the latest block at or before its own latest
    /// start (deadline - lead) that still has room.
    fn reschedule(&mut self) {
        let mut jobs: Vec<(u32, ChannelId)> =
            self.deadlines.iter().map(|(c, d)| (*d, *c)).collect();
        jobs.sort_unstable_by(|a, b| b.cmp(a));
        self.starts.clear();
        // Signed: a start may fall below block 0, which only says "too late".
        let mut block: i64 = i64::MAX;
        let mut used = 0u32;
        for (deadline, channel) in jobs {
            let latest = i64::from(deadline) - i64::from(self.lead);
            if latest < block {
                block = latest;
                used = 0;
            }
            if used == self.per_block {
                block -= 1;
                used = 0;
            }
            used += 1;
            self.starts
                .insert(channel, u32::try_from(block.max(0)).unwrap_or(u32::MAX));
        }
        self.earliest = (block != i64::MAX).then_some(block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_sharing_a_deadline_start_earlier_by_their_number_over_the_capacity() {
        let mut plan = ClosePlan::new(10, 5);
        plan.replace((0..35).map(|i| (ChannelId(i), 1000)), 0, 0);
        let mut per_block: BTreeMap<u32, u32> = BTreeMap::new();
        for i in 0..35 {
            *per_block
                .entry(plan.start_of(ChannelId(i)).unwrap())
                .or_default() += 1;
        }
        // 35 jobs at 10 a block, all due by block 995: 995, 994, 993 full, 992 holds 5.
        assert_eq!(
            per_block.into_iter().collect::<Vec<_>>(),
            [(992, 5), (993, 10), (994, 10), (995, 10)]
        );
    }

    #[test]
    fn a_job_that_cannot_fit_is_refused_and_changes_nothing() {
        let mut plan = ClosePlan::new(2, 3);
        for i in 0..6 {
            plan.admit(ChannelId(i), 110, 100).expect("room");
        }
        // 6 jobs by 107 at 2 a block: 107, 106, 105 hold them; with a 7th, one of them
        // starts at 104: fine at 104, too late at 105.
        assert!(plan.admit(ChannelId(6), 110, 104).is_ok());
        assert!(plan.feasible_at(104) && !plan.feasible_at(105));
        plan.remove(ChannelId(6));
        assert_eq!(
            plan.admit(ChannelId(6), 110, 105),
            Err(Full::Deadlines {
                would_start: 104,
                now: 105
            })
        );
        assert_eq!(plan.start_of(ChannelId(6)), None);
        assert_eq!(plan.len(), 6);
    }
}
