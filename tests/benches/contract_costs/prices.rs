//! The node's price list for the host calls a close makes: pallet-contracts 38.0.0's
//! `SubstrateWeight` (the pallet and weights substrate-contracts-node 0.42.0's runtime is
//! locked to) with the runtime's `RocksDbWeight`. The report splits the measured parts of a
//! close into these items and sets their sum beside the measured figure: the prediction
//! comes from the pallet's benchmarks, the measurement from the node's dry runs.

/// ref_time (ps) and proof_size (B), as the pallet charges them.
#[derive(Clone, Copy)]
pub(crate) struct Price {
    pub ref_time: u64,
    pub proof_size: u64,
}

impl Price {
    const fn new(ref_time: u64, proof_size: u64) -> Self {
        Price {
            ref_time,
            proof_size,
        }
    }

    pub(crate) fn times(self, n: u64) -> Price {
        Price::new(self.ref_time * n, self.proof_size * n)
    }

    pub(crate) fn plus(self, other: Price) -> Price {
        Price::new(
            self.ref_time + other.ref_time,
            self.proof_size + other.proof_size,
        )
    }

    pub(crate) fn sum(prices: &[Price]) -> Price {
        prices.iter().fold(Price::new(0, 0), |a, p| a.plus(*p))
    }

    pub(crate) fn against(self, measured: (i128, i128)) -> String {
        let share = |p: u64, m: i128| {
            if m == 0 {
                "-".to_string()
            } else {
                format!("{:.1}%", p as f64 * 100.0 / m as f64)
            }
        };
        format!(
            "{} of {} ps, {} of {} B",
            share(self.ref_time, measured.0),
            measured.0,
            share(self.proof_size, measured.1),
            measured.1
        )
    }
}

/// `RocksDbWeight`: one database read, one write.
const DB_READ: u64 = 25_000_000;
const DB_WRITE: u64 = 100_000_000;

/// What every access to contract storage pays on top for a full trie (the pallet's
/// `cost_storage!`: `get_storage_full - get_storage_empty`, `set_storage_full -
/// set_storage_empty`): the part that does not depend on the item's size.
const READ_FULL_TRIE: Price = Price::new(45_087_000 - 14_356_000, 26_628 - 16_618);
const WRITE_FULL_TRIE: Price = Price::new(50_152_000 - 16_010_000, 26_628 - 16_618);

/// `seal_get_storage(n)`: reading an item of `n` bytes.
pub(crate) fn get_storage(n: u64) -> Price {
    Price::new(7_647_236 + 603 * n + DB_READ, 248 + n).plus(READ_FULL_TRIE)
}

/// `seal_set_storage(n, o)`: writing `n` bytes over `o`.
pub(crate) fn set_storage(n: u64, o: u64) -> Price {
    Price::new(8_915_233 + 255 * n + 39 * o + DB_READ + DB_WRITE, 249 + o).plus(WRITE_FULL_TRIE)
}

/// `seal_clear_storage(n)`: removing an item of `n` bytes.
pub(crate) fn clear_storage(n: u64) -> Price {
    Price::new(7_912_778 + 88 * n + DB_READ + DB_WRITE, 248 + n).plus(WRITE_FULL_TRIE)
}

/// `seal_deposit_event(t, n)`: an event with `t` topics and `n` bytes of data (every topic
/// is a read and a write of `System::EventTopics`).
pub(crate) fn deposit_event(topics: u64, n: u64) -> Price {
    Price::new(
        3_999_591 + 2_011_090 * topics + 12 * n + topics * (DB_READ + DB_WRITE),
        990 + 2_475 * topics,
    )
}

/// `seal_transfer`.
pub(crate) fn transfer() -> Price {
    Price::new(8_791_000, 0)
}

/// `seal_terminate(0)`: the example's close (no delegate dependencies).
pub(crate) fn terminate() -> Price {
    Price::new(15_257_892 + 2 * DB_READ + 3 * DB_WRITE, 3_784)
}

/// Loading `bytes` of code (`call_with_code_per_byte`'s slope), paid by every call.
pub(crate) fn code(bytes: u64) -> Price {
    Price::new(700 * bytes, bytes)
}

/// `seal_hash_keccak_256(n)`.
pub(crate) fn keccak_256(n: u64) -> Price {
    Price::new(10_964_255 + 3_593 * n, 0)
}

/// `seal_hash_sha2_256(n)`.
pub(crate) fn sha2_256(n: u64) -> Price {
    Price::new(9_599_151 + 1_336 * n, 0)
}

/// `seal_hash_blake2_256(n)`.
pub(crate) fn blake2_256(n: u64) -> Price {
    Price::new(6_579_283 + 1_466 * n, 0)
}

/// `seal_ecdsa_recover`.
pub(crate) fn ecdsa_recover() -> Price {
    Price::new(49_219_000, 0)
}
