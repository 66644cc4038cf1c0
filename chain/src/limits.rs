//! What one block and one transaction of the chain can hold, from the runtime's own
//! constants (`System::BlockWeights`, `System::BlockLength`), for normal transactions:
//! what the AS plans its closes against.
use crate::dry_run::Weight;
use crate::node::Node;
use crate::ChainError;
use subxt::ext::scale_decode::DecodeAsType;

#[derive(Debug, Clone, Copy, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
struct ClassWeights {
    base_extrinsic: Weight,
    max_extrinsic: Option<Weight>,
    max_total: Option<Weight>,
}

#[derive(Debug, Clone, Copy, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
struct PerClass<T> {
    normal: T,
}

#[derive(Debug, Clone, Copy, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
struct BlockWeights {
    max_block: Weight,
    per_class: PerClass<ClassWeights>,
}

#[derive(Debug, Clone, Copy, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
struct BlockLength {
    max: PerClass<u32>,
}

/// A block's and a transaction's room for normal (non-operational) transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLimits {
    /// The most one normal transaction may weigh.
    pub max_extrinsic: Weight,
    /// The most all normal transactions of a block may weigh.
    pub max_total: Weight,
    /// What every transaction weighs before its call.
    pub base_extrinsic: Weight,
    /// The most bytes of normal transactions in a block.
    pub max_length: u32,
}

impl BlockLimits {
    /// How many items of `item` weight and `item_len` bytes fit in one transaction, and
    /// in one block (never below 1).
    pub fn fit(&self, item: Weight, item_len: u32) -> (u32, u32) {
        let count = |room: u64, each: u64| -> u64 {
            if each == 0 {
                u64::MAX
            } else {
                room / each
            }
        };
        let per = |room: Weight| -> u64 {
            let room_ref = room.ref_time.saturating_sub(self.base_extrinsic.ref_time);
            let room_proof = room
                .proof_size
                .saturating_sub(self.base_extrinsic.proof_size);
            count(room_ref, item.ref_time).min(count(room_proof, item.proof_size))
        };
        let per_tx = per(self.max_extrinsic);
        let per_block =
            per(self.max_total).min(count(u64::from(self.max_length), u64::from(item_len)));
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX).max(1);
        (clamp(per_tx.min(per_block)), clamp(per_block))
    }
}

impl Node {
    /// The chain's [`BlockLimits`], from its runtime constants.
    pub fn block_limits(&self) -> Result<BlockLimits, ChainError> {
        let constants = self.api().constants();
        let weights = constants
            .at(&subxt::dynamic::constant("System", "BlockWeights"))?
            .as_type::<BlockWeights>()
            .map_err(|e| ChainError::decode("System::BlockWeights", e))?;
        let length = constants
            .at(&subxt::dynamic::constant("System", "BlockLength"))?
            .as_type::<BlockLength>()
            .map_err(|e| ChainError::decode("System::BlockLength", e))?;
        let normal = weights.per_class.normal;
        let max_total = normal.max_total.unwrap_or(weights.max_block);
        Ok(BlockLimits {
            max_extrinsic: normal.max_extrinsic.unwrap_or(max_total),
            max_total,
            base_extrinsic: normal.base_extrinsic,
            max_length: length.max.normal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tighter_dimension_decides() {
        let limits = BlockLimits {
            max_extrinsic: Weight {
                ref_time: 1_000,
                proof_size: 10_000,
            },
            max_total: Weight {
                ref_time: 3_000,
                proof_size: 1_000_000,
            },
            base_extrinsic: Weight {
                ref_time: 100,
                proof_size: 0,
            },
            max_length: 1_000_000,
        };
        let item = Weight {
            ref_time: 100,
            proof_size: 3_000,
        };
        // Per transaction: 900 / 100 = 9 by time, 10_000 / 3_000 = 3 by proof: 3.
        // Per block: 2_900 / 100 = 29 by time, 333 by proof: 29.
        assert_eq!(limits.fit(item, 200), (3, 29));
        // Bytes bind when items are long.
        assert_eq!(limits.fit(item, 100_000), (3, 10));
    }
}
