//! One policy pass over every channel the AS holds receipts of.
use super::{
    decide, heights, read_all, stop_for, unpaid, Action, Closer, CloserError, ClosingChain,
    Holding, Landed, Op, Report,
};
use protocol::{Channel, ChannelId};

impl<S: ClosingChain> Closer<S> {
    /// One pass over every channel the AS must settle or close. Every instance plans;
    /// only the holder of the closer lease (renewed here) settles and closes.
    pub async fn pass(&mut self) -> Result<Vec<Report>, CloserError> {
        let Some(heights) = heights(&self.chain) else {
            return Ok(Vec::new());
        };
        let (now, finalized) = (heights.best, heights.finalized);
        let fence = self.hold_lease().await?;
        let watched = self.ledger.watched().await?;
        let mut due = Vec::with_capacity(watched.len());
        for held in watched {
            let id = held.channel;
            if let Some(&landed) = self.in_flight.get(&id) {
                if finalized < landed && now < landed.saturating_add(self.retry_after_blocks) {
                    continue;
                }
                self.in_flight.remove(&id);
            }
            due.push(held);
        }
        let ids: Vec<ChannelId> = due.iter().map(|h| h.channel).collect();
        let reads = read_all(&self.chain, &ids).await;
        // Weigh one close of each shape not weighed yet (a key's receipt, or a member's
        // with a proof of each length: what a close's weight depends on), before the plan
        // needs it: a bounded number of dry runs, however many channels there are.
        let mut unweighed = Vec::new();
        let mut shapes = Vec::new();
        for (held, read) in due.iter().zip(&reads) {
            let shape = held.best.proof.as_ref().map(|p| p.siblings.len());
            if self.measured.contains(&shape) || shapes.contains(&shape) {
                continue;
            }
            if let Some(channel) = read.as_ref().ok().and_then(|r| r.channel) {
                // Only a close that claims: one without a receipt recovers no signature,
                // and weighed alone it would overstate what the chain takes.
                let Some(receipt) = unpaid(&channel, &held.best).1 else {
                    continue;
                };
                shapes.push(shape);
                unweighed.push(Op::Close {
                    channel: held.channel,
                    receipt: Some(receipt),
                });
            }
        }
        if !unweighed.is_empty() {
            let weighed = self.chain.measure(&unweighed).await;
            for (shape, weighed) in shapes.into_iter().zip(weighed) {
                if weighed {
                    self.measured.insert(shape);
                }
            }
        }
        // Plan every open channel's job against what the chain takes now.
        let capacity = self.chain.capacity();
        let starts: Vec<Option<u32>> = {
            let mut plan = self.plan.lock().unwrap_or_else(|p| p.into_inner());
            plan.set_capacity(capacity.per_block);
            let jobs = reads.iter().zip(&ids).filter_map(|(read, id)| {
                Some((*id, super::deadline(read.as_ref().ok()?.channel.as_ref()?)))
            });
            plan.replace(jobs, now, self.retry_after_blocks);
            ids.iter().map(|id| plan.start_of(*id)).collect()
        };
        let Some(fence) = fence else {
            // Not the closer: the plan above is all this instance needs (its sales stop
            // where a close begins); what is unpaid since when is kept for a takeover.
            for (held, read) in due.iter().zip(&reads) {
                if let Some(channel) = read.as_ref().ok().and_then(|r| r.channel.as_ref()) {
                    self.note_unpaid(held.channel, channel, &held.best, now);
                }
            }
            return Ok(Vec::new());
        };
        let mut reports = Vec::new();
        let mut ops = Vec::new();
        // The policy's own settles (by amount or age) go out after what the plan needs
        // (closes, settles ahead of a rotation): the chain takes a transaction's ops in
        // order, and a planned op must not lose its block's room to one that can wait.
        let mut optional = Vec::new();
        let mut stops: Vec<(ChannelId, Action, Channel)> = Vec::new();
        for ((held, read), planned_start) in due.into_iter().zip(reads).zip(starts) {
            let id = held.channel;
            let read = match read {
                Ok(read) => read,
                Err(e) => {
                    reports.push(Report::Failed {
                        channel: id,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            // A close begun elsewhere (the operator's `slotpay-as close`, or this process
            // before a restart) may still land: it gets the grace of a submission of our
            // own before we submit another, unless expiry is too near to wait.
            if held.closing && self.seen_closing.insert(id) && !self.in_flight.contains_key(&id) {
                if let Some(channel) = &read.channel {
                    let waited = now
                        .saturating_add(self.retry_after_blocks)
                        .saturating_add(self.policy.blocks_before_expiry);
                    if waited < channel.expires_at {
                        self.in_flight
                            .insert(id, now.saturating_add(self.retry_after_blocks));
                        continue;
                    }
                }
            }
            if let Some(channel) = &read.channel {
                self.note_unpaid(id, channel, &held.best, now);
            }
            let holding = Holding {
                best: &held.best,
                closing: held.closing,
                unpaid_since: self.unpaid_since.get(&id).copied(),
                planned_start,
            };
            match (decide(&self.policy, &read, &holding, now), read.channel) {
                (Action::Wait, _) => {}
                (Action::Forget, _) => {
                    let closed = self.ledger.mark_closed(id, read.block, fence).await;
                    self.fenced(closed)?;
                    self.forget(id);
                    reports.push(Report::Gone { channel: id });
                }
                (Action::Settle, Some(_)) => optional.push(Op::Settle(held.best.clone())),
                (action @ (Action::SettleEnding | Action::Close), Some(channel)) => {
                    stops.push((id, action, channel))
                }
                // Every other action needs the channel open, which decide saw.
                (_, None) => {}
            }
        }
        // Sales stop first, then the receipt to claim is read: in one ledger transaction,
        // so nothing can be sold between the two.
        let wanted = stops
            .iter()
            .filter_map(|(id, action, channel)| stop_for(*action, *id, channel.epoch))
            .collect();
        let fresh = if stops.is_empty() {
            Vec::new()
        } else {
            let stopped = self.ledger.stop(wanted, fence).await;
            self.fenced(stopped)?
        };
        for ((id, action, channel), best) in stops.into_iter().zip(fresh) {
            let claim = best.and_then(|best| unpaid(&channel, &best).1);
            match (action, claim) {
                (Action::Close, receipt) => ops.push(Op::Close {
                    channel: id,
                    receipt,
                }),
                (_, Some(receipt)) => ops.push(Op::Settle(receipt)),
                // Ending an epoch with nothing unpaid: sales of it stopped, nothing to do.
                (_, None) => {}
            }
        }
        ops.append(&mut optional);
        if ops.is_empty() {
            return Ok(reports);
        }
        if !self.lease_live() {
            // Paused or slow since the lease was renewed: another closer may lead by now,
            // and the chain cannot check a fence. The stops above stay (they only stop
            // sales); whoever leads submits.
            tracing::warn!("the closer lease may have run out during the pass: submitting nothing");
            return Ok(reports);
        }
        tracing::info!(
            ops = ops.len(),
            fence = fence.number(),
            "submitting settles and closes"
        );
        let landed = self.chain.submit(ops.clone()).await?;
        for (op, landed) in ops.into_iter().zip(landed) {
            let channel = op.channel();
            reports.push(match (op, landed) {
                (Op::Settle(receipt), Landed::Included { block, .. }) => {
                    self.in_flight.insert(channel, block);
                    let recorded = self
                        .ledger
                        .record_settlement(receipt.receipt, block, fence)
                        .await;
                    self.fenced(recorded)?;
                    Report::Settled { channel, block }
                }
                (Op::Close { .. }, Landed::Included { block, .. }) => {
                    self.in_flight.insert(channel, block);
                    Report::Closed { channel, block }
                }
                (_, Landed::Refused(reason)) => Report::Refused { channel, reason },
                (_, Landed::Failed(reason)) => Report::Failed { channel, reason },
            });
        }
        Ok(reports)
    }

    /// Keeps since when something sold on `id` is unpaid.
    fn note_unpaid(
        &mut self,
        id: ChannelId,
        channel: &Channel,
        best: &protocol::SignedReceipt,
        now: u32,
    ) {
        if unpaid(channel, best).0 > 0 {
            self.unpaid_since.entry(id).or_insert(now);
        } else {
            self.unpaid_since.remove(&id);
        }
    }

    /// Drops what the closer remembers of a channel the chain no longer has.
    fn forget(&mut self, id: ChannelId) {
        self.unpaid_since.remove(&id);
        self.seen_closing.remove(&id);
        self.in_flight.remove(&id);
        self.plan
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}
