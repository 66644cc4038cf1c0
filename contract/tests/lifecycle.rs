//! Property: over random lifecycles (many payers, top-ups, extensions, valid and forged
//! receipts, expiry), the contract agrees with a small reference model at every step: the
//! payee never receives more than a valid receipt's amount nor more than the deposit,
//! payee + payer always receive exactly the deposit, and no balance is created or lost.
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
        0, 0, 0x10, 0x27, 10, 0, // payer 0 opens 10000, expires in 10, key 0  -> channel 0
        0, 1, 0x20, 0x4e, 3, 1, // payer 1 opens 20000, expires in 3, key 1   -> channel 1
        1, 0, 0, 0xe8, 0x03, // payer 0 tops channel 0 up by 1000
        3, 3, 0, 1, 0x88, 0x13, 1, // payee closes channel 0 for 5000 with key 1: refused
        3, 3, 0, 2, 0, // payee closes channel 0 for deposit + 1 with key 0: refused
        3, 3, 0, 1, 0x88, 0x13, 0, // payee closes channel 0 for 5000 with key 0: paid
        3, 3, 0, 1, 0x88, 0x13, 0, // again: channel gone, refused
        5, 3, // 4 blocks pass: channel 1 expired
        3, 3, 1, 1, 0x01, 0x00, 1, // close of expired channel 1: refused
        4, 1, 1, // payer 1 claims channel 1
    ];
    let outcomes = model::run(&bytes);
    assert_eq!(
        outcomes,
        [true, true, true, false, false, true, false, true, false, true]
    );
}
