//! Property: over random lifecycles (many payers, top-ups, extensions, rotations of the
//! authority incl. revocation, settlements, closes with and without a receipt, valid and
//! forged receipts, expiry, withdrawals, transfers refused by the chain), the contract
//! agrees with a small, independent reference model at every step, error for error: the
//! payee never receives more than what a key in force signed nor more than the deposit,
//! payee + payer always receive exactly the deposit, and no balance is created or lost
//! (counted on the engine's real balances).
mod model;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn contract_agrees_with_the_reference_model(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        model::run(&bytes);
    }
}

/// A lifecycle that exercises every path once, so the property cannot pass vacuously.
#[test]
fn a_scripted_lifecycle_takes_every_path() {
    let bytes = [
        0, // transfers go through
        0, 0, 0x10, 0x27, 10, 0,
        2, // payer 0 opens 10000, expires at 11, key 0, notice 2 -> channel 0
        0, 1, 0x20, 0x4e, 3, 1,
        0, // payer 1 opens 20000, expires at 4, key 1, notice 0 -> channel 1
        1, 1, 0, 0xe8, 0x03, // payer 0 tops channel 0 up by 1000
        4, 1, 0, 9, 0x88, 0x13, // payee settles channel 0 for 5000 signed by key 1: refused
        4, 1, 0, 30, 0x88, 0x13, // ... signed by key 0: paid 5000
        4, 1, 0, 30, 0x88, 0x13, // again: nothing to settle
        3, 1, 0, 2, // payer 0 rotates channel 0 to key 2, in force at block 3
        4, 1, 0, 27, 0x10, 0x00, // a receipt of epoch 1 before then: wrong epoch
        8, 1, // 2 blocks pass: block 3, key 2 in force
        4, 1, 0, 24, 0x70, 0x17, // a receipt of epoch 0 now: wrong epoch
        4, 1, 0, 30, 0xe8, 0x03, // key 2, epoch 1, 1000 above 5000: paid 1000
        5, 1, 0, 1, 31, 3, // close for the rest of the deposit + 1: refused
        5, 1, 0, 1, 32, 1, // close below what was settled: refused
        5, 0, 0, 1, 30, 0x10, 0x00, // close by payer 0: not the payee
        5, 1, 0, 1, 31, 2, // close for the whole rest: paid 5000, nothing refunded
        3, 1, 1, 3, // payer 1 revokes channel 1's keys (notice 0: at once)
        4, 1, 1, 30, 0x10, 0x00, // a receipt of epoch 1: revoked
        3, 1, 1, 4, // rotate to the stranger's account: refused
        2, 1, 1, 0, // extend by nothing: refused
        6, 1, 1, // claim before expiry: refused
        8, 0, // 1 block: channel 1 expired
        5, 1, 1, 0, // close without a receipt after expiry: refused
        6, 1, 1, // payer 1 claims channel 1: 20000 back
        7, 1, // payer 1 withdraws: nothing owed
    ];
    let outcomes = model::run(&bytes);
    assert_eq!(
        outcomes,
        [
            true, true, true, false, true, false, true, false, true, false, true, false, false,
            false, true, true, false, false, false, false, true, false, true, false
        ]
    );
}

/// The same with every transfer out of the contract refused: settle and close go
/// through, and what they pay is owed.
#[test]
fn a_scripted_lifecycle_with_refused_transfers() {
    let bytes = [
        3, // transfers out of the contract are refused
        0, 0, 0x10, 0x27, 10, 0, 0, // payer 0 opens 10000 -> channel 0
        4, 1, 0, 30, 0x88, 0x13, // settle 5000: owed to the payee
        5, 1, 0, 1, 30, 0x70,
        0x17, // close at 6000: 1000 more owed to the payee, 4000 to the payer
        7, 3, // the payee withdraws: refused again, still owed
        7, 0, // so does the payer
        7, 4, // the stranger is owed nothing
    ];
    assert_eq!(model::run(&bytes), [true, true, true, false, false, false]);
}
