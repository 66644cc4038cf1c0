//! An EVM node's blocks, by polling.
use crate::view::NodeView;
use chain::evm::EvmContract;
use chain::{AnyContract, ChainError, SlotpayEvent};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// An EVM node's blocks, polled (every 100 ms): the `finalized` tag's block, and every
/// new best block with its contract events (one `eth_getLogs` over the new blocks).
/// Anvil does not reorganise; a node that does could show an event twice, which
/// [`NodeView::on_best`] takes once.
pub(super) async fn follow_evm(
    view: NodeView<AnyContract>,
    contract: EvmContract,
    events: mpsc::UnboundedSender<(u32, SlotpayEvent)>,
    tick: watch::Sender<u32>,
) {
    let node = contract.node().clone();
    let mut seen: Option<u32> = None;
    let mut finalized_seen = None;
    loop {
        let heads = async { Ok::<_, ChainError>((node.best().await?, node.finalized().await?)) };
        match heads.await {
            Ok(((best, _), (finalized, hash))) => {
                if finalized_seen != Some(hash) {
                    view.on_finalized(finalized, hash);
                    finalized_seen = Some(hash);
                }
                // At start and after a lost connection, every block above the finalized
                // one: a rotation announced there must not wait for finality to be seen.
                let from = seen.map_or(finalized.saturating_add(1).min(best), |s| s + 1);
                if from <= best {
                    match node.events_in(contract.address(), from, best).await {
                        Ok(found) => {
                            for number in from..=best {
                                let here: Vec<SlotpayEvent> = found
                                    .iter()
                                    .filter(|(b, _)| *b == number)
                                    .map(|(_, e)| e.clone())
                                    .collect();
                                view.on_best(number, &here);
                                for event in here {
                                    let _ = events.send((number, event));
                                }
                            }
                            seen = Some(best);
                            let _ = tick.send(best);
                        }
                        Err(e) => tracing::warn!(error = %e, "read the contract's logs"),
                    }
                }
            }
            Err(e) => {
                if seen.is_some() {
                    tracing::warn!(error = %e, "EVM node: connection lost");
                }
                view.on_lost();
                finalized_seen = None;
                seen = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
