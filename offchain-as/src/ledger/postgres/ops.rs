//! Everything but sales on PostgreSQL: reads, the closer's lease, its fenced writes, the
//! devices' counters.
use super::super::rows::{
    amount_bytes, amount_from, digest_from, from_sql, key_from, receipt_from, to_sql,
};
use super::super::{ChannelState, Fence, LedgerError, SaleRecord, Stop, Watched};
use super::{pg, with_client, Attempt, PgLedger, LEASE};
use protocol::{Balance, ChannelId, Epoch, Receipt, SignedReceipt};
use std::time::Duration;

fn epoch_from(v: i64) -> Result<Epoch, LedgerError> {
    Epoch::try_from(v).map_err(|_| LedgerError::Corrupt("epoch out of range"))
}

fn block_from(v: i64) -> Result<u32, LedgerError> {
    u32::try_from(v).map_err(|_| LedgerError::Corrupt("block out of range"))
}

/// Fails with [`LedgerError::Fenced`] unless `fence` is the lease's number now, and holds
/// the lease row (shared) until `tx` ends: a new acquisition waits for this transaction,
/// so every write made under an old number is ordered before the new holder's reads.
async fn check_fence(tx: &pg::Transaction<'_>, fence: Fence) -> Result<(), Attempt> {
    let current: Option<i64> = tx
        .query_opt(
            "SELECT fence FROM lease WHERE name = $1 FOR SHARE",
            &[&LEASE],
        )
        .await?
        .map(|row| row.get(0));
    if current != Some(to_sql(fence.number())) {
        return Err(Attempt::Fail(LedgerError::Fenced {
            fence: fence.number(),
        }));
    }
    Ok(())
}

const BEST: &str = "SELECT total, signature, proof FROM epochs WHERE channel = $1 AND epoch = $2";

async fn best_in(
    c: &impl pg::GenericClient,
    channel: ChannelId,
    epoch: Epoch,
) -> Result<Option<SignedReceipt>, LedgerError> {
    let Some(row) = c
        .query_opt(BEST, &[&to_sql(channel.0), &i64::from(epoch)])
        .await?
    else {
        return Ok(None);
    };
    receipt_from(channel, epoch, row.get(0), row.get(1), row.get(2)).map(Some)
}

impl PgLedger {
    /// Makes `device` known (from the ledger's counter floor) if it is not yet.
    pub(in super::super) async fn register_device(&self, device: &str) -> Result<(), LedgerError> {
        let floor = to_sql(self.floor);
        with_client!(self, c => {
            c.execute(
                "INSERT INTO devices (device, next_counter) VALUES ($1, $2)
                 ON CONFLICT (device) DO NOTHING",
                &[&device, &floor],
            )
            .await?;
            Ok(())
        })
    }

    pub(in super::super) async fn next_counter(&self, device: &str) -> Result<u64, LedgerError> {
        with_client!(self, c => {
            c.query_opt(
                "SELECT next_counter FROM devices WHERE device = $1",
                &[&device],
            )
            .await?
            .map(|row| from_sql(row.get(0)))
            .ok_or_else(|| Attempt::Fail(LedgerError::UnknownDevice(device.to_owned())))
        })
    }

    /// Raises each device's counter to at least `counters`' (never lowers one); returns
    /// the devices raised.
    pub(in super::super) async fn raise_counters(
        &self,
        counters: &[(String, u64)],
    ) -> Result<Vec<String>, LedgerError> {
        let floor = to_sql(self.floor);
        with_client!(self, c => {
            let tx = c.transaction().await?;
            let mut raised = Vec::new();
            for (device, counter) in counters {
                let ours: u64 = tx
                    .query_opt(
                        "SELECT next_counter FROM devices WHERE device = $1 FOR UPDATE",
                        &[device],
                    )
                    .await?
                    .map_or(self.floor, |row| from_sql(row.get(0)));
                if *counter > ours {
                    tx.execute(
                        "INSERT INTO devices (device, next_counter) VALUES ($1, $2)
                         ON CONFLICT (device) DO UPDATE SET next_counter = excluded.next_counter",
                        &[device, &to_sql(*counter)],
                    )
                    .await?;
                    raised.push(device.clone());
                }
            }
            let _ = floor;
            tx.commit().await?;
            Ok(raised)
        })
    }

    pub(in super::super) async fn sale_for(
        &self,
        channel: ChannelId,
        epoch: Epoch,
        amount: Balance,
    ) -> Result<Option<SaleRecord>, LedgerError> {
        with_client!(self, c => {
            let Some(row) = c
                .query_opt(
                    "SELECT device, first_counter, slots, signer, secret_digest FROM sales
                     WHERE channel = $1 AND epoch = $2 AND new_total = $3",
                    &[
                        &to_sql(channel.0),
                        &i64::from(epoch),
                        &amount_bytes(amount).as_slice(),
                    ],
                )
                .await?
            else {
                return Ok(None);
            };
            Ok(Some(SaleRecord {
                channel,
                epoch,
                new_total: amount,
                device: row.get(0),
                first_counter: from_sql(row.get(1)),
                slots: from_sql(row.get(2)),
                signer: key_from(row.get(3))?,
                secret_digest: digest_from(row.get(4))?,
            }))
        })
    }

    pub(in super::super) async fn best(
        &self,
        channel: ChannelId,
        epoch: Epoch,
    ) -> Result<Option<SignedReceipt>, LedgerError> {
        with_client!(self, c => Ok(best_in(&*c, channel, epoch).await?))
    }

    pub(in super::super) async fn totals(
        &self,
    ) -> Result<Vec<(ChannelId, Epoch, Balance)>, LedgerError> {
        with_client!(self, c => {
            let rows = c
                .query("SELECT channel, epoch, total FROM epochs", &[])
                .await?;
            let mut totals = Vec::with_capacity(rows.len());
            for row in rows {
                totals.push((
                    ChannelId(from_sql(row.get(0))),
                    epoch_from(row.get(1))?,
                    amount_from(row.get(2))?,
                ));
            }
            Ok(totals)
        })
    }

    pub(in super::super) async fn watched(&self) -> Result<Vec<Watched>, LedgerError> {
        with_client!(self, c => {
            let rows = c
                .query(
                    "SELECT DISTINCT ON (c.channel)
                            c.channel, c.closing, e.epoch, e.total, e.signature, e.proof
                     FROM channels c JOIN epochs e ON e.channel = c.channel
                     WHERE c.closed_at IS NULL
                     ORDER BY c.channel, e.epoch DESC",
                    &[],
                )
                .await?;
            let mut watched = Vec::with_capacity(rows.len());
            for row in rows {
                let channel = ChannelId(from_sql(row.get(0)));
                watched.push(Watched {
                    channel,
                    closing: row.get(1),
                    best: receipt_from(
                        channel,
                        epoch_from(row.get(2))?,
                        row.get(3),
                        row.get(4),
                        row.get(5),
                    )?,
                });
            }
            Ok(watched)
        })
    }

    pub(in super::super) async fn state(
        &self,
        channel: ChannelId,
    ) -> Result<ChannelState, LedgerError> {
        with_client!(self, c => {
            Ok(c.query_opt(
                "SELECT closing, closed_at IS NOT NULL FROM channels WHERE channel = $1",
                &[&to_sql(channel.0)],
            )
            .await?
            .map(|row| ChannelState {
                closing: row.get(0),
                closed: row.get(1),
            })
            .unwrap_or_default())
        })
    }

    pub(in super::super) async fn settlements(
        &self,
        channel: ChannelId,
    ) -> Result<Vec<(Epoch, Balance, u32)>, LedgerError> {
        with_client!(self, c => {
            let rows = c
                .query(
                    "SELECT epoch, amount, block FROM settlements WHERE channel = $1
                     ORDER BY epoch, amount",
                    &[&to_sql(channel.0)],
                )
                .await?;
            let mut settled = Vec::with_capacity(rows.len());
            for row in rows {
                settled.push((
                    epoch_from(row.get(0))?,
                    amount_from(row.get(1))?,
                    block_from(row.get(2))?,
                ));
            }
            Ok(settled)
        })
    }

    /// Renews `held` for `holder`, or acquires the lease with the next number if it has
    /// run out (or was never taken); with `take`, acquires it whoever holds it.
    pub(in super::super) async fn lease(
        &self,
        holder: &str,
        held: Option<Fence>,
        duration: Duration,
        take: bool,
    ) -> Result<Option<Fence>, LedgerError> {
        let held = held.map(|f| to_sql(f.number()));
        let seconds = duration.as_secs_f64();
        with_client!(self, c => {
            let row = c
                .query_opt(
                    "INSERT INTO lease (name, holder, fence, expires_at)
                     VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $4))
                     ON CONFLICT (name) DO UPDATE SET
                         fence = CASE WHEN lease.holder = excluded.holder AND lease.fence = $3
                                      THEN lease.fence ELSE lease.fence + 1 END,
                         holder = excluded.holder,
                         expires_at = excluded.expires_at
                     WHERE $5 OR (lease.holder = excluded.holder AND lease.fence = $3)
                        OR lease.expires_at <= clock_timestamp()
                     RETURNING fence",
                    &[&LEASE, &holder, &held, &seconds, &take],
                )
                .await?;
            Ok(row.map(|row| Fence(from_sql(row.get(0)))))
        })
    }

    pub(in super::super) async fn release_lease(&self, fence: Fence) -> Result<(), LedgerError> {
        with_client!(self, c => {
            c.execute(
                "UPDATE lease SET expires_at = clock_timestamp() WHERE name = $1 AND fence = $2",
                &[&LEASE, &to_sql(fence.number())],
            )
            .await?;
            Ok(())
        })
    }

    /// The stops, in channel order, under `fence`; then each stop's claim, read after.
    pub(in super::super) async fn stop(
        &self,
        stops: &[Stop],
        fence: Fence,
    ) -> Result<Vec<Option<SignedReceipt>>, LedgerError> {
        let mut order: Vec<usize> = (0..stops.len()).collect();
        order.sort_by_key(|&i| match stops[i] {
            Stop::Close(c) | Stop::EndEpoch(c, _) => c,
        });
        with_client!(self, c => {
            let tx = c.transaction().await?;
            check_fence(&tx, fence).await?;
            // Channel rows locked in key order, as sales lock them: no deadlock.
            for &i in &order {
                match stops[i] {
                    Stop::Close(channel) => {
                        tx.execute(
                            "INSERT INTO channels (channel, closing) VALUES ($1, true)
                             ON CONFLICT (channel) DO UPDATE SET closing = true",
                            &[&to_sql(channel.0)],
                        )
                        .await?
                    }
                    Stop::EndEpoch(channel, epoch) => {
                        tx.execute(
                            "INSERT INTO channels (channel, stopped_epoch) VALUES ($1, $2)
                             ON CONFLICT (channel) DO UPDATE SET stopped_epoch =
                                 greatest(coalesce(channels.stopped_epoch, 0), excluded.stopped_epoch)",
                            &[&to_sql(channel.0), &i64::from(epoch)],
                        )
                        .await?
                    }
                };
            }
            // Read under the locks just taken: a sale that got its lock first has
            // committed, and none can come after.
            let mut read = Vec::with_capacity(stops.len());
            for stop in stops {
                read.push(match *stop {
                    Stop::Close(channel) => {
                        let latest = tx
                            .query_opt(
                                "SELECT max(e.epoch) FROM channels c
                                 JOIN epochs e ON e.channel = c.channel
                                 WHERE c.channel = $1 AND c.closed_at IS NULL",
                                &[&to_sql(channel.0)],
                            )
                            .await?
                            .and_then(|row| row.get::<_, Option<i64>>(0));
                        match latest {
                            Some(epoch) => {
                                let epoch = epoch_from(epoch)?;
                                Some(best_in(&tx, channel, epoch).await?.ok_or(
                                    LedgerError::Corrupt("an epoch row vanished"),
                                )?)
                            }
                            None => None,
                        }
                    }
                    Stop::EndEpoch(channel, epoch) => best_in(&tx, channel, epoch).await?,
                });
            }
            tx.commit().await?;
            Ok(read)
        })
    }

    /// [`Self::stop`] of one close, with what the AS holds of the channel.
    pub(in super::super) async fn begin_close(
        &self,
        channel: ChannelId,
        fence: Fence,
    ) -> Result<Option<Watched>, LedgerError> {
        let best = self
            .stop(&[Stop::Close(channel)], fence)
            .await?
            .pop()
            .flatten();
        Ok(best.map(|best| Watched {
            channel,
            best,
            closing: true,
        }))
    }

    pub(in super::super) async fn mark_closed(
        &self,
        channel: ChannelId,
        block: u32,
        fence: Fence,
    ) -> Result<(), LedgerError> {
        with_client!(self, c => {
            let tx = c.transaction().await?;
            check_fence(&tx, fence).await?;
            tx.execute(
                "INSERT INTO channels (channel, closing, closed_at) VALUES ($1, true, $2)
                 ON CONFLICT (channel) DO UPDATE SET closing = true, closed_at = excluded.closed_at",
                &[&to_sql(channel.0), &i64::from(block)],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub(in super::super) async fn record_settlement(
        &self,
        receipt: Receipt,
        block: u32,
        fence: Fence,
    ) -> Result<(), LedgerError> {
        with_client!(self, c => {
            let tx = c.transaction().await?;
            check_fence(&tx, fence).await?;
            tx.execute(
                "INSERT INTO settlements (channel, epoch, amount, block) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[
                    &to_sql(receipt.channel.0),
                    &i64::from(receipt.epoch),
                    &amount_bytes(receipt.amount).as_slice(),
                    &i64::from(block),
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
