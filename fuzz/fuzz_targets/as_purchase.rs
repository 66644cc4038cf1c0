//! The AS's request parser and purchase handler: a request body (raw bytes, or a valid
//! purchase with fields mutated) through the wire parser, the signature check and the
//! ledger's sale, against an in-memory ledger with an open channel. Never panics; a refusal
//! changes nothing; a sale raises the total to exactly the receipt's amount, consumes
//! exactly its slots' counters and returns the device's HOTPs for them.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use protocol::hotp::{hotp, Digits, HmacSha256};
use protocol::signature::keys::{self, SecretKey};
use protocol::{Authority, ChannelId, ChannelView, Domain, Receipt, Tariff};
use slotpay_as::api::PurchaseBody;
use slotpay_as::ledger::Ledger;
use slotpay_as::sale::{DeviceKey, Offer, Seller};
use std::collections::BTreeMap;

const AS: [u8; 32] = [0xA5; 32];
const DOMAIN: Domain = Domain {
    genesis_hash: [1; 32],
    contract: [2; 32],
};
const PRICE: u128 = 10;
const DEVICE_KEY: [u8; 32] = [0x42; 32];

#[derive(Debug, Arbitrary)]
enum Body {
    Raw(Vec<u8>),
    Valid {
        /// Receipts accepted before this one (1 slot each).
        before: u8,
        slots: u8,
        device: bool,
        mutate: Option<(u8, u8)>,
        other_key: bool,
    },
}

fn seller() -> Seller {
    let mut devices = BTreeMap::new();
    devices.insert(
        "lock-1".to_owned(),
        DeviceKey {
            key: DEVICE_KEY.to_vec(),
            digits: Digits::new(8).expect("8"),
        },
    );
    Seller {
        our_account: AS,
        domain: DOMAIN,
        tariff: Tariff {
            price: PRICE,
            expiry_margin: 5,
        },
        devices,
    }
}

fuzz_target!(|body: Body| {
    let client = SecretKey::from_slice(&[1; 32]).expect("key");
    let view = ChannelView {
        payee: AS,
        authority: Authority::Delegate(keys::public_key(&client)),
        deposit: 100 * PRICE,
        expires_at: 1_000,
    };
    let seller = seller();
    let mut ledger = Ledger::in_memory().expect("ledger");
    ledger.register_device("lock-1").expect("device");
    let bytes = match body {
        Body::Raw(bytes) => bytes,
        Body::Valid {
            before,
            slots,
            device,
            mutate,
            other_key,
        } => {
            for k in 1..=u128::from(before % 8) {
                let receipt = Receipt {
                    channel: ChannelId(7),
                    amount: k * PRICE,
                };
                let signature = receipt.sign(&DOMAIN, &client);
                let offer = Offer {
                    device: "lock-1",
                    receipt: &receipt,
                    signature: &signature,
                    proof: None,
                };
                seller
                    .sell(&mut ledger, Some(&view), 10, &offer)
                    .expect("setup sale");
            }
            let total = ledger.total(ChannelId(7)).expect("total");
            let receipt = Receipt {
                channel: ChannelId(7),
                amount: total + u128::from(slots) * PRICE,
            };
            let signer = if other_key {
                SecretKey::from_slice(&[2; 32]).expect("key")
            } else {
                client
            };
            let body = PurchaseBody::new(
                if device { "lock-1" } else { "pump-9" },
                &receipt,
                &receipt.sign(&DOMAIN, &signer),
                None,
            );
            let mut bytes = serde_json::to_vec(&body).expect("json");
            if let Some((i, x)) = mutate {
                let n = bytes.len();
                bytes[usize::from(i) % n] ^= x;
            }
            bytes
        }
    };
    let (total0, counter0) = (
        ledger.total(ChannelId(7)).expect("total"),
        ledger.next_counter("lock-1").expect("counter"),
    );
    let Ok(body) = serde_json::from_slice::<PurchaseBody>(&bytes) else {
        return;
    };
    let Ok(parsed) = body.parse() else { return };
    let channel = (parsed.receipt.channel == ChannelId(7)).then_some(&view);
    let offer = Offer {
        device: &parsed.device,
        receipt: &parsed.receipt,
        signature: &parsed.signature,
        proof: parsed.proof.as_ref(),
    };
    match seller.sell(&mut ledger, channel, 10, &offer) {
        Ok(sold) if sold.fresh => {
            assert_eq!(
                ledger.total(ChannelId(7)).expect("total"),
                parsed.receipt.amount
            );
            assert_eq!(
                parsed.receipt.amount - total0,
                u128::from(sold.sale.slots) * PRICE
            );
            assert!(parsed.receipt.amount <= view.deposit);
            assert_eq!(
                ledger.next_counter("lock-1").expect("counter"),
                counter0 + sold.sale.slots
            );
            for (i, otp) in sold.otps.iter().enumerate() {
                assert_eq!(
                    *otp,
                    hotp::<HmacSha256>(
                        &DEVICE_KEY,
                        counter0 + i as u64,
                        Digits::new(8).expect("8")
                    )
                );
            }
        }
        Ok(_) => {
            // A retry of an earlier sale: nothing charged.
            assert_eq!(ledger.total(ChannelId(7)).expect("total"), total0);
            assert_eq!(ledger.next_counter("lock-1").expect("counter"), counter0);
        }
        Err(_) => {
            assert_eq!(
                ledger.total(ChannelId(7)).expect("total"),
                total0,
                "a refusal changed the total"
            );
            assert_eq!(
                ledger.next_counter("lock-1").expect("counter"),
                counter0,
                "a refusal used counters"
            );
        }
    }
});
