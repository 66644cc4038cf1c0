//! A channel lifecycle on the real contract (ink!'s off-chain engine) against a small
//! reference model: the same checker as the contract's property test
//! (contract/tests/model/mod.rs), fed by the fuzzer instead of proptest.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../contract/tests/model/mod.rs"]
mod model;

fuzz_target!(|data: &[u8]| {
    model::run(data);
});
